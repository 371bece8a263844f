package httpfield

import "strings"

// Directive is one directive of a Cache-Control value, or of a CDN's own
// field (CDNCacheControl).
type Directive struct {
	Text   string // as written, without the blanks around it
	Name   string // in lower case
	Arg    string // its argument, a quoted string's contents unescaped
	HasArg bool   // an "=" follows the name: private="Set-Cookie" is not private
}

// Directives splits field values (one field's lines) into their
// directives. A comma inside a quoted string does not end a directive
// (RFC 9111 section 5.2: private="X-User, X-Other" is one, naming two
// fields), and empty list elements are skipped.
func Directives(values []string) []Directive {
	var ds []Directive
	for _, v := range values {
		start, quoted := 0, false
		for i := 0; i < len(v); i++ {
			switch {
			case quoted && v[i] == '\\':
				i++ // a quoted-pair: the next byte is literal
			case v[i] == '"':
				quoted = !quoted
			case v[i] == ',' && !quoted:
				ds = appendDirective(ds, v[start:i])
				start = i + 1
			}
		}
		ds = appendDirective(ds, v[start:])
	}
	return ds
}

func appendDirective(ds []Directive, text string) []Directive {
	text = strings.TrimSpace(text)
	if text == "" {
		return ds
	}
	name, arg, hasArg := strings.Cut(text, "=")
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
		var b strings.Builder
		for i := 1; i < len(arg)-1; i++ {
			if arg[i] == '\\' && i+1 < len(arg)-1 {
				i++
			}
			b.WriteByte(arg[i])
		}
		arg = b.String()
	}
	return append(ds, Directive{Text: text, Name: strings.ToLower(strings.TrimSpace(name)), Arg: arg, HasArg: hasArg})
}

// Names reports whether the directive's argument, a field list
// (private="X-User, Set-Cookie", no-cache="Set-Cookie"), names field.
func (d Directive) Names(field string) bool {
	for _, f := range strings.Split(d.Arg, ",") {
		if strings.EqualFold(strings.TrimSpace(f), field) {
			return true
		}
	}
	return false
}

package phpserial

import (
	"unicode/utf16"
	"unicode/utf8"
)

type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNumber
	jString
	jArray
	jObject
)

// jnode is one JSON value, in pre-order like pnode. For strings start/end
// delimit the text between the quotes; for numbers the literal; for
// containers the whole text.
type jnode struct {
	start, end int32
	ks, ke     int32 // member name between its quotes; ks < 0: no name
	skip       int32
	count      int32
	depth      int32
	kind       jkind
	esc        bool // the string value contains backslash escapes
	kesc       bool // the member name contains backslash escapes
	isInt      bool // jNumber without fraction or exponent
}

// jparser parses JSON (RFC 8259) into jnodes without recursion. As an
// extension it accepts the NaN, Infinity and -Infinity literals Python's
// json module writes by default. Raw bytes in strings must be valid UTF-8;
// a \u escape of a lone surrogate decodes to U+FFFD (Python writes those).
type jparser struct {
	in    []byte
	pos   int
	lim   Limits
	elems *int
	nodes []jnode
	stack []int32
	// session: the root is a session, whose only member may be any of the
	// four tag names (a whole-session tag); set after reset.
	session bool
}

func (p *jparser) reset(in []byte, lim Limits, elems *int) {
	p.in, p.pos, p.lim, p.elems = in, 0, lim, elems
	p.nodes = p.nodes[:0]
	p.stack = p.stack[:0]
	p.session = false
}

func (p *jparser) errAt(off int, msg string) error {
	return &SyntaxError{Offset: off, Msg: "json: " + msg}
}

func (p *jparser) truncated() error {
	return p.errAt(len(p.in), "unexpected end of JSON input")
}

func (p *jparser) ws() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) parse() error {
	key := jnode{ks: -1, ke: -1}
	for {
		p.ws()
		opened, err := p.value(key)
		if err != nil {
			return err
		}
		if opened {
			p.ws()
			if p.pos >= len(p.in) {
				return p.truncated()
			}
			top := &p.nodes[p.stack[len(p.stack)-1]]
			c := p.in[p.pos]
			if c == ']' && top.kind == jArray || c == '}' && top.kind == jObject {
				p.pos++
				if err := p.close(); err != nil {
					return err
				}
			} else {
				if top.kind == jObject {
					if key, err = p.member(); err != nil {
						return err
					}
				} else {
					key = jnode{ks: -1, ke: -1}
				}
				continue
			}
		}
		// After a complete value: a separator, a close, or the end.
		for {
			if len(p.stack) == 0 {
				p.ws()
				if p.pos != len(p.in) {
					return p.errAt(p.pos, "trailing data after the JSON value")
				}
				return nil
			}
			p.ws()
			if p.pos >= len(p.in) {
				return p.truncated()
			}
			top := &p.nodes[p.stack[len(p.stack)-1]]
			c := p.in[p.pos]
			if c == ',' {
				p.pos++
				p.ws()
				if top.kind == jObject {
					if key, err = p.member(); err != nil {
						return err
					}
				} else {
					key = jnode{ks: -1, ke: -1}
				}
				break
			}
			if c == ']' && top.kind == jArray || c == '}' && top.kind == jObject {
				p.pos++
				if err := p.close(); err != nil {
					return err
				}
				continue
			}
			if top.kind == jObject {
				return p.errAt(p.pos, "expected ',' or '}'")
			}
			return p.errAt(p.pos, "expected ',' or ']'")
		}
	}
}

func (p *jparser) close() error {
	idx := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	n := &p.nodes[idx]
	n.end = int32(p.pos)
	n.skip = int32(len(p.nodes))
	if len(p.stack) > 0 {
		p.nodes[p.stack[len(p.stack)-1]].count++
	}
	name := p.tagObject(idx)
	if int(n.depth) > p.lim.MaxDepth && name != tagKey && name != tagKeyB64 {
		return limitErr("nesting depth", int(n.depth), p.lim.MaxDepth, int(n.start))
	}
	if name != "" {
		// A tag stands for one PHP value, which its text holds and which
		// the encoder charges when it parses that text: its JSON object
		// and string are no values of their own. Charged, a session
		// DecodeSession accepted (which counts PHP values only) could
		// exceed the same limit here, and PHP could not be given it.
		*p.elems += 2
	}
	if *p.elems < 0 {
		// add let the object and its string overdraw the budget in case
		// they were a tag (refunded above); they were not.
		return limitErr("element count", p.lim.MaxElements-*p.elems, p.lim.MaxElements, int(n.start))
	}
	return nil
}

// tagObject returns the tag name of the closed object idx when it is a tag
// holding a string, else "": "__php__" or "__php__b64" at any depth, and
// also "__php_session__" and "__php_session__b64" for a session's root. A
// value tag is the one JSON container allowed past MaxDepth (its PHP text
// is then checked to hold no array or object).
func (p *jparser) tagObject(idx int32) string {
	n := &p.nodes[idx]
	if n.kind != jObject || n.count != 1 || p.nodes[idx+1].kind != jString {
		return ""
	}
	m := &p.nodes[idx+1]
	k := p.in[m.ks:m.ke]
	if m.kesc {
		k = unescape(nil, k)
	}
	switch string(k) {
	case tagKey, tagKeyB64:
		return string(k)
	case sessionTagKey, sessionTagKeyB64:
		if idx == 0 && p.session {
			return string(k)
		}
	}
	return ""
}

// member reads `"name" :` and returns a node template carrying the name.
func (p *jparser) member() (jnode, error) {
	k := jnode{ks: -1, ke: -1}
	if p.pos >= len(p.in) {
		return k, p.truncated()
	}
	if p.in[p.pos] != '"' {
		return k, p.errAt(p.pos, "expected a member name string")
	}
	s, e, esc, err := p.str()
	if err != nil {
		return k, err
	}
	k.ks, k.ke, k.kesc = s, e, esc
	p.ws()
	if p.pos >= len(p.in) {
		return k, p.truncated()
	}
	if p.in[p.pos] != ':' {
		return k, p.errAt(p.pos, "expected ':' after a member name")
	}
	p.pos++
	return k, nil
}

// add appends n after charging the element budget. An object, and a
// string that is an object's first member, may overdraw it (by one each):
// they may be a tag's object and string, which close refunds, and a tag
// that is a session's last value must fit where the PHP value it holds
// fits (DecodeSession charges that value alone). close refuses an
// overdrawn budget once it knows the object is no tag; nothing else may be
// added while it is overdrawn.
func (p *jparser) add(n jnode) error {
	floor := 0
	switch {
	case n.kind == jObject:
		floor = -1
	case n.kind == jString && n.ks >= 0 && int(p.stack[len(p.stack)-1]) == len(p.nodes)-1:
		floor = -2
	}
	if *p.elems <= floor {
		return limitErr("element count", p.lim.MaxElements-*p.elems+1, p.lim.MaxElements, int(n.start))
	}
	*p.elems--
	n.skip = int32(len(p.nodes)) + 1
	n.depth = int32(len(p.stack)) + 1
	p.nodes = append(p.nodes, n)
	if n.kind != jArray && n.kind != jObject && len(p.stack) > 0 {
		p.nodes[p.stack[len(p.stack)-1]].count++
	}
	return nil
}

// value parses a scalar, or opens a container (opened = true).
func (p *jparser) value(n jnode) (opened bool, err error) {
	if p.pos >= len(p.in) {
		return false, p.truncated()
	}
	n.start = int32(p.pos)
	switch c := p.in[p.pos]; c {
	case '{', '[':
		// A tag holding a scalar (d:INF;, a binary string, an enum) is a
		// JSON object where PHP has no array, so an object may be one
		// level deeper; close() checks that it is such a tag.
		if d := len(p.stack) + 1; d > p.lim.MaxDepth && (c == '[' || d > p.lim.MaxDepth+1) {
			return false, limitErr("nesting depth", d, p.lim.MaxDepth, p.pos)
		}
		n.kind = jArray
		if c == '{' {
			n.kind = jObject
		}
		p.pos++
		if err := p.add(n); err != nil {
			return false, err
		}
		p.stack = append(p.stack, int32(len(p.nodes)-1))
		return true, nil
	case '"':
		s, e, esc, err := p.str()
		if err != nil {
			return false, err
		}
		n.kind, n.start, n.end, n.esc = jString, s, e, esc
	case 't':
		if err := p.lit("true"); err != nil {
			return false, err
		}
		n.kind = jTrue
	case 'f':
		if err := p.lit("false"); err != nil {
			return false, err
		}
		n.kind = jFalse
	case 'n':
		if err := p.lit("null"); err != nil {
			return false, err
		}
		n.kind = jNull
	case 'N':
		if err := p.lit("NaN"); err != nil {
			return false, err
		}
		n.kind = jNumber
	case 'I':
		if err := p.lit("Infinity"); err != nil {
			return false, err
		}
		n.kind = jNumber
	default:
		if c == '-' && p.pos+1 < len(p.in) && p.in[p.pos+1] == 'I' {
			if err := p.lit("-Infinity"); err != nil {
				return false, err
			}
			n.kind = jNumber
			break
		}
		isInt, err := p.number()
		if err != nil {
			return false, err
		}
		n.kind, n.isInt = jNumber, isInt
	}
	if n.kind != jString {
		n.end = int32(p.pos)
	}
	return false, p.add(n)
}

func (p *jparser) lit(s string) error {
	if len(p.in)-p.pos < len(s) {
		return p.truncated()
	}
	if string(p.in[p.pos:p.pos+len(s)]) != s {
		return p.errAt(p.pos, "invalid literal")
	}
	p.pos += len(s)
	return nil
}

// number validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *jparser) number() (isInt bool, err error) {
	in := p.in
	i := p.pos
	if i < len(in) && in[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		return i - s
	}
	if i >= len(in) {
		return false, p.truncated()
	}
	if in[i] == '0' {
		i++
	} else if digits() == 0 {
		return false, p.errAt(i, "invalid character where a value was expected")
	}
	isInt = true
	if i < len(in) && in[i] == '.' {
		i++
		isInt = false
		if digits() == 0 {
			return false, p.errAt(i, "expected a digit after the decimal point")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		isInt = false
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false, p.errAt(i, "expected a digit in the exponent")
		}
	}
	p.pos = i
	return isInt, nil
}

// str scans a string starting at its opening quote and returns the range
// between the quotes. It validates escapes and UTF-8.
func (p *jparser) str() (s, e int32, esc bool, err error) {
	in := p.in
	i := p.pos + 1
	start := i
	for {
		if i >= len(in) {
			return 0, 0, false, p.truncated()
		}
		c := in[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return int32(start), int32(i), esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(in) {
				return 0, 0, false, p.truncated()
			}
			switch in[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(in) {
					return 0, 0, false, p.truncated()
				}
				if _, ok := hex4(in[i+2 : i+6]); !ok {
					return 0, 0, false, p.errAt(i, "invalid \\u escape")
				}
				i += 6
			default:
				return 0, 0, false, p.errAt(i, "invalid escape")
			}
		case c < 0x20:
			return 0, 0, false, p.errAt(i, "control character in string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, 0, false, p.errAt(i, "invalid UTF-8 in string")
			}
			i += size
		}
	}
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// unescape appends the decoded content of a validated JSON string body.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, _ = hex4(s[i+2 : i+6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

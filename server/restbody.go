package server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/fcgi"
)

// WordPress reads its public query vars, rest_route among them, from
// $_POST before $_GET (WP::parse_request), so a form POST to any URL its
// index.php (or another script that runs wp(), restRoutes) serves, with rest_route=/wp/v2/users in the body, is that
// REST route, whatever the URL says; the REST server then takes
// X-HTTP-Method-Override for the method. The access rules and rate limits
// read such a body's routes as they read ?rest_route= (restRoutes).

// wholeBodyReader is a PHPBackend that reads a body whole before the
// request goes on, and lets it be read again (*fcgi.Transport).
type wholeBodyReader interface {
	ReadWholeBody(*http.Request) (*http.Request, func(), error)
}

// maxRouteValue is how much of a rest_route value is kept: a route is
// matched on its start, and what WordPress tolerates after a route
// (slashes, backslashes, a newline) folds away (foldedPath), so a longer
// value's prefix reads as the value would.
const maxRouteValue = 64 << 10

// readsRESTBody reports whether a rule on path may hold a route read from
// a body (restPaths): one on /, or on a path with /wp-json in it.
func readsRESTBody(path string) bool {
	f := strings.ToLower(path)
	return f == "/" || strings.Contains(f, "/wp-json")
}

// restBodyRoutes returns the WordPress REST routes (as paths, restPaths)
// that a POST form body to script (any: see restRoutes) names in rest_route
// fields, and r with its body read whole (ReadWholeBody, or in memory for
// a backend that cannot), with the function that frees it. Every field
// that may be rest_route counts, not only the last, as reading more may
// only refuse more.
func (s *Server) restBodyRoutes(r *http.Request, script, index string) (*http.Request, []string, func(), error) {
	kind := phpFormKind(r.Header.Get("Content-Type"))
	if kind == "" || r.Body == nil || r.Body == http.NoBody {
		return r, nil, func() {}, nil
	}
	var body io.Reader
	release := func() {}
	if wb, ok := s.php.(wholeBodyReader); ok {
		r2, rel, err := wb.ReadWholeBody(r)
		if err != nil {
			return r, nil, nil, err
		}
		r, release = r2, rel
		if c, ok := r.Body.(interface{ NewReader() io.Reader }); ok {
			body = c.NewReader()
		}
	}
	if body == nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			release()
			status := http.StatusBadRequest
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				status = http.StatusRequestEntityTooLarge
			}
			return r, nil, nil, &fcgi.Error{Status: status, Op: "read request body", Err: err}
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		body = bytes.NewReader(b)
	}
	var values []string
	if kind == "multipart" {
		values = multipartRESTRoutes(body, func(v string) bool {
			for _, p := range restPaths(script, index, v) {
				if s.ruleMayHold(p) {
					return true
				}
			}
			return false
		})
	} else {
		values = urlencodedRESTRoutes(body)
	}
	var routes []string
	for _, v := range values {
		routes = append(routes, restPaths(script, index, v)...)
	}
	return r, routes, release, nil
}

// ruleMayHold reports whether a restricted path or rate limit entry may
// hold reading p: one its clean or folded path falls under, or any when it
// has dot segments (restrictedDotReadings reads it from each slash).
func (s *Server) ruleMayHold(p string) bool {
	if config.HasRelativeSegment(p) {
		return true
	}
	c := config.CleanPath(p)
	rule, folded := s.rateRules(c, foldedPath(c))
	return s.restrictedRule(c) >= 0 || s.foldedRule(c) >= 0 || rule >= 0 || folded >= 0
}

// phpFormKind is the kind of form body PHP parses into $_POST for a
// Content-Type: "urlencoded", "multipart", or "" for none. PHP takes the
// type up to a ";", "," or " ", ignoring case.
func phpFormKind(ct string) string {
	if i := strings.IndexAny(ct, ";, "); i >= 0 {
		ct = ct[:i]
	}
	switch strings.ToLower(ct) {
	case "application/x-www-form-urlencoded":
		return "urlencoded"
	case "multipart/form-data":
		return "multipart"
	}
	return ""
}

// urlencodedRESTRoutes returns the decoded values of the fields of an
// urlencoded body that PHP names rest_route (phpVarName). It reads the
// body once, keeping of each field only what can matter: a name is
// rest_route only within its first bytes once PHP's leading spaces ("+",
// "%20") are dropped, and a value is kept up to maxRouteValue.
func urlencodedRESTRoutes(body io.Reader) []string {
	br := bufio.NewReaderSize(body, 32<<10)
	var (
		routes   []string
		key, val []byte
		inKey    = true
		empty    = true
	)
	field := func() {
		if !empty {
			if name, scalar := phpVarName(phpURLDecode(string(key))); scalar && name == "rest_route" {
				routes = append(routes, phpURLDecode(string(val)))
			}
		}
		key, val, inKey, empty = key[:0], val[:0], true, true
	}
	for {
		c, err := br.ReadByte()
		if err != nil {
			break
		}
		switch {
		case c == '&':
			field()
			continue
		case inKey && c == '=':
			inKey = false
		case inKey:
			// "rest_route" spelt with every byte escaped and a %00 after
			// it is 33 bytes; a longer name is not rest_route.
			if len(key) < 64 {
				key = append(key, c)
				// PHP drops the spaces a name starts with, a raw one
				// too (a form body may hold one): 64 of them then
				// hid rest_route past this limit.
				if k := string(key); k == "+" || k == "%20" || k == " " {
					key = key[:0]
				}
			}
		default:
			if len(val) < maxRouteValue {
				val = append(val, c)
			}
		}
		empty = false
	}
	field()
	return routes
}

// multipartRESTRoutes returns what may be the values of the rest_route
// fields of a multipart body that keep accepts, each once. It reads the
// body conservatively rather than as one parser reads it, since PHP's
// parser does not frame parts as others do (it reads a header line longer
// than its buffer in pieces, a piece may start a header of its own or an
// empty one that ends a part's headers, and a line among the headers that
// starts like the boundary is a header line): wherever
// "Content-Disposition:" appears, in any case, its value (with the lines
// after it that start with a space) is read for names as PHP reads them
// (isRESTRouteField); once one may be rest_route, or is too long to tell,
// every line after it, to the end of the body, may be the value. A value
// is the part's bytes as sent (PHP does not decode them) up to its first
// line break, past which foldedPath cuts anyway, and up to maxRouteValue.
// keep, which picks the lines that may meet a rule, bounds what is held
// to what matters.
func multipartRESTRoutes(body io.Reader, keep func(string) bool) []string {
	const (
		marker = "content-disposition:"
		maxHdr = 64 << 10
	)
	br := bufio.NewReaderSize(body, 32<<10)
	var (
		routes     []string
		seen       = map[string]bool{}
		matched    int    // bytes of marker matched so far
		hdr        []byte // a Content-Disposition value being read
		inHdr      bool   // reading one
		hdrLong    bool   // it was longer than maxHdr
		collecting bool   // every line may be a rest_route value
		line       []byte // the current line, while collecting
	)
	candidate := func(l []byte) {
		l = bytes.TrimSuffix(l, []byte("\r"))
		if v := string(l); !seen[v] && keep(v) {
			seen[v] = true
			routes = append(routes, v)
		}
	}
	endHeader := func() {
		if hdrLong || isRESTRouteField(string(hdr)) {
			collecting = true
		}
		inHdr, hdr, hdrLong, line = false, hdr[:0], false, line[:0]
	}
	for {
		c, err := br.ReadByte()
		if err != nil {
			break
		}
		switch {
		case inHdr && c == '\n':
			hdr = bytes.TrimSuffix(hdr, []byte("\r"))
			// A line that starts with white space continues the header,
			// an empty one ("\r\n", "\n") does not.
			if next, _ := br.Peek(2); len(next) > 0 && next[0] != '\n' && isSpace(next[0]) && (next[0] != '\r' || len(next) < 2 || next[1] != '\n') {
				continue
			}
			endHeader()
		case inHdr && len(hdr) < maxHdr:
			hdr = append(hdr, c)
		case inHdr:
			hdrLong = true
		case collecting && c == '\n':
			candidate(line)
			line = line[:0]
		case collecting && len(line) < maxRouteValue:
			line = append(line, c)
		}
		// The marker, anywhere, in any case (it has no repeated prefix,
		// so a mismatch starts again at this byte).
		lc := c
		if 'A' <= lc && lc <= 'Z' {
			lc += 'a' - 'A'
		}
		switch {
		case lc == marker[matched]:
			matched++
		case lc == marker[0]:
			matched = 1
		default:
			matched = 0
		}
		if matched == len(marker) {
			matched = 0
			if inHdr {
				endHeader()
			}
			inHdr, line = true, line[:0]
		}
	}
	if inHdr {
		endHeader()
	}
	if collecting && len(line) > 0 {
		candidate(line)
	}
	return routes
}

// isRESTRouteField reports whether a Content-Disposition value names a
// field PHP may read as rest_route: PHP reads a header line longer than
// its buffer in pieces, and a piece that holds a ":" starts a header of
// its own, so it may end the value at any length, and name="rest_routea:b"
// be read as rest_route. So a name counts when it or its start is
// rest_route as PHP names it.
func isRESTRouteField(cd string) bool {
	for _, name := range dispositionNames(cd) {
		if n, scalar := phpVarName(name); scalar && n == "rest_route" {
			return true
		}
		name, _, _ = strings.Cut(name, "\x00")
		name = strings.TrimLeft(name, " ")
		if len(name) > len("rest_route") {
			if n, scalar := phpVarName(name[:len("rest_route")]); scalar && n == "rest_route" {
				return true
			}
		}
	}
	return false
}

// dispositionNames returns the names a Content-Disposition value may give
// its field as PHP reads it (rfc1867.c): parameters split at ";" (outside
// quotes, and, to be safe, at every ";" too), a parameter's key up to its
// "=" compared with "name" ignoring case, its value quoted ("..." or
// '...', a backslash escaping the quote or itself) or up to white space.
func dispositionNames(cd string) []string {
	var names []string
	for _, pairs := range [][]string{splitOutsideQuotes(cd, ';'), strings.Split(cd, ";")} {
		for _, pair := range pairs {
			k, v, ok := strings.Cut(pair, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "name") {
				names = append(names, phpWordConf(v))
			}
		}
	}
	return names
}

// splitOutsideQuotes splits s at each sep not inside '...' or "..." (a
// backslash escaping the quote).
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	start := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\' && i+1 < len(s) && s[i+1] == quote:
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case quote == 0 && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// phpWordConf reads a parameter value as PHP's php_ap_getword_conf:
// leading white space skipped, then quoted (to the closing quote or the
// end, "\\" and an escaped quote unescaped) or up to white space.
func phpWordConf(v string) string {
	v = strings.TrimLeftFunc(v, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
	if v == "" {
		return ""
	}
	if q := v[0]; q == '"' || q == '\'' {
		var b []byte
		for i := 1; i < len(v); i++ {
			c := v[i]
			if c == '\\' && i+1 < len(v) && (v[i+1] == '\\' || v[i+1] == q) {
				b = append(b, v[i+1])
				i++
				continue
			}
			if c == q {
				break
			}
			b = append(b, c)
		}
		return string(b)
	}
	for i := 0; i < len(v); i++ {
		if isSpace(v[i]) {
			return v[:i]
		}
	}
	return v
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

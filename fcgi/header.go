package fcgi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/sessiongate/sessiongate/internal/httpfield"
)

// maxHeaderBlock caps the CGI header block PHP may send. Single lines are
// not capped (a 256 KiB header line must pass, php-fpm forwards 300 KB
// ones); the whole block is, so a script cannot make the gateway buffer
// without bound before the first body byte.
const maxHeaderBlock = 8 << 20

// errBadHeader marks a CGI header block the gateway refuses (502).
var errBadHeader = errors.New("malformed CGI response header")

// findHeaderEnd returns the offset just past the blank line that ends the
// CGI header block in b, or -1. from is where the previous search stopped,
// so a header arriving in many records is scanned in linear time.
func findHeaderEnd(b []byte, from int) int {
	// A block may be empty: the stream starts with the blank line.
	if from < 2 {
		if bytes.HasPrefix(b, []byte("\n")) {
			return 1
		}
		if bytes.HasPrefix(b, []byte("\r\n")) {
			return 2
		}
	}
	from -= 2 // a terminator may straddle the previous chunk boundary
	if from < 0 {
		from = 0
	}
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		j += i
		// b[j] ends a line; the header ends if the next line is empty.
		switch {
		case j+1 < len(b) && b[j+1] == '\n':
			return j + 2
		case j+2 < len(b) && b[j+1] == '\r' && b[j+2] == '\n':
			return j + 3
		}
		i = j + 1
	}
}

// headerValue returns the value of a CGI header line, spaces around it
// trimmed. PHP's header() refuses CR, LF and NUL, so one of those means the
// stream is not what a PHP script produced: ok is false. Any other control
// character but HTAB passes header() (a file name from an upload in
// Content-Disposition, say) yet may not be sent in an HTTP field: each
// becomes a space, as RFC 9110 5.5 has recipients do with CR and LF, so the
// header still works and the page is not lost to a 502 (nginx passes such a
// value on as it is).
func headerValue(raw []byte) (v []byte, ok bool) {
	if httpfield.ValidValue(raw) {
		return trimSpace(raw), true
	}
	if bytes.ContainsAny(raw, "\x00\r\n") {
		return nil, false
	}
	v = bytes.Clone(raw) // the block itself stays as PHP sent it
	for i, c := range v {
		if httpfield.Control(c) {
			v[i] = ' '
		}
	}
	return trimSpace(v), true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseCGIHeader parses a complete CGI header block (as delimited by
// findHeaderEnd) into a status code and header. "Status: 404 Not Found"
// sets the code and is removed; Location without Status gives 302; no
// Status gives 200. Lines end in LF or CRLF; a line starting with a space or
// tab continues the previous value (obsolete folding, joined with one
// space). Anything else that is not "Name: value" is an error. A header
// named marker (any case; "" none) is left out of h and reported in marked.
// Of several Content-Type lines the last one is kept.
func parseCGIHeader(block []byte, marker string) (status int, h http.Header, marked bool, err error) {
	h = make(http.Header, 8)
	var lastKey string
	for len(block) > 0 {
		var line []byte
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			line, block = block, nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			v, ok := headerValue(line)
			if lastKey == "" || !ok {
				return 0, nil, false, fmt.Errorf("%w: continuation line without a header", errBadHeader)
			}
			vs := h[lastKey]
			switch {
			case len(v) == 0:
			case vs[len(vs)-1] == "":
				// No leading space: a value never starts with one.
				vs[len(vs)-1] = string(v)
			default:
				vs[len(vs)-1] = vs[len(vs)-1] + " " + string(v)
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return 0, nil, false, fmt.Errorf("%w: line without colon", errBadHeader)
		}
		name := line[:colon]
		if !httpfield.ValidName(name) {
			return 0, nil, false, fmt.Errorf("%w: invalid header name %q", errBadHeader, truncateForLog(name))
		}
		value, ok := headerValue(line[colon+1:])
		if !ok {
			return 0, nil, false, fmt.Errorf("%w: control character in value of %q", errBadHeader, truncateForLog(name))
		}
		if marker != "" && asciiEqualFold(name, marker) {
			// Compared before any string is made of it: the marker
			// comes on every response.
			marked = true
			lastKey = ""
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		if key == "Status" {
			if status != 0 {
				// PHP sends one; a second would be ambiguous.
				return 0, nil, false, fmt.Errorf("%w: more than one Status header", errBadHeader)
			}
			code, err := parseStatus(value)
			if err != nil {
				return 0, nil, false, err
			}
			status = code
			lastKey = ""
			continue
		}
		if key == "Content-Type" {
			// A second Content-Type (PHP's header(..., false)) replaces
			// the first, as nginx takes the last: passed on, both
			// reached the client, and which one a client believes varies
			// (the Fetch standard's last, other clients' first).
			delete(h, key)
		}
		h[key] = append(h[key], string(value))
		lastKey = key
	}
	if status == 0 {
		status = http.StatusOK
		if _, ok := h["Location"]; ok {
			status = http.StatusFound
		}
	}
	return status, h, marked, nil
}

// asciiEqualFold reports whether b and s are equal, ASCII letters in
// either case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// parseStatus reads "404", "404 Not Found". Any three-digit code from 200
// up passes, as with nginx (an API's private 6xx/7xx reaches its client).
// A 1xx is refused: as a final status it is meaningless, and Go's server
// would treat it as an informational response and wait for another.
func parseStatus(v []byte) (int, error) {
	digits := v
	if i := bytes.IndexByte(v, ' '); i >= 0 {
		digits = v[:i]
	}
	code, err := strconv.Atoi(string(digits))
	if err != nil || len(digits) != 3 || code < 200 {
		return 0, fmt.Errorf("%w: bad Status %q", errBadHeader, truncateForLog(v))
	}
	return code, nil
}

func truncateForLog(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

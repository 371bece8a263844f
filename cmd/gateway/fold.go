package main

import (
	"bytes"
	"strconv"
	"sync/atomic"
)

// foldScanner follows the request framing on the bytes of a client
// connection as net/http reads them, to find a header line that starts with
// a space or tab: obs-fold (RFC 9112 section 5.2), a continuation of the
// line before. net/http joins such a line to the previous one without a
// trace, where nginx answers 400 and many proxies take the line for a
// header of its own. "X-A: y" followed by " Content-Length: 58" is then
// one header to the gateway and a 58-byte body to a proxy in front: a
// request smuggled in that body runs. The line can only be seen in the raw
// bytes, hence this scanner; the handler refuses a request whose head had
// one (logRefusals).
//
// It needs request heads and bodies told apart, so it skips a body of
// known length and stops at anything it cannot follow exactly as net/http
// does, at the end of that head: a body of another framing
// (Transfer-Encoding), a Content-Length it cannot read, a line it cannot
// tell from a request line. It never reports a fold it is unsure of, and
// the handler closes the connection after the request whose head stopped
// it (stoppedBy): net/http takes some heads the scanner cannot follow (a
// Content-Length padded with zeros past maxScanLine, a line of bare CRs
// it skips after a POST), and a folded line after one went unseen.
type foldScanner struct {
	state   int   // scanHead, scanBody, scanOff
	heads   int64 // request heads begun on the connection
	lineNo  int   // lines of the current head ended so far (0: the request line)
	line    []byte
	lineLen int   // the current line's length; line holds its first maxScanLine bytes
	clen    int64 // Content-Length of the current head, -1 none
	chunked bool  // the current head has a Transfer-Encoding
	// unsure: the current head has a framing header the scanner cannot
	// follow; it stops at the head's end (its lines may still fold).
	unsure   bool
	bodyLeft int64
	// folded is the number of the first request (1-based) whose head has
	// a folded line, 0 none. Read by the handler, written by Read.
	folded atomic.Int64
	// stopped is the number of the request at whose head's end the
	// scanner stopped, 0 none. Read by the handler, written by Read.
	stopped atomic.Int64
	// transferEncoded is the number of the first request whose head has
	// a Transfer-Encoding line, 0 none, which net/http hides on HTTP/1.0.
	// Read by the handler, written by Read.
	transferEncoded atomic.Int64
}

const (
	scanHead = iota
	scanBody
	scanOff
)

// maxScanLine is how much of a header line the scanner keeps: enough for
// any Content-Length net/http takes without whitespace padding.
const maxScanLine = 128

func newFoldScanner() *foldScanner {
	return &foldScanner{clen: -1, line: make([]byte, 0, maxScanLine)}
}

// foldedBy reports whether request number n (1-based) on the connection,
// or one before it, had a folded header line.
func (s *foldScanner) foldedBy(n int64) bool {
	f := s.folded.Load()
	return f > 0 && n >= f
}

// stoppedBy reports whether the scanner stopped at the head of request
// number n (1-based) or one before it: the requests after it are not
// checked.
func (s *foldScanner) stoppedBy(n int64) bool {
	f := s.stopped.Load()
	return f > 0 && n >= f
}

// transferEncodedAt reports whether request number n (1-based) had a
// Transfer-Encoding line in its head.
func (s *foldScanner) transferEncodedAt(n int64) bool {
	return s.transferEncoded.Load() == n
}

// inRequestLine reports whether the bytes read so far end inside a
// request line: net/http refusing the head then refuses that line alone.
func (s *foldScanner) inRequestLine() bool {
	return s.state == scanHead && s.lineNo == 0 && s.lineLen > 0
}

// midHead reports whether the bytes read so far end inside a request head
// (past its first byte): a head that came pipelined behind the request
// before, so net/http took it from its buffer, not the connection.
func (s *foldScanner) midHead() bool {
	return s.state == scanHead && (s.lineNo > 0 || s.lineLen > 0)
}

// scan follows p, the next bytes read from the connection.
func (s *foldScanner) scan(p []byte) {
	for len(p) > 0 && s.state != scanOff {
		if s.state == scanBody {
			n := min(int64(len(p)), s.bodyLeft)
			p = p[n:]
			if s.bodyLeft -= n; s.bodyLeft == 0 {
				s.state = scanHead
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if room := maxScanLine - len(s.line); room > 0 {
			s.line = append(s.line, part[:min(len(part), room)]...)
		}
		s.lineLen += len(part)
		if i < 0 {
			return
		}
		p = p[i+1:]
		s.endLine()
	}
}

// endLine takes the line just ended (without its '\n').
func (s *foldScanner) endLine() {
	line, n := s.line, s.lineLen
	if n > 0 && n <= len(line) && line[n-1] == '\r' {
		n--
	}
	s.line, s.lineLen = s.line[:0], 0
	switch {
	case s.lineNo == 0:
		if n == 0 {
			return // an empty line before a request line
		}
		s.heads++
		s.lineNo, s.clen, s.chunked, s.unsure = 1, -1, false, false
	case n == 0: // the end of the head
		s.lineNo = 0
		switch {
		case s.chunked || s.unsure:
			s.state = scanOff
			s.stopped.Store(s.heads)
		case s.clen > 0:
			s.state, s.bodyLeft = scanBody, s.clen
		}
	case line[0] == ' ' || line[0] == '\t':
		s.folded.Store(s.heads)
		s.state = scanOff
	default:
		s.lineNo++
		s.header(line[:min(n, len(line))], n > len(line))
	}
}

// header notes the framing a header line gives; cut: line is only its
// start.
func (s *foldScanner) header(line []byte, cut bool) {
	name, value, ok := bytes.Cut(line, []byte(":"))
	switch {
	case !ok:
		if cut {
			return // a name longer than maxScanLine: not one of these
		}
		s.unsure = true // net/http refuses it
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		if !s.chunked {
			s.transferEncoded.CompareAndSwap(0, s.heads)
		}
		s.chunked = true
	case bytes.EqualFold(name, []byte("Content-Length")):
		v, err := strconv.ParseUint(string(bytes.Trim(value, " \t")), 10, 63)
		if cut || err != nil || s.clen >= 0 && int64(v) != s.clen {
			s.unsure = true
			return
		}
		s.clen = int64(v)
	}
}

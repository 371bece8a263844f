// Package bodyread holds what the PHP and Django paths share when they read
// a client's request body ahead of the backend.
package bodyread

import (
	"errors"
	"io"
	"strings"
)

// Fill reads r into buf until buf is full (nil error) or r ends (io.EOF).
// Unlike io.ReadFull it hands on io.ErrUnexpectedEOF as r gives it: that
// is how net/http's chunked reader says the connection ended inside the
// body, which must not pass for the end of a short one.
func Fill(r io.Reader, buf []byte) (int, error) {
	m := 0
	for m < len(buf) {
		n, err := r.Read(buf[m:])
		m += n
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// StartSize is the size a body's memory buffer starts at in Grow. A
// request that has sent little of its body holds little: with a buffer of
// the whole in-memory limit taken before the first read, HTTP/2 streams
// that send HEADERS and never DATA (250 a connection, for a few KB) held
// 64 KiB each until the read timeout.
const StartSize = 4 << 10

// Grow reads r until limit bytes came (nil error) or r failed or ended
// (Fill's error), into a buffer that starts at StartSize (or limit, if
// smaller) and doubles each time it is full, so a body holds at most about
// twice what it sent; a body that arrives at once and fits the start pays
// for one buffer. get returns a buffer of at least size bytes and put
// takes back one Grow outgrew (the PHP path pools them; the Django path,
// which keeps the buffer, allocates). It returns the buffer and how much
// of it was read.
func Grow(r io.Reader, limit int, get func(size int) *[]byte, put func(*[]byte)) (*[]byte, int, error) {
	bp := get(min(limit, StartSize))
	m := 0
	for {
		n, err := Fill(r, (*bp)[m:min(len(*bp), limit)])
		m += n
		if err != nil || m == limit {
			return bp, m, err
		}
		next := get(min(2*m, limit))
		copy(*next, (*bp)[:m])
		put(bp)
		bp = next
	}
}

// CutShort reports whether err, a client body's read failure, is a body
// that ended inside its framing: short of its Content-Length or inside a
// chunk (io.ErrUnexpectedEOF), inside its trailer, or in chunked encoding
// that does not parse. net/http exports none but the first; the others'
// texts say "unexpected EOF" or "chunk", which a client leaving (a reset
// connection, HTTP/2's "client disconnected") never does.
// TestRequestBodyEndingShortIs400 (wsgi) breaks when Go changes them.
func CutShort(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "unexpected EOF") || strings.Contains(msg, "chunk")
}

// overlongText is how net/http's HTTP/2 server says a request's DATA ran
// past its content-length. It exports no error for it (a plain
// fmt.Errorf), so its text is matched here and nowhere else;
// TestOverlongMatchesNetHTTP breaks when Go changes it.
const overlongText = "sender tried to send more than declared Content-Length"

// Overlong reports whether err is net/http's failure of an HTTP/2 request
// body longer than its content-length. The server resets the stream for
// it, which ends the request's context, so the failure passed for a client
// that left (499); the client broke the request's framing, like a body
// that ends short (400).
func Overlong(err error) bool {
	return err != nil && strings.Contains(err.Error(), overlongText)
}

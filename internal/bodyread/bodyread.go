// Package bodyread holds what the PHP and Django paths share when they read
// a client's request body ahead of the backend.
package bodyread

import (
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

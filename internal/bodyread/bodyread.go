// Package bodyread holds what the PHP and Django paths share when they read
// a client's request body ahead of the backend.
package bodyread

import "io"

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

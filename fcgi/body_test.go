package fcgi

import (
	"bytes"
	"math"
	"testing"
)

// MaxBody is an int64 and NewTransport accepts any non-negative value, so
// math.MaxInt64 is a natural "no limit". A chunked body must then pass whole,
// with its exact CONTENT_LENGTH, instead of panicking on maxBody+1.
func TestChunkedBodyMaxBodyMaxInt64(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	tr, _ := newTransport(t, Options{MaxBody: math.MaxInt64, TempDir: t.TempDir()}, srv.Addr())
	for _, size := range []int{1000, 200 << 10} {
		payload := bytes.Repeat([]byte("x"), size)
		req := newReq(nil, "POST", "/", chunkedReader{bytes.NewReader(payload)}, nil)
		req.ContentLength = -1
		resp, got, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if got != string(payload) || resp.Header.Get("X-Content-Length") != itoa(size) {
			t.Fatalf("%d bytes: PHP got %d bytes, CONTENT_LENGTH %q", size, len(got), resp.Header.Get("X-Content-Length"))
		}
	}
}

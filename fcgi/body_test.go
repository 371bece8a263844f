package fcgi

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
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

// A chunked body of exactly memBodyLimit bytes fits the memory buffer: it
// must not go through a temp file (it failed with 500 when TempDir was
// unusable, while one byte less passed). One byte more spills.
func TestChunkedBodyMemoryThreshold(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	missing := filepath.Join(t.TempDir(), "missing")
	tr, _ := newTransport(t, Options{MaxBody: 1 << 20, TempDir: missing}, srv.Addr())
	for _, tc := range []struct {
		size   int
		status int // 0: passes
	}{
		{memBodyLimit - 1, 0},
		{memBodyLimit, 0},
		{memBodyLimit + 1, 500}, // spills, and TempDir does not exist
	} {
		payload := bytes.Repeat([]byte("y"), tc.size)
		req := newReq(nil, "POST", "/", chunkedReader{bytes.NewReader(payload)}, nil)
		req.ContentLength = -1
		resp, got, err := roundTrip(t, tr, req)
		if tc.status != 0 {
			if StatusOf(err) != tc.status || !strings.Contains(err.Error(), missing) {
				t.Fatalf("%d bytes: err %v (status %d), want %d naming %s", tc.size, err, StatusOf(err), tc.status, missing)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d bytes: %v (status %d)", tc.size, err, StatusOf(err))
		}
		if got != string(payload) || resp.Header.Get("X-Content-Length") != itoa(tc.size) {
			t.Fatalf("%d bytes: PHP got %d bytes, CONTENT_LENGTH %q", tc.size, len(got), resp.Header.Get("X-Content-Length"))
		}
	}
}

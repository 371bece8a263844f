package fcgi

import (
	"bytes"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
)

// BenchmarkRoundTrip measures the client side of a hello-world exchange
// against the in-process fake server over loopback TCP (keep-alive).
func BenchmarkRoundTrip(b *testing.B) {
	srv := newFakeServer(b, helloHandler)
	tr, _ := newTransport(b, Options{MaxConnsPerBackend: 8}, srv.Addr())
	req := newReq(nil, "GET", "/hello.php?x=1", nil, nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 512)
		for pb.Next() {
			resp, err := tr.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := resp.Body.Read(buf); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
			resp.Body.Close()
		}
	})
}

// BenchmarkReadBody is a request body read ahead (ReadBody) that arrives
// at once, as most form posts do: the cost of the in-memory path per size
// and framing, from the buffer taken to the buffer given back.
func BenchmarkReadBody(b *testing.B) {
	tr, err := NewTransport(Options{Backends: []string{"127.0.0.1:1"}, MaxBody: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	for _, size := range []int{100, 1 << 10, 16 << 10, 60 << 10} {
		for _, chunked := range []bool{false, true} {
			name := fmt.Sprintf("%d", size)
			if chunked {
				name += "-chunked"
			}
			b.Run(name, func(b *testing.B) {
				payload := bytes.Repeat([]byte("x"), size)
				body := bytes.NewReader(payload)
				req := httptest.NewRequest("POST", "/", nil)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					body.Reset(payload)
					req.Body, req.ContentLength = io.NopCloser(body), int64(size)
					if chunked {
						req.ContentLength = -1
					}
					r2, release, err := tr.ReadBody(req)
					if err != nil || r2.ContentLength != int64(size) {
						b.Fatalf("%v, length %d", err, r2.ContentLength)
					}
					release()
				}
			})
		}
	}
}

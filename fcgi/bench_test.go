package fcgi

import (
	"io"
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

package wsgi

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// cannedDjango answers every request on a connection with the same small
// JSON response, the size of examples/django's whoami page, without parsing
// more than the header block: the benchmark's CPU is then mostly the
// gateway's, not a Go HTTP server's standing in for gunicorn.
func cannedDjango(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	body := `{"user": null, "id": null, "session_key": null}`
	// X-Sessiongate-Django: the mark sessiongate_django's middleware sets
	// on every response it handled.
	resp := []byte("HTTP/1.1 200 OK\r\nServer: gunicorn\r\nContent-Type: application/json\r\n" +
		"Vary: Cookie\r\nX-Frame-Options: DENY\r\nX-Sessiongate-Django: ok\r\nContent-Length: 47\r\n\r\n" + body)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// Read up to the blank line that ends a GET's header.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if bytes.Equal(line, []byte("\r\n")) {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// BenchmarkProxyNoSession is one anonymous Django page through the proxy:
// session opened (none), headers rewritten and signed, the upstream
// exchange on a kept-alive loopback connection, the response checked for a
// change and copied out. bench/run.sh measures the same page against
// nginx with a real gunicorn.
func BenchmarkProxyNoSession(b *testing.B) {
	mem := memory.New(memory.Options{})
	b.Cleanup(func() { mem.Close() })
	log := slog.New(slog.DiscardHandler)
	mgr, err := sessionbridge.New(sessionbridge.Options{
		Store:        mem,
		Secrets:      [][]byte{[]byte(testSecret)},
		Cookie:       sessionbridge.CookieOptions{Name: "sessionid", MaxAge: time.Hour},
		IdleTimeout:  10 * time.Minute,
		LockMode:     sessionbridge.LockStrict,
		LockTimeout:  time.Second,
		LockLease:    5 * time.Second,
		StoreTimeout: time.Second,
		Logger:       log,
	})
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(Options{Backends: []string{cannedDjango(b)}, Sessions: mgr,
		Secrets: [][]byte{[]byte(testSecret)}, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	req := httptest.NewRequest("GET", "http://site.example/accounts/whoami/", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := &discardResponse{h: http.Header{}}
		p.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// discardResponse keeps the status and nothing else.
type discardResponse struct {
	h      http.Header
	status int
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(code int)        { d.status = code }

package app

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/server"
)

// discardWriter is a ResponseWriter that keeps nothing: the benchmarks
// measure the gateway's own work per request, not a recorder's.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Flush()                      {}

// benchGateway builds the whole handler chain (access log off, sessions in
// memory) in front of the fake prepend PHP, so a benchmark shows the
// gateway's CPU and allocations per request without the network, net/http
// server or php-fpm around them; bench/run.sh measures those.
func benchGateway(b *testing.B) http.Handler {
	b.Helper()
	root := b.TempDir()
	for _, f := range []string{"index.php", "write.php"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=php:9000",
		"SESSIONGATE_DOCUMENT_ROOT=/var/www/html",
		"SESSIONGATE_STATIC_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=bench-key-0123456789abcdef0123456789abcdef",
		"SESSIONGATE_PHP_PREPEND=/srv/prepend.php",
		"SESSIONGATE_ACCESS_LOG=off",
	})
	if err != nil {
		b.Fatal(err)
	}
	a, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler), server.WithPHPBackend(&prependPHP{}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a.Server.Handler()
}

func benchServe(b *testing.B, h http.Handler, path, cookie string) {
	b.Helper()
	req, err := http.NewRequest("GET", "http://site.example"+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.RemoteAddr = "192.0.2.1:1234"
	req.RequestURI = path
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// A PHP page without a session cookie: routing, params, the FastCGI
// response copied out. No session work may happen.
func BenchmarkGatewayPHPNoSession(b *testing.B) {
	benchServe(b, benchGateway(b), "/index.php", "")
}

// A PHP page that changes the session on every request: cookie check,
// lock, load, params, the prepend's sealed frame opened and decoded, the
// record written and the lock released.
func BenchmarkGatewayPHPSessionWrite(b *testing.B) {
	h := benchGateway(b)
	w := &discardWriter{h: http.Header{}}
	req, _ := http.NewRequest("GET", "http://site.example/write.php", nil)
	req.RemoteAddr, req.RequestURI = "192.0.2.1:1234", "/write.php"
	h.ServeHTTP(w, req)
	cookie := (&http.Response{Header: w.h}).Cookies()
	if len(cookie) != 1 {
		b.Fatalf("no session cookie: %v", w.h)
	}
	benchServe(b, h, "/write.php", cookie[0].Name+"="+cookie[0].Value)
}

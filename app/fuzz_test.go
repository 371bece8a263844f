package app

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/server"
	"github.com/sessiongate/sessiongate/sessionbridge"
)

// lockedBuffer is a bytes.Buffer the server's goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FuzzGatewayRawRequest sends any bytes as a client would to the whole
// handler chain behind a real net/http server: routing, static files,
// sessions (with the fake prepend as PHP), forwarding headers from a
// trusted proxy, restricted paths, redirects, compression and the Django
// proxy. Whatever arrives, the gateway must answer without a panic, a hang
// or a 500 (the backends here never fail).
func FuzzGatewayRawRequest(f *testing.F) {
	root := f.TempDir()
	for name, body := range map[string]string{
		"index.php": "x", "write.php": "x", "destroy.php": "x", "admin/index.php": "x",
		"style.css": strings.Repeat("body{color:red}\n", 100), "dir/index.html": "<p>hi</p>",
		"img.svgz": "\x1f\x8b", ".env": "SECRET=1", "uploads/a.jpg": "jpg", "errors/404.html": "<h1>404</h1>",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	django := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set(sessionbridge.DjangoMarkHeader, sessionbridge.DjangoMarkOK)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "django")
	}))
	f.Cleanup(django.Close)
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=php:9000",
		"SESSIONGATE_DOCUMENT_ROOT=/var/www/html",
		"SESSIONGATE_STATIC_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=fuzz-key-0123456789abcdef0123456789abcdef",
		"SESSIONGATE_PHP_PREPEND=/srv/prepend.php",
		"SESSIONGATE_TRUSTED_PROXIES=127.0.0.0/8",
		"SESSIONGATE_NO_PHP_PATHS=/uploads/",
		"SESSIONGATE_RESTRICTED_PATHS=/admin/ 10.0.0.0/8",
		"SESSIONGATE_REDIRECTS=/old/ /new/ 301",
		"SESSIONGATE_ERROR_PAGES=404=/errors/404.html",
		"SESSIONGATE_DJANGO_URL=" + django.URL,
		"SESSIONGATE_DJANGO_PATHS=/dj/",
		"SESSIONGATE_ACCESS_LOG=on",
	})
	if err != nil {
		f.Fatal(err)
	}
	var logs lockedBuffer
	a, err := Build(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), server.WithPHPBackend(&prependPHP{}))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	srv := httptest.NewUnstartedServer(a.Server.Handler())
	var serverLog lockedBuffer
	srv.Config.ErrorLog = log.New(&serverLog, "", 0)
	srv.Start()
	f.Cleanup(srv.Close)

	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /write.php HTTP/1.1\r\nHost: a\r\nCookie: sessionid=x\r\n\r\n",
		"POST /write.php HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /style.css HTTP/1.1\r\nHost: a\r\nRange: bytes=0-5,10-\r\nAccept-Encoding: gzip\r\nIf-None-Match: W/\"x\"\r\n\r\n",
		"GET /dir/ HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Sat, 01 Mar 2024 12:00:00 UTC; length=3\r\n\r\n",
		"GET /admin/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.1.2.3, 127.0.0.1\r\nForwarded: for=10.0.0.1;host=x;proto=https\r\n\r\n",
		"GET /dj/x/?a=1 HTTP/1.1\r\nHost: a\r\nX-Forwarded-Host: b\r\nX-Real-IP: 1.2.3.4\r\n\r\n",
		"GET /old/x HTTP/1.1\r\nHost: a\r\n\r\nGET /.env HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /uploads/a.jpg/x.php HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /index.php/a%0ab HTTP/1.0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(raw)
		c.(*net.TCPConn).CloseWrite()
		out, err := io.ReadAll(c)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("no end to the answer in 10 s for %q (got %q)", raw, out)
			}
		}
		if s := serverLog.String(); strings.Contains(s, "panic") {
			t.Fatalf("panic for %q:\n%s", raw, s)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		for {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusInternalServerError {
				t.Fatalf("500 for %q:\n%s", raw, logs.String())
			}
		}
	})
}

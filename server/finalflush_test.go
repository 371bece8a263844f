package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

// lateTailBody is a PHP response of head bytes at once, then, after
// pause, tail bytes and the end.
type lateTailBody struct {
	head, tail int
	pause      time.Duration
	reads      int
}

func (b *lateTailBody) Read(p []byte) (int, error) {
	b.reads++
	switch b.reads {
	case 1:
		return copy(p, strings.Repeat("h", b.head)), nil
	case 2:
		time.Sleep(b.pause)
		return copy(p, strings.Repeat("t", b.tail)), io.EOF
	}
	return 0, io.EOF
}

func (b *lateTailBody) Close() error { return nil }

// TestFinalFlushCutIsLogged: net/http keeps the end of a response in its
// buffers and writes it after the handler has returned, once the access
// line is written. When that last write failed (SESSIONGATE_WRITE_TIMEOUT
// passed while PHP finished the page, a client that stopped reading), the
// client got the response cut or nothing at all, and the log said 200 with
// every byte, at info level. Over HTTP/1.1, a response whose framing is
// settled (a Content-Length, or a body past net/http's buffers, which went
// out chunked) is now flushed before the line is written, and a failure is
// logged as the cut it is.
func TestFinalFlushCutIsLogged(t *testing.T) {
	for _, c := range []struct {
		name       string
		head, tail int
		length     bool // PHP declares its Content-Length
	}{
		{"Content-Length", 3000, 100, true},
		{"chunked", 8000, 100, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *config.Config) { cfg.WriteTimeout = 300 * time.Millisecond })
			e.php.respond = func(r *http.Request) (*http.Response, error) {
				h := http.Header{}
				if c.length {
					h.Set("Content-Length", fmt.Sprint(c.head+c.tail))
				}
				body := &lateTailBody{head: c.head, tail: c.tail, pause: 600 * time.Millisecond}
				return &http.Response{StatusCode: 200, Header: h, Body: body, ContentLength: int64(c.head + c.tail), Request: r}, nil
			}
			ts := httptest.NewServer(e.srv.Handler())
			defer ts.Close()
			conn := rawGet(t, ts, "/hello.php")
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, _ := io.ReadAll(conn)
			m := waitHelloLine(t, e)
			if m["level"] != "WARN" || !strings.Contains(fmt.Sprint(m["error"]), "timed out") {
				t.Errorf("client got %d bytes; the response logged as %v", len(got), m)
			}
		})
	}
}

// TestFinalWriteOfSmallPageCutIsLogged: a response under net/http's 2 KiB
// buffer without a Content-Length (most small PHP pages: PHP declares
// none), an empty one (a redirect) and a small page compressed (which
// loses its length) went out whole in net/http's write after the handler,
// where net/http gives it its Content-Length; when that write failed
// (SESSIONGATE_WRITE_TIMEOUT passed while PHP finished), the log said 200
// with every byte, at info level. The gateway now holds such a response
// and sends it, with the same Content-Length, before the access line.
func TestFinalWriteOfSmallPageCutIsLogged(t *testing.T) {
	for _, c := range []struct {
		name       string
		status     int
		head, tail int
		method     string
		gzip       bool
	}{
		{"small page", 200, 100, 100, "GET", false},
		{"empty redirect", 302, 0, 0, "GET", false},
		{"compressed", 200, 600, 600, "GET", true},
		{"HEAD", 200, 100, 100, "HEAD", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *config.Config) { cfg.WriteTimeout = 300 * time.Millisecond })
			e.php.respond = func(r *http.Request) (*http.Response, error) {
				h := http.Header{"Content-Type": {"text/html"}}
				if c.status == 302 {
					h.Set("Location", "/elsewhere")
				}
				body := &lateTailBody{head: c.head, tail: c.tail, pause: 600 * time.Millisecond}
				return &http.Response{StatusCode: c.status, Header: h, Body: body, ContentLength: int64(c.head + c.tail), Request: r}, nil
			}
			ts := httptest.NewServer(e.srv.Handler())
			defer ts.Close()
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := c.method + " /hello.php HTTP/1.1\r\nHost: x\r\n"
			if c.gzip {
				req += "Accept-Encoding: gzip\r\n"
			}
			if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, _ := io.ReadAll(conn)
			m := waitHelloLine(t, e)
			if m["level"] != "WARN" || !strings.Contains(fmt.Sprint(m["error"]), "timed out") {
				t.Errorf("client got %q; the response logged as %v", got, m)
			}
		})
	}
}

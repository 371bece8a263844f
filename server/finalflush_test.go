package server

import (
	"fmt"
	"io"
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

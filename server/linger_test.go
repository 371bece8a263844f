package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/internal/testnet"
)

// TestLingerAfterAnswerWithBodyUnread: a client that sends its whole body
// before it reads gets the answer the gateway gave without reading the
// body (a 413 at once or once over the limit, PHP answering without
// reading it), not a reset. The body is far more than loopback's socket
// buffers hold.
func TestLingerAfterAnswerWithBodyUnread(t *testing.T) {
	const size = 32 << 20
	e := newEnv(t, func(c *config.Config) { c.MaxBody = 1 << 20 })
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("X-Skip-Body") != "" {
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {"2"}}, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
		}
		// As fcgi.Transport does: read, then close on the error.
		_, err := io.Copy(io.Discard, r.Body)
		r.Body.Close()
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &fcgi.Error{Status: http.StatusRequestEntityTooLarge, Op: "read request body", Err: err}
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name    string
		head    string
		size    int
		chunked bool
		want    int
	}{
		{"Content-Length over the limit", fmt.Sprintf("POST /hello.php HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size), size, false, 413},
		{"chunked, over the limit once read", "POST /hello.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", size, true, 413},
		{"PHP answers without reading it", "POST /hello.php HTTP/1.1\r\nHost: x\r\nX-Skip-Body: 1\r\nTransfer-Encoding: chunked\r\n\r\n", size, true, 200},
	} {
		if status, err := testnet.SendBodyBeforeReading(addr, tc.head, tc.size, tc.chunked); status != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, status, err, tc.want)
		}
	}
}

// TestLingerIsBounded: what comes after the answer is read for lingerTime
// at most, and not past lingerTimeout of silence. The access line is
// written before the lingering, with the answer's time.
func TestLingerIsBounded(t *testing.T) {
	// closedAfter sends head to a server that lingers for lingerTime and
	// lingerTimeout, then keeps writing a byte every 20 ms while trickle,
	// and returns the answer's status and how long after it the
	// connection closed.
	closedAfter := func(lingerTime, lingerTimeout time.Duration, head string, trickle bool) (int, time.Duration) {
		t.Helper()
		e := newEnv(t, func(c *config.Config) { c.MaxBody = 1 << 10 })
		e.srv.lingerTime, e.srv.lingerTimeout = lingerTime, lingerTimeout
		srv := httptest.NewServer(e.srv.Handler())
		defer srv.Close()
		c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, head)
		stop := make(chan struct{})
		defer close(stop)
		if trickle {
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
						if _, err := c.Write([]byte("t")); err != nil {
							return
						}
					}
				}
			}()
		}
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		io.Copy(io.Discard, res.Body)
		answered := time.Now()
		// The answer goes out just before its access line.
		for deadline := time.Now().Add(2 * time.Second); e.logs.String() == "" && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if log := e.lastLog(t); log["status"] != float64(413) || log["duration_ms"].(float64) > 1000 {
			t.Errorf("access line not written before the lingering, or with its time: %v", log)
		}
		// The connection's end: EOF, or a reset for a trickle cut.
		br.ReadByte()
		return res.StatusCode, time.Since(answered)
	}
	head := "POST /hello.php HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
	// Bounds far apart, and wide: the client reads the answer a moment
	// after the lingering starts, longer on a loaded machine.
	if status, d := closedAfter(2*time.Second, 300*time.Millisecond, head, true); status != 413 || d < 1200*time.Millisecond || d > 6*time.Second {
		t.Errorf("a body that keeps coming: %d, closed %v after the answer, want about lingerTime (2s)", status, d)
	}
	if status, d := closedAfter(2*time.Second, 300*time.Millisecond, head, false); status != 413 || d < 100*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("a body that stops: %d, closed %v after the answer, want about lingerTimeout (300ms)", status, d)
	}
}

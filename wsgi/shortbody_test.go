package wsgi

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestBodyEndingShortIs400: a client that ends its connection
// inside its body's framing (short of its Content-Length, inside a chunk
// or the trailer) broke the request: 400, as README's access_log row says,
// not 499 "client left", which net/http's cancelling of the request's
// context when the connection's read failed made of it. Over a real
// server, the client half-closing the connection after what it sent; a
// body read ahead or one passed on as it comes.
func TestRequestBodyEndingShortIs400(t *testing.T) {
	e := newEnv(t, envOpts{})
	var calls atomic.Int32
	e.app.handle = func(_ http.ResponseWriter, r *http.Request, _ seen) (answer, bool) {
		// Not the gateway's check of the backend, nor the large body,
		// which goes on as it comes (the backend sees it cut).
		if r.Method == "POST" && r.ContentLength <= memBodyLimit {
			calls.Add(1)
		}
		return answer{}, true
	}
	for name, req := range map[string]string{
		"short of content-length": "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
		"short of a streamed one": "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("a", memBodyLimit+10),
		"inside a chunk":          "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"inside a chunk length":   "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1",
		"inside the trailer":      "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1",
	} {
		c, err := net.Dial("tcp", e.gw.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(b), "HTTP/1.1 400 ") {
			t.Errorf("body %s: answer %.40q, want 400", name, b)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("Django saw %d requests", n)
	}
}

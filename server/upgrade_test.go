package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestProtocolSwitchLoggedAs101: a WebSocket the Django proxy passes on
// (httputil.ReverseProxy writes the 101 on the hijacked connection, past
// the server's writer) is logged and observed as the 101 it was, not as a
// 200 that was never sent.
func TestProtocolSwitchLoggedAs101(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
		io.Copy(c, c) // echo until the client closes
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	var o observations
	e := newEnv(t, nil, WithObserver(o.observe), WithMount("django", []string{"/ws/"}, httputil.NewSingleHostReverseProxy(u)))
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	c := rawRequestConn(t, srv, "GET /ws/chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, "101") {
		t.Fatalf("status line %q %v", line, err)
	}
	c.Close()
	var got []observed
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = o.all(); len(got) > 0 {
			break
		}
	}
	if len(got) != 1 || got[0].status != 101 {
		t.Errorf("observations %+v, want one 101", got)
	}
	if log := e.lastLog(t); log["status"] != float64(101) {
		t.Errorf("log: %v", log)
	}
}

func rawRequestConn(t *testing.T, srv *httptest.Server, req string) io.ReadWriteCloser {
	t.Helper()
	c2, err := (&net.Dialer{}).Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Close() })
	if _, err := io.WriteString(c2, req); err != nil {
		t.Fatal(err)
	}
	return c2
}

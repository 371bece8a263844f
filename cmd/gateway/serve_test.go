package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// SESSIONGATE_MAX_HEADER_BYTES is the largest request line plus headers.
// net/http lets 4 KiB more through than its MaxHeaderBytes, so a request
// up to 4 KiB over the configured limit was served.
func TestMaxHeaderBytesIsTheLimit(t *testing.T) {
	const limit = 8 << 10
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.MaxHeaderBytes = serverMaxHeaderBytes(limit)
	srv.Start()
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		size int
		want string
	}{
		{limit, "HTTP/1.1 200 "},
		{limit + 1, "HTTP/1.1 431 "},
		{limit + 4000, "HTTP/1.1 431 "},
	} {
		head := "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: "
		req := head + strings.Repeat("a", tc.size-len(head)-4) + "\r\n\r\n"
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		got, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(got), tc.want) {
			t.Errorf("%d bytes of request line and headers with a limit of %d: got %.40q, want %q", len(req), limit, got, tc.want)
		}
	}
	// The smallest setting must not turn into net/http's default (1 MiB).
	if got := serverMaxHeaderBytes(4 << 10); got <= 0 || got > 4<<10 {
		t.Errorf("serverMaxHeaderBytes(4k) = %d", got)
	}
}

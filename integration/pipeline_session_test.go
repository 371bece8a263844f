package integration

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSessionPipelined: requests of one session pipelined on one
// connection, each sent before the answer to the one before: every one
// sees the session change the one before made, also a change PHP made
// after 1 MiB of output, which the client could read before PHP saved it.
func TestSessionPipelined(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	addr := strings.TrimPrefix(s.gws[0].URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req := func(target string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: x\r\nCookie: sessionid=" + ck + "\r\n\r\n"
	}
	var all string
	const n = 10
	for i := 0; i < n; i++ {
		all += req("/incr.php?k=n")
	}
	all += req("/late_write.php") + req("/get.php")
	go io.WriteString(c, all)
	br := bufio.NewReader(c)
	for i := 1; i <= n+2; i++ {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		switch {
		case i <= n && string(b) != strconv.Itoa(i):
			t.Errorf("pipelined incr %d: %d %q, want %d", i, res.StatusCode, b, i)
		case i == n+2 && (!strings.Contains(string(b), `"n":10`) || !strings.Contains(string(b), `"late":"yes"`)):
			t.Errorf("pipelined get after the writes: %d %q", res.StatusCode, b)
		}
	}
}

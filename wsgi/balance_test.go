package wsgi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// A replayable request whose body went out on a kept-alive connection the
// only backend then closed without answering, and whose new connection was
// refused, is a 502. The balancer once lost that error while it re-read the
// body for a next backend there was not, and returned neither a response
// nor an error.
func TestReplayedBodyToADeadBackendIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for n := 1; ; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if n == 2 {
				ln.Close() // the retry's new connection is refused
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}()
	e := newEnv(t, envOpts{backends: func(http.Handler) []string {
		return []string{"http://" + ln.Addr().String()}
	}})
	if res, _, _ := e.do("GET", "/a/", "", nil); res.StatusCode != 200 {
		t.Fatalf("warm-up: %d", res.StatusCode)
	}
	// No GetBody on the client's side: Go's client would send the PUT
	// again itself on a broken connection, hiding what the gateway did.
	res, _, _ := e.do("PUT", "/a/", "", io.NopCloser(strings.NewReader("payload")), "Idempotency-Key", "k1")
	if res.StatusCode != 502 {
		t.Fatalf("status %d, want 502\n%s", res.StatusCode, e.logs)
	}
}

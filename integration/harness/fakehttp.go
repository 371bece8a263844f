package harness

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// FakeHTTPAnswer is what a FakeHTTP sends for one request: Raw, byte for
// byte, then Later after LaterDelay (when not nil), then the connection is
// closed when Close is set, else the next request is read from it.
type FakeHTTPAnswer struct {
	Raw        []byte
	Later      []byte
	LaterDelay time.Duration
	Close      bool
	// Early sends the answer before the request's body is read, then
	// closes the connection (an upload refused at once).
	Early bool
}

// FakeHTTP is a scripted HTTP/1.1 server: it reads whole requests (head and
// a Content-Length or chunked body) and answers each with the raw bytes its
// script gives, framed or misframed as they are. It stands for the WSGI
// servers that are not gunicorn (uWSGI's http, waitress, a proxy in
// between, a worker killed mid-answer), which front servers are compared
// against.
type FakeHTTP struct {
	*fakeServer

	script func(*http.Request) FakeHTTPAnswer
}

// StartFakeHTTP listens on a free loopback port; t.Cleanup closes it and
// every connection it holds.
func StartFakeHTTP(t testing.TB, script func(*http.Request) FakeHTTPAnswer) *FakeHTTP {
	t.Helper()
	f := &FakeHTTP{fakeServer: listenFake(t, "HTTP"), script: script}
	f.serve(f.serveConn)
	return f
}

// serveConn answers the requests of one connection as the script says.
func (f *FakeHTTP) serveConn(c net.Conn, br *bufio.Reader) {
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		a := f.script(req)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if a.Early {
			c.Write(a.Raw)
			// Closed with the body unread, but not at once:
			// a reset would destroy the answer in flight.
			c.(*net.TCPConn).CloseWrite()
			time.Sleep(200 * time.Millisecond)
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		if _, err := c.Write(a.Raw); err != nil {
			return
		}
		if a.Later != nil {
			time.Sleep(a.LaterDelay)
			if _, err := c.Write(a.Later); err != nil {
				return
			}
		}
		if a.Close {
			return
		}
	}
}

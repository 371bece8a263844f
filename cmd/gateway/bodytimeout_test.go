package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SESSIONGATE_READ_TIMEOUT bounds the wait for each part of a body, not
// the whole body; a body the handler leaves unread is bounded too.
func TestBodyReadTimeoutPerRead(t *testing.T) {
	const d = 300 * time.Millisecond
	srv := &http.Server{Handler: bodyReadTimeout(d, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/unread" {
			io.WriteString(w, "not read")
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusRequestTimeout)
			return
		}
		io.WriteString(w, "len="+strconv.Itoa(len(b)))
	})), ReadHeaderTimeout: time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	send := func(path string, gap time.Duration, parts ...string) string {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "+strconv.Itoa(n)+"\r\n\r\n")
		for _, p := range parts {
			time.Sleep(gap)
			if _, err := io.WriteString(c, p); err != nil {
				break
			}
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if resp := send("/", 200*time.Millisecond, "ab", "cd", "ef", "gh"); !strings.HasSuffix(resp, "len=8") {
		t.Errorf("body sent over 0.8 s, parts 0.2 s apart, with a 0.3 s timeout: %q, want it read whole", resp)
	}
	if resp := send("/", 600*time.Millisecond, "ab", "cd"); !strings.HasPrefix(resp, "HTTP/1.1 408 ") {
		t.Errorf("body stalled for 0.6 s with a 0.3 s timeout: %q, want 408", resp)
	}
	// The handler answers without reading; net/http then reads the rest
	// to keep the connection, which must not wait for ever.
	start := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasSuffix(string(b), "not read") {
		t.Errorf("unread body never sent: %q, %v after %v; want the answer and the connection closed", b, err, time.Since(start).Round(time.Millisecond))
	}
}

// Once the body is read, the client's connection is left to net/http,
// which watches it for the client going away: a deadline set then would
// end that watch, and cancel the request of a handler that outlives it
// (here PHP working for longer than SESSIONGATE_READ_TIMEOUT after the
// upload).
func TestBodyReadTimeoutEndsWithTheBody(t *testing.T) {
	const d = 200 * time.Millisecond
	srv := &http.Server{Handler: bodyReadTimeout(d, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		r.Body.Read(make([]byte, 1)) // after EOF, as some readers do
		select {
		case <-r.Context().Done():
			io.WriteString(w, "canceled")
		case <-time.After(3 * d):
			io.WriteString(w, "done")
		}
	}))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(b), "done") {
		t.Errorf("handler working after the body: %q, want it not canceled", b)
	}
}

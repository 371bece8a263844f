package fcgi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/monoclock"
	"github.com/sessiongate/sessiongate/internal/testfd"
	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/internal/testnet"
)

func TestHello(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{}, srv.Addr())
	for i := 0; i < 5; i++ {
		resp, body, err := roundTrip(t, tr, newReq(nil, "GET", "/?x=1", nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || body != "hello" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
		}
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests, want 1 (keep-alive)", n)
	}
	reqs := srv.Requests()
	if !reqs[0].KeepConn || reqs[4].N != 5 {
		t.Fatalf("keep-conn %v, 5th request was #%d on its connection", reqs[0].KeepConn, reqs[4].N)
	}
	if st := tr.Stats()[0]; st.Open != 1 || st.Idle != 1 || st.Busy != 0 || !st.Healthy {
		t.Fatalf("stats %+v", st)
	}
}

func TestNoScript(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{}, srv.Addr())
	_, err := tr.RoundTrip(httptest.NewRequest("GET", "/", nil))
	if !errors.Is(err, ErrNoScript) || StatusOf(err) != 500 {
		t.Fatalf("err = %v (status %d), want ErrNoScript/500", err, StatusOf(err))
	}
}

func TestNewTransportValidates(t *testing.T) {
	for _, o := range []Options{
		{},
		{Backends: []string{"nohostport"}},
		{Backends: []string{"unix:"}},
		{Backends: []string{"127.0.0.1:9000", "127.0.0.1:9000"}},
		{Backends: []string{"127.0.0.1:9000"}, MaxConnsPerBackend: -1},
		{Backends: []string{"127.0.0.1:9000"}, ReadTimeout: -1},
		{Backends: []string{"127.0.0.1:9000"}, MaxBody: -1},
	} {
		if _, err := NewTransport(o); err == nil {
			t.Errorf("NewTransport(%+v) accepted", o)
		}
	}
	tr, err := NewTransport(Options{Backends: []string{"127.0.0.1:9000", "unix:/run/php.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	if tr.o.MaxConnsPerBackend != 8 || tr.o.DialTimeout != 3*time.Second || tr.o.MaxBody != 1<<20 {
		t.Fatalf("defaults not applied: %+v", tr.o)
	}
}

func TestResponseStatusAndHeaders(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		switch r.Params["QUERY_STRING"] {
		case "404":
			respond(c, "Status: 404 Not Found\r\nContent-Type: text/html\r\n", "nope")
		case "redirect":
			respond(c, "Location: /login\r\n", "")
		case "malformed":
			respond(c, "this is not a header\r\n", "x")
		case "noheader":
			c.Stdout("Content-Type: text/html\r\n")
			c.End()
		case "cl":
			respond(c, "Content-Length: 3\r\n", "abc")
		case "hop":
			respond(c, "Connection: close\r\nKeep-Alive: timeout=9\r\nUpgrade: h2c\r\nX-Kept: 1\r\n", "ok")
		}
		return true
	})
	tr, _ := newTransport(t, Options{}, srv.Addr())
	resp, body, err := roundTrip(t, tr, newReq(nil, "GET", "/?404", nil, nil))
	if err != nil || resp.StatusCode != 404 || body != "nope" || resp.Header.Get("Status") != "" {
		t.Fatalf("404: %v %v %q %v", err, resp.StatusCode, body, resp.Header)
	}
	resp, _, err = roundTrip(t, tr, newReq(nil, "GET", "/?redirect", nil, nil))
	if err != nil || resp.StatusCode != 302 || resp.Header.Get("Location") != "/login" {
		t.Fatalf("redirect: %v %+v", err, resp)
	}
	resp, body, err = roundTrip(t, tr, newReq(nil, "GET", "/?cl", nil, nil))
	if err != nil || resp.ContentLength != 3 || body != "abc" {
		t.Fatalf("content-length: %v %+v", err, resp)
	}
	// What PHP says about the connection is the front server's business.
	resp, body, err = roundTrip(t, tr, newReq(nil, "GET", "/?hop", nil, nil))
	if err != nil || body != "ok" || resp.Header.Get("X-Kept") != "1" ||
		resp.Header.Get("Connection") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Upgrade") != "" {
		t.Fatalf("hop-by-hop: %v %q %v", err, body, resp.Header)
	}
	for _, q := range []string{"malformed", "noheader"} {
		_, err := tr.RoundTrip(newReq(nil, "GET", "/?"+q, nil, nil))
		if StatusOf(err) != 502 {
			t.Fatalf("%s: err %v, status %d, want 502", q, err, StatusOf(err))
		}
	}
}

// Records with padding, and a response dribbled one byte per TCP write,
// parse the same as one large write.
func TestRecordsPaddingAndSplitReads(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Pad = true
		var buf bytes.Buffer
		old := c.bw
		c.bw.Reset(&buf)
		c.Stderr("PHP message: one")
		c.Stdout("Content-Type: text/plain\r\nX-A: 1\r\n\r\nbo")
		c.Stderr("PHP message: two")
		c.Stdout("dy")
		c.End()
		c.bw.Flush()
		old.Reset(c.nc)
		for _, b := range buf.Bytes() {
			c.nc.Write([]byte{b})
		}
		return true
	})
	tr, _ := newTransport(t, Options{}, srv.Addr())
	var mu sync.Mutex
	var msgs []string
	s := *testScript
	s.OnStderr = func(m []byte) []byte { mu.Lock(); msgs = append(msgs, string(m)); mu.Unlock(); return nil }
	for i := 0; i < 3; i++ {
		msgs = nil
		resp, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, &s))
		if err != nil {
			t.Fatal(err)
		}
		if body != "body" || resp.Header.Get("X-A") != "1" {
			t.Fatalf("body %q header %v", body, resp.Header)
		}
		if strings.Join(msgs, "|") != "PHP message: one|PHP message: two" {
			t.Fatalf("stderr %q", msgs)
		}
	}
	if srv.accepted.Load() != 1 {
		t.Fatalf("connection not reused: %d dials", srv.accepted.Load())
	}
}

func TestProtocolGarbage(t *testing.T) {
	cases := map[string][]byte{
		"bad version":     {2, typeStdout, 0, 1, 0, 0, 0, 0},
		"wrong id":        {1, typeStdout, 0, 7, 0, 0, 0, 0},
		"unknown type":    {1, 42, 0, 1, 0, 0, 0, 0},
		"short end":       {1, typeEndRequest, 0, 1, 0, 2, 0, 0, 0, 0},
		"overloaded":      {1, typeEndRequest, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, statusOverloaded, 0, 0, 0},
		"truncated head":  {1, typeStdout, 0},
		"params from srv": {1, typeParams, 0, 1, 0, 0, 0, 0},
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
				c.Raw(raw)
				c.Flush()
				time.Sleep(20 * time.Millisecond)
				return false
			})
			tr, _ := newTransport(t, Options{}, srv.Addr())
			_, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
			if StatusOf(err) != 502 {
				t.Fatalf("err %v status %d, want 502", err, StatusOf(err))
			}
			if st := tr.Stats()[0]; st.Open != 0 {
				t.Fatalf("bad connection kept: %+v", st)
			}
			if len(srv.Requests()) != 1 {
				t.Fatalf("request sent %d times", len(srv.Requests()))
			}
		})
	}
}

// N+1 concurrent requests with MaxConnsPerBackend N never open more than N
// connections; all succeed by waiting for a free one.
func TestPoolCap(t *testing.T) {
	const max = 3
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		time.Sleep(30 * time.Millisecond)
		respond(c, "Content-Type: text/plain\r\n", "ok")
		return true
	})
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: max}, srv.Addr())
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	sawWaiting := false
	var mu sync.Mutex
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
			if err == nil && body != "ok" {
				err = errors.New("body " + body)
			}
			errs <- err
		}()
	}
	go func() {
		for i := 0; i < 50; i++ {
			st := tr.Stats()[0]
			mu.Lock()
			if st.Waiting > 0 {
				sawWaiting = true
			}
			mu.Unlock()
			if st.Open > max {
				errs <- errors.New("Stats shows more open conns than the cap")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := srv.maxOpen.Load(); m > max {
		t.Fatalf("server saw %d concurrent connections, cap is %d", m, max)
	}
	if srv.accepted.Load() > max {
		t.Fatalf("%d dials for a pool of %d healthy connections", srv.accepted.Load(), max)
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawWaiting {
		t.Log("note: no request observed waiting (timing)")
	}
}

// A caller waiting for a slot gives up with its context (499) or after
// ReadTimeout (504), without leaking the slot.
func TestPoolWaitBounded(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		<-release
		respond(c, "", "ok")
		return true
	})
	// The read timeout also bounds the wait: the cancel must come first,
	// so it comes as soon as the second request waits, not after a sleep
	// that a loaded machine could stretch past the timeout (a 504).
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: 1, ReadTimeout: time.Second}, srv.Addr())
	done := make(chan error, 1)
	go func() {
		_, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
		done <- err
	}()
	waitFor(t, "first request busy", func() bool { return tr.Stats()[0].Busy == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for end := time.Now().Add(10 * time.Second); tr.Stats()[0].Waiting == 0 && time.Now().Before(end); {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := tr.RoundTrip(newReq(ctx, "GET", "/", nil, nil))
	if StatusOf(err) != 499 {
		t.Fatalf("canceled wait: %v status %d", err, StatusOf(err))
	}
	// ReadTimeout also bounds the wait. The first request itself times out
	// reading (its handler is blocked), which frees the slot.
	err = <-done
	if StatusOf(err) != 504 {
		t.Fatalf("blocked first request: %v status %d, want 504", err, StatusOf(err))
	}
	close(release)
	if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || body != "ok" {
		t.Fatalf("after release: %v %q", err, body)
	}
	if st := tr.Stats()[0]; st.Open > 1 || st.Waiting != 0 {
		t.Fatalf("slot leaked: %+v", st)
	}
}

// php-fpm recycling workers (pm.max_requests): the connection is closed
// after a response. No request fails, on either path of the pool: a
// streamed body (larger than memBodyLimit, so it could not be sent twice)
// takes a connection only after checking that php-fpm kept it open; a GET,
// like any request held in memory, is sent without that check, fails to read
// (the close arrived while the connection sat in the pool) and is sent again
// on a fresh connection.
func TestWorkerRecycledBetweenRequests(t *testing.T) {
	for _, method := range []string{"POST", "GET"} {
		t.Run(method, func(t *testing.T) {
			srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
				respond(c, "", "ok")
				return r.N < 2 // close after the 2nd request on each connection
			})
			tr, _ := newTransport(t, Options{MaxConnsPerBackend: 2, ReadTimeout: 5 * time.Second}, srv.Addr())
			for i := 0; i < 10; i++ {
				var body io.Reader
				if method == "POST" {
					body = strings.NewReader("k=" + strings.Repeat("v", memBodyLimit))
				}
				start := time.Now()
				if _, got, err := roundTrip(t, tr, newReq(nil, method, "/", body, nil)); err != nil || got != "ok" {
					t.Fatalf("request %d: %v %q after %v", i, err, got, time.Since(start))
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("request %d took %v", i, d)
				}
				// Let the close of a retired connection arrive, as between
				// real requests: waited for, since a fake server goroutine
				// descheduled for a few milliseconds on a loaded machine
				// used to close it only after the next streamed body went
				// out on it, which then failed.
				if reqs := srv.Requests(); reqs[len(reqs)-1].N == 2 {
					waitFor(t, "the retired connection closed", func() bool { return srv.open.Load() == 0 })
				}
			}
			if n := len(srv.Requests()); n != 10 {
				t.Fatalf("server saw %d requests for 10 (a retry of one it had, or a loss)", n)
			}
		})
	}
}

// A reused connection that dies before any response byte is retried once
// on a fresh connection: the request never produced output.
func TestRetryWhenNothingReceived(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		retire bool // the worker retires (reads on) rather than dies
		resent bool
	}{
		{"POST, retiring worker", "POST", true, true},
		{"GET, retiring worker", "GET", true, true},
		{"GET, dead worker", "GET", false, true},
		// PUT and DELETE are idempotent (RFC 9110 section 9.2.2), and
		// nginx sends them again too: the worker may have been reloaded
		// (SIGUSR2) or recycled without reading them.
		{"PUT, dead worker", "PUT", false, true},
		{"DELETE, dead worker", "DELETE", false, true},
		// The script may have run: never twice.
		{"POST, dead worker", "POST", false, false},
		{"PATCH, dead worker", "PATCH", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
				if r.N == 2 {
					if tc.retire {
						c.Retire()
					}
					return false // no answer at all
				}
				respond(c, "", "ok")
				return true
			})
			tr, _ := newTransport(t, Options{}, srv.Addr())
			if _, got, err := roundTrip(t, tr, newReq(nil, tc.method, "/", strings.NewReader("a=1"), nil)); err != nil || got != "ok" {
				t.Fatalf("request 1: %v %q", err, got)
			}
			_, got, err := roundTrip(t, tr, newReq(nil, tc.method, "/", strings.NewReader("a=1"), nil))
			reqs := srv.Requests()
			if !tc.resent {
				if StatusOf(err) != 502 || len(reqs) != 2 {
					t.Fatalf("%v %q, server saw %d requests; want 502 and no resend", err, got, len(reqs))
				}
				return
			}
			if err != nil || got != "ok" {
				t.Fatalf("request 2: %v %q", err, got)
			}
			if len(reqs) != 3 || string(reqs[2].Stdin) != "a=1" || reqs[2].N != 1 {
				t.Fatalf("want the 2nd request resent once on a fresh connection; server saw %d", len(reqs))
			}
		})
	}
}

// Never retried: output (even stderr) already came back, the connection was
// fresh, or a streamed body was already consumed.
func TestNoRetryWhenUnsafe(t *testing.T) {
	t.Run("after stderr", func(t *testing.T) {
		srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
			if r.N == 2 {
				c.Stderr("PHP message: dying")
				return false
			}
			respond(c, "", "ok")
			return true
		})
		tr, _ := newTransport(t, Options{}, srv.Addr())
		roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
		_, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
		if StatusOf(err) != 502 || len(srv.Requests()) != 2 {
			t.Fatalf("err %v, server saw %d requests; want 502 and no retry", err, len(srv.Requests()))
		}
	})
	t.Run("fresh connection", func(t *testing.T) {
		srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool { return false })
		tr, _ := newTransport(t, Options{}, srv.Addr())
		_, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
		if StatusOf(err) != 502 || len(srv.Requests()) != 1 {
			t.Fatalf("err %v, server saw %d requests; want 502 and no retry", err, len(srv.Requests()))
		}
	})
	t.Run("fresh connection reset while sending", func(t *testing.T) {
		// A worker that takes the params and ends (a script that never
		// reads a JSON body, then exits or dies) resets the connection
		// while the body is still being sent: the script may have run, so
		// a new connection's failed write is never sent again, however
		// replayable the body is.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var accepted atomic.Int64
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				var b [headerLen]byte
				io.ReadFull(nc, b[:])
				nc.(*net.TCPConn).SetLinger(0) // close with a reset
				nc.Close()
			}
		}()
		tr, _ := newTransport(t, Options{MaxBody: 64 << 20, BufferBodies: true}, ln.Addr().String())
		big := strings.Repeat("z", 32<<20) // far more than the socket buffers hold
		_, err = tr.RoundTrip(newReq(nil, "POST", "/", strings.NewReader(big), nil))
		if StatusOf(err) != 502 || accepted.Load() != 1 {
			t.Fatalf("err %v, %d connections; want 502 and no resend", err, accepted.Load())
		}
	})
	t.Run("streamed body consumed", func(t *testing.T) {
		srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
			if r.N == 2 {
				return false
			}
			respond(c, "", "ok")
			return true
		})
		tr, _ := newTransport(t, Options{MaxBody: 1 << 20}, srv.Addr())
		roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
		big := strings.Repeat("z", 200<<10) // streamed: above the in-memory size
		_, err := tr.RoundTrip(newReq(nil, "POST", "/", strings.NewReader(big), nil))
		if StatusOf(err) != 502 || len(srv.Requests()) != 2 {
			t.Fatalf("err %v, server saw %d requests; want 502 and no retry", err, len(srv.Requests()))
		}
	})
}

// With BufferBodies a large body is read whole (into a temp file) before a
// connection is taken, so it too is resent on a fresh connection when
// php-fpm had closed the kept-alive one.
func TestRetryLargeBody(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		if r.N == 2 {
			c.Retire()
			return false
		}
		respond(c, "", "ok")
		return true
	})
	tr, _ := newTransport(t, Options{MaxBody: 1 << 20, BufferBodies: true}, srv.Addr())
	roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
	big := strings.Repeat("z", 200<<10) // above the in-memory size
	if _, got, err := roundTrip(t, tr, newReq(nil, "POST", "/", strings.NewReader(big), nil)); err != nil || got != "ok" {
		t.Fatalf("%v %q", err, got)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || string(reqs[2].Stdin) != big || reqs[2].N != 1 {
		t.Fatalf("want the POST resent once on a fresh connection; server saw %d", len(reqs))
	}
}

// A worker dying mid-body: Read returns an error, never io.EOF, and a log
// line names the script.
func TestTruncatedBody(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stdout("Content-Type: text/plain\r\n\r\npartial")
		c.Flush()
		time.Sleep(20 * time.Millisecond)
		return false
	})
	tr, lb := newTransport(t, Options{}, srv.Addr())
	resp, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
	if err == nil || errors.Is(err, io.EOF) || StatusOf(err) != 502 {
		t.Fatalf("read error %v (status %d), want a 502 error", err, StatusOf(err))
	}
	if resp.StatusCode != 200 || body != "partial" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if !strings.Contains(lb.String(), "cut short") || !strings.Contains(lb.String(), "/index.php") {
		t.Fatalf("no log line: %s", lb.String())
	}
	if st := tr.Stats()[0]; st.Open != 0 {
		t.Fatalf("dead connection kept: %+v", st)
	}
}

// Through httputil.ReverseProxy the client never sees a clean response when
// the worker dies mid-body.
func TestReverseProxyAbortsTruncatedResponse(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stdout("Content-Type: text/plain\r\n\r\n" + strings.Repeat("a", 1000))
		c.Flush()
		time.Sleep(20 * time.Millisecond)
		return false
	})
	tr, _ := newTransport(t, Options{}, srv.Addr())
	proxy := &httputil.ReverseProxy{
		Transport:     tr,
		FlushInterval: -1,
		Rewrite:       func(pr *httputil.ProxyRequest) {},
		ErrorLog:      nil,
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxy.ServeHTTP(w, r.WithContext(WithScript(r.Context(), testScript)))
	}))
	defer front.Close()
	resp, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	if err == nil {
		t.Fatal("client read a clean response from a truncated upstream")
	}
}

// Each Read returns STDOUT as soon as a record arrives.
func TestBodyStreams(t *testing.T) {
	proceed := make(chan struct{})
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stdout("Content-Type: text/plain\r\n\r\na")
		c.Flush()
		<-proceed
		c.Stdout("b")
		c.End()
		return true
	})
	tr, _ := newTransport(t, Options{}, srv.Addr())
	resp, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 100)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "a" {
		t.Fatalf("first read %q %v", buf[:n], err)
	}
	close(proceed)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "b" {
		t.Fatalf("rest %q %v", rest, err)
	}
	if tr.Stats()[0].Idle != 1 {
		t.Fatal("connection not back in the pool after END_REQUEST")
	}
}

// Client stops reading: the connection is discarded (php-fpm sees the
// close), never returned with unread records.
func TestEarlyClose(t *testing.T) {
	closed := make(chan struct{})
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stdout("Content-Type: text/plain\r\n\r\nfirst")
		c.Flush()
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.nc.Read(make([]byte, 1)); err != nil {
			close(closed)
		}
		return false
	})
	tr, _ := newTransport(t, Options{}, srv.Addr())
	resp, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("server did not see the connection close")
	}
	if st := tr.Stats()[0]; st.Open != 0 {
		t.Fatalf("%+v", st)
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after close succeeded")
	}
}

func TestCancel(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		if r.Params["QUERY_STRING"] == "body" {
			c.Stdout("Content-Type: text/plain\r\n\r\nx")
			c.Flush()
		}
		// Until the client closes, once the answer began; before it, the
		// gateway keeps the connection until the answer (linger), which
		// this one never begins: 1 s.
		wait := 5 * time.Second
		if r.Params["QUERY_STRING"] != "body" {
			wait = time.Second
		}
		c.nc.SetReadDeadline(time.Now().Add(wait))
		c.nc.Read(make([]byte, 1))
		return false
	})
	tr, _ := newTransport(t, Options{}, srv.Addr())

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := tr.RoundTrip(newReq(ctx, "GET", "/?header", nil, nil))
	if StatusOf(err) != 499 || time.Since(start) > 2*time.Second {
		t.Fatalf("cancel during header: %v status %d after %v", err, StatusOf(err), time.Since(start))
	}

	ctx, cancel = context.WithCancel(context.Background())
	resp, err := tr.RoundTrip(newReq(ctx, "GET", "/?body", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if StatusOf(err) != 499 {
		t.Fatalf("cancel during body: %v status %d", err, StatusOf(err))
	}
	waitFor(t, "slots freed", func() bool { return tr.Stats()[0].Open == 0 })
}

// A kept-alive connection that sat idle for longer than ReadTimeout still
// serves the next request: the deadline of its last read has passed, and
// the next request must get a fresh one.
func TestIdleLongerThanReadTimeout(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{ReadTimeout: 100 * time.Millisecond}, srv.Addr())
	helloTwice(t, tr, 250*time.Millisecond)
	if n := srv.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want the kept-alive one reused", n)
	}
}

func TestTimeouts(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		if r.Params["QUERY_STRING"] == "body" {
			c.Stdout("Content-Type: text/plain\r\n\r\nx")
			c.Flush()
		}
		time.Sleep(time.Second)
		respond(c, "", "late")
		return true
	})
	tr, _ := newTransport(t, Options{ReadTimeout: 100 * time.Millisecond}, srv.Addr())
	_, err := tr.RoundTrip(newReq(nil, "GET", "/?header", nil, nil))
	if StatusOf(err) != 504 {
		t.Fatalf("slow header: %v status %d", err, StatusOf(err))
	}
	resp, err := tr.RoundTrip(newReq(nil, "GET", "/?body", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if StatusOf(err) != 504 {
		t.Fatalf("slow body: %v status %d", err, StatusOf(err))
	}
}

// deadAddr is a loopback address nothing listens on (any more).
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A blackholed address (no SYN-ACK) fails within DialTimeout as 504; a
// refused port fails at once as 502.
func TestDialFailures(t *testing.T) {
	dead := deadAddr(t)
	tr, _ := newTransport(t, Options{DialTimeout: 200 * time.Millisecond}, dead)
	start := time.Now()
	_, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
	if StatusOf(err) != 502 || time.Since(start) > time.Second {
		t.Fatalf("refused: %v status %d after %v", err, StatusOf(err), time.Since(start))
	}
	if st := tr.Stats()[0]; st.Healthy || st.Open != 0 {
		t.Fatalf("dead backend stats %+v", st)
	}
	if err := tr.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded with php-fpm down")
	}
}

// A php-fpm whose listen queue overflows refuses the connection at once
// ("Resource temporarily unavailable"): 502, as nginx answers, not a 504
// Gateway Timeout sent in a millisecond for a wait that never happened.
// EAGAIN is a net.Error whose Timeout() is true.
func TestListenQueueFullIs502(t *testing.T) {
	tr, _ := newTransport(t, Options{}, "unix:"+testnet.FullUnixListener(t))
	_, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
	if StatusOf(err) != http.StatusBadGateway {
		t.Fatalf("listen queue full: %v (status %d), want 502", err, StatusOf(err))
	}
}

// Over TCP a full listen queue drops the SYN instead: the connect waits,
// and SESSIONGATE_PHP_DIAL_TIMEOUT ends it with 504, as nginx's
// fastcgi_connect_timeout does (the README said 502).
func TestListenQueueFullTCPIs504AfterDialTimeout(t *testing.T) {
	addr := testnet.FullTCPListener(t)
	tr, _ := newTransport(t, Options{DialTimeout: 300 * time.Millisecond}, addr)
	start := time.Now()
	_, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
	if StatusOf(err) != http.StatusGatewayTimeout || time.Since(start) > 2*time.Second {
		t.Fatalf("TCP listen queue full: %v (status %d) after %v, want 504 after the dial timeout", err, StatusOf(err), time.Since(start))
	}
}

// /readyz gives Ping 2 s; a backend whose connect hangs (its listen queue
// full, its host gone behind a firewall that drops packets) must not use
// that time up before the next one is tried. Ping probed the backends one
// after another, so with the first hanging past the readiness check's limit
// (the dial timeout is 3 s by default) the second, healthy one was never
// dialed: /readyz answered 503 for as long as the first hung, and a gateway
// out of rotation gets no traffic that could tell it otherwise.
func TestPingIsNotHeldByAHangingBackend(t *testing.T) {
	hung := testnet.FullTCPListener(t)
	srv := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{}, hung, srv.Addr()) // the default 3 s dial timeout
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		err := tr.Ping(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Ping %d with the second of two backends up: %v after %v", i, err, time.Since(start).Round(time.Millisecond))
		}
	}
}

// With several backends, a dead one is skipped and marked down; the live one
// serves every request.
func TestBackendsFailover(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	dead := deadAddr(t)
	tr, _ := newTransport(t, Options{}, dead, srv.Addr())
	for i := 0; i < 10; i++ {
		if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || body != "hello" {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	st := tr.Stats()
	if st[0].Healthy || !st[1].Healthy {
		t.Fatalf("stats %+v", st)
	}
	if err := tr.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A backend whose connect hangs (its listen queue full, its host gone
// behind a firewall that drops packets) costs one request
// SESSIONGATE_PHP_DIAL_TIMEOUT, which then goes to the next backend, POST
// included (nothing reached PHP); the hung one is marked down, and is
// skipped, as README's fastcgi_pass row says of a dead backend.
func TestBackendsFailoverOnDialTimeout(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	hung := testnet.FullTCPListener(t)
	tr, _ := newTransport(t, Options{DialTimeout: 300 * time.Millisecond}, hung, srv.Addr())
	for i := 0; i < 6; i++ {
		method, body := "GET", io.Reader(nil)
		if i%2 == 1 {
			method, body = "POST", strings.NewReader("a=1")
		}
		if _, got, err := roundTrip(t, tr, newReq(nil, method, "/", body, nil)); err != nil || got != "hello" {
			t.Fatalf("%s %d with the other backend hanging on connect: %v %q", method, i, err, got)
		}
	}
	if st := tr.Stats(); st[0].Healthy {
		t.Errorf("the backend whose connect hangs is still in rotation: %+v", st)
	}
	if n := len(srv.Requests()); n != 6 {
		t.Errorf("the live backend served %d requests, want 6", n)
	}
}

// With every backend down, each request still tries them all (and gets
// 502), but "trying another" is logged when a backend believed up fails,
// not on every request during the back-off: an outage under load wrote it
// once per request, next to the request's own 502 line.
func TestAllBackendsDownLoggedOncePerBackOff(t *testing.T) {
	dir := t.TempDir()
	tr, logs := newTransport(t, Options{}, "unix:"+dir+"/a.sock", "unix:"+dir+"/b.sock")
	for i := 0; i < 20; i++ {
		if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); StatusOf(err) != 502 {
			t.Fatalf("request %d with every backend down: %v (status %d), want 502", i, err, StatusOf(err))
		}
	}
	if n := strings.Count(logs.String(), "trying another"); n > 2 {
		t.Errorf("\"trying another\" logged %d times for 20 requests within the back-off, want at most 2", n)
	}
}

// A backend down long enough to reach the longest back-off (downMax) is
// back in rotation within about probeEvery of accepting connections again,
// without a request having to find out; the probe stops once it is up.
func TestBackendBackAfterLongOutage(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	dead := deadAddr(t)
	tr, _ := newTransport(t, Options{}, dead, srv.Addr())
	b := tr.backends[0]
	for i := 0; i < 12; i++ {
		b.markDown()
	}
	if d := time.Duration(b.downUntil.Load() - monoclock.Now()); d < downMax-time.Second {
		t.Fatalf("back-off %v, want about %v", d, downMax)
	}
	time.Sleep(probeEvery + probeEvery/2) // probes that find nothing
	if tr.Stats()[0].Healthy {
		t.Fatal("healthy before it accepts connections")
	}
	back, err := net.Listen("tcp", dead)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	deadline := time.Now().Add(probeEvery + time.Second)
	for !tr.Stats()[0].Healthy {
		if time.Now().After(deadline) {
			t.Fatalf("still skipped %v after it accepts connections", probeEvery+time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 50 && b.probing.Load(); i++ {
		time.Sleep(probeEvery / 20)
	}
	if b.probing.Load() {
		t.Fatal("the probe goes on after the backend is back")
	}
}

// Two live backends share concurrent load.
func TestBackendsBalance(t *testing.T) {
	h := func(c *fakeConn, r *fakeRequest) bool {
		time.Sleep(20 * time.Millisecond)
		respond(c, "", "ok")
		return true
	}
	a, b := newFakeServer(t, h), newFakeServer(t, h)
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: 4}, a.Addr(), b.Addr())
	getAtOnce(t, tr, 16)
	if len(a.Requests()) == 0 || len(b.Requests()) == 0 {
		t.Fatalf("unbalanced: %d / %d", len(a.Requests()), len(b.Requests()))
	}
}

func echoBody(c *fakeConn, r *fakeRequest) bool {
	respond(c, "X-Content-Length: "+r.Params["CONTENT_LENGTH"]+"\r\n", string(r.Stdin))
	return true
}

// chunkedReader hides the length, as a chunked request body does.
type chunkedReader struct{ r io.Reader }

func (c chunkedReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestRequestBodies(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	dir := t.TempDir()
	tr, _ := newTransport(t, Options{MaxBody: 300 << 10, TempDir: dir}, srv.Addr())
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
	}{
		{"none", 0, false},
		{"small known", 1000, false},
		{"large known, streamed", 200 << 10, false},
		{"small chunked, memory", 1000, true},
		{"large chunked, temp file", 250 << 10, true},
		{"chunked exactly the limit", 300 << 10, true},
		{"empty chunked", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16+1)[:tc.size]
			var body io.Reader = bytes.NewReader(payload)
			if tc.chunked {
				body = chunkedReader{body}
			}
			if tc.size == 0 && !tc.chunked {
				body = nil
			}
			req := newReq(nil, "POST", "/", body, nil)
			if tc.chunked {
				req.ContentLength = -1
			}
			resp, got, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(payload) {
				t.Fatalf("PHP got %d bytes, want %d", len(got), len(payload))
			}
			wantCL := ""
			if tc.size > 0 {
				wantCL = itoa(tc.size)
			}
			if cl := resp.Header.Get("X-Content-Length"); cl != wantCL {
				t.Fatalf("CONTENT_LENGTH %q, want %q", cl, wantCL)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("temp files left behind: %v", ents)
	}

	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
	}{{"chunked over", 300<<10 + 1, true}, {"known over", 301 << 10, false}} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srv.Requests())
			var body io.Reader = bytes.NewReader(make([]byte, tc.size))
			if tc.chunked {
				body = chunkedReader{body}
			}
			req := newReq(nil, "POST", "/", body, nil)
			if tc.chunked {
				req.ContentLength = -1
			}
			_, err := tr.RoundTrip(req)
			if StatusOf(err) != 413 {
				t.Fatalf("err %v status %d, want 413", err, StatusOf(err))
			}
			if len(srv.Requests()) != before {
				t.Fatal("an over-limit body reached php-fpm")
			}
		})
	}

	t.Run("client body cut short", func(t *testing.T) {
		req := newReq(nil, "POST", "/", io.MultiReader(strings.NewReader("abc"), errReader{io.ErrUnexpectedEOF}), nil)
		req.ContentLength = 10
		_, err := tr.RoundTrip(req)
		if StatusOf(err) != 400 {
			t.Fatalf("err %v status %d, want 400", err, StatusOf(err))
		}
	})

	// net/http's chunked reader says io.ErrUnexpectedEOF when the
	// connection ends inside the body: the body read whole with
	// io.ReadFull, that was the end of a short body, the part that came
	// was taken for all of it and php-fpm was dialed for it (the access
	// log then blamed the dial, cancelled as the client had left).
	t.Run("chunked client body cut short", func(t *testing.T) {
		before := len(srv.Requests())
		req := newReq(nil, "POST", "/", io.MultiReader(strings.NewReader("abc"), errReader{io.ErrUnexpectedEOF}), nil)
		req.ContentLength = -1
		_, err := tr.RoundTrip(req)
		if StatusOf(err) != 400 || !strings.Contains(err.Error(), "read request body") {
			t.Fatalf("err %v status %d, want 400 reading the body", err, StatusOf(err))
		}
		if len(srv.Requests()) != before {
			t.Fatal("a body cut short reached php-fpm as if whole")
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func itoa(n int) string { return fmtInt(n) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestStderrLogging(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stderr("PHP message: first")
		c.Stdout("Content-Type: text/plain\r\n\r\n")
		c.Stderr("PHP message: " + strings.Repeat("x", 200))
		c.Stderr("PHP message: third")
		c.End()
		return true
	})
	tr, lb := newTransport(t, Options{StderrLogLimit: 100}, srv.Addr())
	s := *testScript
	s.ScriptName = "/noisy.php"
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, &s)); err != nil {
		t.Fatal(err)
	}
	log := lb.String()
	if !strings.Contains(log, "PHP message: first") || !strings.Contains(log, "script=/noisy.php") {
		t.Fatalf("stderr not logged with the script: %s", log)
	}
	if strings.Contains(log, "third") || strings.Contains(log, strings.Repeat("x", 100)) {
		t.Fatalf("log over the limit: %s", log)
	}
	// 18+213+18 bytes sent, 100 logged.
	if !strings.Contains(log, "dropped_bytes=149") {
		t.Fatalf("dropped bytes not counted: %s", log)
	}

	// A hook that consumes keeps the log quiet.
	var got []string
	s.OnStderr = func(m []byte) []byte { got = append(got, string(m)); return nil }
	before := len(lb.String())
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, &s)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || lb.String()[before:] != "" {
		t.Fatalf("hook got %d messages; log grew by %q", len(got), lb.String()[before:])
	}
}

// The stderr budget holds for the log line as written: slog writes a
// control byte or an invalid one as up to six bytes (\u0001, \ufffd), so
// a budget of PHP's raw bytes let a script logging binary data write lines
// six times the limit (24 KB for the default 4 KiB), past what log
// pipelines keep as one line.
func TestStderrLogLimitCountsEscapes(t *testing.T) {
	lb := logStderr100(t, "PHP message: "+strings.Repeat("\x01\xff", 500))
	var logged, dropped bool
	for _, line := range strings.Split(strings.TrimSpace(lb.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		switch rec["msg"] {
		case "php stderr":
			logged = true
			// 100 bytes of stderr as written, and the record's other
			// fields (about 150 bytes).
			if len(line) > 300 {
				t.Errorf("php stderr line of %d bytes with a 100-byte limit: %s", len(line), line)
			}
			if s := rec["stderr"].(string); !strings.HasPrefix(s, "PHP message: \x01") {
				t.Errorf("stderr logged as %q", s)
			}
		case "php stderr over the log limit; not logged":
			dropped = true
		}
	}
	if !logged || !dropped {
		t.Errorf("stderr logged %v, its rest reported as dropped %v: %s", logged, dropped, lb.String())
	}
}

// logStderr100 runs one request whose script writes msg to stderr through
// a transport with a 100-byte stderr log limit, and returns its JSON log.
func logStderr100(t *testing.T, msg string) *testlog.Buffer {
	t.Helper()
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stderr(msg)
		respond(c, "", "ok")
		return true
	})
	lb := &testlog.Buffer{}
	tr, _ := newTransport(t, Options{StderrLogLimit: 100, Logger: slog.New(slog.NewJSONHandler(lb, nil))}, srv.Addr())
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
		t.Fatal(err)
	}
	return lb
}

// Counted as written, a quote or a newline takes the two bytes both
// log handlers write for it (\", \n), not the six of a control byte: a
// JSON dump or a stack trace within the limit as written is logged whole.
func TestStderrLogLimitCountsQuotesAsTwo(t *testing.T) {
	msg := "PHP message: " + strings.Repeat(`{"k":1}`, 9) // 76 bytes, 94 written
	lb := logStderr100(t, msg)
	var rec map[string]any
	line, _, _ := strings.Cut(lb.String(), "\n")
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatalf("%v: %s", err, lb.String())
	}
	if rec["stderr"] != msg || strings.Contains(lb.String(), "over the log limit") {
		t.Errorf("stderr of 94 bytes as written, limit 100, logged as %s", lb.String())
	}
}

// Stderr over the log limit is reported as dropped when the request fails
// before its CGI header as well: a worker that logs a burst of errors and
// dies (request_terminate_timeout, a segfault), or a script whose header
// is malformed. Only a response that got as far as a body said how much
// was dropped; these left the log with the first StderrLogLimit bytes and
// no word that more had come.
func TestStderrDroppedReportedWhenTheRequestFails(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stderr("PHP message: " + strings.Repeat("x", 200))
		c.Stderr("PHP message: last words")
		switch r.Params["QUERY_STRING"] {
		case "badheader":
			c.Stdout("no colon here\r\n\r\nbody")
			c.End()
			return true
		}
		c.Flush()
		return false // the worker dies: the connection closes
	})
	for _, q := range []string{"died", "badheader"} {
		t.Run(q, func(t *testing.T) {
			tr, lb := newTransport(t, Options{StderrLogLimit: 100}, srv.Addr())
			_, err := tr.RoundTrip(newReq(nil, "GET", "/?"+q, nil, nil))
			if StatusOf(err) != http.StatusBadGateway {
				t.Fatalf("%v (status %d), want 502", err, StatusOf(err))
			}
			// 213+23 bytes sent, 100 logged.
			if log := lb.String(); !strings.Contains(log, "dropped_bytes=136") {
				t.Fatalf("stderr over the limit not reported as dropped: %s", log)
			}
		})
	}
}

// A response header just under the cap passes; one over it is a 502.
func TestHugeHeader(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		switch r.Params["QUERY_STRING"] {
		case "256k":
			respond(c, "X-Big: "+strings.Repeat("b", 256<<10)+"\r\n", "ok")
		case "over":
			c.Stdout(strings.Repeat("X-Many: "+strings.Repeat("m", 1000)+"\r\n", 9000))
			c.End()
		}
		return true
	})
	tr, _ := newTransport(t, Options{}, srv.Addr())
	resp, body, err := roundTrip(t, tr, newReq(nil, "GET", "/?256k", nil, nil))
	if err != nil || len(resp.Header.Get("X-Big")) != 256<<10 || body != "ok" {
		t.Fatalf("256 KiB header: %v", err)
	}
	_, err = tr.RoundTrip(newReq(nil, "GET", "/?over", nil, nil))
	if StatusOf(err) != 502 || !errors.Is(err, errBadHeader) {
		t.Fatalf("9 MB header: %v", err)
	}
}

func TestPing(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{}, srv.Addr())
	if err := tr.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A request that answered a moment ago does not make /readyz say ready
// once php-fpm has since refused a connection: a load balancer would keep
// sending requests that get 502.
func TestPingAfterBackendWentAway(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{}, srv.Addr())
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	// The pooled connection is gone with the server; the request's new
	// connection is refused, which marks the backend down.
	if _, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil)); StatusOf(err) != 502 {
		t.Fatalf("request to a stopped php-fpm: %v", err)
	}
	if err := tr.Ping(context.Background()); err == nil {
		t.Fatal("Ping reports php-fpm reachable right after a refused connection")
	}
}

func TestStatusOf(t *testing.T) {
	for err, want := range map[error]int{
		context.Canceled:                         499,
		context.DeadlineExceeded:                 504,
		os.ErrDeadlineExceeded:                   504,
		errors.New("boom"):                       502,
		&Error{Status: 413, Err: io.EOF}:         413,
		upstreamError("x", "", errNoFreeConn):    504,
		upstreamError("x", "", io.ErrClosedPipe): 502,
	} {
		if got := StatusOf(err); got != want {
			t.Errorf("StatusOf(%v) = %d, want %d", err, got, want)
		}
	}
	if StatusOf(nil) != 0 {
		t.Error("StatusOf(nil) != 0")
	}
}

// workerStillReading tells a retiring php-fpm worker (it shut down its
// sending side and reads on) from a dead one (socket closed): only the
// first may get the request again.
func TestWorkerStillReading(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retires bool
	}{{"retiring worker", true}, {"dead worker", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				if tc.retires {
					c.(*net.TCPConn).CloseWrite()
					io.Copy(io.Discard, c) // until the gateway closes
				}
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			// What the exchange saw: the end of the stream.
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read: %v", err)
			}
			if !tc.retires {
				<-done // the socket is gone
			}
			if got := workerStillReading(nc); got != tc.retires {
				t.Errorf("workerStillReading = %v, want %v", got, tc.retires)
			}
			nc.Close()
			<-done
		})
	}
}

// A new connection still waiting for its answer makes finished connections
// close (a worker is freed for it), but one per starveAfter: a long poll on
// a new connection must not turn every later request into a reconnect.
func TestStarvedConnectionFreesOneWorkerAtATime(t *testing.T) {
	b := &backend{}
	c := &conn{}
	b.awaitAnswer(c)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := monoclock.Now()
	if b.starvedLocked(now) {
		t.Fatal("a connection that has just been written is starved")
	}
	later := now + int64(2*starveAfter)
	if !b.starvedLocked(later) {
		t.Fatal("a connection unanswered for twice starveAfter is not starved")
	}
	if b.starvedLocked(later + 1) {
		t.Fatal("a second close for the same waiting connection within starveAfter")
	}
	if !b.starvedLocked(later + int64(2*starveAfter)) {
		t.Fatal("still unanswered another starveAfter later, and not helped again")
	}
}

// A new connection still unanswered starveAfter after its request went
// out gets a worker freed for it even when no other connection comes back
// (a burst that ended): the longest idle one is closed, one per
// starveAfter; nothing while it has been waiting less than that (put may
// just have freed one), nothing with no idle connection, and nothing once
// it is answered. The timer's moments are played by calling rescue.
func TestStarvedConnectionRescuedWithoutTraffic(t *testing.T) {
	b := &backend{max: 4}
	var idle []net.Conn
	for range 2 {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		idle = append(idle, theirs)
		b.idle = append(b.idle, &conn{nc: ours})
	}
	b.open = 3
	c := &conn{}
	b.awaitAnswer(c)
	defer b.answered(c)
	// The test plays the timer: the real one is stopped after each call.
	rescue := func() {
		b.rescue(c)
		b.mu.Lock()
		c.rescue.Stop()
		b.mu.Unlock()
	}
	rescue() // nothing is due yet; the real timer stops
	closed := func(nc net.Conn) bool {
		nc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, err := nc.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	waitedFor := func(d time.Duration) {
		b.mu.Lock()
		b.unanswered[c] = monoclock.Now() - int64(d)
		b.mu.Unlock()
	}
	state := func() (open, idle int) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.open, len(b.idle)
	}

	waitedFor(starveAfter / 2)
	rescue()
	if closed(idle[0]) || closed(idle[1]) {
		t.Fatal("a connection closed for one waiting less than starveAfter")
	}
	waitedFor(starveAfter + time.Millisecond)
	rescue()
	if !closed(idle[0]) || closed(idle[1]) {
		t.Fatalf("after starveAfter: longest idle closed %v, the other %v; want only the first", closed(idle[0]), closed(idle[1]))
	}
	if open, left := state(); open != 2 || left != 1 {
		t.Errorf("open %d idle %d, want 2 and 1", open, left)
	}
	rescue() // its clock restarted with the close
	if closed(idle[1]) {
		t.Error("a second close right after the first")
	}
	waitedFor(starveAfter + time.Millisecond)
	rescue()
	if !closed(idle[1]) {
		t.Error("still waiting another starveAfter later, and no second close")
	}
	if open, left := state(); open != 1 || left != 0 {
		t.Errorf("open %d idle %d, want 1 and 0", open, left)
	}
	waitedFor(starveAfter + time.Millisecond)
	rescue() // nothing left to close: it waits on
	if open, _ := state(); open != 1 {
		t.Errorf("open %d with nothing to close", open)
	}

	// Answered: a late timer changes nothing.
	ours, theirs := net.Pipe()
	defer theirs.Close()
	b.mu.Lock()
	b.idle = append(b.idle, &conn{nc: ours})
	b.open++
	b.mu.Unlock()
	b.answered(c)
	rescue()
	if closed(theirs) {
		t.Error("an idle connection closed after the answer began")
	}
}

// With ReadAhead, a response bigger than any socket buffer is read to its
// end while the client has read ten bytes: the connection goes back to the
// pool and OnEnd runs (the session bridge releases the lock there); the
// client then gets every byte. Without ReadAhead the worker waits.
func TestReadAheadFreesConnectionBeforeClientReads(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 256<<10) // 4 MiB, far more than the small socket buffers hold
	srv := newSmallBufferFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		respond(c, "Content-Type: application/octet-stream\r\n", big)
		return true
	})
	for _, ahead := range []bool{true, false} {
		tr, _ := newTransport(t, Options{ReadAhead: ahead, TempDir: t.TempDir()}, srv.Addr())
		tr.backends[0].dialer.Control = testnet.SmallBuffers
		ended := make(chan struct{})
		s := *testScript
		s.OnEnd = func() { close(ended) }
		resp, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, &s))
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 10)
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatal(err)
		}
		// Read ahead, 32 MiB reached the temp file in well under a second
		// on an idle machine and took more than 3 s under -race on a
		// loaded one: wait for it generously. Without, 3 s of the
		// response not ending is the evidence.
		wait := 3 * time.Second
		if ahead {
			wait = time.Minute
		}
		select {
		case <-ended:
			if !ahead {
				t.Fatal("without ReadAhead, 4 MiB went through socket buffers with 10 bytes read")
			}
			if st := tr.Stats()[0]; st.Busy != 0 || st.Idle != 1 {
				t.Fatalf("connection not back in the pool: %+v", st)
			}
		case <-time.After(wait):
			if ahead {
				t.Fatalf("the response was not read ahead of the client within %v", wait)
			}
		}
		rest, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(first)+string(rest) != big {
			t.Fatalf("ReadAhead %v: got %d bytes, err %v", ahead, len(rest)+10, err)
		}
		<-ended
	}
}

// ReadAhead keeps a response that arrived whole on the caller's goroutine,
// and OnEnd runs for it too.
func TestReadAheadWholeResponseOnEnd(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{ReadAhead: true}, srv.Addr())
	var ends atomic.Int32
	s := *testScript
	s.OnEnd = func() { ends.Add(1) }
	resp, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, &s))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Body.(*responseBody); !ok {
		t.Errorf("a whole response is wrapped in %T", resp.Body)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" || ends.Load() != 1 {
		t.Fatalf("body %q, OnEnd ran %d times", body, ends.Load())
	}
}

// OnEnd also runs, once, when php-fpm's part ends without END_REQUEST (the
// worker died mid-response), with or without ReadAhead: PHP can send
// nothing more, so what waits for it (the session lock) can go.
func TestOnEndRunsForCutResponse(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stdout("Content-Type: text/plain\r\n\r\n" + strings.Repeat("x", 100<<10))
		c.Flush()
		return false // connection closed, no END_REQUEST
	})
	for _, ahead := range []bool{true, false} {
		tr, _ := newTransport(t, Options{ReadAhead: ahead, TempDir: t.TempDir()}, srv.Addr())
		var ends atomic.Int32
		s := *testScript
		s.OnEnd = func() { ends.Add(1) }
		resp, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, &s))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil || StatusOf(err) != 502 {
			t.Fatalf("ReadAhead %v: cut response read with %v (status %d)", ahead, err, StatusOf(err))
		}
		if ends.Load() != 1 {
			t.Fatalf("ReadAhead %v: OnEnd ran %d times, want 1", ahead, ends.Load())
		}
	}
}

// Headers a PHP app sends to tune nginx (X-Accel-Buffering and the like,
// hidden by nginx's fastcgi_hide_header defaults) are dropped here.
// X-Accel-Redirect is passed on: the server acts on it (server/accel.go)
// and it never reaches a client.
func TestNginxControlHeaders(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		switch r.Params["QUERY_STRING"] {
		case "accel":
			respond(c, "X-Accel-Buffering: no\r\nX-Accel-Expires: 10\r\nX-Accel-Limit-Rate: 1024\r\nX-Accel-Charset: utf-8\r\nX-Kept: 1\r\n", "ok")
		case "redirect":
			respond(c, "X-Accel-Redirect: /protected/invoice-42.pdf\r\nContent-Type: application/pdf\r\n", "")
		}
		return true
	})
	tr, logs := newTransport(t, Options{}, srv.Addr())
	for _, q := range []string{"accel", "redirect"} {
		resp, body, err := roundTrip(t, tr, newReq(nil, "GET", "/?"+q, nil, nil))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %+v", q, err, resp)
		}
		if q == "accel" && (body != "ok" || resp.Header.Get("X-Kept") != "1") {
			t.Errorf("accel: %q %v", body, resp.Header)
		}
		for name := range resp.Header {
			if strings.HasPrefix(name, "X-Accel-") && name != "X-Accel-Redirect" {
				t.Errorf("%s: %s passed on: %v", q, name, resp.Header)
			}
		}
		if q == "redirect" && resp.Header.Get("X-Accel-Redirect") != "/protected/invoice-42.pdf" {
			t.Errorf("redirect: X-Accel-Redirect not passed on to the server: %v", resp.Header)
		}
	}
	if logs.String() != "" {
		t.Errorf("unexpected log:\n%s", logs.String())
	}
}

// A Content-Length PHP sends that is not all digits ("+5", "-0", which
// strconv.ParseInt takes) is dropped like any other invalid one, not passed
// on: a client or a proxy further on reads such a header differently (or
// refuses the response), and the response's framing is then in doubt.
func TestSignedContentLengthDropped(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		respond(c, "Content-Length: "+r.Params["QUERY_STRING"]+"\r\n", "hello world")
		return true
	})
	tr, logs := newTransport(t, Options{}, srv.Addr())
	for _, v := range []string{"+5", "-0", "+0005"} {
		resp, body, err := roundTrip(t, tr, newReq(nil, "GET", "/?"+v, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		if cl := resp.Header.Get("Content-Length"); cl != "" || resp.ContentLength == 5 || resp.ContentLength == 0 || body != "hello world" {
			t.Errorf("Content-Length %q: passed on as %q (ContentLength %d), body %q", v, cl, resp.ContentLength, body)
		}
	}
	if !strings.Contains(logs.String(), "invalid Content-Length") {
		t.Errorf("not logged:\n%s", logs.String())
	}
}

// A kept-alive connection unused for Options.IdleTimeout is closed and its
// slot freed, as nginx closes idle upstream connections after
// keepalive_timeout: an idle connection pins a php-fpm worker, which a
// pm = ondemand pool could not retire and another gateway on the same
// pool could not get. One used again in time is kept.
func TestIdleConnectionClosedAfterTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	// The check that the reused connection survives the first timer is
	// only meaningful at a moment between that timer (idle after the first
	// request) and the reused connection's own end (idle after the second
	// one). A scheduler that delays the test past that window on a loaded
	// machine proves nothing either way, so such a round is run again
	// rather than taken for a failure.
	for attempt := 1; ; attempt++ {
		srv := newFakeServer(t, helloHandler)
		tr, _ := newTransport(t, Options{IdleTimeout: idle}, srv.Addr())
		start1 := time.Now()
		if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || body != "hello" {
			t.Fatalf("request 1: %q %v (status %d)", body, err, StatusOf(err))
		}
		end1 := time.Now()
		time.Sleep(idle / 2)
		start2 := time.Now()
		if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || body != "hello" {
			t.Fatalf("request 2: %q %v (status %d)", body, err, StatusOf(err))
		}
		reused := srv.accepted.Load() == 1
		// The first timer fires idle after the first request: look just
		// after it, while the connection has been idle for about idle/2.
		time.Sleep(time.Until(end1.Add(idle + idle/6)))
		n, open := srv.accepted.Load(), srv.open.Load()
		checked := time.Now()
		switch {
		case start2.Sub(start1) >= idle:
			// The second request came too late to find the connection.
		case !reused:
			t.Fatalf("%d connections dialed for a request %v after the first: want the idle one reused", srv.accepted.Load(), start2.Sub(end1))
		case checked.Sub(start2) >= idle:
			// Looked too late: the reused connection may have timed out.
		default:
			if n != 1 || open != 1 {
				t.Fatalf("%d connections dialed, %d open: want the one reused in time kept", n, open)
			}
			waitFor(t, "the idle connection closed", func() bool {
				return srv.open.Load() == 0 && tr.Stats()[0].Open == 0 && tr.Stats()[0].Idle == 0
			})
			if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || body != "hello" {
				t.Fatalf("after the close: %q %v", body, err)
			}
			if n := srv.accepted.Load(); n != 2 {
				t.Fatalf("%d connections dialed, want a new one after the close", n)
			}
			return
		}
		if attempt == 5 {
			t.Fatalf("5 rounds delayed past the windows the test needs (last: second request %v after the first, checked %v after it)", start2.Sub(start1), checked.Sub(start2))
		}
		t.Logf("round %d delayed (second request %v after the first, checked %v after it): again", attempt, start2.Sub(start1), checked.Sub(start2))
	}
}

// helloTwice sends two requests to helloHandler, gap apart.
func helloTwice(t *testing.T, tr *Transport, gap time.Duration) {
	t.Helper()
	for i := 0; i < 2; i++ {
		if i > 0 {
			time.Sleep(gap)
		}
		_, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
		if err != nil || body != "hello" {
			t.Fatalf("request %d: %q %v (status %d)", i, body, err, StatusOf(err))
		}
	}
}

// A kept-alive worker that takes a request's params and then dies (killed by
// request_terminate_timeout, a crash) resets the connection while a large
// body is still being sent: the script may have run, so a request that must
// not run twice is never sent again, as when the reset comes before any
// response byte.
func TestNoRetryOfPOSTResetWhileSendingOnReusedConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var begun atomic.Int64
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				c := &fakeConn{nc: nc, bw: bufio.NewWriter(nc)}
				for {
					// The params, then a little of the body.
					typ, _, err := readRecord(br)
					if err != nil || typ != typeBeginRequest {
						return
					}
					n := begun.Add(1)
					if n == 1 {
						if readThrough(br, typeStdin) != nil {
							return
						}
						respond(c, "", "ok")
						c.Flush()
						continue
					}
					for typ != typeStdin {
						if typ, _, err = readRecord(br); err != nil {
							return
						}
					}
					nc.(*net.TCPConn).SetLinger(0) // the worker dies: a reset
					return
				}
			}()
		}
	}()
	tr, _ := newTransport(t, Options{MaxBody: 64 << 20, BufferBodies: true}, ln.Addr().String())
	if _, got, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || got != "ok" {
		t.Fatalf("request 1: %v %q", err, got)
	}
	big := strings.Repeat("z", 32<<20) // far more than the socket buffers hold
	_, err = tr.RoundTrip(newReq(nil, "POST", "/", strings.NewReader(big), nil))
	if StatusOf(err) != 502 || begun.Load() != 2 {
		t.Fatalf("err %v, %d requests begun; want 502 and the POST not sent again", err, begun.Load())
	}
}

// A script that answers before it reads the body (PHP reads it ahead only
// for a POST with a Content-Type; a PUT's waits for php://input) may write
// more than the socket buffers hold while the body is still being sent: the
// response must be read meanwhile. Writing the whole body first left both
// sides blocked in a write until WriteTimeout, and the answer PHP had given
// was lost to a 504.
func TestResponseReadWhileBodyIsSent(t *testing.T) {
	ln := testnet.SmallBufferListener(t)
	const size = 2 << 20 // far more than the small socket buffers hold, both ways
	got := make(chan int, 2)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				c := &fakeConn{nc: nc, bw: bufio.NewWriter(nc)}
				if readThrough(br, typeParams) != nil {
					return
				}
				c.Stdout("Status: 403\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("x", size))
				if c.Flush() != nil {
					return
				}
				n := 0 // then the body, as PHP consumes it at the end of the request
				for {
					_, p, err := readRecord(br)
					if err != nil {
						return
					}
					if len(p) == 0 {
						break
					}
					n += len(p)
				}
				got <- n
				c.End()
				c.Flush()
			}()
		}
	}()
	// Bodies spooled first (of known length with BufferBodies, chunked
	// ones) and one of known length streamed from the client as it is sent.
	// The timeouts are far above what the exchange needs: a write waits
	// while the whole answer is read, and under -race on a loaded
	// machine that read went at 1-4 MiB/s, so a 2 s write timeout cut it.
	// A deadlock still ends in the write timeout's 504.
	for _, mode := range []string{"spooled", "chunked", "streamed"} {
		tr, _ := newTransport(t, Options{MaxBody: 64 << 20, BufferBodies: mode == "spooled", WriteTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second}, ln.Addr().String())
		tr.backends[0].dialer.Control = testnet.SmallBuffers
		var src io.Reader = strings.NewReader(strings.Repeat("z", size))
		if mode == "chunked" {
			src = io.MultiReader(src) // no length: chunked
		}
		req := newReq(nil, "PUT", "/", src, nil)
		if mode == "streamed" && (req.ContentLength != size || req.GetBody != nil) {
			t.Fatalf("streamed: want a known length and no GetBody")
		}
		resp, body, err := roundTrip(t, tr, req)
		if err != nil || resp.StatusCode != 403 || len(body) != size {
			t.Fatalf("%s: %v status %d, %d bytes; want the 403 whole", mode, err, StatusOf(err), len(body))
		}
		select {
		case n := <-got:
			if n != size {
				t.Fatalf("%s: server got %d body bytes of %d", mode, n, size)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the server never got the whole body", mode)
		}
	}
}

// A caller that stops reading (the client went away, or was too slow for
// the send timeout) closes the body while ReadAhead's goroutine waits in a
// Read for PHP: that is not php-fpm cutting its response short, and the
// log must not say so.
func TestReadAheadCloseIsNotLoggedAsCutShort(t *testing.T) {
	proceed := make(chan struct{})
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stdout("Content-Type: text/plain\r\n\r\nfirst")
		c.Flush()
		<-proceed
		return false
	})
	defer close(proceed)
	tr, lb := newTransport(t, Options{ReadAhead: true, TempDir: t.TempDir()}, srv.Addr())
	resp, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first" {
		t.Fatalf("%q %v", first, err)
	}
	time.Sleep(50 * time.Millisecond) // the read-ahead goroutine waits for PHP
	resp.Body.Close()
	if strings.Contains(lb.String(), "cut short") {
		t.Fatalf("a close by the caller logged as a cut-short response:\n%s", lb.String())
	}
	if st := tr.Stats()[0]; st.Open != 0 {
		t.Fatalf("connection kept: %+v", st)
	}
}

// A body streamed from the client (known length, not read ahead) while PHP
// answers before it reads it. An answer that ends (END_REQUEST) before the
// body is in is the client's whole: the connection to PHP is closed, not
// pooled, and the body is no longer read, so nothing waits on the client
// once the response is done. A body that fails after the answer began
// aborts the answer: never a clean end with PHP given part of the body.
func TestStreamedBodyWhileAnswerIsRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	stdinEnd := make(chan error, 4)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				c := &fakeConn{nc: nc, bw: bufio.NewWriter(nc)}
				method := ""
				for {
					typ, p, err := readRecord(br)
					if err != nil {
						return
					}
					if typ == typeParams && len(p) > 0 {
						if ps, err := decodePairs(p); err == nil {
							for _, pr := range ps {
								if pr.Name == "REQUEST_METHOD" {
									method = pr.Value
								}
							}
						}
					}
					if typ == typeParams && len(p) == 0 {
						break
					}
				}
				switch method {
				case "PUT": // answers whole, never reads the body
					c.Stdout("Content-Type: text/plain\r\n\r\nearly")
					c.End()
					c.Flush()
				case "POST": // begins to answer, then reads the body
					c.Stdout("Content-Type: text/plain\r\n\r\n" + strings.Repeat("a", 1000))
					c.Flush()
				default:
					respond(c, "Content-Type: text/plain\r\n", "hello")
					c.Flush()
					return
				}
				for { // what is left, until the gateway closes
					_, p, err := readRecord(br)
					if err != nil {
						stdinEnd <- err
						return
					}
					if len(p) == 0 {
						stdinEnd <- nil
						return
					}
				}
			}()
		}
	}()
	tr, _ := newTransport(t, Options{MaxBody: 64 << 20, WriteTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}, ln.Addr().String())

	// streamedReq returns a request whose body of size bytes comes, 4 KiB
	// at a time, from a client that keeps sending until the body is
	// closed, and a channel closed once that client stopped.
	streamedReq := func(method string, size int64) (*http.Request, *io.PipeWriter, chan struct{}) {
		pr, pw := io.Pipe()
		req := newReq(nil, method, "/", pr, nil)
		req.ContentLength = size
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			chunk := []byte(strings.Repeat("z", 4096))
			for {
				if _, err := pw.Write(chunk); err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		return req, pw, stopped
	}

	t.Run("answer ends first", func(t *testing.T) {
		req, _, stopped := streamedReq("PUT", 64<<20)
		resp, body, err := roundTrip(t, tr, req)
		if err != nil || resp.StatusCode != 200 || body != "early" {
			t.Fatalf("%v (status %d) %q; want 200 early", err, StatusOf(err), body)
		}
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Fatal("the request body is still being read after the response")
		}
		select {
		case err := <-stdinEnd:
			if err == nil {
				t.Fatal("PHP got the whole body")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the connection to PHP was not closed")
		}
		if st := tr.Stats()[0]; st.Open != 0 {
			t.Fatalf("%+v: the connection was kept", st)
		}
	})

	t.Run("body fails after the answer began", func(t *testing.T) {
		req, pw, stopped := streamedReq("POST", 64<<20)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		pw.CloseWithError(io.ErrUnexpectedEOF) // the client's connection broke
		<-stopped
		_, err = io.ReadAll(resp.Body)
		if StatusOf(err) != http.StatusBadRequest {
			t.Fatalf("after the body failed: %v (status %d); want the client's 400", err, StatusOf(err))
		}
		select {
		case err := <-stdinEnd:
			if err == nil {
				t.Fatal("PHP got the end of the body")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the connection to PHP was not closed")
		}
	})

	_, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
	if err != nil || body != "hello" {
		t.Fatalf("next request: %v %q", err, body)
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("%d connections; want 3, none reused after a request cut", n)
	}
}

// PHP that begins its answer, then neither takes the rest of a streamed
// body nor ends: SESSIONGATE_PHP_WRITE_TIMEOUT ends the request, and the
// answer fails with the write's timeout (504), not as PHP cutting it short.
func TestStreamedBodyWriteTimeoutAfterAnswerBegan(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	defer close(release)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		if readThrough(br, typeParams) != nil {
			return
		}
		c := &fakeConn{nc: nc, bw: bufio.NewWriter(nc)}
		c.Stdout("Content-Type: text/plain\r\n\r\nbegun")
		c.Flush()
		<-release // and reads no more
	}()
	tr, lb := newTransport(t, Options{MaxBody: 64 << 20, WriteTimeout: 300 * time.Millisecond, ReadTimeout: 10 * time.Second}, ln.Addr().String())
	const size = 32 << 20 // more than the socket buffers hold
	req := newReq(nil, "PUT", "/", strings.NewReader(strings.Repeat("z", size)), nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	b, err := io.ReadAll(resp.Body)
	if string(b) != "begun" || StatusOf(err) != http.StatusGatewayTimeout || !strings.Contains(err.Error(), "write request") {
		t.Fatalf("%q, %v (status %d); want the write's 504", b, err, StatusOf(err))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("ended after %v", d)
	}
	if strings.Contains(lb.String(), "cut short") {
		t.Fatalf("logged as PHP cutting its answer short:\n%s", lb.String())
	}
}

// A streamed body that takes longer than ReadTimeout to arrive, to a script
// that answers once it has it: the read timeout runs once the request is
// sent whole (nginx's fastcgi_read_timeout), not while the answer is read
// alongside the body.
func TestStreamedSlowBodyLongerThanReadTimeout(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		respond(c, "Content-Type: text/plain\r\n", strconv.Itoa(len(r.Stdin)))
		return true
	})
	tr, _ := newTransport(t, Options{ReadTimeout: 200 * time.Millisecond, WriteTimeout: time.Second}, srv.Addr())
	const size = 100 << 10
	pr, pw := io.Pipe()
	go func() {
		chunk := []byte(strings.Repeat("z", 10<<10))
		for n := 0; n < size; n += len(chunk) {
			time.Sleep(60 * time.Millisecond) // 600 ms in all
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req := newReq(nil, "PUT", "/", pr, nil)
	req.ContentLength = size
	_, body, err := roundTrip(t, tr, req)
	if err != nil || body != strconv.Itoa(size) {
		t.Fatalf("%v (status %d) %q", err, StatusOf(err), body)
	}
}

// A request that waited for a free connection (every one of
// MaxConnsPerBackend busy) has only what is left of ReadTimeout for the
// start of its answer: the help promises a 504 after SESSIONGATE_PHP_TIMEOUT,
// as nginx gives one after fastcgi_read_timeout to a request that sat in
// php-fpm's full listen queue. The wait used to come on top, so such a
// request could take nearly twice the timeout: here the second request
// waits 0.7 s for the connection, then its script takes 0.6 s, and it got
// 200 after 1.3 s with a 1 s timeout.
func TestPoolWaitCountsAgainstReadTimeout(t *testing.T) {
	// A body over memBodyLimit, read ahead into a file, is written while
	// the answer is read: its read timeout starts once it is sent whole.
	spooled := strings.Repeat("b", 4*memBodyLimit)
	for _, name := range []string{"in memory", "spooled"} {
		t.Run(name, func(t *testing.T) {
			srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
				if r.N == 1 {
					time.Sleep(700 * time.Millisecond)
				} else {
					time.Sleep(600 * time.Millisecond)
				}
				respond(c, "", "ok")
				return true
			})
			tr, _ := newTransport(t, Options{MaxConnsPerBackend: 1, ReadTimeout: time.Second, BufferBodies: true}, srv.Addr())
			first := make(chan error, 1)
			go func() {
				_, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
				first <- err
			}()
			waitFor(t, "first request busy", func() bool { return tr.Stats()[0].Busy == 1 })
			req := newReq(nil, "GET", "/", nil, nil)
			if name == "spooled" {
				req = newReq(nil, "POST", "/", strings.NewReader(spooled), nil)
			}
			start := time.Now()
			_, body, err := roundTrip(t, tr, req)
			took := time.Since(start)
			if StatusOf(err) != 504 {
				t.Errorf("a request that waited 0.7 s for the connection, then 0.6 s for its answer, ReadTimeout 1s: %v %q after %v, want 504", err, body, took.Round(time.Millisecond))
			}
			if took > 1500*time.Millisecond {
				t.Errorf("504 after %v with ReadTimeout 1s, want about 1 s", took.Round(time.Millisecond))
			}
			// The log line of that 504 says where the time went.
			if err != nil && !strings.Contains(err.Error(), "waiting for a free connection") {
				t.Errorf("the 504's error does not name the wait for a connection: %v", err)
			}
			if err := <-first; err != nil {
				t.Errorf("first request: %v", err)
			}
			// The next request, which does not wait, has the whole timeout.
			waitFor(t, "connection back", func() bool { return tr.Stats()[0].Busy == 0 })
			if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || body != "ok" {
				t.Errorf("a request that found the connection free, answer in 0.6 s: %v %q", err, body)
			}
		})
	}
}

// TestStrayBytesOnIdleConnectionNotReadAsNextAnswer: a FastCGI server that
// sends more after END_REQUEST (a second copy of its answer, a proxy in
// between that repeats itself) must not have those bytes taken for the
// answer to the next request on that connection. They came while the
// connection sat idle, after the first answer had been read: a GET took
// them for its own answer and got the previous request's page ("STALE"),
// and every answer on the connection after it was one behind.
func TestStrayBytesOnIdleConnectionNotReadAsNextAnswer(t *testing.T) {
	var stray atomic.Bool
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		respond(c, "", "answer "+strconv.Itoa(r.N))
		if stray.CompareAndSwap(false, true) {
			c.Flush()
			time.Sleep(20 * time.Millisecond)
			respond(c, "", "STALE")
		}
		return true
	})
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: 1}, srv.Addr())
	if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || body != "answer 1" {
		t.Fatalf("first request: %q %v", body, err)
	}
	waitFor(t, "the stray answer sent", func() bool { return srv.served.Load() == 1 })
	time.Sleep(20 * time.Millisecond) // on its way over loopback
	for i := range 2 {
		_, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
		if err != nil || !strings.HasPrefix(body, "answer ") {
			t.Fatalf("request %d after the stray bytes: %q %v", i+2, body, err)
		}
	}
}

// Whole tells a response read to END_REQUEST with its header from one
// still coming, with PHP's own Content-Length or without: the server
// flushes the latter as it comes.
func TestWhole(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		header := "Content-Type: text/html\r\n"
		if strings.Contains(r.Params["QUERY_STRING"], "cl") {
			header += "Content-Length: 10\r\n"
		}
		if strings.HasPrefix(r.Params["QUERY_STRING"], "whole") {
			respond(c, header, "0123456789")
			return true
		}
		c.Stdout(header + "\r\n01234")
		c.Flush()
		<-release
		c.Stdout("56789")
		c.End()
		return true
	})
	defer close(release)
	for _, ahead := range []bool{false, true} {
		tr, _ := newTransport(t, Options{ReadAhead: ahead, TempDir: t.TempDir()}, srv.Addr())
		for _, q := range []string{"whole", "whole-cl", "coming", "coming-cl"} {
			resp, err := tr.RoundTrip(newReq(nil, "GET", "/?"+q, nil, nil))
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if got, want := Whole(resp), strings.HasPrefix(q, "whole"); got != want {
				t.Errorf("ReadAhead %v, %s: Whole %v, want %v", ahead, q, got, want)
			}
			if !strings.HasPrefix(q, "whole") {
				release <- struct{}{}
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "0123456789" {
				t.Errorf("ReadAhead %v, %s: %q %v", ahead, q, b, err)
			}
		}
	}
	if Whole(&http.Response{Body: io.NopCloser(strings.NewReader("x"))}) {
		t.Error("Whole of another transport's response")
	}
}

// A page whose CGI header nearly fills php-fpm's 8 KiB output buffer (a
// long Content-Security-Policy, many cookies) reached the server in front
// as a first piece of a few body bytes, the rest of the buffer, and the
// rest later: php-fpm writes a record when its buffer fills, not only when
// PHP flushes. A compressing server takes so small a first piece for a
// stream of small flushes and sent the page uncompressed. RoundTrip now
// reads on past a full record that left fewer than 256 body bytes.
func TestFullHeaderRecordIsNoFlush(t *testing.T) {
	body := strings.Repeat("<p>line</p>\n", 300)
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		header := "Content-Type: text/html\r\nX-Pad: "
		// The header and the first body bytes fill one record of
		// php-fpm's size (fpmFullRecord).
		pad := fpmFullRecord - len(header) - len("\r\n\r\n") - 100
		head := header + strings.Repeat("a", pad) + "\r\n\r\n" + body[:100]
		if len(head) != fpmFullRecord {
			panic(len(head))
		}
		c.Stdout(head)
		c.Flush()
		time.Sleep(20 * time.Millisecond) // less than fullRecordWait
		c.Stdout(body[100:])
		c.End()
		return true
	})
	for _, ahead := range []bool{false, true} {
		tr, _ := newTransport(t, Options{ReadAhead: ahead, TempDir: t.TempDir()}, srv.Addr())
		resp, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 64<<10)
		n, err := resp.Body.Read(first)
		rest, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if n < 256 || string(first[:n])+string(rest) != body {
			t.Errorf("ReadAhead %v: first piece of %d bytes (%v), then %d", ahead, n, err, len(rest))
		}
	}
}

// A script whose header and flushed first piece fill php-fpm's record
// exactly (a long header, then a short "loading" or first event, then
// sleep()) sends nothing more until it goes on: RoundTrip waited for the
// next record, up to the read timeout, and the client saw nothing of what
// PHP had flushed. It now waits only fullRecordWait, also when what
// follows at once is a STDERR record (an error_log(), the session bridge's
// message from a session_write_close() before a long poll).
func TestFullRecordFlushIsNotHeldBack(t *testing.T) {
	for _, stderr := range []bool{false, true} {
		returned := make(chan struct{})
		srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
			header := "Content-Type: text/event-stream\r\nX-Pad: "
			pad := fpmFullRecord - len(header) - len("\r\n\r\n") - 100
			c.Stdout(header + strings.Repeat("a", pad) + "\r\n\r\n" + strings.Repeat("b", 100))
			if stderr {
				c.Stderr("session closed")
			}
			c.Flush()
			select {
			case <-returned:
				c.Stdout("seen")
			case <-time.After(5 * time.Second):
				c.Stdout("not seen")
			}
			c.End()
			return true
		})
		tr, _ := newTransport(t, Options{}, srv.Addr())
		resp, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
		close(returned)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := strings.Repeat("b", 100) + "seen"; string(b) != want || err != nil {
			t.Errorf("STDERR after the record %v: body %q (%v), want %q: the answer waited for PHP's next output", stderr, b, err, want)
		}
	}
}

// The same for a PUT whose script answers before it reads its body, which
// the gateway writes meanwhile (spooled, by another goroutine): when that
// write ended during the short wait, the end of the write started the
// read timeout and stretched the wait to it, and the header PHP had
// flushed waited for PHP's next output.
func TestFullRecordFlushIsNotHeldBackByTheBodysEnd(t *testing.T) {
	ln := testnet.SmallBufferListener(t)
	returned := make(chan struct{})
	seen := make(chan bool, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		if readThrough(br, typeParams) != nil { // BEGIN_REQUEST and PARAMS
			return
		}
		c := &fakeConn{nc: nc, bw: bufio.NewWriter(nc)}
		header := "Content-Type: text/event-stream\r\nX-Pad: "
		pad := fpmFullRecord - len(header) - len("\r\n\r\n") - 100
		c.Stdout(header + strings.Repeat("a", pad) + "\r\n\r\n" + strings.Repeat("b", 100))
		c.Flush()
		// The script reads php://input now, well inside the wait: the
		// gateway's write of the body ends.
		time.Sleep(fullRecordWait / 5)
		if readThrough(br, typeStdin) != nil {
			return
		}
		select { // then a long poll
		case <-returned:
			seen <- true
		case <-time.After(5 * time.Second):
			seen <- false
		}
		c.Stdout("later")
		c.End()
		c.Flush()
	}()
	tr, _ := newTransport(t, Options{MaxBody: 64 << 20, TempDir: t.TempDir()}, ln.Addr().String())
	body := chunkedReader{bytes.NewReader(make([]byte, 8<<20))} // more than the socket buffers hold
	resp, err := tr.RoundTrip(newReq(nil, "PUT", "/", body, nil))
	close(returned)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !<-seen {
		t.Error("the header PHP flushed waited for PHP's next output")
	}
}

// A connection to php-fpm that cannot be opened because the gateway has
// no file descriptor left is the gateway's failure, not php-fpm's: 500,
// as nginx answers when its socket() fails, and the backends stay in
// rotation. It was a 502, which blames php-fpm, and each backend tried
// was marked down ("php-fpm backend down, trying another"), so that with
// several backends one shortage took all of them out of rotation for
// their back-off.
func TestDialWithoutDescriptorsIs500(t *testing.T) {
	if !testfd.InChild(t) {
		return
	}
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	tr, logs := newTransport(t, Options{DialTimeout: time.Second}, addrs...)
	restore := testfd.Exhaust(t)
	_, err := tr.RoundTrip(newReq(nil, "GET", "/", nil, nil))
	stats := tr.Stats()
	restore()
	if StatusOf(err) != 500 || !errors.Is(err, syscall.EMFILE) {
		t.Errorf("dial with no descriptor left: %v, status %d; want 500 naming the error", err, StatusOf(err))
	}
	for _, st := range stats {
		if !st.Healthy {
			t.Errorf("backend %+v marked down for the gateway's own shortage", st)
		}
	}
	if strings.Contains(logs.String(), "backend down") {
		t.Errorf("logged a backend down:\n%s", logs.String())
	}
}

// The same for readiness: a probe that cannot open its connection for
// want of a file descriptor fails Ping and leaves every backend in
// rotation. It marked each one down, as a refused connection does.
func TestPingWithoutDescriptorsKeepsBackends(t *testing.T) {
	if !testfd.InChild(t) {
		return
	}
	a, b := newFakeServer(t, helloHandler), newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{}, a.Addr(), b.Addr())
	restore := testfd.Exhaust(t)
	err := tr.Ping(context.Background())
	stats := tr.Stats()
	restore()
	if !errors.Is(err, syscall.EMFILE) {
		t.Errorf("Ping with no descriptor left: %v, want the error named", err)
	}
	for _, st := range stats {
		if !st.Healthy {
			t.Errorf("backend %+v marked down for the gateway's own shortage", st)
		}
	}
	if err := tr.Ping(context.Background()); err != nil {
		t.Errorf("Ping once descriptors are back: %v", err)
	}
}

// PHP's stderr is logged with the request's path and client, as nginx's
// error log names the request and client of each "FastCGI sent in stderr"
// line: under a front controller every script is /index.php, which alone
// does not say which page warned. The path is the access log's (no
// query), cut at 4 KiB as there.
func TestStderrNamesTheRequest(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stderr("PHP message: PHP Warning:  something")
		respond(c, "", "ok")
		return true
	})
	lb := &testlog.Buffer{}
	tr, _ := newTransport(t, Options{Logger: slog.New(slog.NewJSONHandler(lb, nil))}, srv.Addr())
	long := "/" + strings.Repeat("p", 5000)
	for _, target := range []string{"/shop/cart?token=secret", long} {
		before := len(lb.String())
		if _, _, err := roundTrip(t, tr, newReq(nil, "GET", target, nil, nil)); err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		line, _, _ := strings.Cut(lb.String()[before:], "\n")
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		want := "/shop/cart"
		if target == long {
			want = long[:4096] + "..."
		}
		if rec["msg"] != "php stderr" || rec["path"] != want || rec["remote"] != testScript.RemoteAddr || rec["script"] != "/index.php" {
			t.Errorf("%s: logged %s; want its path %.40q and client %s", target, line, want, testScript.RemoteAddr)
		}
	}
}

// markUp and markDown at the same moment (one request's dial fails as
// another's answer arrives) could leave a back-off with no failure
// counted: markUp cleared the count between markDown's count and its
// back-off. The probe then stopped at once, its backend healthy by the
// count, and the backend stayed out of rotation for the whole back-off
// (up to downMax), accepting connections all along. The probe runs until
// the back-off is cleared too.
func TestBackOffWithoutFailureCountIsProbedAway(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	other := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{}, srv.Addr(), other.Addr())
	b := tr.backends[0]
	// What the race leaves: markDown's back-off stored after markUp
	// cleared the count.
	b.downUntil.Store(monoclock.Now() + int64(downMax))
	b.fails.Store(0)
	b.startProbing()
	waitHealthy(t, tr, 0, true, probeEvery+time.Second)
}

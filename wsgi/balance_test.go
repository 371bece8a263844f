package wsgi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testfd"
	"github.com/sessiongate/sessiongate/internal/testnet"
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

// A POST does not go out on a kept-alive connection idle for
// unsafeReuseIdle or more. The backend here closes a connection that
// idled that long when the next request arrives, without answering: on the
// wire that is gunicorn's keep-alive close (2 s by default) crossing the
// request, which no liveness check can see coming. The POST must get a new
// connection (200) instead of a 502 for a request Django never saw; a GET
// may still take the old connection, since it can be sent again.
func TestPOSTAvoidsConnectionsIdleNearTheBackendsKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				last := time.Now()
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if time.Since(last) >= unsafeReuseIdle {
						return // closed as the request arrives
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					last = time.Now()
				}
			}()
		}
	}()
	e := newEnv(t, envOpts{backends: func(http.Handler) []string {
		return []string{"http://" + ln.Addr().String()}
	}})
	if res, _, _ := e.do("GET", "/a/", "", nil); res.StatusCode != 200 {
		t.Fatalf("first GET: %d", res.StatusCode)
	}
	time.Sleep(unsafeReuseIdle + 100*time.Millisecond)
	res, _, _ := e.do("POST", "/a/", "", strings.NewReader("a=1"), "Content-Type", "application/x-www-form-urlencoded")
	if res.StatusCode != 200 {
		t.Fatalf("POST after %v idle: %d, want 200 on a new connection\n%s", unsafeReuseIdle, res.StatusCode, e.logs)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// A backend that takes connections but never answers (a gunicorn stopped
// with SIGSTOP, or whose workers are all stuck: the kernel still accepts
// into the listen queue) costs one request SESSIONGATE_DJANGO_TIMEOUT and a
// 504, then is skipped for the back-off like one that refuses connections,
// as nginx's max_fails counts a timeout. Before, it stayed in turn: every
// second request waited the whole timeout for a 504, for as long as it
// stayed silent.
func TestSilentBackendIsMarkedDown(t *testing.T) {
	silent := silentListener(t)
	e := newEnv(t, envOpts{
		backends: goodAnd(t, "http://"+silent.Addr().String()),
		opts:     func(o *Options) { o.ReadTimeout = 300 * time.Millisecond; o.FailTimeout = time.Minute },
	})
	codes := map[int]int{}
	for i := 0; i < 8; i++ {
		method, body := "GET", io.Reader(nil)
		if i%2 == 1 {
			method, body = "POST", strings.NewReader("a=1")
		}
		res, _, _ := e.do(method, "/a/", "", body)
		codes[res.StatusCode]++
	}
	if codes[http.StatusGatewayTimeout] != 1 || codes[200] != 7 {
		t.Fatalf("8 requests with one of two backends silent: %v, want one 504 and the rest 200\n%s", codes, e.logs)
	}
	if n := strings.Count(e.logs.String(), "marked down"); n != 1 {
		t.Fatalf("\"marked down\" logged %d times, want once\n%s", n, e.logs)
	}
}

// SESSIONGATE_DJANGO_DIAL_TIMEOUT is "time to connect to a Django backend
// before trying the next one (or 504)": a backend whose connect hangs (its
// listen queue full, or its host gone behind a firewall that drops
// packets) costs a request the dial timeout, then the next backend answers
// it, whatever its method, since the request never reached Django, and the
// hung backend is skipped for the back-off; with no other backend it is a
// 504, as nginx's proxy_connect_timeout gives.
func TestDialTimeoutTriesTheNextBackendThen504(t *testing.T) {
	hung := "http://" + testnet.FullTCPListener(t)
	e := newEnv(t, envOpts{
		backends: func(app http.Handler) []string {
			good := httptest.NewServer(app)
			t.Cleanup(good.Close)
			return []string{hung, good.URL}
		},
		opts: func(o *Options) { o.DialTimeout = 300 * time.Millisecond },
	})
	for i := 0; i < 4; i++ {
		if res, body, _ := e.do("POST", "/a/", "", strings.NewReader("a=1")); res.StatusCode != 200 {
			t.Fatalf("POST %d with the first of two backends hanging on connect: %d %q, want 200\n%s", i, res.StatusCode, body, e.logs)
		}
	}
	// Only the first paid the dial timeout: the hung backend is then
	// skipped for the back-off, as one that refuses connections is.
	if n := strings.Count(e.logs.String(), "marked down"); n != 1 {
		t.Errorf("\"marked down\" logged %d times, want once\n%s", n, e.logs)
	}

	alone := newEnv(t, envOpts{
		backends: func(http.Handler) []string { return []string{hung} },
		opts:     func(o *Options) { o.DialTimeout = 300 * time.Millisecond },
	})
	start := time.Now()
	res, _, _ := alone.do("GET", "/a/", "", nil)
	if took := time.Since(start); res.StatusCode != http.StatusGatewayTimeout || took > 2*time.Second {
		t.Fatalf("the only backend hanging on connect: %d after %v, want 504 after the dial timeout\n%s", res.StatusCode, took, alone.logs)
	}
}

// A view slower than SESSIONGATE_DJANGO_TIMEOUT on a backend that answers
// other requests meanwhile is one slow view, not a silent backend: its
// request gets 504 and the backend stays in turn. It used to be marked
// down for the back-off, which sent all the traffic to the other backend
// (and, with one backend, logged a live backend as marked down).
func TestSlowViewKeepsALiveBackendInTurn(t *testing.T) {
	var served [2]atomic.Int64
	e := newEnv(t, envOpts{
		backends: func(app http.Handler) []string {
			var urls []string
			for i := range served {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasPrefix(r.URL.Path, "/a/slow") {
						time.Sleep(time.Second)
					} else {
						served[i].Add(1)
					}
					app.ServeHTTP(w, r)
				}))
				t.Cleanup(srv.Close)
				urls = append(urls, srv.URL)
			}
			return urls
		},
		opts: func(o *Options) { o.ReadTimeout = 300 * time.Millisecond; o.FailTimeout = time.Minute },
	})
	slow := make(chan int, 1)
	go func() {
		res, err := noRedirect.Get(e.gw.URL + "/a/slow")
		if err != nil {
			slow <- 0
			return
		}
		res.Body.Close()
		slow <- res.StatusCode
	}()
	// Both backends answer other requests while the slow view runs.
	var code int
	for code == 0 {
		select {
		case code = <-slow:
		case <-time.After(20 * time.Millisecond):
			if res, _, _ := e.do("GET", "/a/", "", nil); res.StatusCode != 200 {
				t.Fatalf("a quick request while a view is slow: %d", res.StatusCode)
			}
		}
	}
	if code != http.StatusGatewayTimeout {
		t.Fatalf("a view slower than the timeout: %d, want 504", code)
	}
	before := [2]int64{served[0].Load(), served[1].Load()}
	for i := 0; i < 10; i++ {
		if res, _, _ := e.do("GET", "/a/", "", nil); res.StatusCode != 200 {
			t.Fatalf("after the 504: %d", res.StatusCode)
		}
	}
	for i := range served {
		if n := served[i].Load() - before[i]; n < 3 {
			t.Errorf("backend %d took %d of 10 requests after a slow view's 504, want its turn (5)", i, n)
		}
	}
	if strings.Contains(e.logs.String(), "marked down") {
		t.Errorf("a backend answering other requests was marked down:\n%s", e.logs)
	}
}

// PUT and DELETE are idempotent (RFC 9110 section 9.2.2): one that met a
// kept-alive connection the backend closed without answering (a gunicorn
// worker exiting after --max-requests or a reload stops reading the
// connections it kept) goes again on a new connection, body and all, as
// nginx sends again anything but POST, PATCH and LOCK. It used to be a
// 502, where nginx answered. POST and PATCH are still sent once.
func TestIdempotentMethodsSentAgainOnAClosedConnection(t *testing.T) {
	seen := make(chan string, 100)
	addr := rawBackend(t, func(_ int, c net.Conn, br *bufio.Reader) {
		for n := 0; ; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(req.Body)
			seen <- req.Method + " " + string(b)
			if n == 2 {
				// Each connection's third request: gone without an
				// answer. A backend that dropped the second would have
				// shown that it keeps no connection (closesEach).
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	drain := func() (got []string) {
		for {
			select {
			case s := <-seen:
				got = append(got, s)
			default:
				return got
			}
		}
	}
	for _, c := range []struct {
		method string
		want   int
		sent   int
	}{{"PUT", 200, 2}, {"DELETE", 200, 2}, {"POST", 502, 1}, {"PATCH", 502, 1}} {
		// A new connection answers its first two requests and is kept.
		e := newEnv(t, envOpts{backends: func(http.Handler) []string {
			return []string{"http://" + addr}
		}})
		for range 2 {
			if res, _, _ := e.do("GET", "/a/", "", nil); res.StatusCode != 200 {
				t.Fatalf("warm-up before %s: %d", c.method, res.StatusCode)
			}
		}
		drain()
		res, _, _ := e.do(c.method, "/a/", "", io.NopCloser(strings.NewReader("payload")), "Content-Type", "text/plain")
		got := drain()
		if res.StatusCode != c.want || len(got) != c.sent || got[len(got)-1] != c.method+" payload" {
			t.Errorf("%s on a kept-alive connection closed under it: %d, the backend got %q; want %d, sent %d times with its body\n%s",
				c.method, res.StatusCode, got, c.want, c.sent, e.logs)
		}
	}
}

// A Django backend the gateway cannot connect to because it has no file
// descriptor left is the gateway's failure: 500, as nginx answers when its
// socket() fails, with the error logged, and no backend is marked down. It
// was a 502 blaming Django, and every backend tried was taken out of turn
// for the back-off ("django backend unreachable; marked down"), so the
// site's Django pages kept failing after the shortage ended.
func TestDialWithoutDescriptorsIs500(t *testing.T) {
	if !testfd.InChild(t) {
		return
	}
	e := newEnv(t, envOpts{
		backends: func(app http.Handler) []string {
			var urls []string
			for range 2 {
				s := httptest.NewServer(app)
				t.Cleanup(s.Close)
				urls = append(urls, s.URL)
			}
			return urls
		},
		opts: func(o *Options) { o.FailTimeout = time.Minute },
	})
	restore := testfd.Exhaust(t)
	w := httptest.NewRecorder()
	e.proxy.ServeHTTP(w, httptest.NewRequest("GET", "/a/", nil))
	restore()
	if w.Code != http.StatusInternalServerError || !strings.Contains(e.logs.String(), "too many open files") {
		t.Errorf("no descriptor left to connect to Django: %d, log:\n%s\nwant 500 and the error logged", w.Code, e.logs)
	}
	if strings.Contains(e.logs.String(), "marked down") {
		t.Errorf("a backend marked down for the gateway's own shortage:\n%s", e.logs)
	}
	for range 4 {
		if res, _, _ := e.do("GET", "/a/", "", nil); res.StatusCode != 200 {
			t.Errorf("once descriptors are free: %d\n%s", res.StatusCode, e.logs)
		}
	}
}

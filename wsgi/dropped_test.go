package wsgi

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sessiongate/sessiongate/server"
)

// dropOn answers like app except for requests to /drop/, whose connection
// it closes without a byte of answer, as a gunicorn worker killed
// mid-request does.
func dropOn(app http.Handler, hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.HasPrefix(r.URL.Path, "/drop/") {
			io.Copy(io.Discard, r.Body)
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		app.ServeHTTP(w, r)
	})
}

// A GET, HEAD or OPTIONS that one backend drops without answering is
// answered by the next, as nginx's default proxy_next_upstream error does;
// a POST, which may have run, is not sent again (502), and the backend
// that dropped a request is not marked down.
func TestDroppedSafeRequestMovesToTheNextBackend(t *testing.T) {
	dir := t.TempDir()
	var dropHits, okHits atomic.Int64
	e := newEnv(t, envOpts{backends: func(app http.Handler) []string {
		a, b := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
		unixServer(t, a, dropOn(app, &dropHits))
		unixServer(t, b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			okHits.Add(1)
			app.ServeHTTP(w, r)
		}))
		return []string{"unix:" + a, "unix:" + b}
	}})
	// Each request goes first to A or B in turn; those A drops must end on B.
	for i := 0; i < 6; i++ {
		for _, m := range []string{"GET", "HEAD", "OPTIONS"} {
			if res, _, _ := e.do(m, "/drop/x", "", nil); res.StatusCode != 200 {
				t.Fatalf("%s %d: status %d\n%s", m, i, res.StatusCode, e.logs)
			}
		}
	}
	if dropHits.Load() == 0 || okHits.Load() != 18 {
		t.Fatalf("A saw %d, B answered %d of 18", dropHits.Load(), okHits.Load())
	}
	if strings.Contains(e.logs.String(), "marked down") {
		t.Fatalf("a backend that dropped a request was marked down:\n%s", e.logs)
	}
	if !strings.Contains(e.logs.String(), "trying the next backend") {
		t.Fatalf("the move to the next backend is not logged:\n%s", e.logs)
	}

	dropHits.Store(0)
	okHits.Store(0)
	var bad int
	for i := 0; i < 4; i++ {
		res, _, _ := e.do("POST", "/drop/x", "", strings.NewReader("a=1"), "Content-Type", "application/x-www-form-urlencoded")
		if res.StatusCode != 200 {
			if res.StatusCode != 502 {
				t.Fatalf("dropped POST: %d", res.StatusCode)
			}
			bad++
		}
	}
	if bad != int(dropHits.Load()) || bad == 0 || okHits.Load() != int64(4-bad) {
		t.Fatalf("POSTs: %d failed, A saw %d, B answered %d: a dropped POST was sent again", bad, dropHits.Load(), okHits.Load())
	}
}

// A request the only backend drops is a 502 whose log line names that
// backend (with several, "closed the connection without answering" alone
// does not say which gunicorn to look at), and the log does not claim a
// next backend is tried when there is none.
func TestDroppedRequestLogNamesTheBackend(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "only.sock")
	var hits atomic.Int64
	e := newEnv(t, envOpts{backends: func(app http.Handler) []string {
		unixServer(t, sock, dropOn(app, &hits))
		return []string{"unix:" + sock}
	}})
	for _, m := range []string{"GET", "POST"} {
		if res, _, _ := e.do(m, "/drop/x", "", strings.NewReader("a=1")); res.StatusCode != 502 {
			t.Fatalf("%s: %d, want 502", m, res.StatusCode)
		}
	}
	logs := e.logs.String()
	if strings.Contains(logs, "trying the next backend") {
		t.Errorf("the only backend dropped a GET, and the log says the next one is tried:\n%s", logs)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if strings.Contains(line, "django upstream error") && !strings.Contains(line, "unix:"+sock) {
			t.Errorf("502 line without the backend's name: %s", line)
		}
	}
	if n := strings.Count(logs, "django upstream error"); n != 2 {
		t.Errorf("%d upstream error lines, want 2:\n%s", n, logs)
	}
}

// The only backend (or the last one tried) gets a safe request it dropped
// again: gunicorn 22 and later drop connections a
// worker accepted but had not read when it exits (--max-requests, a
// reload), so with one gunicorn every reload failed a few GETs, PUTs and
// DELETEs. Twice more at most: a backend that drops it three times answers
// 502, and a POST is never sent twice.
func TestDroppedSafeRequestSentAgainToTheOnlyBackend(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "only.sock")
	var hits, drops atomic.Int64
	e := newEnv(t, envOpts{backends: func(app http.Handler) []string {
		drop := dropOn(app, new(atomic.Int64)) // drops only /drop/ paths
		unixServer(t, sock, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			if drops.Load() > 0 {
				drops.Add(-1)
				drop.ServeHTTP(w, r)
				return
			}
			// Every try on a new connection: a kept-alive one dropped
			// is sent again by the transport itself (errRetryable).
			w.Header().Set("Connection", "close")
			app.ServeHTTP(w, r)
		}))
		return []string{"unix:" + sock}
	}})
	for _, c := range []struct {
		method  string
		drops   int64
		status  int
		backend int64 // requests the backend saw
	}{
		{"GET", 1, 200, 2},
		{"PUT", 1, 200, 2},
		{"DELETE", 1, 200, 2},
		{"GET", 2, 200, 3},
		{"GET", 3, 502, 3},
		{"GET", 9, 502, 3},
		{"POST", 1, 502, 1},
	} {
		hits.Store(0)
		drops.Store(c.drops)
		res, _, _ := e.do(c.method, "/drop/x", "", strings.NewReader("a=1"), "Content-Type", "application/x-www-form-urlencoded")
		if res.StatusCode != c.status || hits.Load() != c.backend {
			t.Errorf("%s dropped %d times: %d after %d tries, want %d after %d\n%s", c.method, c.drops, res.StatusCode, hits.Load(), c.status, c.backend, e.logs)
		}
		drops.Store(0)
	}
	if !strings.Contains(e.logs.String(), "dropped a request without answering; sending it again") {
		t.Errorf("the second try is not logged:\n%s", e.logs)
	}
}

// A server that drops a request whose head is over its limit, as uWSGI's
// HTTP socket does past buffer-size (4096 bytes by default) with no answer:
// the 502 alone reads like a crashed worker, so the log says the head's
// size may be the cause, for a large head only.
func TestDroppedRequestWithABigHeadIsExplained(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "uwsgi.sock")
	ev := &events{}
	e := newEnv(t, envOpts{metrics: ev, backends: func(app http.Handler) []string {
		unixServer(t, sock, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, head := server.HeadSize(r.Method, r.RequestURI, r.Host, r.Header); head > 4096 || strings.HasPrefix(r.URL.Path, "/drop/") {
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close()
				}
				return
			}
			app.ServeHTTP(w, r)
		}))
		return []string{"unix:" + sock}
	}})
	const hint = "uWSGI's --buffer-size"
	const sessionHint = "keep the session smaller"
	for _, c := range []struct {
		size   int
		path   string
		method string
		status int
		warn   bool
		pad    int // bytes of a header of the client's own
	}{
		{1000, "/accounts/page/", "GET", 200, false, 0},
		{1000, "/drop/page/", "GET", 502, false, 0}, // dropped for another cause
		{4000, "/accounts/page/", "GET", 502, true, 0},
		{4000, "/accounts/page/", "POST", 502, true, 0},
		// Over the limit without the session: the advice and the
		// count are not the session's.
		{100, "/accounts/page/", "GET", 502, true, 4500},
	} {
		e.respond(answer{op: "write", data: `{"big":"` + strings.Repeat("x", c.size) + `"}`})
		_, _, ck := e.do("GET", "/accounts/big/", "", nil)
		e.respond(answer{})
		before, counted := strings.Count(e.logs.String(), hint), ev.count("django_session_too_big")
		advised := strings.Count(e.logs.String(), sessionHint)
		headers := []string{"Content-Type", "application/x-www-form-urlencoded"}
		if c.pad > 0 {
			headers = append(headers, "X-Pad", strings.Repeat("p", c.pad))
		}
		if res, _, _ := e.do(c.method, c.path, ck, strings.NewReader("a=1"), headers...); res.StatusCode != c.status {
			t.Fatalf("%s %s, session of %d: status %d, want %d\n%s", c.method, c.path, c.size, res.StatusCode, c.status, e.logs)
		}
		if warned := strings.Count(e.logs.String(), hint) > before; warned != c.warn {
			t.Errorf("%s %s, session of %d: warned %v, want %v\n%s", c.method, c.path, c.size, warned, c.warn, e.logs)
		}
		sessionsFault := c.warn && c.pad == 0
		if got := strings.Count(e.logs.String(), sessionHint) > advised; got != sessionsFault {
			t.Errorf("%s %s, session of %d, %d bytes of other headers: advised a smaller session %v, want %v\n%s", c.method, c.path, c.size, c.pad, got, sessionsFault, e.logs)
		}
		if n := ev.count("django_session_too_big") - counted; n != map[bool]int{true: 1}[sessionsFault] {
			t.Errorf("%s %s, session of %d, %d bytes of other headers: %d django_session_too_big events", c.method, c.path, c.size, c.pad, n)
		}
	}
}

// dropUnread closes the first n connections it accepts without reading
// them, as an exiting gunicorn worker (22 and later) drops the
// connections it accepted but had not read.
type dropUnread struct {
	net.Listener
	n atomic.Int32
}

func (l *dropUnread) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.n.Add(-1) < 0 {
			return c, err
		}
		c.Close()
	}
}

// A POST on connections the backend closed without reading them is sent
// again, up to twice, and runs once: it got 502 though Django never saw
// it. Whether the request arrived before the close (a reset) or after it
// (an end of stream, then a reset), it was provably never read
// (errUnread).
func TestPOSTTheBackendNeverReadIsSentAgain(t *testing.T) {
	for _, drops := range []int32{1, 2, 3} {
		var hits atomic.Int64
		e := newEnv(t, envOpts{backends: func(app http.Handler) []string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := &dropUnread{Listener: ln}
			l.n.Store(drops)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				app.ServeHTTP(w, r)
			})}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
			return []string{"http://" + ln.Addr().String()}
		}})
		res, _, _ := e.do("POST", "/accounts/x", "", strings.NewReader("a=1"), "Content-Type", "application/x-www-form-urlencoded")
		want, runs := 200, int64(1)
		if drops > maxSentAgain {
			want, runs = 502, 0
		}
		if res.StatusCode != want || hits.Load() != runs {
			t.Errorf("POST on %d connections closed unread: %d, ran %d times; want %d, ran %d times\n%s", drops, res.StatusCode, hits.Load(), want, runs, e.logs)
		}
	}
}

package wsgi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// events counts the session events a Manager reports.
type events struct {
	mu sync.Mutex
	n  map[string]int
}

func (e *events) SessionEvent(event string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = map[string]int{}
	}
	e.n[event]++
}

func (e *events) LockWait(time.Duration) {}

func (e *events) count(event string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n[event]
}

const (
	middlewareMissing = "without sessiongate_django's middleware"
	sessionRefused    = "Django refused the gateway's session"
)

// A Django that answers without sessiongate_django's middleware (MIDDLEWARE
// still lists Django's own) or whose middleware refuses the gateway's
// signature (SESSIONGATE_SESSION_KEYS differs) serves its pages with
// another session or none: users looked logged out on Django and nothing
// was logged. Each such response is counted and a line naming the cause
// and the fix is logged once a minute; what answers before the middleware
// (redirects, 304, 400, 5xx, CORS preflights) is not taken for a missing
// one, nor is an unmarked answer of a backend that marked a response in
// the last ten minutes (whitenoise's files, a health check at the top of
// MIDDLEWARE).
func TestDjangoMarkReported(t *testing.T) {
	ev := &events{}
	e := newEnv(t, envOpts{metrics: ev})
	var now atomic.Int64
	now.Store(time.Unix(100000, 0).UnixNano())
	e.proxy.now = func() time.Time { return time.Unix(0, now.Load()) }
	e.proxy.pool.mono = now.Load
	later := func(d time.Duration) { now.Add(int64(d)) }
	get := func(method, path string, a answer) {
		t.Helper()
		e.respond(a)
		res, _, _ := e.do(method, path, "", nil)
		noInternalHeaders(t, res.Header)
		if want := max(a.status, 200); res.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d", method, path, res.StatusCode, want)
		}
	}
	missing := func() int { return ev.count("django_middleware_missing") }

	for range 3 {
		get("GET", "/accounts/", answer{mark: "-"})
	}
	logs := e.logs.String()
	if n := strings.Count(logs, middlewareMissing); n != 1 || missing() != 3 {
		t.Fatalf("3 unmarked pages: %d lines (want 1), %d counted (want 3):\n%s", n, missing(), logs)
	}
	for _, want := range []string{"django.contrib.sessions.middleware.SessionMiddleware", `\"sessiongate_django.SessionMiddleware\"`, "older than this gateway", "status=200", "path=/accounts/"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the line does not say %s:\n%s", want, logs)
		}
	}

	// What an earlier middleware or gunicorn answers by itself.
	for _, a := range []answer{{status: 301}, {status: 302}, {status: 304}, {status: 400}, {status: 500}, {status: 502}} {
		a.mark = "-"
		get("GET", "/accounts/", a)
	}
	get("OPTIONS", "/accounts/", answer{mark: "-"})
	if missing() != 3 {
		t.Errorf("redirects, 304, 400, 5xx or a preflight counted as a missing middleware: %d", missing())
	}

	// A marked page, then unmarked answers within ten minutes: a
	// middleware listed before ours answered them.
	later(time.Hour)
	get("GET", "/accounts/", answer{})
	later(9 * time.Minute)
	get("GET", "/static/site.css", answer{mark: "-"})
	if missing() != 3 {
		t.Errorf("an unmarked file right after a marked page counted: %d", missing())
	}
	later(2 * time.Minute)
	get("GET", "/static/site.css", answer{mark: "-"})
	if missing() != 4 {
		t.Errorf("no marked page for 11 minutes, then an unmarked one: counted %d, want 4", missing())
	}

	// An older middleware marks nothing, but its signed change shows it ran.
	later(time.Hour)
	get("GET", "/accounts/", answer{mark: "-", op: "touch"})
	get("GET", "/static/site.css", answer{mark: "-"})
	if missing() != 4 {
		t.Errorf("an unmarked file after a verified change counted: %d", missing())
	}

	// Refusals name the setting or the clock.
	before := len(e.logs.String())
	get("GET", "/accounts/", answer{mark: "refused-signature"})
	get("GET", "/accounts/", answer{mark: "refused-clock"})
	logs = e.logs.String()[before:]
	if n := strings.Count(logs, sessionRefused); n != 1 || ev.count("django_signature_rejected") != 2 {
		t.Fatalf("2 refusals: %d lines (want 1, once a minute), %d counted (want 2):\n%s", n, ev.count("django_signature_rejected"), logs)
	}
	for _, want := range []string{"SESSIONGATE_SESSION_KEYS", "mark=refused-signature"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the line does not say %s:\n%s", want, logs)
		}
	}
	if missing() != 4 {
		t.Errorf("a refusal counted as a missing middleware too: %d", missing())
	}
}

// The ten minutes after a marked response, in which an unmarked one is
// taken for an earlier middleware's answer, were measured on the wall
// clock: stepped back an hour (NTP, a VM restored), it kept a missing
// middleware unreported for that hour.
func TestDjangoMarkWindowAcrossAWallClockStepBack(t *testing.T) {
	ev := &events{}
	e := newEnv(t, envOpts{metrics: ev})
	wall := time.Unix(100000, 0)
	var mono atomic.Int64
	mono.Store(int64(time.Hour))
	e.proxy.now = func() time.Time { return wall }
	e.proxy.pool.mono = mono.Load
	get := func(a answer) {
		t.Helper()
		e.respond(a)
		if res, _, _ := e.do("GET", "/accounts/", "", nil); res.StatusCode != 200 {
			t.Fatalf("GET: %d", res.StatusCode)
		}
	}
	get(answer{}) // marked
	wall = wall.Add(-time.Hour)
	mono.Add(int64(11 * time.Minute))
	get(answer{mark: "-"})
	if n := ev.count("django_middleware_missing"); n != 1 {
		t.Errorf("an unmarked page 11 minutes after the last marked one, the wall clock stepped back an hour meanwhile: counted %d, want 1", n)
	}
}

// With several gunicorns, one set up without the middleware (a host left
// on the old settings) loses the session for its share of the pages: the
// good ones' marked pages must not hide it, and the line names it.
func TestDjangoMarkPerBackend(t *testing.T) {
	ev := &events{}
	var bad string
	e := newEnv(t, envOpts{metrics: ev, backends: func(app http.Handler) []string {
		good := httptest.NewServer(app)
		t.Cleanup(good.Close)
		old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "page") // Django's own SessionMiddleware: no mark
		}))
		t.Cleanup(old.Close)
		bad = old.URL
		return []string{good.URL, old.URL}
	}})
	for range 4 {
		e.do("GET", "/accounts/", "", nil)
	}
	logs := e.logs.String()
	if n := ev.count("django_middleware_missing"); n != 2 {
		t.Errorf("4 pages over a good and a bad backend: %d counted, want 2", n)
	}
	if n := strings.Count(logs, middlewareMissing); n != 1 || !strings.Contains(logs, "backend="+bad) {
		t.Errorf("%d lines, want 1 naming %s:\n%s", n, bad, logs)
	}
}

// Right after a gateway start no response of a backend has been marked yet,
// so when the first one was a static file that whitenoise (listed before
// the session middleware) answered, one false "middleware missing" line
// was logged and counted. An unmarked answer with Last-Modified, which
// whitenoise sends with every file, is taken for such a file; an unmarked
// page is still reported at once.
func TestDjangoMarkFileFirstAfterStart(t *testing.T) {
	ev := &events{}
	e := newEnv(t, envOpts{metrics: ev})
	e.app.handle = func(w http.ResponseWriter, r *http.Request, _ seen) (answer, bool) {
		if strings.HasPrefix(r.URL.Path, "/static/") {
			w.Header().Set("Last-Modified", "Sat, 05 Dec 2026 06:00:00 GMT")
			w.Header().Set("ETag", `"v1"`)
		}
		return answer{mark: "-"}, true
	}
	for _, m := range []string{"GET", "HEAD"} {
		if res, _, _ := e.do(m, "/static/site.css", "", nil); res.StatusCode != 200 {
			t.Fatalf("%s: %d", m, res.StatusCode)
		}
	}
	if n := ev.count("django_middleware_missing"); n != 0 || strings.Contains(e.logs.String(), middlewareMissing) {
		t.Fatalf("whitenoise's files right after a start: %d counted, want 0:\n%s", n, e.logs)
	}
	e.do("GET", "/accounts/", "", nil)
	if n := ev.count("django_middleware_missing"); n != 1 || !strings.Contains(e.logs.String(), middlewareMissing) {
		t.Fatalf("an unmarked page after the files: %d counted, want 1 and a line:\n%s", n, e.logs)
	}
}

// A gateway that waits longer than the middleware's 60 s window for
// Django (SESSIONGATE_DJANGO_TIMEOUT over 60 s) signs how much older a
// request's timestamp may be (X-Sessiongate-Max-Age): a request that sat
// in gunicorn's queue behind busy workers is still its own. When the
// middleware refuses the timestamp all the same (one older than this
// gateway), the line says the request waited in the backend, not that the
// clocks differ; a prompt answer refused so still names the clocks.
func TestDjangoMaxAgeAndTheQueuedRefusal(t *testing.T) {
	for _, tc := range []struct {
		readTimeout time.Duration
		queued      time.Duration
		maxAge      string
		want        string
	}{
		{2 * time.Second, 0, "", "synchronize the clocks"},
		{60 * time.Second, 0, "", "synchronize the clocks"},
		{90 * time.Second, 70 * time.Second, "91", "waited 70s in the backend"},
		{89500 * time.Millisecond, 58 * time.Second, "91", "waited 58s in the backend"},
		{90 * time.Second, 10 * time.Second, "91", "synchronize the clocks"},
	} {
		t.Run(tc.readTimeout.String()+"/"+tc.queued.String(), func(t *testing.T) {
			var offset atomic.Int64
			e := newEnv(t, envOpts{opts: func(o *Options) { o.ReadTimeout = tc.readTimeout }})
			base := time.Now()
			e.proxy.now = func() time.Time { return base.Add(time.Duration(offset.Load())) }
			var maxAge, maxAgeSig, nonce atomic.Value
			e.app.handle = func(w http.ResponseWriter, r *http.Request, s seen) (answer, bool) {
				maxAge.Store(r.Header.Get(hdrMaxAge))
				maxAgeSig.Store(r.Header.Get(hdrMaxAgeSig))
				nonce.Store(r.Header.Get(hdrNonce))
				offset.Add(int64(tc.queued)) // the wait in the backend's queue
				return answer{mark: "refused-clock"}, true
			}
			e.do("GET", "/accounts/", "", nil)
			if got := maxAge.Load().(string); got != tc.maxAge {
				t.Errorf("%s: %q, want %q", hdrMaxAge, got, tc.maxAge)
			}
			if tc.maxAge != "" {
				if got, want := maxAgeSig.Load().(string), MaxAgeSignature(e.app.key, nonce.Load().(string), tc.maxAge); got != want {
					t.Errorf("%s: %s, want %s", hdrMaxAgeSig, got, want)
				}
			} else if got := maxAgeSig.Load().(string); got != "" {
				t.Errorf("%s sent without %s: %s", hdrMaxAgeSig, hdrMaxAge, got)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, sessionRefused) || !strings.Contains(logs, tc.want) {
				t.Errorf("the refusal's line does not say %q:\n%s", tc.want, logs)
			}
		})
	}
}

package wsgi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// checkCounter serves h and counts the gateway's checks apart from the
// requests. net/http would answer OPTIONS * itself, unseen by h.
type checkCounter struct {
	h         http.Handler
	checks    atomic.Int64
	requests  atomic.Int64
	bad       atomic.Value // string: a check not shaped as the gateway sends it
	checkHost atomic.Value // string: the last check's Host
}

func (c *checkCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == "OPTIONS" && r.RequestURI == "*" {
		if r.Header.Get(checkHeader) != "1" || r.Host == "" || !r.Close {
			c.bad.Store(r.Method + " " + r.RequestURI + " " + r.Host)
		}
		c.checkHost.Store(r.Host)
		c.checks.Add(1)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	c.requests.Add(1)
	c.h.ServeHTTP(w, r)
}

func serveCounted(t *testing.T, l net.Listener, c *checkCounter) {
	t.Helper()
	srv := &http.Server{Handler: c, DisableGeneralOptionsHandler: true}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func startCounted(t *testing.T, h http.Handler) (*checkCounter, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &checkCounter{h: h}
	serveCounted(t, l, c)
	return c, "http://" + l.Addr().String()
}

// readingSilentBackend takes every connection and reads what comes,
// answering nothing: a gunicorn whose every worker is stuck in a view.
func readingSilentBackend(t *testing.T) string {
	t.Helper()
	return rawBackend(t, func(_ int, _ net.Conn, br *bufio.Reader) { io.Copy(io.Discard, br) })
}

// goodAnd is envOpts.backends for a backend serving the fake Django app,
// listed first, and then others.
func goodAnd(t *testing.T, others ...string) func(http.Handler) []string {
	return func(app http.Handler) []string {
		good := httptest.NewServer(app)
		t.Cleanup(good.Close)
		return append([]string{good.URL}, others...)
	}
}

// silentListener accepts into its listen queue and answers nothing, like a
// stopped gunicorn, until it is served.
func silentListener(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func waitLog(t *testing.T, e *env, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(e.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within %v:\n%s", want, within, e.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// thawAndRequest serves the silent listener, waits for the gateway to put
// it back in turn, and sends 6 requests, of which it must answer some.
func thawAndRequest(t *testing.T, e *env, silent net.Listener) *checkCounter {
	t.Helper()
	thawed := &checkCounter{h: e.app}
	serveCounted(t, silent, thawed)
	waitLog(t, e, "django backend answers again; back in turn", 3*time.Second)
	for i := 0; i < 6; i++ {
		if res, body, _ := e.do("GET", "/a/", "", nil); res.StatusCode != 200 {
			t.Fatalf("request %d once the backend answers again: %d %q", i, res.StatusCode, body)
		}
	}
	if n := thawed.requests.Load(); n < 2 {
		t.Fatalf("the backend that answers again got %d of 6 requests", n)
	}
	return thawed
}

// A backend found silent by a request stays out of turn after the
// back-off, until it answers a check. Before, it came back after
// FailTimeout and the requests sent to it waited their whole timeout
// again: with two backends about half of them, for as long as it stayed
// silent.
func TestSilentBackendStaysOutUntilItAnswersACheck(t *testing.T) {
	t.Parallel()
	silent := silentListener(t)
	e := newEnv(t, envOpts{
		backends: goodAnd(t, "http://"+silent.Addr().String()),
		opts: func(o *Options) {
			o.ReadTimeout, o.FailTimeout = time.Second, 100*time.Millisecond
			o.CheckInterval, o.recheckEvery = time.Minute, 100*time.Millisecond
		},
	})
	codes := map[int]int{}
	for i := 0; i < 12; i++ {
		res, _, _ := e.do("GET", "/a/", "", nil)
		codes[res.StatusCode]++
		time.Sleep(50 * time.Millisecond)
	}
	if codes[http.StatusGatewayTimeout] != 1 || codes[200] != 11 {
		t.Fatalf("12 requests over more than 6 back-offs with one of two backends silent: %v, want one 504 and eleven 200\n%s", codes, e.logs)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "sent no answer in time; marked down"); n != 1 || !strings.Contains(logs, `for="until it answers a check" found_by=request`) {
		t.Fatalf("marked down %d times, or not until a check answers:\n%s", n, logs)
	}
	if st := e.proxy.Backends(); !st[0].InTurn || st[1].InTurn || st[1].Name != "http://"+silent.Addr().String() {
		t.Fatalf("backends while one is silent: %+v", st)
	}

	thawed := thawAndRequest(t, e, silent)
	if st := e.proxy.Backends(); !st[0].InTurn || !st[1].InTurn {
		t.Fatalf("backends once both answer: %+v", st)
	}
	if bad := thawed.bad.Load(); bad != nil {
		t.Fatalf("check sent as %q", bad)
	}
}

// A backend that stops answering while no request goes to it is found by
// the periodic check: no request waits on it. The other one, quiet too,
// answers its checks and stays in turn.
func TestCheckFindsAQuietSilentBackend(t *testing.T) {
	t.Parallel()
	silent := silentListener(t)
	var good *checkCounter
	var goodURL string
	e := newEnv(t, envOpts{
		backends: func(app http.Handler) []string {
			good, goodURL = startCounted(t, app)
			return []string{goodURL, "http://" + silent.Addr().String()}
		},
		opts: func(o *Options) {
			o.ReadTimeout = 30 * time.Second
			o.CheckInterval, o.recheckEvery = 300*time.Millisecond, 100*time.Millisecond
		},
	})
	waitLog(t, e, `sent no answer in time; marked down" backend=http://`+silent.Addr().String()+` for="until it answers a check" found_by="periodic check"`, probeWait+3*time.Second)
	for i := 0; i < 6; i++ {
		start := time.Now()
		res, body, _ := e.do("GET", "/a/", "", nil)
		if took := time.Since(start); res.StatusCode != 200 || took > 5*time.Second {
			t.Fatalf("request %d with the silent backend out of turn: %d %q after %v", i, res.StatusCode, body, took)
		}
	}
	if good.checks.Load() == 0 || strings.Contains(e.logs.String(), `marked down" backend=`+goodURL) {
		t.Fatalf("the live backend: %d checks answered; log:\n%s", good.checks.Load(), e.logs)
	}
	if bad := good.bad.Load(); bad != nil {
		t.Fatalf("check sent as %q", bad)
	}

	thawAndRequest(t, e, silent)
}

// A backend that answers requests is not checked; a quiet one is, about
// once per interval; Close stops the checks.
func TestCheckLeavesAnsweringBackendsAlone(t *testing.T) {
	t.Parallel()
	var be *checkCounter
	e := newEnv(t, envOpts{
		backends: func(app http.Handler) []string {
			var url string
			be, url = startCounted(t, app)
			return []string{url}
		},
		opts: func(o *Options) { o.CheckInterval, o.recheckEvery = time.Second, 50*time.Millisecond },
	})
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(40 * time.Millisecond) {
		if res, _, _ := e.do("GET", "/a/", "", nil); res.StatusCode != 200 {
			t.Fatalf("request: %d", res.StatusCode)
		}
	}
	if n := be.checks.Load(); n != 0 {
		t.Fatalf("%d checks while the backend answered a request every 40 ms, with a 1 s interval", n)
	}
	time.Sleep(2500 * time.Millisecond)
	n := be.checks.Load()
	if n < 1 || n > 3 {
		t.Fatalf("%d checks over 2.5 s of quiet with a 1 s interval, want 1 to 3", n)
	}
	e.proxy.Close()
	time.Sleep(200 * time.Millisecond)
	after := be.checks.Load()
	time.Sleep(700 * time.Millisecond)
	if m := be.checks.Load(); m != after {
		t.Fatalf("%d checks after Close", m-after)
	}
	if strings.Contains(e.logs.String(), "marked down") {
		t.Fatalf("a live backend was marked down:\n%s", e.logs)
	}
}

// A backend that refuses connections (a gunicorn restarting) is out of
// turn until it answers a check, however long that takes, and back as soon
// as it does; the requests meanwhile go to the other backend.
func TestRefusingBackendBackWhenItAnswersACheck(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "gunicorn.sock")
	e := newEnv(t, envOpts{
		backends: goodAnd(t, "unix:"+sock),
		opts: func(o *Options) {
			o.FailTimeout = 50 * time.Millisecond
			o.CheckInterval, o.recheckEvery = time.Minute, 100*time.Millisecond
		},
	})
	for i := 0; i < 10; i++ {
		if res, body, _ := e.do("POST", "/a/", "", strings.NewReader("a=1")); res.StatusCode != 200 {
			t.Fatalf("POST %d with one of two backends refusing: %d %q", i, res.StatusCode, body)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if n := strings.Count(e.logs.String(), "django backend unreachable; marked down"); n != 1 {
		t.Fatalf("marked down %d times, want once:\n%s", n, e.logs)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	back := &checkCounter{h: e.app}
	serveCounted(t, l, back)
	waitLog(t, e, `django backend answers again; back in turn" backend=unix:`+sock, 3*time.Second)
	for i := 0; i < 4; i++ {
		if res, _, _ := e.do("GET", "/a/", "", nil); res.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
	}
	if back.requests.Load() < 1 || back.checks.Load() < 1 {
		t.Fatalf("the backend back in turn: %d requests, %d checks", back.requests.Load(), back.checks.Load())
	}
	if bad := back.bad.Load(); bad != nil {
		t.Fatalf("check sent as %q", bad)
	}
}

// A backend that stops answering while requests wait on it is taken out
// of turn by the check once it began no answer for the interval, long
// before those requests' own timeout: the requests after that go to the
// other backend at once.
func TestCheckFindsABackendThatHungUnderRequests(t *testing.T) {
	t.Parallel()
	hung := readingSilentBackend(t)
	e := newEnv(t, envOpts{
		backends: goodAnd(t, "http://"+hung),
		opts: func(o *Options) {
			o.ReadTimeout = 6 * time.Second
			o.CheckInterval, o.recheckEvery = 300*time.Millisecond, 100*time.Millisecond
		},
	})
	// Four at once: about every second one is held by the hung backend
	// and waits for its 504.
	held := make(chan int, 4)
	for i := 0; i < 4; i++ {
		go func() {
			res, _, _ := e.do("GET", "/a/", "", nil)
			held <- res.StatusCode
		}()
	}
	found := `sent no answer in time; marked down" backend=http://` + hung + ` for="until it answers a check" found_by="periodic check"`
	waitLog(t, e, found, probeWait+3*time.Second)
	if n := len(held); n > 2 {
		t.Fatalf("%d of 4 requests answered before the hung backend was found; its own should still wait", n)
	}
	for i := 0; i < 6; i++ {
		start := time.Now()
		res, body, _ := e.do("GET", "/a/", "", nil)
		if took := time.Since(start); res.StatusCode != 200 || took > 5*time.Second {
			t.Fatalf("request %d after the hung backend was found: %d %q after %v", i, res.StatusCode, body, took)
		}
	}
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		codes[<-held]++
	}
	if codes[http.StatusGatewayTimeout] == 0 || codes[200]+codes[http.StatusGatewayTimeout] != 4 {
		t.Fatalf("the four first requests: %v, want those held by the hung backend to get 504 and the rest 200", codes)
	}
}

// The check carries the Host of the last request the backend answered
// under 400, so that a middleware before sessiongate_django's that looks
// at it (a redirect to HTTPS) finds one the site allows; a Host Django
// refused is not used.
func TestCheckCarriesAHostTheSiteAnswered(t *testing.T) {
	t.Parallel()
	var be *checkCounter
	e := newEnv(t, envOpts{
		backends: func(app http.Handler) []string {
			var url string
			be, url = startCounted(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Host != "shop.example" {
					http.Error(w, "DisallowedHost", http.StatusBadRequest)
					return
				}
				app.ServeHTTP(w, r)
			}))
			return []string{url}
		},
		opts: func(o *Options) { o.CheckInterval, o.recheckEvery = time.Second, 50*time.Millisecond },
	})
	client := &http.Client{Timeout: 10 * time.Second}
	for _, host := range []string{"shop.example", "evil.example"} {
		req, _ := http.NewRequest("GET", e.gw.URL+"/a/", nil)
		req.Host = host
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for be.checks.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no check within 5 s of quiet with a 1 s interval")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h := be.checkHost.Load(); h != "shop.example" {
		t.Fatalf("the check's Host: %v, want shop.example (the last one answered under 400)", h)
	}
}

// A backend that answered no request yet is checked with the Host another
// backend answered, or before any answer with Options.CheckHost (the
// site's name), not with its own address, which ALLOWED_HOSTS rarely
// lists.
func TestCheckHostBeforeTheBackendAnswered(t *testing.T) {
	t.Parallel()
	var one, two *checkCounter
	e := newEnv(t, envOpts{
		backends: func(app http.Handler) []string {
			var u1, u2 string
			one, u1 = startCounted(t, app)
			two, u2 = startCounted(t, app)
			return []string{u1, u2}
		},
		opts: func(o *Options) {
			o.CheckInterval, o.recheckEvery, o.CheckHost = time.Second, 50*time.Millisecond, "site.example"
		},
	})
	waitChecks := func(c ...*checkCounter) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for _, b := range c {
			for b.checks.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no check within 5 s of quiet with a 1 s interval")
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	waitChecks(one, two)
	if h1, h2 := one.checkHost.Load(), two.checkHost.Load(); h1 != "site.example" || h2 != "site.example" {
		t.Fatalf("checks before any request carried Host %v and %v, want site.example", h1, h2)
	}

	req, _ := http.NewRequest("GET", e.gw.URL+"/a/", nil)
	req.Host = "shop.example"
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	answered, other := one, two
	if two.requests.Load() == 1 {
		answered, other = two, one
	}
	answered.checks.Store(0)
	other.checks.Store(0)
	waitChecks(answered, other)
	if h1, h2 := answered.checkHost.Load(), other.checkHost.Load(); h1 != "shop.example" || h2 != "shop.example" {
		t.Fatalf("checks after one backend answered shop.example carried Host %v (that backend) and %v (the other)", h1, h2)
	}
}

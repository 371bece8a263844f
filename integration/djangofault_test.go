package integration

// The Django upstream under gunicorn faults (restart, reload, killed
// workers), with several backends and a unix socket backend.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

const faultDjangoURLs = `
import os, time
from django.urls import path
from django.http import HttpResponse, StreamingHttpResponse

def slow(request):
    ms = int(request.GET.get("ms", "0"))
    rid = request.headers.get("X-Req-Id", "")
    if request.method == "POST" and rid:
        with open(os.environ["SG_RUNLOG"], "a") as f:
            f.write(rid + "\n")
    if ms:
        time.sleep(ms / 1000.0)
    if rid:
        with open(os.environ["SG_RUNLOG"], "a") as f:
            f.write("done-" + rid + "\n")
    return HttpResponse(b"ok " + str(os.getpid()).encode())

def setkey(request):
    request.session["k"] = "v"
    return HttpResponse(b"ok")

def die(request):
    # Under SG_DIE the worker dies mid-request without answering, as one
    # killed by the OOM killer or a segfaulting C extension does.
    rid = request.headers.get("X-Req-Id", "")
    if rid:
        with open(os.environ["SG_RUNLOG"], "a") as f:
            f.write(rid + "\n")
    d = request.session.get("d", 0) + 1
    request.session["d"] = d
    if os.environ.get("SG_DIE"):
        os._exit(1)
    return HttpResponse(("ok %d d=%d" % (os.getpid(), d)).encode())

def setslow(request):
    request.session["k"] = request.GET.get("v", "")
    time.sleep(int(request.GET.get("ms", "0")) / 1000.0)
    return HttpResponse(b"ok")

def getkey(request):
    return HttpResponse(request.session.get("k", "-").encode())

def setbig(request):
    # ?n=: a value of n bytes; without, the length of the one stored.
    if "n" not in request.GET:
        return HttpResponse(str(len(request.session.get("big", ""))).encode())
    request.session["big"] = "x" * int(request.GET["n"])
    return HttpResponse(b"ok")

def stream(request):
    # A long export: some rows, then a stall a worker is killed in.
    def rows():
        yield b"x" * 65536
        time.sleep(int(request.GET.get("ms", "0")) / 1000.0)
        yield b"end"
    request.session["k"] = "streamed"
    return StreamingHttpResponse(rows())

def inc(request):
    # Counts the session's POSTs; the runlog says which ran.
    if request.method == "POST":
        with open(os.environ["SG_RUNLOG"], "a") as f:
            f.write(request.headers.get("X-Req-Id", "") + "\n")
        request.session["n"] = request.session.get("n", 0) + 1
        time.sleep(0.005)
    return HttpResponse(str(request.session.get("n", 0)).encode())

urlpatterns = [path("dj/inc/", inc), path("dj/slow/", slow), path("dj/set/", setkey), path("dj/die/", die),
    path("dj/setslow/", setslow), path("dj/get/", getkey), path("dj/stream/", stream), path("dj/setbig/", setbig)]
`

// faultProject writes a minimal Django project whose view records every
// POST's X-Req-Id in runlog, and returns its directory.
func faultProject(t *testing.T) (dir string) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "gunicorn", "django")
	return djangoProject(t, "faultproj", strings.ReplaceAll(bodyDjangoSettings, "bodyproj", "faultproj"), faultDjangoURLs)
}

func startFaultGunicorn(t *testing.T, proj, runlog string, o harness.GunicornOptions) *harness.Gunicorn {
	t.Helper()
	pkg, err := filepath.Abs("../wsgi/django")
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = proj
	if o.App == "" {
		o.App = "faultproj.wsgi:application"
	}
	o.Env = append(o.Env, "SG_PKG="+pkg, "SESSIONGATE_SESSION_KEYS="+sessionTestKey, "SG_RUNLOG="+runlog)
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.Threads == 0 {
		o.Threads = 4
	}
	g := harness.StartGunicorn(t, o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn %s log:\n%s", g.Addr, g.Log())
		}
	})
	return g
}

// startDjangoGateway starts one gateway (sessions on, an idle php-fpm)
// that sends /dj/ to djangoURL; extra adds SESSIONGATE_* settings.
func startDjangoGateway(t *testing.T, djangoURL string, extra ...string) *sessionGW {
	t.Helper()
	root := t.TempDir()
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	cfg, err := config.Load(append([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_INDEX=off",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_DJANGO_URL=" + djangoURL,
		"SESSIONGATE_DJANGO_PATHS=/dj/",
	}, extra...))
	if err != nil {
		t.Fatal(err)
	}
	return startGateways(t, cfg, 1)[0]
}

// startURLConfDjango runs the body project (bodyDjangoSettings) with urls
// as its URL conf under one gunicorn worker, env added to gunicorn's
// environment, behind startDjangoGateway with extra.
func startURLConfDjango(t *testing.T, urls string, env []string, extra ...string) *sessionGW {
	t.Helper()
	return startBodyProject(t, bodyDjangoSettings, urls, env, extra...)
}

// startBodyProject is startURLConfDjango with the project's settings too
// (bodyDjangoSettings changed).
func startBodyProject(t *testing.T, settings, urls string, env []string, extra ...string) *sessionGW {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "gunicorn", "django")
	proj := djangoProject(t, "bodyproj", settings, urls)
	pkg, err := filepath.Abs("../wsgi/django")
	if err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: proj, App: "bodyproj.wsgi:application",
		Env: append([]string{"SG_PKG=" + pkg, "SESSIONGATE_SESSION_KEYS=" + sessionTestKey}, env...), Workers: 1})
	return startDjangoGateway(t, g.URL(), extra...)
}

type faultResult struct {
	method string
	id     string
	status int
	err    error
}

// sendFault sends one request of a fault test, with its X-Req-Id (what
// Django's run log records of it), and reads the answer whole.
func sendFault(client *http.Client, method, url, id string, body io.Reader) faultResult {
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Req-Id", id)
	r := faultResult{method: method, id: id}
	res, err := client.Do(req)
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		r.status = res.StatusCode
	}
	r.err = err
	return r
}

// faultLoad runs workers clients sending GETs and POSTs (each POST with
// its own X-Req-Id) until stop is closed, and returns every result.
func faultLoad(t *testing.T, gw *sessionGW, workers int, ms int, stop <-chan struct{}) func() []faultResult {
	var mu sync.Mutex
	var out []faultResult
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				method := "GET"
				if i%2 == 1 {
					method = "POST"
				}
				var body io.Reader
				if method == "POST" {
					body = strings.NewReader("a=1")
				}
				r := sendFault(client, method, fmt.Sprintf("%s/dj/slow/?ms=%d", gw.URL, ms), fmt.Sprintf("w%d-%d", w, i), body)
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}
		}()
	}
	return func() []faultResult { wg.Wait(); return out }
}

// checkFaultRun fails on a hang (the client's timeout), on a POST run
// twice, and when no request succeeded. A connection the gateway closed
// without an answer counts as a failed request, not a hang: a worker killed
// between Django's header and body cuts the response, which the gateway
// aborts (README: a cut answer never passes for whole), and when nothing
// had left yet the client sees the connection end (seen once in CI).
func checkFaultRun(t *testing.T, results []faultResult, runlog string) {
	t.Helper()
	seen, _ := readSlowRunlog(runlog)
	var ok, failed int
	for _, r := range results {
		if r.method == "POST" && seen[r.id] > 1 {
			t.Errorf("POST %s ran %d times in Django (status %d, error %v)", r.id, seen[r.id], r.status, r.err)
		}
		if r.err != nil {
			var ne net.Error
			if errors.As(r.err, &ne) && ne.Timeout() {
				t.Errorf("%s %s: no answer: %v", r.method, r.id, r.err)
				continue
			}
			failed++
			t.Logf("%s %s: connection ended without an answer: %v (reached django: %v)", r.method, r.id, r.err, seen[r.id] > 0)
			continue
		}
		if r.status == 200 {
			ok++
			continue
		}
		failed++
		t.Logf("%s %s: %d (reached django: %v)", r.method, r.id, r.status, seen[r.id] > 0)
	}
	t.Logf("%d requests: %d ok, %d failed", len(results), ok, failed)
	if ok == 0 {
		t.Errorf("no request succeeded")
	}
}

// readSlowRunlog reads the run log the fault project's slow view writes:
// how many times each POST's id started, and each request's id ended
// ("done-" id).
func readSlowRunlog(path string) (started, ended map[string]int) {
	b, _ := os.ReadFile(path)
	started, ended = map[string]int{}, map[string]int{}
	for _, id := range strings.Fields(string(b)) {
		if done, ok := strings.CutPrefix(id, "done-"); ok {
			ended[done]++
		} else {
			started[id]++
		}
	}
	return started, ended
}

func faultRecovered(t *testing.T, gw *sessionGW) {
	t.Helper()
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i := 0; i < 20; i++ {
		for _, m := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(m, gw.URL+"/dj/slow/", strings.NewReader("a=1"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("after the fault: %v", err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("after the fault, %s %d: %d", m, i, res.StatusCode)
			}
		}
	}
}

// Not parallel with other tests: a load test; their CPU would change its
// timing. Its three faults run side by side, each on its own gunicorn:
// one after the other they held the suite's first 20 s with a CPU 35% busy.
func TestDjangoGunicornFaultsUnderLoad(t *testing.T) {
	faults := map[string]func(g *harness.Gunicorn){
		"restart": func(g *harness.Gunicorn) { g.Restart() },
		"hup": func(g *harness.Gunicorn) {
			syscall.Kill(g.PID(), syscall.SIGHUP)
			time.Sleep(3 * time.Second)
		},
		"kill9": func(g *harness.Gunicorn) {
			for _, pid := range g.Workers() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(3 * time.Second)
		},
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			proj := faultProject(t)
			runlog := filepath.Join(t.TempDir(), "runlog")
			g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{})
			gw := startDjangoGateway(t, g.URL())
			stop := make(chan struct{})
			wait := faultLoad(t, gw, 6, 50, stop)
			time.Sleep(time.Second)
			fault(g)
			time.Sleep(time.Second)
			close(stop)
			results := wait()
			checkFaultRun(t, results, runlog)
			faultRecovered(t, gw)
		})
	}
}

// TestDjangoSeveralBackendsFailover: with a TCP and a unix socket backend,
// one stopped is skipped, both stopped answer 502, and both come back
// (the unix socket file recreated) without a gateway restart.
func TestDjangoSeveralBackendsFailover(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	a := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1})
	b := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1,
		Unix: filepath.Join(t.TempDir(), "gunicorn.sock")})
	gw := startDjangoGateway(t, a.URL()+","+b.URL())
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	pids := func(n int, method string) (map[string]int, []int) {
		t.Helper()
		seen := map[string]int{}
		var bad []int
		for i := 0; i < n; i++ {
			req, _ := http.NewRequest(method, gw.URL+"/dj/slow/", strings.NewReader("a=1"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				bad = append(bad, res.StatusCode)
				continue
			}
			seen[string(body)]++
		}
		return seen, bad
	}
	for _, m := range []string{"GET", "POST"} {
		if seen, bad := pids(10, m); len(seen) != 2 || len(bad) > 0 {
			t.Fatalf("both up, %s: workers %v, failures %v", m, seen, bad)
		}
	}
	for _, g := range []*harness.Gunicorn{a, b} {
		g.Stop()
		for _, m := range []string{"GET", "POST"} {
			if seen, bad := pids(10, m); len(seen) != 1 || len(bad) > 0 {
				t.Fatalf("%s down, %s: workers %v, failures %v", g.Addr, m, seen, bad)
			}
		}
		g.Start()
		time.Sleep(100 * time.Millisecond)
		for _, m := range []string{"GET", "POST"} {
			if _, bad := pids(10, m); len(bad) > 0 {
				t.Fatalf("%s back, %s: failures %v", g.Addr, m, bad)
			}
		}
	}
	a.Stop()
	b.Stop()
	if _, bad := pids(4, "POST"); len(bad) != 4 || bad[0] != 502 {
		t.Fatalf("both down: %v", bad)
	}
	a.Start()
	b.Start()
	for _, m := range []string{"GET", "POST"} {
		if _, bad := pids(10, m); len(bad) > 0 {
			t.Fatalf("both back, %s: failures %v", m, bad)
		}
	}
	// Both are tried again (the back-off ends) and both serve.
	time.Sleep(11 * time.Second)
	if seen, bad := pids(10, "GET"); len(seen) != 2 || len(bad) > 0 {
		t.Fatalf("after the back-off: workers %v, failures %v", seen, bad)
	}
}

// TestDjangoDroppedRequestMovesToTheNextBackend: a gunicorn worker that
// dies mid-request drops its connection without an answer. A GET then gets
// its answer from the next backend, as behind nginx's default
// proxy_next_upstream error; a POST, which may have run, is answered 502
// and runs once. The GET sent on is signed anew (its own nonce and
// timestamp): the middleware takes its session and the gateway the change
// it signs with that nonce.
func TestDjangoDroppedRequestMovesToTheNextBackend(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	a := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1, Env: []string{"SG_DIE=1"}})
	b := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1})
	gw := startDjangoGateway(t, a.URL()+","+b.URL())
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}, Jar: jar}
	defer client.CloseIdleConnections()
	send := func(method, id string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, gw.URL+"/dj/die/", nil)
		req.Header.Set("X-Req-Id", id)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b)
	}
	if code, _ := send("GET", "get-first"); code != 200 {
		t.Fatalf("first GET: %d", code)
	}
	for i := 0; i < 4; i++ {
		code, body := send("GET", fmt.Sprintf("get%d", i))
		if code != 200 {
			t.Fatalf("GET %d: %d, want the next backend's 200\n%s", i, code, gw.Logs.String())
		}
		if want := fmt.Sprintf(" d=%d", i+2); !strings.HasSuffix(body, want) {
			t.Fatalf("GET %d: %q, want the session's count%s (the session carried, each change kept)\n%s", i, body, want, gw.Logs.String())
		}
	}
	if logs := gw.Logs.String(); strings.Contains(logs, djangoSessionRefused) || strings.Contains(logs, "signature") {
		t.Fatalf("a session refused or a change's signature failed:\n%s", logs)
	}
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		code, _ := send("POST", fmt.Sprintf("post%d", i))
		codes[code]++
	}
	if codes[502] == 0 || codes[200] == 0 || codes[502]+codes[200] != 4 {
		t.Fatalf("POSTs answered %v: want some 502 (dropped by A, not sent again) and some 200 (B)", codes)
	}
	ran, _ := os.ReadFile(runlog)
	for i := 0; i < 4; i++ {
		if n := strings.Count(string(ran), fmt.Sprintf("post%d\n", i)); n != 1 {
			t.Fatalf("POST %d ran %d times:\n%s", i, n, ran)
		}
	}
	if !strings.Contains(gw.Logs.String(), "trying the next backend") {
		t.Fatalf("no log line for the move to the next backend:\n%s", gw.Logs.String())
	}
}

// TestDjangoTimeoutAndClientGoneReleaseTheSession: a 504
// (SESSIONGATE_DJANGO_TIMEOUT) and a client that leaves (499) release the
// session lock at once: the next request of the session is answered while
// Django is still busy with the abandoned one, and the gunicorn connection
// is not reused in a bad state.
func TestDjangoTimeoutAndClientGoneReleaseTheSession(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1})
	gw := startDjangoGateway(t, g.URL(), "SESSIONGATE_DJANGO_TIMEOUT=1s", "SESSIONGATE_SESSION_LOCK_TIMEOUT=30s")
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	cookie := djangoSessionCookie(t, client, gw.URL)
	do := func(ctx context.Context, id string, ms int) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/dj/slow/?ms=%d", gw.URL, ms), nil)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("X-Req-Id", id)
		res, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), nil
	}
	ran := func(id string) bool {
		b, _ := os.ReadFile(runlog)
		return strings.Contains(string(b), "done-"+id+"\n")
	}
	// 504: Django sleeps 8 s, the gateway waits 1 s.
	if st, _, err := do(context.Background(), "timeout", 8000); err != nil || st != 504 {
		t.Fatalf("slow view: %d %v", st, err)
	}
	if st, body, err := do(context.Background(), "after-timeout", 0); err != nil || st != 200 || !strings.HasPrefix(body, "ok ") {
		t.Fatalf("after the 504: %d %q %v", st, body, err)
	}
	if ran("timeout") {
		t.Fatalf("the request after the 504 waited for the abandoned one")
	}
	// 499: the client leaves while Django sleeps.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Not bounded before: 10 s is past the 8 s of the request, whose
		// answer then fails the test as it did without the cancel.
		poll(10*time.Second, func() bool { return ran("after-timeout") })
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	if _, _, err := do(ctx, "gone", 8000); err == nil {
		t.Fatalf("cancelled request answered")
	}
	if st, body, err := do(context.Background(), "after-gone", 0); err != nil || st != 200 || !strings.HasPrefix(body, "ok ") {
		t.Fatalf("after the 499: %d %q %v", st, body, err)
	}
	if ran("gone") {
		t.Fatalf("the request after the 499 waited for the abandoned one")
	}
	for _, want := range []string{`"status":504`, `"status":499`} {
		if _, ok := logLine(gw.Logs, want); !ok {
			t.Errorf("no %s in the gateway log:\n%s", want, gw.Logs.String())
		}
	}
}

// TestDjangoNoCloseWaitPileUp: connections gunicorn closed after its
// keep-alive (2 s) are closed on the gateway's side too, not left in
// CLOSE_WAIT, and the next requests do not get them as live.
func TestDjangoNoCloseWaitPileUp(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{})
	gw := startDjangoGateway(t, g.URL())
	_, port, _ := strings.Cut(g.Addr, ":")
	closeWait := func() int {
		b, _ := os.ReadFile("/proc/net/tcp")
		n := 0
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 {
				continue
			}
			var p int
			fmt.Sscanf(f[2][strings.IndexByte(f[2], ':')+1:], "%X", &p)
			if fmt.Sprint(p) == port && f[3] == "08" {
				n++
			}
		}
		return n
	}
	for round := 0; round < 2; round++ {
		stop := make(chan struct{})
		wait := faultLoad(t, gw, 8, 20, stop)
		time.Sleep(time.Second)
		close(stop)
		for _, r := range wait() {
			if r.err != nil || r.status != 200 {
				t.Fatalf("round %d: %s %s: %d %v", round, r.method, r.id, r.status, r.err)
			}
		}
		// gunicorn's keep-alive (2 s) then the reaper's period (5 s).
		time.Sleep(3 * time.Second)
		t.Logf("round %d: %d in CLOSE_WAIT after gunicorn's keep-alive", round, closeWait())
		if !poll(30*time.Second, func() bool { return closeWait() == 0 }) {
			t.Fatalf("round %d: %d connections to gunicorn in CLOSE_WAIT", round, closeWait())
		}
	}
}

// TestDjangoWorkerRecycling: gunicorn's --max-requests replaces workers
// under load; no request fails, no POST runs twice.
func TestDjangoWorkerRecycling(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Args: []string{"--max-requests", "15", "--max-requests-jitter", "5"}})
	gw := startDjangoGateway(t, g.URL())
	stop := make(chan struct{})
	wait := faultLoad(t, gw, 6, 5, stop)
	time.Sleep(4 * time.Second)
	close(stop)
	results := wait()
	checkFaultRun(t, results, runlog)
	// A GET that failed never got an answer: it was sent again, on a new
	// connection, so a worker that exits (and stopped reading the
	// connections it kept alive) cannot fail it. A POST on such a
	// connection fails (it may have reached Django), as with nginx.
	for _, r := range results {
		if r.method == "GET" && r.status != 200 {
			t.Errorf("GET %s: %d while gunicorn recycled workers", r.id, r.status)
		}
	}
}

// TestDjangoGunicornTimeoutKillsWorker: gunicorn's own --timeout kills a
// worker stuck in a slow view: the client gets a 502, not a hang, and the
// next requests are served.
func TestDjangoGunicornTimeoutKillsWorker(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1, Threads: 1, Args: []string{"--timeout", "2"}})
	gw := startDjangoGateway(t, g.URL())
	req, _ := http.NewRequest("POST", gw.URL+"/dj/slow/?ms=20000", strings.NewReader("a=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Req-Id", "slow")
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 502 {
		t.Fatalf("worker killed by gunicorn's timeout: %d", res.StatusCode)
	}
	faultRecovered(t, gw)
	b, _ := os.ReadFile(runlog)
	if n := strings.Count(string(b), "slow\n"); n != 1 {
		t.Fatalf("the POST ran %d times", n)
	}
}

// TestDjangoStoppedUnderLoadFoundByTheCheck: a gunicorn that stops while
// requests flow to it is taken out of turn by the check once it began no
// answer for SESSIONGATE_DJANGO_CHECK_INTERVAL and a check went unanswered
// for 2 s, long before the requests it holds reach
// SESSIONGATE_DJANGO_TIMEOUT (30 s here); the requests sent after that go
// to the other gunicorn and none waits. Those it held answer once it runs
// again. Without the check, every second request waited until the first
// held one's 504 took it out.
func TestDjangoStoppedUnderLoadFoundByTheCheck(t *testing.T) {
	t.Parallel()
	p := startFaultGunicornPair(t, "SESSIONGATE_DJANGO_CHECK_INTERVAL=1s", "SESSIONGATE_DJANGO_TIMEOUT=30s")
	b, gw := p.b, p.gw
	type result struct {
		start time.Time
		took  time.Duration
		code  int
	}
	var (
		mu      sync.Mutex
		results []result
		stop    = make(chan struct{})
		clients sync.WaitGroup
	)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for c := 0; c < 4; c++ {
		clients.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				code := 0
				if res, err := client.Get(gw.URL + "/dj/slow/"); err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					code = res.StatusCode
				}
				mu.Lock()
				results = append(results, result{start, time.Since(start), code})
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	time.Sleep(time.Second)
	stoppedAt := time.Now()
	resume := stopGunicorn(t, b)
	down := regexp.MustCompile(`"msg":"django backend sent no answer in time; marked down","backend":"` + regexp.QuoteMeta(b.URL()) + `","for":"until it answers a check","found_by":"periodic check"`)
	if !poll(20*time.Second, func() bool { return down.MatchString(gw.Logs.String()) }) {
		close(stop)
		resume()
		clients.Wait()
		t.Fatalf("the gunicorn stopped under load not taken out of turn by the check within 20 s:\n%s", gw.Logs.String())
	}
	found := time.Since(stoppedAt)
	// The load's clients are likely all held by now; fresh requests show
	// where the next ones go.
	for i := 0; i < 10; i++ {
		start := time.Now()
		res, err := client.Get(gw.URL + "/dj/slow/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if took := time.Since(start); res.StatusCode != 200 || took > 5*time.Second {
			t.Errorf("request %d after the stopped gunicorn was found: %d after %v", i, res.StatusCode, took.Round(time.Millisecond))
		}
	}
	resume()
	close(stop)
	clients.Wait()

	if found > 15*time.Second {
		t.Errorf("found %v after the stop, want well before the 30 s timeout", found.Round(time.Millisecond))
	}
	held := 0
	for _, r := range results {
		if r.code != 200 {
			t.Errorf("a request started %v after the stop: %d after %v", r.start.Sub(stoppedAt).Round(time.Millisecond), r.code, r.took.Round(time.Millisecond))
		}
		if r.start.After(stoppedAt) && r.took > 2*time.Second {
			held++
		}
	}
	if held == 0 {
		t.Fatalf("no request of the load was held by the stopped gunicorn (%d requests)", len(results))
	}
	t.Logf("found %v after the stop; %d requests held by the stopped gunicorn answered once it ran again", found.Round(time.Millisecond), held)
}

// faultGunicornPair is two gunicorns of one worker on the fault project,
// sharing one run log, behind one gateway that balances them.
type faultGunicornPair struct {
	a, b   *harness.Gunicorn
	gw     *sessionGW
	runlog string
}

func startFaultGunicornPair(t *testing.T, extra ...string) *faultGunicornPair {
	t.Helper()
	proj := faultProject(t)
	p := &faultGunicornPair{runlog: filepath.Join(t.TempDir(), "runlog")}
	p.a = startFaultGunicorn(t, proj, p.runlog, harness.GunicornOptions{Workers: 1})
	p.b = startFaultGunicorn(t, proj, p.runlog, harness.GunicornOptions{Workers: 1})
	p.gw = startDjangoGateway(t, p.a.URL()+","+p.b.URL(), extra...)
	return p
}

// stopGunicorn stops g's master and workers (SIGSTOP: the kernel still
// accepts its connections and nobody answers, as when every worker is
// stuck) and returns what resumes them, which the test's cleanup also
// does.
func stopGunicorn(t *testing.T, g *harness.Gunicorn) (resume func()) {
	t.Helper()
	stopped := append([]int{g.PID()}, g.Workers()...)
	for _, pid := range stopped {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	resume = func() {
		for _, pid := range stopped {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	return resume
}

// sendNumbered sends request i of a sequence to the fault project's slow
// view, a GET when i is even and a POST when odd, with X-Req-Id r<i> (the
// view logs it), and returns the status, the body (which names the
// gunicorn worker's pid) and the time it took.
func sendNumbered(t *testing.T, client *http.Client, gw *sessionGW, i int) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	method := []string{"GET", "POST"}[i%2]
	req, _ := http.NewRequest(method, gw.URL+"/dj/slow/", strings.NewReader("a=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Req-Id", fmt.Sprintf("r%d", i))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(body), time.Since(start)
}

// TestDjangoStoppedBackendIsSkipped: one of two gunicorns stopped
// (SIGSTOP: the kernel still accepts its connections, nobody answers, as
// when every worker is stuck) costs one request SESSIONGATE_DJANGO_TIMEOUT
// and a 504, then is skipped until it answers the gateway's check; a POST
// is not sent on to the other gunicorn after the timeout. Before, every second request
// waited the whole timeout for a 504 for as long as it stayed stopped.
func TestDjangoStoppedBackendIsSkipped(t *testing.T) {
	t.Parallel()
	p := startFaultGunicornPair(t, "SESSIONGATE_DJANGO_TIMEOUT=1s")
	b, gw := p.b, p.gw
	stopGunicorn(t, b)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	codes := map[int]int{}
	start := time.Now()
	for i := 0; i < 10; i++ {
		st, _, _ := sendNumbered(t, client, gw, i)
		codes[st]++
	}
	took := time.Since(start)
	if codes[504] != 1 || codes[200] != 9 {
		t.Fatalf("10 requests with one of two gunicorns stopped: %v in %v, want one 504 and nine 200\n%s", codes, took.Round(time.Millisecond), gw.Logs.String())
	}
	logs := gw.Logs.String()
	if !strings.Contains(logs, "sent no answer in time; marked down") || !strings.Contains(logs, b.Addr) {
		t.Fatalf("no log line naming the silent backend %s:\n%s", b.Addr, logs)
	}
	ran, _ := os.ReadFile(p.runlog)
	for i := 0; i < 10; i++ {
		if n := strings.Count(string(ran), fmt.Sprintf("done-r%d\n", i)); n > 1 {
			t.Fatalf("request %d ran %d times:\n%s", i, n, ran)
		}
	}
}

// TestDjangoStoppedBackendFoundByTheCheck: one of two gunicorns stopped
// while no request goes to it is taken out of turn by the gateway's own
// check (SESSIONGATE_DJANGO_CHECK_INTERVAL), so no request waits on it,
// with SESSIONGATE_DJANGO_TIMEOUT at its 60 s default; once it runs again
// it answers the check and is back in turn. Without the check, the first
// request sent to it waited 60 s for its 504 (TestDjangoStoppedBackendIsSkipped
// with a 1 s timeout), and it came back after the 10 s back-off whether
// it answered or not. The check is OPTIONS * with
// X-Sessiongate-Check, which sessiongate_django answers (204) before any
// view runs.
func TestDjangoStoppedBackendFoundByTheCheck(t *testing.T) {
	t.Parallel()
	p := startFaultGunicornPair(t, "SESSIONGATE_DJANGO_CHECK_INTERVAL=1s")
	a, b, gw := p.a, p.b, p.gw
	for _, g := range []*harness.Gunicorn{a, b} {
		r := rawDo(g.Addr, "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Sessiongate-Check: 1\r\nConnection: close\r\n\r\n", false)
		if r.status() != 204 || len(r.body) != 0 || r.err != nil {
			t.Fatalf("the check sent straight to gunicorn %s: %d %q %v, want sessiongate_django's 204", g.Addr, r.status(), r.body, r.err)
		}
	}
	client := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(i int) (int, string, time.Duration) { return sendNumbered(t, client, gw, i) }
	for i := 0; i < 4; i++ {
		if st, body, _ := get(i); st != 200 {
			t.Fatalf("request %d with both gunicorns running: %d %q", i, st, body)
		}
	}

	resume := stopGunicorn(t, b)
	down := regexp.MustCompile(`"msg":"django backend sent no answer in time; marked down","backend":"` + regexp.QuoteMeta(b.URL()) + `","for":"until it answers a check","found_by":"periodic check"`)
	if !poll(20*time.Second, func() bool { return down.MatchString(gw.Logs.String()) }) {
		t.Fatalf("the stopped gunicorn not taken out of turn by the check within 20 s:\n%s", gw.Logs.String())
	}
	gauge := `sessiongate_django_backend_healthy{backend="` + b.URL() + `"}`
	m := metricstest.Scrape(t, gw.Admin+"/metrics")
	if m[gauge] != 0 || m[`sessiongate_django_backend_healthy{backend="`+a.URL()+`"}`] != 1 {
		t.Errorf("the backends' gauges with %s stopped: %v and %v", b.URL(), m[gauge], m[`sessiongate_django_backend_healthy{backend="`+a.URL()+`"}`])
	}
	checkReadmeMetrics(t, m, true)
	for i := 4; i < 14; i++ {
		if st, body, took := get(i); st != 200 || took > 10*time.Second {
			t.Fatalf("request %d with the stopped gunicorn out of turn: %d %q after %v\n%s", i, st, body, took.Round(time.Millisecond), gw.Logs.String())
		}
	}

	resume()
	back := regexp.MustCompile(`"msg":"django backend answers again; back in turn","backend":"` + regexp.QuoteMeta(b.URL()) + `"`)
	if !poll(20*time.Second, func() bool { return back.MatchString(gw.Logs.String()) }) {
		t.Fatalf("the gunicorn running again not back in turn within 20 s:\n%s", gw.Logs.String())
	}
	if m := metricstest.Scrape(t, gw.Admin+"/metrics"); m[gauge] != 1 {
		t.Errorf("%s back in turn, its gauge: %v", b.URL(), m[gauge])
	}
	bWorkers := map[string]bool{}
	for _, pid := range b.Workers() {
		bWorkers[fmt.Sprintf("ok %d", pid)] = true
	}
	served := 0
	for i := 14; i < 24; i++ {
		st, body, _ := get(i)
		if st != 200 {
			t.Fatalf("request %d once both run again: %d %q", i, st, body)
		}
		if bWorkers[body] {
			served++
		}
	}
	if served < 3 {
		t.Fatalf("the gunicorn back in turn answered %d of 10 requests", served)
	}
	if strings.Contains(gw.Logs.String(), `"backend":"`+a.URL()+`","for"`) {
		t.Fatalf("the running gunicorn was taken out of turn:\n%s", gw.Logs.String())
	}
}

// TestDjangoSlowViewKeepsItsBackendInTurn: a view slower than
// SESSIONGATE_DJANGO_TIMEOUT on one of two gunicorns that goes on answering
// other requests gets its 504, and that gunicorn keeps its turn. It used to
// be marked down for 10 s like a stopped one: one slow report sent every
// request to the other gunicorn for the back-off.
func TestDjangoSlowViewKeepsItsBackendInTurn(t *testing.T) {
	t.Parallel()
	p := startFaultGunicornPair(t, "SESSIONGATE_DJANGO_TIMEOUT=1s")
	a, b, gw := p.a, p.b, p.gw
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(target string) (int, string) {
		res, err := client.Get(gw.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(body)
	}
	slow := make(chan int, 1)
	go func() {
		res, err := client.Get(gw.URL + "/dj/slow/?ms=3000")
		if err != nil {
			slow <- 0
			return
		}
		res.Body.Close()
		slow <- res.StatusCode
	}()
	// Both gunicorns answer quick requests while the slow view runs.
	code := 0
	for code == 0 {
		select {
		case code = <-slow:
		case <-time.After(50 * time.Millisecond):
			if st, body := get("/dj/slow/"); st != 200 {
				t.Fatalf("a quick request while a view is slow: %d %q", st, body)
			}
		}
	}
	if code != http.StatusGatewayTimeout {
		t.Fatalf("a 3 s view with SESSIONGATE_DJANGO_TIMEOUT=1s: %d, want 504", code)
	}
	pids := map[string]string{}
	for _, g := range []*harness.Gunicorn{a, b} {
		for _, pid := range g.Workers() {
			pids[strconv.Itoa(pid)] = g.Addr
		}
	}
	took := map[string]int{}
	for i := 0; i < 10; i++ {
		st, body := get("/dj/slow/")
		if st != 200 {
			t.Fatalf("after the 504: %d %q", st, body)
		}
		took[pids[strings.TrimPrefix(body, "ok ")]]++
	}
	if took[a.Addr] < 3 || took[b.Addr] < 3 {
		t.Errorf("10 requests after one slow view's 504: %v, want both gunicorns in turn (5 each)\n%s", took, gw.Logs.String())
	}
	if strings.Contains(gw.Logs.String(), "marked down") {
		t.Errorf("a gunicorn answering other requests was marked down:\n%s", gw.Logs.String())
	}
}

// TestDjangoStalledUploadBoundedByTimeout: an upload to a gunicorn whose
// one worker is stuck in a slow view fills the socket buffers and stalls;
// SESSIONGATE_DJANGO_TIMEOUT bounds that stall (proxy_send_timeout) and the
// client gets its 504 then, not after a second whole timeout spent waiting
// for an answer to a request that was never sent whole.
func TestDjangoStalledUploadBoundedByTimeout(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1, Threads: 1})
	gw := startDjangoGateway(t, g.URL(), "SESSIONGATE_DJANGO_TIMEOUT=2s", "SESSIONGATE_MAX_BODY=256m")
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	go func() {
		if res, err := client.Get(gw.URL + "/dj/slow/?ms=7000"); err == nil {
			res.Body.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond) // the worker is in the slow view
	const size = 64 << 20
	var sent time.Time
	req, _ := http.NewRequest("POST", gw.URL+"/dj/slow/", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { sent = time.Now() },
	}))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	took := time.Since(sent)
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("an upload to a gunicorn whose worker is stuck: %d, want 504", res.StatusCode)
	}
	// The gateway read the upload whole first (request buffering); what
	// is timed is from then.
	if took > 3*time.Second {
		t.Errorf("504 %v after the upload, with SESSIONGATE_DJANGO_TIMEOUT=2s, want about 2 s", took.Round(time.Millisecond))
	}
}

// TestDjangoKilledWorkerKeepsTheSession: a sync worker killed by
// gunicorn's --timeout while its view changed the session answers 502, the
// change is not saved, the session lock is free for the next request at
// once, and the log names the backend. A worker killed mid-body (a
// streamed export) is an aborted response for the client, never a clean
// end, and a 502 in the access log.
func TestDjangoKilledWorkerKeepsTheSession(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1, Threads: 1, Args: []string{"--timeout", "2"}})
	gw := startDjangoGateway(t, g.URL(), "SESSIONGATE_SESSION_LOCK_TIMEOUT=1s")
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(path, cookie string) (int, string, error) {
		req, _ := http.NewRequest("GET", gw.URL+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, string(b), err
	}
	cookie := djangoSessionCookie(t, client, gw.URL)
	if st, _, err := get("/dj/setslow/?v=lost&ms=20000", cookie); err != nil || st != 502 {
		t.Fatalf("view killed by gunicorn's timeout: %d %v, want 502", st, err)
	}
	// The next request's own wait for the lock, from the gateway's
	// histogram: its round trip also waits for gunicorn to start a new
	// worker, which takes a second on a loaded machine.
	lockWaits := func() (all, quick float64) {
		m := metricstest.Scrape(t, gw.Admin+"/metrics")
		return m["sessiongate_session_lock_wait_seconds_count"], m[`sessiongate_session_lock_wait_seconds_bucket{le="0.25"}`]
	}
	allBefore, quickBefore := lockWaits()
	if st, body, err := get("/dj/get/", cookie); err != nil || st != 200 || body != "v" {
		t.Fatalf("after the killed view: %d %q %v, want 200 \"v\" (its change not saved)", st, body, err)
	}
	if all, quick := lockWaits(); all != allBefore+1 || quick != quickBefore+1 {
		t.Errorf("the next request's lock waits: %v in all, %v under 0.25 s (before: %v, %v); want one more of each", all, quick, allBefore, quickBefore)
	}
	named := false
	for _, line := range strings.Split(gw.Logs.String(), "\n") {
		if strings.Contains(line, `"path":"/dj/setslow/","status":502`) && strings.Contains(line, g.Addr) {
			named = true
		}
	}
	if !named {
		t.Errorf("no 502 log line naming the backend %s:\n%s", g.Addr, gw.Logs.String())
	}

	// Killed mid-body: the headers (and the session) went out, the body
	// breaks off.
	st, body, err := get("/dj/stream/?ms=20000", cookie)
	if err == nil {
		t.Fatalf("stream cut by a killed worker: %d, %d bytes, and a clean end", st, len(body))
	}
	if st, _, err := get("/dj/get/", cookie); err != nil || st != 200 {
		t.Fatalf("after the cut stream: %d %v", st, err)
	}
	if !poll(5*time.Second, func() bool { return strings.Contains(gw.Logs.String(), `"path":"/dj/stream/","status":502`) }) {
		t.Errorf("no 502 access log line for the cut stream:\n%s", gw.Logs.String())
	}
	for _, line := range strings.Split(gw.Logs.String(), "\n") {
		if strings.Contains(line, `"path":"/dj/stream/","status":502`) && !strings.Contains(line, g.Addr) {
			t.Errorf("the cut stream's 502 line does not name the backend %s: %s", g.Addr, line)
		}
	}
}

// TestDjangoShortKeepAliveUnderLoad: gunicorn --keep-alive 1 closes a
// kept-alive connection after 1 s idle, checked from its event loop, so
// the close can cross a request on the wire. Requests timed around the
// close, while a second gateway keeps the worker's event loop busy: every
// one is answered (a GET that met the close goes again on a new
// connection, a POST takes a kept-alive one only if it idled under 1 s and
// still looks open) and no POST runs twice.
func TestDjangoShortKeepAliveUnderLoad(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1, Args: []string{"--keep-alive", "1"}})
	gw := startDjangoGateway(t, g.URL())
	busy := startDjangoGateway(t, g.URL())
	stop := make(chan struct{})
	wait := faultLoad(t, busy, 2, 20, stop)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	var results []faultResult
	send := func(method, id string) {
		results = append(results, sendFault(client, method, gw.URL+"/dj/slow/", id, strings.NewReader("a=1")))
	}
	for i, ms := range []int{970, 1000, 1030, 1100} {
		send("GET", fmt.Sprintf("ka-get%d", i))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		send("POST", fmt.Sprintf("ka-post%d", i))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		send("GET", fmt.Sprintf("ka-get%d-after", i))
	}
	close(stop)
	results = append(results, wait()...)
	checkFaultRun(t, results, runlog)
	for _, r := range results {
		if r.status != 200 {
			t.Errorf("%s %s: %d with gunicorn --keep-alive 1", r.method, r.id, r.status)
		}
	}
}

// TestDjangoReloadAndRecyclingKeepSessionWrites: two gateways sharing
// Redis send session writes (POSTs counting in the session) and reads to
// one gunicorn that recycles its workers (--max-requests) and is reloaded
// (SIGHUP) twice meanwhile. No GET fails; a POST may get a 502 (sent on a
// kept-alive connection of a worker that was exiting, it cannot be sent
// again), but only one Django never ran; each session counts exactly the
// POSTs answered 200 (no write lost, none applied twice), and every
// session lock is free at the end.
func TestDjangoReloadAndRecyclingKeepSessionWrites(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Args: []string{"--max-requests", "40", "--max-requests-jitter", "10"}})
	red := harness.StartRedis(t)
	root := t.TempDir()
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_INDEX=off",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=5s",
		"SESSIONGATE_DJANGO_URL=" + g.URL(),
		"SESSIONGATE_DJANGO_PATHS=/dj/",
	})
	if err != nil {
		t.Fatal(err)
	}
	gws := startGateways(t, cfg, 2)
	const clients = 6
	type tally struct {
		cookie     string
		ok, failed []string // POST ids
		getFailed  int
	}
	tallies := make([]*tally, clients)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	send := func(gw *sessionGW, method, cookie, id string) (int, string, string) {
		req, _ := http.NewRequest(method, gw.URL+"/dj/inc/", strings.NewReader("a=1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Req-Id", id)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, id, err)
			return 0, "", ""
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var set string
		for _, c := range res.Cookies() {
			set = c.Name + "=" + c.Value
		}
		return res.StatusCode, string(b), set
	}
	for c := range tallies {
		st, _, cookie := send(gws[0], "POST", "", fmt.Sprintf("c%d-0", c))
		if st != 200 || cookie == "" {
			t.Fatalf("client %d: first POST %d, cookie %q", c, st, cookie)
		}
		tallies[c] = &tally{cookie: cookie, ok: []string{fmt.Sprintf("c%d-0", c)}}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c, tl := range tallies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				gw := gws[i%2]
				id := fmt.Sprintf("c%d-%d", c, i)
				if i%3 == 0 {
					if st, _, _ := send(gw, "GET", tl.cookie, id); st != 200 {
						tl.getFailed++
						t.Errorf("GET %s: %d", id, st)
					}
					continue
				}
				if st, _, _ := send(gw, "POST", tl.cookie, id); st == 200 {
					tl.ok = append(tl.ok, id)
				} else {
					tl.failed = append(tl.failed, id)
					if st != 502 {
						t.Errorf("POST %s: %d", id, st)
					}
				}
			}
		}()
	}
	for i := 0; i < 2; i++ {
		time.Sleep(1500 * time.Millisecond)
		syscall.Kill(g.PID(), syscall.SIGHUP)
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	ran, _ := os.ReadFile(runlog)
	runs := map[string]int{}
	for _, id := range strings.Fields(string(ran)) {
		runs[id]++
	}
	total, failed := 0, 0
	for c, tl := range tallies {
		// A POST takes the session lock: one a failed request left held
		// would make it wait for the lease and answer 503. --max-requests
		// goes on recycling workers after the load: the final POST may
		// meet a kept-alive connection being closed too (the 502 above),
		// so it is sent again, as a client would, and counted as failed.
		var st int
		var body string
		for attempt := 1; ; attempt++ {
			final := fmt.Sprintf("c%d-final%d", c, attempt)
			st, body, _ = send(gws[c%2], "POST", tl.cookie, final)
			if st == 502 && attempt < 3 {
				tl.failed = append(tl.failed, final)
				continue
			}
			tl.ok = append(tl.ok, final)
			break
		}
		if st != 200 {
			t.Errorf("client %d: final POST %d", c, st)
		}
		ranHere := 0
		for id, n := range runs {
			if strings.HasPrefix(id, fmt.Sprintf("c%d-", c)) {
				ranHere += n
				if n > 1 {
					t.Errorf("POST %s ran %d times", id, n)
				}
			}
		}
		failedRan := 0
		for _, id := range tl.failed {
			failedRan += runs[id]
		}
		if failedRan > 0 {
			t.Errorf("client %d: %d of its %d failed POSTs ran in Django", c, failedRan, len(tl.failed))
		}
		failed += len(tl.failed)
		total += len(tl.ok) + len(tl.failed)
		if body != fmt.Sprint(len(tl.ok)) {
			t.Errorf("client %d: session counts %s, want the %d answered POSTs (Django ran %d; %d failed, %d of them ran)",
				c, body, len(tl.ok), ranHere, len(tl.failed), failedRan)
		}
	}
	t.Logf("%d POSTs from %d sessions over two reloads and recycling: %d answered 502, none of them run", total, clients, failed)
}

// djangoSessionCookie starts a session through the fault project's /dj/set/
// view and returns its cookie ("name=value").
func djangoSessionCookie(t *testing.T, client *http.Client, gwURL string) string {
	t.Helper()
	res, err := client.Get(gwURL + "/dj/set/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var cookie string
	for _, c := range res.Cookies() {
		cookie = c.Name + "=" + c.Value
	}
	if cookie == "" {
		t.Fatalf("no session cookie: %v", res.Header)
	}
	return cookie
}

// TestDjangoHalfClosedClientGetsNoAnswer: a client that sends its request
// and half-closes its connection (shutdown(SHUT_WR), still reading) is
// taken by net/http for one that left: the Django request is cancelled
// and logged 499. It got "200 OK" with an empty body for a view that never
// answered; it now gets the connection closed without an answer, as on
// the PHP path and behind nginx.
func TestDjangoHalfClosedClientGetsNoAnswer(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	g := startFaultGunicorn(t, proj, filepath.Join(t.TempDir(), "runlog"), harness.GunicornOptions{})
	gw := startDjangoGateway(t, g.URL())
	halfClosedGetsNoAnswer(t, gw.URL, "/dj/slow/?ms=300", "")
	if !poll(5*time.Second, func() bool { return strings.Contains(gw.Logs.String(), `"status":499`) }) {
		t.Errorf("no 499 in the log:\n%s", gw.Logs.String())
	}
}

package integration

// The Django path beside nginx's proxy_pass under gunicorn's own faults:
// both fronts in front of one gunicorn at once, so that every fault meets
// both, and what their clients got counted per front and per method.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// frontResult is one request of a fault comparison.
type frontResult struct {
	front, method, id string
	status            int
	err               error
}

// reportFrontFailures logs, per front and method, how many of results
// failed (anything but a 200), and fails t for a method a front was never
// sent: the load phases under php-fpm's and gunicorn's faults read their
// results alike, each judging single failures its own way.
func reportFrontFailures(t *testing.T, results []frontResult) {
	t.Helper()
	type key struct{ front, method string }
	all, failed := map[key]int{}, map[key]int{}
	for _, r := range results {
		k := key{r.front, r.method}
		all[k]++
		if r.err != nil || r.status != 200 {
			failed[k]++
		}
	}
	for _, front := range []string{"nginx", "gateway"} {
		var line []string
		for _, m := range []string{"GET", "PUT", "DELETE", "POST"} {
			line = append(line, fmt.Sprintf("%s %d/%d", m, failed[key{front, m}], all[key{front, m}]))
			if all[key{front, m}] == 0 {
				t.Errorf("%s: no %s sent", front, m)
			}
		}
		t.Logf("%s: failed %s", front, strings.Join(line, ", "))
	}
}

// loadFronts sends GET, PUT, DELETE and POST (each with its X-Req-Id) for
// path to every front from clients kept-alive clients each until stop is
// closed, and each client at least one of every method: on a loaded
// machine a slow view took a client's whole window for three requests,
// and a front then sent no POST at all.
func loadFronts(fronts map[string]string, path string, clients int, stop <-chan struct{}) func() []frontResult {
	var mu sync.Mutex
	var out []frontResult
	var wg sync.WaitGroup
	for name, url := range fronts {
		for w := 0; w < clients; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
				defer client.CloseIdleConnections()
				methods := []string{"GET", "PUT", "DELETE", "POST"}
				for i := 0; ; i++ {
					select {
					case <-stop:
						if i >= len(methods) {
							return
						}
					default:
					}
					method := methods[i%len(methods)]
					var body io.Reader
					if method == "PUT" || method == "POST" {
						body = strings.NewReader("a=1")
					}
					id := fmt.Sprintf("%s-%d-%d", name, w, i)
					r := sendFault(client, method, url+path, id, body)
					mu.Lock()
					out = append(out, frontResult{name, method, id, r.status, r.err})
					mu.Unlock()
				}
			}()
		}
	}
	return func() []frontResult { wg.Wait(); return out }
}

// TestNginxDjangoWorkerRecyclingDiff: gunicorn recycles its workers
// (--max-requests) and is reloaded (SIGHUP) under kept-alive load from
// nginx and the gateway. An
// exiting worker stops reading the connections it kept alive and resets
// them when it exits, so a request sent on one meets a close without an
// answer. nginx sends such a request again unless it is a POST, PATCH or
// LOCK (proxy_next_upstream error; non_idempotent is off by default);
// through the gateway PUT and DELETE failed with 502 where nginx answered,
// until they were sent again like GET. A POST may fail behind nginx, and
// then never ran; through the gateway, which sends again a request the
// worker provably never read (a reset), none fails. None runs twice. The
// same over TCP and over gunicorn's unix socket (nginx's server
// unix:/path; SESSIONGATE_DJANGO_URL=unix:/path).
// Nothing here is timed: other tests' load changes the counts, not what
// is asserted.
//
// Also with gunicorn 23 (Django 5.2), whose gthread worker waits for a
// connection it accepted to become readable before it reads it (gunicorn
// 22 and later) and drops those still waiting when it exits, with a reset
// and nothing run. nginx sends a request again only to another server, so
// with one gunicorn a few GETs, PUTs and DELETEs of each reload got 502
// there (1-2 of some 30 of each per run, measured; allowed below); the
// gateway sends a safe request the last backend dropped to it once more,
// and none fails.
func TestNginxDjangoWorkerRecyclingDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "nginx")
	forEachDjango(t, djangoReleases(t, "3.2", "5.2"), func(t *testing.T, rel djangoRelease) {
		for _, unix := range []bool{false, true} {
			t.Run(map[bool]string{false: "tcp", true: "unix"}[unix], func(t *testing.T) {
				t.Parallel()
				o := rel.gunicornOptions("faultproj", harness.GunicornOptions{Args: []string{"--max-requests", "10", "--max-requests-jitter", "3"}})
				if unix {
					o.Unix = filepath.Join(t.TempDir(), "gunicorn.sock")
				}
				workerRecyclingDiff(t, o, rel.gunicorn22)
			})
		}
	})
}

// workerRecyclingDiff: nginxDropsSafe allows nginx's 502s for safe
// requests (gunicorn 22 and later, above).
func workerRecyclingDiff(t *testing.T, o harness.GunicornOptions, nginxDropsSafe bool) {
	proj := faultProject(t)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, o)
	ng := harness.StartNginxDjango(t, harness.NginxDjangoOptions{Upstream: g.Addr, Location: "/dj/"})
	gw := startDjangoGateway(t, g.URL())
	stop := make(chan struct{})
	wait := loadFronts(map[string]string{"nginx": ng.URL, "gateway": gw.URL}, "/dj/slow/", 3, stop)
	time.Sleep(2 * time.Second)
	// A reload (SIGHUP) replaces every worker at once.
	syscall.Kill(g.PID(), syscall.SIGHUP)
	time.Sleep(2 * time.Second)
	close(stop)
	results := wait()
	started, ran := readSlowRunlog(runlog)
	for _, r := range results {
		if r.method == "POST" && started[r.id] > 1 {
			t.Errorf("%s: POST %s ran %d times", r.front, r.id, started[r.id])
		}
		if r.err == nil && r.status == 200 {
			continue
		}
		switch {
		case r.method != "POST" && nginxDropsSafe && r.front == "nginx":
			t.Logf("%s: %s %s: %d %v while gunicorn recycled workers (dropped before it was read; nginx has no other server to send it to)", r.front, r.method, r.id, r.status, r.err)
		case r.method != "POST":
			t.Errorf("%s: %s %s: %d %v while gunicorn recycled workers (an idempotent request is sent again)", r.front, r.method, r.id, r.status, r.err)
		case started[r.id] > 0 || ran[r.id] > 0:
			t.Errorf("%s: POST %s failed (%d %v) after it ran", r.front, r.id, r.status, r.err)
		case r.front == "gateway":
			t.Errorf("%s: POST %s: %d %v while gunicorn recycled workers, and it never ran (a request the worker left unread is sent again)", r.front, r.id, r.status, r.err)
		}
	}
	reportFrontFailures(t, results)
	if t.Failed() {
		t.Logf("gateway log:\n%s", gw.Logs.String())
	}
}

// cutUploadURLs: a view that stores what it was sent, and says in the run
// log how much of the Content-Length it got, or why it got nothing.
const cutUploadURLs = `
import os
from django.urls import path
from django.http import HttpResponse

def save(request):
    try:
        b = request.body
    except Exception as e:
        with open(os.environ["SG_RUNLOG"], "a") as f:
            f.write("%s:refused:%s\n" % (request.GET.get("id"), type(e).__name__))
        raise
    with open(os.environ["SG_RUNLOG"], "a") as f:
        f.write("%s:saved:%d/%s\n" % (request.GET.get("id"), len(b), request.META.get("CONTENT_LENGTH")))
    request.session["saved"] = len(b)
    return HttpResponse(b"saved")

urlpatterns = [path("dj/save/", save)]
`

// TestNginxDjangoUploadCutShortDiff: with request buffering off on both
// fronts (proxy_request_buffering off; SESSIONGATE_REQUEST_BUFFERING=off),
// a client sends half of a 400 KiB upload and leaves. gunicorn reads a
// body up to its Content-Length and takes the connection's end for the
// body's: behind nginx the view stores the half it got as if it were the
// whole upload. The gateway resets the connection instead of closing it,
// and Django raises UnreadablePostError: nothing is stored, and the
// request is logged 400 in the gateway's log, a body cut short of its
// length (the client's fault, as README says; it was 499).
func TestNginxDjangoUploadCutShortDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "nginx")
	proj := djangoProject(t, "faultproj", strings.ReplaceAll(bodyDjangoSettings, "bodyproj", "faultproj"), cutUploadURLs)
	runlog := filepath.Join(t.TempDir(), "runlog")
	g := startFaultGunicorn(t, proj, runlog, harness.GunicornOptions{Workers: 1})
	ng := harness.StartNginxDjango(t, harness.NginxDjangoOptions{Upstream: g.Addr, Location: "/dj/", LocationExtra: "proxy_request_buffering off;"})
	gw := startDjangoGateway(t, g.URL(), "SESSIONGATE_REQUEST_BUFFERING=off")
	const total = 400 << 10
	for _, f := range []struct{ who, addr string }{{"nginx", ng.Addr}, {"gateway", strings.TrimPrefix(gw.URL, "http://")}} {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /dj/save/?id=%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", f.who, total)
		c.Write(make([]byte, total/2))
		time.Sleep(300 * time.Millisecond) // the half reaches Django
		c.Close()
	}
	want := map[string]string{"nginx": "nginx:saved:204800/409600", "gateway": "gateway:refused:UnreadablePostError"}
	var got map[string]string
	if !poll(10*time.Second, func() bool {
		b, _ := os.ReadFile(runlog)
		got = map[string]string{}
		for _, line := range strings.Fields(string(b)) {
			who, _, _ := strings.Cut(line, ":")
			got[who] = line
		}
		return len(got) == 2
	}) {
		t.Fatalf("the view ran for %q, want both", got)
	}
	for who, line := range want {
		if got[who] != line {
			t.Errorf("%s: the view logged %q, want %q", who, got[who], line)
		}
	}
	if !poll(5*time.Second, func() bool { return strings.Contains(gw.Logs.String(), `"path":"/dj/save/","status":400`) }) {
		t.Errorf("no 400 line for the upload the client cut short:\n%s", gw.Logs.String())
	}
}

// plainDjangoSettings: the fault project's views under Django's own
// SessionMiddleware with file sessions, as a site runs behind nginx alone.
const plainDjangoSettings = `
import os
SECRET_KEY = "plain-test-secret-key-0123456789-0123456789-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
ROOT_URLCONF = "plainproj.urls"
DATABASES = {}
USE_TZ = True
SESSION_ENGINE = "django.contrib.sessions.backends.file"
SESSION_FILE_PATH = os.environ["SG_SESSION_DIR"]
`

// TestNginxDjangoClientGoneSessionChangeDiff: a view that changes the
// session and takes a second, whose client leaves after 300 ms. Behind
// nginx (proxy_ignore_client_abort off, nginx's default) the view runs on,
// and Django's own SessionMiddleware saves its change once it ends. The
// gateway releases the session lock as the client leaves (the session's
// next request need not wait for a page nobody reads,
// TestDjangoTimeoutAndClientGoneReleaseTheSession), and the change the
// view signs after that is not applied, as on the PHP side (README): a
// view whose change must outlive its client writes the change first and
// the slow work after.
func TestNginxDjangoClientGoneSessionChangeDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "nginx")
	runlog := filepath.Join(t.TempDir(), "runlog")
	plain := startFaultGunicorn(t, djangoProject(t, "plainproj", plainDjangoSettings, faultDjangoURLs), runlog, harness.GunicornOptions{
		Workers: 1, App: "plainproj.wsgi:application", Env: []string{"SG_SESSION_DIR=" + t.TempDir()}})
	ng := harness.StartNginxDjango(t, harness.NginxDjangoOptions{Upstream: plain.Addr, Location: "/dj/"})
	g := startFaultGunicorn(t, faultProject(t), runlog, harness.GunicornOptions{Workers: 1})
	gw := startDjangoGateway(t, g.URL())
	got := map[string]string{}
	for _, f := range []struct{ who, url string }{{"nginx", ng.URL}, {"gateway", gw.URL}} {
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		cookie := djangoSessionCookie(t, client, f.url)
		do := func(ctx context.Context, target string) (string, error) {
			req, _ := http.NewRequestWithContext(ctx, "GET", f.url+target, nil)
			req.Header.Set("Cookie", cookie)
			res, err := client.Do(req)
			if err != nil {
				return "", err
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			return string(b), err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := do(ctx, "/dj/setslow/?v=changed&ms=1000")
		cancel()
		if err == nil {
			t.Fatalf("%s: the view answered before its client left", f.who)
		}
		time.Sleep(1500 * time.Millisecond) // the view has ended
		if got[f.who], err = do(context.Background(), "/dj/get/"); err != nil {
			t.Fatal(err)
		}
	}
	if got["nginx"] != "changed" || got["gateway"] != "v" {
		t.Errorf("the session after a view whose client left changed it: nginx %q, gateway %q; want \"changed\" (Django's own middleware saved it) and \"v\" (not applied)", got["nginx"], got["gateway"])
	}
}

// TestNginxDjangoWorkerKilledMidBodyDiff: gunicorn's --timeout kills a
// worker while it streams an export (64 KiB sent, then a stall). Both
// fronts have sent the 200 and the first bytes, and both end the
// response cut (a chunked body without its last chunk), never cleanly; the
// session change the view made went out with the headers, before the
// stall, on both (Django's own middleware saves it as the response
// leaves). nginx logs the 200 it sent; the gateway logs 502 with the
// backend's name, so the cut is counted as the upstream failure it was.
func TestNginxDjangoWorkerKilledMidBodyDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "nginx")
	runlog := filepath.Join(t.TempDir(), "runlog")
	plain := startFaultGunicorn(t, djangoProject(t, "plainproj", plainDjangoSettings, faultDjangoURLs), runlog, harness.GunicornOptions{
		Workers: 1, Threads: 1, Args: []string{"--timeout", "2"}, App: "plainproj.wsgi:application", Env: []string{"SG_SESSION_DIR=" + t.TempDir()}})
	ng := harness.StartNginxDjango(t, harness.NginxDjangoOptions{Upstream: plain.Addr, Location: "/dj/"})
	g := startFaultGunicorn(t, faultProject(t), runlog, harness.GunicornOptions{Workers: 1, Threads: 1, Args: []string{"--timeout", "2"}})
	gw := startDjangoGateway(t, g.URL())
	for _, f := range []struct{ who, url string }{{"nginx", ng.URL}, {"gateway", gw.URL}} {
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		cookie := djangoSessionCookie(t, client, f.url)
		get := func(target string) (int, string, error) {
			req, _ := http.NewRequest("GET", f.url+target, nil)
			req.Header.Set("Cookie", cookie)
			res, err := client.Do(req)
			if err != nil {
				return 0, "", err
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			return res.StatusCode, string(b), err
		}
		st, body, err := get("/dj/stream/?ms=20000")
		if st != 200 || err == nil || len(body) < 65536 {
			t.Errorf("%s: a stream whose worker was killed: %d, %d bytes, end %v; want 200, the first 64 KiB, then a cut", f.who, st, len(body), err)
		}
		if st, body, err := get("/dj/get/"); st != 200 || body != "streamed" {
			t.Errorf("%s: after the cut stream: %d %q %v; want its session change, saved with its headers", f.who, st, body, err)
		}
	}
	if !poll(5*time.Second, func() bool { return slices.Contains(ng.AccessLines(), "200 /dj/stream/?ms=20000") }) {
		t.Errorf("nginx's access log: %q, want the 200 it sent", ng.AccessLines())
	}
	if line, ok := logLine(gw.Logs, `"path":"/dj/stream/","status":502`); !ok || !strings.Contains(line, g.Addr) {
		t.Errorf("no 502 line naming the backend for the cut stream:\n%s", gw.Logs.String())
	}
}

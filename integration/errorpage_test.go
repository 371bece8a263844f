package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestErrorPages: SESSIONGATE_ERROR_PAGES as a shop sets it up, with the
// gateway binary in front of real php-fpm, redis-server and gunicorn: the
// maintenance page (kept out of clients' reach in an internal alias
// directory) while php-fpm is down, while Redis is down, while Django is
// down and for a session busy past its lock timeout; the site's 404 page
// for the gateway's own 404; and PHP's own 404 page passing unchanged.
func TestErrorPages(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	root := sessionFixtureRoot(t)
	pages := t.TempDir()
	const maintenance = "<!doctype html><title>Maintenance</title><h1>Back in a minute</h1>\n"
	const notFound = "<!doctype html><title>Not found</title><h1>No such page</h1>\n"
	for path, body := range map[string]string{
		filepath.Join(pages, "50x.html"):   maintenance,
		filepath.Join(root, "404.html"):    notFound,
		filepath.Join(root, "missing.php"): `<?php http_response_code(404); echo "the app's own 404";`,
		filepath.Join(root, ".env"):        "DB_PASSWORD=secret",
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prepend := writePrepend(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	red := harness.StartRedis(t)
	dj := startFaultGunicorn(t, proj, filepath.Join(t.TempDir(), "runlog"), harness.GunicornOptions{Workers: 1, Threads: 2})
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + prepend,
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=500ms",
		"SESSIONGATE_DJANGO_URL=" + dj.URL(),
		"SESSIONGATE_DJANGO_PATHS=/dj/",
		"SESSIONGATE_INTERNAL_PATHS=/errors/=" + pages,
		"SESSIONGATE_ERROR_PAGES=502 503 504=/errors/50x.html,404=/404.html",
	})
	client := &http.Client{Timeout: 20 * time.Second}
	get := func(path, cookie string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", gw.URL+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", "sessionid="+cookie)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(body)
	}
	expect := func(what, path, cookie string, status int, body string) *http.Response {
		t.Helper()
		res, got := get(path, cookie)
		if res.StatusCode != status || got != body {
			t.Errorf("%s: GET %s: %d %q, want %d %q", what, path, res.StatusCode, got, status, body)
		}
		if strings.HasPrefix(body, "<!doctype") && res.Header.Get("Content-Type") != "text/html" {
			t.Errorf("%s: Content-Type %q", what, res.Header.Get("Content-Type"))
		}
		return res
	}

	res, _ := get("/counter.php", "")
	var cookie string
	for _, c := range res.Cookies() {
		if c.Name == "sessionid" {
			cookie = c.Value
		}
	}
	if res.StatusCode != 200 || cookie == "" {
		t.Fatalf("first page: %d, cookie %q", res.StatusCode, cookie)
	}
	expect("PHP's own 404", "/missing.php", cookie, 404, "the app's own 404")
	expect("a dotfile", "/.env", cookie, 404, notFound)
	expect("the page's own URL", "/errors/50x.html", cookie, 404, notFound)
	if res, body := get("/dj/slow/", cookie); res.StatusCode != 200 {
		t.Fatalf("Django up: %d %q", res.StatusCode, body)
	}

	// A session busy past SESSIONGATE_SESSION_LOCK_TIMEOUT.
	held := make(chan int, 1)
	started, q := markFile(t)
	go func() {
		res, _ := get("/hold.php?ms=2000&started="+q, cookie)
		held <- res.StatusCode
	}()
	waitForFile(t, started, "hold.php")
	if res := expect("session busy", "/counter.php", cookie, 503, maintenance); res.Header.Get("Retry-After") == "" {
		t.Errorf("session busy: no Retry-After with the page")
	}
	if code := <-held; code != 200 {
		t.Errorf("the request holding the session: %d", code)
	}

	fpm.Stop()
	expect("php-fpm down", "/counter.php", cookie, 502, maintenance)
	fpm.Start()

	dj.Stop()
	expect("Django down", "/dj/slow/", cookie, 502, maintenance)

	red.Stop()
	if res := expect("Redis down", "/counter.php", cookie, 503, maintenance); res.Header.Get("Retry-After") == "" {
		t.Errorf("Redis down: no Retry-After with the page")
	}
	red.Start()
	var body string
	back := func() bool {
		res, body = get("/counter.php", cookie)
		return res.StatusCode == 200
	}
	if !poll(10*time.Second, back) {
		t.Fatalf("after Redis came back: %d %q", res.StatusCode, body)
	}
}

// The session bridge's own 503 (a change PHP made that could not be saved:
// its lock was lost, here deleted as a Redis failover can lose it) gets
// the page, Retry-After kept, gzipped for a
// client that accepts it; and a request whose chunked body the gateway
// does not read to the end still has its connection closed.
func TestErrorPageSessionNotSaved(t *testing.T) {
	t.Parallel()
	pages := t.TempDir()
	page := "<!doctype html><title>Maintenance</title>" + strings.Repeat("<p>Back in a minute.</p>\n", 30)
	if err := os.WriteFile(filepath.Join(pages, "50x.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSessionStack(t, stackOpts{env: []string{
		"SESSIONGATE_SESSION_LOCK_LEASE=1s",
		"SESSIONGATE_INTERNAL_PATHS=/errors/=" + pages,
		"SESSIONGATE_ERROR_PAGES=503=/errors/50x.html",
	}})
	ck := s.newSession(t)
	type result struct {
		code        int
		body, retry string
		closed, gz  bool
	}
	slow := make(chan result, 1)
	started, q := markFile(t)
	go func() {
		pr, pw := io.Pipe()
		go func() { pw.Write([]byte("a=b")); pw.Close() }()
		req, _ := http.NewRequest("POST", s.gws[0].URL+"/hold.php?ms=3000&started="+q, pr) // no length: chunked
		req.Header.Set("Cookie", "sessionid="+ck)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := sessionClient.Do(req)
		if err != nil {
			t.Errorf("POST: %v", err)
			slow <- result{}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- result{resp.StatusCode, string(body), resp.Header.Get("Retry-After"), resp.Close, resp.Uncompressed}
	}()
	// Once PHP holds the session, its lock goes (a live request renews
	// its lease, so waiting it out no longer takes the lock over), and
	// another request takes it.
	waitForFile(t, started, "hold.php")
	dropSessionLock(t, s)
	if resp, body, _ := s.gws[1].get(t, "/counter.php", ck); resp.StatusCode != 200 {
		t.Fatalf("second request: %d %q", resp.StatusCode, body)
	}
	r := <-slow
	if r.code != 503 || r.body != page || r.retry == "" || !r.gz {
		t.Errorf("session change not saved: %d Retry-After %q gzipped %v body %q, want 503 with the page, gzipped", r.code, r.retry, r.gz, r.body)
	}
	if !r.closed {
		t.Errorf("503 to a chunked request kept the connection open")
	}
	// Its request line says why, as other failures' do.
	var line map[string]any
	if l, ok := logLine(s.gws[0].Logs, `"path":"/hold.php","status":503`); ok {
		json.Unmarshal([]byte(l), &line)
	}
	if e, _ := line["error"].(string); line["status"] != float64(503) || !strings.Contains(e, "lock") {
		t.Errorf("request line of the 503 %v, want status 503 and the lost lock as its error:\n%s", line, s.gws[0].Logs.String())
	}
}

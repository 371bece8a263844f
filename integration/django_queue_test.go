package integration

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestDjangoRequestQueuedPastTheClockWindowKeepsItsSession: with
// SESSIONGATE_DJANGO_TIMEOUT above the middleware's 60 s window (a site
// with slow report views), a request that waits in gunicorn's listen
// queue behind a busy worker for more than 60 s reaches Django with the
// signature the gateway made when it sent it. The gateway's signed
// X-Sessiongate-Max-Age lets sessiongate_django take it: the page runs with
// its session and its write is kept, as behind nginx with Django's own
// sessions, where the request is merely slow. (Without it the page ran
// anonymous, its write was dropped with a 200, and the gateway's log
// blamed the clocks.) Takes some 70 s: the window is 60 s.
func TestDjangoRequestQueuedPastTheClockWindowKeepsItsSession(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "redis-server", "gunicorn", "django")
	root := sessionFixtureRoot(t)
	prepend := writePrepend(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	red := harness.StartRedis(t)
	project, err := filepath.Abs("testdata/djangoapi")
	if err != nil {
		t.Fatal(err)
	}
	djEnv := []string{"DJANGO_SETTINGS_MODULE=sgapi.settings", "SESSIONGATE_SESSION_KEYS=" + sessionTestKey}
	db, _ := djangoDatabaseOn(t, debianDjango, project, djEnv, []string{"migrate", "--noinput"})
	djEnv = append(djEnv, "DJANGO_DATABASE="+db)
	// One sync worker, gunicorn's worker timeout above the slow view.
	g := harness.StartGunicorn(t, debianDjango.gunicornOptions("sgapi", harness.GunicornOptions{Dir: project, Env: djEnv, Workers: 1, Args: []string{"--timeout", "300"}}))
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + prepend,
		"SESSIONGATE_DJANGO_URL=" + g.URL(),
		"SESSIONGATE_DJANGO_PATHS=/accounts/",
		"SESSIONGATE_DJANGO_TIMEOUT=180s",
	})
	if err != nil {
		t.Fatal(err)
	}
	st := &sessionStack{fpm: fpm, red: red, redis: redis.NewClient(&redis.Options{Addr: red.Addr})}
	t.Cleanup(func() { st.redis.Close() })
	st.gws = startGateways(t, cfg, 1)
	gw := st.gws[0]
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})
	// Warm up (first request imports Django).
	if res, body := call(t, gw, jar{}, "GET", "/accounts/api/version/", ""); res.StatusCode != 200 {
		t.Fatalf("version: %d %s", res.StatusCode, body)
	}
	ck := st.newSession(t) // session B, holding user=ana

	client := &http.Client{Timeout: 200 * time.Second}
	do := func(target, cookie string) (int, string) {
		req, _ := http.NewRequest("GET", gw.URL+target, nil)
		if cookie != "" {
			req.Header.Set("Cookie", "sessionid="+cookie)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Errorf("%s: %v", target, err)
			return 0, ""
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Another visitor's slow page holds the only worker for 65 s.
		code, body := do("/accounts/api/slow-set/?ms=65000&k=a&v=1", "")
		t.Logf("slow page: %d %q", code, body)
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	code, body := do("/accounts/api/slow-set/?ms=0&k=b&v=2", ck)
	t.Logf("queued page: %d %q after %v", code, body, time.Since(start).Round(time.Second))
	wg.Wait()
	if code != 200 || body != "ok" {
		t.Fatalf("queued page: %d %q", code, body)
	}
	d := gw.dump(t, ck)
	if !strings.Contains(string(d.Data), `"b":"2"`) && !strings.Contains(string(d.Data), `"b": "2"`) {
		t.Errorf("the queued page answered 200 ok but its session write is lost: session data %s", d.Data)
	}
	if l := gw.Logs.String(); strings.Contains(l, "refused-clock") {
		t.Errorf("Django refused the queued request's session (refused-clock):\n%s", l)
	}
}

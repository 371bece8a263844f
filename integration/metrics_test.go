package integration

// Prometheus metrics of the real gateway binary in front of a real php-fpm
// and redis-server, scraped over the admin listener, and the binary's own
// `gateway healthcheck` against it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testnet"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

func TestMetricsRealStack(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "redis-server")
	root := sessionFixtureRoot(t)
	if err := os.WriteFile(filepath.Join(root, "style.css"), []byte("body{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "app.css"), []byte(strings.Repeat("p { margin: 0; }\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	prepend := writePrepend(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	red := harness.StartRedis(t)
	bin := buildGateway(t)
	gw := startBinary(t, bin, []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_PHP_MAX_CONNS=3",
		"SESSIONGATE_SESSION_KEYS=metrics-integration-key-0123456789abcdef",
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + prepend,
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=300ms",
		"SESSIONGATE_ACCESS_LOG=off",
		"SESSIONGATE_MAX_BODY=4k",
	})
	adminURL, _ := url.Parse(gw.Admin)

	// The binary's own probe, as a container HEALTHCHECK runs it.
	probe := func() (int, string) {
		cmd := exec.Command(bin, "healthcheck")
		cmd.Env = []string{"SESSIONGATE_ADMIN_LISTEN=" + adminURL.Host}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := probe(); code != 0 {
		t.Fatalf("gateway healthcheck on a live gateway: exit %d: %s", code, out)
	}

	// What the client saw, to compare with what the gateway counted.
	type key struct {
		upstream string
		code     int
	}
	var mu sync.Mutex
	seen := map[key]int{}
	busy := 0
	client := &http.Client{Timeout: 20 * time.Second}
	get := func(path, upstream, cookie string) (int, string, string) {
		req, _ := http.NewRequest("GET", gw.URL+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", "sessionid="+cookie)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return 0, "", ""
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		mu.Lock()
		seen[key{upstream, res.StatusCode}]++
		if res.StatusCode == 503 && strings.Contains(string(body), "busy") {
			busy++
		}
		mu.Unlock()
		set := ""
		for _, c := range res.Cookies() {
			if c.Name == "sessionid" {
				set = c.Value
			}
		}
		return res.StatusCode, string(body), set
	}

	// scrape reads the metrics once they count every answer the client
	// saw: a request is counted (and logged) once its response is out, so
	// the client may have it first.
	scrape := func() map[string]float64 {
		var m map[string]float64
		poll(10*time.Second, func() bool {
			m = metricstest.Scrape(t, gw.Admin+"/metrics")
			mu.Lock()
			defer mu.Unlock()
			for k, n := range seen {
				if m[fmt.Sprintf(`sessiongate_http_requests_total{code="%d",upstream="%s"}`, k.code, k.upstream)] < float64(n) {
					return false
				}
			}
			return true
		})
		return m
	}

	for i := 0; i < 3; i++ {
		get("/style.css", "static", "")
		get("/app.css", "static", "") // Go's client asks for gzip
	}
	get("/nothing-here", "gateway", "") // no front controller in this site: 404
	code, _, cookie := get("/counter.php", "php", "")
	if code != 200 || cookie == "" {
		t.Fatalf("counter.php: %d, cookie %q", code, cookie)
	}
	for i := 0; i < 4; i++ {
		if code, body, _ := get("/counter.php", "php", cookie); code != 200 || body != strconv.Itoa(i+2) {
			t.Fatalf("counter.php #%d: %d %q", i+2, code, body)
		}
	}

	// Strict lock held by a slow request: the next one times out (503 busy).
	var wg sync.WaitGroup
	wg.Add(1)
	started, q := markFile(t)
	go func() { defer wg.Done(); get("/hold.php?ms=2500&started="+q, "php", cookie) }()
	waitForFile(t, started, "hold.php")
	poll(2*time.Second, func() bool { code, _, _ := get("/counter.php", "php", cookie); return code == 503 })
	wg.Wait()
	if busy == 0 {
		t.Fatal("no request found the session busy while hold.php held it")
	}

	// Pool gauges while idle: the configured backend, kept-alive
	// connections, nobody waiting, healthy, its limit.
	m := scrape()
	checkReadmeMetrics(t, m, false)

	// app.css compressed once, then sent from the cache twice.
	for series, want := range map[string]float64{
		`sessiongate_static_gzip_cache_lookups_total{result="miss"}`: 1,
		`sessiongate_static_gzip_cache_lookups_total{result="hit"}`:  2,
		`sessiongate_static_gzip_cache_lookups_total{result="busy"}`: 0,
		`sessiongate_static_gzip_cache_files`:                        1,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	b := `backend="` + fpm.Addr + `"`
	idle, okIdle := m[`sessiongate_fcgi_connections{`+b+`,state="idle"}`]
	busyConns, okBusy := m[`sessiongate_fcgi_connections{`+b+`,state="busy"}`]
	if !okIdle || !okBusy || idle < 1 || idle+busyConns > 3 || busyConns != 0 {
		t.Errorf("pool gauges: idle %v (%v) busy %v (%v); want 1..3 idle, 0 busy", idle, okIdle, busyConns, okBusy)
	}
	for name, want := range map[string]float64{
		`sessiongate_fcgi_waiting_requests{` + b + `}`: 0,
		`sessiongate_fcgi_backend_healthy{` + b + `}`:  1,
		`sessiongate_fcgi_max_connections{` + b + `}`:  3,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}

	// Redis down: the session cannot be opened, 503, counted as a store
	// error.
	red.Stop()
	if code, _, _ := get("/counter.php", "php", cookie); code != 503 {
		t.Errorf("with Redis down: %d, want 503", code)
	}

	m = scrape()
	perUpstream := map[string]int{}
	for k, n := range seen {
		name := fmt.Sprintf(`sessiongate_http_requests_total{code="%d",upstream="%s"}`, k.code, k.upstream)
		if got := m[name]; got != float64(n) {
			t.Errorf("%s = %v, client saw %d", name, got, n)
		}
		perUpstream[k.upstream] += n
	}
	for up, n := range perUpstream {
		name := fmt.Sprintf(`sessiongate_http_request_duration_seconds_count{upstream="%s"}`, up)
		if got := m[name]; got != float64(n) {
			t.Errorf("%s = %v, want %d", name, got, n)
		}
	}
	series := 0
	for k := range m {
		if strings.HasPrefix(k, "sessiongate_http_requests_total{") {
			series++
		}
	}
	if series != len(seen) {
		t.Errorf("%d request series, client saw %d (upstream, status) pairs: %v", series, len(seen), seen)
	}

	ev := func(e string) float64 { return m[`sessiongate_session_events_total{event="`+e+`"}`] }
	// 1 create + 4 increments + hold.php's write; a busy counter.php never ran.
	if ev("save") < 6 {
		t.Errorf("save events %v, want >= 6", ev("save"))
	}
	if ev("load") < 5 {
		t.Errorf("load events %v, want >= 5", ev("load"))
	}
	if ev("lock_timeout") != float64(busy) {
		t.Errorf("lock_timeout events %v, client saw %d busy answers", ev("lock_timeout"), busy)
	}
	if ev("store_error") < 1 || m["sessiongate_session_store_errors_total"] != ev("store_error") {
		t.Errorf("store errors: event %v, total %v; want equal and >= 1", ev("store_error"), m["sessiongate_session_store_errors_total"])
	}
	// Every request with the cookie waited for the lock; the busy ones
	// waited past 0.25 s (the lock timeout is 300 ms).
	waits := m["sessiongate_session_lock_wait_seconds_count"]
	if waits < 5+float64(busy) {
		t.Errorf("lock waits %v, want >= %d", waits, 5+busy)
	}
	if over := waits - m[`sessiongate_session_lock_wait_seconds_bucket{le="0.25"}`]; over < float64(busy) {
		t.Errorf("%v lock waits above 0.25 s, want >= %d (the timed-out ones)", over, busy)
	}
	// A request net/http refuses before any handler runs (headers over
	// SESSIONGATE_MAX_HEADER_BYTES) is counted too, access log off, with
	// no duration sample: it was never timed.
	refused := `sessiongate_http_requests_total{code="431",upstream="gateway"}`
	gwDurations := m[`sessiongate_http_request_duration_seconds_count{upstream="gateway"}`]
	u, _ := url.Parse(gw.URL)
	if resp := testnet.Exchange(t, u.Host, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 2<<20)+"\r\n\r\n"); !strings.Contains(resp, " 431 ") {
		t.Errorf("oversized headers: %.60q, want 431", resp)
	}
	m2 := metricstest.Scrape(t, gw.Admin+"/metrics")
	if got := m2[refused]; got != m[refused]+1 {
		t.Errorf("%s = %v after one refused request, was %v", refused, got, m[refused])
	}
	if got := m2[`sessiongate_http_request_duration_seconds_count{upstream="gateway"}`]; got != gwDurations {
		t.Errorf("gateway duration samples %v after a refusal, was %v", got, gwDurations)
	}
	// A body over SESSIONGATE_MAX_BODY is the gateway's refusal whatever
	// its framing: a Content-Length over the limit is refused before
	// routing, a chunked body once it passes the limit on its way to PHP,
	// which counted it under upstream "php".
	for _, chunked := range []bool{false, true} {
		req, _ := http.NewRequest("POST", gw.URL+"/counter.php", strings.NewReader(strings.Repeat("x", 8<<10)))
		if chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(req.Body)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST over MAX_BODY (chunked %v): %v", chunked, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("POST over MAX_BODY (chunked %v): %d, want 413", chunked, res.StatusCode)
		}
	}
	tooLarge := `sessiongate_http_requests_total{code="413",upstream="gateway"}`
	m3 := metricstest.ScrapeWhen(t, gw.Admin+"/metrics", tooLarge, 2)
	if got, php := m3[tooLarge], m3[`sessiongate_http_requests_total{code="413",upstream="php"}`]; got != 2 || php != 0 {
		t.Errorf("two bodies over MAX_BODY, one chunked: %v counted under gateway, %v under php; want 2 and 0", got, php)
	}
	// Each 503 has its request line, access log off as for every failed
	// request, saying why: a busy session, or the store. Both had only a
	// line of their own, without the status, and none in the access log.
	// The lines come through the binary's stderr pipe: waited for.
	var busyLines, storeLines int
	var unexplained []string
	textWhen(gw.stderr.String, func(text string) bool {
		busyLines, storeLines, unexplained = 0, 0, nil
		for _, line := range strings.Split(text, "\n") {
			var l map[string]any
			if json.Unmarshal([]byte(line), &l) != nil || l["msg"] != "request" || l["status"] != float64(503) {
				continue
			}
			e, _ := l["error"].(string)
			switch {
			case strings.Contains(e, "session busy: lock wait timed out"):
				busyLines++
			case strings.Contains(e, "session store unavailable"):
				storeLines++
			default:
				unexplained = append(unexplained, line)
			}
		}
		return busyLines >= busy && storeLines >= 1
	})
	for _, line := range unexplained {
		t.Errorf("503 request line without its reason: %s", line)
	}
	if busyLines != busy || storeLines != 1 {
		t.Errorf("503 request lines: %d busy (client saw %d), %d store (want 1):\n%s", busyLines, busy, storeLines, gw.stderr.String())
	}

	if t.Failed() {
		var dump bytes.Buffer
		for k, v := range m {
			if strings.HasPrefix(k, "sessiongate_") {
				fmt.Fprintf(&dump, "%s %v\n", k, v)
			}
		}
		t.Logf("scrape:\n%s", dump.String())
	}

	// The probe fails once the gateway is gone.
	if err := gw.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	gw.wait(t, 15*time.Second)
	if code, out := probe(); code != 1 {
		t.Errorf("gateway healthcheck on a stopped gateway: exit %d: %s", code, out)
	}
}

// TestMetricsClientLeavesDuringLockWait: a client that gives up while its
// request waits for the session's strict lock left first: the request is
// counted as 499 (README: "code 499 means the client left first"), never as
// a 200 the client did not get, and not as a lock timeout.
func TestMetricsClientLeavesDuringLockWait(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "redis-server")
	root := sessionFixtureRoot(t)
	prepend := writePrepend(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	red := harness.StartRedis(t)
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=metrics-integration-key-0123456789abcdef",
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + prepend,
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=5s",
		"SESSIONGATE_ACCESS_LOG=off",
	})
	get := func(path, cookie string, timeout time.Duration) (*http.Response, error) {
		req, _ := http.NewRequest("GET", gw.URL+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", "sessionid="+cookie)
		}
		res, err := (&http.Client{Timeout: timeout}).Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		return res, err
	}
	res, err := get("/counter.php", "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cookie := ""
	for _, c := range res.Cookies() {
		if c.Name == "sessionid" {
			cookie = c.Value
		}
	}
	if res.StatusCode != 200 || cookie == "" {
		t.Fatalf("counter.php: %d, cookie %q", res.StatusCode, cookie)
	}

	held := make(chan error, 1)
	started, q := markFile(t)
	go func() { _, err := get("/hold.php?ms=1500&started="+q, cookie, 10*time.Second); held <- err }()
	waitForFile(t, started, "hold.php")
	// This one waits for the lock hold.php has, and gives up first.
	if _, err := get("/counter.php", cookie, 200*time.Millisecond); err == nil {
		t.Fatal("counter.php answered while hold.php held the session")
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	// hold.php's count comes after its response has gone out.
	m := metricstest.ScrapeWhen(t, gw.Admin+"/metrics", `sessiongate_http_requests_total{code="200",upstream="php"}`, 2)
	if got := m[`sessiongate_http_requests_total{code="200",upstream="php"}`]; got != 2 {
		t.Errorf(`requests{code="200",upstream="php"} = %v, want 2 (the first counter.php and hold.php)`, got)
	}
	if got := m[`sessiongate_http_requests_total{code="499",upstream="php"}`]; got != 1 {
		t.Errorf(`requests{code="499",upstream="php"} = %v, want 1 (the client that left during the lock wait)`, got)
	}
	if got := m[`sessiongate_session_events_total{event="lock_timeout"}`]; got != 0 {
		t.Errorf("lock_timeout events %v, want 0: the lock did not time out, the client left", got)
	}
	// Its log line (a warning, the access log off) says what it waited
	// for: a bare 499 of 200 ms on a PHP page sent an operator looking at
	// PHP, not at the request of the same session holding the lock.
	if line, ok := logLine(gw.stderr, `"status":499`); !ok {
		t.Errorf("no 499 logged:\n%s", gw.stderr.String())
	} else if !strings.Contains(line, "waited for its session's lock") {
		t.Errorf("the 499 of a client that left during the lock wait logged as %s; want the wait named", line)
	}
}

// checkReadmeMetrics compares the README's metrics table ("Metrics") with a
// scrape of the real gateway: every metric the README names is served with
// the labels it lists, and every sessiongate_* metric served is in the
// table, so the names a user puts in dashboards and alerts cannot drift.
//
// Without django, the gateway scraped has no Django upstream, so the
// Django backends' gauge is not expected (TestDjangoStoppedBackendFoundByTheCheck
// checks the table against a gateway that has one).
func checkReadmeMetrics(t *testing.T, scraped map[string]float64, django bool) {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := regexp.MustCompile("(?s)\n### Metrics\n(.*?)\n## ").FindSubmatch(readme)
	if sec == nil {
		t.Fatal(`README: no "### Metrics" section`)
	}
	documented := map[string][]string{} // name -> sorted label names
	row := regexp.MustCompile("(?m)^\\| (`sessiongate_[^|]*)\\| ([^|]*)\\|")
	code := regexp.MustCompile("`([a-z_]+)`")
	for _, r := range row.FindAllSubmatch(sec[1], -1) {
		var labels []string
		for _, l := range code.FindAllSubmatch(r[2], -1) {
			labels = append(labels, string(l[1]))
		}
		slices.Sort(labels)
		var first string
		for _, n := range code.FindAllSubmatch(r[1], -1) {
			name := string(n[1])
			if strings.HasPrefix(name, "_") { // `_max_bytes`: a suffix of the row's first name
				name = strings.TrimSuffix(first, "_bytes") + name
			} else {
				first = name
			}
			documented[name] = labels
		}
	}
	if len(documented) == 0 {
		t.Fatal("README: no metric names in the Metrics table")
	}
	served := map[string][]string{}
	for series := range scraped {
		name, labelText, _ := strings.Cut(series, "{")
		if !strings.HasPrefix(name, "sessiongate_") {
			continue
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base := strings.TrimSuffix(name, suffix); base != name {
				if _, ok := documented[base]; ok {
					name = base
				}
			}
		}
		var labels []string
		for _, kv := range strings.Split(strings.TrimSuffix(labelText, "}"), ",") {
			if k, _, ok := strings.Cut(kv, "="); ok && k != "le" {
				labels = append(labels, k)
			}
		}
		slices.Sort(labels)
		served[name] = labels
	}
	for name, labels := range documented {
		got, ok := served[name]
		if !ok && !django && strings.HasPrefix(name, "sessiongate_django_") {
			continue
		}
		if !ok {
			t.Errorf("README names metric %s, /metrics does not serve it", name)
		} else if !slices.Equal(got, labels) {
			t.Errorf("metric %s: README lists labels %v, /metrics has %v", name, labels, got)
		}
	}
	for name := range served {
		if _, ok := documented[name]; !ok {
			t.Errorf("/metrics serves %s, which the README's Metrics table does not list", name)
		}
	}
}

// TestGoRuntimeSettingsOfTheBinary: README ("CPU use") says GOGC defaults
// to 400 instead of Go's 100, that the gateway starts on one processor, and
// that setting GOGC or GOMAXPROCS overrides each; the real binary's
// /metrics shows what the runtime uses.
func TestGoRuntimeSettingsOfTheBinary(t *testing.T) {
	t.Parallel()
	bin := buildGateway(t)
	root := t.TempDir()
	for _, tc := range []struct {
		env              []string
		gogc, gomaxprocs float64
	}{
		{nil, 400, 1},
		{[]string{"GOGC=150", "GOMAXPROCS=2"}, 150, 2},
	} {
		p := startBinary(t, bin, append([]string{
			"SESSIONGATE_PHP_FPM=127.0.0.1:9",
			"SESSIONGATE_DOCUMENT_ROOT=" + root,
			"SESSIONGATE_SESSIONS=off",
		}, tc.env...))
		m := metricstest.Scrape(t, p.Admin+"/metrics")
		for name, want := range map[string]float64{"go_gc_gogc_percent": tc.gogc, "go_sched_gomaxprocs_threads": tc.gomaxprocs} {
			if got, ok := m[name]; !ok || got != want {
				t.Errorf("environment %q: %s = %v (present %v), want %v", tc.env, name, got, ok, want)
			}
		}
	}
}

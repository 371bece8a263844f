package integration

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/app"
	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/sessionbridge"
)

const sessionTestKey = "integration-session-key-0123456789abcdef0123"

// sessionStack is php-fpm + Redis (standalone or cluster) + two gateways
// sharing them, the deployment the session guarantees are made for.
type sessionStack struct {
	fpm   *harness.PHPFPM
	gws   []*sessionGW
	redis redis.UniversalClient
	red   *harness.Redis // nil on a cluster; the first master with sentinel
	// sentinel is the Sentinel's address and replica the master's
	// (stackOpts.sentinel).
	sentinel string
	replica  *harness.Redis
	cluster  *harness.RedisCluster // stackOpts.cluster
}

type sessionGW struct {
	URL   string
	Admin string // its admin listener (/readyz, /metrics)
	Logs  *testlog.Buffer
}

type stackOpts struct {
	cluster bool
	// sentinel: a master, one replica and a Sentinel, the gateways on
	// redis-sentinel:// (sessionStack.sentinel is its address).
	sentinel bool
	env      []string // extra SESSIONGATE_* settings
	fpm      harness.PHPFPMOptions
	// prependInPool installs the prepend with php_admin_value instead of
	// SESSIONGATE_PHP_PREPEND.
	prependInPool bool
	// noPrepend installs the prepend nowhere (a pool without the line and
	// no SESSIONGATE_PHP_PREPEND); prependPath, when set, is the
	// SESSIONGATE_PHP_PREPEND the gateways get instead of the real file's.
	noPrepend   bool
	prependPath string
}

// writePrepend writes the session bridge's PHP prepend file (what
// `gateway php-prepend` prints) where a test's php-fpm can read it, and
// returns its path.
func writePrepend(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sessiongate-prepend.php")
	if err := os.WriteFile(p, sessionbridge.PrependPHP, 0o644); err != nil {
		t.Fatal(err)
	}
	harness.ShareWithPHP(t, p)
	return p
}

// sessionFixtureRoot copies the PHP session fixtures into a fresh docroot.
func sessionFixtureRoot(t *testing.T) string {
	t.Helper()
	return fixtureRoot(t, "testdata/session/*.php")
}

// fixtureRoot copies the files matching each pattern (each must match
// some) into a fresh docroot.
func fixtureRoot(t *testing.T, patterns ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, pattern := range patterns {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			t.Fatalf("fixtures %s: %v", pattern, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func startSessionStack(t *testing.T, o stackOpts) *sessionStack {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "redis-server", "redis-cli")
	root := sessionFixtureRoot(t)
	os.WriteFile(filepath.Join(root, "style.css"), []byte("body{}"), 0o644)
	prepend := writePrepend(t)
	fo := o.fpm
	fo.DocRoot = root
	if o.prependInPool {
		fo.AdminValues = maps.Clone(fo.AdminValues)
		if fo.AdminValues == nil {
			fo.AdminValues = map[string]string{}
		}
		fo.AdminValues["auto_prepend_file"] = prepend
	}
	if fo.Children == 0 {
		fo.Children = 8
	}
	fpm := harness.StartPHPFPM(t, fo)

	st := &sessionStack{fpm: fpm}
	var url string
	switch {
	case o.cluster:
		c := harness.StartRedisCluster(t)
		for _, n := range c.Nodes {
			requireKeysExpire(t, n)
		}
		st.cluster = c
		url = "redis-cluster://" + strings.Join(c.Addrs, ",")
		st.redis = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	case o.sentinel:
		st.red, st.replica = harness.StartRedis(t), harness.StartRedis(t)
		requireKeysExpire(t, st.red)
		requireKeysExpire(t, st.replica)
		// In sync before the Sentinel starts: it learns of replicas from
		// the master's INFO, at start and then every 10 s, and refuses a
		// failover (or promotes nobody) until it knows one.
		replicaOf(t, st.replica, st.red)
		st.sentinel = harness.StartRedisSentinel(t, st.red.Addr)
		url = "redis-sentinel://" + st.sentinel + "/0?master=mymaster"
		st.redis = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{st.sentinel}})
	default:
		st.red = harness.StartRedis(t)
		requireKeysExpire(t, st.red)
		url = st.red.URL()
		st.redis = redis.NewClient(&redis.Options{Addr: st.red.Addr})
	}
	t.Cleanup(func() { st.redis.Close() })

	env := []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		// Two gateways share the pool: together they must not pin more
		// workers than php-fpm has.
		"SESSIONGATE_PHP_MAX_CONNS=" + strconv.Itoa(fo.Children/2),
		"SESSIONGATE_PHP_TIMEOUT=20s",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + url,
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=20s",
	}
	switch {
	case o.prependPath != "":
		env = append(env, "SESSIONGATE_PHP_PREPEND="+o.prependPath)
	case !o.prependInPool && !o.noPrepend:
		env = append(env, "SESSIONGATE_PHP_PREPEND="+prepend)
	}
	env = append(env, o.env...)
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	st.gws = startGateways(t, cfg, 2)
	return st
}

// startGateways builds n in-process gateways from cfg, each with its own log
// (printed when the test fails), the way app.Build assembles the binary.
func startGateways(t *testing.T, cfg *config.Config, n int) []*sessionGW {
	t.Helper()
	var gws []*sessionGW
	for i := 0; i < n; i++ {
		logs := &testlog.Buffer{}
		a, err := app.Build(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(a.Server.Handler())
		admin := httptest.NewServer(a.Server.AdminHandler())
		gw := &sessionGW{URL: ts.URL, Admin: admin.URL, Logs: logs}
		t.Cleanup(func() {
			ts.Close()
			admin.Close()
			a.Close()
			if t.Failed() {
				t.Logf("gateway %s log:\n%s", gw.URL, logs.String())
			}
		})
		gws = append(gws, gw)
	}
	return gws
}

var sessionClient = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{MaxIdleConnsPerHost: 128},
}

// request is a request for target on g with the session cookie (none when
// empty) and hdr's name, value pairs (Host sets the request's host).
func (g *sessionGW) request(method, target, cookie string, hdr ...string) *http.Request {
	req, _ := http.NewRequest(method, g.URL+target, nil)
	if cookie != "" {
		req.Header.Set("Cookie", "sessionid="+cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1] // net/http sends req.Host, not a Host header
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return req
}

// get requests target on gw with cookie (may be empty) and returns the
// response, its body and the session cookie it set ("" none, "-" expired).
func (g *sessionGW) get(t testing.TB, target, cookie string, hdr ...string) (*http.Response, string, string) {
	t.Helper()
	req := g.request("GET", target, cookie, hdr...)
	// Errorf, not Fatalf: this runs on client goroutines too.
	resp, err := sessionClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", target, err)
		return &http.Response{Header: http.Header{}}, "", ""
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Errorf("GET %s body: %v", target, err)
	}
	set := ""
	for _, c := range resp.Cookies() {
		if c.Name == "sessionid" {
			set = c.Value
			if c.MaxAge < 0 {
				set = "-"
			}
		}
	}
	return resp, string(body), set
}

// newSession creates a session through PHP and returns its cookie.
func (s *sessionStack) newSession(t *testing.T) string {
	t.Helper()
	resp, body, ck := s.gws[0].get(t, "/set.php?k=user&v=%22ana%22", "")
	if resp.StatusCode != 200 || body != "ok" || ck == "" || ck == "-" {
		t.Fatalf("create: %d %q cookie %q", resp.StatusCode, body, ck)
	}
	return ck
}

type sessionDump struct {
	ID         string          `json:"id"`
	Data       json.RawMessage `json:"data"`
	ServerKeys []string        `json:"server_keys"`
}

func (g *sessionGW) dump(t testing.TB, cookie string) sessionDump {
	t.Helper()
	resp, body, _ := g.get(t, "/get.php", cookie)
	if resp.StatusCode != 200 {
		t.Fatalf("get.php: %d %s", resp.StatusCode, body)
	}
	var d sessionDump
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("get.php: %v: %s", err, body)
	}
	return d
}

// fpmLogWhen returns php-fpm's log once cond holds for it, failing the test
// (with what) after 10 s. The master copies its workers' output
// (catch_workers_output) into the log when it gets to it, which may be after
// the response reached the test.
func fpmLogWhen(t testing.TB, fpm *harness.PHPFPM, what string, cond func(log string) bool) string {
	t.Helper()
	l, ok := textWhen(fpm.Log, cond)
	if !ok {
		t.Fatalf("php-fpm's log, 10 s on: %s\n%s", what, l)
	}
	return l
}

// fpmLogSettled returns php-fpm's log once it has not grown for 500 ms (at
// most 10 s): what the requests before the call left there, the worker
// output the master copies late included.
func fpmLogSettled(fpm *harness.PHPFPM) string {
	l, changed := fpm.Log(), time.Now()
	poll(10*time.Second, func() bool {
		if next := fpm.Log(); next != l {
			l, changed = next, time.Now()
		}
		return time.Since(changed) >= 500*time.Millisecond
	})
	return l
}

func sessionBackends(t *testing.T, run func(t *testing.T, o stackOpts)) {
	t.Run("standalone", func(t *testing.T) { run(t, stackOpts{}) })
	t.Run("cluster", func(t *testing.T) { run(t, stackOpts{cluster: true}) })
}

// TestSessionNoLostUpdates: two gateways, 64 concurrent clients, one
// session, strict locking: N increments end at exactly N.
func TestSessionNoLostUpdates(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		s := startSessionStack(t, o)
		ck := s.newSession(t)
		const clients, each = 64, 5
		var wg sync.WaitGroup
		var failed atomic.Int64
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					resp, body, _ := s.gws[c%2].get(t, "/counter.php", ck)
					if resp.StatusCode != 200 {
						failed.Add(1)
						t.Errorf("counter: %d %s", resp.StatusCode, body)
					}
				}
			}(c)
		}
		wg.Wait()
		_, body, _ := s.gws[0].get(t, "/counter.php", ck)
		if want := strconv.Itoa(clients*each + 1); body != want {
			t.Fatalf("counter = %s, want %s (%d failed requests)", body, want, failed.Load())
		}
	})
}

// TestSessionWriteCloseReleases: a page that closes the session and then
// sleeps does not hold other requests of the session.
func TestSessionWriteCloseReleases(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		s := startSessionStack(t, o)
		ck := s.newSession(t)
		done := make(chan string, 1)
		closed, q := markFile(t)
		go func() {
			_, body, _ := s.gws[0].get(t, "/write_close_sleep.php?closed="+q, ck)
			done <- body
		}()
		// B starts once A has closed its session (A then sleeps 3 s).
		waitForFile(t, closed, "write_close_sleep.php")
		d := s.gws[1].dump(t, ck)
		// B is answered while A still sleeps: it did not wait for A (a time
		// bound would also fail on a slow machine).
		select {
		case body := <-done:
			done <- body
			t.Errorf("request B was answered only after A ended: it waited behind a closed session")
		default:
		}
		if !strings.Contains(string(d.Data), `"a":1`) {
			t.Errorf("B does not see a=1: %s", d.Data)
		}
		if body := <-done; body != "slept" {
			t.Errorf("A: %q", body)
		}
	})
}

// TestSessionLateWrite: a change after 1 MiB of output persists, and a
// 1 MiB binary value round-trips.
func TestSessionLateWriteAndBigValue(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		s := startSessionStack(t, o)
		ck := s.newSession(t)
		resp, body, _ := s.gws[0].get(t, "/late_write.php", ck)
		if resp.StatusCode != 200 || len(body) != 1<<20 {
			t.Fatalf("late_write: %d, %d bytes", resp.StatusCode, len(body))
		}
		if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"late":"yes"`) {
			t.Fatalf("late change lost: %.200s", d.Data)
		}
		if _, body, _ := s.gws[0].get(t, "/big.php?set=1", ck); body != "set" {
			t.Fatalf("big set: %q", body)
		}
		one := sha256.Sum256([]byte("sessiongate"))
		sum := sha256.Sum256([]byte(strings.Repeat(string(one[:]), 32768)))
		want := fmt.Sprintf("%d %s", 1<<20, hex.EncodeToString(sum[:]))
		if _, body, _ := s.gws[1].get(t, "/big.php", ck); body != want {
			t.Fatalf("big value: %q, want %q", body, want)
		}
	})
}

// TestSessionRegenerateAndDestroy: session_regenerate_id(true) gives a new
// cookie and kills the old ID; session_destroy() removes the row and
// expires the cookie.
func TestSessionRegenerateAndDestroy(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		s := startSessionStack(t, o)
		ck := s.newSession(t)
		before := s.gws[0].dump(t, ck)
		resp, newID, newCk := s.gws[0].get(t, "/regenerate.php", ck)
		if resp.StatusCode != 200 || newCk == "" || newCk == "-" || newCk == ck || newID == before.ID {
			t.Fatalf("regenerate: %d id %q cookie %q", resp.StatusCode, newID, newCk)
		}
		if old := s.gws[1].dump(t, ck); old.ID == before.ID || string(old.Data) != "[]" {
			t.Fatalf("old id still resolves: %+v", old)
		}
		cur := s.gws[1].dump(t, newCk)
		if cur.ID != newID || !strings.Contains(string(cur.Data), `"user":"ana"`) || !strings.Contains(string(cur.Data), `"regenerated":true`) {
			t.Fatalf("new session: %+v", cur)
		}
		assertRetired(t, s.redis, before.ID)
		resp, _, set := s.gws[0].get(t, "/destroy.php", newCk)
		if resp.StatusCode != 200 || set != "-" {
			t.Fatalf("destroy: %d cookie %q", resp.StatusCode, set)
		}
		if n, _ := s.redis.Exists(context.Background(), "sessiongate:{"+newID+"}").Result(); n != 0 {
			t.Fatal("destroyed row still in Redis")
		}
	})
}

// assertRetired checks that session id, which a regeneration moved to a new
// ID, holds no data in Redis: at most the short-lived tombstone that tells
// a request still carrying the old cookie not to replace the new one.
func assertRetired(t testing.TB, rdb redis.UniversalClient, id string) {
	t.Helper()
	key := "sessiongate:{" + id + "}"
	ctx := context.Background()
	d, err := rdb.HGet(ctx, key, "d").Result()
	if errors.Is(err, redis.Nil) {
		return
	}
	if err != nil {
		t.Fatalf("HGET %s d: %v", key, err)
	}
	if !strings.HasPrefix(d, `{"v":1,"retired":`) || strings.Contains(d, "data") {
		t.Fatalf("the old ID still holds a session in Redis: %s", d)
	}
	if ttl, _ := rdb.PTTL(ctx, key).Result(); ttl <= 0 || ttl > 2*time.Minute {
		t.Fatalf("the old ID's tombstone expires in %v, want within 2 minutes", ttl)
	}
}

// TestSessionRegenerateRaceKeepsNewCookie: a slow login page holds the
// session, then session_regenerate_id(true) moves it to a new ID whose
// cookie it answers with. Requests the same browser sent with the old
// cookie meanwhile (an XHR poll, a second tab) wait for the session, find
// it gone and start one: they must answer without a session cookie, or
// arriving after the login's answer they would replace its cookie and log
// the user out. One goes through each gateway: the lock passes within a
// gateway and across them.
func TestSessionRegenerateRaceKeepsNewCookie(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	oldID := s.gws[0].dump(t, ck).ID
	started, q := markFile(t)
	type result struct {
		code      int
		body, set string
		cookies   []string
	}
	login := make(chan result, 1)
	go func() {
		resp, body, set := s.gws[0].get(t, "/login_hold.php?ms=1000&started="+q, ck)
		login <- result{resp.StatusCode, body, set, resp.Header.Values("Set-Cookie")}
	}()
	waitForFile(t, started, "login_hold.php")
	polls := make(chan result, 2)
	for i := range 2 {
		go func() {
			resp, body, set := s.gws[i].get(t, "/set.php?k=poll&v="+strconv.Itoa(i), ck)
			polls <- result{resp.StatusCode, body, set, resp.Header.Values("Set-Cookie")}
		}()
	}
	l := <-login
	if l.code != 200 || l.set == "" || l.set == "-" || l.set == ck || l.body == oldID {
		t.Fatalf("login: %d %q cookie %q", l.code, l.body, l.set)
	}
	for range 2 {
		p := <-polls
		if p.code != 200 || p.body != "ok" {
			t.Fatalf("request with the pre-login cookie: %d %q", p.code, p.body)
		}
		if p.set != "" {
			t.Errorf("request with the pre-login cookie answered with a session cookie, which replaces the login's: %q", p.cookies)
		}
	}
	d := s.gws[1].dump(t, l.set)
	if d.ID != l.body || !strings.Contains(string(d.Data), `"user":"ana"`) || !strings.Contains(string(d.Data), `"logged":"yes"`) || strings.Contains(string(d.Data), "poll") {
		t.Fatalf("session after the login: %+v", d)
	}
	if old := s.gws[1].dump(t, ck); old.ID == oldID || string(old.Data) != "[]" {
		t.Fatalf("pre-login ID still resolves: %+v", old)
	}
	assertRetired(t, s.redis, oldID)
	for _, g := range s.gws {
		if !strings.Contains(g.Logs.String(), "new session not started") {
			t.Errorf("gateway %s did not log why the request's new session was not kept", g.URL)
		}
	}
}

// TestSessionLostLoginAnswerDoesNotLockOutTheOldCookie: a login
// (session_regenerate_id(true)) whose answer never reached the browser
// leaves it with the old cookie, whose ID is a tombstone in Redis. Right
// after the login, a request with it is one of the login's race and sends
// no cookie (TestSessionRegenerateRaceKeepsNewCookie). Once the
// regeneration is older than the grace (its time in the tombstone is set a
// minute back here), the old cookie starts a new, empty session with a
// cookie of its own, so the user can log in again; the login's session
// stays as it is.
func TestSessionLostLoginAnswerDoesNotLockOutTheOldCookie(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	oldID := s.gws[0].dump(t, ck).ID
	resp, newID, lost := s.gws[0].get(t, "/regenerate.php", ck)
	if resp.StatusCode != 200 || lost == "" || lost == "-" || lost == ck {
		t.Fatalf("login: %d %q cookie %q", resp.StatusCode, newID, lost)
	}
	if resp, body, set := s.gws[1].get(t, "/set.php?k=csrf&v=t1", ck); resp.StatusCode != 200 || body != "ok" || set != "" {
		t.Fatalf("old cookie right after the login: %d %q cookie %q, want no cookie", resp.StatusCode, body, set)
	}
	key := "sessiongate:{" + oldID + "}"
	ctx := context.Background()
	ttl := s.redis.PTTL(ctx, key).Val()
	past := time.Now().Add(-time.Minute).UnixMilli()
	if err := s.redis.HSet(ctx, key, "d", fmt.Sprintf(`{"v":1,"retired":%d}`, past)).Err(); err != nil {
		t.Fatal(err)
	}
	if got := s.redis.PTTL(ctx, key).Val(); got <= 0 || got > ttl {
		t.Fatalf("tombstone TTL %v after rewriting its time, was %v", got, ttl)
	}
	resp, body, set := s.gws[1].get(t, "/set.php?k=csrf&v=t2", ck)
	if resp.StatusCode != 200 || body != "ok" || set == "" || set == "-" || set == ck || set == lost {
		t.Fatalf("old cookie a minute after the login: %d %q cookie %q, want a new session's cookie", resp.StatusCode, body, set)
	}
	d := s.gws[0].dump(t, set)
	if d.ID == oldID || d.ID == newID || string(d.Data) != `{"csrf":"t2"}` {
		t.Fatalf("the old cookie's new session: %+v", d)
	}
	if d := s.gws[0].dump(t, lost); d.ID != newID || !strings.Contains(string(d.Data), `"regenerated":true`) || strings.Contains(string(d.Data), "csrf") {
		t.Fatalf("the login's session: %+v", d)
	}
	if !strings.Contains(s.gws[1].Logs.String(), "the browser never got the new cookie") {
		t.Errorf("gateway did not log why the old cookie started a session:\n%s", s.gws[1].Logs.String())
	}
}

// TestSessionPHPOwnCookieNeverCarriesRawID: PHP sends its own session
// cookie with the raw ID (the store's key). It never reaches the browser,
// whatever name the app gives it, even the gateway's own (where it would
// replace the signed cookie and log the user out); the app's other cookies
// do, and the session works on.
func TestSessionPHPOwnCookieNeverCarriesRawID(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	for i, target := range []string{
		"/use_cookies.php",
		"/use_cookies.php?name=sessionid",
		"/use_cookies.php?name=sessionid&regen=1",
	} {
		before := s.gws[1].dump(t, ck).ID
		resp, id, set := s.gws[0].get(t, target, ck)
		if resp.StatusCode != 200 || id == "" {
			t.Fatalf("%s: %d %q", target, resp.StatusCode, id)
		}
		theme := false
		for _, c := range resp.Cookies() {
			if c.Value == id || c.Value == before {
				t.Errorf("%s: cookie %s carries the raw session ID", target, c.Name)
			}
			theme = theme || c.Name == "theme" && c.Value == "dark"
		}
		if !theme {
			t.Errorf("%s: the app's own cookie was lost: %q", target, resp.Header.Values("Set-Cookie"))
		}
		if set != "" {
			if set == "-" {
				t.Fatalf("%s: session cookie deleted", target)
			}
			ck = set
		}
		d := s.gws[1].dump(t, ck)
		if d.ID != id || !strings.Contains(string(d.Data), fmt.Sprintf(`"uc":%d`, i+1)) {
			t.Fatalf("%s: session after the request: %+v, PHP's id %s", target, d, id)
		}
	}
	// PHP sends its own cookie on most requests (session.use_cookies is on
	// under the gateway): expected, so not a warning.
	if logs := s.gws[0].Logs.String(); strings.Contains(logs, "raw session ID") {
		t.Errorf("PHP's own session cookie logged as news:\n%s", logs)
	}
}

// TestSessionSlowDownloadHoldsNoWorkerNorLock: a client that downloads a big
// page slowly must not hold the php-fpm connection (the gateway has one)
// nor the session lock, whether the script keeps its session open to the
// end, never starts it, or is killed before it could save it: the gateway
// reads PHP's output ahead of the client, as nginx buffers it, and the lock
// goes when PHP is done. The same user's next page answers at once (with
// the first page's change saved, if it was), and the slow client still gets
// every byte, or an aborted download when PHP died.
func TestSessionSlowDownloadHoldsNoWorkerNorLock(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{Children: 2}}) // one connection per gateway
	ck := s.newSession(t)
	chunk := strings.Repeat(fmt.Sprintf("%x", sha256.Sum256([]byte("sessiongate"))), 1024)
	for _, tc := range []struct {
		target    string
		downloads int // the session's count after the download
		dies      bool
	}{
		{"/download.php?session=1", 1, false},
		{"/download.php", 1, false},
		{"/download.php?session=1&die=1", 1, true},
	} {
		req, _ := http.NewRequest("GET", s.gws[0].URL+tc.target, nil)
		req.Header.Set("Cookie", "sessionid="+ck)
		slow, err := sessionClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 10)
		if _, err := io.ReadFull(slow.Body, first); err != nil || slow.StatusCode != 200 {
			t.Fatalf("%s: %d %v", tc.target, slow.StatusCode, err)
		}
		// The slow client reads nothing more while the same user opens a
		// page on the same gateway.
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		next, _ := http.NewRequestWithContext(ctx, "GET", s.gws[0].URL+"/get.php", nil)
		next.Header.Set("Cookie", "sessionid="+ck)
		start := time.Now()
		res, err := sessionClient.Do(next)
		if err != nil {
			cancel()
			t.Fatalf("%s: next page while the download is slow: %v after %v", tc.target, err, time.Since(start))
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		if want := fmt.Sprintf(`"downloads":%d`, tc.downloads); res.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s: next page: %d %s, want %s", tc.target, res.StatusCode, body, want)
		}
		t.Logf("%s: next page answered in %v while the download waited", tc.target, time.Since(start).Round(time.Millisecond))
		rest, err := io.ReadAll(slow.Body)
		slow.Body.Close()
		if tc.dies {
			if err == nil {
				t.Fatalf("%s: the download of a killed script ended cleanly (%d bytes)", tc.target, len(first)+len(rest))
			}
			continue
		}
		if err != nil || string(first)+string(rest) != strings.Repeat(chunk, 512) {
			t.Fatalf("%s: %d bytes (want %d), %v", tc.target, len(first)+len(rest), 512*len(chunk), err)
		}
	}
}

func redisCommands(t *testing.T, c redis.UniversalClient) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no total_commands_processed")
	return 0
}

// holdLock runs hold.php on gw in the session of cookie ck for ms
// milliseconds, and returns once PHP holds the session (its lock, in
// strict mode); the channel is closed when that page has answered.
func holdLock(t *testing.T, gw *sessionGW, ck string, ms int) <-chan struct{} {
	t.Helper()
	held := make(chan struct{})
	started, q := markFile(t)
	go func() {
		defer close(held)
		gw.get(t, "/hold.php?ms="+strconv.Itoa(ms)+"&started="+q, ck)
	}()
	waitForFile(t, started, "hold.php")
	return held
}

// TestSessionNoCookieNoRedis: requests without a session cookie (or with a
// forged one) and static files never touch Redis and never wait; a
// session_start() with a forged cookie gets a new session.
func TestSessionNoCookieNoRedis(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	// Hold the session's lock meanwhile: nothing below may wait for it.
	// Counting starts once PHP holds the session, so the holder's own
	// lock and load are not counted.
	held := holdLock(t, s.gws[0], ck, 4000)
	before := redisCommands(t, s.redis)
	for i := 0; i < 20; i++ {
		if resp, body, _ := s.gws[i%2].get(t, "/nosession.php", ""); resp.StatusCode != 200 || body != "no session here" {
			t.Fatalf("nosession: %d %q", resp.StatusCode, body)
		}
		if resp, _, _ := s.gws[i%2].get(t, "/style.css", ck); resp.StatusCode != 200 {
			t.Fatalf("static: %d", resp.StatusCode)
		}
		if resp, body, set := s.gws[i%2].get(t, "/nosession.php", "forged-"+ck[:20]); resp.StatusCode != 200 || body != "no session here" || set != "" {
			t.Fatalf("forged cookie: %d %q, cookie %q", resp.StatusCode, body, set)
		}
	}
	// No request waited for the lock: all of them are done while it is
	// still held (a time bound would also fail on a slow machine).
	select {
	case <-held:
		t.Errorf("the 60 session-less requests outlasted a lock held for 4 s: some waited for it")
	default:
	}
	// INFO itself is one command.
	if after := redisCommands(t, s.redis); after-before != 1 {
		t.Errorf("Redis saw %d commands from session-less requests", after-before-1)
	}
	// A forged cookie names no session: session_start() makes a new one,
	// without waiting for the held lock.
	resp, body, set := s.gws[0].get(t, "/get.php", "forged-"+ck[:20])
	var d sessionDump
	if err := json.Unmarshal([]byte(body), &d); resp.StatusCode != 200 || err != nil || string(d.Data) != "[]" || set == "" || set == "-" || set == ck {
		t.Fatalf("session_start() with a forged cookie: %d %s, cookie %q", resp.StatusCode, body, set)
	}
	select {
	case <-held:
		t.Errorf("the new session waited for the held lock")
	default:
	}
	<-held
}

// TestSessionInternalHeaders: a client cannot inject session data through
// internal headers in any spelling, and internal response headers never
// reach the client.
func TestSessionInternalHeaders(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		s := startSessionStack(t, o)
		ck := s.newSession(t)
		resp, body, _ := s.gws[0].get(t, "/evil_header.php", ck,
			"X-Sessiongate-Session-Id", "attacker", "X_Sessiongate_Data_0", "attacker", "x-sessiongate-nonce", "attacker")
		if resp.StatusCode != 200 || body != "[]" {
			t.Fatalf("PHP saw internal names: %d %s", resp.StatusCode, body)
		}
		for name := range resp.Header {
			if strings.Contains(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "sessiongate") {
				t.Errorf("client got internal header %s", name)
			}
		}
		d := s.gws[0].dump(t, ck)
		if len(d.ServerKeys) != 0 {
			t.Errorf("$_SERVER carries internal params: %v", d.ServerKeys)
		}
	})
}

// TestSessionLockTimeout: a session held longer than the lock timeout
// answers 503 with Retry-After, and no PHP runs for it.
func TestSessionLockTimeout(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		o.env = append(o.env, "SESSIONGATE_SESSION_LOCK_TIMEOUT=300ms")
		s := startSessionStack(t, o)
		ck := s.newSession(t)
		held := holdLock(t, s.gws[0], ck, 3000)
		resp, _, set := s.gws[1].get(t, "/counter.php", ck)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || set != "" {
			t.Fatalf("busy session: %d Retry-After %q cookie %q", resp.StatusCode, resp.Header.Get("Retry-After"), set)
		}
		// The 503 came after the lock timeout, not once the holder let go.
		select {
		case <-held:
			t.Errorf("the 503 came only after the session was released")
		default:
		}
		<-held
	})
}

// TestSessionRedisDown: a request that needs the session gets 503 within
// the timeout while Redis does not answer; the cookie is kept, nothing is
// deleted, and service resumes by itself.
func TestSessionRedisDown(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_REDIS_TIMEOUT=300ms"}})
	ck := s.newSession(t)
	ctx := context.Background()
	// Redis alive but silent: CLIENT PAUSE keeps the data.
	if err := s.redis.Do(ctx, "CLIENT", "PAUSE", "2500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, _, set := s.gws[0].get(t, "/counter.php", ck)
	if resp.StatusCode != 503 || set != "" {
		t.Fatalf("paused Redis: %d cookie %q", resp.StatusCode, set)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("503 took %v", took)
	}
	if resp, _, _ := s.gws[0].get(t, "/nosession.php", ""); resp.StatusCode != 200 {
		t.Errorf("session-less request failed during the outage: %d", resp.StatusCode)
	}
	time.Sleep(2500*time.Millisecond - time.Since(start) + 200*time.Millisecond)
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"user":"ana"`) {
		t.Fatalf("session lost after the pause: %s", d.Data)
	}

	// Redis gone and back.
	s.red.Stop()
	start = time.Now()
	resp, _, set = s.gws[1].get(t, "/counter.php", ck)
	if resp.StatusCode != 503 || set != "" {
		t.Fatalf("Redis stopped: %d cookie %q", resp.StatusCode, set)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("503 took %v", took)
	}
	s.red.Start()
	back := func() bool {
		resp, _, set = s.gws[1].get(t, "/set.php?k=back&v=1", "")
		return resp.StatusCode == 200 && set != ""
	}
	if !poll(10*time.Second, back) {
		t.Fatalf("no recovery after Redis came back: %d", resp.StatusCode)
	}
}

// TestSessionMergeMode: no waiting; concurrent writes to different keys
// both survive; a same-key conflict is last-writer-wins and logged.
func TestSessionMergeMode(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		o.env = append(o.env, "SESSIONGATE_SESSION_LOCK=merge")
		s := startSessionStack(t, o)
		ck := s.newSession(t)
		// B gets the session while A has it and cannot end before it is
		// released: neither waited for the other's lock, whatever the
		// machine's load. (Two timed requests overlapping only showed
		// that when neither was delayed by half a second.)
		releaseA, doneA := startMergeWait(t, s.gws[0], ck, url.Values{"k": {"a"}, "v": {"1"}})
		releaseB, doneB := startMergeWait(t, s.gws[1], ck, url.Values{"k": {"b"}, "v": {"2"}})
		select {
		case r := <-doneA:
			t.Fatalf("merge mode waited: the second request got the session only after the first ended (%v)", r)
		default:
		}
		releaseA()
		releaseB()
		for _, r := range [][2]string{<-doneA, <-doneB} {
			if r != [2]string{"200", "ok"} {
				t.Errorf("merge_wait.php: %v", r)
			}
		}
		d := s.gws[0].dump(t, ck)
		if !strings.Contains(string(d.Data), `"a":"1"`) || !strings.Contains(string(d.Data), `"b":"2"`) {
			t.Fatalf("a concurrent write was lost: %s", d.Data)
		}
		// Same key: the later writer wins and the conflict is logged. Both
		// requests have read the session before the first one writes; the
		// second writes after it.
		releaseFirst, first := startMergeWait(t, s.gws[0], ck, url.Values{"k": {"c"}, "v": {"first"}})
		releaseSecond, second := startMergeWait(t, s.gws[1], ck, url.Values{"k": {"c"}, "v": {"second"}})
		releaseFirst()
		if r := <-first; r != [2]string{"200", "ok"} {
			t.Fatalf("first writer: %v", r)
		}
		releaseSecond()
		if r := <-second; r != [2]string{"200", "ok"} {
			t.Fatalf("second writer: %v", r)
		}
		if d := s.gws[0].dump(t, ck); !strings.Contains(string(d.Data), `"c":"second"`) {
			t.Fatalf("last writer did not win: %s", d.Data)
		}
		if !strings.Contains(s.gws[1].Logs.String(), "overrode concurrent changes") {
			t.Errorf("conflict not logged:\n%s", s.gws[1].Logs.String())
		}
	})
}

// TestSessionPrependFromPoolConfig: the prepend installed with one line of
// pool configuration (no PHP_VALUE from the gateway) works the same.
func TestSessionPrependFromPoolConfig(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{prependInPool: true})
	ck := s.newSession(t)
	for i := 2; i <= 4; i++ {
		if _, body, _ := s.gws[i%2].get(t, "/counter.php", ck); body != strconv.Itoa(i-1) {
			t.Fatalf("counter = %q, want %d", body, i-1)
		}
	}
	if d := s.gws[0].dump(t, ck); !strings.Contains(string(d.Data), `"user":"ana"`) {
		t.Fatalf("data: %s", d.Data)
	}
}

// TestSessionAutoStartHidesInternalParams: with session.auto_start on in
// the pool, PHP starts its session before the prepend runs (the prepend
// then lets it go and starts the gateway's). The frame key and the session
// data the gateway passed must still not stay in the application's
// $_SERVER.
func TestSessionAutoStartHidesInternalParams(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{prependInPool: true, fpm: harness.PHPFPMOptions{AdminValues: map[string]string{"session.auto_start": "1"}}})
	_, body, _ := s.gws[0].get(t, "/server_keys.php", "")
	if body != "" {
		t.Errorf("the application's $_SERVER holds %s", body)
	}
}

// TestSessionDataNeverLogged: php-fpm copies error_log() output into its own
// log when catch_workers_output is on (the harness pool has it on); the
// frames carrying session data are encrypted per request, so neither that
// log nor the gateway's shows the data.
func TestSessionDataNeverLogged(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	const secret = "secret-cart-4242"
	resp, _, ck := s.gws[0].get(t, "/set.php?k=cart&v="+secret, "")
	if resp.StatusCode != 200 || ck == "" {
		t.Fatalf("set: %d %q", resp.StatusCode, ck)
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), secret) {
		t.Fatalf("value not stored: %s", d.Data)
	}
	fpmLogWhen(t, s.fpm, "no frames: the test would prove nothing", func(l string) bool { return strings.Contains(l, "@sg1:") })
	fpmLog := fpmLogSettled(s.fpm)
	// The frames' base64 chunks (800 characters: each decodes alone) must
	// not hold the data either.
	var decoded strings.Builder
	for _, m := range regexp.MustCompile(`@sg1:[0-9a-f]+:\d+:[01]:([A-Za-z0-9+/=]*)#`).FindAllStringSubmatch(fpmLog, -1) {
		b, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatalf("frame chunk in the log: %v", err)
		}
		decoded.Write(b)
	}
	for name, text := range map[string]string{"php-fpm": fpmLog, "php-fpm frames": decoded.String(), "gateway 0": s.gws[0].Logs.String(), "gateway 1": s.gws[1].Logs.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("%s log holds session data:\n%s", name, text)
		}
	}
}

// TestSessionEndWriteRidesInHeader: a session written when the request ends,
// before PHP sent its headers, comes back in the X-Sessiongate-Frame response
// header (stripped before the client), so php-fpm copies no frame into its
// log; a write after output started still comes back over stderr. The frame
// count in php-fpm's log (catch_workers_output is on) tells the two apart.
func TestSessionEndWriteRidesInHeader(t *testing.T) {
	t.Parallel()
	// The 7 MiB write below is one Redis call: on a loaded 2-CPU machine
	// it outlasted the default 500 ms SESSIONGATE_REDIS_TIMEOUT (503).
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_REDIS_TIMEOUT=5s"}})
	ck := s.newSession(t)
	frames := func() int { return strings.Count(fpmLogSettled(s.fpm), "@sg1:") }
	before := frames()
	resp, body, _ := s.gws[0].get(t, "/set.php?k=cart&v=%5B1%2C2%5D", ck)
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("set: %d %q", resp.StatusCode, body)
	}
	for name := range resp.Header {
		if strings.Contains(strings.ToLower(name), "sessiongate") {
			t.Errorf("client got internal header %s", name)
		}
	}
	if n := frames() - before; n != 0 {
		t.Errorf("end-of-request write sent %d frames through php-fpm's log, want 0 (header channel)", n)
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"cart":[1,2]`) {
		t.Fatalf("write through the header not saved: %s", d.Data)
	}

	before = frames()
	resp, _, _ = s.gws[0].get(t, "/late_write.php", ck)
	if resp.StatusCode != 200 {
		t.Fatalf("late_write: %d", resp.StatusCode)
	}
	fpmLogWhen(t, s.fpm, "a write after output started sent no stderr frame: the count above proves nothing", func(l string) bool {
		return strings.Count(l, "@sg1:") > before
	})
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"late":"yes"`) {
		t.Fatalf("late write not saved: %s", d.Data)
	}

	// A message too big for a header (the gateway caps PHP's header block
	// at 8 MiB) goes over stderr even at the end of the request.
	if resp, body, _ := s.gws[0].get(t, "/big.php?set=7&ascii=1", ck); resp.StatusCode != 200 || body != "set" {
		t.Fatalf("7 MiB set at the end: %d %.200q", resp.StatusCode, body)
	}
	sum := sha256.Sum256([]byte(strings.Repeat("a", 7<<20)))
	want := fmt.Sprintf("%d %s", 7<<20, hex.EncodeToString(sum[:]))
	if _, body, _ := s.gws[1].get(t, "/big.php", ck); body != want {
		t.Fatalf("7 MiB value: %.200q, want %q", body, want)
	}
}

// TestSessionFastCGIFinishRequest: a script that closes its session, then
// answers with fastcgi_finish_request() and goes on working (the order the
// README asks for), gets its change saved.
func TestSessionFastCGIFinishRequest(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	resp, body, _ := s.gws[0].get(t, "/finish_request.php?k=after&v=finish", ck)
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("finish_request: %d %q", resp.StatusCode, body)
	}
	d := s.gws[1].dump(t, ck)
	if !strings.Contains(string(d.Data), `"after":"finish"`) {
		t.Fatalf("change before fastcgi_finish_request() not saved: %s", d.Data)
	}
}

// TestSessionWrittenTwiceInOneRequest: a script that closes its session and
// opens it again gets both writes stored as it made them. A new visitor's
// first close stores nothing (the session is empty); the second write must
// still create a session the next request loads. And a key set back to the
// value the request started with must not be taken for untouched.
func TestSessionWrittenTwiceInOneRequest(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		s := startSessionStack(t, o)
		resp, id, ck := s.gws[0].get(t, "/reopen.php?mode=new", "")
		if resp.StatusCode != 200 || ck == "" || ck == "-" {
			t.Fatalf("new visitor: %d id %q cookie %q", resp.StatusCode, id, ck)
		}
		if d := s.gws[1].dump(t, ck); d.ID != id || !strings.Contains(string(d.Data), `"user":"ana"`) {
			t.Fatalf("next request after a write, close, reopen and write: %+v (id %s)", d, id)
		}
		if _, body, _ := s.gws[0].get(t, "/set.php?k=k&v=A", ck); body != "ok" {
			t.Fatalf("set k: %q", body)
		}
		if resp, _, _ := s.gws[0].get(t, "/reopen.php?mode=revert", ck); resp.StatusCode != 200 {
			t.Fatalf("revert: %d", resp.StatusCode)
		}
		d := s.gws[1].dump(t, ck)
		if !strings.Contains(string(d.Data), `"k":"A"`) || !strings.Contains(string(d.Data), `"n":2`) {
			t.Fatalf("second write lost a key set back to its first value: %s", d.Data)
		}
	})
}

// TestSessionReopenedWriteReachesTheNextWaiter: a page that let its
// session go (read_and_close) and opens it again later writes under the
// lock it takes again, behind a page that holds the session and ahead of
// another that waits, all on one gateway. The Redis store hands the lock
// from one local request to the next with the record the release leaves:
// a write saved beside the lock by compare-and-set never reached the next
// request, whose own write then replaced it.
func TestSessionReopenedWriteReachesTheNextWaiter(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		s := startSessionStack(t, o)
		ck := s.newSession(t)
		gw := s.gws[0]
		dir := harness.PHPTempDir(t)
		closed, started, goOn := filepath.Join(dir, "closed"), filepath.Join(dir, "started"), filepath.Join(dir, "go")
		q := url.QueryEscape
		bodies := make(chan string, 3)
		page := func(path string) {
			resp, body, _ := gw.get(t, path, ck)
			bodies <- fmt.Sprintf("%s: %d %s", path, resp.StatusCode, body)
		}
		go page("/reopen_wait.php?k=reopened&v=yes&closed=" + q(closed) + "&go=" + q(goOn))
		waitForFile(t, closed, "reopen_wait.php")
		go page("/hold.php?ms=1500&started=" + q(started))
		waitForFile(t, started, "hold.php")
		if err := os.WriteFile(goOn, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		// reopen_wait.php now waits for hold.php's lock; then set.php
		// waits behind it.
		time.Sleep(300 * time.Millisecond)
		go page("/set.php?k=after&v=1")
		for range 3 {
			if b := <-bodies; !strings.Contains(b, ": 200 ") {
				t.Errorf("%s", b)
			}
		}
		d := s.gws[1].dump(t, ck)
		for _, want := range []string{`"reopened":"yes"`, `"after":1`, `"held":1`} {
			if !strings.Contains(string(d.Data), want) {
				t.Errorf("stored: %s, lacks %s", d.Data, want)
			}
		}
	})
}

// TestSessionCreateIDWhileActive: session_create_id() in an active session
// returns a fresh ID, as with PHP's files handler. The handler's validateId
// answers PHP's collision check ("does this ID exist?"); an ID it had just
// minted and nobody opened must not count as existing, or every attempt
// collides and PHP warns "Failed to create new ID" and returns false.
func TestSessionCreateIDWhileActive(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	resp, body, _ := s.gws[0].get(t, "/create_id.php", ck)
	var out struct {
		New any    `json:"new"`
		ID  string `json:"id"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("create_id: %d %s", resp.StatusCode, body)
	}
	id, _ := out.New.(string)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) || id == out.ID {
		t.Fatalf("session_create_id() = %v (session %s), want a new 64-hex ID: %s", out.New, out.ID, body)
	}
	if d := s.gws[1].dump(t, ck); d.ID != out.ID || !strings.Contains(string(d.Data), `"created":true`) {
		t.Fatalf("session after session_create_id(): %+v", d)
	}
}

// TestSessionUserIDFollowsChanges: sessiongate_user_id() called after the
// script closed its session reports the session as the script left it: no
// user after session_destroy() (logout), the new user after a login written
// with session_write_close(); not the user the request started with.
func TestSessionUserIDFollowsChanges(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	_, _, ck := s.gws[0].get(t, "/set.php?k=_auth_user_id&v=7", "")
	if _, body, _ := s.gws[1].get(t, "/whoami.php", ck); body != "user:7" {
		t.Fatalf("whoami: %q", body)
	}
	if _, body, _ := s.gws[0].get(t, "/user_change.php?op=login", ck); body != "user:9" {
		t.Errorf("after a login and session_write_close(): %q, want user:9", body)
	}
	_, _, ck = s.gws[0].get(t, "/set.php?k=_auth_user_id&v=7", "")
	if _, body, set := s.gws[0].get(t, "/user_change.php?op=logout", ck); body != "anonymous" || set != "-" {
		t.Errorf("after session_destroy(): %q (cookie %q), want anonymous", body, set)
	}
}

// TestSessionScriptPicksSerializeHandler: a script that sets
// session.serialize_handler to PHP's own "php" or "php_binary" format at
// run time (legacy code does) sees the session the gateway loaded and its
// changes are stored, and every other app keeps seeing them. Before, PHP
// decoded the gateway's php_serialize text with the script's handler,
// failed, and destroyed the session: a login was lost.
func TestSessionScriptPicksSerializeHandler(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	// "a|b" cannot be named in the "php" format: that script does not see
	// it, and its writes keep it.
	for _, tc := range []struct{ handler, sees string }{
		{"php", `"user":"ana"`},
		{"php_binary", `"user":"ana","a|b":1`},
	} {
		t.Run(tc.handler, func(t *testing.T) {
			ck := s.newSession(t)
			if resp, body, _ := s.gws[0].get(t, "/set.php?k=a%7Cb&v=1", ck); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("set a|b: %d %q", resp.StatusCode, body)
			}
			resp, body, _ := s.gws[0].get(t, "/handler_php.php?h="+tc.handler+"&k=cart&v=%7B%22apple%22%3A2%7D", ck)
			if resp.StatusCode != 200 || body != "{"+tc.sees+"}" {
				t.Fatalf("first request: %d %q, want {%s}", resp.StatusCode, body, tc.sees)
			}
			resp, body, _ = s.gws[1].get(t, "/handler_php.php?h="+tc.handler, ck)
			if want := "{" + tc.sees + `,"visits":1,"cart":{"apple":2}}`; resp.StatusCode != 200 || body != want {
				t.Fatalf("second request: %d %q, want %s", resp.StatusCode, body, want)
			}
			// The stored session stays php_serialize/JSON for everybody else.
			d := s.gws[0].dump(t, ck)
			for _, want := range []string{`"user":"ana"`, `"a|b":1`, `"visits":2`, `"cart":{"apple":2}`} {
				if !strings.Contains(string(d.Data), want) {
					t.Errorf("stored session %s lacks %s", d.Data, want)
				}
			}
			// unset($_SESSION) after a change: PHP writes the session it
			// holds, change included; the prepend wrote an empty one.
			if resp, _, _ := s.gws[0].get(t, "/handler_php.php?h="+tc.handler+"&op=unset", ck); resp.StatusCode != 200 {
				t.Fatalf("unset: %d", resp.StatusCode)
			}
			d = s.gws[0].dump(t, ck)
			for _, want := range []string{`"user":"ana"`, `"a|b":1`, `"visits":3`, `"cart":{"apple":2}`} {
				if !strings.Contains(string(d.Data), want) {
					t.Errorf("stored session after unset($_SESSION): %s lacks %s", d.Data, want)
				}
			}
			// A login (session_regenerate_id) moves all of it, hidden keys
			// included, to the new ID.
			_, _, moved := s.gws[0].get(t, "/handler_php.php?h="+tc.handler+"&op=regenerate", ck)
			if moved == "" || moved == "-" || moved == ck {
				t.Fatalf("regenerate: cookie %q", moved)
			}
			if d := s.gws[1].dump(t, moved); !strings.Contains(string(d.Data), `"a|b":1`) || !strings.Contains(string(d.Data), `"user":"ana"`) {
				t.Errorf("after regenerate: %s", d.Data)
			}
			// A logout and a new session in the same request: nothing of
			// the old session reaches the new one.
			_, _, fresh := s.gws[0].get(t, "/handler_php.php?h="+tc.handler+"&op=restart", moved)
			if fresh == "" || fresh == "-" || fresh == moved {
				t.Fatalf("restart: cookie %q", fresh)
			}
			if d := s.gws[1].dump(t, fresh); string(d.Data) != `{"fresh":1}` {
				t.Errorf("new session after logout: %s, want {\"fresh\":1}", d.Data)
			}
		})
	}
}

// TestSessionScriptHandlerKeepsKeyOrder: keys a legacy script's own
// session format cannot show it (an integer key, a name with '|') go back
// where they were when it writes, so the session's member order, which
// every app keeps (docs/protocol.md), is not changed by a script that did
// not touch them. They were moved to the end.
func TestSessionScriptHandlerKeepsKeyOrder(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	for _, h := range []string{"php", "php_binary"} {
		ck := s.newSession(t)
		for _, kv := range []string{"k=5&v=1", "k=a%7Cb&v=2", "k=z&v=3"} {
			if resp, body, _ := s.gws[0].get(t, "/set.php?"+kv, ck); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("set %s: %d %q", kv, resp.StatusCode, body)
			}
		}
		if resp, body, _ := s.gws[0].get(t, "/handler_php.php?h="+h+"&k=cart&v=%7B%22apple%22%3A2%7D", ck); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %q", h, resp.StatusCode, body)
		}
		if d := s.gws[0].dump(t, ck); string(d.Data) != `{"user":"ana","5":1,"a|b":2,"z":3,"visits":1,"cart":{"apple":2}}` {
			t.Errorf("%s: stored %s", h, d.Data)
		}
	}
}

// TestSessionIDEmptyBeforeStart: session_id() is "" until session_start(),
// as with PHP's files handler, so the idiom `if (!session_id())
// session_start();` starts the session. Before, the prepend set the ID
// ahead of the script: such a script never started the session, saw no
// login and lost its writes. An ID the script picks itself is still never
// used.
func TestSessionIDEmptyBeforeStart(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	id := s.gws[1].dump(t, ck).ID
	var out struct {
		Before string `json:"before"`
		ID     string `json:"id"`
		User   any    `json:"user"`
	}
	resp, body, set := s.gws[0].get(t, "/start_if_no_id.php", ck)
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("start_if_no_id: %d %s", resp.StatusCode, body)
	}
	if out.Before != "" || out.ID != id || out.User != "ana" || set != "" {
		t.Fatalf("session_id() before session_start() = %q, then id %q user %v (cookie %q); want \"\", then %s, ana, no new cookie", out.Before, out.ID, out.User, set, id)
	}
	if d := s.gws[1].dump(t, ck); d.ID != id || !strings.Contains(string(d.Data), `"seen":1`) {
		t.Fatalf("write of a session started by the idiom lost: %+v", d)
	}

	// A new visitor gets a new session the same way.
	resp, body, set = s.gws[0].get(t, "/start_if_no_id.php", "")
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &out) != nil || set == "" || set == "-" {
		t.Fatalf("new visitor: %d %s cookie %q", resp.StatusCode, body, set)
	}
	if d := s.gws[1].dump(t, set); d.ID != out.ID || string(d.Data) != `{"seen":1}` {
		t.Fatalf("new visitor's session: %+v, id %s", d, out.ID)
	}

	// An ID the script chooses is refused: never stored, never the cookie.
	chosen := strings.Repeat("a", 64)
	resp, body, set = s.gws[0].get(t, "/start_if_no_id.php?chosen=1", ck)
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &out) != nil || out.ID == chosen {
		t.Fatalf("chosen id: %d %s", resp.StatusCode, body)
	}
	if n, _ := s.redis.Exists(context.Background(), "sessiongate:{"+chosen+"}").Result(); n != 0 {
		t.Fatal("a session was stored under the ID the script chose")
	}
	if set != "" && set != "-" {
		if d := s.gws[1].dump(t, set); d.ID == chosen {
			t.Fatal("the client got a cookie for the ID the script chose")
		}
	}
}

// TestSessionChangesAtShutdownSaved: PHP's files handler writes the session
// after the script's shutdown functions and object destructors have run, so
// a cart object that saves itself in __destruct, an object holding a
// reference into $_SESSION, and a shutdown function registered during
// shutdown all get their changes saved. Behind the gateway they must too,
// whether the headers are still unsent at the end or left long before.
func TestSessionChangesAtShutdownSaved(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	for _, target := range []string{"/destruct.php", "/destruct.php?big=1"} {
		ck := s.newSession(t)
		for i := 0; i < 2; i++ {
			if resp, _, _ := s.gws[0].get(t, target, ck); resp.StatusCode != 200 {
				t.Fatalf("%s: %d", target, resp.StatusCode)
			}
		}
		d := s.gws[1].dump(t, ck)
		for _, want := range []string{`"cart":["apple"]`, `"visits":2`, `"nested":2`, `"user":"ana"`} {
			if !strings.Contains(string(d.Data), want) {
				t.Errorf("%s twice: session %s lacks %s", target, d.Data, want)
			}
		}
	}
	// A destructor that changes the session through a reference to the
	// whole $_SESSION it took after session_start().
	ck := s.newSession(t)
	for i := 0; i < 2; i++ {
		if resp, _, _ := s.gws[0].get(t, "/whole_ref.php", ck); resp.StatusCode != 200 {
			t.Fatalf("whole_ref.php: %d", resp.StatusCode)
		}
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"bag_visits":2`) {
		t.Errorf("whole_ref.php twice: session %s lacks \"bag_visits\":2", d.Data)
	}
}

// TestSessionCookieResponseIsPrivate: a page that starts a session while it
// asks for shared caching (PHP's "public" cache limiter, and the CDNs' own
// CDN-Cache-Control, Cloudflare-CDN-Cache-Control and Surrogate-Control)
// goes out private and without the CDNs' fields: a CDN that stored it
// would give its session cookie to every visitor. The page's own max-age
// for the browser stays; a response that sets no cookie keeps what the app
// said.
func TestSessionCookieResponseIsPrivate(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	resp, body, ck := s.gws[0].get(t, "/public_cache.php", "")
	if resp.StatusCode != 200 || body != "ok" || ck == "" || ck == "-" {
		t.Fatalf("new session: %d %q cookie %q", resp.StatusCode, body, ck)
	}
	if cc := resp.Header.Values("Cache-Control"); len(cc) != 1 || cc[0] != "private, max-age=10800" {
		t.Fatalf("Cache-Control of the response that sets the session cookie: %q", cc)
	}
	cdnFields := []string{"CDN-Cache-Control", "Cloudflare-CDN-Cache-Control", "Surrogate-Control"}
	for _, name := range cdnFields {
		if v := resp.Header.Values(name); len(v) != 0 {
			t.Errorf("the response that sets the session cookie carries %s: %q (the CDN it names would store it)", name, v)
		}
	}
	resp, _, again := s.gws[0].get(t, "/public_cache.php", ck)
	if again != "" {
		t.Fatalf("a resumed session's cookie was sent again: %q", again)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=10800" {
		t.Fatalf("Cache-Control of a page that sets no cookie: %q, want the app's", cc)
	}
	for _, name := range cdnFields {
		if v := resp.Header.Get(name); v != "max-age=600" {
			t.Errorf("%s of a page that sets no cookie: %q, want the app's", name, v)
		}
	}
}

// TestSessionTooDeepWriteIs500: PHP data nested deeper than the gateway
// converts (64 levels, the session itself being one) is refused. That is
// the script's data, not a passing failure: 500 without Retry-After, where
// it was a 503 "retry" that could never succeed; logged, and the session
// keeps what it had.
func TestSessionTooDeepWriteIs500(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	if resp, body, _ := s.gws[0].get(t, "/deep.php?levels=10", ck); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("10 levels: %d %q", resp.StatusCode, body)
	}
	resp, body, set := s.gws[0].get(t, "/deep.php?levels=70", ck)
	if resp.StatusCode != 500 || resp.Header.Get("Retry-After") != "" || set != "" || !strings.Contains(body, "session data could not be saved") {
		t.Fatalf("70 levels: %d %q Retry-After %q cookie %q, want 500 without Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"), set)
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"user":"ana"`) || strings.Count(string(d.Data), "[") != 10 {
		t.Errorf("session after the refused write: %s", d.Data)
	}
	if !strings.Contains(s.gws[0].Logs.String(), "session change from PHP not saved") {
		t.Errorf("refused write not logged:\n%s", s.gws[0].Logs.String())
	}
}

// TestSessionRegenerateWithRefusedDataKeepsTheOldSession: a login that
// moves the session to a new ID (session_regenerate_id(true)) with data the
// gateway refuses (nested deeper than 64) fails with 500, and must fail
// whole: the old session stays as it was under the browser's cookie, where
// the old ID's retirement had already thrown it away (the browser, keeping
// the old cookie, was logged out and lost its data).
func TestSessionRegenerateWithRefusedDataKeepsTheOldSession(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"strict", "merge"} {
		t.Run(mode, func(t *testing.T) {
			s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=" + mode}})
			ck := s.newSession(t)
			resp, _, set := s.gws[0].get(t, "/deep.php?levels=70&regen=1", ck)
			if resp.StatusCode != 500 || set != "" {
				t.Fatalf("refused regeneration: %d, cookie %q; want 500 and no cookie", resp.StatusCode, set)
			}
			if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"user":"ana"`) {
				t.Errorf("the old session after the refused regeneration: %q, want it as it was", d.Data)
			}
			if resp, body, _ := s.gws[1].get(t, "/get.php", ck); resp.StatusCode != 200 || !strings.Contains(body, "ana") {
				t.Errorf("the old cookie after the refused regeneration: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestSessionScriptPicksUnsupportedSerializeHandler: README, Sessions:
// a script that switches session.serialize_handler to a handler that
// cannot read the shared session (igbinary, which Debian's php8.2-fpm
// loads) gets a failing session_start() and a log line saying why, and
// nothing of the session is lost, neither by that request nor by PHP
// destroying the session it could not decode.
func TestSessionScriptPicksUnsupportedSerializeHandler(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	resp, body, set := s.gws[0].get(t, "/handler_php.php?h=igbinary&k=cart&v=1", ck)
	if strings.Contains(body, "ini_set") || !strings.Contains(body, "session_start failed") {
		t.Fatalf("igbinary: %d %q, want session_start() to fail", resp.StatusCode, body)
	}
	if set != "" {
		t.Errorf("igbinary: the response set the session cookie to %q", set)
	}
	if logs := s.gws[0].Logs.String(); !strings.Contains(logs, "session.serialize_handler=igbinary cannot read the shared session") {
		t.Errorf("no log line naming the handler:\n%s", logs)
	}
	if d := s.gws[1].dump(t, ck); string(d.Data) != `{"user":"ana"}` {
		t.Errorf("session after the igbinary script: %s, want it as it was", d.Data)
	}
}

// TestSessionRegenerateAfterOutputKeepsTheID: README, Sessions ("PHP's
// cookie rules still apply"): a session_regenerate_id(true) after the
// page's output started fails as behind nginx, the session keeps its ID
// and the page's write, and no cookie changes; done before the first
// output, it sends the new cookie and retires the old ID.
func TestSessionRegenerateAfterOutputKeepsTheID(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	id := s.gws[1].dump(t, ck).ID
	resp, body, set := s.gws[0].get(t, "/regen_after_output.php", ck)
	if resp.StatusCode != 200 || !strings.HasSuffix(body, "\nrefused "+id) || set != "" {
		t.Fatalf("regeneration after output: %d %q, cookie %q; want it refused, the ID %s kept", resp.StatusCode, body[max(0, len(body)-90):], set, id)
	}
	if d := s.gws[1].dump(t, ck); d.ID != id || !strings.Contains(string(d.Data), `"login":"ana"`) {
		t.Fatalf("after the refused regeneration: id %s data %s", d.ID, d.Data)
	}
	resp, body, set = s.gws[0].get(t, "/regen_after_output.php?early=1", ck)
	if resp.StatusCode != 200 || !strings.Contains(body, "\nregenerated ") || set == "" || set == "-" || set == ck {
		t.Fatalf("regeneration before output: %d, cookie %q", resp.StatusCode, set)
	}
	if d := s.gws[1].dump(t, set); d.ID == id || !strings.HasSuffix(body, "\nregenerated "+d.ID) || !strings.Contains(string(d.Data), `"login":"ana"`) {
		t.Fatalf("after the regeneration: id %s data %s (old %s)", d.ID, d.Data, id)
	}
	assertRetired(t, s.redis, id)
}

// TestSessionMessageCutByKilledWorkerIsReported: a worker killed while it
// sent a session message after its output began aborts the response, and
// the gateway says the change was not saved, as it does when such a
// message is cut and the response ends. With the response aborted (the
// proxy panics with http.ErrAbortHandler) the bridge's end never ran, and
// nothing told the operator that PHP's change was lost.
func TestSessionMessageCutByKilledWorkerIsReported(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	res, err := sessionClient.Do(s.gws[0].request("GET", "/killed_mid_message.php", ""))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil {
		t.Fatalf("the killed worker's response ended cleanly: %d %q", res.StatusCode, body)
	}
	if !poll(3*time.Second, func() bool {
		return strings.Contains(s.gws[0].Logs.String(), "PHP session message cut short; change not saved")
	}) {
		t.Errorf("the session message cut with the response is not reported:\n%s", s.gws[0].Logs.String())
	}
}

package integration

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// dropSessionLock deletes the one session lock in s's Redis, as a failover
// to a replica that had not got it can lose it: a live request renews its
// lease, so waiting the lease out no longer takes a lock from it.
func dropSessionLock(t *testing.T, s *sessionStack) {
	t.Helper()
	var locks []string
	eventually(t, 10*time.Second, "a session lock in Redis", func() bool {
		var err error
		locks, err = s.redis.Keys(context.Background(), "*:lock").Result()
		return err == nil && len(locks) == 1
	})
	if err := s.redis.Del(context.Background(), locks[0]).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestSessionLeaseRunOutReadOnlyIsNotRefused: a page that keeps the session
// open, changes nothing (PHP sends a lazy-write touch) and loses its lock
// meanwhile lost nothing: it gets its page, not "session could not be
// saved" (as a read_and_close page already did).
func TestSessionLeaseRunOutReadOnlyIsNotRefused(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK_LEASE=1s"}})
	ck := s.newSession(t)
	page := make(chan string, 1)
	go func() {
		resp, body, _ := s.gws[0].get(t, "/sleep_read.php?ms=2500", ck)
		page <- strconv.Itoa(resp.StatusCode) + " " + body
	}()
	dropSessionLock(t, s)
	if got := <-page; got != "200 read ana" {
		t.Fatalf("read-only page that lost its lock: %q", got)
	}
}

// TestSessionLeaseRunOutWriteIsRefusedNotLost: a request that loses its
// lock while another request of the session takes it must not overwrite
// that request's change, and must not pretend its own was saved: it gets
// 503, the other's write stays.
func TestSessionLeaseRunOutWriteIsRefusedNotLost(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK_LEASE=1s"}})
	ck := s.newSession(t)
	slow := make(chan int, 1)
	started, q := markFile(t)
	go func() {
		resp, _, _ := s.gws[0].get(t, "/hold.php?ms=3000&started="+q, ck)
		slow <- resp.StatusCode
	}()
	waitForFile(t, started, "hold.php")
	dropSessionLock(t, s)
	// Takes the lock the slow request lost, runs and writes.
	if resp, body, _ := s.gws[1].get(t, "/counter.php", ck); resp.StatusCode != 200 || body != "1" {
		t.Fatalf("second request: %d %q", resp.StatusCode, body)
	}
	if code := <-slow; code != 503 {
		t.Errorf("the request whose lease was taken over got %d, want 503", code)
	}
	d := s.gws[1].dump(t, ck)
	if !strings.Contains(string(d.Data), `"n":1`) || strings.Contains(string(d.Data), `"held"`) {
		t.Fatalf("session after the take-over: %s", d.Data)
	}
}

// TestSessionRedisStallDuringSaveDoesNotStrandLock: Redis stops answering
// (CLIENT PAUSE, longer than SESSIONGATE_REDIS_TIMEOUT) while a request
// saves: that request gets 503, and once Redis answers again the session's
// lock is free; the next request does not wait for the lease (60 s, more
// than its 20 s lock timeout) and then fail busy.
func TestSessionRedisStallDuringSaveDoesNotStrandLock(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_REDIS_TIMEOUT=300ms", "SESSIONGATE_SESSION_LOCK_LEASE=60s"}})
	ck := s.newSession(t)
	id := s.gws[0].dump(t, ck).ID
	held := make(chan int, 1)
	go func() {
		resp, _, _ := s.gws[0].get(t, "/hold.php?ms=1500", ck)
		held <- resp.StatusCode
	}()
	// PHP runs (and sleeps 1.5 s) once the lock is taken: pause Redis
	// then, past the end of the request.
	eventually(t, 10*time.Second, "hold.php to take the session's lock", func() bool {
		n, _ := s.red.Do("EXISTS", "sessiongate:{"+id+"}:lock")
		return n == "1"
	})
	if _, err := s.red.Do("CLIENT", "PAUSE", "4000", "ALL"); err != nil {
		t.Fatal(err)
	}
	if code := <-held; code != 503 {
		t.Fatalf("save during the stall: %d, want 503", code)
	}
	if _, err := s.red.Do("PING"); err != nil { // waits out the pause
		t.Fatal(err)
	}
	if resp, body, _ := s.gws[1].get(t, "/counter.php", ck); resp.StatusCode != 200 {
		t.Fatalf("next request after the stall: %d %q", resp.StatusCode, body)
	}
}

// TestSessionLockReleasedOnEveryExitPath: however a PHP request ends (fatal
// error, exit(), max_execution_time, the gateway's SESSIONGATE_PHP_TIMEOUT,
// the client hanging up, the worker killed), the session's lock is released
// with it: the next request of the session, on the other gateway, runs at
// once instead of waiting for the 60 s lease (its lock timeout is 15 s).
func TestSessionLockReleasedOnEveryExitPath(t *testing.T) {
	t.Parallel()
	// PHP_TIMEOUT is well above maxexec.php's 1 s limit, which counts CPU
	// time: with other tests running, that second took over 2 s.
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK_TIMEOUT=15s", "SESSIONGATE_SESSION_LOCK_LEASE=60s", "SESSIONGATE_PHP_TIMEOUT=5s"}})
	ck := s.newSession(t)
	n := 0
	next := func(what string) {
		t.Helper()
		n++
		if resp, body, _ := s.gws[1].get(t, "/counter.php", ck); resp.StatusCode != 200 || body != strconv.Itoa(n) {
			t.Fatalf("after %s: next request %d %q, want 200 %d; php-fpm's log:\n%s", what, resp.StatusCode, body, n, s.fpm.Log())
		}
	}
	for target, want := range map[string]int{"/fatal.php": 500, "/exit.php": 200, "/maxexec.php": 500, "/hold.php?ms=8000": 504} {
		if resp, _, _ := s.gws[0].get(t, target, ck); resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", target, resp.StatusCode, want)
		}
		next(target)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.gws[0].URL+"/hold.php?ms=3000", nil)
	req.Header.Set("Cookie", "sessionid="+ck)
	if resp, err := sessionClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("client hang-up: got %d", resp.StatusCode)
	}
	cancel()
	next("the client hanging up")

	// The workers are killed once, while hold.php sleeps in one of them and
	// the others wait in accept(): a worker killed while it updates php-fpm
	// 8.2's scoreboard (as it starts to wait for a connection, reads a
	// request and ends one) leaves the scoreboard's spinlock taken, and the
	// master and every new worker then spin on it for good (docs/design.md,
	// "php-fpm 8.2 freezes when a worker dies in its scoreboard lock"). This
	// test used to kill in a loop until the request was answered, new
	// workers included, and twice (in full runs of sessions 36 and 40) the
	// next request got a 504: no answer from a pool of fresh workers, as
	// such a freeze gives.
	killed := make(chan int, 1)
	started, q := markFile(t)
	go func() {
		resp, _, _ := s.gws[0].get(t, "/hold.php?ms=3000&started="+q, ck)
		killed <- resp.StatusCode
	}()
	waitForFile(t, started, "hold.php")
	dead := s.fpm.KillWorkers()
	if code := <-killed; code != 502 {
		t.Errorf("killed worker: %d, want 502", code)
	}
	s.fpm.WaitWorkers(dead, 10*time.Second)
	next("the worker being killed")
}

// TestSessionFatalErrorSavesWhatPHPSaves: a page that changed its session
// and then died of memory_limit (before or after its output left) keeps
// the change exactly when PHP's own files handler keeps it, which PHP 8.2
// does: it writes the session at the end of a request that ended in a
// fatal error, as at any other end. The gateway neither drops the change
// nor saves more than PHP would.
func TestSessionFatalErrorSavesWhatPHPSaves(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	dir := harness.PHPTempDir(t)
	for _, q := range []string{"", "&late=1"} {
		ck := s.newSession(t)
		for i := 0; i < 2; i++ {
			s.gws[0].get(t, "/fatal_memory.php?x=1"+q, ck)
			s.gws[0].get(t, "/fatal_memory.php?dir="+url.QueryEscape(dir)+q, "")
		}
		_, files, _ := s.gws[0].get(t, "/fatal_memory.php?read=1&dir="+url.QueryEscape(dir)+q, "")
		_, gateway, _ := s.gws[1].get(t, "/fatal_memory.php?read=1", ck)
		if _, err := strconv.Atoi(files); err != nil {
			t.Fatalf("fatal_memory.php%s: PHP's files handler's count: %q", q, files)
		}
		t.Logf("fatal_memory.php%s twice: counted %s", q, files)
		if gateway != files {
			t.Errorf("fatal_memory.php%s twice: the gateway's session counts %q, PHP's files handler %q", q, gateway, files)
		}
	}
}

// TestSessionFlushDBLogsOutAndRefusesRunningWrites: README, "Sharing a
// Redis": a FLUSHDB logs every user out, and a request running at that
// moment loses its lock and has its write refused (503), rather than
// bringing back a session the flush ended.
func TestSessionFlushDBLogsOutAndRefusesRunningWrites(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	idle, running := s.newSession(t), s.newSession(t)
	ids := map[string]string{"idle": s.gws[1].dump(t, idle).ID, "running": s.gws[1].dump(t, running).ID}
	held := make(chan int, 1)
	started, q := markFile(t)
	go func() {
		resp, _, _ := s.gws[0].get(t, "/hold.php?ms=1500&started="+q, running)
		held <- resp.StatusCode
	}()
	waitForFile(t, started, "hold.php")
	if _, err := s.red.Do("FLUSHDB"); err != nil {
		t.Fatal(err)
	}
	if code := <-held; code != 503 {
		t.Errorf("the write of the request running at the FLUSHDB got %d, want 503", code)
	}
	for name, ck := range map[string]string{"idle": idle, "running": running} {
		// get.php's session_start() starts a new, empty session.
		if d := s.gws[1].dump(t, ck); d.ID == ids[name] || string(d.Data) != "[]" {
			t.Errorf("%s session after FLUSHDB: id %q data %s, want a new empty one", name, d.ID, d.Data)
		}
		if n, err := s.red.Do("EXISTS", "sessiongate:{"+ids[name]+"}"); err != nil || n != "0" {
			t.Errorf("%s session's key after FLUSHDB: EXISTS %q %v, want 0", name, n, err)
		}
	}
}

// TestSessionLockLostToRedisIsAStoreError: a failover to a replica that
// never got a session's lock (dropSessionLock stands in for it) makes the
// write of the request holding it a 503. Redis lost data the gateway held:
// sessiongate_session_store_errors_total ("failed Redis operations") must
// count it, or an alert on Redis errors stays silent through a failover
// that refuses writes, and the 503's log line must say the lock vanished
// before its lease ended, not only "lease lost" (which reads as a request
// that outran its lease). A lease that really ran out is no store error
// (TestLeaseLostIsNotAStoreError).
func TestSessionLockLostToRedisIsAStoreError(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	held := make(chan int, 1)
	started, q := markFile(t)
	go func() {
		resp, _, _ := s.gws[0].get(t, "/hold.php?ms=1000&started="+q, ck)
		held <- resp.StatusCode
	}()
	waitForFile(t, started, "hold.php")
	dropSessionLock(t, s)
	if code := <-held; code != 503 {
		t.Fatalf("the write of the request whose lock Redis lost got %d, want 503", code)
	}
	m := metricstest.Scrape(t, s.gws[0].Admin+"/metrics")
	if got := m["sessiongate_session_store_errors_total"]; got != 1 {
		t.Errorf("sessiongate_session_store_errors_total = %v after a 503 for a lock Redis lost, want 1", got)
	}
	if got := m[`sessiongate_session_events_total{event="store_error"}`]; got != 1 {
		t.Errorf(`session_events_total{event="store_error"} = %v, want 1`, got)
	}
	if line, ok := logLine(s.gws[0].Logs, `"status":503`); !ok {
		t.Errorf("no 503 logged")
	} else if !strings.Contains(line, "before its lease ended") {
		t.Errorf("the 503 for a lock Redis lost logged as %s; want it to say the lock vanished before its lease ended", line)
	}
}

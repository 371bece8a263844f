package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

// drainSessionEnv configures a gateway binary for the session pages of
// root: php-fpm, the Redis store and the prepend.
func drainSessionEnv(t *testing.T, fpm *harness.PHPFPM, root string, red *harness.Redis) []string {
	return []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + writePrepend(t),
	}
}

// startSessionBinary starts php-fpm, redis-server and the gateway binary
// serving the session pages (drainSessionEnv, then env), and returns the
// gateway with a client of its Redis.
func startSessionBinary(t *testing.T, env ...string) (*gwProc, *redis.Client) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "redis-server")
	root := sessionFixtureRoot(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	red := harness.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: red.Addr})
	t.Cleanup(func() { rc.Close() })
	return startBinary(t, buildGateway(t), append(drainSessionEnv(t, fpm, root, red), env...)), rc
}

// holdSession sends a request of a new session that holds its lock for ms
// milliseconds (hold.php), and returns once PHP holds it: the session's
// cookie value, and a channel that gets the request's "status body" (or
// its error) when it ends.
func holdSession(t *testing.T, p *gwProc, ms int) (string, <-chan string) {
	t.Helper()
	ck := (&sessionStack{gws: []*sessionGW{{URL: p.URL}}}).newSession(t)
	started, q := markFile(t)
	status := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/hold.php?ms=%d&started=%s", p.URL, ms, q), nil)
		req.Header.Set("Cookie", "sessionid="+ck)
		res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			status <- err.Error()
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		status <- fmt.Sprintf("%d %s", res.StatusCode, body)
	}()
	waitForFile(t, started, "hold.php")
	return ck, status
}

// TestDrainSurvivesLostLogReader: the gateway's log goes to a pipe whose
// reader stops with the same Ctrl-C that stops the gateway (`gateway 2>&1 |
// tee gateway.log`: the terminal interrupts both, tee exits at once). The
// gateway's next log line ("shutting down") then meets a pipe without a
// reader. It must still drain: the request in flight, which holds its
// session's lock in Redis, gets its page, the session keeps its change,
// the lock is released and the exit status says the stop was clean. Go's
// default for a broken pipe on stderr is to die of SIGPIPE, which cut the
// request and left the lock to block the session until its lease ran out.
func TestDrainSurvivesLostLogReader(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "redis-server")
	root := sessionFixtureRoot(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	red := harness.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: red.Addr})
	defer rc.Close()
	port, admin := harness.FreePort(t), harness.FreePort(t)
	gwURL := fmt.Sprintf("http://127.0.0.1:%d", port)

	cmd := exec.Command(buildGateway(t))
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		fmt.Sprintf("SESSIONGATE_LISTEN=127.0.0.1:%d", port),
		fmt.Sprintf("SESSIONGATE_ADMIN_LISTEN=127.0.0.1:%d", admin),
		"SESSIONGATE_SHUTDOWN_TIMEOUT=20s",
	}, drainSessionEnv(t, fpm, root, red)...)
	// The log reader: this test, until it "exits".
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var logs testlog.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&logs, pr); close(copied) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
		failOnRace(t, logs.String())
		if t.Failed() {
			t.Logf("gateway output (until its reader went away):\n%s", logs.String())
		}
	}()
	eventually(t, 10*time.Second, "the gateway to answer /healthz", func() bool {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", admin))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})

	g := &sessionGW{URL: gwURL}
	ck := (&sessionStack{gws: []*sessionGW{g}}).newSession(t)
	started, q := markFile(t)
	type result struct {
		code int
		body string
		err  error
	}
	held := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", gwURL+"/hold.php?ms=1500&started="+q, nil)
		req.Header.Set("Cookie", "sessionid="+ck)
		res, err := sessionClient.Do(req)
		if err != nil {
			held <- result{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		held <- result{res.StatusCode, string(b), err}
	}()
	waitForFile(t, started, "hold.php")

	// Ctrl-C: the log reader goes first, then the gateway is told to stop.
	pr.Close()
	<-copied
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if r := <-held; r.err != nil || r.code != 200 || r.body != "held" {
		t.Errorf("request in flight at the stop: %d %q %v", r.code, r.body, r.err)
	}
	select {
	case err := <-done:
		done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Errorf("gateway ended with %v, want exit status 0 after a clean drain", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway still running 30 s after SIGINT")
	}
	keys, err := rc.Keys(context.Background(), "*:lock").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		t.Errorf("session lock left in Redis after the stop: %v", keys)
	}
	vals, err := rc.Keys(context.Background(), "*").Result()
	if err != nil || len(vals) != 1 {
		t.Fatalf("Redis keys after the stop: %v %v", vals, err)
	}
	v, _ := rc.HGet(context.Background(), vals[0], "d").Result()
	if !strings.Contains(v, `"held":1`) {
		t.Errorf("the in-flight request's session change was not saved: %s", v)
	}
}

// TestStopDuringStartIsClean: SIGTERM while the gateway still waits at
// start (here for a Redis that accepts and never answers) is a stop asked
// for, not a failed start: the gateway exits with status 0 once the Redis
// command under way gives up (systemd's stop then leaves the unit
// inactive, not failed), and logs no "cannot start" error.
func TestStopDuringStartIsClean(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	redis := startSilentRedis(t)
	root := gwSite(t)
	cmd := exec.Command(buildGateway(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SESSIONGATE_LISTEN=127.0.0.1:0",
		"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=redis://" + redis.addr, "SESSIONGATE_REDIS_TIMEOUT=1s"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr testlog.Buffer
	redis.startWaiting(t, cmd, &stderr)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("gateway stopped during its start ended with %v, want exit status 0; log:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("gateway still running 10 s after SIGTERM at start; log:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "cannot start") {
		t.Errorf("a stop during the start is logged as a failed start:\n%s", stderr.String())
	}
	failOnRace(t, stderr.String())
}

// TestSecondSignalCutsDrainReleasingLocks: a second SIGTERM (or Ctrl-C)
// during the drain means "stop now". The gateway cuts the requests still
// running at once instead of waiting out SESSIONGATE_SHUTDOWN_TIMEOUT, but,
// as at the deadline, their handlers release the session locks they hold
// before the process exits (status 1: requests were cut). Dying of the
// signal left the lock in Redis, and every request of that session, on
// every gateway, waited for it until its lease (60 s) ran out.
func TestSecondSignalCutsDrainReleasingLocks(t *testing.T) {
	t.Parallel()
	p, rc := startSessionBinary(t, "SESSIONGATE_SHUTDOWN_TIMEOUT=60s")
	holdSession(t, p, 20000)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, p.stderr, "shutting down: draining")
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("gateway still draining 15 s after a second signal")
	}
	t.Logf("exited %v after the second signal", time.Since(start).Round(time.Millisecond))
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("gateway ended with %v after a second signal, want exit status 1 (requests cut)", p.err)
	}
	keys, err := rc.Keys(context.Background(), "*:lock").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		t.Errorf("session lock left in Redis: %v", keys)
	}
	if line, ok := logLine(p.stderr, `"path":"/hold.php"`); !ok || !strings.Contains(line, `"status":503`) || !strings.Contains(line, "second SIGTERM, SIGINT or SIGQUIT") {
		t.Errorf("access log of the request cut by the second signal: %q", line)
	}
}

// TestThirdSignalKills: README ("nginx -s quit" row) says a second stop
// signal cuts the requests in flight and a third kills. Here the cut
// request's handler is stuck releasing its lock (Redis paused, within
// SESSIONGATE_REDIS_TIMEOUT): the third signal ends the process at once,
// by the signal, without waiting for Redis. A third SIGQUIT too, without
// Go's goroutine dump, which its default action would print (README: SIGQUIT
// dumps no goroutines).
func TestThirdSignalKills(t *testing.T) {
	t.Parallel()
	for _, third := range []syscall.Signal{syscall.SIGTERM, syscall.SIGQUIT} {
		t.Run(third.String(), func(t *testing.T) {
			t.Parallel()
			thirdSignalKills(t, third)
		})
	}
}

func thirdSignalKills(t *testing.T, third syscall.Signal) {
	p, rc := startSessionBinary(t, "SESSIONGATE_REDIS_TIMEOUT=10s", "SESSIONGATE_SHUTDOWN_TIMEOUT=60s")
	holdSession(t, p, 20000)
	const pause = 8 * time.Second
	if err := rc.Do(context.Background(), "CLIENT", "PAUSE", pause.Milliseconds()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, p.stderr, "shutting down: draining")
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, p.stderr, "second signal")
	select {
	case <-p.done:
		t.Fatalf("gateway exited (%v) after the second signal, with Redis paused: nothing left for a third to do", p.err)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(third); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(pause / 2):
		t.Fatal("gateway still running after a third signal")
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Errorf("gateway ended with %v %v after a third signal, want killed by it", p.err, time.Since(start))
	}
	if strings.Contains(p.stderr.String(), "goroutine ") {
		t.Errorf("a third %v dumped goroutines:\n%.2000s", third, p.stderr.String())
	}
}

// TestQuitSignalDrains: SIGQUIT stops the gateway as SIGTERM does,
// draining: it is how nginx and php-fpm are stopped gracefully (nginx -s
// quit, the nginx image's STOPSIGNAL), so a deployment moved from nginx
// sends it. Go's default for SIGQUIT dumped every goroutine and exited at
// once with status 2, cutting the request in flight and leaving its
// session lock in Redis until its lease ran out.
func TestQuitSignalDrains(t *testing.T) {
	t.Parallel()
	p, rc := startSessionBinary(t)
	_, status := holdSession(t, p, 1500)
	if err := p.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("gateway still running 20 s after SIGQUIT")
	}
	if got := <-status; got != "200 held" {
		t.Errorf("request in flight at SIGQUIT got %q, want 200 held", got)
	}
	if p.err != nil {
		t.Errorf("gateway ended with %v after SIGQUIT, want a clean stop (0); log:\n%s", p.err, p.stderr.String())
	}
	keys, err := rc.Keys(context.Background(), "*:lock").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		t.Errorf("session lock left in Redis: %v", keys)
	}
	if strings.Contains(p.stderr.String(), "goroutine ") {
		t.Errorf("SIGQUIT dumped goroutines:\n%s", p.stderr.String())
	}
}

// TestCutRequestReleasesLockWithSlowRedis: a request cut at shutdown
// releases its session lock with one Redis write bounded by
// SESSIONGATE_REDIS_TIMEOUT (up to 1m). The gateway gave those handlers a
// fixed 5 s before closing the store and exiting: with Redis answering
// within the timeout, but after 5 s (a failover, a fork for a snapshot), the
// gateway was gone first and the lock stayed in Redis, blocking the session
// on every gateway until its lease ran out. Redis is held here with CLIENT
// PAUSE for 7 s, within the 10 s timeout the test sets.
func TestCutRequestReleasesLockWithSlowRedis(t *testing.T) {
	t.Parallel()
	p, rc := startSessionBinary(t, "SESSIONGATE_REDIS_TIMEOUT=10s", "SESSIONGATE_SHUTDOWN_TIMEOUT=0")
	holdSession(t, p, 20000)
	const pause = 7 * time.Second
	if err := rc.Do(context.Background(), "CLIENT", "PAUSE", pause.Milliseconds()).Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("gateway still running 30 s after SIGTERM")
	}
	t.Logf("exited %v after the pause began", time.Since(paused).Round(time.Millisecond))
	// The pause over, whatever the gateway sent has run.
	time.Sleep(time.Until(paused.Add(pause + 500*time.Millisecond)))
	keys, err := rc.Keys(context.Background(), "*:lock").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		t.Errorf("session lock left in Redis: %v; log:\n%s", keys, p.stderr.String())
	}
}

// TestDrainAfterAnUnreadBodyIsPrompt: a client sends a POST whose declared
// body (20000 bytes) is over SESSIONGATE_MAX_BODY, reads its 413 and then
// sends nothing more. The gateway lingers for the rest of the body up to
// 5 s of silence, as nginx does, and then lets the connection go. net/http
// read what was left of such a body (up to 256 KiB) itself before closing,
// with the deadline moved a whole SESSIONGATE_READ_TIMEOUT ahead again:
// the connection stayed, and a SIGTERM then waited for it, though every
// request had been answered.
func TestDrainAfterAnUnreadBodyIsPrompt(t *testing.T) {
	t.Parallel()
	p, addr, _ := startPHPBinary(t, "SESSIONGATE_MAX_BODY=10k", "SESSIONGATE_READ_TIMEOUT=30s", "SESSIONGATE_SHUTDOWN_TIMEOUT=40s")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(c, "POST /index.php HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\nabc")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", res.StatusCode)
	}
	answered := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("gateway still running 20 s after SIGTERM with every request answered; log:\n%s", p.stderr.String())
	}
	if d := time.Since(answered); d > 10*time.Second || p.err != nil {
		t.Errorf("gateway stopped %v after the 413 (exit %v), want within the linger's 5 s of silence and clean", d.Round(100*time.Millisecond), p.err)
	}
}

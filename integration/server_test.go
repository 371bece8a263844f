package integration

// Gateway-level tests against a real php-fpm: the helpers shared by
// routing_test.go and security_test.go, and the server hygiene tests that
// run the real `gateway` binary.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/internal/testtls"
	"github.com/sessiongate/sessiongate/server"
)

// dumpPHP answers with $_SERVER as JSON plus the file that ran, so routing
// tests see exactly which script php-fpm executed and with which params.
const dumpPHP = `<?php
header('Content-Type: application/json');
$o = ['_file' => __FILE__];
foreach ($_SERVER as $k => $v) { if (is_string($v)) { $o[$k] = $v; } }
$o['_auto_start'] = ini_get('session.auto_start');
echo json_encode($o);
`

// gwFiles is the test site. "../outside" is a sibling of the root that
// symlinks point into; nothing there may ever be served.
var gwFiles = map[string]string{
	"index.php":                     dumpPHP,
	"info.php":                      dumpPHP,
	"dir/index.php":                 dumpPHP,
	"sub/app.php":                   dumpPHP,
	"docs/index.html":               "<h1>docs</h1>",
	"style.css":                     "body { color: red; }\n",
	"notes.txt":                     "<?php echo 'EXECUTED'; ?>",
	"uploads/x.jpg":                 "<?php echo 'EXECUTED'; ?>",
	"echo.php":                      `<?php echo 'len=' . strlen(file_get_contents('php://input'));`,
	"smuggled.php":                  `<?php touch(__DIR__ . '/smuggled.ran'); echo 'SMUGGLED';`,
	"flush.php":                     `<?php echo 'a'; flush(); sleep(2); echo 'b';`,
	"slow.php":                      `<?php touch(__DIR__ . '/slow.started'); sleep(2); echo 'slow done';`,
	"nobody.php":                    "<?php http_response_code((int)$_GET['code']); header('ETag: \"v1\"'); ?>\n\n",
	".env":                          "DB_PASSWORD=TOPSECRET",
	".git/config":                   "[remote] url = TOPSECRET",
	"sub/.htaccess":                 "TOPSECRET",
	".well-known/acme-challenge/t1": "acme-token",
	"../outside/secret.txt":         "TOPSECRET",
	"../outside/evil.php":           `<?php echo 'EXECUTED';`,
}

// writeTree writes files (path relative to root: contents) under root,
// making directories as needed.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// gwSite writes gwFiles (plus a large file and escaping symlinks) and
// returns the root.
func gwSite(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	writeTree(t, root, gwFiles)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	if err := os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"out-dir":      filepath.Join(base, "outside"),
		"out-file.txt": "../outside/secret.txt",
		"out-evil.php": filepath.Join(base, "outside", "evil.php"),
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// gw is a gateway running in-process (server.Handler on httptest) in front
// of a real php-fpm.
type gw struct {
	URL  string
	Addr string
	Root string
	FPM  *harness.PHPFPM
	Logs *testlog.Buffer
}

// startGW starts php-fpm on a fresh site and an in-process gateway in front
// of it. mod adjusts the configuration loaded from the environment.
func startGW(t *testing.T, mod func(*config.Config)) *gw {
	t.Helper()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	return startGWOn(t, fpm, root, mod)
}

func startGWOn(t *testing.T, fpm *harness.PHPFPM, root string, mod func(*config.Config)) *gw {
	t.Helper()
	// The PHP front server alone: the session bridge has its own tests.
	cfg, err := config.Load([]string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_PHP_TIMEOUT=10s", "SESSIONGATE_SESSIONS=off"})
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(cfg)
	}
	logs := &testlog.Buffer{}
	s, err := server.New(cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Config.ReadHeaderTimeout = 5 * time.Second
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		s.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return &gw{URL: ts.URL, Addr: ts.Listener.Addr().String(), Root: root, FPM: fpm, Logs: logs}
}

// get sends a GET with an exact request target (no client-side cleaning).
func (g *gw) get(t *testing.T, target string, hdr ...string) (*http.Response, string) {
	t.Helper()
	return getVia(t, &http.Client{Timeout: 20 * time.Second}, g.URL, target, hdr...)
}

// getVia sends GET target to base through client, the target verbatim and
// hdr (name, value pairs) not canonicalized, redirects not followed, and
// returns the response and its body.
func getVia(t *testing.T, client *http.Client, base, target string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", base, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = target // sent verbatim as the request target
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header[hdr[i]] = append(req.Header[hdr[i]], hdr[i+1]) // not canonicalized
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", target, err)
	}
	return res, string(b)
}

// php decodes a dumpPHP answer.
func phpDump(t *testing.T, target, body string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%s: not a PHP dump: %v: %q", target, err, body)
	}
	return m
}

// raw sends bytes on a fresh connection and returns everything the server
// sends until it closes the connection (or 5 s pass).
func raw(t *testing.T, addr, request string) (string, bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	return string(b), !timedOut
}

// statusOf returns the status code of the first response in raw bytes.
func statusOf(resp string) int {
	var code int
	fmt.Sscanf(resp, "HTTP/1.1 %d", &code)
	return code
}

// ---- the real binary ----

// gatewayBuild is cmd/gateway compiled once per test binary: each link
// costs a second or more of CPU, which tests running in parallel share.
var gatewayBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// raceGatewayEnv set to 1 builds the gateway binary with -race (see
// buildGateway). The in-process gateway (startGW) is raced by go test
// -race; the binary is its own program and needs its own flag.
const raceGatewayEnv = "INTEGRATION_GATEWAY_RACE"

// raceGateway reports whether the binary is built with the race detector.
func raceGateway() bool { return os.Getenv(raceGatewayEnv) == "1" }

// failOnRace fails t when a race-built gateway wrote a race report in
// output: the detector only prints, and a gateway the test kills at its end
// never exits with the race detector's status 66.
func failOnRace(t *testing.T, output string) {
	t.Helper()
	if !raceGateway() {
		return
	}
	if i := strings.Index(output, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("the gateway binary reported a data race (%s=1):\n%s", raceGatewayEnv, output[i:])
	}
}

// buildGateway returns the path of the gateway binary, built on first use.
// Tests run it and never modify it. With INTEGRATION_GATEWAY_RACE=1 it is
// built with -race, and the tests that start it fail on a race report in
// its output (failOnRace).
func buildGateway(t *testing.T) string {
	t.Helper()
	b := &gatewayBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "sessiongate-integration-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "gateway")
		args := []string{"build", "-o", b.bin}
		if raceGateway() {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/sessiongate/sessiongate/cmd/gateway")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// removeGatewayBuild deletes the binary buildGateway made, if any.
func removeGatewayBuild() {
	if gatewayBuild.dir != "" {
		os.RemoveAll(gatewayBuild.dir)
	}
}

type gwProc struct {
	cmd    *exec.Cmd
	stderr *testlog.Buffer
	done   chan struct{}
	err    error
	URL    string
	Admin  string
}

// startPHPBinary runs the gateway binary without sessions in front of a
// real php-fpm on gwSite, with SESSIONGATE_MAX_HEADER_BYTES=8k and env
// added, and returns it, its address and the site's root.
func startPHPBinary(t *testing.T, env ...string) (gw *gwProc, addr, root string) {
	t.Helper()
	harness.Require(t, "php-fpm8.2")
	root = gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	gw = startBinary(t, buildGateway(t), append([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_MAX_HEADER_BYTES=8k",
	}, env...))
	return gw, strings.TrimPrefix(gw.URL, "http://"), root
}

// startBinary runs the gateway binary with env and waits for /healthz.
func startBinary(t *testing.T, bin string, env []string) *gwProc {
	t.Helper()
	return startOnFreePorts(t, func() *gwProc { return binaryOnFreePorts(t, bin, env) })
}

// binaryOnFreePorts prepares bin with env on a public and an admin port
// from harness.FreePort.
func binaryOnFreePorts(t *testing.T, bin string, env []string) *gwProc {
	port, admin := harness.FreePort(t), harness.FreePort(t)
	p := &gwProc{stderr: &testlog.Buffer{}, done: make(chan struct{}),
		URL: fmt.Sprintf("http://127.0.0.1:%d", port), Admin: fmt.Sprintf("http://127.0.0.1:%d", admin)}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append([]string{
		fmt.Sprintf("SESSIONGATE_LISTEN=127.0.0.1:%d", port),
		fmt.Sprintf("SESSIONGATE_ADMIN_LISTEN=127.0.0.1:%d", admin),
		"PATH=" + os.Getenv("PATH"),
	}, env...)
	return p
}

// startOnFreePorts starts the gateway newProc prepares on ports from
// harness.FreePort. Those may be taken before the gateway binds them
// (another process, or an outgoing connection given that ephemeral port):
// a gateway that exits saying so is prepared again, on new ports, up to
// three times, as the harness does for its servers.
func startOnFreePorts(t *testing.T, newProc func() *gwProc) *gwProc {
	t.Helper()
	p, err := tryOnFreePorts(t, newProc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tryOnFreePorts is startOnFreePorts returning the last attempt's
// failure, with the process that failed (its exit and output).
func tryOnFreePorts(t *testing.T, newProc func() *gwProc) (*gwProc, error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := newProc()
		err := p.tryStart(t)
		if err == nil || attempt == 3 || !errors.Is(err, errExitedAtStart) || !strings.Contains(p.stderr.String(), "address already in use") {
			return p, err
		}
		t.Logf("gateway start, attempt %d: a port picked for it was taken meanwhile; trying others", attempt)
	}
}

// errExitedAtStart: the gateway exited before it was healthy.
var errExitedAtStart = errors.New("gateway exited at start")

// start runs p.cmd and waits for /healthz on p.Admin.
func (p *gwProc) start(t *testing.T) {
	t.Helper()
	if err := p.tryStart(t); err != nil {
		t.Fatal(err)
	}
}

// tryStart runs p.cmd and waits for /healthz on p.Admin; t.Cleanup kills
// the process if it still runs.
func (p *gwProc) tryStart(t *testing.T) error {
	t.Helper()
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		failOnRace(t, p.stderr.String())
		if t.Failed() {
			t.Logf("gateway output:\n%s", p.stderr.String())
		}
	})
	// Each probe bounded: a port taken by some other listener meanwhile
	// (see startBinary) would hold a probe without a timeout for ever.
	probe := &http.Client{Timeout: 2 * time.Second}
	// A /healthz answer alone does not prove this process bound its
	// ports: another test's gateway may have taken the admin port picked
	// for this one and answer there while this one exits on "address
	// already in use". The gateway logs that it started once every
	// listener is bound, so the answer counts only after that line (unless
	// the test set a log level that drops it).
	startLogged := func() bool {
		return !logsInfo(p.cmd.Env) || strings.Contains(p.stderr.String(), "sessiongate started")
	}
	exited := false
	healthy := poll(10*time.Second, func() bool {
		res, err := probe.Get(p.Admin + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 && startLogged() {
				return true
			}
		}
		select {
		case <-p.done:
			exited = true // no point waiting longer
		default:
		}
		return exited
	})
	switch {
	case exited:
		return fmt.Errorf("%w: %v\n%s", errExitedAtStart, p.err, p.stderr.String())
	case !healthy:
		return fmt.Errorf("gateway not healthy after 10s:\n%s", p.stderr.String())
	}
	return nil
}

// logsInfo reports whether a gateway run with env logs at info level,
// where it says that it started.
func logsInfo(env []string) bool {
	level := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "SESSIONGATE_LOG_LEVEL="); ok {
			level = strings.ToLower(strings.TrimSpace(v))
		}
	}
	return level == "" || level == "info" || level == "debug"
}

// statusClient bounds each getStatus: a gateway that never answers fails
// the test instead of hanging it.
var statusClient = &http.Client{Timeout: 10 * time.Second}

// getStatus is one GET: the status and body.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := statusClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitForFile returns once path exists: a script (what) has started and
// touched it. It fails the test after 30 s.
func waitForFile(t testing.TB, path, what string) {
	t.Helper()
	eventually(t, 30*time.Second, what+" to start (to write "+path+")", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

// waitForLog returns the first line of log holding substr, failing the test
// after 10 s: the gateway logs when it acted on a signal, which may be after
// kill() returned.
func waitForLog(t testing.TB, log *testlog.Buffer, substr string) string {
	t.Helper()
	line, ok := logLine(log, substr)
	if !ok {
		t.Fatalf("no %q in the log after 10 s:\n%s", substr, log.String())
	}
	return line
}

// logLine returns the first line of log holding substr, waiting up to 10 s
// for it. A gateway binary's output reaches its gwProc.stderr through a
// pipe and a copying goroutine of the test binary: a line the gateway wrote
// before it answered a request may still be on its way when the answer is
// in.
func logLine(log *testlog.Buffer, substr string) (string, bool) {
	var line string
	_, ok := textWhen(log.String, func(text string) bool {
		for l := range strings.SplitSeq(text, "\n") {
			if strings.Contains(l, substr) {
				line = l
				return true
			}
		}
		return false
	})
	return line, ok
}

// textWhen reads a log that another process or goroutine writes (read)
// until cond holds for it, for up to 10 s, and returns the last reading.
func textWhen(read func() string, cond func(text string) bool) (string, bool) {
	var text string
	ok := poll(10*time.Second, func() bool {
		text = read()
		return cond(text)
	})
	return text, ok
}

// markFile returns a fresh path for a fixture to create when it reaches a
// point (hold.php's ?started=: it holds the session), and the same path
// escaped for a query string. waitForFile then orders the test after that
// point, where a sleep would only hope PHP got there in time.
func markFile(t testing.TB) (path, query string) {
	t.Helper()
	path = filepath.Join(harness.PHPTempDir(t), "mark")
	return path, url.QueryEscape(path)
}

// silentRedis accepts connections like a Redis server and never answers:
// a gateway starting against it waits there (its start-up probe) until
// SESSIONGATE_REDIS_TIMEOUT.
type silentRedis struct {
	addr     string
	accepted chan net.Conn
}

func startSilentRedis(t *testing.T) *silentRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &silentRedis{addr: ln.Addr().String(), accepted: make(chan net.Conn, 4)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.accepted <- c
		}
	}()
	return r
}

// startWaiting starts cmd, a gateway configured with r's address, with its
// stderr in stderr, and returns once it has connected: its start now waits
// for r's answer.
func (r *silentRedis) startWaiting(t *testing.T, cmd *exec.Cmd, stderr *testlog.Buffer) {
	t.Helper()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-r.accepted:
		t.Cleanup(func() { c.Close() })
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the gateway did not connect to Redis; log:\n%s", stderr.String())
	}
}

// wait returns the exit code, failing the test after d.
func (p *gwProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("gateway still running after %v", d)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

func TestGatewayBinary(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	bin := buildGateway(t)
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	// Sessions on (the default) with the embedded memory store.
	env := []string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_SESSION_KEYS=binary-test-key-0123456789abcdef0123456789"}

	t.Run("Help", func(t *testing.T) {
		for _, arg := range []string{"-h", "--help", "help"} {
			out, err := exec.Command(bin, arg).CombinedOutput()
			if err != nil {
				t.Fatalf("gateway %s: %v", arg, err)
			}
			for _, v := range config.Variables() {
				if !strings.Contains(string(out), v.Name) {
					t.Errorf("gateway %s does not list %s", arg, v.Name)
				}
			}
			if !strings.Contains(string(out), `SESSIONGATE_MAX_BODY  (default "1m")`) {
				t.Errorf("gateway %s lacks defaults:\n%s", arg, out)
			}
		}
	})

	t.Run("BadEnvExits78", func(t *testing.T) {
		cmd := exec.Command(bin)
		cmd.Env = []string{"SESSIONGATE_PHP_FPM=localhost", "SESSIONGATE_MAX_BODY=lots", "SESSIONGATE_LOG_FORMAT=xml", "SESSIONGATE_READ_HEADER_TIMEOUT=0"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 78 {
			t.Fatalf("exit = %v, want status 78 (EX_CONFIG); stderr:\n%s", err, stderr.String())
		}
		msg := stderr.String()
		for _, v := range []string{"SESSIONGATE_PHP_FPM", "SESSIONGATE_DOCUMENT_ROOT", "SESSIONGATE_MAX_BODY", "SESSIONGATE_LOG_FORMAT", "SESSIONGATE_READ_HEADER_TIMEOUT"} {
			if !strings.Contains(msg, v) {
				t.Errorf("message does not name %s:\n%s", v, msg)
			}
		}
		if n := strings.Count(msg, "invalid configuration"); n != 1 {
			t.Errorf("want one message, got %d:\n%s", n, msg)
		}
	})

	t.Run("HealthAndReadiness", func(t *testing.T) {
		// Django is down throughout: /readyz leaves it out (README,
		// "Container image"), since every gateway shares the same
		// gunicorn and taking them out of rotation would take the PHP
		// site down too.
		deadDjango := "http://" + harness.DeadAddr(t)
		p := startBinary(t, bin, append(env, "SESSIONGATE_DJANGO_URL="+deadDjango, "SESSIONGATE_DJANGO_PATHS=/dj/"))
		code := func(path string) (int, string) { return getStatus(t, p.Admin+path) }
		if c, b := code("/readyz"); c != 200 {
			t.Fatalf("readyz with php-fpm up and Django down: %d %s", c, b)
		}
		if res, err := http.Get(p.URL + "/dj/"); err != nil || res.StatusCode != 502 {
			t.Fatalf("Django request with Django down: %v %v, want 502", res, err)
		} else {
			res.Body.Close()
		}
		fpm.Stop()
		if c, b := code("/readyz"); c != 503 || !strings.Contains(b, "php-fpm") {
			t.Errorf("readyz with php-fpm stopped: %d %q", c, b)
		}
		if c, _ := code("/healthz"); c != 200 {
			t.Errorf("healthz with php-fpm stopped: %d", c)
		}
		res, err := http.Get(p.URL + "/info.php")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 502 {
			t.Errorf("PHP request with php-fpm stopped: %d, want 502", res.StatusCode)
		}
		fpm.Start()
		if c, b := code("/readyz"); c != 200 {
			t.Errorf("readyz after php-fpm restart: %d %s", c, b)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if c := p.wait(t, 10*time.Second); c != 0 {
			t.Errorf("exit %d after SIGTERM", c)
		}
	})

	t.Run("AccessLogJSON", func(t *testing.T) {
		p := startBinary(t, bin, env)
		for _, path := range []string{"/info.php", "/style.css"} {
			res, err := http.Get(p.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t, 10*time.Second)
		seen := map[string]map[string]any{}
		sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("log line is not JSON: %q: %v", sc.Text(), err)
				continue
			}
			if m["msg"] == "request" {
				seen[m["path"].(string)] = m
			}
		}
		for path, upstream := range map[string]string{"/info.php": "php", "/style.css": "static"} {
			m := seen[path]
			if m == nil {
				t.Errorf("no access log line for %s", path)
				continue
			}
			for _, f := range []string{"time", "level", "method", "path", "status", "bytes", "duration_ms", "upstream", "remote"} {
				if _, ok := m[f]; !ok {
					t.Errorf("%s: access log lacks %q: %v", path, f, m)
				}
			}
			if m["upstream"] != upstream || m["status"] != float64(200) || m["method"] != "GET" || !strings.HasPrefix(m["remote"].(string), "127.0.0.1:") || m["bytes"].(float64) <= 0 {
				t.Errorf("%s: %v", path, m)
			}
		}
		if !strings.Contains(p.stderr.String(), `"SESSIONGATE_PHP_FPM":"`+fpm.Addr+`"`) {
			t.Errorf("start line lacks the effective config:\n%s", p.stderr.String())
		}
	})

	t.Run("TLS", func(t *testing.T) {
		cert, key := testtls.Pair(t)
		p := startBinary(t, bin, append(env, "SESSIONGATE_TLS_CERT="+cert, "SESSIONGATE_TLS_KEY="+key))
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		res, err := client.Get(strings.Replace(p.URL, "http://", "https://", 1) + "/info.php")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if d := phpDump(t, "/info.php", string(b)); d["HTTPS"] != "on" {
			t.Errorf("HTTPS param over TLS = %q", d["HTTPS"])
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if c := p.wait(t, 10*time.Second); c != 0 {
			t.Errorf("exit %d", c)
		}
	})

	// certbot, acme.sh and lego renew the files in place and send SIGHUP
	// (nginx reloads then); Go's default for SIGHUP is to exit.
	t.Run("TLSReloadOnSIGHUP", func(t *testing.T) {
		cert, key := testtls.Pair(t)
		p := startBinary(t, bin, append(env, "SESSIONGATE_TLS_CERT="+cert, "SESSIONGATE_TLS_KEY="+key))
		served := func() []byte {
			t.Helper()
			c, err := tls.Dial("tcp", strings.TrimPrefix(p.URL, "http://"), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatalf("TLS handshake: %v", err)
			}
			defer c.Close()
			return c.ConnectionState().PeerCertificates[0].Raw
		}
		first := served()
		cert2, key2 := testtls.Pair(t)
		for dst, src := range map[string]string{cert: cert2, key: key2} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		var second []byte
		if !poll(5*time.Second, func() bool { second = served(); return !bytes.Equal(second, first) }) {
			t.Fatalf("still the old certificate 5 s after SIGHUP; log:\n%s", p.stderr.String())
		}
		// A broken renewal keeps the certificate in use. Checked once the
		// gateway has tried it (its log says so), not after a guessed delay.
		if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		p.cmd.Process.Signal(syscall.SIGHUP)
		failed := waitForLog(t, p.stderr, "TLS certificate not reloaded")
		if !bytes.Equal(served(), second) {
			t.Error("a broken certificate file replaced the one in use")
		}
		if !strings.Contains(failed, "SESSIONGATE_TLS_CERT") {
			t.Errorf("the failed reload is not logged with the variable:\n%s", p.stderr.String())
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if c := p.wait(t, 10*time.Second); c != 0 {
			t.Errorf("exit %d", c)
		}
	})

	// A SIGHUP while the gateway still waits at start (here for a Redis
	// that accepts and never answers) is no exit by Go's default action:
	// the start goes on and ends as it would have, here with Redis's error.
	t.Run("SIGHUPDuringStartIsNotFatal", func(t *testing.T) {
		redis := startSilentRedis(t)
		cmd := exec.Command(bin)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "SESSIONGATE_LISTEN=127.0.0.1:0",
			"SESSIONGATE_REDIS_URL=redis://" + redis.addr, "SESSIONGATE_REDIS_TIMEOUT=2s"}, env...)
		var stderr testlog.Buffer
		redis.startWaiting(t, cmd, &stderr)
		cmd.Process.Signal(syscall.SIGHUP)
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("gateway ended with %v after a SIGHUP at start, want exit 1 for the silent Redis; log:\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "cannot start") {
			t.Errorf("the start's own failure is not logged:\n%s", stderr.String())
		}
	})

	t.Run("SIGHUPWithoutTLSKeepsServing", func(t *testing.T) {
		p := startBinary(t, bin, env)
		p.cmd.Process.Signal(syscall.SIGHUP)
		// Asked once the signal was handled: a request racing a gateway
		// that dies of it could still be answered.
		waitForLog(t, p.stderr, "SIGHUP: no TLS certificate to reload")
		res, err := http.Get(p.URL + "/style.css")
		if err != nil {
			t.Fatalf("after SIGHUP: %v; log:\n%s", err, p.stderr.String())
		}
		res.Body.Close()
		p.cmd.Process.Signal(syscall.SIGTERM)
		if c := p.wait(t, 10*time.Second); c != 0 {
			t.Errorf("exit %d", c)
		}
	})

	// A request still running when SESSIONGATE_SHUTDOWN_TIMEOUT runs out
	// is cut by the gateway: logged 503 with the reason, not 499.
	t.Run("SIGTERMCutAtDeadlineIs503", func(t *testing.T) {
		os.Remove(filepath.Join(root, "slow.started"))
		p := startBinary(t, bin, append(env, "SESSIONGATE_SHUTDOWN_TIMEOUT=300ms"))
		go func() {
			if res, err := http.Get(p.URL + "/slow.php"); err == nil {
				res.Body.Close()
			}
		}()
		waitForFile(t, filepath.Join(root, "slow.started"), "slow.php")
		p.cmd.Process.Signal(syscall.SIGTERM)
		if c := p.wait(t, 15*time.Second); c != 1 {
			t.Errorf("exit %d after cutting a request, want 1", c)
		}
		var line map[string]any
		sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "request" && m["path"] == "/slow.php" {
				line = m
			}
		}
		if line == nil || line["status"] != float64(503) || !strings.Contains(fmt.Sprint(line["error"]), "cut at shutdown") {
			t.Errorf("access log line of the cut request: %v, want 503 cut at shutdown; log:\n%s", line, p.stderr.String())
		}
	})

	t.Run("SIGTERMDrainsInFlight", func(t *testing.T) {
		os.Remove(filepath.Join(root, "slow.started"))
		p := startBinary(t, bin, append(env, "SESSIONGATE_SHUTDOWN_TIMEOUT=20s"))
		type result struct {
			code int
			body string
			err  error
		}
		done := make(chan result, 1)
		go func() {
			res, err := http.Get(p.URL + "/slow.php")
			if err != nil {
				done <- result{err: err}
				return
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			done <- result{res.StatusCode, string(b), err}
		}()
		// Signal only once PHP is running the request.
		waitForFile(t, filepath.Join(root, "slow.started"), "slow.php")
		start := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// New connections are refused while draining: tried once the
		// gateway says it drains (it closes its listener right after),
		// while the slow request still runs.
		waitForLog(t, p.stderr, "shutting down: draining")
		fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		accepted := 0 // the last answer's status
		refused := poll(500*time.Millisecond, func() bool {
			res, err := fresh.Get(p.URL + "/style.css")
			if err != nil {
				return true
			}
			res.Body.Close()
			accepted = res.StatusCode
			return false
		})
		if !refused {
			t.Errorf("new requests still accepted 500 ms into the drain: %d", accepted)
		}
		r := <-done
		if r.err != nil || r.code != 200 || r.body != "slow done" {
			t.Errorf("in-flight request: %d %q %v", r.code, r.body, r.err)
		}
		if c := p.wait(t, 15*time.Second); c != 0 {
			t.Errorf("exit %d after draining, want 0", c)
		}
		if time.Since(start) > 15*time.Second {
			t.Errorf("shutdown took %v", time.Since(start))
		}
	})

	// A certificate renewal hook may send SIGHUP while the gateway drains
	// (a deploy's SIGTERM and a renewal at the same time): Go's default
	// action for SIGHUP would end the process there and then, cutting the
	// in-flight requests and leaving their session locks behind.
	t.Run("SIGHUPDuringDrainKeepsDraining", func(t *testing.T) {
		os.Remove(filepath.Join(root, "slow.started"))
		p := startBinary(t, bin, append(env, "SESSIONGATE_SHUTDOWN_TIMEOUT=20s"))
		type result struct {
			code int
			body string
			err  error
		}
		done := make(chan result, 1)
		go func() {
			res, err := http.Get(p.URL + "/slow.php")
			if err != nil {
				done <- result{err: err}
				return
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			done <- result{res.StatusCode, string(b), err}
		}()
		waitForFile(t, filepath.Join(root, "slow.started"), "slow.php")
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitForLog(t, p.stderr, "shutting down: draining")
		time.Sleep(50 * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || r.code != 200 || r.body != "slow done" {
			t.Errorf("in-flight request after SIGHUP during the drain: %d %q %v", r.code, r.body, r.err)
		}
		if c := p.wait(t, 15*time.Second); c != 0 {
			t.Errorf("exit %d after draining, want 0; log:\n%s", c, p.stderr.String())
		}
	})
}

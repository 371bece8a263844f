package scripts

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// The tests run scripts/demo.sh for real (redis-server, php-fpm, gunicorn
// and the gateway), each from a temporary directory laid out like the
// repository: a copy of the scripts, links to examples/ and wsgi/, and its
// own .demo/. They never touch the checkout's .demo/ or port 8080, and
// they run in parallel: every port and socket a demo uses is its own.

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// demoRoot makes a repository-shaped directory for demo.sh and returns it
// with the gateway binary built once for the test.
func demoRoot(t *testing.T) (root, gateway string) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "redis-server", "gunicorn", "django")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	root = t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"demo.sh", "ports.sh"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "scripts", f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"examples", "wsgi"} {
		if err := os.Symlink(filepath.Join(repo, d), filepath.Join(root, d)); err != nil {
			t.Fatal(err)
		}
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sessiongate-demo-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtGateway = filepath.Join(dir, "gateway")
		build := exec.Command("go", "build", "-o", builtGateway, "./cmd/gateway")
		build.Dir = repo
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/gateway: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return root, builtGateway
}

// The gateway is built once for every test of the package (TestMain
// removes it).
var (
	buildOnce    sync.Once
	builtGateway string
	buildErr     error
)

func TestMain(m *testing.M) {
	// A demo spends most of its time waiting for its services to start
	// and stop, so four run at a time (go test's default is one per CPU)
	// unless -parallel says otherwise.
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", "4")
	}
	code := m.Run()
	if builtGateway != "" {
		os.RemoveAll(filepath.Dir(builtGateway))
	}
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// demo is one run of scripts/demo.sh.
type demo struct {
	cmd           *exec.Cmd
	out           *syncBuffer
	output        *os.File      // the reading end of demo.sh's stdout and stderr, copied to out
	done          chan struct{} // closed once demo.sh exited and its output is in out
	err           error         // the exit status, once done is closed
	listen, admin string
}

// startDemo runs ROOT/scripts/demo.sh in its own process group. t.Cleanup
// kills whatever it started that is still there, so that a failing test
// leaves nothing behind either.
// env adds to the test's own environment.
func startDemo(t *testing.T, root, gateway, listen, admin string, env ...string) *demo {
	t.Helper()
	d := &demo{out: &syncBuffer{}, done: make(chan struct{}), listen: listen, admin: admin}
	d.cmd = exec.Command("bash", filepath.Join(root, "scripts", "demo.sh"))
	d.cmd.Env = append(os.Environ(), "GATEWAY_BIN="+gateway, "DEMO_LISTEN="+listen, "DEMO_ADMIN_LISTEN="+admin)
	d.cmd.Env = append(d.cmd.Env, env...)
	// A pipe of the test's own rather than exec's copying: closeOutput can
	// take the reader away, as when a user's `make demo | tee` ends.
	output, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d.output = output
	d.cmd.Stdout, d.cmd.Stderr = w, w
	// SIGTERM if the test binary dies: demo.sh then stops what it started.
	err = harness.StartInGroup(d.cmd)
	w.Close()
	if err != nil {
		output.Close()
		t.Fatal(err)
	}
	// done waits for the copy too, as exec's own copying did: whoever
	// sees demo.sh exited reads all it wrote ("... is in use").
	copied := make(chan struct{})
	go func() { io.Copy(d.out, output); close(copied) }()
	go func() { d.err = d.cmd.Wait(); <-copied; close(d.done) }()
	t.Cleanup(func() {
		defer output.Close()
		select {
		case <-d.done:
		default:
			syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
		for _, g := range d.groups() {
			syscall.Kill(-g, syscall.SIGKILL)
		}
	})
	return d
}

var startedRE = regexp.MustCompile(`demo: (\S+) started \(pid (\d+),`)

// groups are the process groups of the services the demo started (spawn
// puts each in its own session, pid = process group id).
func (d *demo) groups() []int {
	var out []int
	for _, m := range startedRE.FindAllStringSubmatch(d.out.String(), -1) {
		n, _ := strconv.Atoi(m[2])
		out = append(out, n)
	}
	return out
}

func (d *demo) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// errPortTaken: demo.sh stopped because one of the addresses it was given
// is in use, which for a port freeAddr picked means another process took it
// before the demo bound it.
var errPortTaken = errors.New("an address demo.sh was given is in use")

// ready waits for the "Press Ctrl-C" banner.
func (d *demo) ready() error {
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(d.out.String(), "Press Ctrl-C to stop.") {
		if d.exited() {
			out := d.out.String()
			if strings.Contains(out, d.listen+" is in use") || strings.Contains(out, d.admin+" is in use") {
				return fmt.Errorf("%w (%v):\n%s", errPortTaken, d.err, out)
			}
			return fmt.Errorf("demo.sh exited before it was ready (%v):\n%s", d.err, out)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo.sh not ready after 90s:\n%s", d.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// startReadyDemo starts demo.sh on the public and admin addresses that
// addrs picks and waits until it is ready. A port picked free can be taken
// by another process before the demo binds it; the demo then stops saying
// so, and it is started again on new addresses (3 tries).
func startReadyDemo(t *testing.T, root, gateway string, addrs func() (listen, admin string), env ...string) *demo {
	t.Helper()
	var err error
	for range 3 {
		listen, admin := addrs()
		d := startDemo(t, root, gateway, listen, admin, env...)
		if err = d.ready(); err == nil {
			return d
		}
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatal(err)
	return nil
}

// freeAddrs is startReadyDemo's usual pick: two loopback addresses.
func freeAddrs(t *testing.T) func() (string, string) {
	return func() (string, string) { return freeAddr(t), freeAddr(t) }
}

// closeOutput takes the reader of demo.sh's output away: its next write
// gets SIGPIPE.
func (d *demo) closeOutput() { d.output.Close() }

// waitExit waits up to limit for demo.sh to exit and reports whether it did.
func (d *demo) waitExit(limit time.Duration) bool {
	select {
	case <-d.done:
		return true
	case <-time.After(limit):
		return false
	}
}

// mustStopClean waits up to 60 s for demo.sh to exit after the signals the
// caller sent, and fails t if it still runs or left anything running
// (after says when, in the failure).
func (d *demo) mustStopClean(t *testing.T, after string) {
	t.Helper()
	if !d.waitExit(60 * time.Second) {
		t.Fatalf("demo.sh still running 60s after SIGTERM:\n%s", d.out)
	}
	if left := d.leftovers(); len(left) > 0 {
		t.Fatalf("%s, the demo left running: %s\n%s", after, strings.Join(left, "; "), d.out)
	}
}

// startedPID is the pid demo.sh logged for the service name ("demo: NAME
// started (pid N, ..."), failing t when it logged none.
func (d *demo) startedPID(t *testing.T, name string) string {
	t.Helper()
	m := regexp.MustCompile(`demo: ` + regexp.QuoteMeta(name) + ` started \(pid (\d+),`).FindStringSubmatch(d.out.String())
	if m == nil {
		t.Fatalf("no %s started:\n%s", name, d.out)
	}
	return m[1]
}

// leftovers lists the started process groups that still have a member.
func (d *demo) leftovers() []string {
	var left []string
	deadline := time.Now().Add(3 * time.Second)
	for _, g := range d.groups() {
		for syscall.Kill(-g, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if err := syscall.Kill(-g, 0); !errors.Is(err, syscall.ESRCH) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", g))
			left = append(left, fmt.Sprintf("process group %d (%s)", g, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return left
}

func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// TestDemoStopsEverything: a second SIGTERM (make passes its own SIGTERM on
// to the script, and an impatient user presses Ctrl-C twice) arriving while
// the demo is stopping must not cut the clean-up short and leave redis,
// php-fpm or gunicorn running. A second demo from the same checkout is
// refused with a clear message while the first runs, and after a stop the
// next start works.
func TestDemoStopsEverything(t *testing.T) {
	t.Parallel()
	root, gateway := demoRoot(t)
	first := startReadyDemo(t, root, gateway, freeAddrs(t))
	if n := len(first.groups()); n != 4 {
		t.Fatalf("want 4 services started, got %d:\n%s", n, first.out)
	}
	res, err := http.Get("http://" + first.listen + "/counter.php")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /counter.php: %s %v", res.Status, err)
	}
	// PHP drops the newline right after "?>": the words must not run together.
	text := strings.Join(strings.Fields(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(string(body), "")), " ")
	if !strings.Contains(text, "visited this counter 1 time in this session.") {
		t.Errorf("GET /counter.php: want \"1 time in this session.\":\n%s", body)
	}
	gatewayLog, err := os.ReadFile(filepath.Join(root, ".demo", "gateway.log"))
	if err != nil || len(gatewayLog) == 0 {
		t.Fatalf("gateway.log: %v (%d bytes)", err, len(gatewayLog))
	}

	// A second demo of the same checkout, on other ports: refused at once,
	// without starting anything or truncating the first one's logs.
	second := startDemo(t, root, gateway, freeAddr(t), freeAddr(t))
	if !second.waitExit(20 * time.Second) {
		t.Errorf("a second demo.sh of the same checkout kept running:\n%s", second.out)
	} else if second.err == nil || !strings.Contains(second.out.String(), "already running") {
		t.Errorf("second demo.sh: %v, want a failure saying a demo is already running:\n%s", second.err, second.out)
	}
	if g := second.groups(); len(g) > 0 {
		t.Errorf("the second demo.sh started services %v:\n%s", g, second.out)
	}
	if after, _ := os.ReadFile(filepath.Join(root, ".demo", "gateway.log")); !bytes.HasPrefix(after, gatewayLog) {
		t.Errorf("the second demo.sh clobbered the running demo's gateway.log")
	}

	// SIGTERM, then SIGTERM again once the clean-up has begun (the gateway,
	// stopped first, no longer accepts).
	first.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for accepts(first.listen) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	first.cmd.Process.Signal(syscall.SIGTERM)
	first.mustStopClean(t, "after a repeated SIGTERM")

	// Nothing left behind stops the next start.
	again := startReadyDemo(t, root, gateway, freeAddrs(t))
	again.cmd.Process.Signal(syscall.SIGTERM)
	again.mustStopClean(t, "after SIGTERM")
}

// TestDemoPortInUse: a taken public or admin port stops the demo before it
// starts anything, with a message naming the address and the variable,
// also when the address is written without a host (":8080", the gateway's
// own form for every interface).
func TestDemoPortInUse(t *testing.T) {
	t.Parallel()
	root, gateway := demoRoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().String()
	_, busyPort, _ := net.SplitHostPort(busy)
	for _, tc := range []struct{ name, listen, admin, variable, inUse string }{
		{"public", busy, freeAddr(t), "DEMO_LISTEN", busy},
		{"admin", freeAddr(t), busy, "DEMO_ADMIN_LISTEN", busy},
		{"public without host", ":" + busyPort, freeAddr(t), "DEMO_LISTEN", ":" + busyPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDemo(t, root, gateway, tc.listen, tc.admin)
			if !d.waitExit(20 * time.Second) {
				t.Fatalf("demo.sh kept running with %s taken:\n%s", busy, d.out)
			}
			out := d.out.String()
			if d.err == nil || !strings.Contains(out, tc.inUse+" is in use") || !strings.Contains(out, tc.variable+"=") {
				t.Errorf("demo.sh: %v, want a failure saying %s is in use and naming %s:\n%s", d.err, tc.inUse, tc.variable, out)
			}
			if g := d.groups(); len(g) > 0 {
				t.Errorf("demo.sh started services %v before noticing the taken port:\n%s", g, out)
			}
		})
	}
}

// TestDemoListenWithoutHost: DEMO_LISTEN=":PORT" (the gateway's form for
// every interface, as in SESSIONGATE_LISTEN's default) starts a demo that
// works, and the banner prints URLs a browser can open (loopback), not
// "http://:PORT/". It used to wait 15 s for a gateway that was up all along
// and then stop everything with ":PORT not accepting after 15s".
func TestDemoListenWithoutHost(t *testing.T) {
	t.Parallel()
	root, gateway := demoRoot(t)
	var port string
	d := startReadyDemo(t, root, gateway, func() (string, string) {
		_, port, _ = net.SplitHostPort(freeAddr(t))
		return ":" + port, freeAddr(t)
	})
	url := "http://127.0.0.1:" + port + "/counter.php"
	if !strings.Contains(d.out.String(), url) {
		t.Errorf("the banner does not offer %s:\n%s", url, d.out)
	}
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET %s: %s", url, res.Status)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.mustStopClean(t, "after SIGTERM")
}

// TestDemoStopsWithoutItsOutput: `timeout 300 make demo 2>&1 | tee
// demo.log`, as a CI job might smoke-run the demo. tee is gone by the time
// timeout(1) sends SIGTERM to demo.sh and then to its whole process group,
// so demo.sh says "stopping" into a pipe nobody reads. Neither that write's
// SIGPIPE nor the second SIGTERM may end the script before it has stopped
// redis, php-fpm, gunicorn and the gateway, which run in sessions of their
// own and get neither signal.
func TestDemoStopsWithoutItsOutput(t *testing.T) {
	t.Parallel()
	root, gateway := demoRoot(t)
	d := startReadyDemo(t, root, gateway, freeAddrs(t))
	if n := len(d.groups()); n != 4 {
		t.Fatalf("want 4 services started, got %d:\n%s", n, d.out)
	}
	d.closeOutput()
	d.cmd.Process.Signal(syscall.SIGTERM)
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	d.mustStopClean(t, "stopped with its output gone")
}

// TestDemoIgnoresTheUsersDjangoSettings: a Django developer's shell often
// exports DJANGO_SETTINGS_MODULE for a project of their own (a virtualenv's
// activate script, direnv). The demo runs its own project, whose manage.py
// and wsgi.py only set it when it is unset: the user's module was taken,
// and the demo stopped with "Django set-up failed" (ModuleNotFoundError).
func TestDemoIgnoresTheUsersDjangoSettings(t *testing.T) {
	t.Parallel()
	root, gateway := demoRoot(t)
	d := startReadyDemo(t, root, gateway, freeAddrs(t), "DJANGO_SETTINGS_MODULE=someoneelses.settings")
	res, err := http.Get("http://" + d.listen + "/accounts/whoami/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"user": null`) {
		t.Errorf("GET /accounts/whoami/: %s %.300s", res.Status, body)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.mustStopClean(t, "after SIGTERM")
}

// TestDemoOnAnotherHost: DEMO_LISTEN=[::1]:PORT (or a LAN address) prints
// URLs on that host, and Django must answer them: its ALLOWED_HOSTS was
// 127.0.0.1 and localhost only, so the admin the banner offers answered
// 400 Bad Request (DisallowedHost) and no login was possible.
func TestDemoOnAnotherHost(t *testing.T) {
	t.Parallel()
	root, gateway := demoRoot(t)
	d := startReadyDemo(t, root, gateway, func() (string, string) {
		l, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String(), freeAddr(t)
	})
	if admin := "http://" + d.listen + "/admin/"; !strings.Contains(d.out.String(), admin) {
		t.Errorf("the banner does not offer %s:\n%s", admin, d.out)
	}
	url := "http://" + d.listen + "/admin/login/"
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET %s: %s", url, res.Status)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.mustStopClean(t, "after SIGTERM")
}

// fcgiProbe is a FastCGI client (python3 -c fcgiProbe ADDR SCRIPT PREPEND):
// it asks php-fpm to run SCRIPT with PHP_ADMIN_VALUE auto_prepend_file
// set to PREPEND, as any client of php-fpm may, and prints the answer.
const fcgiProbe = `
import socket, struct, sys
addr, script, prepend = sys.argv[1], sys.argv[2], sys.argv[3]
def rec(t, content):
    return struct.pack("!BBHHBx", 1, t, 1, len(content), 0) + content
def nv(k, v):
    k, v = k.encode(), v.encode()
    return struct.pack("!BB", len(k), len(v)) + k + v
params = {"SCRIPT_FILENAME": script, "REQUEST_METHOD": "GET", "SCRIPT_NAME": "/x.php",
          "REQUEST_URI": "/x.php", "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
          "PHP_ADMIN_VALUE": "auto_prepend_file=" + prepend}
if addr.startswith("unix:"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(addr[5:])
else:
    h, p = addr.rsplit(":", 1)
    s = socket.create_connection((h, int(p)))
s.settimeout(10)
body = b"".join(nv(k, v) for k, v in params.items())
s.sendall(rec(1, struct.pack("!HB5x", 1, 0)) + rec(4, body) + rec(4, b"") + rec(5, b""))
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode("latin-1"))
`

// TestDemoServicesConfined checks, on one running demo, that what it
// starts as root answers only its own user and runs nothing as root (the
// three checks below). One demo for the three: each start and stop costs
// about 7 s of CPU (Django's migrate, gunicorn's workers, php-fpm, Redis).
func TestDemoServicesConfined(t *testing.T) {
	t.Parallel()
	root, gateway := demoRoot(t)
	d := startReadyDemo(t, root, gateway, freeAddrs(t))
	defer func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.mustStopClean(t, "after SIGTERM")
	}()
	t.Run("php-fpm only for its user", func(t *testing.T) { demoPHPFPMOnlyForItsUser(t, root) })
	t.Run("redis only for its user", func(t *testing.T) { demoRedisOnlyForItsUser(t, d) })
	t.Run("php workers not root", func(t *testing.T) { demoPHPWorkersNotRoot(t, d) })
}

// demoPHPFPMOnlyForItsUser: php-fpm runs any script, with any
// php.ini setting (auto_prepend_file), for whoever can connect to it. The
// demo's php-fpm listened on a 127.0.0.1 port, and `make demo` runs as
// root (php-fpm -R, workers as root): every local user could run PHP code
// of their own as root while the demo ran. Only the demo's own user (the
// gateway's) may connect.
func demoPHPFPMOnlyForItsUser(t *testing.T, root string) {
	conf, err := os.ReadFile(filepath.Join(root, ".demo", "php-fpm.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^listen = (.+)$`).FindSubmatch(conf)
	if m == nil {
		t.Fatalf("no listen line in php-fpm.conf:\n%s", conf)
	}
	addr := string(m[1])
	if !strings.HasPrefix(addr, "/") {
		addr = strings.TrimSpace(addr)
	} else {
		addr = "unix:" + addr
	}
	if os.Geteuid() != 0 {
		// Another user cannot be played: the socket must be the user's alone.
		path, ok := strings.CutPrefix(addr, "unix:")
		fi, err := os.Stat(path)
		if !ok || err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("php-fpm listens on %s (%v): other local users can connect", addr, err)
		}
		return
	}
	evil := filepath.Join(t.TempDir(), "evil.php")
	if err := os.WriteFile(evil, []byte("<?php echo 'EUID=', posix_geteuid(), \"\\n\"; exit;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	probe := exec.Command("/usr/bin/python3", "-c", fcgiProbe, addr, filepath.Join(root, "examples", "php", "pathinfo.php"), evil)
	probe.Dir = "/"
	probe.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}} // nobody
	out, err := probe.CombinedOutput()
	if strings.Contains(string(out), "EUID=") {
		t.Errorf("the user nobody had php-fpm at %s run its own code: %q", addr, bytes.Trim(out, "\x00"))
	} else if err == nil {
		t.Errorf("the user nobody reached php-fpm at %s: %q", addr, out)
	}
}

// listeners returns what process pid listens on: "tcp" for each TCP
// listening socket, the path of each listening unix socket.
func listeners(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 9 && f[3] == "0A" && inodes[f[9]] {
				out = append(out, "tcp")
			}
		}
	}
	b, _ := os.ReadFile("/proc/net/unix")
	for _, line := range strings.Split(string(b), "\n")[1:] {
		// Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening.
		if f := strings.Fields(line); len(f) > 7 && f[3] == "00010000" && inodes[f[6]] {
			out = append(out, f[7])
		}
	}
	return out
}

// demoRedisOnlyForItsUser: the demo's Redis holds the sessions, the
// logins among them, with no password: on a 127.0.0.1 port every local user
// could write _auth_user_id into a session of their own and be the demo's
// admin on PHP and Django alike. Like php-fpm, it must listen only where
// the demo's user alone may connect.
func demoRedisOnlyForItsUser(t *testing.T, d *demo) {
	pid, _ := strconv.Atoi(d.startedPID(t, "redis-server"))
	ls := listeners(t, pid)
	if len(ls) == 0 {
		t.Fatalf("redis-server (pid %d) listens on nothing found", pid)
	}
	for _, l := range ls {
		if l == "tcp" {
			t.Errorf("redis-server listens on a TCP port: every local user can connect")
			continue
		}
		fi, err := os.Stat(l)
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("redis-server listens on %s (%v, %v): other local users can connect", l, fi.Mode(), err)
		}
	}
}

// TestDemoGatewayDrainsOnStop: Ctrl-C gives the gateway its drain. The
// demo's stop waited 5 s for each service and then killed it, while the
// gateway drains for SESSIONGATE_SHUTDOWN_TIMEOUT (30 s by default): a
// request still in flight (an upload on a slow link here) had the gateway
// killed under it, without releasing what its requests held (a session
// lock stayed in Redis, and the demo snapshots Redis for its next run).
// The gateway must stop itself, saying so in its log.
func TestDemoGatewayDrainsOnStop(t *testing.T) {
	t.Parallel()
	root, gateway := demoRoot(t)
	d := startReadyDemo(t, root, gateway, freeAddrs(t))
	c, err := net.Dial("tcp", d.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Headers and half the body: the request stays in flight.
	if _, err := io.WriteString(c, "POST /counter.php HTTP/1.1\r\nHost: "+d.listen+"\r\nContent-Length: 10\r\n\r\n01234"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.mustStopClean(t, "after SIGTERM")
	log, err := os.ReadFile(filepath.Join(root, ".demo", "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "msg=stopped") {
		t.Errorf("the gateway did not stop itself (killed during its drain); gateway.log:\n%s", log)
	}
}

// demoPHPWorkersNotRoot: `make demo` runs as root on Debian (it
// installs the packages), and its php-fpm ran the workers as root (-R):
// every PHP script of the example site, and any bug in one, ran as root.
// As root, the workers must run as an unprivileged user, as the
// integration tests' php-fpm does (nobody), and the site must still work.
func demoPHPWorkersNotRoot(t *testing.T, d *demo) {
	if os.Geteuid() != 0 {
		t.Skip("runs as root only: otherwise the workers run as the user anyway")
	}
	master := d.startedPID(t, "php-fpm")
	workers := 0
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		status, err := os.ReadFile(filepath.Join("/proc", p.Name(), "status"))
		if err != nil || !regexp.MustCompile(`(?m)^PPid:\s+`+master+`$`).Match(status) {
			continue
		}
		workers++
		uid := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)`).FindSubmatch(status)
		if uid == nil || string(uid[1]) == "0" || string(uid[2]) == "0" {
			t.Errorf("php-fpm worker %s runs as root: %s", p.Name(), uid)
		}
	}
	if workers == 0 {
		t.Fatalf("no worker of php-fpm %s found", master)
	}
	for _, path := range []string{"/counter.php", "/pathinfo.php/articles/42", "/assets/style.css"} {
		res, err := http.Get("http://" + d.listen + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("GET %s: %s", path, res.Status)
		}
	}
}

// processUIDs returns the real and effective user ids of pid and of each
// of its children.
func processUIDs(t *testing.T, pid string) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	uidRE := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)`)
	parentRE := regexp.MustCompile(`(?m)^PPid:\s+` + pid + `$`)
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		status, err := os.ReadFile(filepath.Join("/proc", p.Name(), "status"))
		if err != nil || p.Name() != pid && !parentRE.Match(status) {
			continue
		}
		if m := uidRE.FindSubmatch(status); m != nil {
			out[p.Name()] = [2]string{string(m[1]), string(m[2])}
		}
	}
	return out
}

// adminLogin logs the demo user in through Django's admin form at base,
// as a browser does, and reports the final status.
func adminLogin(t *testing.T, base string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(base + "/admin/login/?next=/admin/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`).FindSubmatch(body)
	if res.StatusCode != 200 || m == nil {
		t.Fatalf("login form: %s %.300s", res.Status, body)
	}
	form := url.Values{"csrfmiddlewaretoken": {string(m[1])}, "username": {"demo"}, "password": {"demo-password"}, "next": {"/admin/"}}
	res, err = client.PostForm(base+"/admin/login/?next=/admin/", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 302 || res.Header.Get("Location") != "/admin/" {
		t.Fatalf("login: %s Location %q %.500s", res.Status, res.Header.Get("Location"), body)
	}
	res, err = client.Get(base + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("admin after login: %s", res.Status)
	}
}

// TestDemoDjangoNotRoot: `make demo` runs as root on Debian, and its
// gunicorn (and manage.py migrate and demo_user before it) ran as root:
// every view of the example project, and any bug in one, ran as root. As
// root, Django must run as an unprivileged user, as php-fpm's workers do,
// and its database still be made, kept in .demo/ and used again by the
// next run (a login writes it: last_login).
func TestDemoDjangoNotRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("runs as root only: otherwise Django runs as the user anyway")
	}
	root, gateway := demoRoot(t)
	for run := 1; run <= 2; run++ {
		d := startReadyDemo(t, root, gateway, freeAddrs(t))
		master := d.startedPID(t, "gunicorn")
		uids := processUIDs(t, master)
		if len(uids) < 2 {
			t.Fatalf("gunicorn %s: master and workers not found: %v", master, uids)
		}
		for pid, u := range uids {
			if u[0] == "0" || u[1] == "0" {
				t.Errorf("run %d: gunicorn process %s runs as root (uid %v)", run, pid, u)
			}
		}
		if setup, _ := os.ReadFile(filepath.Join(root, ".demo", "django-setup.log")); run == 2 && !strings.Contains(string(setup), "kept user demo") {
			// demo_user found the user the first run made: the database
			// was kept.
			t.Errorf("run 2 did not find the first run's database:\n%s", setup)
		}
		adminLogin(t, "http://"+d.listen)
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.mustStopClean(t, "after SIGTERM")
		db := filepath.Join(root, ".demo", "django.sqlite3")
		out, err := exec.Command("/usr/bin/python3", "-c",
			"import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(\"select last_login from auth_user where username='demo'\").fetchone()[0])", db).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "20") {
			t.Fatalf("run %d: the demo user's last login in %s: %v %s", run, db, err, out)
		}
	}
}

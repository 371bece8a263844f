// Package harness starts the real servers the integration tests run against:
// php-fpm, redis-server (standalone and a 3-master cluster), gunicorn, and
// nginx, which the gateway's PHP path is compared with.
// Each server gets its own configuration in t.TempDir(), listens on a
// loopback port (or unix socket) picked at run time, runs as the current user
// and is stopped by t.Cleanup, so tests are independent and nothing needs to
// be running beforehand. One exception: run as root, php-fpm's workers run as
// nobody (phpWorkerUser says why), and the files scripts read or write are
// shared with them (StartPHPFPM's DocRoot, ShareWithPHP, PHPTempDir).
//
// Processes never outlive the test binary: each runs in its own process group
// (stopping it stops its workers), with SIGTERM as parent-death signal (this
// covers `go test -timeout` panics, which run no cleanup), and a test binary
// whose TestMain calls Main also kills them on SIGINT/SIGTERM:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
// A missing binary fails the test with the apt-get command that installs it:
// integration tests are never skipped (`make test` installs what is missing
// when run as root on Debian, see scripts/deps.sh).
//
// Redis addresses: Redis.URL() is "redis://127.0.0.1:P/0" (go-redis
// ParseURL); RedisCluster.URL() is
// "redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=127.0.0.1:P3", the form of
// go-redis ParseClusterURL (the first node in the authority, the others as
// repeated addr parameters).
package harness

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Main runs the tests and makes sure no server started by the harness
// survives the test binary: leftovers are killed when m.Run returns and when
// the binary receives SIGINT or SIGTERM (the servers run in their own process
// groups, so a terminal's Ctrl-C does not reach them by itself). atExit runs
// after that in both cases, for what tests share across the binary (t.Cleanup
// is per test).
func Main(m *testing.M, atExit ...func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	exit := func(code int) {
		killAll()
		for _, f := range atExit {
			f()
		}
		os.Exit(code)
	}
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "harness: %v: killing all test servers\n", s)
		exit(2)
	}()
	code := m.Run()
	signal.Stop(sig)
	exit(code)
}

// dep describes an external program the tests need: where Debian puts it
// and which package provides it.
type dep struct {
	pkg string
	// check, when set, replaces the file lookup (e.g. a Python module).
	check func() error
}

// binaries maps the names accepted by Require to their Debian packages.
var binaries = map[string]dep{
	"php-fpm8.2":   {pkg: "php8.2-fpm"},
	"php":          {pkg: "php8.2-cli"},
	"redis-server": {pkg: "redis-server"},
	"redis-cli":    {pkg: "redis-tools"},
	"gunicorn":     {pkg: "gunicorn"},
	"django": {pkg: "python3-django", check: func() error {
		return pythonCheck("-c", "import django")
	}},
	// A virtualenv of Debian's python3 that pip can install a local
	// package into offline (--no-build-isolation: the setuptools and
	// wheel python3-pip brings).
	"venv": {pkg: "python3-venv", check: func() error {
		return pythonCheck("-m", "venv", "--help")
	}},
	"pip": {pkg: "python3-pip", check: func() error {
		if err := pythonCheck("-m", "pip", "--version"); err != nil {
			return err
		}
		return pythonCheck("-c", "import setuptools, wheel")
	}},
	// uvicorn's gunicorn worker, for Django under ASGI.
	"uvicorn": {pkg: "python3-uvicorn", check: func() error {
		return pythonCheck("-c", "import uvicorn.workers")
	}},
	// uWSGI with Debian's python3, for Django under uWSGI.
	"uwsgi_python3": {pkg: "uwsgi-plugin-python3"},
	"wrk":           {pkg: "wrk"},
	"nginx":         {pkg: "nginx-light"},
	"caddy":         {pkg: "caddy"},
	"chromium":      {pkg: "chromium"},
	"htpasswd":      {pkg: "apache2-utils"},
}

// checksPassed holds the names whose check passed in this test binary.
// A check starts a Python interpreter (0.15 s of CPU); asked by every test
// that needs Django, they cost some 20 s of the CPU-bound integration step.
// A failed check is not remembered, so it says what is missing each time.
var checksPassed sync.Map

// passedCheck runs the check of name unless it passed before.
func passedCheck(name string, check func() error) error {
	if _, ok := checksPassed.Load(name); ok {
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	checksPassed.Store(name, true)
	return nil
}

// pythonCheck runs Debian's /usr/bin/python3 with args and says what failed.
func pythonCheck(args ...string) error {
	out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("/usr/bin/python3 %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// searchDirs are tried after $PATH: php-fpm8.2 and nginx live in /usr/sbin,
// which is not on every user's PATH.
var searchDirs = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"}

// lookBin finds an executable by name on $PATH or in the Debian directories.
func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range searchDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH nor in %s", name, strings.Join(searchDirs, ", "))
}

// Require fails the test unless every named program is installed. Known
// names: php-fpm8.2, php, redis-server, redis-cli, gunicorn, django (Debian's
// /usr/bin/python3 can import django), uvicorn (and its gunicorn worker),
// uwsgi_python3, venv, pip, wrk, nginx, caddy, chromium; any other name is
// looked up as a binary. The failure names what is missing and the exact
// apt-get command. It never skips: a skipped integration test is a
// test that did not run, in CI or not.
func Require(t testing.TB, bins ...string) {
	t.Helper()
	var missing, pkgs []string
	seen := map[string]bool{}
	for _, name := range bins {
		b, known := binaries[name]
		var err error
		if b.check != nil {
			err = passedCheck(name, b.check)
		} else {
			_, err = lookBin(name)
		}
		if err == nil {
			continue
		}
		missing = append(missing, err.Error())
		if known && !seen[b.pkg] {
			seen[b.pkg] = true
			pkgs = append(pkgs, b.pkg)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "missing test dependencies:\n  " + strings.Join(missing, "\n  ")
	if len(pkgs) > 0 {
		sort.Strings(pkgs)
		msg += "\ninstall them with:\n  apt-get install -y " + strings.Join(pkgs, " ") +
			"\n(or run scripts/deps.sh test as root)"
	}
	t.Fatal(msg)
}

// Bin returns the absolute path of a program Require knows (or any binary),
// failing the test when it is missing.
func Bin(t testing.TB, name string) string {
	t.Helper()
	Require(t, name)
	if name == "django" {
		return "/usr/bin/python3"
	}
	p, err := lookBin(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// FreePort returns a loopback TCP port that was free a moment ago. The kernel
// picks it (bind to port 0), and ports already handed out by this process are
// never returned twice, so parallel tests in one binary do not collide.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("harness: pick a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			t.Fatalf("harness: release port %d: %v", port, err)
		}
		portsMu.Lock()
		dup := ports[port]
		ports[port] = true
		portsMu.Unlock()
		if !dup {
			return port
		}
	}
	t.Fatal("harness: no free loopback port after 100 tries")
	return 0
}

// splitAddr turns "unix:/path" or "host:port" into net.Dial arguments.
func splitAddr(addr string) (network, address string) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", path
	}
	return "tcp", addr
}

// dialOnce reports whether addr accepts a connection right now.
func dialOnce(addr string) error {
	network, address := splitAddr(addr)
	c, err := net.DialTimeout(network, address, 500*time.Millisecond)
	if err != nil {
		return err
	}
	return c.Close()
}

// WaitTCP waits until addr ("host:port" or "unix:/path") accepts a
// connection, failing the test after d.
func WaitTCP(t testing.TB, addr string, d time.Duration) {
	t.Helper()
	if err := waitAccept(addr, d, nil); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// errExited reports that the server died while we waited for it.
var errExited = errors.New("process exited")

// waitAccept polls addr until it accepts, d passes, or p (when not nil) exits.
// With p, a TCP address counts only once p's process group holds the
// listening socket (groupListensOn).
func waitAccept(addr string, d time.Duration, p *proc) error {
	deadline := time.Now().Add(d)
	var err error
	for {
		if err = dialOnce(addr); err == nil {
			if p == nil || p.listensOn(addr) {
				return nil
			}
			err = fmt.Errorf("%s answers, but not from %s", addr, p.name)
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s: %w (%v) before %s accepted", p.name, errExited, p.err, addr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting after %v: %w", addr, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// retryPortRace runs start up to three times while it fails because the
// port FreePort picked was taken before the server bound it (another test
// process, or an outgoing connection given that ephemeral port). Logs are
// removed before each retry so that the next attempt is judged on its own
// output. Only first starts retry: a restart must keep its address.
func retryPortRace(start func() error, logs ...string) error {
	var err error
	for range 3 {
		if err = start(); err == nil || !portTaken(logs...) {
			return err
		}
		for _, l := range logs {
			_ = os.Remove(l)
		}
	}
	return err
}

// portTaken reports whether a server's logs say its address was in use
// (php-fpm, redis-server: "Address already in use"; gunicorn: "Connection
// in use").
func portTaken(logs ...string) bool {
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err == nil && (bytes.Contains(b, []byte("Address already in use")) || bytes.Contains(b, []byte("Connection in use"))) {
			return true
		}
	}
	return false
}

// DeadAddr returns a loopback TCP address where every connect is refused
// for the whole test: a socket bound to it and never listening holds the
// port, so no other process (a gateway listening on port 0, a backend
// another test starts) can take it meanwhile, as one could take a port
// FreePort picked and nobody bound; a test's "backend down" then got
// another test's 200. The socket has no SO_REUSEADDR, which keeps even
// listeners that set it off the port.
func DeadAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("harness: socket for a dead address: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("harness: bind a dead address: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("harness: dead address: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

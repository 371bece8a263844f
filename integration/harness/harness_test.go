package harness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// fakeTB records a Fatal instead of failing the real test.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.msg = strings.TrimSuffix(fmtArgs(args...), "\n")
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Fatal(sprintf(format, args...)) }

// runFake runs fn against a fakeTB and returns the Fatal message ("" if none).
func runFake(t *testing.T, fn func(tb testing.TB)) string {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestRequireNamesPackageOfMissingBinary(t *testing.T) {
	msg := runFake(t, func(tb testing.TB) { Require(tb, "php-fpm8.2", "no-such-binary-sg") })
	if !strings.Contains(msg, "no-such-binary-sg") {
		t.Fatalf("message does not name the missing binary: %q", msg)
	}
	t.Setenv("PATH", "/nonexistent")
	// With PATH empty, php-fpm8.2 is still found in /usr/sbin; a known but
	// absent name gets its apt package in the message.
	binaries["sg-test-known"] = dep{pkg: "sg-test-pkg"}
	defer delete(binaries, "sg-test-known")
	msg = runFake(t, func(tb testing.TB) { Require(tb, "php-fpm8.2", "sg-test-known") })
	if !strings.Contains(msg, "apt-get install -y sg-test-pkg") || strings.Contains(msg, "php8.2-fpm") {
		t.Fatalf("unexpected message: %q", msg)
	}
	if msg := runFake(t, func(tb testing.TB) { Require(tb, "php-fpm8.2") }); msg != "" {
		t.Fatalf("php-fpm8.2 not found outside PATH: %s", msg)
	}
}

func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

func TestWaitTCPFailsOnClosedPort(t *testing.T) {
	addr := "127.0.0.1:" + itoa(FreePort(t))
	start := time.Now()
	msg := runFake(t, func(tb testing.TB) { WaitTCP(tb, addr, 200*time.Millisecond) })
	if msg == "" {
		t.Fatal("WaitTCP succeeded on a closed port")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("WaitTCP took %v for a 200ms bound", time.Since(start))
	}
}

func TestPHPFPMConf(t *testing.T) {
	conf := phpFPMConf("/d", "127.0.0.1:9000", "", PHPFPMOptions{
		Children: 3, MaxRequests: 5, LogLimit: 1 << 20,
		AdminValues:             map[string]string{"memory_limit": "64M", "error_log": "/dev/stderr"},
		RequestTerminateTimeout: 1500 * time.Millisecond,
	})
	for _, want := range []string{
		"daemonize = no", "log_limit = 1048576", "listen = 127.0.0.1:9000",
		"pm = static", "pm.max_children = 3", "pm.max_requests = 5",
		"request_terminate_timeout = 2s", "security.limit_extensions = .php",
		"php_admin_value[error_log] = /dev/stderr\nphp_admin_value[memory_limit] = 64M",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "user =") {
		t.Errorf("config sets a user:\n%s", conf)
	}
	conf = phpFPMConf("/d", "127.0.0.1:9000", "user = nobody\ngroup = nogroup\n", PHPFPMOptions{Children: 1})
	if !strings.Contains(conf, "[test]\nlisten = 127.0.0.1:9000\nuser = nobody\ngroup = nogroup\n") {
		t.Errorf("pool lacks its user lines:\n%s", conf)
	}
}

// TestPHPFPMWorkersNotRoot guards the machine running the suite: php-fpm's
// workers listen on loopback TCP, where any local user can send them
// FastCGI params, PHP_ADMIN_VALUE included. Run as root, the workers must not
// be root; otherwise they run as the current user.
func TestPHPFPMWorkersNotRoot(t *testing.T) {
	f := StartPHPFPM(t, PHPFPMOptions{DocRoot: t.TempDir(), Children: 1})
	want := os.Geteuid()
	if want == 0 {
		w, err := workerAccount()
		if err != nil {
			t.Fatal(err)
		}
		want = w.uid
	}
	// A worker is forked as root and drops to its user right after: poll.
	deadline := time.Now().Add(5 * time.Second)
	for {
		bad := workersNotRunningAs(f.Workers(), want)
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// workersNotRunningAs describes the first worker whose real, effective or
// saved uid is not uid ("" when all are; "no workers" when there are none).
func workersNotRunningAs(workers []int, uid int) string {
	if len(workers) == 0 {
		return "no workers"
	}
	for _, pid := range workers {
		b, err := os.ReadFile("/proc/" + itoa(pid) + "/status")
		if err != nil {
			return err.Error()
		}
		var real, eff, saved int
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Uid:") {
				fmt.Sscan(strings.TrimPrefix(line, "Uid:"), &real, &eff, &saved)
			}
		}
		if real != uid || eff != uid || saved != uid {
			return fmt.Sprintf("worker %d runs with uids %d/%d/%d, want %d", pid, real, eff, saved, uid)
		}
	}
	return ""
}

// fcgiGetValues sends FCGI_GET_VALUES (a management record every FastCGI
// server answers without running a script) and returns the reply body. It
// proves that a FastCGI server, not just a socket, is listening.
func fcgiGetValues(t *testing.T, addr string) []byte {
	t.Helper()
	network, address := splitAddr(addr)
	c, err := net.DialTimeout(network, address, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	name := "FCGI_MPXS_CONNS"
	body := append([]byte{byte(len(name)), 0}, name...)
	hdr := []byte{1, 9, 0, 0, 0, byte(len(body)), 0, 0} // version 1, FCGI_GET_VALUES, request id 0
	binary.BigEndian.PutUint16(hdr[4:], uint16(len(body)))
	if _, err := c.Write(append(hdr, body...)); err != nil {
		t.Fatal(err)
	}
	var rh [8]byte
	if _, err := io.ReadFull(c, rh[:]); err != nil {
		t.Fatalf("no FCGI_GET_VALUES reply from %s: %v", addr, err)
	}
	if rh[1] != 10 { // FCGI_GET_VALUES_RESULT
		t.Fatalf("reply type %d, want 10", rh[1])
	}
	reply := make([]byte, int(binary.BigEndian.Uint16(rh[4:]))+int(rh[6]))
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatal(err)
	}
	return reply
}

func alive(pid int) bool {
	// Signal 0 also succeeds on zombies; a reaped or never-existing pid fails.
	return syscall.Kill(pid, 0) == nil && !isZombie(pid)
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

func TestPHPFPMLifecycle(t *testing.T) {
	Require(t, "php-fpm8.2")
	f := StartPHPFPM(t, PHPFPMOptions{DocRoot: t.TempDir(), Children: 2, MaxRequests: 10})
	if !strings.HasPrefix(f.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q", f.Addr)
	}
	if got := fcgiGetValues(t, f.Addr); !bytes.Contains(got, []byte("FCGI_MPXS_CONNS")) {
		t.Fatalf("FCGI_GET_VALUES reply %q", got)
	}
	old := f.Workers()
	if len(old) != 2 {
		t.Fatalf("workers %v, want 2", old)
	}
	if killed := f.KillWorkers(); len(killed) != 2 {
		t.Fatalf("KillWorkers killed %v, want 2 workers", killed)
	}
	f.WaitWorkers(old, 10*time.Second)
	for _, pid := range old {
		if alive(pid) {
			t.Errorf("killed worker %d still alive", pid)
		}
	}

	master, workers := f.PID(), f.Workers()
	addr := f.Addr
	f.Restart()
	if f.Addr != addr {
		t.Fatalf("address changed on restart: %s -> %s", addr, f.Addr)
	}
	if f.PID() == master {
		t.Fatal("Restart kept the old master")
	}
	for _, pid := range append(workers, master) {
		if alive(pid) {
			t.Errorf("process %d of the stopped master still alive", pid)
		}
	}
	fcgiGetValues(t, f.Addr)

	f.Stop()
	if err := dialOnce(f.Addr); err == nil {
		t.Fatal("php-fpm still accepting after Stop")
	}
	f.Stop() // idempotent
}

func TestPHPFPMUnixSocket(t *testing.T) {
	Require(t, "php-fpm8.2")
	f := StartPHPFPM(t, PHPFPMOptions{Unix: true, Children: 1})
	if !strings.HasPrefix(f.Addr, "unix:/") {
		t.Fatalf("Addr = %q", f.Addr)
	}
	fcgiGetValues(t, f.Addr)
}

func TestPHPFPMBadConfigFailsWithLog(t *testing.T) {
	Require(t, "php-fpm8.2")
	msg := runFake(t, func(tb testing.TB) {
		// A broken php_admin_value line makes php-fpm refuse its config.
		StartPHPFPM(tb, PHPFPMOptions{AdminValues: map[string]string{"x\n[bad": "1"}})
	})
	if !strings.Contains(msg, "php-fpm did not start") || !strings.Contains(msg, "ERROR") {
		t.Fatalf("unexpected message: %q", msg)
	}
}

func TestRedisLifecycle(t *testing.T) {
	Require(t, "redis-server")
	r := StartRedis(t)
	if r.URL() != "redis://"+r.Addr+"/0" {
		t.Fatalf("URL = %q", r.URL())
	}
	if got, err := r.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	if _, err := r.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Do("CONFIG", "GET", "save"); err != nil || got != "save\n" {
		t.Fatalf("CONFIG GET save = %q, %v (want persistence off)", got, err)
	}
	r.Stop()
	if _, err := r.Do("PING"); err == nil {
		t.Fatal("redis still answering after Stop")
	}
	r.Start()
	if got, err := r.Do("GET", "k"); err != nil || got != "" {
		t.Fatalf("GET k after restart = %q, %v (want empty: no persistence)", got, err)
	}
	if _, err := r.Do("NOSUCHCOMMAND"); err == nil {
		t.Fatal("error reply not returned as error")
	}
}

func TestRedisCluster(t *testing.T) {
	Require(t, "redis-server", "redis-cli")
	c := StartRedisCluster(t)
	if len(c.Addrs) != 3 {
		t.Fatalf("Addrs = %v", c.Addrs)
	}
	want := "redis://" + c.Addrs[0] + "?addr=" + c.Addrs[1] + "&addr=" + c.Addrs[2]
	if c.URL() != want {
		t.Fatalf("URL = %q, want %q", c.URL(), want)
	}
	masters := 0
	nodes, err := c.Nodes[0].Do("CLUSTER", "NODES")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(nodes, "\n") {
		if strings.Contains(line, "master") {
			masters++
		}
	}
	if masters != 3 {
		t.Fatalf("%d masters in CLUSTER NODES:\n%s", masters, nodes)
	}
	// A key on the wrong node is redirected: proof that slots are split.
	moved := 0
	for _, n := range c.Nodes {
		if _, err := n.Do("SET", "{user1000}.k", "v"); err != nil && strings.Contains(err.Error(), "MOVED") {
			moved++
		}
	}
	if moved != 2 {
		t.Fatalf("%d of 3 nodes redirected the key, want 2", moved)
	}
}

func TestRedisSentinel(t *testing.T) {
	Require(t, "redis-server")
	r := StartRedis(t)
	sentinel := StartRedisSentinel(t, r.Addr)
	host, port, _ := strings.Cut(r.Addr, ":")
	if got, err := redisDo(sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"); err != nil || got != host+"\n"+port {
		t.Fatalf("the sentinel's master = %q, %v; want %s", got, err, r.Addr)
	}
}

func TestGunicorn(t *testing.T) {
	Require(t, "gunicorn")
	dir := t.TempDir()
	app := `import os
def application(environ, start_response):
    body = ("hello from wsgi " + os.environ.get("SG_TEST", "")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`
	if err := os.WriteFile(filepath.Join(dir, "tinyapp.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	// A PYTHONPATH pointing nowhere useful must not break the system python.
	t.Setenv("PYTHONHOME", "/nonexistent")
	g := StartGunicorn(t, GunicornOptions{Dir: dir, App: "tinyapp:application", Env: []string{"SG_TEST=env-ok"}, Workers: 1})
	resp, err := http.Get(g.URL() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != "hello from wsgi env-ok" {
		t.Fatalf("GET = %d %q", resp.StatusCode, body)
	}
	g.Stop()
	if _, err := http.Get(g.URL() + "/"); err == nil {
		t.Fatal("gunicorn still answering after Stop")
	}
}

func TestGunicornBadAppFailsWithLog(t *testing.T) {
	Require(t, "gunicorn")
	msg := runFake(t, func(tb testing.TB) {
		StartGunicorn(tb, GunicornOptions{Dir: t.TempDir(), App: "no_such_module:application", Workers: 1})
	})
	if !strings.Contains(msg, "gunicorn did not start") || !strings.Contains(msg, "no_such_module") {
		t.Fatalf("unexpected message: %q", msg)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func fmtArgs(args ...any) string { return fmt.Sprintln(args...) }

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// TestGunicornUsesDebianDjango guards the interpreter choice: the WSGI app
// imports django, which only Debian's /usr/bin/python3 has here (a pyenv
// python3 first on PATH does not).
func TestGunicornUsesDebianDjango(t *testing.T) {
	Require(t, "gunicorn", "django")
	dir := t.TempDir()
	app := `import sys, django
def application(environ, start_response):
    body = ("%s %d" % (sys.executable, django.VERSION[0])).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
`
	if err := os.WriteFile(filepath.Join(dir, "djapp.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	g := StartGunicorn(t, GunicornOptions{Dir: dir, App: "djapp:application", Workers: 1, Threads: 2})
	resp, err := http.Get(g.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "/usr/bin/python3 ") {
		t.Fatalf("app runs under %q, want /usr/bin/python3 with django", body)
	}
}

// TestPortTakenIsRecognised holds the log messages retryPortRace relies on
// to the real servers: a port taken between FreePort and bind is retried,
// any other failure is not.
func TestPortTakenIsRecognised(t *testing.T) {
	Require(t, "php-fpm8.2", "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	dir := t.TempDir()
	f := &PHPFPM{
		Addr: "127.0.0.1:" + itoa(taken), ConfPath: filepath.Join(dir, "php-fpm.conf"),
		LogPath: filepath.Join(dir, "php-fpm.log"), server: server{t: t}, bin: Bin(t, "php-fpm8.2"), children: 1,
	}
	f.launch = f.launchProc
	t.Cleanup(f.Stop)
	if err := os.WriteFile(f.ConfPath, []byte(phpFPMConf(dir, f.Addr, mustPoolUser(t), PHPFPMOptions{Children: 1})), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.start(); err == nil {
		t.Fatal("php-fpm started on a taken port")
	}
	if !portTaken(f.LogPath+".stderr", f.LogPath) {
		t.Fatalf("php-fpm's complaint not recognised:\n%s", tailLogs(2048, f.LogPath+".stderr", f.LogPath))
	}

	r := newRedis(t, false)
	r.port, r.Addr = taken, "127.0.0.1:"+itoa(taken)
	if err := r.start(); err == nil {
		t.Fatal("redis-server started on a taken port")
	}
	if !portTaken(r.LogPath+".stderr", r.LogPath) {
		t.Fatalf("redis-server's complaint not recognised:\n%s", tailLogs(2048, r.LogPath+".stderr", r.LogPath))
	}

	// A failure that is not about the port is not retried.
	calls := 0
	err = retryPortRace(func() error { calls++; return errors.New("boom") }, filepath.Join(dir, "none.log"))
	if err == nil || calls != 1 {
		t.Fatalf("retryPortRace: %d calls, err %v", calls, err)
	}
}

func mustPoolUser(t *testing.T) string {
	t.Helper()
	lines, err := poolUserLines()
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestNginx(t *testing.T) {
	n := StartNginx(t, 2, func(addrs []string) string {
		var b strings.Builder
		for i, a := range addrs {
			fmt.Fprintf(&b, "server { listen %s; location / { return 200 \"server %d\"; } }\n", a, i)
		}
		return b.String()
	})
	for i, a := range n.Addrs {
		resp, err := http.Get("http://" + a + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != fmt.Sprintf("server %d", i) {
			t.Fatalf("GET %s = %q, %v", a, body, err)
		}
	}
	// Run as root, the workers run as php-fpm's do (the master stays root).
	want := os.Geteuid()
	if want == 0 {
		w, err := workerAccount()
		if err != nil {
			t.Fatal(err)
		}
		want = w.uid
	}
	n.mu.Lock()
	workers := childrenOf(n.p.cmd.Process.Pid)
	n.mu.Unlock()
	if bad := workersNotRunningAs(workers, want); bad != "" {
		t.Error(bad)
	}
	n.Stop()
	if _, err := http.Get("http://" + n.Addrs[0] + "/"); err == nil {
		t.Fatal("nginx still answering after Stop")
	}
}

func TestNginxBadConfigFailsWithLog(t *testing.T) {
	msg := runFake(t, func(tb testing.TB) {
		StartNginx(tb, 1, func(addrs []string) string { return "server { listen " + addrs[0] + "; no_such_directive on; }" })
	})
	if !strings.Contains(msg, "no_such_directive") {
		t.Fatalf("failure does not quote nginx's complaint: %q", msg)
	}
}

// TestWaitAcceptNotFooledByAnotherListener: a server started on a port that
// some other process took meanwhile is not ready because the port answers;
// it exits on "address already in use", and the start must say so (so that
// retryPortRace picks another port) instead of handing the test someone
// else's server.
func TestWaitAcceptNotFooledByAnotherListener(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	addr := other.Addr().String()
	// Stands for a server that fails to bind: it lives a moment, holds no
	// socket, and exits.
	p, err := startProc("would-be server "+addr, exec.Command("sleep", "0.5"), filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop(time.Second)
	if err := waitAccept(addr, 5*time.Second, p); !errors.Is(err, errExited) {
		t.Fatalf("waitAccept = %v, want errExited: the port answered from another process", err)
	}
}

// TestWaitAcceptOwnListener: a server that holds its port is ready.
func TestWaitAcceptOwnListener(t *testing.T) {
	Require(t, "python3")
	port := FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	script := fmt.Sprintf("import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',%d))\ns.listen()\ntime.sleep(30)\n", port)
	p, err := startProc("python listener "+addr, exec.Command("python3", "-c", script), filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop(time.Second)
	if err := waitAccept(addr, 10*time.Second, p); err != nil {
		t.Fatalf("waitAccept: %v", err)
	}
}

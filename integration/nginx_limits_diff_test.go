package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// openFDs counts the file descriptors pid has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// limitFDs sets pid's soft RLIMIT_NOFILE to n, and returns what puts it
// back. The hard limit stays: without CAP_SYS_RESOURCE nobody may raise
// one again.
func limitFDs(t *testing.T, pid, n int) (restore func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatalf("prlimit %d: %v", pid, err)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(n), Max: old.Max}, nil); err != nil {
		t.Fatalf("prlimit %d: %v", pid, err)
	}
	return func() {
		if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
			t.Errorf("prlimit %d: %v", pid, err)
		}
	}
}

// cpuTicks is the user plus system time pid has used, in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fs := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(fs[11])
	s, _ := strconv.Atoi(fs[12])
	return u + s
}

// keptConn is one HTTP/1.1 client connection requests go over one after
// the other.
type keptConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialKept(t *testing.T, addr string) *keptConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keptConn{c, bufio.NewReader(c)}
}

// do sends request and returns the answer's status and body ("-1 error"
// when none came).
func (k *keptConn) do(request string) (int, string) {
	k.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(k.c, request); err != nil {
		return -1, err.Error()
	}
	res, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return -1, err.Error()
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return -1, err.Error()
	}
	return res.StatusCode, string(b)
}

// nginxWorkerPID returns the pid of the one worker of ng.
func nginxWorkerPID(t *testing.T, ng *harness.Nginx) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(ng.ConfPath), "nginx.pid"))
	if err != nil {
		t.Fatal(err)
	}
	master := strings.TrimSpace(string(b))
	var pid int
	eventually(t, 10*time.Second, "nginx's worker", func() bool {
		c, _ := os.ReadFile("/proc/" + master + "/task/" + master + "/children")
		fs := strings.Fields(string(c))
		if len(fs) != 1 {
			return false
		}
		pid, _ = strconv.Atoi(fs[0])
		return true
	})
	return pid
}

// fdsTo returns the numbers of pid's file descriptors that are TCP
// connections to port.
func fdsTo(t *testing.T, pid int, port string) []int {
	t.Helper()
	inodes := map[string]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) > 9 && strings.HasSuffix(fs[2], fmt.Sprintf(":%04X", mustAtoi(t, port))) {
				inodes[fs[9]] = true
			}
		}
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range ents {
		l, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if strings.HasPrefix(l, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] {
			fds = append(fds, mustAtoi(t, e.Name()))
		}
	}
	return fds
}

// lowestFreeFD returns the lowest file descriptor number pid does not use.
func lowestFreeFD(t *testing.T, pid int) int {
	t.Helper()
	for fd := 0; ; fd++ {
		if _, err := os.Lstat(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); err != nil {
			return fd
		}
	}
}

// rssKiB is pid's resident memory.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return mustAtoi(t, strings.Fields(v)[0])
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// TestSlowHeadsNearTheLimitMemory: 200 clients that each send request
// headers just under SESSIONGATE_MAX_HEADER_BYTES at its default, in one
// field, and never end them, cost the gateway less than 128 MiB while
// SESSIONGATE_READ_HEADER_TIMEOUT runs, and a page is served meanwhile.
// nginx's large_client_header_buffers (4 of 8 KiB) hold such a client to
// 32 KiB. The default was 1m, which net/http reads as a line it grows by
// copies: 200 such clients took 494 MiB (2.5 MiB each, for 1 MB sent), a
// thousand would have the gateway killed for memory. 200 chunked uploads
// below SESSIONGATE_MAX_BODY stopped mid-body hold their 64 KiB of memory
// each at most (README), the rest going to temp files.
func TestSlowHeadsNearTheLimitMemory(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	defaults, err := config.Load([]string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_SESSIONS=off"})
	if err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_READ_HEADER_TIMEOUT=60s", "SESSIONGATE_READ_TIMEOUT=60s", "SESSIONGATE_MAX_BODY=1m",
	})
	addr, pid := strings.TrimPrefix(p.URL, "http://"), p.cmd.Process.Pid
	const clients = 200
	hold := func(what string, limitKiB int, request string) {
		t.Helper()
		base := rssKiB(t, pid)
		var wg sync.WaitGroup
		for range clients {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.WriteString(c, request); err != nil {
					t.Errorf("%s: %v", what, err)
				}
			}()
		}
		wg.Wait()
		time.Sleep(500 * time.Millisecond) // the last reads
		grew := rssKiB(t, pid) - base
		t.Logf("%d clients holding %s: RSS up %d KiB", clients, what, grew)
		if grew > limitKiB {
			t.Errorf("%d clients holding %s: the gateway's RSS grew %d KiB, want under %d", clients, what, grew, limitKiB)
		}
		if res, err := http.Get(p.URL + "/style.css"); err != nil || res.StatusCode != 200 {
			t.Errorf("a page while %d clients hold %s: %v %v", clients, what, res, err)
		} else {
			res.Body.Close()
		}
	}
	hold("a chunked upload of 60 KiB", 64<<10,
		"POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+fmt.Sprintf("%x\r\n%s\r\n", 60<<10, strings.Repeat("u", 60<<10)))
	field := int(defaults.MaxHeaderBytes) - 100
	hold(fmt.Sprintf("a head of %d bytes (default SESSIONGATE_MAX_HEADER_BYTES %v)", field, defaults.MaxHeaderBytes), 128<<10,
		"GET /info.php HTTP/1.1\r\nHost: x\r\nX-A: "+strings.Repeat("a", field))
}

// limitDiff is one case of TestLimitsNginxDiff whose outcome differs:
// what the gateway and nginx did.
type limitDiff struct{ name, gw, ng string }

// limitsKnownDiffs are the differences README describes.
var limitsKnownDiffs = []knownDiff[limitDiff]{
	{"a head the timeout cuts in its request line gets a 408 answer (nginx: none); both log 408", func(d limitDiff) bool {
		return d.name == "slow request line" && d.gw == "answer 408, logged 408" && d.ng == "no answer, logged 408"
	}},
	{"a body that stalls past the timeout gets a 408 answer (nginx: none); both log 408", func(d limitDiff) bool {
		return d.name == "stalled body" && d.gw == "answer 408, logged 408" && d.ng == "no answer, logged 408"
	}},
	{"no keepalive_requests: a kept-alive connection is never closed for its number of requests (nginx: after 1000)", func(d limitDiff) bool {
		return d.name == "1100 requests on one connection" && d.gw == "1100 served" && d.ng == "1000 served"
	}},
	{"SESSIONGATE_MAX_HEADER_BYTES bounds the whole head, not each line: a 9 KiB field passes (nginx: 400, a line over one 8k buffer)", func(d limitDiff) bool {
		return d.name == "a 9 KiB field" && d.gw == "answer 200, logged 200" && d.ng == "answer 400, logged 400"
	}},
	{"a 9 KiB URL passes (nginx: 414, a request line over one 8k buffer)", func(d limitDiff) bool {
		return d.name == "a 9 KiB URL" && d.gw == "answer 200, logged 200" && d.ng == "answer 414, logged 414"
	}},
	{"a head over the limit gets 431 (nginx: 400)", func(d limitDiff) bool {
		return (d.name == "35 KiB of fields" || d.name == "a 33 KiB field") && d.gw == "answer 431, logged 431" && d.ng == "answer 400, logged 400"
	}},
	{"more than 100 fields get 431 (nginx: 400 past its buffers)", func(d limitDiff) bool {
		return d.name == "3000 short fields" && d.gw == "answer 431, logged 431" && d.ng == "answer 400, logged 400"
	}},
}

// TestLimitsNginxDiff: what each front does with clients that are slow,
// idle, stop reading or send too much, with the gateway's timeouts set as
// nginx's (client_header_timeout, client_body_timeout, keepalive_timeout
// 1 s; send_timeout 2 s against SESSIONGATE_SEND_TIMEOUT),
// large_client_header_buffers 4 8k against SESSIONGATE_MAX_HEADER_BYTES=32k,
// client_max_body_size 1m, in front of one php-fpm. Each case: the answer
// (or none), and the status each front logs for it (the gateway's log,
// nginx's access log), found by the client's port.
func TestLimitsNginxDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "nginx")
	root := gwSite(t)
	const bigPHP = 8 << 20
	writeTree(t, root, map[string]string{
		"hello.php": `<?php echo 'hello';`,
		"big.php":   fmt.Sprintf(`<?php echo str_repeat('b', %d);`, bigPHP),
	})
	const bigFile = 16 << 20
	if err := os.WriteFile(filepath.Join(root, "huge.bin"), make([]byte, bigFile), 0o644); err != nil {
		t.Fatal(err)
	}
	// The gateway's idle kept-alive connections pin two workers; nginx
	// (no keepalive) needs its own.
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 6})
	logDir := t.TempDir()
	harness.ShareWithPHP(t, logDir)
	accessLog := filepath.Join(logDir, "access.log")
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return "    log_format byport '$remote_port $status';\n" + nginxPHPShop(addrs[0], root, fpm.Addr, `access_log `+accessLog+` byport;
        client_header_timeout 1s; client_body_timeout 1s; send_timeout 2s; keepalive_timeout 1s;`, "")
	})
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_ACCESS_LOG=on", "SESSIONGATE_READ_HEADER_TIMEOUT=1s", "SESSIONGATE_READ_TIMEOUT=1s",
		"SESSIONGATE_IDLE_TIMEOUT=1s", "SESSIONGATE_SEND_TIMEOUT=2s", "SESSIONGATE_MAX_HEADER_BYTES=32k",
		"SESSIONGATE_MAX_BODY=1m", "SESSIONGATE_PHP_MAX_CONNS=2",
	})
	// logged returns the status the front logged last for the client
	// port, or "none" after 3 s.
	gwLogged := func(port int) string {
		var status string
		poll(3*time.Second, func() bool {
			for l := range strings.SplitSeq(gw.stderr.String(), "\n") {
				if strings.Contains(l, fmt.Sprintf(`"remote":"127.0.0.1:%d"`, port)) {
					if _, after, ok := strings.Cut(l, `"status":`); ok {
						status = after[:3]
					}
				}
			}
			return status != ""
		})
		if status == "" {
			return "none"
		}
		return status
	}
	ngLogged := func(port int) string {
		var status string
		poll(3*time.Second, func() bool {
			b, _ := os.ReadFile(accessLog)
			for l := range strings.SplitSeq(string(b), "\n") {
				if p, st, ok := strings.Cut(l, " "); ok && p == strconv.Itoa(port) {
					status = st
				}
			}
			return status != ""
		})
		if status == "" {
			return "none"
		}
		return status
	}

	// Each case gets a fresh connection and returns what it saw.
	type limitCase struct {
		name string
		run  func(c net.Conn) string
	}
	// answer reads what comes until the front closes (15 s at most):
	// "answer NNN" or "no answer".
	answer := func(c net.Conn) string {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		b, _ := io.ReadAll(c)
		if code := statusOf(string(b)); code != 0 {
			return fmt.Sprintf("answer %d", code)
		}
		return "no answer"
	}
	trickle := func(c net.Conn, s string, every time.Duration) {
		for i := range len(s) {
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
			time.Sleep(every)
		}
	}
	unread := func(path string, size int) func(c net.Conn) string {
		return func(c net.Conn) string {
			c.(*net.TCPConn).SetReadBuffer(4096)
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			r := bufio.NewReader(c)
			res, err := http.ReadResponse(r, nil)
			if err != nil {
				return err.Error()
			}
			time.Sleep(5 * time.Second) // past the 2 s either front waits for a write
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			n, _ := io.Copy(io.Discard, res.Body)
			if int(n) < size {
				return fmt.Sprintf("answer %d, cut", res.StatusCode)
			}
			return fmt.Sprintf("answer %d, whole", res.StatusCode)
		}
	}
	head := func(req string) func(c net.Conn) string {
		return func(c net.Conn) string {
			io.WriteString(c, req)
			return answer(c)
		}
	}
	cases := []limitCase{
		{"slow field value", func(c net.Conn) string {
			io.WriteString(c, "GET /hello.php HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			go trickle(c, strings.Repeat("a", 50), 200*time.Millisecond)
			return answer(c)
		}},
		// The head came with the request before (pipelined): net/http
		// had it in its buffer, and the gateway logged nothing when it
		// timed out in a field value.
		{"pipelined head cut in a field value", func(c net.Conn) string {
			io.WriteString(c, "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.php HTTP/1.1\r\nHost: x\r\nX-Slow: a")
			r := bufio.NewReader(c)
			res, err := http.ReadResponse(r, nil)
			if err != nil {
				return err.Error()
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			b, _ := io.ReadAll(r)
			// The front logs it as it closes: not before the client
			// sees the close.
			time.Sleep(300 * time.Millisecond)
			if code := statusOf(string(b)); code != 0 {
				return fmt.Sprintf("answer %d after a 200", code)
			}
			return "no answer after a 200"
		}},
		{"slow request line", func(c net.Conn) string {
			go trickle(c, "GET /hello.php?"+strings.Repeat("a", 50), 200*time.Millisecond)
			return answer(c)
		}},
		{"body a byte every 400 ms", func(c net.Conn) string {
			io.WriteString(c, "POST /echo.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n")
			trickle(c, "0123456789", 400*time.Millisecond)
			return answer(c)
		}},
		{"stalled body", head("POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")},
		{"idle kept-alive connection", func(c net.Conn) string {
			io.WriteString(c, "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return err.Error()
			}
			res.Body.Close()
			start := time.Now()
			if a := answer(c); a != "no answer" {
				return "after a 200, " + a
			}
			return fmt.Sprintf("closed within 3 s: %v", time.Since(start) < 3*time.Second)
		}},
		{"1100 requests on one connection", func(c net.Conn) string {
			k := &keptConn{c, bufio.NewReader(c)}
			n := 0
			for range 1100 {
				if code, _ := k.do("GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n"); code != 200 {
					break
				}
				n++
			}
			return fmt.Sprintf("%d served", n)
		}},
		{"a 9 KiB field", head("GET /hello.php HTTP/1.1\r\nHost: x\r\nX-A: " + strings.Repeat("a", 9<<10) + "\r\nConnection: close\r\n\r\n")},
		{"a 9 KiB URL", head("GET /hello.php?" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")},
		{"a 40 KiB URL", head("GET /hello.php?" + strings.Repeat("a", 40<<10) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")},
		{"28 KiB of fields", head("GET /hello.php HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: "+strings.Repeat("a", 7<<10)+"\r\n", 4) + "Connection: close\r\n\r\n")},
		{"35 KiB of fields", head("GET /hello.php HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: "+strings.Repeat("a", 7<<10)+"\r\n", 5) + "Connection: close\r\n\r\n")},
		{"a 33 KiB field", head("GET /hello.php HTTP/1.1\r\nHost: x\r\nX-A: " + strings.Repeat("a", 33<<10) + "\r\nConnection: close\r\n\r\n")},
		{"3000 short fields", head("GET /hello.php HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: a\r\n", 3000) + "Connection: close\r\n\r\n")},
		{"a 2 MB body over client_max_body_size", head("POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n")},
		{"an 8 MiB PHP page not read", unread("/big.php", bigPHP)},
		{"a 16 MiB file not read", unread("/huge.bin", bigFile)},
	}
	type front struct {
		addr   string
		logged func(port int) string
	}
	fronts := []front{{strings.TrimPrefix(gw.URL, "http://"), gwLogged}, {ng.Addrs[0], ngLogged}}
	results := make([][]string, len(fronts))
	var wg sync.WaitGroup
	for i, f := range fronts {
		results[i] = make([]string, len(cases))
		for j, tc := range cases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", f.addr)
				if err != nil {
					results[i][j] = err.Error()
					return
				}
				got := tc.run(c)
				// nginx logs a request it refused once the client
				// closes (lingering close).
				c.Close()
				if strings.HasPrefix(got, "answer") || strings.HasPrefix(got, "no answer") {
					got += ", logged " + f.logged(c.LocalAddr().(*net.TCPAddr).Port)
				}
				results[i][j] = got
			}()
		}
	}
	wg.Wait()
	var diffs []limitDiff
	for j, tc := range cases {
		t.Logf("%s: gateway %s; nginx %s", tc.name, results[0][j], results[1][j])
		if results[0][j] != results[1][j] {
			diffs = append(diffs, limitDiff{tc.name, results[0][j], results[1][j]})
		}
	}
	seen := map[string]int{}
	judgeDiffs(t, diffs, limitsKnownDiffs, seen, "")
	knownAllSeen(t, limitsKnownDiffs, seen)
	if t.Failed() {
		b, _ := os.ReadFile(accessLog)
		t.Logf("nginx error log:\n%s\naccess log:\n%s", ng.Log(), b)
	}
}

// fdKnownDiffs are the differences README describes when file
// descriptors run out.
var fdKnownDiffs = []knownDiff[limitDiff]{
	{"a PHP page goes out on a php-fpm connection the gateway keeps, where nginx (no fastcgi keepalive) must open one: 500", func(d limitDiff) bool {
		return d.name == "PHP page" && d.gw == "200" && d.ng == "500"
	}},
}

// TestFDExhaustionNginxDiff: each front runs out of file descriptors
// (the gateway's RLIMIT_NOFILE lowered to what it holds plus 3, nginx's
// worker_rlimit_nofile 64) while 80 more clients connect. Both log the
// failed accepts and retry without spinning (under 0.5 s of CPU in 2 s);
// on connections accepted before, a static file and a chunked upload
// (whose temp file cannot be made) get 500 with the error logged, never a
// 404 or a silent drop. Once the clients leave, both serve again. Then,
// for the gateway alone, with its php-fpm and Redis connections gone and
// no descriptor to open new ones: a PHP page gets 500 (as from nginx,
// whose socket() fails; it was a 502, which blames php-fpm) and a session
// page 503, each logged with the error, and both work again once
// descriptors are free.
func TestFDExhaustionNginxDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "redis-server", "nginx")
	root := sessionFixtureRoot(t)
	writeTree(t, root, map[string]string{
		"echo.php":  `<?php echo 'len=' . strlen(file_get_contents('php://input'));`,
		"hello.php": `<?php echo 'hello';`,
		"style.css": "body { color: red; }\n",
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 6})
	red := harness.StartRedis(t)
	ng := harness.StartNginxMain(t, "worker_rlimit_nofile 64;\n", 1, func(addrs []string) string {
		return nginxPHPShop(addrs[0], root, fpm.Addr, "", "")
	})
	gw := startBinary(t, buildGateway(t), append(drainSessionEnv(t, fpm, root, red),
		"SESSIONGATE_PHP_MAX_CONNS=2", "SESSIONGATE_ACCESS_LOG=on", "SESSIONGATE_READ_HEADER_TIMEOUT=60s",
	))
	gwAddr, gwPID := strings.TrimPrefix(gw.URL, "http://"), gw.cmd.Process.Pid
	ck := (&sessionStack{gws: []*sessionGW{{URL: gw.URL}}}).newSession(t)
	cases := []struct{ name, req string }{
		{"static file", "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"chunked upload of 100 KiB", "POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 100<<10, strings.Repeat("u", 100<<10))},
		{"PHP page", "GET /hello.php HTTP/1.1\r\nHost: x\r\n\r\n"},
	}
	type front struct {
		name, addr string
		pid        int
		limit      func() (restore func())
		log        func() string
		acceptErr  string // what the log says of a failed accept
		openErr    string // of any other open
	}
	fronts := []front{
		{"gateway", gwAddr, gwPID, func() func() { return limitFDs(t, gwPID, openFDs(t, gwPID)+3) },
			gw.stderr.String, "accept4: too many open files", "too many open files"},
		{"nginx", ng.Addrs[0], nginxWorkerPID(t, ng), func() func() { return func() {} },
			ng.Log, "accept4() failed (24: Too many open files)", "(24: Too many open files)"},
	}
	results := make([][]string, len(fronts))
	for i, f := range fronts {
		var kept []*keptConn
		for range cases {
			k := dialKept(t, f.addr)
			if code, body := k.do("GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n"); code != 200 {
				t.Fatalf("%s before: %d %s", f.name, code, body)
			}
			kept = append(kept, k)
		}
		restore := f.limit()
		var clients []net.Conn
		for range 80 {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
		}
		if _, ok := textWhen(f.log, func(s string) bool { return strings.Contains(s, f.acceptErr) }); !ok {
			t.Errorf("%s: no %q in the log with 80 clients past its descriptors", f.name, f.acceptErr)
		}
		ticks := cpuTicks(t, f.pid)
		logBefore := len(f.log())
		failed := 0
		for j, tc := range cases {
			code, body := kept[j].do(tc.req)
			results[i] = append(results[i], strconv.Itoa(code))
			switch code {
			case 500:
				failed++
			case 200:
			default:
				t.Errorf("%s: %s with no descriptor left: %d %.100q, want 500", f.name, tc.name, code, body)
			}
		}
		time.Sleep(2 * time.Second)
		if used := cpuTicks(t, f.pid) - ticks; used > 50 {
			t.Errorf("%s used %d clock ticks of CPU in 2 s with no descriptor left, want under 50 (no busy loop)", f.name, used)
		}
		// Each 500 has its line naming the error, besides the accepts'.
		named := 0
		for l := range strings.SplitSeq(f.log()[logBefore:], "\n") {
			if strings.Contains(l, f.openErr) && !strings.Contains(l, "ccept") {
				named++
			}
		}
		if named < failed {
			t.Errorf("%s: %d log lines naming %q for %d answers 500:\n%s", f.name, named, f.openErr, failed, f.log()[logBefore:])
		}
		for _, c := range clients {
			c.Close()
		}
		for _, k := range kept {
			k.c.Close()
		}
		for _, path := range []string{"/style.css", "/hello.php"} {
			var code int
			var body string
			poll(5*time.Second, func() bool {
				c, err := net.DialTimeout("tcp", f.addr, time.Second)
				if err != nil {
					return false
				}
				k := &keptConn{c, bufio.NewReader(c)}
				code, body = k.do("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				c.Close()
				return code == 200
			})
			if code != 200 {
				t.Errorf("%s: %s once the clients left: %d %.100q", f.name, path, code, body)
			}
		}
		restore()
	}
	var diffs []limitDiff
	for j, tc := range cases {
		t.Logf("%s with no descriptor left: gateway %s, nginx %s", tc.name, results[0][j], results[1][j])
		if results[0][j] != results[1][j] {
			diffs = append(diffs, limitDiff{tc.name, results[0][j], results[1][j]})
		}
	}
	seen := map[string]int{}
	judgeDiffs(t, diffs, fdKnownDiffs, seen, "")
	knownAllSeen(t, fdKnownDiffs, seen)

	// The gateway's connections to php-fpm and Redis closed; the
	// descriptor limit put under the lowest it may reuse.
	var kept []*keptConn
	for range 2 {
		kept = append(kept, dialKept(t, gwAddr))
	}
	_, fpmPort, _ := net.SplitHostPort(fpm.Addr)
	_, redPort, _ := net.SplitHostPort(red.Addr)
	low := lowestFreeFD(t, gwPID)
	for _, fd := range append(fdsTo(t, gwPID, fpmPort), fdsTo(t, gwPID, redPort)...) {
		low = min(low, fd)
	}
	restore := limitFDs(t, gwPID, low)
	red.Do("CLIENT", "KILL", "TYPE", "normal")
	workers := fpm.Workers()
	fpm.KillWorkers()
	fpm.WaitWorkers(workers, 5*time.Second)
	for i, tc := range []struct {
		what, req string
		code      int
	}{
		{"a PHP page with no php-fpm connection", "GET /hello.php HTTP/1.1\r\nHost: x\r\n\r\n", 500},
		{"a session page with no Redis connection", "GET /counter.php HTTP/1.1\r\nHost: x\r\nCookie: sessionid=" + ck + "\r\n\r\n", 503},
	} {
		logBefore := len(gw.stderr.String())
		code, body := kept[i].do(tc.req)
		line, _ := logLine(gw.stderr, `"remote":"`+kept[i].c.LocalAddr().String()+`"`)
		if code != tc.code || !strings.Contains(line, "too many open files") || !strings.Contains(gw.stderr.String()[logBefore:], line) {
			t.Errorf("%s, no descriptor to dial one: %d %.100q, logged %s; want %d and the error logged", tc.what, code, body, line, tc.code)
		}
	}
	restore()
	for _, path := range []string{"/hello.php", "/counter.php"} {
		k := dialKept(t, gwAddr)
		if code, body := k.do("GET " + path + " HTTP/1.1\r\nHost: x\r\nCookie: sessionid=" + ck + "\r\n\r\n"); code != 200 {
			t.Errorf("%s with descriptors free again: %d %.100q", path, code, body)
		}
	}
}

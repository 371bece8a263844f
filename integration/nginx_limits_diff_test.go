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

// limitFDs lowers pid's RLIMIT_NOFILE, soft and hard, to n (a process
// may not raise its hard limit back).
func limitFDs(t *testing.T, pid, n int) {
	t.Helper()
	lim := unix.Rlimit{Cur: uint64(n), Max: uint64(n)}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatalf("prlimit %d: %v", pid, err)
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

package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

// startActivated runs the gateway binary as systemd's socket activation
// does: the listening socket ln as file descriptor 3, LISTEN_FDS=1 and
// LISTEN_PID its own pid (the shell that sets it execs the gateway, which
// keeps the pid), SESSIONGATE_LISTEN naming ln's address.
func startActivated(t *testing.T, ln *net.TCPListener, env []string) *gwProc {
	t.Helper()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return startOnFreePorts(t, func() *gwProc {
		admin := harness.FreePort(t)
		p := &gwProc{stderr: &testlog.Buffer{}, done: make(chan struct{}),
			URL: "http://" + ln.Addr().String(), Admin: fmt.Sprintf("http://127.0.0.1:%d", admin)}
		p.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0"`, buildGateway(t))
		p.cmd.ExtraFiles = []*os.File{f}
		p.cmd.Env = append([]string{
			"LISTEN_FDS=1",
			"SESSIONGATE_LISTEN=" + ln.Addr().String(),
			fmt.Sprintf("SESSIONGATE_ADMIN_LISTEN=127.0.0.1:%d", admin),
			"PATH=" + os.Getenv("PATH"),
		}, env...)
		return p
	})
}

// TestSocketActivationRestartRefusesNothing: with the socket systemd holds
// (deploy/systemd/sessiongate.socket), a restart loses no request. The
// first gateway is stopped (SIGTERM) while a slow PHP request runs and
// clients keep arriving; they wait in the socket's accept queue while it
// drains, and the second gateway, started on the same socket once the
// first has exited, answers them. Every request gets its 200.
func TestSocketActivationRestartRefusesNothing(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	running := filepath.Join(harness.PHPTempDir(t), "slow-running")
	writeTree(t, root, map[string]string{
		"index.php": `<?php echo 'pid ', getmypid();`,
		"slow.php":  `<?php touch('` + running + `'); usleep(1500000); echo 'slow done';`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	// At most pm.max_children connections, as deploy/ advises.
	env := []string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_PHP_MAX_CONNS=4", "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_SESSIONS=off"}
	// The socket systemd would hold: bound and listening here, never
	// accepted on by the test.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.(*net.TCPListener)
	defer ln.Close()

	first := startActivated(t, ln, env)
	if _, ok := logLine(first.stderr, "listening on the socket systemd passed"); !ok {
		t.Errorf("no log line for the passed socket:\n%s", first.stderr.String())
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string, error) {
		res, err := client.Get(first.URL + path)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, string(b), err
	}
	if code, body, err := get("/"); err != nil || code != 200 {
		t.Fatalf("before the restart: %d %q %v", code, body, err)
	}

	slow := make(chan string, 1)
	go func() {
		code, body, err := get("/slow.php")
		slow <- fmt.Sprintf("%d %s %v", code, body, err)
	}()
	// SIGTERM once the first gateway has the slow request in PHP.
	waitForFile(t, running, "slow.php")
	first.cmd.Process.Signal(syscall.SIGTERM)

	// Clients keep coming, one new connection every 20 ms, through the
	// drain, the gap and the second start.
	var (
		mu       sync.Mutex
		failures []string
		answered int
		wg       sync.WaitGroup
	)
	stopClients := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopClients:
				return
			case <-time.After(20 * time.Millisecond):
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body, err := get("/")
				mu.Lock()
				defer mu.Unlock()
				if err != nil || code != 200 || !strings.HasPrefix(body, "pid ") {
					failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
				} else {
					answered++
				}
			}()
		}
	}()

	if code := first.wait(t, 20*time.Second); code != 0 {
		t.Errorf("first gateway exited with %d", code)
	}
	if got := <-slow; got != "200 slow done <nil>" {
		t.Errorf("the request in flight at SIGTERM: %s", got)
	}
	time.Sleep(200 * time.Millisecond) // a gap with no gateway at all
	second := startActivated(t, ln, env)
	time.Sleep(300 * time.Millisecond)
	close(stopClients)
	wg.Wait()
	if len(failures) > 0 || answered < 20 {
		t.Errorf("%d requests answered across the restart, %d failed: %v", answered, len(failures), failures)
	}
	t.Logf("%d requests answered across the restart (drain, gap, start), none refused", answered)
	second.cmd.Process.Signal(syscall.SIGTERM)
	second.wait(t, 10*time.Second)
}

// TestSocketActivationUnnamedSocket: a socket systemd passes on a port no
// listener variable names stops the start with a message naming it, as
// its connections would wait for ever, and with the configuration error's
// exit status (78): the socket unit passes the same sockets again, so a
// restart cannot help (it exited 1, which the unit restarted every 2 s
// for ever).
func TestSocketActivationUnnamedSocket(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"index.php": "<?php"})
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0"`, buildGateway(t))
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = []string{"LISTEN_FDS=1", fmt.Sprintf("SESSIONGATE_LISTEN=127.0.0.1:%d", harness.FreePort(t)),
		"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_SESSIONS=off"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 78 || !strings.Contains(string(out), l.Addr().String()+" (fd 3)") ||
		!strings.Contains(string(out), "no SESSIONGATE_LISTEN") {
		t.Errorf("exit %v, output:\n%s", err, out)
	}
}

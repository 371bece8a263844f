package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one external server started by the harness. Every proc runs in its
// own process group (Setpgid) so that stopping it also stops the workers it
// forked (php-fpm pool workers, gunicorn workers), and it is registered in a
// process-wide table so that Main can kill whatever is left when the test
// binary is interrupted.
type proc struct {
	name string // for messages: "php-fpm", "redis-server 127.0.0.1:6379", ...
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returned
	err  error         // Wait's result, valid after done is closed
}

var (
	procsMu sync.Mutex
	procs   = map[*proc]struct{}{}
)

// spawnReq asks the spawner goroutine to start a command.
type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

// spawn starts cmd from one goroutine locked to one OS thread for the life of
// the process. Linux delivers Pdeathsig when the *thread* that forked the child
// exits, not the process; the Go runtime may retire a thread that ran a
// locked goroutine, so forking from arbitrary goroutines could kill a server
// in the middle of a test. The dedicated thread never exits, so the signal
// fires exactly when the test binary dies (including `go test -timeout`
// panics, which run no cleanup).
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for r := range spawnCh {
				r.reply <- r.cmd.Start()
			}
		}()
	})
	reply := make(chan error, 1)
	spawnCh <- spawnReq{cmd: cmd, reply: reply}
	return <-reply
}

// StartInGroup starts cmd in its own process group, with SIGTERM as the
// parent death signal delivered from the harness's long-lived thread (see
// spawn), for tests that drive a process tree of their own (scripts/
// demo.sh): if the test binary dies (a -timeout panic runs no cleanup), the
// process is told to stop its tree. Waiting for it is the caller's.
func StartInGroup(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	return spawn(cmd)
}

// startProc starts cmd in its own process group with SIGTERM as the parent
// death signal (php-fpm, gunicorn and redis all shut their workers down on
// SIGTERM), and registers it for Main's emergency cleanup. The process's
// stdout and stderr are appended to outPath: servers report configuration
// errors there before their own log file is open.
func startProc(name string, cmd *exec.Cmd, outPath string) (*proc, error) {
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// The child has its own descriptor after Start; ours is not needed.
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	procsMu.Lock()
	procs[p] = struct{}{}
	procsMu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has already ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// the group and waits for the leader; a grace of 0 sends SIGKILL alone.
// Killing the group after the leader is gone also removes workers a crashed
// master left behind. It is idempotent.
func (p *proc) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	if grace > 0 && !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// The group may outlive its leader (orphaned workers). While any member
	// is alive the kernel cannot reuse the pgid, so this cannot hit a stranger.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	waitGroupGone(pgid, 5*time.Second)
	procsMu.Lock()
	delete(procs, p)
	procsMu.Unlock()
}

// waitGroupGone waits until no process of group pgid is left (workers
// reparented to init take a moment to die after SIGKILL), so that a port or
// socket is really free when Stop returns.
func waitGroupGone(pgid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(10 * time.Millisecond)
	}
}

// killAll SIGKILLs every registered process group. Used by Main on exit and
// on SIGINT/SIGTERM, when there is no time for graceful shutdowns.
func killAll() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for p := range procs {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		delete(procs, p)
	}
}

// tailLogs returns the tails of several log files, for failure messages.
func tailLogs(n int, paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "--- %s ---\n%s\n", p, tailFile(p, n))
	}
	return b.String()
}

// tailFile returns the last n bytes of a log file, for failure messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "(empty log " + path + ")"
	}
	return string(b)
}

package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PHPFPMOptions configures one php-fpm master with one pool.
type PHPFPMOptions struct {
	// DocRoot is the site root the tests' scripts live in. php-fpm itself
	// does not need it (SCRIPT_FILENAME says which file runs); it is kept on
	// the PHPFPM value so tests pass one thing around.
	DocRoot string
	// Children is pm.max_children with pm = static (default 4).
	Children int
	// MaxRequests is pm.max_requests: a worker exits after that many
	// requests (0 = never), which is how tests exercise recycled workers.
	MaxRequests int
	// Unix makes the pool listen on a unix socket instead of 127.0.0.1:port.
	Unix bool
	// LogLimit is the global log_limit (0 = php-fpm's default of 1024 bytes,
	// which cuts FCGI_STDERR messages).
	LogLimit int
	// AdminValues become php_admin_value[name] = value pool entries.
	AdminValues map[string]string
	// Values become php_value[name] = value pool entries: defaults a
	// request's PHP_VALUE and the script may still change, like php.ini's.
	Values map[string]string
	// Env become env[name] = value pool entries, which PHP sees in getenv()
	// and $_SERVER (where nginx configurations put fastcgi_param).
	Env map[string]string
	// NoPHPIni runs php-fpm without a php.ini (-n), as the official php
	// Docker image ships none: PHP's built-in defaults apply
	// (output_buffering=0, display_errors=1). Debian builds ctype, which
	// the official image compiles in, as a shared extension: the pool loads
	// it.
	NoPHPIni bool
	// RequestTerminateTimeout kills a worker whose request runs longer
	// (0 = off). Rounded up to whole seconds, php-fpm's unit.
	RequestTerminateTimeout time.Duration
	// ListenBacklog is listen.backlog, the connections the kernel queues
	// for the pool while every worker is busy (0 = php-fpm's default,
	// 511 on Linux).
	ListenBacklog int
}

// PHPFPM is a running php-fpm master started by StartPHPFPM.
//
// Pool choices, and why:
//   - pm = static: a fixed number of workers makes keep-alive starvation and
//     recycling tests deterministic.
//   - clear_env = yes (php-fpm's default, as in production): PHP sees only the
//     FastCGI params the gateway sends, never the test binary's environment,
//     so a test cannot pass because of a variable leaked from `go test`.
//   - catch_workers_output = yes: PHP's stderr lands in LogPath for failure
//     messages.
//   - security.limit_extensions = .php: php-fpm itself refuses to run
//     anything else, as a Debian pool does.
//   - The system php.ini (/etc/php/8.2/fpm) is used, so extensions such as
//     redis are available as on a real host.
//
// Methods that can fail (Start, Restart) call t.Fatal and must therefore be
// called from the test's goroutine.
type PHPFPM struct {
	// Addr is "127.0.0.1:port" or "unix:/path/to/socket", the form
	// SESSIONGATE_PHP_FPM takes.
	Addr string
	// DocRoot is PHPFPMOptions.DocRoot.
	DocRoot string
	// ConfPath is the generated php-fpm.conf; LogPath its error_log, which
	// also receives worker output.
	ConfPath string
	LogPath  string

	server
	opts     PHPFPMOptions
	bin      string
	children int
}

// StartPHPFPM writes a php-fpm.conf into t.TempDir(), starts php-fpm in the
// foreground and waits until the pool accepts connections. Its workers run as
// the current user, or as nobody when that is root (see phpWorkerUser; the
// DocRoot is then shared with them, ShareWithPHP). t.Cleanup stops it.
func StartPHPFPM(t testing.TB, o PHPFPMOptions) *PHPFPM {
	t.Helper()
	bin := Bin(t, "php-fpm8.2")
	if o.Children <= 0 {
		o.Children = 4
	}
	if o.MaxRequests < 0 {
		t.Fatalf("harness: PHPFPMOptions.MaxRequests %d < 0", o.MaxRequests)
	}
	poolUser, err := poolUserLines()
	if err != nil {
		t.Fatal(err)
	}
	if o.DocRoot != "" {
		ShareWithPHP(t, o.DocRoot)
	}
	dir := t.TempDir()
	o.AdminValues = withPHPTempDir(t, o.AdminValues)
	f := &PHPFPM{
		DocRoot:  o.DocRoot,
		ConfPath: filepath.Join(dir, "php-fpm.conf"),
		LogPath:  filepath.Join(dir, "php-fpm.log"),
		server:   server{t: t},
		opts:     o,
		bin:      bin,
		children: o.Children,
	}
	f.launch = f.launchProc
	t.Cleanup(f.Stop)
	if o.Unix {
		// sun_path holds 108 bytes; t.TempDir() paths derive from long test
		// names, so the socket gets a short directory of its own.
		sockDir, err := os.MkdirTemp("", "sgfpm")
		if err != nil {
			t.Fatalf("harness: socket dir: %v", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
		listen := filepath.Join(sockDir, "php-fpm.sock")
		f.Addr = "unix:" + listen
		if err := os.WriteFile(f.ConfPath, []byte(phpFPMConf(dir, listen, poolUser, o)), 0o644); err != nil {
			t.Fatalf("harness: write php-fpm.conf: %v", err)
		}
		f.Start()
		return f
	}
	err = retryPortRace(func() error {
		f.Addr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		if err := os.WriteFile(f.ConfPath, []byte(phpFPMConf(dir, f.Addr, poolUser, o)), 0o644); err != nil {
			return fmt.Errorf("write php-fpm.conf: %w", err)
		}
		return f.start()
	}, f.LogPath+".stderr", f.LogPath)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return f
}

// withPHPTempDir returns values plus sys_temp_dir and upload_tmp_dir in a
// directory of the pool's own, removed once the test (and so php-fpm) is
// over, unless values names them. Left at /tmp, what scripts wrote with
// sys_get_temp_dir() and the uploads of workers killed mid-request stayed
// there after every run.
func withPHPTempDir(t testing.TB, values map[string]string) map[string]string {
	t.Helper()
	tmp, err := os.MkdirTemp("", "sgphp-")
	if err != nil {
		t.Fatalf("harness: PHP's temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	// The workers may run as another user (phpWorkerUser); sticky, as /tmp.
	if err := os.Chmod(tmp, 0o1777); err != nil {
		t.Fatalf("harness: PHP's temp dir: %v", err)
	}
	out := map[string]string{"sys_temp_dir": tmp, "upload_tmp_dir": tmp}
	for k, v := range values {
		out[k] = v
	}
	return out
}

// phpFPMConf renders the master and pool configuration; poolUser holds the
// pool's user and group lines (poolUserLines).
func phpFPMConf(dir, listen, poolUser string, o PHPFPMOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\npid = %s\nerror_log = %s\ndaemonize = no\n",
		filepath.Join(dir, "php-fpm.pid"), filepath.Join(dir, "php-fpm.log"))
	if o.LogLimit > 0 {
		fmt.Fprintf(&b, "log_limit = %d\n", o.LogLimit)
	}
	fmt.Fprintf(&b, "\n[test]\nlisten = %s\n", listen)
	b.WriteString(poolUser)
	if strings.HasPrefix(listen, "/") {
		b.WriteString("listen.mode = 0666\n")
	}
	if o.ListenBacklog > 0 {
		fmt.Fprintf(&b, "listen.backlog = %d\n", o.ListenBacklog)
	}
	fmt.Fprintf(&b, "pm = static\npm.max_children = %d\npm.max_requests = %d\n", o.Children, o.MaxRequests)
	b.WriteString("clear_env = yes\ncatch_workers_output = yes\ndecorate_workers_output = no\n")
	b.WriteString("security.limit_extensions = .php\n")
	if o.NoPHPIni {
		b.WriteString("php_admin_value[extension] = ctype\n")
	}
	if o.RequestTerminateTimeout > 0 {
		secs := int((o.RequestTerminateTimeout + time.Second - 1) / time.Second)
		fmt.Fprintf(&b, "request_terminate_timeout = %ds\n", secs)
	}
	for _, kind := range []struct {
		directive string
		values    map[string]string
	}{{"php_value", o.Values}, {"php_admin_value", o.AdminValues}, {"env", o.Env}} {
		names := make([]string, 0, len(kind.values))
		for k := range kind.values {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			v := kind.values[k]
			if kind.directive == "env" {
				// Quoted: a path mapping holds "=", which the ini
				// syntax refuses bare.
				v = `"` + v + `"`
			}
			fmt.Fprintf(&b, "%s[%s] = %s\n", kind.directive, k, v)
		}
	}
	return b.String()
}

// launchProc runs php-fpm and waits for its socket and its full pool of
// workers.
func (f *PHPFPM) launchProc() (*proc, error) {
	args := []string{"-F", "-y", f.ConfPath}
	if f.opts.NoPHPIni {
		args = append(args, "-n")
	}
	cmd := exec.Command(f.bin, args...)
	// php-fpm writes configuration errors to stderr before error_log is
	// open: keep them next to the log.
	p, err := startProc("php-fpm "+f.Addr, cmd, f.LogPath+".stderr")
	if err != nil {
		return nil, err
	}
	if err := waitAccept(f.Addr, 15*time.Second, p); err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("php-fpm did not start: %w\n%s", err, tailLogs(4096, f.LogPath+".stderr", f.LogPath))
	}
	// The listening socket exists before the workers are forked; wait for
	// them so that KillWorkers and worker-count tests see the full pool.
	deadline := time.Now().Add(10 * time.Second)
	for !hasChildren(p.cmd.Process.Pid, f.children) {
		if time.Now().After(deadline) || p.exited() {
			p.stop(time.Second)
			return nil, fmt.Errorf("php-fpm workers did not start\n%s", tailLogs(4096, f.LogPath+".stderr", f.LogPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p, nil
}

// PID returns the master's process id (0 when stopped).
func (f *PHPFPM) PID() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.p == nil || f.p.exited() {
		return 0
	}
	return f.p.cmd.Process.Pid
}

// Workers returns the process ids of the pool's current workers.
func (f *PHPFPM) Workers() []int {
	pid := f.PID()
	if pid == 0 {
		return nil
	}
	return childrenOf(pid)
}

// KillWorkers SIGKILLs every worker of the pool, as a crash or the OOM killer
// would, and returns the pids it killed. The master respawns them; requests
// in flight on those workers see their connection drop. It does not wait for
// the replacements: WaitWorkers with these pids does (a killed worker is
// listed until the master has reaped it).
func (f *PHPFPM) KillWorkers() []int {
	var killed []int
	for _, pid := range f.Workers() {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}

// WaitWorkers waits until the master has a full pool of workers again, none
// of them in old (e.g. the pids KillWorkers just killed), failing the test
// after d.
func (f *PHPFPM) WaitWorkers(old []int, d time.Duration) {
	f.t.Helper()
	gone := map[int]bool{}
	for _, pid := range old {
		gone[pid] = true
	}
	deadline := time.Now().Add(d)
	for {
		fresh := 0
		for _, pid := range f.Workers() {
			if !gone[pid] {
				fresh++
			}
		}
		if fresh >= f.children {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("harness: php-fpm has %d of %d workers after %v\n--- %s ---\n%s",
				fresh, f.children, d, f.LogPath, tailFile(f.LogPath, 4096))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Log returns php-fpm's error log so far (master notices and worker output).
func (f *PHPFPM) Log() string {
	b, err := os.ReadFile(f.LogPath)
	if err != nil {
		return ""
	}
	return string(b)
}

// hasChildren reports whether ppid has at least n live children. The
// kernel's list of a process's children answers cheaply while the count is
// short; the scan of every process (childrenOf, which also leaves zombies
// out) runs only once that list is long enough, or where the kernel keeps
// none.
func hasChildren(ppid, n int) bool {
	if listed, ok := listedChildren(ppid); ok && listed < n {
		return false
	}
	return len(childrenOf(ppid)) >= n
}

// listedChildren counts the pids in /proc/PID/task/*/children.
func listedChildren(pid int) (int, bool) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, false
	}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		if err != nil {
			return 0, false
		}
		n += len(strings.Fields(string(b)))
	}
	return n, true
}

// childrenOf lists the live processes whose parent is ppid, from /proc.
// Zombies are left out: a killed worker not yet reaped is not a worker.
func childrenOf(ppid int) []int {
	var out []int
	for _, p := range liveProcs() {
		if p.ppid == ppid {
			out = append(out, p.pid)
		}
	}
	return out
}

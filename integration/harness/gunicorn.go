package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GunicornOptions configures a gunicorn serving a WSGI application.
type GunicornOptions struct {
	// Dir is the directory the app is imported from: gunicorn's --chdir and
	// --pythonpath.
	Dir string
	// App is the WSGI callable, "module:callable", e.g.
	// "project.wsgi:application".
	App string
	// Env is appended to the cleaned environment (see StartGunicorn), so
	// its entries win: DJANGO_SETTINGS_MODULE, SESSIONGATE_SESSION_KEYS, ...
	Env []string
	// Workers is --workers (default 2); Threads is --threads (0 = gunicorn's
	// default of 1, the sync worker).
	Workers int
	Threads int
	// Unix, when set, binds the socket path instead of a loopback port
	// (Addr is then "unix:" + Unix).
	Unix string
	// Args are more gunicorn options (--timeout, --max-requests, ...).
	Args []string
	// Python, when set, runs gunicorn as "Python -m gunicorn": a
	// virtualenv's interpreter, so the app imports what was installed
	// there.
	Python string
	// NoPreload leaves out --preload, so that every worker imports the
	// app itself (gunicorn's default) instead of forking from a master
	// that imported it once.
	NoPreload bool
}

// Gunicorn is a running gunicorn started by StartGunicorn.
type Gunicorn struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// LogPath receives gunicorn's error log (tracebacks included).
	LogPath string

	server
	bin  string
	opts GunicornOptions
	env  []string
}

// StartGunicorn runs Debian's /usr/bin/gunicorn, whose shebang is
// /usr/bin/python3 (the interpreter that has Debian's Django). The `python3`
// first on a developer's PATH may be a pyenv or virtualenv without Django, so
// the environment is cleaned: PYTHON* and virtualenv/pyenv variables are
// dropped and PATH starts with the system directories. It waits until a
// worker answers HTTP (any status), so an app that fails to import fails here
// with gunicorn's log, not later as a confusing 502. t.Cleanup kills it.
func StartGunicorn(t testing.TB, o GunicornOptions) *Gunicorn {
	t.Helper()
	bin := Bin(t, "gunicorn")
	if o.App == "" {
		t.Fatal("harness: GunicornOptions.App is empty")
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	dir := t.TempDir()
	g := &Gunicorn{
		LogPath: filepath.Join(dir, "gunicorn.log"),
		server:  server{t: t},
		bin:     bin,
		opts:    o,
		env:     append(cleanPythonEnv(os.Environ()), o.Env...),
	}
	g.launch = g.launchProc
	t.Cleanup(g.discard)
	err := retryPortRace(func() error {
		g.Addr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		if o.Unix != "" {
			g.Addr = "unix:" + o.Unix
		}
		return g.start()
	}, g.LogPath+".stderr", g.LogPath)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return g
}

// argv is the gunicorn command line for the current address.
func (g *Gunicorn) argv() []string {
	args := []string{
		"--bind", g.Addr,
		"--workers", strconv.Itoa(g.opts.Workers),
		// Short graceful timeout: Stop must not wait 30 s for idle workers.
		"--graceful-timeout", "2",
		"--error-logfile", g.LogPath,
		"--capture-output",
	}
	// --preload: the master imports the app once and its workers fork from
	// it, where each worker imported Django and the app itself, some 0.4 s
	// of CPU each; the integration step is bound by the CPU. The gateway
	// sees the same workers either way; a test that needs the per-worker
	// import sets NoPreload.
	if !g.opts.NoPreload {
		args = append(args, "--preload")
	}
	if g.opts.Threads > 0 {
		args = append(args, "--threads", strconv.Itoa(g.opts.Threads))
	}
	if g.opts.Dir != "" {
		args = append(args, "--chdir", g.opts.Dir, "--pythonpath", g.opts.Dir)
	}
	args = append(args, g.opts.Args...)
	return append(args, g.opts.App)
}

// cleanPythonEnv drops variables that would make /usr/bin/python3 import
// from somewhere else, and puts the system directories first on PATH.
func cleanPythonEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "PYTHON"), strings.HasPrefix(name, "PYENV"),
			name == "VIRTUAL_ENV", name == "CONDA_PREFIX", name == "PATH":
			continue
		}
		out = append(out, kv)
	}
	return append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

// URL returns "http://127.0.0.1:port", or "unix:/path" with Unix.
func (g *Gunicorn) URL() string {
	if g.opts.Unix != "" {
		return g.Addr
	}
	return "http://" + g.Addr
}

// PID returns the master's process id (0 when stopped).
func (g *Gunicorn) PID() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.p == nil || g.p.exited() {
		return 0
	}
	return g.p.cmd.Process.Pid
}

// Workers returns the process ids of the master's current workers.
func (g *Gunicorn) Workers() []int {
	pid := g.PID()
	if pid == 0 {
		return nil
	}
	return childrenOf(pid)
}

// launchProc runs gunicorn and waits until a worker answers HTTP.
func (g *Gunicorn) launchProc() (*proc, error) {
	cmd := exec.Command(g.bin, g.argv()...)
	if g.opts.Python != "" {
		cmd = exec.Command(g.opts.Python, append([]string{"-m", "gunicorn"}, g.argv()...)...)
	}
	cmd.Env = g.env
	p, err := startProc("gunicorn "+g.Addr, cmd, g.LogPath+".stderr")
	if err != nil {
		return nil, err
	}
	if err := g.waitHTTP(p, 30*time.Second); err != nil {
		p.stop(3 * time.Second)
		return nil, fmt.Errorf("gunicorn did not start: %w\n%s", err, tailLogs(4096, g.LogPath+".stderr", g.LogPath))
	}
	return p, nil
}

// waitHTTP waits until gunicorn says it listens on our address (so that an
// HTTP answer cannot come from another server that took the port), then for
// any HTTP answer from a worker.
func (g *Gunicorn) waitHTTP(p *proc, d time.Duration) error {
	deadline := time.Now().Add(d)
	listening := "Listening at: http://" + g.Addr + " "
	client := &http.Client{Timeout: 2 * time.Second}
	get := g.URL() + "/"
	if g.opts.Unix != "" {
		listening = "Listening at: " + g.Addr + " "
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", g.opts.Unix)
		}}
		get = "http://gunicorn/"
	}
	if err := waitLogHas(p, g.Log, listening, deadline); err != nil {
		return err
	}
	return waitAnswer(p, client, get, deadline)
}

// Log returns gunicorn's error log so far.
func (g *Gunicorn) Log() string {
	b, err := os.ReadFile(g.LogPath)
	if err != nil {
		return ""
	}
	return string(b)
}

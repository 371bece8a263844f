package harness

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// UWSGIOptions configures Debian's uWSGI (uwsgi-plugin-python3) serving a
// WSGI application on an HTTP socket, as a Django site runs under uWSGI
// behind a front server that speaks HTTP to it.
type UWSGIOptions struct {
	// Dir is the directory the app is imported from (--chdir).
	Dir string
	// Module is the WSGI callable, "project.wsgi:application".
	Module string
	// Env is appended to the cleaned environment, as for gunicorn.
	Env []string
	// Args are more uWSGI options (--buffer-size, ...).
	Args []string
}

// UWSGI is a running uWSGI started by StartUWSGI.
type UWSGI struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// LogPath receives uWSGI's log.
	LogPath string

	server
}

// StartUWSGI runs /usr/bin/uwsgi_python3 (Debian's python3) with one
// process of two threads on a loopback port and waits until it answers
// HTTP. --die-on-term: uWSGI 2.0 takes SIGTERM for a reload. t.Cleanup
// stops it.
func StartUWSGI(t testing.TB, o UWSGIOptions) *UWSGI {
	t.Helper()
	bin := Bin(t, "uwsgi_python3")
	u := &UWSGI{LogPath: filepath.Join(t.TempDir(), "uwsgi.log"), server: server{t: t}}
	env := append(cleanPythonEnv(os.Environ()), o.Env...)
	u.launch = func() (*proc, error) {
		args := append([]string{"--http-socket", u.Addr, "--chdir", o.Dir, "--module", o.Module,
			"--master", "--processes", "1", "--threads", "2", "--die-on-term", "--need-app"}, o.Args...)
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		p, err := startProc("uwsgi "+u.Addr, cmd, u.LogPath)
		if err != nil {
			return nil, err
		}
		// Its own bind first, so that an answer cannot come from another
		// server that took the port.
		deadline := time.Now().Add(30 * time.Second)
		err = waitLogHas(p, u.Log, "bound to TCP address "+u.Addr+" ", deadline)
		if err == nil {
			err = waitAnswer(p, &http.Client{Timeout: 2 * time.Second}, "http://"+u.Addr+"/", deadline)
		}
		if err != nil {
			p.stop(3 * time.Second)
			return nil, fmt.Errorf("uwsgi did not start: %w\n%s", err, tailLogs(4096, u.LogPath))
		}
		return p, nil
	}
	t.Cleanup(u.Stop)
	err := retryPortRace(func() error {
		u.Addr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		return u.start()
	}, u.LogPath)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return u
}

// URL returns "http://127.0.0.1:port".
func (u *UWSGI) URL() string { return "http://" + u.Addr }

// Log returns uWSGI's log so far.
func (u *UWSGI) Log() string {
	b, _ := os.ReadFile(u.LogPath)
	return string(b)
}

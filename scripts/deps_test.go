package scripts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pathWithout returns a directory holding links to every program of
// /usr/bin but the ones named: a machine where those are not installed.
// (deps.sh adds /usr/sbin and /sbin itself.)
func pathWithout(t *testing.T, missing ...string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("/usr/bin")
	if err != nil {
		t.Fatal(err)
	}
	hidden := map[string]bool{}
	for _, m := range missing {
		hidden[m] = true
	}
	for _, e := range entries {
		if hidden[e.Name()] {
			continue
		}
		if err := os.Symlink(filepath.Join("/usr/bin", e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if goBin, err := exec.LookPath("go"); err == nil && !hidden["go"] {
		os.Symlink(goBin, filepath.Join(dir, "go")) // /usr/local/go/bin/go
	}
	return dir
}

// TestDepsBenchNeedsCurl: bench/run.sh stops with "curl not found: run
// scripts/deps.sh bench" (it checks each front with curl), so deps.sh bench
// must find a missing curl and name the package. curl is not on a fresh
// Debian 12 (priority optional: the debian:12 image lacks it): make bench
// installed the rest, then run.sh sent the user back to deps.sh, which
// found nothing missing.
func TestDepsBenchNeedsCurl(t *testing.T) {
	cmd := exec.Command("bash", "deps.sh", "bench")
	// DEPS_RECHECK: print the apt-get command, never run it (as root too).
	cmd.Env = append(os.Environ(), "PATH="+pathWithout(t, "curl"), "DEPS_RECHECK=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "curl") {
		t.Errorf("deps.sh bench without curl: %v, want a failure naming curl:\n%s", err, out)
	}
}

// TestDepsDemoAndBenchNeedDebiansGunicorn: demo.sh and bench/run.sh run
// /usr/bin/gunicorn, Debian's, whose python3 has Django. deps.sh took any
// gunicorn on PATH, so on a machine whose gunicorn came from pip or pipx
// `make demo` passed deps.sh and stopped in demo.sh ("missing:
// /usr/bin/gunicorn ... scripts/deps.sh demo installs them"), and deps.sh
// then found nothing to install: a loop. Debian's gunicorn is hidden in a
// mount namespace of its own, a pip-style one put first on PATH.
func TestDepsDemoAndBenchNeedDebiansGunicorn(t *testing.T) {
	pipBin := t.TempDir()
	if err := os.WriteFile(filepath.Join(pipBin, "gunicorn"), []byte("#!/bin/sh\necho 'gunicorn (version 23.0.0)'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"demo", "bench"} {
		script := `mount --bind /dev/null /usr/bin/gunicorn || exit 99
PATH="` + pipBin + `:$PATH" DEPS_RECHECK=1 exec bash deps.sh ` + mode
		cmd := exec.Command("unshare", "-m", "--propagation", "private", "bash", "-c", script)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 99 || errors.Is(err, exec.ErrNotFound) {
			t.Fatalf("cannot hide /usr/bin/gunicorn in a mount namespace (the test needs root and unshare): %v\n%s", err, out)
		}
		if err == nil || !strings.Contains(string(out), "/usr/bin/gunicorn") {
			t.Errorf("deps.sh %s with only a pip gunicorn on PATH: %v, want a failure naming /usr/bin/gunicorn:\n%s", mode, err, out)
		}
	}
}

package scripts

import (
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

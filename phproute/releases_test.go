package phproute

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// releases lays out the deploy tree of Capistrano, Deployer and Envoyer
// under a temporary base: releases/1 and releases/2, each with files
// (name -> body) and symlinks (name -> target), a "%N" in any of them
// standing for the release's number, and current -> releases/1. It
// returns base and current; the document root is current/public.
func releases(t *testing.T, files, links map[string]string) (base, current string) {
	t.Helper()
	base = t.TempDir()
	for _, n := range []string{"1", "2"} {
		rel := filepath.Join(base, "releases", n)
		if err := os.MkdirAll(filepath.Join(rel, "public"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range files {
			p := filepath.Join(rel, strings.ReplaceAll(name, "%N", n))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "%N", n)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, target := range links {
			p := filepath.Join(rel, strings.ReplaceAll(name, "%N", n))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(strings.ReplaceAll(target, "%N", n), p); err != nil {
				t.Fatal(err)
			}
		}
	}
	current = filepath.Join(base, "current")
	if err := os.Symlink("releases/1", current); err != nil {
		t.Fatal(err)
	}
	return base, current
}

// deploy points current at releases/n as `ln -sfn` does it atomically: a
// new link renamed over the old.
func deploy(t *testing.T, current, n string) {
	t.Helper()
	os.Remove(current + ".tmp")
	if err := os.Symlink("releases/"+n, current+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(current+".tmp", current); err != nil {
		t.Fatal(err)
	}
}

// newRouter opens a router on current/public, closed when the test ends.
func newRouter(t *testing.T, current, index string) *Router {
	t.Helper()
	r, err := New(filepath.Join(current, "public"), index)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// lookEvery sets how often routers look at their root path for the
// test's length.
func lookEvery(t *testing.T, d time.Duration) {
	old := recheckRoot
	recheckRoot = d
	t.Cleanup(func() { recheckRoot = old })
}

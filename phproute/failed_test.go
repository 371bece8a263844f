package phproute

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sessiongate/sessiongate/internal/testfd"
)

// TestResolveSystemFailureIsFailed: a path whose lookup fails for a reason
// of the system's (no file descriptor left, an I/O error) is Failed (the
// server answers 500) with the error as its reason, not NotFound blamed
// on a symlink leading out of the root or a loop. A file-descriptor
// shortage made every static file below the root's top level, and every
// pretty URL, "not found" (404s that browsers and CDNs may cache), with a
// warning that sent the operator after symlinks. The shortage is made in a
// child process, whose limit on open files is lowered.
func TestResolveSystemFailureIsFailed(t *testing.T) {
	if !testfd.InChild(t) {
		return
	}
	root, _ := site(t)
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	paths := []string{"/sub/script.php", "/docs/index.html", "/docs/", "/pretty/url", "/sub/script.php/info"}
	restore := testfd.Exhaust(t)
	got := make([]Route, len(paths))
	for i, p := range paths {
		got[i] = r.Resolve(p)
	}
	restore()
	for i, p := range paths {
		// Either the route it has with descriptors (looked up without
		// a new one), or Failed: never another route.
		want := r.Resolve(p)
		if want.Kind != Static && want.Kind != PHP {
			t.Fatalf("%s: %v %q", p, want.Kind, want.Reason)
		}
		rt := got[i]
		if rt == want {
			continue
		}
		if rt.Kind != Failed || !rt.Warn || !strings.Contains(rt.Reason, "too many open files") {
			t.Errorf("%s with no file descriptor left: %v (warn %v) %q, want %+v or Failed naming the error", p, rt.Kind, rt.Warn, rt.Reason, want)
		}
	}
}

// TestDirectoryIndexPermissionDenied: a directory the gateway may list but
// not enter (no x for its user) has index files it cannot look at: its
// URL is Forbidden with the reason, as the index asked for by name is, and
// as nginx's index answers 403 (logging the EACCES). The index lookups
// failing with EACCES were passed over as missing, and the URL went to
// the front controller, the site's home page or its 404, without a word.
// Root enters every directory, so when the tests run as root the lookups
// are made in a child process that has given up root.
func TestDirectoryIndexPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 && !testfd.InChild(t) {
		return
	}
	root, _ := site(t)
	locked := filepath.Join(root, "locked")
	if err := os.MkdirAll(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(locked, "index.php"), []byte("<?php"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// The test's temp directory becomes the user the child turns
		// into, so that it can reach the site and clean up.
		const nobody = 65534
		base := filepath.Dir(root)
		filepath.Walk(base, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, nobody, nobody) })
		for d := filepath.Dir(base); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
			os.Chown(d, nobody, nobody)
		}
		if err := syscall.Setuid(nobody); err != nil {
			t.Skip("cannot give up root:", err)
		}
	}
	if err := os.Chmod(locked, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	r, err := New(root, "/index.php")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, p := range []string{"/locked/index.php", "/locked/"} {
		if got := r.Resolve(p); got.Kind != Forbidden || got.Reason == "" {
			t.Errorf("%s: %+v, want Forbidden with its reason", p, got)
		}
	}
}

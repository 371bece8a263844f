package phproute

import (
	"strings"
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

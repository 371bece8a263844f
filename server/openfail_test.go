package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sessiongate/sessiongate/internal/testfd"
)

// TestStaticOpenFailureIs500: a static file the gateway cannot open for a
// reason of its own (no file descriptor left, an I/O error) is a 500 and a
// warning naming the error, as nginx answers an open() that fails with
// anything but ENOENT, ENOTDIR, ENAMETOOLONG (404) or EACCES (403). It was
// a 404 with no log line: during a file-descriptor shortage every asset
// of the site was "not found" (a 404 caches and CDNs may keep for hours),
// and the operator had nothing to go by. The shortage is made in a child
// process, whose limit on open files is lowered.
func TestStaticOpenFailureIs500(t *testing.T) {
	if !testfd.InChild(t) {
		return
	}
	e := newEnv(t, nil)
	if err := os.MkdirAll(filepath.Join(e.root, "css/deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "css/deep/site.css"), []byte("a{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	restore := testfd.Exhaust(t)
	w := e.do(httptest.NewRequest("GET", "/style.css", nil))
	// Below the top level, the lookup itself fails (phproute.Failed).
	wNested := e.do(httptest.NewRequest("GET", "/css/deep/site.css", nil))
	restore()
	if w.Code != http.StatusInternalServerError || !strings.Contains(e.logs.String(), "too many open files") {
		t.Errorf("static file with no file descriptor left: %d, log:\n%s\nwant 500 and a warning naming the error", w.Code, e.logs.String())
	}
	if wNested.Code != http.StatusInternalServerError {
		t.Errorf("nested static file with no file descriptor left: %d, want 500", wNested.Code)
	}
	// The file itself is fine.
	if w := e.do(httptest.NewRequest("GET", "/style.css", nil)); w.Code != http.StatusOK {
		t.Errorf("afterwards: %d, want 200", w.Code)
	}
}

// TestStaticUnreadableFileLogged: a static file the gateway may not read
// (a deploy that left it 0600 to another user: stat works, open does not)
// is a 403 with a warning naming the error, as the router's refusals of
// unreadable paths are; the 403 came with a bare access-log line, and the
// operator had nothing to tell it from a rule that denies the URL. Root
// reads every file, so when the tests run as root the request is made in
// a child process that has given up root.
func TestStaticUnreadableFileLogged(t *testing.T) {
	if os.Geteuid() == 0 && !testfd.InChild(t) {
		return
	}
	e := newEnv(t, nil)
	secret := filepath.Join(e.root, "secret.css")
	if err := os.WriteFile(secret, []byte("a{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// The file stays root's and unreadable to others; the rest of the
		// test's temp directory becomes the user the child turns into, so
		// that it can reach the file and clean up.
		const nobody = 65534
		filepath.Walk(e.root, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, nobody, nobody) })
		for d := filepath.Dir(e.root); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
			os.Chown(d, nobody, nobody)
		}
		if err := os.Chown(secret, 0, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(secret, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setuid(nobody); err != nil {
			t.Skip("cannot give up root:", err)
		}
	} else if err := os.Chmod(secret, 0); err != nil {
		t.Fatal(err)
	}
	w := e.do(httptest.NewRequest("GET", "/secret.css", nil))
	log := e.lastLog(t)
	if w.Code != http.StatusForbidden || log["level"] != "WARN" || !strings.Contains(fmt.Sprint(log["error"]), "permission denied") {
		t.Errorf("unreadable static file: %d, log %v; want 403 and a warning naming the error", w.Code, log)
	}
}

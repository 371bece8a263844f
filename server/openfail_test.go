package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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

package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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
	if os.Getenv("SESSIONGATE_TEST_EMFILE") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStaticOpenFailureIs500$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SESSIONGATE_TEST_EMFILE=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	e := newEnv(t, nil)
	if err := os.MkdirAll(filepath.Join(e.root, "css/deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "css/deep/site.css"), []byte("a{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(len(entries) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip("cannot lower RLIMIT_NOFILE:", err)
	}
	var hogs []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		hogs = append(hogs, f)
	}
	w := e.do(httptest.NewRequest("GET", "/style.css", nil))
	// Below the top level, the lookup itself fails (phproute.Failed).
	wNested := e.do(httptest.NewRequest("GET", "/css/deep/site.css", nil))
	for _, f := range hogs {
		f.Close()
	}
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
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

package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestStaticTypeFromURLName: the Content-Type of a static file comes from
// the name in the URL, as with nginx, also when that name is an absolute
// symlink to a file inside the root whose own name has another extension
// or none (report.pdf -> /srv/www/files/blob, a directory's index.html ->
// /srv/www/pages/home). A relative symlink was already typed by its own
// name; an absolute one was typed by its target's name, so report.pdf went
// out as application/octet-stream (with nosniff: a download, not a PDF).
func TestStaticTypeFromURLName(t *testing.T) {
	e := newEnv(t, nil)
	for name, body := range map[string]string{"files/blob": "%PDF-1.4", "pages/home": "<p>home</p>", "files/data.bin": "x"} {
		p := filepath.Join(e.root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(e.root, "home"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"report.pdf":      filepath.Join(e.root, "files/blob"),
		"rel.pdf":         "files/blob",
		"home/index.html": filepath.Join(e.root, "pages/home"),
		"data.css":        filepath.Join(e.root, "files/data.bin"),
	} {
		if err := os.Symlink(target, filepath.Join(e.root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string]string{
		"/report.pdf": "application/pdf",
		"/rel.pdf":    "application/pdf",
		"/home/":      "text/html",
		"/data.css":   "text/css",
	} {
		w := e.do(httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != want {
			t.Errorf("GET %s: %d Content-Type %q, want 200 %q", path, w.Code, w.Header().Get("Content-Type"), want)
		}
	}
}

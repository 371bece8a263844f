package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestStaticEmptyFileRange: an empty file has no byte a range could name,
// so a Range on it is ignored and the empty file goes out whole with 200,
// as nginx does. http.ServeContent answered a suffix range ("bytes=-5",
// what a player or PDF viewer sends to read a file's tail) with a 206
// whose Content-Range, "bytes 0--1/0", no client can parse.
func TestStaticEmptyFileRange(t *testing.T) {
	e := newEnv(t, nil)
	if err := os.WriteFile(filepath.Join(e.root, "empty.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"GET", "HEAD"} {
		for _, rng := range []string{"bytes=-5", "bytes=-5,0-1", "bytes=0-", "bytes=0-0"} {
			r := httptest.NewRequest(method, "/empty.txt", nil)
			r.Header.Set("Range", rng)
			w := e.do(r)
			if w.Code != http.StatusOK || w.Header().Get("Content-Range") != "" || w.Header().Get("Content-Length") != "0" || w.Body.Len() != 0 {
				t.Errorf("%s Range %s: %d Content-Range %q Content-Length %q body %q, want 200 with the empty file",
					method, rng, w.Code, w.Header().Get("Content-Range"), w.Header().Get("Content-Length"), w.Body)
			}
		}
	}
}

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

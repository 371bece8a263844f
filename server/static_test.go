package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
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

// TestStaticManyRangesIgnored: a Range of many small, overlapping ranges
// ("bytes=0-0,0-0,..." within the header limit) stays under the file's size
// in sum, so http.ServeContent accepted it and built one multipart part per
// range: 250,000 ranges of a 1 MiB file took 3.4 s of CPU and 590 MB of
// allocations for one request, and sent 36 MB. Past maxRanges the Range
// is ignored and the file goes out whole (200), as Apache does past
// MaxRanges (default 200) and nginx past max_ranges when it is set.
func TestStaticManyRangesIgnored(t *testing.T) {
	e := newEnv(t, nil)
	body := strings.Repeat("0123456789", 1000)
	if err := os.WriteFile(filepath.Join(e.root, "big.txt"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/big.txt", nil)
	r.Header.Set("Range", "bytes="+strings.Repeat("0-0,", maxRanges)+"0-0")
	w := e.do(r)
	if w.Code != http.StatusOK || w.Body.String() != body {
		t.Errorf("%d ranges: %d Content-Type %q, %d bytes, want 200 with the whole file",
			maxRanges+1, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
	}
	// Up to the limit, ranges are still served.
	r = httptest.NewRequest("GET", "/big.txt", nil)
	r.Header.Set("Range", "bytes="+strings.Repeat("0-0, ", maxRanges-1)+"0-0")
	if w := e.do(r); w.Code != http.StatusPartialContent {
		t.Errorf("%d ranges: %d, want 206", maxRanges, w.Code)
	}
}

// TestStaticMaxAgeNotOnPreconditionFailed: a 412 (If-Match or
// If-Unmodified-Since that the file fails) is no copy of the file, and
// nginx's expires leaves it without Cache-Control. It went out with the
// file's "public, max-age=...": a shared cache that stores any final
// status with explicit freshness (RFC 9111 section 3) keyed it on the
// URL alone, and one client's failed precondition became every client's
// empty answer for the max-age. 200, 206 and 304 keep it.
func TestStaticMaxAgeNotOnPreconditionFailed(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.StaticMaxAge = 720 * time.Hour })
	const want = "public, max-age=2592000"
	for _, tc := range []struct {
		header []string
		code   int
		cc     string
	}{
		{[]string{"If-Match", `"nope"`}, http.StatusPreconditionFailed, ""},
		{[]string{"If-Unmodified-Since", "Wed, 01 Jan 2020 00:00:00 GMT"}, http.StatusPreconditionFailed, ""},
		{[]string{"If-Match", `"nope"`, "Accept-Encoding", "gzip"}, http.StatusPreconditionFailed, ""},
		{[]string{"If-Match", "*"}, http.StatusOK, want},
		{[]string{"If-Match", "*", "Range", "bytes=0-3"}, http.StatusPartialContent, want},
		{[]string{"If-Unmodified-Since", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, http.StatusOK, want},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			r := httptest.NewRequest(method, "/style.css", nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				r.Header.Set(tc.header[i], tc.header[i+1])
			}
			w := e.do(r)
			if w.Code != tc.code || w.Header().Get("Cache-Control") != tc.cc {
				t.Errorf("%s %v: %d Cache-Control %q, want %d %q", method, tc.header, w.Code, w.Header().Get("Cache-Control"), tc.code, tc.cc)
			}
		}
	}
}

// TestStaticMaxAgeNotPublicWithAuthorization: a file asked for with
// Authorization (behind SESSIONGATE_BASIC_AUTH) gets the max-age without
// "public", on its 200 and its 304. A shared cache reuses an answer to such
// a request for others only when it says public, s-maxage or
// must-revalidate (RFC 9111 section 3.5): with "public", a CDN in front
// served the protected file to clients that never sent the password.
// nginx's expires sends max-age only. A file asked for without
// Authorization keeps "public".
func TestStaticMaxAgeNotPublicWithAuthorization(t *testing.T) {
	users := basicAuthFile(t)
	e := newEnv(t, func(c *config.Config) {
		c.BasicAuthSpecs = []string{"/private/ " + users}
		c.StaticMaxAge = 720 * time.Hour
	})
	if err := os.MkdirAll(filepath.Join(e.root, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "private", "report.pdf"), []byte("report"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/private/report.pdf", nil)
	r.SetBasicAuth("bo", "secret")
	w := e.do(r)
	if cc := w.Header().Get("Cache-Control"); w.Code != http.StatusOK || cc != "max-age=2592000" {
		t.Errorf("200: %d Cache-Control %q, want 200 %q", w.Code, cc, "max-age=2592000")
	}
	r = httptest.NewRequest("GET", "/private/report.pdf", nil)
	r.SetBasicAuth("bo", "secret")
	r.Header.Set("If-None-Match", w.Header().Get("ETag"))
	if w := e.do(r); w.Code != http.StatusNotModified || w.Header().Get("Cache-Control") != "max-age=2592000" {
		t.Errorf("304: %d Cache-Control %q, want 304 %q", w.Code, w.Header().Get("Cache-Control"), "max-age=2592000")
	}
	if w := e.do(httptest.NewRequest("GET", "/style.css", nil)); w.Header().Get("Cache-Control") != "public, max-age=2592000" {
		t.Errorf("without Authorization: Cache-Control %q, want public", w.Header().Get("Cache-Control"))
	}
}

// TestStaticSVGZNotGzippedAgain: an .svgz is a gzip stream already; with
// nginx's type for it, image/svg+xml, it goes out as the file's bytes, as
// nginx sends it, never gzipped a second time.
func TestStaticSVGZNotGzippedAgain(t *testing.T) {
	e := newEnv(t, nil)
	body := strings.Repeat("\x1f\x8b compressed svg bytes ", 40)
	if err := os.WriteFile(filepath.Join(e.root, "logo.svgz"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/logo.svgz", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := e.do(r)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/svg+xml" || w.Header().Get("Content-Encoding") != "" || w.Body.String() != body {
		t.Errorf("GET /logo.svgz: %d Content-Type %q Content-Encoding %q, %d bytes; want 200 image/svg+xml, the file as it is",
			w.Code, w.Header().Get("Content-Type"), w.Header().Get("Content-Encoding"), w.Body.Len())
	}
}

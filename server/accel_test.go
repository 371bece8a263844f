package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// accelEnv is a site whose PHP answers every request with the headers
// given, X-Accel-Redirect among them, and "php output" as its body. Its
// static root holds /private/ (SESSIONGATE_INTERNAL_PATHS) and public
// files; /alias/ is another directory.
func accelEnv(t *testing.T, phpHeader http.Header, opts ...Option) (*env, string) {
	t.Helper()
	alias := t.TempDir()
	e := newEnv(t, func(c *config.Config) {
		c.InternalPaths = []string{"/private/", "/alias/=" + alias}
		c.NoPHPPaths = []string{"/uploads/"}
	}, opts...)
	for name, body := range map[string]string{
		"download.php":         "<?php",
		"uploads/shell.php":    "<?php",
		"private/report.pdf":   "%PDF-1.7 report",
		"private/my file.zip":  "zip bytes",
		"private/secret.php":   "<?php $password = 1;",
		"private/.htpasswd":    "admin:x",
		"private/sub/deep.txt": "deep",
	} {
		p := filepath.Join(e.root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"invoice-42.pdf": "%PDF invoice 42", "a/b.txt": "alias b", "alias": "a file named alias"} {
		p := filepath.Join(alias, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		h := phpHeader.Clone()
		if v, ok := r.URL.Query()["accel"]; ok {
			h.Set("X-Accel-Redirect", v[0])
		}
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader("php output")), Request: r}, nil
	}
	return e, alias
}

func TestAccelRedirectSendsTheFile(t *testing.T) {
	e, _ := accelEnv(t, http.Header{
		"Content-Type":        {"application/pdf"},
		"Content-Disposition": {`attachment; filename="report.pdf"`},
		"Content-Length":      {"999"},
		"Etag":                {`"app"`},
		"Last-Modified":       {"Mon, 02 Jan 2006 15:04:05 GMT"},
		"X-Robots-Tag":        {"noindex, nofollow"},
		"Set-Cookie":          {"wc_download=1; Path=/"},
	})
	for _, tc := range []struct{ accel, body string }{
		{"/private/report.pdf", "%PDF-1.7 report"},
		{"/alias/invoice-42.pdf", "%PDF invoice 42"},
		{"/alias/a/b.txt", "alias b"},
		{"/private/sub/deep.txt", "deep"},
		// WooCommerce sends file names as they are; django-sendfile2
		// percent-encodes them; nginx takes both.
		{"/private/my file.zip", "zip bytes"},
		{"/private/my%20file.zip", "zip bytes"},
		{"/private/report.pdf?token=1", "%PDF-1.7 report"},
		// A public file of the site may be named too, as nginx allows.
		{"/style.css", "body{color:red}"},
		{"//private/./report.pdf", "%PDF-1.7 report"},
	} {
		w := accelGet(e, "GET", tc.accel)
		h := w.Header()
		if w.Code != 200 || w.Body.String() != tc.body {
			t.Errorf("%s: %d %q, want 200 %q; log %s", tc.accel, w.Code, w.Body, tc.body, e.lastLog(t)["error"])
			continue
		}
		for name, want := range map[string]string{
			"Content-Type":        "application/pdf",
			"Content-Disposition": `attachment; filename="report.pdf"`,
			"X-Robots-Tag":        "noindex, nofollow",
			"Set-Cookie":          "wc_download=1; Path=/",
			"Cache-Control":       "private",
			"Content-Length":      strconv.Itoa(len(tc.body)),
			"Accept-Ranges":       "bytes",
			"X-Accel-Redirect":    "",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("%s: %s %q, want %q", tc.accel, name, got, want)
			}
		}
		if h.Get("Etag") == `"app"` || h.Get("Last-Modified") == "Mon, 02 Jan 2006 15:04:05 GMT" {
			t.Errorf("%s: the app's validators describe its body, not the file: %v", tc.accel, h)
		}
		// The app's Content-Length is the file's, not a body cut short.
		if log := e.lastLog(t); log["internal_redirect"] != tc.accel || log["status"] != float64(200) || log["level"] != "INFO" || log["error"] != nil {
			t.Errorf("%s: access log %v", tc.accel, log)
		}
	}
}

// accelGet asks the fake PHP for a response naming target.
func accelGet(e *env, method, target string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/download.php?accel="+url.QueryEscape(target), nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(r)
}

func TestAccelRedirectRefusals(t *testing.T) {
	e, _ := accelEnv(t, http.Header{
		"Content-Type":        {"application/zip"},
		"Content-Disposition": {"attachment"},
		"Set-Cookie":          {"sid=new; Path=/"},
	})
	for _, tc := range []struct {
		accel  string
		status int
		why    string
	}{
		{"/private/missing.zip", 404, "no such file"},
		{"/private/secret.php", 404, "PHP script"},
		{"/private/secret.PHP", 404, "PHP script"},
		{"/private/secret.php/extra", 404, "PHP script"},
		{"/alias/x.php/extra", 404, "PHP script"},
		{"/uploads/shell.php", 404, "PHP script"},
		// The alias itself, without its slash, is a directory, not a
		// file named "alias" in it.
		{"/alias", 404, "directory"},
		{"/private/.htpasswd", 404, "hidden file"},
		{"/private/../index.php", 404, ".. segment"},
		{"/alias/../private/report.pdf", 404, ".. segment"},
		{"/alias/%2e%2e/private/report.pdf", 404, ".. segment"},
		{"/private/%zz", 404, "percent-encoding"},
		{"@protected", 404, "named locations"},
		{"private/report.pdf", 404, "starting with /"},
		{"", 404, "starting with /"},
		{"/private/sub", 404, "directory"},
		{"/alias/a", 404, "directory"},
		// No file there: nginx would have run the front controller.
		{"/no/such/page", 404, "no such file"},
		{"/private/report.pdf%00.txt", 404, "control character"},
	} {
		w := accelGet(e, "GET", tc.accel)
		h := w.Header()
		if w.Code != tc.status || h.Get("Content-Disposition") != "" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
			t.Errorf("%q: %d %v, want %d, plain text, no Content-Disposition", tc.accel, w.Code, h, tc.status)
		}
		if h.Get("Set-Cookie") != "sid=new; Path=/" {
			t.Errorf("%q: the app's Set-Cookie was lost: %v", tc.accel, h)
		}
		if strings.Contains(w.Body.String(), "php output") || strings.Contains(w.Body.String(), "password") {
			t.Errorf("%q: body %q", tc.accel, w.Body)
		}
		log := e.lastLog(t)
		if msg, _ := log["error"].(string); log["level"] != "WARN" || !strings.Contains(msg, tc.why) || !strings.Contains(msg, "X-Accel-Redirect") {
			t.Errorf("%q: log %v, want a warning saying %q", tc.accel, log, tc.why)
		}
	}
}

// Clients cannot reach an internal location, by any spelling of its path,
// as with nginx's internal; the same files through the app are served.
func TestInternalPathsHiddenFromClients(t *testing.T) {
	e, _ := accelEnv(t, nil, WithMount("django", []string{"/private/django/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "django")
	})))
	for _, target := range []string{
		"/private/report.pdf", "/private/", "/private", "//private/report.pdf", "/x/../private/report.pdf",
		"/%70rivate/report.pdf", "/private/secret.php", "/private/nothing", "/alias/invoice-42.pdf",
		"/alias/", "/private/django/x",
	} {
		w := e.do(httptest.NewRequest("GET", target, nil))
		if w.Code != 404 || strings.Contains(w.Body.String(), "report") || strings.Contains(w.Body.String(), "django") {
			t.Errorf("%s: %d %q, want 404", target, w.Code, w.Body)
		}
	}
	if n := e.php.calls(); n != 0 {
		t.Errorf("PHP ran %d times for internal paths", n)
	}
	// Paths that only look alike stay public.
	if w := e.do(httptest.NewRequest("GET", "/privatefile.txt", nil)); w.Code != 200 {
		t.Errorf("/privatefile.txt: %d, want 200 from PHP's front controller", w.Code)
	}
}

// The file is sent the way a static file is: ranges, HEAD, revalidation,
// and for a POST (a form that answered with a download) the file too.
func TestAccelRedirectLikeAStaticFile(t *testing.T) {
	e, _ := accelEnv(t, http.Header{"Cache-Control": {"private, max-age=60"}})
	w := accelGet(e, "GET", "/private/report.pdf", "Range", "bytes=0-3")
	if w.Code != 206 || w.Body.String() != "%PDF" || w.Header().Get("Content-Range") != "bytes 0-3/15" {
		t.Errorf("range: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = accelGet(e, "GET", "/private/report.pdf")
	etag := w.Header().Get("Etag")
	if w.Header().Get("Content-Type") != "application/pdf" || w.Header().Get("Cache-Control") != "private, max-age=60" || etag == "" {
		t.Errorf("without the app's Content-Type: the file's by extension, and the app's Cache-Control: %v", w.Header())
	}
	if w := accelGet(e, "GET", "/private/report.pdf", "If-None-Match", etag); w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("revalidation: %d %q", w.Code, w.Body)
	}
	if w := accelGet(e, "HEAD", "/private/report.pdf"); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "15" {
		t.Errorf("HEAD: %d %q %v", w.Code, w.Body, w.Header())
	}
	if w := accelGet(e, "POST", "/private/report.pdf"); w.Code != 200 || w.Body.String() != "%PDF-1.7 report" {
		t.Errorf("POST: %d %q", w.Code, w.Body)
	}
	// A download keeps its length and ranges: never compressed.
	w = accelGet(e, "GET", "/alias/a/b.txt", "Accept-Encoding", "gzip")
	if w.Header().Get("Content-Encoding") != "" || w.Body.String() != "alias b" {
		t.Errorf("compressed: %v %q", w.Header(), w.Body)
	}
}

// A Django mount's X-Accel-Redirect (django-sendfile2) is carried out the
// same way; its other answers pass untouched, streamed ones included.
func TestAccelRedirectFromAMount(t *testing.T) {
	e, _ := accelEnv(t, nil, WithMount("django", []string{"/accounts/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("accel"); v != "" {
			w.Header().Set("X-Accel-Redirect", v)
			w.Header().Set("Content-Type", "application/pdf")
			w.Header().Set("Vary", "Cookie")
			w.WriteHeader(200)
			io.WriteString(w, "ignored")
			w.(http.Flusher).Flush()
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "second")
	})))
	w := e.do(httptest.NewRequest("GET", "/accounts/dl/?accel=/alias/invoice-42.pdf", nil))
	if w.Code != 200 || w.Body.String() != "%PDF invoice 42" || w.Header().Get("Vary") != "Cookie" || w.Header().Get("X-Accel-Redirect") != "" {
		t.Errorf("django accel: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = e.do(httptest.NewRequest("GET", "/accounts/page/", nil))
	if w.Code != 200 || w.Body.String() != "first second" || !w.Flushed {
		t.Errorf("django page: %d %q flushed=%v", w.Code, w.Body, w.Flushed)
	}
}

// A conditional request the file fails (412), or a range it does not
// have (416), gets no copy of the file:
// what the app said about the download (its Cache-Control, shared caches
// included, its Content-Disposition and Expires) does not describe the
// refusal, which a shared cache could otherwise keep for every client of
// the URL, as for a static file's 412.
func TestAccelRedirectPreconditionFailed(t *testing.T) {
	e, _ := accelEnv(t, http.Header{
		"Cache-Control":       {"public, max-age=600"},
		"Content-Disposition": {`attachment; filename="report.pdf"`},
		"Expires":             {"Thu, 01 Jan 2099 00:00:00 GMT"},
		"Set-Cookie":          {"dl=1; Path=/"},
	})
	for _, tc := range []struct {
		hdr    []string
		status int
	}{
		{[]string{"If-Match", `"other"`}, http.StatusPreconditionFailed},
		{[]string{"If-Unmodified-Since", "Wed, 01 Jan 2020 00:00:00 GMT"}, http.StatusPreconditionFailed},
		{[]string{"Range", "bytes=100-"}, http.StatusRequestedRangeNotSatisfiable},
	} {
		hdr := tc.hdr
		w := accelGet(e, "GET", "/private/report.pdf", hdr...)
		h := w.Header()
		if w.Code != tc.status || strings.Contains(w.Body.String(), "report") {
			t.Errorf("%q: %d %q, want %d", hdr, w.Code, w.Body, tc.status)
		}
		for _, name := range []string{"Cache-Control", "Content-Disposition", "Expires"} {
			if v := h.Get(name); v != "" {
				t.Errorf("%q: the %d carries the download's %s: %q", hdr, w.Code, name, v)
			}
		}
		if h.Get("Set-Cookie") != "dl=1; Path=/" {
			t.Errorf("%q: the app's Set-Cookie was lost: %v", hdr, h)
		}
	}
	// The file itself, and its revalidation, keep them.
	w := accelGet(e, "GET", "/private/report.pdf", "If-Match", "*")
	if w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=600" || w.Header().Get("Content-Disposition") == "" {
		t.Errorf("If-Match *: %d %v", w.Code, w.Header())
	}
	w = accelGet(e, "GET", "/private/report.pdf", "If-None-Match", w.Header().Get("Etag"))
	if w.Code != 304 || w.Header().Get("Cache-Control") != "public, max-age=600" {
		t.Errorf("304: %d %v", w.Code, w.Header())
	}
}

// A value ending in "/" names a directory, as nginx reads it (open()
// of "report.pdf/" fails): a file with a slash after its name is not
// sent, as a client's request for it is not.
func TestAccelRedirectTrailingSlash(t *testing.T) {
	e, alias := accelEnv(t, http.Header{"Content-Disposition": {"attachment"}})
	if err := os.WriteFile(filepath.Join(alias, "index.html"), []byte("alias index"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/private/report.pdf/", "/private/report.pdf/.", "/alias/invoice-42.pdf/", "/alias/a/b.txt//",
		"/private/report.pdf%2F", "/alias/", "/alias/a/"} {
		w := accelGet(e, "GET", target)
		if w.Code != 404 || strings.Contains(w.Body.String(), "PDF") || strings.Contains(w.Body.String(), "alias") {
			t.Errorf("%q: %d %q, want 404", target, w.Code, w.Body)
		}
		if msg, _ := e.lastLog(t)["error"].(string); !strings.Contains(msg, "directory") {
			t.Errorf("%q: log %q, want the reason", target, msg)
		}
	}
	if w := accelGet(e, "GET", "/private/report.pdf"); w.Code != 200 {
		t.Errorf("the file itself: %d", w.Code)
	}
}

// An X-Accel-Redirect into a path the client is kept out of (403, 401)
// is refused without what the app said about the download: its freshness
// would let a shared cache keep the refusal for every client of the URL,
// as for the other refusals of the redirect.
func TestAccelRedirectRestrictedRefusal(t *testing.T) {
	e := keptOutEnv(t)
	target := ""
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{
			"X-Accel-Redirect":    {target},
			"Content-Type":        {"text/plain"},
			"Content-Disposition": {"attachment"},
			"Cache-Control":       {"public, max-age=600"},
			"Expires":             {"Thu, 01 Jan 2099 00:00:00 GMT"},
			"Set-Cookie":          {"dl=1; Path=/"},
		}, Body: http.NoBody, Request: r}, nil
	}
	for _, tc := range []struct {
		target string
		want   int
	}{{"/private/data.txt", 401}, {"/office/data.txt", 403}} {
		target = tc.target
		r := rawRequest(t, "GET /hello.php HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = "192.0.2.9:1"
		w := e.do(r)
		h := w.Header()
		if w.Code != tc.want || strings.Contains(w.Body.String(), "SECRETTXT") {
			t.Errorf("%s: %d %q, want %d", tc.target, w.Code, w.Body, tc.want)
		}
		for _, name := range []string{"Cache-Control", "Content-Disposition", "Expires"} {
			if v := h.Get(name); v != "" {
				t.Errorf("%s: the %d carries the download's %s: %q", tc.target, w.Code, name, v)
			}
		}
		if h.Get("Set-Cookie") != "dl=1; Path=/" {
			t.Errorf("%s: the app's Set-Cookie was lost: %v", tc.target, h)
		}
	}
}

// A change the app made that was lost after its headers were handled (the
// session bridge's RequestInfo.Unsaved: PHP's end-of-request session
// write refused) turns the X-Accel-Redirect, whose file has not gone out,
// into that error: the download would tell the client the change was kept.
// The app's headers go with the file; the access log says why.
func TestAccelRedirectChangeLostAfterHeaders(t *testing.T) {
	lost := errors.New("lock lease lost")
	e, _ := accelEnv(t, nil, WithMount("django", []string{"/accounts/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Accel-Redirect", "/alias/invoice-42.pdf")
		w.Header().Set("Content-Disposition", "attachment")
		w.Header().Set("Set-Cookie", "sessionid=new; Path=/")
		w.WriteHeader(200)
		if r.URL.Query().Get("lose") != "" {
			Info(r.Context()).Unsaved = &UnsavedAnswer{Status: 503, Text: "session could not be saved, retry", Err: lost}
		}
	})))
	w := e.do(httptest.NewRequest("GET", "/accounts/dl/?lose=1", nil))
	h := w.Header()
	if w.Code != 503 || strings.Contains(w.Body.String(), "PDF") || h.Get("Retry-After") == "" ||
		h.Get("Content-Disposition") != "" || h.Get("Set-Cookie") != "" {
		t.Errorf("change lost: %d %q %v, want 503 without the file or the app's headers", w.Code, w.Body, h)
	}
	if log := e.lastLog(t); log["status"] != float64(503) || !strings.Contains(fmt.Sprint(log["error"]), "lock lease lost") {
		t.Errorf("access log %v", log)
	}
	if w := e.do(httptest.NewRequest("GET", "/accounts/dl/", nil)); w.Code != 200 || w.Body.String() != "%PDF invoice 42" {
		t.Errorf("change kept: %d %q", w.Code, w.Body)
	}
}

// The freshness an app gave its download for the caches of a CDN
// (CDN-Cache-Control, RFC 9213; Surrogate-Control, which Fastly and Akamai
// read) is as much the download's as its Cache-Control: an error in its
// place (a file gone during a deploy, a 412) kept it, and a CDN, which
// reads those before Cache-Control, kept the error for every client of
// the URL, for a year with an immutable file's "max-age=31536000". A
// value that keeps the answer out of shared caches stays, as for
// Cache-Control.
func TestAccelRedirectErrorDropsCDNFreshness(t *testing.T) {
	e, _ := accelEnv(t, http.Header{
		"Cdn-Cache-Control": {"max-age=31536000"},
		"Surrogate-Control": {"max-age=31536000"},
	})
	for _, tc := range []struct {
		target string
		hdr    []string
		status int
	}{
		{"/private/missing.pdf", nil, http.StatusNotFound},
		{"/private/report.pdf", []string{"If-Match", `"other"`}, http.StatusPreconditionFailed},
	} {
		w := accelGet(e, "GET", tc.target, tc.hdr...)
		if w.Code != tc.status {
			t.Fatalf("%s %q: %d, want %d", tc.target, tc.hdr, w.Code, tc.status)
		}
		for _, name := range []string{"Cdn-Cache-Control", "Surrogate-Control"} {
			if v := w.Header().Get(name); v != "" {
				t.Errorf("%s %q: the %d carries the download's %s: %q", tc.target, tc.hdr, w.Code, name, v)
			}
		}
	}
	e, _ = accelEnv(t, http.Header{"Cdn-Cache-Control": {"no-store"}, "Surrogate-Control": {"private"}})
	w := accelGet(e, "GET", "/private/missing.pdf")
	if w.Code != http.StatusNotFound || w.Header().Get("Cdn-Cache-Control") != "no-store" || w.Header().Get("Surrogate-Control") != "private" {
		t.Errorf("no-store for CDNs: %d %v", w.Code, w.Header())
	}
	w = accelGet(e, "GET", "/private/report.pdf")
	if w.Code != http.StatusOK || w.Header().Get("Cdn-Cache-Control") != "no-store" {
		t.Errorf("the file: %d %v", w.Code, w.Header())
	}
}

// An error in place of a download keeps the app's Cache-Control only when
// a directive of it, by its exact name and without an argument, keeps
// the answer from being reused by shared caches (no-store, private,
// no-cache). The qualified forms hold back only the fields they name
// (RFC 9111 sections 5.2.2.4 and 5.2.2.7): "no-cache="Set-Cookie"" is
// the HTTP/1.1 idiom for "cache this, but not its cookie". A substring
// match kept "public, max-age=31536000" with them, and Surrogate-Control's
// no-store-remote (which lets the surrogate next to the origin store the
// answer), so a CDN kept the 404 of a file gone during a deploy, or a
// 412, for a year for every client of the URL. (http.ServeContent takes
// Cache-Control off its 416 itself.)
func TestAccelRedirectErrorDropsQualifiedPrivate(t *testing.T) {
	for _, tc := range []struct {
		field string
		app   []string
		kept  bool
	}{
		{"Cache-Control", []string{`public, max-age=31536000, no-cache="Set-Cookie"`}, false},
		{"Cache-Control", []string{`public, max-age=31536000, private="Set-Cookie"`}, false},
		{"Cache-Control", []string{`public, max-age=31536000, private="X-User, no-store"`}, false},
		{"Surrogate-Control", []string{"max-age=31536000, no-store-remote"}, false},
		{"Cache-Control", []string{"max-age=60, Private"}, true},
		{"Cache-Control", []string{"no-cache, max-age=0"}, true},
		{"Cache-Control", []string{"public, max-age=600", "no-store"}, true},
	} {
		e, _ := accelEnv(t, http.Header{tc.field: tc.app})
		for _, req := range []struct {
			target string
			hdr    []string
			status int
		}{
			{"/private/missing.pdf", nil, http.StatusNotFound},
			{"/private/report.pdf", []string{"If-Match", `"other"`}, http.StatusPreconditionFailed},
		} {
			w := accelGet(e, "GET", req.target, req.hdr...)
			if w.Code != req.status {
				t.Fatalf("%s %q: %d, want %d", req.target, req.hdr, w.Code, req.status)
			}
			got := w.Header().Values(tc.field)
			if kept := len(got) > 0; kept != tc.kept || kept && strings.Join(got, "\n") != strings.Join(tc.app, "\n") {
				t.Errorf("app's %s %q: the %d (%s %q) carries %q, kept: %v", tc.field, tc.app, w.Code, req.target, req.hdr, got, tc.kept)
			}
		}
	}
}

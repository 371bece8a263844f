package server

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/fcgi"
)

const (
	maintenancePage = "<h1>Back soon</h1>\n"
	notFoundPage    = "<h1>No such page</h1>\n"
)

// errorPageEnv is a site with SESSIONGATE_ERROR_PAGES set: 502 and 504 get
// a maintenance page from an internal alias directory, 404 and 429 a
// public page of the site. PHP answers /down.php with php-fpm down,
// /slow.php with a timeout, /missing.php with its own 404 page, anything
// else with 200.
func errorPageEnv(t *testing.T) (*env, string) {
	t.Helper()
	pages := t.TempDir()
	if err := os.WriteFile(filepath.Join(pages, "50x.html"), []byte(maintenancePage), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *config.Config) {
		c.InternalPaths = []string{"/errors/=" + pages}
		c.ErrorPageSpecs = []string{"502 504=/errors/50x.html", "404 429=/404.html"}
		c.RateLimitSpecs = []string{"/limited.php 1r/m"}
	})
	if err := os.WriteFile(filepath.Join(e.root, "404.html"), []byte(notFoundPage), 0o644); err != nil {
		t.Fatal(err)
	}
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		switch r.URL.Path {
		case "/down.php":
			return nil, &fcgi.Error{Status: 502, Op: "dial", Err: errors.New("connection refused")}
		case "/slow.php":
			return nil, &fcgi.Error{Status: 504, Op: "read response header", Err: errors.New("i/o timeout")}
		case "/missing.php":
			return &http.Response{StatusCode: 404, Header: http.Header{"Content-Type": {"text/html"}}, Body: io.NopCloser(strings.NewReader("the app's own 404")), Request: r}, nil
		}
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: io.NopCloser(strings.NewReader("php")), Request: r}, nil
	}
	for _, name := range []string{"down.php", "slow.php", "missing.php", "limited.php", ".env"} {
		if err := os.WriteFile(filepath.Join(e.root, name), []byte("<?php"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e, pages
}

func TestErrorPagesReplaceTheGatewaysOwnErrors(t *testing.T) {
	e, _ := errorPageEnv(t)
	e.do(httptest.NewRequest("GET", "/limited.php", nil)) // the one request the limit allows
	for _, tc := range []struct {
		target string
		status int
		body   string
	}{
		{"/down.php", 502, maintenancePage},
		{"/slow.php", 504, maintenancePage},
		{"/.env", 404, notFoundPage},
		{"/errors/50x.html", 404, notFoundPage}, // internal: not for clients
		{"/limited.php", 429, notFoundPage},
		// PHP's own error page is the app's answer, as with nginx's
		// fastcgi_intercept_errors off.
		{"/missing.php", 404, "the app's own 404"},
		{"/hello.php", 200, "php"},
	} {
		w := e.do(httptest.NewRequest("GET", tc.target, nil))
		if w.Code != tc.status || w.Body.String() != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.target, w.Code, w.Body, tc.status, tc.body)
		}
		if tc.body == maintenancePage || tc.body == notFoundPage {
			if ct := w.Header().Get("Content-Type"); ct != "text/html" {
				t.Errorf("%s: Content-Type %q", tc.target, ct)
			}
		}
	}
	w := e.do(httptest.NewRequest("GET", "/limited.php", nil))
	if w.Header().Get("Retry-After") == "" {
		t.Errorf("429 with its page lost Retry-After: %v", w.Header())
	}
	w = e.do(httptest.NewRequest("HEAD", "/down.php", nil))
	if w.Code != 502 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "19" {
		t.Errorf("HEAD: %d %q %v", w.Code, w.Body, w.Header())
	}
	// 413 has no page: the line of text stays.
	r := httptest.NewRequest("POST", "/hello.php", strings.NewReader(strings.Repeat("x", 2<<20)))
	if w := e.do(r); w.Code != 413 || w.Body.String() != "Request Entity Too Large\n" {
		t.Errorf("413: %d %q", w.Code, w.Body)
	}
}

// A page that cannot be sent leaves the text answer in place; the
// operator hears of it at start and once per outage, not per request.
func TestErrorPageMissingFallsBackToText(t *testing.T) {
	e, pages := errorPageEnv(t)
	os.Remove(filepath.Join(pages, "50x.html"))
	for range 3 {
		if w := e.do(httptest.NewRequest("GET", "/down.php", nil)); w.Code != 502 || w.Body.String() != "Bad Gateway\n" {
			t.Fatalf("no page: %d %q", w.Code, w.Body)
		}
	}
	warnings := func() int {
		return strings.Count(e.logs.String(), `cannot be sent; errors get a line of text until it can","page":"/errors/50x.html"`)
	}
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings for a missing page, want 1:\n%s", n, e.logs)
	}
	os.WriteFile(filepath.Join(pages, "50x.html"), []byte(maintenancePage), 0o644)
	if w := e.do(httptest.NewRequest("GET", "/down.php", nil)); w.Code != 502 || w.Body.String() != maintenancePage {
		t.Errorf("page back: %d %q", w.Code, w.Body)
	}
	if !strings.Contains(e.logs.String(), "page sent again") {
		t.Errorf("no note that the page is back:\n%s", e.logs)
	}
	os.Remove(filepath.Join(pages, "50x.html"))
	e.do(httptest.NewRequest("GET", "/down.php", nil))
	if n := warnings(); n != 2 {
		t.Errorf("%d warnings after the page went again, want 2", n)
	}
}

// At start, a page that is not there is named with the variable, once
// however many codes share it; the /404.html of errorPageEnv is written
// after New, so it is missing then.
func TestErrorPageCheckedAtStart(t *testing.T) {
	e, _ := errorPageEnv(t)
	logs := e.logs.String()
	if n := strings.Count(logs, `"page":"/404.html"`); n != 1 || !strings.Contains(logs, "SESSIONGATE_ERROR_PAGES") {
		t.Errorf("want one start-up warning naming /404.html and the variable:\n%s", logs)
	}
	if strings.Contains(logs, "50x.html") {
		t.Errorf("a page that is there was warned about:\n%s", logs)
	}
	// The first request that can send it says so.
	e.do(httptest.NewRequest("GET", "/.env", nil))
	if !strings.Contains(e.logs.String(), "page sent again") {
		t.Errorf("no note once /404.html could be sent:\n%s", e.logs)
	}
}

// An X-Accel-Redirect that fails answers with the error page, without the
// download headers the app set for the file.
func TestErrorPageAfterFailedAccelRedirect(t *testing.T) {
	e, _ := errorPageEnv(t)
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		h := http.Header{
			"X-Accel-Redirect":    {"/errors/no-such.pdf"},
			"Content-Type":        {"application/pdf"},
			"Content-Disposition": {`attachment; filename="r.pdf"`},
			"Content-Length":      {"5"},
			"Set-Cookie":          {"a=b"},
		}
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader("x")), Request: r}, nil
	}
	w := e.do(httptest.NewRequest("GET", "/hello.php", nil))
	h := w.Header()
	if w.Code != 404 || w.Body.String() != notFoundPage || h.Get("Content-Disposition") != "" || h.Get("Content-Type") != "text/html" || h.Get("Set-Cookie") != "a=b" {
		t.Errorf("%d %q %v", w.Code, w.Body, h)
	}
}

// A page of 256 bytes or more is gzipped like any HTML the gateway sends,
// with the error's status.
func TestErrorPageCompressed(t *testing.T) {
	e, pages := errorPageEnv(t)
	page := "<!doctype html>" + strings.Repeat("<p>We are updating the shop.</p>\n", 40)
	os.WriteFile(filepath.Join(pages, "50x.html"), []byte(page), 0o644)
	r := httptest.NewRequest("GET", "/down.php", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := e.do(r)
	if w.Code != 502 || w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || string(got) != page {
		t.Errorf("gunzipped page: %q %v", got, err)
	}
}

// On the port-80 redirect listener, which has no compressing writer, a HEAD
// for an error page the gzip cache did not hold yet went out plain with
// the page's whole length, which the writer that gives a HEAD the GET's
// headers would have set; the GET then got the cache's gzipped copy. Both
// get the GET's headers now (RFC 9110 section 9.3.2).
func TestErrorPageHeadOnTheRedirectListener(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Listen = ":443"
		c.ErrorPageSpecs = []string{"404=/404.html"}
	})
	page := "<!doctype html>" + strings.Repeat("<p>No such page here.</p>\n", 200)
	os.WriteFile(filepath.Join(e.root, "404.html"), []byte(page), 0o644)
	do := func(method string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://example.com/.well-known/acme-challenge/missing", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		return e.redirect(r)
	}
	h, g := do("HEAD"), do("GET")
	if g.Code != 404 || h.Code != 404 || h.Body.Len() != 0 {
		t.Fatalf("GET %d, HEAD %d %q", g.Code, h.Code, h.Body)
	}
	for _, k := range []string{"Content-Encoding", "Content-Length", "Content-Type", "Vary"} {
		if g.Header().Get(k) != h.Header().Get(k) {
			t.Errorf("%s: GET %q, HEAD %q", k, g.Header().Get(k), h.Header().Get(k))
		}
	}
	if g.Header().Get("Content-Encoding") != "gzip" || g.Header().Get("Content-Length") != strconv.Itoa(g.Body.Len()) {
		t.Errorf("GET: %v, %d bytes", g.Header(), g.Body.Len())
	}
}

// The page is gzipped through the static gzip cache, once, not anew for
// each of the errors scanners cause; a HEAD gets the GET's headers.
func TestErrorPageGzippedFromTheCache(t *testing.T) {
	e, _ := errorPageEnv(t)
	page := "<!doctype html>" + strings.Repeat("<p>No such page here.</p>\n", 2000)
	os.WriteFile(filepath.Join(e.root, "404.html"), []byte(page), 0o644)
	get := func(method string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/.env", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		return e.do(r)
	}
	for range 3 {
		w := get("GET")
		if w.Code != 404 || w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) {
			t.Fatalf("%d %v", w.Code, w.Header())
		}
		zr, _ := gzip.NewReader(w.Body)
		if b, _ := io.ReadAll(zr); string(b) != page {
			t.Fatal("gunzipped page differs")
		}
	}
	st, _ := e.srv.GzipCacheStats()
	if st.Files != 1 || st.Misses != 1 {
		t.Errorf("gzip cache %+v, want the page compressed once", st)
	}
	g, h := get("GET"), get("HEAD")
	for _, k := range []string{"Content-Type", "Content-Encoding", "Vary", "Content-Length"} {
		if g.Header().Get(k) != h.Header().Get(k) {
			t.Errorf("%s: GET %q, HEAD %q", k, g.Header().Get(k), h.Header().Get(k))
		}
	}
	if h.Code != 404 || h.Body.Len() != 0 {
		t.Errorf("HEAD: %d %q", h.Code, h.Body)
	}
	// Ranges and validators do not apply to an error page.
	r := httptest.NewRequest("GET", "/.env", nil)
	r.Header.Set("Range", "bytes=0-3")
	r.Header.Set("If-None-Match", "*")
	if w := e.do(r); w.Code != 404 || w.Body.String() != page || w.Header().Get("Content-Range") != "" || w.Header().Get("ETag") != "" {
		t.Errorf("with Range and If-None-Match: %d %v", w.Code, w.Header())
	}
}

// TestErrorPageHeadBeforeAnyGetGetsTheGzippedHeaders: the first HEAD of
// an error page the gateway gzips, before a GET put its copy in the cache,
// gets the GET's headers, the copy's Content-Length included. It went
// out with Content-Encoding: gzip and no length.
func TestErrorPageHeadBeforeAnyGetGetsTheGzippedHeaders(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.ErrorPageSpecs = []string{"404=/404.html"} })
	page := "<!doctype html>" + strings.Repeat("<p>No such page here.</p>\n", 40)
	os.WriteFile(filepath.Join(e.root, "404.html"), []byte(page), 0o644)
	res := headersOfHeadAndGet(t, e, "/.env")
	head, get := res[0], res[1]
	if get.StatusCode != 404 || get.Header.Get("Content-Encoding") != "gzip" || get.Header.Get("Content-Length") == "" {
		t.Fatalf("GET: %d %v", get.StatusCode, get.Header)
	}
	for _, k := range []string{"Content-Encoding", "Content-Length", "Vary", "Content-Type"} {
		for i, h := range []*http.Response{head, res[2]} {
			if h.StatusCode != 404 || h.Header.Get(k) != get.Header.Get(k) {
				t.Errorf("%s: GET %q, HEAD %d: %d %q", k, get.Header.Get(k), i+1, h.StatusCode, h.Header.Get(k))
			}
		}
	}
}

// A page whose extension gives it no type is named at start: browsers
// would offer it as a download.
func TestErrorPageWithoutTypeWarns(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.ErrorPageSpecs = []string{"404 502=/maintenance"} })
	if logs := e.logs.String(); !strings.Contains(logs, "no type") || !strings.Contains(logs, `"statuses":[404,502]`) {
		t.Errorf("no warning naming the page's statuses:\n%s", logs)
	}
}

// A failed X-Accel-Redirect does not hand the download's freshness to the
// 404: a shared cache would keep the error for a year. A Cache-Control
// that keeps the answer private stays.
func TestErrorPageAfterFailedAccelDropsDownloadCaching(t *testing.T) {
	e, _ := errorPageEnv(t)
	cacheControl := ""
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		h := http.Header{
			"X-Accel-Redirect": {"/errors/no-such.pdf"},
			"Content-Type":     {"application/pdf"},
			"Cache-Control":    {cacheControl},
			"Expires":          {"Fri, 03 Dec 2027 00:00:00 GMT"},
		}
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	for cc, want := range map[string]string{"public, max-age=31536000, immutable": "", "private, max-age=60": "private, max-age=60", "no-store": "no-store"} {
		cacheControl = cc
		w := e.do(httptest.NewRequest("GET", "/hello.php", nil))
		if w.Code != 404 || w.Header().Get("Cache-Control") != want || w.Header().Get("Expires") != "" {
			t.Errorf("app's Cache-Control %q: 404 page with Cache-Control %q Expires %q, want %q and none", cc, w.Header().Get("Cache-Control"), w.Header().Get("Expires"), want)
		}
	}
}

// TestTextErrorHeadHasLength: a HEAD answered with the gateway's line of
// text gets the headers its GET gets, Content-Length included (RFC 9110
// 9.3.2), as nginx's HEAD of an error does: a monitor or a link checker
// that probes with HEAD saw no length where the GET had one.
func TestTextErrorHeadHasLength(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Index = config.IndexOff })
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	for _, target := range []string{"/missing.css", "/dir"} {
		var lengths [2]string
		var codes [2]int
		for i, method := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(method, srv.URL+target, nil)
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			codes[i], lengths[i] = res.StatusCode, res.Header.Get("Content-Length")
		}
		if codes[0] < 300 || codes[1] != codes[0] || lengths[0] == "" || lengths[1] != lengths[0] {
			t.Errorf("%s: GET %d Content-Length %q, HEAD %d Content-Length %q; want an error with the same length",
				target, codes[0], lengths[0], codes[1], lengths[1])
		}
	}
}

// An error page kept as .svgz is a gzip stream already (typed
// image/svg+xml, as nginx types it): it goes out as it is, for GET and
// HEAD, as the same file does as a static file, never gzipped again into
// a stream a browser unpacks once and cannot show.
func TestErrorPageSvgzNotGzippedAgain(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.ErrorPageSpecs = []string{"404=/404.svgz"}
	})
	var svgz strings.Builder
	zw := gzip.NewWriter(&svgz)
	io.WriteString(zw, `<svg xmlns="http://www.w3.org/2000/svg">`+strings.Repeat(`<text>No such page</text>`, 200)+`</svg>`)
	zw.Close()
	// Random-looking bytes after the stream keep it above the
	// compression threshold.
	page := svgz.String() + strings.Repeat("\x00", 2048)
	if err := os.WriteFile(filepath.Join(e.root, "404.svgz"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, ".env"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"GET", "HEAD", "GET"} {
		r := httptest.NewRequest(method, "/.env", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := e.do(r)
		if w.Code != 404 || w.Header().Get("Content-Encoding") != "" || w.Header().Get("Content-Type") != "image/svg+xml" ||
			w.Header().Get("Content-Length") != strconv.Itoa(len(page)) {
			t.Fatalf("%s: %d %v", method, w.Code, w.Header())
		}
		if method == "GET" && w.Body.String() != page {
			t.Fatalf("GET: the page's own bytes did not go out (%d bytes)", w.Body.Len())
		}
	}
}

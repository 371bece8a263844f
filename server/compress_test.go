package server

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

var bigCSS = strings.Repeat("body { color: red; margin: 0 auto; }\n", 100)

func writeFile(t *testing.T, path, body string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	io.WriteString(zw, s)
	zw.Close()
	return b.String()
}

// TestStaticCompressed: a static text file goes out gzipped to a client
// that accepts gzip, as with nginx's gzip on; to one that does not, as it
// is; and Range requests still get ranges of the file itself.
func TestStaticCompressed(t *testing.T) {
	e := newEnv(t, nil)
	writeFile(t, filepath.Join(e.root, "app.css"), bigCSS, time.Now())

	r := httptest.NewRequest("GET", "/app.css", nil)
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	w := e.do(r)
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if !strings.HasPrefix(w.Header().Get("ETag"), `W/"`) || w.Header().Get("Accept-Ranges") != "" {
		t.Errorf("ETag %q Accept-Ranges %q", w.Header().Get("ETag"), w.Header().Get("Accept-Ranges"))
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); string(got) != bigCSS {
		t.Errorf("gunzipped body differs")
	}
	etag := w.Header().Get("ETag")

	// Revalidation with the weak tag: 304.
	r = httptest.NewRequest("GET", "/app.css", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("If-None-Match", etag)
	if w := e.do(r); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d", etag, w.Code)
	}

	r = httptest.NewRequest("GET", "/app.css", nil)
	w = e.do(r)
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "" || w.Body.String() != bigCSS || w.Header().Get("Vary") != "Accept-Encoding" {
		t.Errorf("without Accept-Encoding: %d %v", w.Code, w.Header())
	}

	r = httptest.NewRequest("GET", "/app.css", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("Range", "bytes=0-3")
	w = e.do(r)
	if w.Code != http.StatusPartialContent || w.Header().Get("Content-Encoding") != "" || w.Body.String() != bigCSS[:4] {
		t.Errorf("Range: %d %v %q", w.Code, w.Header(), w.Body)
	}
}

// TestStaticPrecompressed: app.css.br or app.css.gz next to app.css is
// sent instead of compressing app.css again, to clients that accept its
// coding (nginx's brotli_static, gzip_static), unless it is older than
// app.css, a leftover of an earlier build.
func TestStaticPrecompressed(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Precompressed = []string{"/"} })
	now := time.Now()
	css := filepath.Join(e.root, "app.css")
	writeFile(t, css, bigCSS, now)
	gz := gzipped(t, bigCSS)
	writeFile(t, css+".gz", gz, now)
	writeFile(t, css+".br", "pretend-brotli", now.Add(time.Second))

	get := func(accept string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/app.css", nil)
		if accept != "" {
			r.Header.Set("Accept-Encoding", accept)
		}
		return e.do(r)
	}
	cases := []struct {
		accept, coding, body string
	}{
		{"gzip, deflate, br", "br", "pretend-brotli"},
		{"gzip", "gzip", gz},
		{"br;q=0, gzip", "gzip", gz},
		{"", "", bigCSS},
		{"deflate", "", bigCSS},
	}
	for _, c := range cases {
		w := get(c.accept)
		if w.Code != 200 || w.Header().Get("Content-Encoding") != c.coding || w.Body.String() != c.body {
			t.Errorf("Accept-Encoding %q: %d Content-Encoding %q body %d bytes, want %q and %d bytes",
				c.accept, w.Code, w.Header().Get("Content-Encoding"), w.Body.Len(), c.coding, len(c.body))
		}
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(len(c.body)) {
			t.Errorf("Accept-Encoding %q: Content-Length %q, want %d", c.accept, cl, len(c.body))
		}
		if w.Header().Get("Content-Type") != "text/css" || w.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Content-Type %q Vary %q", c.accept, w.Header().Get("Content-Type"), w.Header().Values("Vary"))
		}
	}

	// A precompressed copy is exact bytes: its tag is strong, and Range works on it.
	r := httptest.NewRequest("GET", "/app.css", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("Range", "bytes=0-1")
	if w := e.do(r); w.Code != http.StatusPartialContent || w.Body.String() != gz[:2] || w.Header().Get("Content-Encoding") != "gzip" {
		t.Errorf("Range on the .gz: %d %v %q", w.Code, w.Header(), w.Body)
	}

	// A precondition the copy fails: 412 with no body, and so no coding
	// to undo; a 304 has none either.
	for _, hdr := range [][2]string{
		{"If-Match", `"other"`},
		{"If-Unmodified-Since", now.Add(-time.Hour).UTC().Format(http.TimeFormat)},
		{"If-None-Match", "*"},
	} {
		r := httptest.NewRequest("GET", "/app.css", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		r.Header.Set(hdr[0], hdr[1])
		w := e.do(r)
		if w.Code != http.StatusPreconditionFailed && w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("Content-Encoding") != "" {
			t.Errorf("%s: %d %v %q, want 412 or 304 without a Content-Encoding or a body", hdr[0], w.Code, w.Header(), w.Body)
		}
	}

	// app.css rebuilt after the copies: they are stale and ignored.
	writeFile(t, css, bigCSS+"/* v2 */", now.Add(time.Hour))
	w := get("gzip, br")
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", w.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); string(got) != bigCSS+"/* v2 */" {
		t.Errorf("a stale precompressed copy was sent")
	}
}

// TestCompressOff: SESSIONGATE_COMPRESS=off sends everything as it is.
func TestCompressOff(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Compress, c.Precompressed = false, []string{"/"} })
	now := time.Now()
	writeFile(t, filepath.Join(e.root, "app.css"), bigCSS, now)
	writeFile(t, filepath.Join(e.root, "app.css.gz"), gzipped(t, bigCSS), now)
	r := httptest.NewRequest("GET", "/app.css", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := e.do(r)
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "" || w.Body.String() != bigCSS || w.Header().Get("Vary") != "" {
		t.Errorf("%d %v", w.Code, w.Header())
	}
}

// TestPHPResponseCompressed: a PHP page goes out gzipped, and the access
// log counts the bytes sent, as nginx's $body_bytes_sent does.
func TestPHPResponseCompressed(t *testing.T) {
	e := newEnv(t, nil)
	page := strings.Repeat("<li>item</li>\n", 200)
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/html; charset=UTF-8"}},
			Body: io.NopCloser(strings.NewReader(page)), ContentLength: -1, Request: r}, nil
	}
	r := httptest.NewRequest("GET", "/hello.php", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := e.do(r)
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	sent := w.Body.Len()
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); string(got) != page {
		t.Errorf("body differs")
	}
	if log := e.lastLog(t); log["bytes"] != float64(sent) {
		t.Errorf("logged bytes %v, sent %d", log["bytes"], sent)
	}
}

// TestCutPHPBodyNotCompletedByGzip: a PHP body cut short after the
// response started still reaches a gzip client as a cut response, neither
// a complete HTTP body nor a gzip stream that decodes to the end.
func TestCutPHPBodyNotCompletedByGzip(t *testing.T) {
	e := newEnv(t, nil)
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		body := io.MultiReader(strings.NewReader(strings.Repeat("<p>partial</p>", 100)), errReader{io.ErrUnexpectedEOF})
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: io.NopCloser(body), ContentLength: -1, Request: r}, nil
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/hello.php", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err == nil {
		t.Errorf("the cut body reached the client as complete (%d bytes, Content-Encoding %q)", len(raw), res.Header.Get("Content-Encoding"))
	}
	if zr, zerr := gzip.NewReader(bytes.NewReader(raw)); zerr == nil {
		if _, zerr = io.ReadAll(zr); zerr == nil {
			t.Errorf("what arrived decodes as a whole gzip stream")
		}
	}
}

// TestStaticGzipCached: a static text file is compressed once and then
// sent from memory; a new version of the file is compressed again; a
// Range request still gets ranges of the file itself.
func TestStaticGzipCached(t *testing.T) {
	e := newEnv(t, nil)
	css := filepath.Join(e.root, "app.css")
	now := time.Now()
	writeFile(t, css, bigCSS, now)
	get := func(method string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/app.css", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return e.do(r)
	}
	unzip := func(w *httptest.ResponseRecorder) string {
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatalf("not gzip: %v %v", err, w.Header())
		}
		b, _ := io.ReadAll(zr)
		return string(b)
	}
	w := get("GET")
	if w.Header().Get("Content-Encoding") != "gzip" || unzip(w) != bigCSS || w.Header().Get("Accept-Ranges") != "" {
		t.Fatalf("first: %v", w.Header())
	}
	sent := w.Header().Get("Content-Length")
	if n := e.srv.gzCache.Stats().Files; n != 1 || sent == "" {
		t.Fatalf("cache holds %d copies, Content-Length %q", n, sent)
	}
	w = get("HEAD")
	if w.Header().Get("Content-Length") != sent || w.Header().Get("Content-Encoding") != "gzip" || w.Body.Len() != 0 {
		t.Errorf("HEAD: %v", w.Header())
	}
	if w := get("GET", "If-None-Match", w.Header().Get("ETag")); w.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d", w.Code)
	}
	if w := get("GET", "Range", "bytes=0-3"); w.Code != http.StatusPartialContent || w.Body.String() != bigCSS[:4] || w.Header().Get("Content-Encoding") != "" {
		t.Errorf("Range: %d %v", w.Code, w.Header())
	}

	writeFile(t, css, bigCSS+"/* v2 */", now.Add(time.Second))
	if w := get("GET"); unzip(w) != bigCSS+"/* v2 */" {
		t.Errorf("the old version was sent after the file changed")
	}
	if n := e.srv.gzCache.Stats().Files; n != 2 {
		t.Errorf("cache holds %d copies, want 2", n)
	}

	// 304s need no compression: a file not yet cached is not compressed
	// for them.
	writeFile(t, filepath.Join(e.root, "other.css"), bigCSS, now)
	fresh := etag(mustStat(t, filepath.Join(e.root, "other.css")))
	for _, hdr := range [][]string{{"If-Modified-Since", now.Add(time.Hour).UTC().Format(http.TimeFormat)}, {"If-None-Match", "W/" + fresh}, {"If-None-Match", `"x", ` + fresh}} {
		r := httptest.NewRequest("GET", "/other.css", nil)
		r.Header.Set(hdr[0], hdr[1])
		r.Header.Set("Accept-Encoding", "gzip")
		if w := e.do(r); w.Code != http.StatusNotModified {
			t.Errorf("%s: %d, want 304", hdr, w.Code)
		}
	}
	if n := e.srv.gzCache.Stats().Files; n != 2 {
		t.Errorf("304s filled the cache: %d copies, want 2", n)
	}
	// A revalidation of a file that has changed since gets the new version
	// compressed (after a deploy, every returning visitor's first request).
	for i := 0; i < 2; i++ {
		r := httptest.NewRequest("GET", "/other.css", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		r.Header.Set("If-None-Match", `W/"old"`)
		r.Header.Set("If-Modified-Since", now.Add(-time.Hour).UTC().Format(http.TimeFormat))
		if w := e.do(r); w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip" {
			t.Errorf("stale revalidation %d: %d %v", i, w.Code, w.Header())
		}
	}
	if st := e.srv.gzCache.Stats(); st.Files != 3 || st.Uncached != 3 {
		t.Errorf("after the stale revalidations: %+v", st)
	}
	// If-Match is about the file's own bytes: the plain path answers it.
	r := httptest.NewRequest("GET", "/other.css", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("If-Match", fresh)
	if w := e.do(r); w.Code != 200 || w.Header().Get("Content-Encoding") != "" {
		t.Errorf("If-Match with the file's ETag: %d %v", w.Code, w.Header())
	}

	// SESSIONGATE_COMPRESS_CACHE=0: static files go out as they are, with
	// their length and ranges, never compressed on every request.
	e = newEnv(t, func(c *config.Config) { c.CompressCache = 0 })
	writeFile(t, filepath.Join(e.root, "app.css"), bigCSS, now)
	if w := get("GET"); w.Header().Get("Content-Encoding") != "" || w.Body.String() != bigCSS || w.Header().Get("Content-Length") == "" || e.srv.gzCache != nil {
		t.Errorf("without the cache: %v", w.Header())
	}
}

// headersOfHeadAndGet sends a HEAD, then a GET, then a HEAD again for
// target, accepting gzip, to a real listener of e's server, and returns
// their responses (the bodies read): what a client sees, not what the
// handler set.
func headersOfHeadAndGet(t *testing.T, e *env, target string) [3]*http.Response {
	t.Helper()
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	var got [3]*http.Response
	for i, method := range []string{"HEAD", "GET", "HEAD"} {
		req, _ := http.NewRequest(method, srv.URL+target, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		got[i] = res
	}
	return got
}

// TestStaticHeadBeforeAnyGetGetsTheGzippedHeaders: the first HEAD of a
// static file the gateway gzips, before any GET put its copy in the cache,
// gets the headers of the GET (RFC 9110 9.3.2): the gzipped copy's
// Content-Length and weak ETag. It went out with Content-Encoding: gzip
// and no length, while the GET and every HEAD after it had one.
func TestStaticHeadBeforeAnyGetGetsTheGzippedHeaders(t *testing.T) {
	e := newEnv(t, nil)
	writeFile(t, filepath.Join(e.root, "app.css"), bigCSS, time.Now())
	res := headersOfHeadAndGet(t, e, "/app.css")
	head, get := res[0], res[1]
	if get.Header.Get("Content-Encoding") != "gzip" || get.Header.Get("Content-Length") == "" {
		t.Fatalf("GET: %v", get.Header)
	}
	for _, k := range []string{"Content-Encoding", "Content-Length", "Etag", "Vary", "Content-Type", "Last-Modified"} {
		for i, h := range []*http.Response{head, res[2]} {
			if h.Header.Get(k) != get.Header.Get(k) {
				t.Errorf("%s: GET %q, HEAD %d %q", k, get.Header.Get(k), i+1, h.Header.Get(k))
			}
		}
	}
	if st := e.srv.gzCache.Stats(); st.Misses != 1 || st.Files != 1 {
		t.Errorf("gzip cache %+v, want one compression, by the first HEAD, kept for the GET", st)
	}
}

// TestPrecompressedOnlyWhereListed: name.gz next to a file is sent only
// under SESSIONGATE_PRECOMPRESSED, and never under SESSIONGATE_NO_PHP_PATHS,
// where users upload: there an uploaded pic.svg.gz would replace the
// pic.svg the app checked.
func TestPrecompressedOnlyWhereListed(t *testing.T) {
	now := time.Now()
	svg := `<svg xmlns="http://www.w3.org/2000/svg">` + strings.Repeat("<rect/>", 60) + `</svg>`
	evil := gzipped(t, `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	for _, tc := range []struct {
		name          string
		precompressed []string
		noPHP         []string
		wantCopy      bool
	}{
		{"default", nil, nil, false},
		{"listed elsewhere", []string{"/static/"}, nil, false},
		{"whole site", []string{"/"}, nil, true},
		{"listed directory", []string{"/uploads/"}, nil, true},
		{"upload directory", []string{"/"}, []string{"/uploads/"}, false},
	} {
		e := newEnv(t, func(c *config.Config) { c.Precompressed, c.NoPHPPaths = tc.precompressed, tc.noPHP })
		os.MkdirAll(filepath.Join(e.root, "uploads"), 0o755)
		writeFile(t, filepath.Join(e.root, "uploads", "pic.svg"), svg, now)
		writeFile(t, filepath.Join(e.root, "uploads", "pic.svg.gz"), evil, now.Add(time.Second))
		r := httptest.NewRequest("GET", "/uploads/pic.svg", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := e.do(r)
		if got := w.Body.String() == evil; got != tc.wantCopy {
			t.Errorf("%s: the .gz copy sent: %v, want %v (Content-Encoding %q)", tc.name, got, tc.wantCopy, w.Header().Get("Content-Encoding"))
		}
	}
}

type readFromCounter struct {
	*httptest.ResponseRecorder
	calls int
}

func (r *readFromCounter) ReadFrom(src io.Reader) (int64, error) {
	r.calls++
	return io.Copy(r.ResponseRecorder, src)
}

// TestEncodedCopyKeepsSendfile: a precompressed copy on disk goes out
// through the connection's ReadFrom (sendfile), like any static file.
func TestEncodedCopyKeepsSendfile(t *testing.T) {
	rr := &readFromCounter{ResponseRecorder: httptest.NewRecorder()}
	var w http.ResponseWriter = encodedCopy{rr, 5, false}
	rf, ok := w.(io.ReaderFrom)
	if !ok {
		t.Fatal("encodedCopy hides ReadFrom")
	}
	rf.ReadFrom(strings.NewReader("hello"))
	if rr.calls != 1 || rr.Body.String() != "hello" {
		t.Errorf("ReadFrom calls %d, body %q", rr.calls, rr.Body)
	}
}

func mustStat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestStaticGzip304CarriesWeakETag: a revalidation of a file a GET would
// get gzipped from the cache is answered 304 with the weak ETag that GET
// gets (RFC 9110 15.4.5), even when the gzipped copy has left the cache:
// a 304 with the file's strong ETag does not select the browser's stored
// gzipped response (RFC 9111 4.3.4), or relabels it as the plain file.
func TestStaticGzip304CarriesWeakETag(t *testing.T) {
	e := newEnv(t, nil)
	css := filepath.Join(e.root, "app.css")
	now := time.Now()
	writeFile(t, css, bigCSS, now)
	weak := "W/" + etag(mustStat(t, css))
	for _, hdr := range [][3]string{{"GET", "If-None-Match", weak}, {"GET", "If-Modified-Since", now.Add(time.Hour).UTC().Format(http.TimeFormat)}, {"HEAD", "If-None-Match", weak}} {
		r := httptest.NewRequest(hdr[0], "/app.css", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		r.Header.Set(hdr[1], hdr[2])
		w := e.do(r)
		if w.Code != http.StatusNotModified || w.Header().Get("ETag") != weak || w.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s %s, not cached: %d ETag %q Vary %q, want 304 %s", hdr[0], hdr[1], w.Code, w.Header().Get("ETag"), w.Header().Get("Vary"), weak)
		}
	}
	// Without gzip the 304 is the plain file's, strong.
	r := httptest.NewRequest("GET", "/app.css", nil)
	r.Header.Set("If-None-Match", weak)
	if w := e.do(r); w.Code != http.StatusNotModified || w.Header().Get("ETag") != weak[2:] {
		t.Errorf("without gzip: %d ETag %q", w.Code, w.Header().Get("ETag"))
	}
}

// TestStaticRevalidationReadAsServeContentReadsIt: whether a revalidation
// of a file not yet in the gzip cache gets 304 was told by a reading of
// If-None-Match of the gateway's own, split on commas, which matched a tag
// after an entry that is no entity tag; ServeContent stops at that entry.
// The gzip path then skipped the compression for a 304 that ServeContent
// did not give: the file went out whole and uncompressed under the gzipped
// copy's weak tag, and the copy never entered the cache. A list of tags
// without commas, which ServeContent matches, got a compression for
// nothing.
func TestStaticRevalidationReadAsServeContentReadsIt(t *testing.T) {
	e := newEnv(t, nil)
	css := filepath.Join(e.root, "app.css")
	writeFile(t, css, bigCSS, time.Now())
	weak := "W/" + etag(mustStat(t, css))
	r := httptest.NewRequest("GET", "/app.css", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("If-None-Match", "0, "+weak)
	w := e.do(r)
	if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("ETag") != weak {
		t.Errorf("If-None-Match whose first entry is no tag: %d, Content-Encoding %q, ETag %q, %d bytes; want the gzipped copy, 200", w.Code, w.Header().Get("Content-Encoding"), w.Header().Get("ETag"), w.Body.Len())
	}
	r = httptest.NewRequest("GET", "/app.css", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("If-None-Match", `"x" `+weak)
	if w := e.do(r); w.Code != http.StatusNotModified || w.Header().Get("ETag") != weak {
		t.Errorf("tags without a comma between them: %d, ETag %q; want 304 as ServeContent reads them", w.Code, w.Header().Get("ETag"))
	}
}

// TestStaticRedeployFixedMtimeNewETag: reproducible builds give every file
// one fixed mtime (SOURCE_DATE_EPOCH with BuildKit's rewrite-timestamp, the
// Nix store's 1970-01-01T00:00:01), and rsync -t or tar keep a build
// machine's, so a new release can hold a file of the same name, size and
// mtime with other content. The ETag, from size and mtime alone like
// nginx's, stayed the same: a browser revalidating the old copy got 304 and
// kept the old stylesheet (NixOS patches nginx for this, nixpkgs #25485).
// A release is written as new files, so the file's identity tells them
// apart.
func TestStaticRedeployFixedMtimeNewETag(t *testing.T) {
	e := newEnv(t, nil)
	epoch := time.Unix(1, 0)
	newCSS := strings.Replace(bigCSS, "a", "b", 1)
	if len(newCSS) != len(bigCSS) || newCSS == bigCSS {
		t.Fatal("the test needs another content of the same size")
	}
	// Replaced by a new file (a release directory, rsync's temp file and
	// rename), or rewritten in place (rsync --inplace -t, cp -p onto it),
	// which keeps the inode too.
	var p string
	replace := map[bool]func(string){
		false: func(body string) {
			writeFile(t, p+".new", body, epoch)
			if err := os.Rename(p+".new", p); err != nil {
				t.Fatal(err)
			}
		},
		true: func(body string) { writeFile(t, p, body, epoch) },
	}
	for _, c := range []struct {
		ae      string
		inPlace bool
	}{{"", false}, {"gzip", false}, {"", true}, {"gzip", true}} {
		ae := c.ae
		name := fmt.Sprintf("/app-%s-%v.css", ae, c.inPlace)
		p = filepath.Join(e.root, name)
		get := func(inm string) *httptest.ResponseRecorder {
			r := httptest.NewRequest("GET", name, nil)
			if ae != "" {
				r.Header.Set("Accept-Encoding", ae)
			}
			if inm != "" {
				r.Header.Set("If-None-Match", inm)
			}
			return e.do(r)
		}
		replace[false](bigCSS)
		old := get("").Header().Get("ETag")
		// The deploy: the same name, size and mtime, new content.
		time.Sleep(20 * time.Millisecond) // past the ctime clock's tick
		replace[c.inPlace](newCSS)
		if w := get(""); ae == "gzip" && w.Code == 200 {
			// A first visit after the deploy, from the cache.
			zr, err := gzip.NewReader(w.Body)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(zr); string(b) != newCSS {
				t.Errorf("in place %v: a gzip GET after the deploy got the old content", c.inPlace)
			}
		}
		w := get(old)
		if w.Code != http.StatusOK {
			t.Errorf("Accept-Encoding %q, in place %v: revalidating %s after the file was replaced: %d, want 200 with the new content", ae, c.inPlace, old, w.Code)
			continue
		}
		body := w.Body.String()
		if ae == "gzip" {
			zr, err := gzip.NewReader(w.Body)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(zr)
			body = string(b)
		}
		if body != newCSS || w.Header().Get("ETag") == old {
			t.Errorf("Accept-Encoding %q, in place %v: new content %v, ETag %s (old %s)", ae, c.inPlace, body == newCSS, w.Header().Get("ETag"), old)
		}
		// And the new copy revalidates.
		if w := get(w.Header().Get("ETag")); w.Code != http.StatusNotModified {
			t.Errorf("Accept-Encoding %q, in place %v: revalidating the new copy: %d", ae, c.inPlace, w.Code)
		}
	}
}

// TestStaticETagSameOnEveryReplica: a file with a real mtime (not a build's
// fixed epoch) gets nginx's ETag, size and mtime only, so replicas behind a
// load balancer that hold the same files (one container image unpacked on
// each host: other inodes, other ctimes) give the same ETag, and a browser
// revalidating on another replica gets 304, not the whole file again.
func TestStaticETagSameOnEveryReplica(t *testing.T) {
	a, b := newEnv(t, nil), newEnv(t, nil)
	mtime := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	writeFile(t, filepath.Join(a.root, "app.css"), bigCSS, mtime)
	time.Sleep(20 * time.Millisecond) // another ctime tick, as on another host
	writeFile(t, filepath.Join(b.root, "app.css"), bigCSS, mtime)
	for _, ae := range []string{"", "gzip"} {
		get := func(e *env, inm string) *httptest.ResponseRecorder {
			r := httptest.NewRequest("GET", "/app.css", nil)
			if ae != "" {
				r.Header.Set("Accept-Encoding", ae)
			}
			if inm != "" {
				r.Header.Set("If-None-Match", inm)
			}
			return e.do(r)
		}
		tag := get(a, "").Header().Get("ETag")
		if w := get(b, tag); w.Code != http.StatusNotModified {
			t.Errorf("Accept-Encoding %q: replica b answered %d to the ETag %s of replica a (its own: %s), want 304", ae, w.Code, tag, w.Header().Get("ETag"))
		}
	}
}

// A proxied answer that announces trailers and flushes its header before
// any body (httputil.ReverseProxy does both, then puts the trailers'
// values in the header map, taking the header for sent): the compressing
// writer held that header for the first bytes, none came, and the header
// went out at the end with the trailers' values in it as fields.
func TestCompressedAnswerKeepsItsTrailers(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc")
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	front := httptest.NewServer(compressResponses(httputil.NewSingleHostReverseProxy(u)))
	defer front.Close()
	req, _ := http.NewRequest("GET", front.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(res.Body)
	res.Body.Close()
	if v := res.Header.Get("X-Checksum"); v != "" {
		t.Errorf("the trailer went out as a header field too: X-Checksum: %s", v)
	}
	if res.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("trailer %v, want X-Checksum: abc", res.Trailer)
	}
}

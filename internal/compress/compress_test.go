package compress

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestAccepted(t *testing.T) {
	cases := []struct {
		header []string
		want   Encodings
	}{
		{nil, 0},
		{[]string{""}, 0},
		{[]string{"gzip"}, Gzip},
		{[]string{"GZIP"}, Gzip},
		{[]string{"x-gzip"}, Gzip},
		{[]string{"gzip, deflate, br, zstd"}, Gzip | Brotli},
		{[]string{"deflate"}, 0},
		{[]string{"gzip;q=0"}, 0},
		{[]string{"gzip; q=0.000"}, 0},
		{[]string{"gzip;q=0.001"}, Gzip},
		{[]string{"gzip;q=1.0, br;q=0"}, Gzip},
		{[]string{"*"}, Gzip | Brotli},
		{[]string{"*;q=0"}, 0},
		{[]string{"*, gzip;q=0"}, Brotli},
		{[]string{"identity"}, 0},
		{[]string{"br", "gzip"}, Gzip | Brotli},
		{[]string{"gzip;q=0, gzip"}, 0}, // the first mention counts
		{[]string{"gzip;q=junk"}, Gzip},
		{[]string{" gzip ;level=1"}, Gzip},
	}
	for _, c := range cases {
		h := http.Header{}
		for _, v := range c.header {
			h.Add("Accept-Encoding", v)
		}
		if got := Accepted(h); got != c.want {
			t.Errorf("Accept-Encoding %q: got %b, want %b", c.header, got, c.want)
		}
	}
}

func TestCompressible(t *testing.T) {
	yes := []string{"text/html", "text/html; charset=UTF-8", "TEXT/CSS", "text/javascript",
		"application/javascript", "application/json", "application/ld+json",
		"application/rss+xml", "image/svg+xml", "application/wasm", "text/plain", "font/ttf"}
	no := []string{"", "image/png", "image/jpeg", "video/mp4", "application/zip",
		"application/octet-stream", "text/event-stream", "text/event-stream; charset=utf-8",
		"font/woff2", "application/pdf", "multipart/byteranges; boundary=x"}
	for _, ct := range yes {
		if !Compressible(ct) {
			t.Errorf("Compressible(%q) = false", ct)
		}
	}
	for _, ct := range no {
		if Compressible(ct) {
			t.Errorf("Compressible(%q) = true", ct)
		}
	}
}

// serve runs handler through a Writer for a request with the given
// Accept-Encoding and method, the way the server does.
func serve(t *testing.T, method, acceptEncoding string, handler http.HandlerFunc) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "/", nil)
	if acceptEncoding != "" {
		r.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	w := NewWriter(rec, r)
	handler(w, r)
	if err := w.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return rec
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v (%q)", err, b[:min(len(b), 40)])
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return string(out)
}

var page = strings.Repeat("<p>hello, compressible world</p>\n", 40)

func TestWriterCompresses(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"unknown length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			io.WriteString(w, page[:100])
			io.WriteString(w, page[100:])
		}},
		{"known length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
			io.WriteString(w, page)
		}},
		{"through ReadFrom", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/css")
			w.WriteHeader(200)
			w.(io.ReaderFrom).ReadFrom(strings.NewReader(page))
		}},
		{"a 404 page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(404)
			io.WriteString(w, page)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := serve(t, "GET", "gzip, deflate, br", c.handler)
			h := rec.Header()
			if h.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q, headers %v", h.Get("Content-Encoding"), h)
			}
			if h.Get("Content-Length") != "" {
				t.Errorf("Content-Length %q left on a compressed body", h.Get("Content-Length"))
			}
			if h.Get("Vary") != "Accept-Encoding" {
				t.Errorf("Vary %q", h.Get("Vary"))
			}
			if got := gunzip(t, rec.Body.Bytes()); got != page {
				t.Errorf("body differs after gunzip: %d bytes, want %d", len(got), len(page))
			}
			if rec.Body.Len() >= len(page)/2 {
				t.Errorf("compressed %d bytes to %d", len(page), rec.Body.Len())
			}
		})
	}
}

func TestWriterLeavesAlone(t *testing.T) {
	html := func(status int, set map[string]string, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			for k, v := range set {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	cases := []struct {
		name     string
		accept   string
		handler  http.HandlerFunc
		wantVary bool
	}{
		{"client without gzip", "deflate", html(200, nil, page), true},
		{"no Accept-Encoding", "", html(200, nil, page), true},
		{"short page, unknown length", "gzip", html(200, nil, "<p>hi</p>"), true},
		{"short page, known length", "gzip", html(200, map[string]string{"Content-Length": "9"}, "<p>hi</p>"), true},
		{"an image", "gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			io.WriteString(w, page)
		}, false},
		{"no Content-Type", "gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil // no sniffing either
			io.WriteString(w, page)
		}, false},
		{"compressed by the app", "gzip", html(200, map[string]string{"Content-Encoding": "br"}, page), false},
		{"identity asked for by the app", "gzip", html(200, map[string]string{"Content-Encoding": "identity"}, page), false},
		{"a download", "gzip", html(200, map[string]string{"Content-Disposition": `attachment; filename="export.csv"`}, page), false},
		{"no-transform", "gzip", html(200, map[string]string{"Cache-Control": "public, No-Transform"}, page), false},
		{"partial content", "gzip", html(206, map[string]string{"Content-Range": "bytes 0-1319/5000"}, page), false},
		{"event stream", "gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, page)
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var wantBody string
			rec0 := httptest.NewRecorder()
			c.handler(rec0, httptest.NewRequest("GET", "/", nil))
			wantBody = rec0.Body.String()

			rec := serve(t, "GET", c.accept, c.handler)
			if ce := rec.Header().Get("Content-Encoding"); ce == "gzip" {
				t.Fatalf("compressed")
			}
			if rec.Body.String() != wantBody {
				t.Errorf("body %q, want %q", rec.Body.String(), wantBody)
			}
			if got := rec.Header().Get("Vary") == "Accept-Encoding"; got != c.wantVary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", rec.Header().Get("Vary"), c.wantVary)
			}
			if rec.Code != rec0.Code {
				t.Errorf("status %d, want %d", rec.Code, rec0.Code)
			}
		})
	}
}

func TestWriterNoBodyStatuses(t *testing.T) {
	for _, status := range []int{204, 304} {
		rec := serve(t, "GET", "gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("ETag", `"abc"`)
			w.WriteHeader(status)
		})
		if rec.Code != status || rec.Header().Get("Content-Encoding") != "" || rec.Body.Len() != 0 {
			t.Errorf("%d: got %d, Content-Encoding %q, body %q", status, rec.Code, rec.Header().Get("Content-Encoding"), rec.Body.String())
		}
	}
}

func TestWriterHeadGetsGETsHeaders(t *testing.T) {
	rec := serve(t, "HEAD", "gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("Content-Length", "5000")
		w.Header().Set("ETag", `"5000-1"`)
		w.Header().Set("Accept-Ranges", "bytes")
		w.WriteHeader(200)
	})
	h := rec.Header()
	if h.Get("Content-Encoding") != "gzip" || h.Get("Content-Length") != "" || h.Get("Accept-Ranges") != "" || h.Get("ETag") != `W/"5000-1"` {
		t.Errorf("headers %v", h)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("body %q", rec.Body.String())
	}
}

// TestWriterFinishOnce: Finish may be called twice, and a write after it
// is an error, not a crash.
func TestWriterFinishOnce(t *testing.T) {
	rec := httptest.NewRecorder()
	w := newGzipWriter(rec, "text/html")
	io.WriteString(w, page)
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err != nil {
		t.Errorf("second Finish: %v", err)
	}
	if _, err := io.WriteString(w, "more"); !errors.Is(err, ErrFinished) {
		t.Errorf("Write after Finish: %v", err)
	}
	w.Flush()
	if gunzip(t, rec.Body.Bytes()) != page {
		t.Error("body changed after Finish")
	}
}

// TestWriterHeadWithoutLength: a HEAD without a Content-Length cannot
// know whether its GET would be compressed (a short page is not), so its
// headers stay as the app sent them.
func TestWriterHeadWithoutLength(t *testing.T) {
	rec := serve(t, "HEAD", "gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(200)
	})
	if rec.Header().Get("Content-Encoding") != "" || rec.Header().Get("ETag") != `"v1"` {
		t.Errorf("headers %v", rec.Header())
	}
}

// TestWriterHeadSmallAsGet: a HEAD whose declared length is too short to
// compress gets the headers its GET gets: as they are.
func TestWriterHeadSmallAsGet(t *testing.T) {
	for _, method := range []string{"HEAD", "GET"} {
		rec := serve(t, method, "gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/css")
			w.Header().Set("Content-Length", "80")
			w.Header().Set("ETag", `"80-1"`)
			w.WriteHeader(200)
			if method == "GET" {
				io.WriteString(w, strings.Repeat("a", 80))
			}
		})
		h := rec.Header()
		if h.Get("Content-Encoding") != "" || h.Get("Content-Length") != "80" || h.Get("ETag") != `"80-1"` {
			t.Errorf("%s: headers %v", method, h)
		}
	}
}

func TestWriterWeakensETagAndDropsRanges(t *testing.T) {
	rec := serve(t, "GET", "gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript")
		w.Header().Set("ETag", `"abc"`)
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("Vary", "Cookie")
		io.WriteString(w, page)
	})
	h := rec.Header()
	if h.Get("ETag") != `W/"abc"` {
		t.Errorf("ETag %q", h.Get("ETag"))
	}
	if h.Get("Accept-Ranges") != "" {
		t.Errorf("Accept-Ranges %q", h.Get("Accept-Ranges"))
	}
	if got := h.Values("Vary"); len(got) != 2 || got[0] != "Cookie" || got[1] != "Accept-Encoding" {
		t.Errorf("Vary %q", got)
	}
	// A weak tag stays as it is.
	rec = serve(t, "GET", "gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("ETag", `W/"abc"`)
		w.Header().Set("Vary", "accept-encoding, Cookie")
		io.WriteString(w, page)
	})
	if rec.Header().Get("ETag") != `W/"abc"` || len(rec.Header().Values("Vary")) != 1 {
		t.Errorf("headers %v", rec.Header())
	}
}

// TestWriterDropsETagItCannotWeaken: an entity tag that is not one (PHP
// apps often send an md5 without quotes) cannot be marked weak, and as it
// is a client takes it for a strong validator of the compressed bytes
// (browsers send it back in If-Range to resume, which the app would answer
// with ranges of its uncompressed body). It goes, as nginx's gzip drops
// it; a valid tag becomes weak, and the uncompressed response keeps it.
func TestWriterDropsETagItCannotWeaken(t *testing.T) {
	for _, tag := range []string{`d41d8cd98f00b204e9800998ecf8427e`, `w/"abc"`, `'abc'`} {
		rec := serve(t, "GET", "gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("ETag", tag)
			io.WriteString(w, page)
		})
		if rec.Header().Get("Content-Encoding") != "gzip" || len(rec.Header()["Etag"]) != 0 {
			t.Errorf("ETag %s on a compressed body: %v", tag, rec.Header())
		}
		rec = serve(t, "GET", "", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("ETag", tag)
			io.WriteString(w, page)
		})
		if rec.Header().Get("Content-Encoding") != "" || rec.Header().Get("ETag") != tag {
			t.Errorf("ETag %s on an uncompressed body: %v", tag, rec.Header())
		}
	}
}

// newGzipWriter wraps rw in a Writer for a GET from a client that accepts
// gzip, its response typed contentType.
func newGzipWriter(rw http.ResponseWriter, contentType string) *Writer {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := NewWriter(rw, r)
	w.Header().Set("Content-Type", contentType)
	return w
}

// flushRecorder records what reached the client at each Flush.
type flushRecorder struct {
	*httptest.ResponseRecorder
	atFlush [][]byte
}

func (f *flushRecorder) Flush() {
	f.atFlush = append(f.atFlush, bytes.Clone(f.Body.Bytes()))
	f.ResponseRecorder.Flush()
}

func TestWriterFlushReachesClient(t *testing.T) {
	// A page that flushes its first part (PHP's flush() after the <head>):
	// that part must be readable by the client at the flush, long before
	// the body is over.
	head := page[:300]
	fr := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := newGzipWriter(fr, "text/html")
	io.WriteString(w, head)
	w.Flush()
	io.WriteString(w, page)
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if len(fr.atFlush) != 1 || fr.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("%d flushes reached the client, headers %v", len(fr.atFlush), fr.Header())
	}
	zr, err := gzip.NewReader(bytes.NewReader(fr.atFlush[0]))
	if err != nil {
		t.Fatalf("what was flushed is no gzip stream: %v", err)
	}
	got := make([]byte, len(head))
	if _, err := io.ReadFull(zr, got); err != nil || string(got) != head {
		t.Fatalf("read %q, %v from the flushed bytes", got, err)
	}
	if got := gunzip(t, fr.Body.Bytes()); got != head+page {
		t.Errorf("whole body differs")
	}
}

// TestWriterSmallFlushesStayPlain: a response that flushes before MinSize
// bytes (echo 'a'; flush(); progress output, a row at a time) goes out as
// it is: compressed, each small piece would grow by the compressor's
// framing.
func TestWriterSmallFlushesStayPlain(t *testing.T) {
	fr := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := newGzipWriter(fr, "text/plain")
	body := ""
	for i := 0; i < 50; i++ {
		row := "row " + strconv.Itoa(i) + " of the export\n"
		body += row
		io.WriteString(w, row)
		w.Flush()
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if fr.Header().Get("Content-Encoding") != "" || fr.Body.String() != body || string(fr.atFlush[0]) != "row 0 of the export\n" {
		t.Errorf("headers %v, first flush %q", fr.Header(), fr.atFlush[0])
	}
}

// TestWriterFlushBeforeAnyByte: httputil.ReverseProxy flushes a response
// of unknown length before its first byte (a Django page without
// Content-Length, a StreamingHttpResponse); that is no stream of small
// pieces, and the page is still compressed.
func TestWriterFlushBeforeAnyByte(t *testing.T) {
	fr := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := newGzipWriter(fr, "text/html")
	w.WriteHeader(200)
	w.Flush()
	io.WriteString(w, page)
	w.Flush()
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if fr.Header().Get("Content-Encoding") != "gzip" || gunzip(t, fr.Body.Bytes()) != page {
		t.Errorf("headers %v", fr.Header())
	}
}

// TestWriterFlushesArePadded: every flushed piece of a compressed stream
// varies in size, not only the first (BREACH, see maxPadding).
func TestWriterFlushesArePadded(t *testing.T) {
	second := map[int]bool{}
	for i := 0; i < 20; i++ {
		fr := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
		w := newGzipWriter(fr, "text/html")
		io.WriteString(w, page[:300])
		w.Flush()
		io.WriteString(w, "<input name=csrf value=0123456789abcdef><p>you searched for: 0123</p>")
		w.Flush()
		w.Finish()
		second[len(fr.atFlush[1])-len(fr.atFlush[0])] = true
		if gunzip(t, fr.Body.Bytes()) != page[:300]+"<input name=csrf value=0123456789abcdef><p>you searched for: 0123</p>" {
			t.Fatal("body differs")
		}
	}
	if len(second) < 3 {
		t.Errorf("the second flushed piece came in %d sizes over 20 responses", len(second))
	}
}

// TestWriterShortBodyIsNotCompleted: a handler that declared a
// Content-Length and wrote less (an upstream cut short, a file truncated
// while it was sent) ends a cut response; compressed, Finish must say so
// rather than write a gzip trailer that makes it look whole.
func TestWriterShortBodyIsNotCompleted(t *testing.T) {
	rec := httptest.NewRecorder()
	w := newGzipWriter(rec, "text/csv")
	w.Header().Set("Content-Length", "100000")
	io.WriteString(w, page)
	if err := w.Finish(); !errors.Is(err, ErrShort) {
		t.Fatalf("Finish: %v, want ErrShort", err)
	}
	if _, err := io.ReadAll(mustGzipReader(t, rec.Body.Bytes())); err == nil {
		t.Errorf("the cut body decodes to its end")
	}
	// The whole declared length: a clean end.
	rec = httptest.NewRecorder()
	w = newGzipWriter(rec, "text/csv")
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	io.WriteString(w, page)
	if err := w.Finish(); err != nil || gunzip(t, rec.Body.Bytes()) != page {
		t.Errorf("Finish: %v", err)
	}
}

func mustGzipReader(t *testing.T, b []byte) io.Reader {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func TestSkipCompression(t *testing.T) {
	rec := httptest.NewRecorder()
	w := newGzipWriter(rec, "text/css")
	// Through a wrapper, as a handler further in would see it.
	SkipCompression(struct{ unwrapper }{unwrapper{w}})
	io.WriteString(w, page)
	w.Finish()
	if rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != page {
		t.Errorf("headers %v", rec.Header())
	}
}

type unwrapper struct{ w http.ResponseWriter }

func (u unwrapper) Header() http.Header         { return u.w.Header() }
func (u unwrapper) Write(p []byte) (int, error) { return u.w.Write(p) }
func (u unwrapper) WriteHeader(code int)        { u.w.WriteHeader(code) }
func (u unwrapper) Unwrap() http.ResponseWriter { return u.w }

func TestWriterPaddingVariesLength(t *testing.T) {
	// BREACH: the same page must not always compress to the same size.
	sizes := map[int]bool{}
	for i := 0; i < 20; i++ {
		rec := serve(t, "GET", "gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, page)
		})
		if got := gunzip(t, rec.Body.Bytes()); got != page {
			t.Fatal("body differs")
		}
		sizes[rec.Body.Len()] = true
	}
	if len(sizes) < 5 {
		t.Errorf("20 responses of one page came in %d sizes", len(sizes))
	}
}

func TestWriterInformationalPassesThrough(t *testing.T) {
	// 103 Early Hints before the page, through a real net/http server.
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := NewWriter(rw, r)
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, page)
		w.Finish()
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || gunzip(t, body) != page {
		t.Errorf("status %d, headers %v", res.StatusCode, res.Header)
	}
}

// readFromRecorder says whether ReadFrom (sendfile for a static file) was
// used.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	readFrom int
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom++
	return io.Copy(r.ResponseRecorder, src)
}

func TestWriterKeepsReadFromWhenNotCompressing(t *testing.T) {
	rr := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := newGzipWriter(rr, "image/png")
	w.ReadFrom(strings.NewReader(page))
	w.Finish()
	if rr.readFrom != 1 || rr.Body.String() != page {
		t.Errorf("ReadFrom calls %d, body %d bytes", rr.readFrom, rr.Body.Len())
	}
}

// TestWriterAnswersRevalidationOfWeakenedTag: the client revalidates the
// compressed page with the weak tag the Writer gave it (W/"abc"), and an
// app that compares If-None-Match with its own strong tag as text
// (DokuWiki's http_conditionalRequest, WordPress's feeds) never finds it:
// every revalidation got the whole page again. The tag the Writer changed
// is the Writer's to match: a 200 with the strong tag "abc" answers such a
// request with 304, as the app would have answered the tag it sent.
func TestWriterAnswersRevalidationOfWeakenedTag(t *testing.T) {
	app := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("ETag", `"abc"`)
		w.Header().Set("Last-Modified", "Fri, 04 Dec 2026 22:00:00 GMT")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		if r.Header.Get("If-None-Match") == `"abc"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, page)
	}
	for _, c := range []struct {
		method, inm string
		want        int
	}{
		{"GET", `W/"abc"`, http.StatusNotModified},
		{"HEAD", `W/"abc"`, http.StatusNotModified},
		{"GET", `"x", W/"abc"`, http.StatusNotModified},
		{"GET", `W/"abd"`, http.StatusOK},
		// What the app itself answers (it had the tag to compare).
		{"GET", `"abc"`, http.StatusNotModified},
		{"POST", `W/"abc"`, http.StatusOK},
	} {
		r := httptest.NewRequest(c.method, "/", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		r.Header.Set("If-None-Match", c.inm)
		rec := httptest.NewRecorder()
		w := NewWriter(rec, r)
		app(w, r)
		if err := w.Finish(); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		h := rec.Header()
		if rec.Code != c.want {
			t.Errorf("%s If-None-Match %s: %d, want %d", c.method, c.inm, rec.Code, c.want)
			continue
		}
		if c.want != http.StatusNotModified || c.inm == `"abc"` {
			continue
		}
		if rec.Body.Len() != 0 || h.Get("ETag") != `W/"abc"` || h.Get("Content-Length") != "" ||
			h.Get("Content-Encoding") != "" || h.Get("Content-Type") != "" ||
			h.Get("Cache-Control") != "public, max-age=3600" || h.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s If-None-Match %s: 304 with %d bytes, headers %v", c.method, c.inm, rec.Body.Len(), h)
		}
	}
}

// TestStrongIfMatch: an If-Match holding the weak tag a compressed
// response gave out (WeakETag) reaches the app as the app's strong tag, so
// an update with the tag the client read is not refused with 412; other
// values stay as sent.
func TestStrongIfMatch(t *testing.T) {
	for in, want := range map[string]string{
		`W/"rev-7"`:                 `"rev-7"`,
		`W/"a", "b" ,W/"c"`:         `"a", "b", "c"`,
		`"rev-7"`:                   `"rev-7"`,
		`*`:                         `*`,
		`W/rev`:                     `W/rev`,
		`w/"lower"`:                 `w/"lower"`,
		`W/"a,b", "c"`:              `"a,b", "c"`,
		`W/"x"` + "\t,  " + `W/"y"`: `"x", "y"`,
	} {
		h := http.Header{"If-Match": {in}}
		StrongIfMatch(h)
		if got := h.Get("If-Match"); got != want {
			t.Errorf("If-Match %q became %q, want %q", in, got, want)
		}
	}
	h := http.Header{"If-Match": {`W/"a"`, `"b"`}}
	StrongIfMatch(h)
	if got := h.Values("If-Match"); len(got) != 2 || got[0] != `"a"` || got[1] != `"b"` {
		t.Errorf("two If-Match fields became %q", got)
	}
	h = http.Header{}
	StrongIfMatch(h)
	if _, ok := h["If-Match"]; ok {
		t.Errorf("If-Match added: %q", h)
	}
}

// TestStrongIfMatchTakesEveryWeakTag: what StrongIfMatch's doc says of a
// weak tag the app gave out itself (it is made strong as well: nothing
// tells it from the gateway's) and of values that are no list of tags.
func TestStrongIfMatchTakesEveryWeakTag(t *testing.T) {
	for in, want := range map[string]string{
		`W/"app-weak"`:         `"app-weak"`,
		`W/"a", "b",W/"c"`:     `"a", "b", "c"`,
		`*`:                    `*`,
		`"strong"`:             `"strong"`,
		`bare`:                 `bare`,
		`W/"a", bare`:          `W/"a", bare`,
		`w/"lower"`:            `w/"lower"`,
		`W/"with, comma", "x"`: `"with, comma", "x"`,
	} {
		h := http.Header{"If-Match": {in}}
		StrongIfMatch(h)
		if got := h.Get("If-Match"); got != want {
			t.Errorf("If-Match %s: %s, want %s", in, got, want)
		}
	}
}

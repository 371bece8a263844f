package integration

// Response compression (SESSIONGATE_COMPRESS, on by default) against the
// real php-fpm and gunicorn: what nginx's gzip on with gzip_types and
// gzip_static gave a site.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// rawClient sends the Accept-Encoding a test sets and hands back the body
// as it came, where Go's default transport would ask for gzip itself and
// decompress out of sight.
func rawClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func rawGet(t *testing.T, method, url, acceptEncoding string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	res, err := rawClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s body: %v", method, url, err)
	}
	return res, b
}

func gunzipAll(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a gzip body: %v (%.40q)", err, b)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return string(out)
}

func TestCompressPHP(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	rows := strings.Repeat("<li>row</li>\n", 500)
	writeTree(t, g.Root, map[string]string{
		"long.php":  `<?php header('ETag: "v1"'); echo str_repeat("<li>row</li>\n", 500);`,
		"self.php":  `<?php ob_start('ob_gzhandler'); echo str_repeat("<li>row</li>\n", 500);`,
		"short.php": `<?php echo "<p>short</p>";`,
		"png.php":   `<?php header('Content-Type: image/png'); echo str_repeat("x", 5000);`,
		"md5.php":   `<?php header('ETag: ' . md5('v1')); echo str_repeat("<li>row</li>\n", 500);`,
	})

	res, body := rawGet(t, "GET", g.URL+"/long.php", "gzip, deflate, br")
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Vary") != "Accept-Encoding" || res.Header.Get("ETag") != `W/"v1"` {
		t.Fatalf("gzip client: %d %v", res.StatusCode, res.Header)
	}
	if got := gunzipAll(t, body); got != rows {
		t.Errorf("gunzipped page differs: %d bytes, want %d", len(got), len(rows))
	}
	if len(body) > len(rows)/10 {
		t.Errorf("%d bytes of repeated rows went out as %d", len(rows), len(body))
	}
	sent := len(body)

	res, body = rawGet(t, "GET", g.URL+"/long.php", "")
	if res.Header.Get("Content-Encoding") != "" || string(body) != rows || res.Header.Get("Vary") != "Accept-Encoding" || res.Header.Get("ETag") != `"v1"` {
		t.Errorf("client without gzip: %v, %d bytes", res.Header, len(body))
	}

	// PHP answers HEAD without a length: whether its GET would reach 256
	// bytes is unknown, so the headers stay as PHP sent them.
	res, body = rawGet(t, "HEAD", g.URL+"/long.php", "gzip")
	if res.Header.Get("Content-Encoding") != "" || res.Header.Get("ETag") != `"v1"` || len(body) != 0 {
		t.Errorf("HEAD: %v %q", res.Header, body)
	}

	// An ETag without quotes cannot be made weak: a compressed page goes
	// without it (a client would take it for a strong validator of the
	// compressed bytes), as behind nginx; an uncompressed one keeps it.
	if res, body = rawGet(t, "GET", g.URL+"/md5.php", "gzip"); res.Header.Get("Content-Encoding") != "gzip" || len(res.Header["Etag"]) != 0 || gunzipAll(t, body) != rows {
		t.Errorf("unquoted ETag, gzipped: %v", res.Header)
	}
	if res, _ = rawGet(t, "GET", g.URL+"/md5.php", ""); res.Header.Get("ETag") != "6654c734ccab8f440ff0825eb443dc7f" {
		t.Errorf("unquoted ETag, not gzipped: %v", res.Header)
	}

	// A script that compresses itself is not compressed twice.
	res, body = rawGet(t, "GET", g.URL+"/self.php", "gzip")
	if res.Header.Get("Content-Encoding") != "gzip" || gunzipAll(t, body) != rows {
		t.Errorf("ob_gzhandler page: %v", res.Header)
	}
	// Too short to gain, or not text: as PHP sent it.
	if res, body = rawGet(t, "GET", g.URL+"/short.php", "gzip"); res.Header.Get("Content-Encoding") != "" || string(body) != "<p>short</p>" {
		t.Errorf("short page: %v %q", res.Header, body)
	}
	if res, body = rawGet(t, "GET", g.URL+"/png.php", "gzip"); res.Header.Get("Content-Encoding") != "" || len(body) != 5000 {
		t.Errorf("image from PHP: %v, %d bytes", res.Header, len(body))
	}

	// The access log counts what went out. Lines are written once each
	// answer is out, so the gzipped GET's may come after later ones.
	var logged []float64
	if !poll(5*time.Second, func() bool {
		logged = nil
		for _, line := range strings.Split(g.Logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["path"] == "/long.php" && m["method"] == "GET" {
				logged = append(logged, m["bytes"].(float64))
			}
		}
		return len(logged) == 2
	}) || !slices.Contains(logged, float64(sent)) || !slices.Contains(logged, float64(len(rows))) {
		t.Errorf("access log bytes of the two GETs %v, sent %d gzipped and %d plain", logged, sent, len(rows))
	}
}

func TestCompressStatic(t *testing.T) {
	t.Parallel()
	g := startGW(t, func(c *config.Config) { c.Precompressed = []string{"/"} })
	js := strings.Repeat("function f(a){return a+1}\n", 200)
	now := time.Now()
	writeTree(t, g.Root, map[string]string{"app.js": js, "plain.js": js})
	var pre bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&pre, gzip.BestCompression)
	io.WriteString(zw, js)
	zw.Close()
	if err := os.WriteFile(filepath.Join(g.Root, "app.js.gz"), pre.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"app.js", "app.js.gz"} {
		os.Chtimes(filepath.Join(g.Root, p), now, now)
	}

	// The precompressed copy, byte for byte.
	res, body := rawGet(t, "GET", g.URL+"/app.js", "gzip")
	if res.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(body, pre.Bytes()) || res.Header.Get("Content-Type") != "text/javascript" {
		t.Errorf("app.js with app.js.gz: %v, %d bytes (the .gz has %d)", res.Header, len(body), pre.Len())
	}
	// Compressed once, then sent from memory with its length.
	res, body = rawGet(t, "GET", g.URL+"/plain.js", "gzip")
	if res.Header.Get("Content-Encoding") != "gzip" || gunzipAll(t, body) != js || res.ContentLength != int64(len(body)) {
		t.Errorf("plain.js: %v", res.Header)
	}
	if res, again := rawGet(t, "GET", g.URL+"/plain.js", "gzip"); !bytes.Equal(again, body) || res.Header.Get("ETag") == "" {
		t.Errorf("plain.js again: %v, %d bytes, first time %d", res.Header, len(again), len(body))
	}
	// With SESSIONGATE_COMPRESS_CACHE=0, as it is (never compressed anew
	// on every request); and without SESSIONGATE_PRECOMPRESSED, no copy.
	g0 := startGW(t, func(c *config.Config) { c.CompressCache = 0 })
	writeTree(t, g0.Root, map[string]string{"plain.js": js})
	if res, body := rawGet(t, "GET", g0.URL+"/plain.js", "gzip"); res.Header.Get("Content-Encoding") != "" || string(body) != js || res.ContentLength != int64(len(js)) {
		t.Errorf("plain.js without the cache: %v", res.Header)
	}
	if err := os.WriteFile(filepath.Join(g0.Root, "plain.js.gz"), pre.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, body := rawGet(t, "GET", g0.URL+"/plain.js", "gzip"); res.Header.Get("Content-Encoding") != "" || string(body) != js {
		t.Errorf("plain.js.gz sent without SESSIONGATE_PRECOMPRESSED: %v", res.Header)
	}
	// Not to a client without gzip; and an image never.
	if res, body = rawGet(t, "GET", g.URL+"/app.js", "br;q=0"); res.Header.Get("Content-Encoding") != "" || string(body) != js {
		t.Errorf("app.js without gzip: %v", res.Header)
	}
	if res, _ = rawGet(t, "GET", g.URL+"/uploads/x.jpg", "gzip"); res.Header.Get("Content-Encoding") != "" || res.Header.Get("Vary") != "" {
		t.Errorf("x.jpg: %v", res.Header)
	}
}

// TestCompressKeepsPHPFlush: PHP's flush() still reaches a gzip client at
// once: what was flushed can be decompressed before the script ends. A
// script that flushes a few bytes at a time gets them as they are.
func TestCompressKeepsPHPFlush(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	head := strings.Repeat("<meta name=x>", 30)
	writeTree(t, root, map[string]string{"flushhead.php": `<?php echo str_repeat('<meta name=x>', 30); flush(); sleep(2); echo 'b';`})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2, AdminValues: map[string]string{"output_buffering": "0"}})
	g := startGWOn(t, fpm, root, nil)

	// flush.php: echo 'a'; flush(); sleep(2); echo 'b';
	res, body := rawGet(t, "GET", g.URL+"/flush.php", "gzip")
	if res.Header.Get("Content-Encoding") != "" || string(body) != "ab" {
		t.Errorf("flush.php: %v %q", res.Header, body)
	}

	req, _ := http.NewRequest("GET", g.URL+"/flushhead.php", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	start := time.Now()
	res, err := rawClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("not compressed: %v", res.Header)
	}
	zr, err := gzip.NewReader(bufio.NewReader(res.Body))
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len(head))
	if _, err := io.ReadFull(zr, first); err != nil || string(first) != head {
		t.Fatalf("first part %q %v", first, err)
	}
	firstAt := time.Since(start)
	rest, err := io.ReadAll(zr)
	total := time.Since(start)
	if err != nil || string(rest) != "b" {
		t.Fatalf("rest %q %v", rest, err)
	}
	// PHP sleeps 2 s between the two bytes.
	if total-firstAt < time.Second {
		t.Errorf("first byte after %v, whole body after %v: the compressor held the flushed output", firstAt, total)
	}
}

// TestCompressedShortPHPBodyIsCut: a script that declares a Content-Length
// and prints less reaches a gzip client as a cut response, as it does a
// client without gzip, never as a complete page.
func TestCompressedShortPHPBodyIsCut(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	writeTree(t, g.Root, map[string]string{"shortcl.php": `<?php header('Content-Length: 100000'); echo str_repeat("<li>row</li>
", 400);`})
	for _, ae := range []string{"", "gzip"} {
		req, _ := http.NewRequest("GET", g.URL+"/shortcl.php", nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		res, err := rawClient().Do(req)
		if err != nil {
			continue // cut before the header went out: a failure too
		}
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil {
			t.Errorf("Accept-Encoding %q: the cut body arrived as complete (Content-Encoding %q)", ae, res.Header.Get("Content-Encoding"))
		}
	}
}

// TestCompressDjango: Django's pages through gunicorn are compressed too,
// and a response that sets the session still does.
func TestCompressDjango(t *testing.T) {
	t.Parallel()
	gw := startBodyDjango(t)
	res, body := rawGet(t, "GET", gw.URL+"/dj/page/?n=5000", "gzip")
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || gunzipAll(t, body) != strings.Repeat("x", 5000) {
		t.Fatalf("Django page: %d %v", res.StatusCode, res.Header)
	}
	if res, body = rawGet(t, "GET", gw.URL+"/dj/page/?n=5000", ""); res.Header.Get("Content-Encoding") != "" || len(body) != 5000 {
		t.Errorf("without gzip: %v, %d bytes", res.Header, len(body))
	}
	// A streamed response (no Content-Length), which the proxy flushes
	// before its first byte.
	var rows strings.Builder
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&rows, "<li>row %d</li>\n", i)
	}
	for _, buffering := range []string{"on", "off"} {
		g := gw
		if buffering == "off" {
			g = startBodyDjango(t, "SESSIONGATE_RESPONSE_BUFFERING=off")
		}
		res, body := rawGet(t, "GET", g.URL+"/dj/stream/", "gzip")
		if res.Header.Get("Content-Encoding") != "gzip" || gunzipAll(t, body) != rows.String() {
			t.Errorf("streamed Django page, response buffering %s: %v", buffering, res.Header)
		}
	}
	res, body = rawGet(t, "GET", gw.URL+"/dj/set/?v=2", "gzip")
	if res.StatusCode != 200 || string(body) != "ok" || res.Header.Get("Set-Cookie") == "" {
		t.Errorf("session write: %d %q %v", res.StatusCode, body, res.Header)
	}
}

// dokuwikiConditionalPHP is DokuWiki's conditional GET
// (inc/httputils.php, http_conditionalRequest(), which lib/exe/css.php,
// js.php and feed.php call): it compares If-None-Match with its own strong
// tag as text.
const dokuwikiConditionalPHP = `<?php
$timestamp = 1796422677;
$last_modified = substr(gmdate('r', $timestamp), 0, -5).'GMT';
$etag = '"'.md5($last_modified).'"';
header('Content-Type: text/css; charset=utf-8');
header("Last-Modified: $last_modified");
header("ETag: $etag");
$if_modified_since = isset($_SERVER['HTTP_IF_MODIFIED_SINCE']) ? stripslashes($_SERVER['HTTP_IF_MODIFIED_SINCE']) : false;
$if_none_match = isset($_SERVER['HTTP_IF_NONE_MATCH']) ? stripslashes($_SERVER['HTTP_IF_NONE_MATCH']) : false;
if ($if_modified_since || $if_none_match) {
    if ((!$if_none_match || $if_none_match == $etag) && (!$if_modified_since || $if_modified_since == $last_modified)) {
        header('HTTP/1.0 304 Not Modified');
        exit;
    }
}
echo str_repeat("body { color: #333; }\n", 100);
`

// TestCompressedPageRevalidates: a browser revalidates DokuWiki's
// stylesheet with the validators it got. The page went out gzipped, so its
// tag was weak (W/"..."), which DokuWiki's text comparison never matches:
// every revalidation got the whole stylesheet again, where behind Debian's
// nginx (which gzips only text/html) DokuWiki answers 304. The gateway
// answers 304 for the tag it weakened.
func TestCompressedPageRevalidates(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	writeTree(t, g.Root, map[string]string{"lib/exe/css.php": dokuwikiConditionalPHP})
	for _, enc := range []string{"gzip", "identity"} {
		res, body := rawGet(t, "GET", g.URL+"/lib/exe/css.php", enc)
		if res.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("%s: first visit %d, %d bytes", enc, res.StatusCode, len(body))
		}
		etag, lm := res.Header.Get("ETag"), res.Header.Get("Last-Modified")
		if (enc == "gzip") != strings.HasPrefix(etag, "W/") || lm == "" {
			t.Fatalf("%s: ETag %q, Last-Modified %q", enc, etag, lm)
		}
		req, _ := http.NewRequest("GET", g.URL+"/lib/exe/css.php", nil)
		req.Header.Set("Accept-Encoding", enc)
		req.Header.Set("If-None-Match", etag)
		req.Header.Set("If-Modified-Since", lm)
		res, err := rawClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusNotModified || len(b) != 0 {
			t.Errorf("%s: revalidation with %s got %d and %d bytes, want 304", enc, etag, res.StatusCode, len(b))
		}
	}
}

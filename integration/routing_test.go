package integration

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestRouting checks, against real php-fpm, which file runs for each kind
// of path and with which CGI params: static vs PHP vs front controller vs
// 404, PATH_INFO, directory index and redirect.
func TestRouting(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	file := func(name string) string { return filepath.Join(g.Root, name) }

	type want struct {
		file, scriptName, pathInfo, requestURI, query, documentURI string
	}
	php := []struct {
		target string
		want   want
	}{
		{"/info.php", want{file("info.php"), "/info.php", "", "/info.php", "", "/info.php"}},
		{"/info.php?a=1&b=2", want{file("info.php"), "/info.php", "", "/info.php?a=1&b=2", "a=1&b=2", "/info.php"}},
		{"/info.php/extra/x?q=1", want{file("info.php"), "/info.php", "/extra/x", "/info.php/extra/x?q=1", "q=1", "/info.php/extra/x"}},
		{"/sub/app.php/a%20b", want{file("sub/app.php"), "/sub/app.php", "/a b", "/sub/app.php/a%20b", "", "/sub/app.php/a b"}},
		{"/blog/2024/post?id=5&x=%2F", want{file("index.php"), "/index.php", "", "/blog/2024/post?id=5&x=%2F", "id=5&x=%2F", "/index.php"}},
		{"/", want{file("index.php"), "/index.php", "", "/", "", "/index.php"}},
		{"/dir/", want{file("dir/index.php"), "/dir/index.php", "", "/dir/", "", "/dir/index.php"}},
		{"/missing.html", want{file("index.php"), "/index.php", "", "/missing.html", "", "/index.php"}},
		{"/info.php?a=1;b=2", want{file("info.php"), "/info.php", "", "/info.php?a=1;b=2", "a=1;b=2", "/info.php"}},
		// A segment too long for a file name (a token, a long slug) is a
		// pretty URL like any other, as with try_files.
		{"/" + strings.Repeat("t", 300), want{file("index.php"), "/index.php", "", "/" + strings.Repeat("t", 300), "", "/index.php"}},
	}
	for _, tc := range php {
		res, body := g.get(t, tc.target)
		if res.StatusCode != 200 {
			t.Errorf("%s: status %d: %s", tc.target, res.StatusCode, body)
			continue
		}
		d := phpDump(t, tc.target, body)
		got := want{d["_file"], d["SCRIPT_NAME"], d["PATH_INFO"], d["REQUEST_URI"], d["QUERY_STRING"], d["DOCUMENT_URI"]}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.target, got, tc.want)
		}
		if d["SCRIPT_FILENAME"] != tc.want.file {
			t.Errorf("%s: SCRIPT_FILENAME %q", tc.target, d["SCRIPT_FILENAME"])
		}
		if tc.want.pathInfo != "" && d["PATH_TRANSLATED"] != g.Root+tc.want.pathInfo {
			t.Errorf("%s: PATH_TRANSLATED %q", tc.target, d["PATH_TRANSLATED"])
		}
	}

	// Static and the rest.
	for _, tc := range []struct {
		target   string
		status   int
		body     string
		location string
	}{
		{"/style.css", 200, gwFiles["style.css"], ""},
		{"/docs/", 200, "<h1>docs</h1>", ""},
		{"/dir", 301, "", "/dir/"},
		{"/dir?x=1", 301, "", "/dir/?x=1"},
		{"/missing.php", 404, "", ""},
		{"/sub/missing.php/extra", 404, "", ""},
	} {
		res, body := g.get(t, tc.target)
		if res.StatusCode != tc.status || (tc.body != "" && body != tc.body) || res.Header.Get("Location") != tc.location {
			t.Errorf("%s: %d %q Location %q; want %d %q %q", tc.target, res.StatusCode, body, res.Header.Get("Location"), tc.status, tc.body, tc.location)
		}
	}
}

func TestRoutingIndexOff(t *testing.T) {
	t.Parallel()
	g := startGW(t, func(c *config.Config) { c.Index = config.IndexOff })
	for target, status := range map[string]int{"/blog/post": 404, "/missing.html": 404, "/info.php": 200, "/style.css": 200} {
		if res, body := g.get(t, target); res.StatusCode != status {
			t.Errorf("INDEX=off %s: %d %s, want %d", target, res.StatusCode, body, status)
		}
	}
}

// TestStaticServing: Range, validators and types come from the gateway,
// and a static file never reaches PHP whatever it contains.
func TestStaticServing(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)

	res, body := g.get(t, "/notes.txt")
	if res.StatusCode != 200 || body != gwFiles["notes.txt"] || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("/notes.txt: %d %q %q (a .txt holding PHP code must come back verbatim)", res.StatusCode, body, res.Header.Get("Content-Type"))
	}
	res, body = g.get(t, "/uploads/x.jpg")
	if body != gwFiles["uploads/x.jpg"] || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("/uploads/x.jpg: %q %q", body, res.Header.Get("Content-Type"))
	}

	res, _ = g.get(t, "/style.css")
	etag, lm := res.Header.Get("ETag"), res.Header.Get("Last-Modified")
	if etag == "" || lm == "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("/style.css headers: %v", res.Header)
	}
	if res, body := g.get(t, "/style.css", "If-None-Match", etag); res.StatusCode != 304 || body != "" {
		t.Errorf("If-None-Match: %d %q", res.StatusCode, body)
	}
	if res, _ := g.get(t, "/style.css", "If-Modified-Since", lm); res.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d", res.StatusCode)
	}
	if res, _ := g.get(t, "/style.css", "If-None-Match", `W/"other"`); res.StatusCode != 200 {
		t.Errorf("stale ETag: %d", res.StatusCode)
	}

	res, body = g.get(t, "/big.bin", "Range", "bytes=1048560-")
	if res.StatusCode != 206 || body != "0123456789abcdef" || res.Header.Get("Content-Range") != "bytes 1048560-1048575/1048576" {
		t.Errorf("Range: %d %q %q", res.StatusCode, body, res.Header.Get("Content-Range"))
	}
	res, body = g.get(t, "/big.bin")
	if res.StatusCode != 200 || len(body) != 1<<20 || res.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("big.bin: %d len %d", res.StatusCode, len(body))
	}

	req, _ := http.NewRequest("POST", g.URL+"/style.css", strings.NewReader("x"))
	r2, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 405 {
		t.Errorf("POST to a static file: %d", r2.StatusCode)
	}

	// None of this reached PHP: the only upstream in the log is "static".
	for _, line := range strings.Split(strings.TrimSpace(g.Logs.String()), "\n") {
		if strings.Contains(line, `"upstream":"php"`) {
			t.Errorf("static request went to PHP: %s", line)
		}
	}
}

// TestStaticLikeNginx: static answers a site moving from nginx relies on:
// resuming with the ETag, ranges in another unit ignored, no charset the
// file does not declare, and 499 in the log for a download the client
// abandoned.
func TestStaticLikeNginx(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)

	res, _ := g.get(t, "/big.bin")
	etag := res.Header.Get("ETag")
	if res, body := g.get(t, "/big.bin", "Range", "bytes=1048560-", "If-Range", etag); res.StatusCode != 206 || body != "0123456789abcdef" {
		t.Errorf("If-Range with the ETag %s: %d, %d bytes; want 206 and the last 16", etag, res.StatusCode, len(body))
	}
	if res, body := g.get(t, "/big.bin", "Range", "items=0-1"); res.StatusCode != 200 || len(body) != 1<<20 {
		t.Errorf("Range in an unknown unit: %d, %d bytes; want the whole file", res.StatusCode, len(body))
	}
	for target, ctype := range map[string]string{"/style.css": "text/css", "/docs/": "text/html", "/notes.txt": "text/plain"} {
		if res, _ := g.get(t, target); res.Header.Get("Content-Type") != ctype {
			t.Errorf("%s: Content-Type %q, want %q", target, res.Header.Get("Content-Type"), ctype)
		}
	}

	// A download abandoned half-way.
	huge := filepath.Join(g.Root, "huge.bin")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 64<<20); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.ReadFull(c, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	line, _ := logLine(g.Logs, `"path":"/huge.bin"`)
	if !strings.Contains(line, `"status":499`) {
		t.Errorf("abandoned download logged as %s, want status 499", line)
	}
}

// TestStreamingThroughGateway: PHP's flush() reaches the client at once
// through every layer of the gateway (access log recorder, ReverseProxy).
// Debian's php.ini sets output_buffering=4096, which holds small output in
// PHP itself (with nginx too), so the pool turns it off.
func TestStreamingThroughGateway(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2, AdminValues: map[string]string{"output_buffering": "0"}})
	g := startGWOn(t, fpm, root, nil)
	start := time.Now()
	res, err := (&http.Client{Timeout: 20 * time.Second}).Get(g.URL + "/flush.php")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	first, err := br.ReadByte()
	firstAt := time.Since(start)
	if err != nil || first != 'a' {
		t.Fatalf("first byte %q %v", first, err)
	}
	rest, err := io.ReadAll(br)
	total := time.Since(start)
	if err != nil || string(rest) != "b" {
		t.Fatalf("rest %q %v", rest, err)
	}
	// PHP sleeps 2 s between the two bytes: streamed, the first arrives
	// about 2 s before the end; buffered, with it (on any machine's speed).
	if total-firstAt < time.Second {
		t.Errorf("first byte after %v, whole body after %v: output was buffered", firstAt, total)
	}
}

// TestNoBodyStatusWithPHPOutput: a script that answers 204 or 304 and still
// prints something (the blank lines after a closing ?> of a framework's
// conditional GET) gets its status to the client, the output dropped, as
// nginx does, not a connection closed without an answer.
func TestNoBodyStatusWithPHPOutput(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	for _, code := range []int{204, 304} {
		res, body := g.get(t, "/nobody.php?code="+strconv.Itoa(code))
		if res.StatusCode != code || res.Header.Get("Etag") != `"v1"` || body != "" {
			t.Errorf("%d: got %d %q %v", code, res.StatusCode, body, res.Header)
		}
	}
	// The connection to php-fpm stays usable.
	if res, _ := g.get(t, "/info.php"); res.StatusCode != 200 {
		t.Fatalf("after: %d", res.StatusCode)
	}
}

// resetContentScripts answer 205 and print anyway: plainly (chunked to
// the client before), with their own Content-Length, and in two flushed
// pieces.
var resetContentScripts = map[string]string{
	"r205.php":      `<?php http_response_code(205); echo "BODY-OF-205";`,
	"r205cl.php":    `<?php http_response_code(205); header('Content-Length: 11'); echo "BODY-OF-205";`,
	"r205flush.php": `<?php http_response_code(205); echo "BODY-OF-205"; flush(); usleep(50000); echo "MORE";`,
}

// TestPHPResetContentHasNoBody: RFC 9110 section 15.3.6 says a 205 has no
// content, framed as Content-Length: 0, chunked with only the last chunk,
// or a close. The gateway passed on what PHP printed after
// http_response_code(205) (as nginx 1.22 does, measured: "b BODY-OF-205"
// chunked, or PHP's Content-Length), so a client that trusts the RFC read
// those bytes as the start of its next response on the connection. The
// output is dropped now, as for 204 and 304, with Content-Length: 0, and
// the connection goes on.
func TestPHPResetContentHasNoBody(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	writeTree(t, g.Root, resetContentScripts)
	for name := range resetContentScripts {
		resp, closed := raw(t, g.Addr, "GET /"+name+" HTTP/1.1\r\nHost: x\r\n\r\nGET /"+name+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if strings.Contains(resp, "BODY") || strings.Count(resp, "HTTP/1.1 205 Reset Content\r\n") != 2 ||
			strings.Count(resp, "\r\nContent-Length: 0\r\n") != 2 || !strings.HasSuffix(resp, "\r\n\r\n") || !closed {
			t.Errorf("%s twice on one connection:\n%s", name, resp)
		}
	}
}

// TestPHPUnregisteredStatusCode: an API that answers with its own
// three-digit code (600 and up, outside the registered range) gets it to the
// client with its body, as nginx passes it; only a code that cannot be a
// final status (1xx) is PHP's error, a 502.
func TestPHPUnregisteredStatusCode(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	for name, src := range map[string]string{
		"s600.php": `<?php header('Status: 600 Custom Thing'); echo 'six';`,
		"s799.php": `<?php http_response_code(799); echo 'seven';`,
		"s103.php": `<?php header('Status: 103 Early Hints'); echo 'early';`,
	} {
		if err := os.WriteFile(filepath.Join(g.Root, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/s600.php", 600, "six"},
		{"/s799.php", 799, "seven"},
		{"/s103.php", 502, ""},
	} {
		res, body := g.get(t, tc.path)
		if res.StatusCode != tc.status || (tc.body != "" && body != tc.body) {
			t.Errorf("%s: got %d %q, want %d %q", tc.path, res.StatusCode, body, tc.status, tc.body)
		}
	}
}

// TestPHPNginxControlHeadersHidden: headers a PHP app sends to tune nginx
// (X-Accel-Buffering, X-Accel-Expires...) never reach the client, as nginx
// hides them (fastcgi_hide_header). An X-Accel-Redirect to a file that is
// not there is a 404 and a log line naming it (TestAccelRedirect has the
// redirects that work), never PHP's empty body with its Content-Length.
func TestPHPNginxControlHeadersHidden(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	src := `<?php header('X-Accel-Redirect: /protected/invoice-42.pdf'); header('X-Accel-Buffering: no'); header('X-Accel-Expires: 60'); header('Content-Type: application/pdf'); header('Content-Length: 5000');`
	if err := os.WriteFile(filepath.Join(g.Root, "accel.php"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _ := g.get(t, "/accel.php")
	for name, v := range res.Header {
		if strings.HasPrefix(name, "X-Accel-") {
			t.Errorf("%s: %q reached the client", name, v)
		}
	}
	if _, logged := logLine(g.Logs, `X-Accel-Redirect \"/protected/invoice-42.pdf\": no such file`); res.StatusCode != 404 || !logged {
		t.Errorf("status %d, want 404 and a log line naming the missing file:\n%s", res.StatusCode, g.Logs.String())
	}
}

// TestPHPHeaderControlCharacters: PHP's header() refuses CR, LF and NUL
// but lets other control characters through, typically in a file name taken
// from an upload. The page still arrives, as it does through nginx, with
// each such character sent as a space (an HTTP field may not carry it).
func TestPHPHeaderControlCharacters(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	src := `<?php header('Content-Disposition: attachment; filename="a' . "\x01" . 'b' . "\x7f" . '.txt"'); echo 'file';`
	if err := os.WriteFile(filepath.Join(g.Root, "ctl.php"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, body := g.get(t, "/ctl.php")
	if res.StatusCode != 200 || body != "file" || res.Header.Get("Content-Disposition") != `attachment; filename="a b .txt"` {
		t.Errorf("got %d %q, Content-Disposition %q; want 200 \"file\" with the control characters as spaces",
			res.StatusCode, body, res.Header.Get("Content-Disposition"))
	}
}

// TestPHPSignedContentLength: header('Content-Length: +5') (or -0) is not
// a Content-Length (RFC 9110: digits only). nginx drops it and sends the
// whole output; passed on, it left the client unable to frame the response
// (Go's client refuses it, other clients read to the end of the connection
// while the gateway keeps it open for the next response).
func TestPHPSignedContentLength(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	src := `<?php header('Content-Length: ' . $_GET['v']); echo 'hello world';`
	if err := os.WriteFile(filepath.Join(g.Root, "clv.php"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"%2B5", "-0"} {
		resp, _ := raw(t, g.Addr, "GET /clv.php?v="+v+" HTTP/1.1\r\nHost: x\r\n\r\nGET /info.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		head, rest, _ := strings.Cut(resp, "\r\n\r\n")
		if statusOf(resp) != 200 || strings.Contains(head, "Content-Length") {
			t.Errorf("v=%s: head %q", v, head)
		}
		if !strings.Contains(rest, "hello world") || !strings.Contains(rest, "HTTP/1.1 200 ") {
			t.Errorf("v=%s: whole output and the next response not received: %q", v, rest[:min(len(rest), 200)])
		}
	}
}

// TestPHPContentLengthMismatch: a script whose output does not match the
// Content-Length it set. More output than announced (the newline after a
// closing ?> of a download script that sent filesize()) gets the announced
// bytes and a complete response, the excess dropped, as nginx does; less
// output ends in a cut connection, never in a response the client could
// take as complete. Either way php-fpm's connection stays usable.
func TestPHPContentLengthMismatch(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	for name, src := range map[string]string{
		"cl-more.php":     `<?php header('Content-Length: 10'); echo str_repeat('a', 20);`,
		"cl-more-big.php": "<?php header('Content-Length: 300000'); echo str_repeat('b', 300000); ?>\n\n",
		"cl-less.php":     `<?php header('Content-Length: 10'); echo '12345';`,
	} {
		if err := os.WriteFile(filepath.Join(g.Root, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path string
		want string
	}{
		{"/cl-more.php", strings.Repeat("a", 10)},
		{"/cl-more-big.php", strings.Repeat("b", 300000)},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			// Two requests on one connection: the first must end cleanly
			// for the second to be answered.
			resp, _ := raw(t, g.Addr, method+" "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\nGET /info.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			head, rest, _ := strings.Cut(resp, "\r\n\r\n")
			if statusOf(resp) != 200 || !strings.Contains(head, "Content-Length: "+strconv.Itoa(len(tc.want))) {
				t.Errorf("%s %s: head %q", method, tc.path, head[:min(len(head), 300)])
				continue
			}
			want := tc.want
			if method == "HEAD" {
				want = ""
			}
			if !strings.HasPrefix(rest, want+"HTTP/1.1 200 ") {
				t.Errorf("%s %s: body not exactly the announced %d bytes, or no second response: %q...", method, tc.path, len(want), rest[:min(len(rest), 100)])
			}
		}
	}
	// Less than announced: the client sees a response cut short.
	res, err := http.Get(g.URL + "/cl-less.php")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil {
		t.Errorf("short body %q read as complete", b)
	}
	if res, _ := g.get(t, "/info.php"); res.StatusCode != 200 {
		t.Fatalf("after: %d", res.StatusCode)
	}
}

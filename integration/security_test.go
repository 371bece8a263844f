package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestCVE_2019_11043_PathInfoNewline: the php-fpm underflow was reached
// through a newline (%0a) in the path that broke nginx's
// fastcgi_split_path_info regex and left PATH_INFO empty; the public exploit
// then wrote PHP_VALUE settings into the worker. Any control character in
// the path is refused before PHP, and no setting leaks into later requests.
func TestCVE_2019_11043_PathInfoNewline(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	q := strings.Repeat("Q", 1500)
	for _, target := range []string{
		"/index.php/PHP_VALUE%0Asession.auto_start=1;;;?" + q,
		"/info.php/PHP%0Ais_the_shortest_and_the_greatest?" + q,
		"/info.php%0a",
		"/info.php/%0a",
		"/%0aindex.php",
		"/index.php%0d%0aX: y",
		"/info.php/a%00b",
		"/style.css%00.php",
	} {
		res, body := g.get(t, target)
		if res.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", target[:min(len(target), 60)], res.StatusCode)
		}
		if strings.Contains(body, "_file") {
			t.Errorf("%s reached PHP: %s", target[:min(len(target), 60)], body)
		}
	}
	// Every worker still has the pool's settings.
	for range 8 {
		_, body := g.get(t, "/info.php")
		if d := phpDump(t, "/info.php", body); d["_auto_start"] != "0" && d["_auto_start"] != "" {
			t.Fatalf("session.auto_start leaked into a worker: %q", d["_auto_start"])
		}
	}
}

// TestCrossSiteTracing: TRACE echoes a request back with its cookies, which
// lets a script read HttpOnly session cookies (cross-site tracing, XST). As
// with nginx, the method gets 405 and never reaches php-fpm.
func TestCrossSiteTracing(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	for _, path := range []string{"/info.php", "/style.css", "/no/such/page"} {
		req, err := http.NewRequest("TRACE", g.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Cookie", "sessionid=secret")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed || strings.Contains(string(body), "secret") || strings.Contains(string(body), "_file") {
			t.Errorf("TRACE %s: %d %q, want 405 from the gateway", path, res.StatusCode, body)
		}
	}
	// CONNECT (a tunnel neither app gives) too, as nginx; the front
	// controller used to run it.
	for _, target := range []string{"/info.php", "example.com:443"} {
		out, _ := raw(t, g.Addr, "CONNECT "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(out, "HTTP/1.1 405 ") || strings.Contains(out, "_file") {
			t.Errorf("CONNECT %s: %.200q, want 405 from the gateway", target, out)
		}
	}
}

// TestHeaderFieldFlood: php-fpm's work grows faster than the number of
// params, so a request of tens of thousands of small headers (well under
// SESSIONGATE_MAX_HEADER_BYTES) would keep a worker busy for a long time.
// More than 100 header lines get 431 before PHP; a request just under the
// cap still runs with every header.
func TestHeaderFieldFlood(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	request := func(n int) string {
		var b strings.Builder
		b.WriteString("GET /info.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
		for i := range n {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		b.WriteString("\r\n")
		return b.String()
	}
	out, _ := raw(t, g.Addr, request(20000))
	if !strings.HasPrefix(out, "HTTP/1.1 431 ") || strings.Contains(out, "_file") {
		t.Errorf("20000 header lines: %.80q, want 431 without PHP", out)
	}
	out, _ = raw(t, g.Addr, request(97)) // + Host and Connection (Host is not a field)
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") || !strings.Contains(out, "HTTP_X_H96") {
		t.Errorf("98 header lines: %.200q, want 200 with every header in PHP", out)
	}
}

// TestHttpoxy_CVE_2016_5385: a client "Proxy:" header must not become
// HTTP_PROXY, which CGI programs and libraries read as their outgoing proxy.
func TestHttpoxy_CVE_2016_5385(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	for _, name := range []string{"Proxy", "proxy", "PROXY"} {
		_, body := g.get(t, "/info.php", name, "http://attacker.example:8080")
		d := phpDump(t, "/info.php", body)
		if v, ok := d["HTTP_PROXY"]; ok {
			t.Errorf("%s header reached PHP as HTTP_PROXY=%q", name, v)
		}
	}
	// Other headers still pass.
	_, body := g.get(t, "/info.php", "X-Custom", "kept")
	if d := phpDump(t, "/info.php", body); d["HTTP_X_CUSTOM"] != "kept" {
		t.Errorf("X-Custom not forwarded: %v", d)
	}
}

// TestHeaderAliasing: "X_Session" and "X-Session" both map to
// HTTP_X_SESSION in CGI. A header with an underscore is dropped, so a client
// cannot shadow or inject a header that a proxy in front (or the gateway
// itself, for session data) sets with dashes.
func TestHeaderAliasing(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	_, body := g.get(t, "/info.php", "X_Session", "forged", "X-Session", "genuine")
	if d := phpDump(t, "/info.php", body); d["HTTP_X_SESSION"] != "genuine" {
		t.Errorf("HTTP_X_SESSION = %q, want the dash header's value", d["HTTP_X_SESSION"])
	}
	_, body = g.get(t, "/info.php", "X-Session", "genuine", "X_Session", "forged")
	if d := phpDump(t, "/info.php", body); d["HTTP_X_SESSION"] != "genuine" {
		t.Errorf("order reversed: HTTP_X_SESSION = %q", d["HTTP_X_SESSION"])
	}
	_, body = g.get(t, "/info.php", "X_Session", "forged")
	d := phpDump(t, "/info.php", body)
	for k, v := range d {
		if strings.Contains(v, "forged") {
			t.Errorf("underscore header reached PHP as %s=%q", k, v)
		}
	}
}

// TestPathTraversal: neither "..", in any encoding, nor a symlink leads
// outside the root; sent raw so no client cleans the path first.
func TestPathTraversal(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	for _, target := range []string{
		"/../outside/secret.txt",
		"/docs/../../outside/secret.txt",
		"/%2e%2e/outside/secret.txt",
		"/%2E%2E/outside/secret.txt",
		"/docs/..%2f..%2foutside/secret.txt",
		"/docs/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
		"/..%5c..%5coutside/secret.txt",
		"/out-file.txt",
		"/out-dir/secret.txt",
		"/out-dir/",
		"/out-evil.php",
		"/out-evil.php/x",
	} {
		resp, _ := raw(t, g.Addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		code := statusOf(resp)
		if code != 400 && code != 404 {
			t.Errorf("%s: status %d, want 400 or 404", target, code)
		}
		if strings.Contains(resp, "TOPSECRET") || strings.Contains(resp, "EXECUTED") {
			t.Errorf("%s escaped the root:\n%s", target, resp)
		}
	}
}

// TestUploadsJpgPhp: the classic "cgi.fix_pathinfo" hole. A request for
// /uploads/x.jpg/x.php must never make php-fpm run x.jpg.
func TestUploadsJpgPhp(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	for _, target := range []string{"/uploads/x.jpg/x.php", "/uploads/x.jpg/.php", "/uploads/x.jpg/x.php/more", "/uploads/x.jpg%00.php", "/uploads/x.jpg%20.php"} {
		res, body := g.get(t, target)
		if res.StatusCode != 404 && res.StatusCode != 400 {
			t.Errorf("%s: %d %q", target, res.StatusCode, body)
		}
		if strings.Contains(body, "EXECUTED") {
			t.Errorf("%s executed the upload", target)
		}
	}
}

// TestUploadedScriptDoesNotRun: a script a client managed to upload (a
// plugin's upload hole) must not run from the upload directory, which
// nginx setups deny with `location ~* /uploads/.*\.php$ { deny all; }`.
// With SESSIONGATE_NO_PHP_PATHS=/uploads/ it gets 403 and a warning, its
// source stays unserved, and the directory's other files are served.
func TestUploadedScriptDoesNotRun(t *testing.T) {
	t.Parallel()
	g := startGW(t, func(c *config.Config) { c.NoPHPPaths = []string{"/uploads/"} })
	writeTree(t, g.Root, map[string]string{
		"uploads/shell.php":      "<?php echo 'EXECUTED';",
		"uploads/2026/index.php": "<?php echo 'EXECUTED';",
		"uploads/photo.txt":      "a photo",
	})
	for _, target := range []string{"/uploads/shell.php", "/uploads//shell.php", "/uploads/shell.php/x", "/uploads/2026/", "/x/../uploads/shell.php"} {
		res, body := g.get(t, target)
		if res.StatusCode != 403 || strings.Contains(body, "EXECUTED") || strings.Contains(body, "<?php") {
			t.Errorf("%s: %d %q, want 403 without running or showing the script", target, res.StatusCode, body)
		}
	}
	if logs := g.Logs.String(); !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, "SESSIONGATE_NO_PHP_PATHS") {
		t.Errorf("no warning naming the rule:\n%s", logs)
	}
	if res, body := g.get(t, "/uploads/photo.txt"); res.StatusCode != 200 || body != "a photo" {
		t.Errorf("a file in the upload directory: %d %q", res.StatusCode, body)
	}
	if res, body := g.get(t, "/info.php"); res.StatusCode != 200 || !strings.Contains(body, "info.php") {
		t.Errorf("a script elsewhere: %d %.100q", res.StatusCode, body)
	}
}

// TestDotfiles: .env, .git/ and .htaccess are never served; /.well-known/
// (ACME challenges) is.
func TestDotfiles(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	for _, target := range []string{"/.env", "/.git/config", "/.git/", "/.git", "/sub/.htaccess", "/%2eenv", "/.well-known/../.env", "/sub/app.php/../../.env"} {
		res, body := g.get(t, target)
		if res.StatusCode != 404 && res.StatusCode != 400 {
			t.Errorf("%s: %d", target, res.StatusCode)
		}
		if strings.Contains(body, "TOPSECRET") {
			t.Errorf("%s served a dotfile", target)
		}
	}
	if res, body := g.get(t, "/.well-known/acme-challenge/t1"); res.StatusCode != 200 || body != "acme-token" {
		t.Errorf("ACME challenge: %d %q", res.StatusCode, body)
	}
}

// TestRequestSmuggling_CLTE: a request with both Content-Length and
// Transfer-Encoding: chunked. net/http frames it by the chunked encoding; a
// proxy in front that trusted Content-Length would see a different
// boundary, so the bytes after the chunked body could be a smuggled request.
// The gateway answers the first request and closes the connection: the
// smuggled one never runs.
func TestRequestSmuggling_CLTE(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	marker := filepath.Join(g.Root, "smuggled.ran")
	smuggled := "GET /smuggled.php HTTP/1.1\r\nHost: x\r\n\r\n"

	for _, tc := range []struct{ name, req string }{
		{"CL.TE", "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE.CL", "POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + smuggled},
		{"chunked only", "POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + smuggled},
	} {
		os.Remove(marker)
		resp, closed := raw(t, g.Addr, tc.req)
		if n := strings.Count(resp, "HTTP/1.1 "); n != 1 {
			t.Errorf("%s: %d responses on the connection, want 1:\n%s", tc.name, n, resp)
		}
		if !closed {
			t.Errorf("%s: connection left open after a chunked request", tc.name)
		}
		if strings.Contains(resp, "SMUGGLED") {
			t.Errorf("%s: smuggled request answered", tc.name)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("%s: smuggled request ran in PHP", tc.name)
		}
	}

	// Framing net/http refuses outright.
	for _, tc := range []struct{ name, req string }{
		{"two different Content-Length", "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc" + smuggled},
		{"chunked, identity", "POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"},
		{"two Transfer-Encoding", "POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	} {
		resp, _ := raw(t, g.Addr, tc.req)
		if code := statusOf(resp); code != 400 && code != 501 {
			t.Errorf("%s: status %d, want 400 or 501:\n%s", tc.name, code, resp)
		}
		if strings.Contains(resp, "len=") || strings.Contains(resp, "SMUGGLED") {
			t.Errorf("%s reached PHP:\n%s", tc.name, resp)
		}
	}

	// A plain keep-alive request still keeps its connection (the close is
	// for chunked bodies only).
	resp, closed := raw(t, g.Addr, "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /echo.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if n := strings.Count(resp, "HTTP/1.1 200"); n != 2 || !closed || !strings.Contains(resp, "len=3") {
		t.Errorf("pipelined keep-alive requests: %d responses:\n%s", n, resp)
	}
}

// TestBodyLimit: Content-Length over SESSIONGATE_MAX_BODY is refused with
// 413 before PHP runs; a chunked body over it too.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil) // default 1m
	big := strings.Repeat("x", 1<<20+1)
	resp, _ := raw(t, g.Addr, "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\nConnection: close\r\n\r\n")
	if statusOf(resp) != 413 {
		t.Errorf("Content-Length over the limit: %q", resp[:min(len(resp), 80)])
	}
	resp, _ = raw(t, g.Addr, "POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n100001\r\n"+big+"\r\n0\r\n\r\n")
	if statusOf(resp) != 413 {
		t.Errorf("chunked body over the limit: %q", resp[:min(len(resp), 80)])
	}
	resp, _ = raw(t, g.Addr, "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n"+big[:1<<20])
	if statusOf(resp) != 200 || !strings.Contains(resp, "len=1048576") {
		t.Errorf("body at the limit: %q", resp[:min(len(resp), 200)])
	}
}

// TestBodyLimitZeroIsUnlimited: SESSIONGATE_MAX_BODY=0 means unlimited,
// as nginx's client_max_body_size 0: bodies over the 1m default reach PHP
// whole, with a Content-Length and chunked.
func TestBodyLimitZeroIsUnlimited(t *testing.T) {
	t.Parallel()
	g := startGW(t, func(c *config.Config) { c.MaxBody = 0 })
	const n = 3 << 20
	big := strings.Repeat("x", n)
	want := fmt.Sprintf("len=%d", n)
	resp, _ := raw(t, g.Addr, fmt.Sprintf("POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", n, big))
	if statusOf(resp) != 200 || !strings.Contains(resp, want) {
		t.Errorf("3 MiB with a Content-Length: %q, want 200 and %s", resp[:min(len(resp), 200)], want)
	}
	resp, _ = raw(t, g.Addr, fmt.Sprintf("POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", n, big))
	if statusOf(resp) != 200 || !strings.Contains(resp, want) {
		t.Errorf("3 MiB chunked: %q, want 200 and %s", resp[:min(len(resp), 200)], want)
	}
}

// TestForwardingAndHopByHopHeaders: a direct client's own Forwarded and
// X-Forwarded-* headers never reach PHP (an app that believes
// HTTP_X_FORWARDED_FOR could be fooled); a trusted proxy's do. Headers about
// the client's connection (Connection, Keep-Alive, Upgrade and whatever
// Connection names) are not the request's: PHP never sees them, and PHP's
// own never reach the client.
func TestForwardingAndHopByHopHeaders(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	_, body := g.get(t, "/info.php",
		"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example",
		"Forwarded", "for=6.6.6.6", "Keep-Alive", "timeout=5", "Upgrade", "websocket",
		"Connection", "Keep-Alive, X-Hop", "X-Hop", "hop", "X-Custom", "kept")
	d := phpDump(t, "/info.php", body)
	for _, p := range []string{"HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
		"HTTP_FORWARDED", "HTTP_KEEP_ALIVE", "HTTP_UPGRADE", "HTTP_CONNECTION", "HTTP_X_HOP"} {
		if v, ok := d[p]; ok {
			t.Errorf("direct client: %s=%q reached PHP", p, v)
		}
	}
	if d["HTTP_X_CUSTOM"] != "kept" || d["HTTPS"] == "on" || d["REMOTE_ADDR"] != "127.0.0.1" {
		t.Errorf("direct client: HTTP_X_CUSTOM %q HTTPS %q REMOTE_ADDR %q", d["HTTP_X_CUSTOM"], d["HTTPS"], d["REMOTE_ADDR"])
	}

	trusted := startGWOn(t, g.FPM, g.Root, func(c *config.Config) {
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("127.0.0.0/8")}
	})
	_, body = trusted.get(t, "/info.php", "X-Forwarded-For", "198.51.100.9", "X-Forwarded-Proto", "https")
	d = phpDump(t, "/info.php", body)
	if d["HTTP_X_FORWARDED_FOR"] != "198.51.100.9" || d["REMOTE_ADDR"] != "198.51.100.9" || d["HTTPS"] != "on" {
		t.Errorf("trusted proxy: HTTP_X_FORWARDED_FOR %q REMOTE_ADDR %q HTTPS %q",
			d["HTTP_X_FORWARDED_FOR"], d["REMOTE_ADDR"], d["HTTPS"])
	}

	page := `<?php header('Keep-Alive: timeout=999'); header('Upgrade: h2c'); header('X-Kept: 1'); echo 'ok';`
	if err := os.WriteFile(filepath.Join(g.Root, "hop.php"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	res, body := g.get(t, "/hop.php")
	if body != "ok" || res.Header.Get("X-Kept") != "1" || res.Header.Get("Keep-Alive") != "" || res.Header.Get("Upgrade") != "" {
		t.Errorf("hop.php: %q, header %v", body, res.Header)
	}
}

// TestSessionRefusedFrameNeverReportedAsSaved: when the gateway refuses the
// frames of a change PHP made before its output (here php-fpm's log_limit
// cuts them), the change is not applied and the client must not get a
// response that pretends it was: 503, as for a change the store refused.
func TestSessionRefusedFrameNeverReportedAsSaved(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{LogLimit: 600}})
	ck := s.newSession(t)
	// finish_request.php writes the session with session_write_close()
	// before any output: its frames go over FCGI_STDERR, where a message
	// this long is cut.
	// 350: one frame, cut (its end never comes); 600: two frames, the
	// first cut.
	for _, n := range []int{350, 600} {
		long := strings.Repeat("v", n)
		resp, body, _ := s.gws[0].get(t, "/finish_request.php?k=cart&v="+long, ck)
		stored := strings.Contains(string(s.gws[1].dump(t, ck).Data), long)
		if !stored && resp.StatusCode < 500 {
			t.Errorf("%d: change not saved but the client got %d %q", n, resp.StatusCode, body)
		}
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%d: 503 without Retry-After", n)
		}
	}
	if logs := s.gws[0].Logs.String(); !strings.Contains(logs, "rejected") || !strings.Contains(logs, "cut short") {
		t.Errorf("refused frames not logged:\n%s", logs)
	}
}

// TestSlowUploadDoesNotHoldPHP: a client that sends a large body slowly
// (here: a part, then nothing) must not hold a php-fpm connection while it
// does, or SESSIONGATE_PHP_MAX_CONNS such clients stop the site. Like
// nginx, the gateway reads the whole body before it takes a connection:
// always up to 64 KiB, and any size with SESSIONGATE_REQUEST_BUFFERING=on.
func TestSlowUploadDoesNotHoldPHP(t *testing.T) {
	t.Parallel()
	t.Run("small body, buffering off", func(t *testing.T) {
		slowUploadHoldsNoPHP(t, false, 60<<10)
	})
	t.Run("large bodies, buffering on", func(t *testing.T) {
		slowUploadHoldsNoPHP(t, true, 100<<10, 900<<10)
	})
}

func slowUploadHoldsNoPHP(t *testing.T, buffering bool, sizes ...int) {
	g := startGW(t, func(c *config.Config) { c.PHPMaxConns = 1; c.RequestBuffering = buffering })
	for _, size := range sizes {
		c, err := net.Dial("tcp", g.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", size, strings.Repeat("u", size/2))
		// The stalled upload is in the gateway once the next request gets
		// through; with a connection held for it, that one waits.
		res, body := g.get(t, "/info.php")
		if res.StatusCode != 200 {
			t.Errorf("%d-byte upload stalled: another request got %d %q", size, res.StatusCode, body)
		}
		// The rest arrives: the upload is answered in full.
		io.WriteString(c, strings.Repeat("u", size-size/2))
		c.SetDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != 200 || string(b) != "len="+strconv.Itoa(size) {
			t.Errorf("%d-byte upload: %d %q", size, resp.StatusCode, b)
		}
	}
}

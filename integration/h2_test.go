package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testh2"
	"github.com/sessiongate/sessiongate/internal/testtls"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// startH2Binary runs the gateway binary on TLS (HTTP/2 offered), with the
// access log on and sessions off, in front of a real php-fpm on gwSite and
// of a gunicorn serving echoWSGI under /dj/, with env added. It returns
// the gateway and its host:port.
func startH2Binary(t *testing.T, env ...string) (*gwProc, string) {
	t.Helper()
	return startH2Site(t, nil, append([]string{"SESSIONGATE_SESSIONS=off"}, env...)...)
}

// startH2Sessions is startH2Binary with sessions in a real Redis, the PHP
// prepend, and testdata/session's hold.php and counter.php in the site.
func startH2Sessions(t *testing.T) (*gwProc, string) {
	t.Helper()
	harness.Require(t, "redis-server")
	red := harness.StartRedis(t)
	files := map[string]string{}
	for _, name := range []string{"hold.php", "counter.php"} {
		b, err := os.ReadFile(filepath.Join("testdata/session", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	return startH2Site(t, files, "SESSIONGATE_SESSION_KEYS="+sessionTestKey,
		"SESSIONGATE_PHP_PREPEND="+writePrepend(t), "SESSIONGATE_REDIS_URL="+red.URL())
}

// startH2Site runs the binary of startH2Binary with files added to the
// site and env as it is.
func startH2Site(t *testing.T, files map[string]string, env ...string) (*gwProc, string) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "gunicorn")
	root := gwSite(t)
	writeTree(t, root, files)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "echoapp.py"), []byte(echoWSGI), 0o644); err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: dir, App: "echoapp:application", Workers: 1, Threads: 2})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	cert, key := testtls.Pair(t)
	p := startBinary(t, buildGateway(t), append([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_DJANGO_URL=" + g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/",
		"SESSIONGATE_ACCESS_LOG=on",
		"SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + key,
	}, env...))
	return p, strings.TrimPrefix(p.URL, "http://")
}

// tlsRaw sends request as it is over HTTP/1.1 on a new TLS connection
// to addr and returns the status line of the answer.
func tlsRaw(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to %q: %v", request, err)
	}
	return strings.TrimSpace(line)
}

// TestHTTP2AuthorityIsAHost: the real binary on TLS refuses an HTTP/2
// :authority that is no host (a space, a slash, markup) with 400, as
// net/http refuses the same Host over HTTP/1.1, for PHP and Django alike.
// Before, PHP got it as HTTP_HOST and SERVER_NAME, which applications
// print into links and pages, and Django (as X-Forwarded-Host, with an
// empty Host, since Go's client drops an invalid one) answered 400 only
// if it checked. A Host field that names another host than :authority is
// refused too (RFC 9113 section 8.3.1).
func TestHTTP2AuthorityIsAHost(t *testing.T) {
	t.Parallel()
	p, addr := startH2Binary(t)
	get := func(target string, fields ...testh2.Field) testh2.Response {
		return testh2.Do(t, addr, append([]testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":path", target}}, fields...), nil)
	}
	for _, target := range []string{"/info.php", "/dj/"} {
		res := get(target, testh2.Field{":authority", "www.example.com:8443"})
		var d map[string]string
		if res.Status != 200 || json.Unmarshal([]byte(res.Body), &d) != nil || d["HTTP_HOST"] != "www.example.com:8443" {
			t.Fatalf("%s with a host name: %d %q", target, res.Status, res.Body)
		}
		for _, bad := range [][]testh2.Field{
			{{":authority", `www.example.com"><script>alert(1)</script>`}},
			{{":authority", "evil.example/reset?"}},
			{{":authority", "www.example.com evil"}},
			{{"host", "<b>evil.example</b>"}},
			{{":authority", "www.example.com"}, {"host", "evil.example"}},
		} {
			if res := get(target, bad...); res.Status != 400 || strings.Contains(res.Body, "HTTP_HOST") {
				t.Errorf("%s with %q: %d %q, want 400 before PHP or Django", target, bad, res.Status, res.Body)
			}
		}
		// The same Host over HTTP/1.1: net/http's own 400.
		if line := tlsRaw(t, addr, "GET "+target+" HTTP/1.1\r\nHost: evil.example/reset?\r\n\r\n"); !strings.HasPrefix(line, "HTTP/1.1 400 ") {
			t.Errorf("%s over HTTP/1.1 with a slash in Host: %q", target, line)
		}
	}
	line := waitForLog(t, p.stderr, "malformed host")
	if !strings.Contains(line, `"status":400`) {
		t.Errorf("refusal logged as %s", line)
	}
}

// h2Client is an HTTP/2 client of the gateway's test certificate.
func h2Client() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
}

// TestHTTP2StreamedBodyFailureIsTheClients: with
// SESSIONGATE_REQUEST_BUFFERING=off an HTTP/2 upload that stalls past
// SESSIONGATE_READ_TIMEOUT gets 408, and one that ends (END_STREAM) short
// of its Content-Length gets 400, as over HTTP/1.1, from the real binary in
// front of php-fpm. Both were 502 with "use of closed network connection",
// php-fpm blamed (and counted) for a client's upload: HTTP/2 leaves the
// request's context alive when its body fails, and the transport took the
// failed write for one it had cut itself.
func TestHTTP2StreamedBodyFailureIsTheClients(t *testing.T) {
	t.Parallel()
	p, addr := startH2Binary(t, "SESSIONGATE_REQUEST_BUFFERING=off", "SESSIONGATE_READ_TIMEOUT=1s")
	client := h2Client()
	post := func(body io.Reader, length int64) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", "https://"+addr+"/echo.php", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.ProtoMajor != 2 {
			t.Fatalf("%s, want HTTP/2", res.Proto)
		}
		return res.StatusCode, string(b)
	}
	if code, body := post(bytes.NewReader(make([]byte, 300<<10)), 300<<10); code != 200 || body != "len=307200" {
		t.Fatalf("a whole streamed body: %d %q", code, body)
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(make([]byte, 100<<10)) // then nothing more
	if code, body := post(pr, 300<<10); code != http.StatusRequestTimeout {
		t.Errorf("an upload stalled past SESSIONGATE_READ_TIMEOUT: %d %q, want 408", code, body)
	}
	// Go's client ends the stream when the body does, whatever
	// ContentLength said.
	if code, body := post(io.NopCloser(bytes.NewReader(make([]byte, 100<<10))), 300<<10); code != http.StatusBadRequest {
		t.Errorf("a body ending short of its Content-Length: %d %q, want 400", code, body)
	}
	for _, status := range []string{`"status":408`, `"status":400`} {
		if line := waitForLog(t, p.stderr, status); !strings.Contains(line, "read request body") {
			t.Errorf("logged as %s", line)
		}
	}
	if strings.Contains(p.stderr.String(), `"status":502`) {
		t.Errorf("a 502 in the log:\n%s", p.stderr.String())
	}
}

// TestHTTP2TargetWithSpace: the real binary refuses an HTTP/2 :path with a
// space in it (no HTTP/1 request line can carry one) with its own 400.
// Before, a query's space went raw into the request line gunicorn got
// ("GET /dj/?a b HTTP/1.1"), which gunicorn refused with a page of its own
// that the client got, and PHP ran with QUERY_STRING "a b".
func TestHTTP2TargetWithSpace(t *testing.T) {
	t.Parallel()
	p, addr := startH2Binary(t)
	for _, target := range []string{"/dj/?a b", "/dj/?x HTTP/1.0", "/info.php?a b"} {
		res := testh2.Do(t, addr, []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", target}}, nil)
		if res.Status != 400 || res.Body != "Bad Request\n" {
			t.Errorf("%q: %d %q, want the gateway's 400", target, res.Status, res.Body)
		}
	}
	res := testh2.Do(t, addr, []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/dj/?a%20b"}}, nil)
	var d map[string]string
	if res.Status != 200 || json.Unmarshal([]byte(res.Body), &d) != nil || d["QUERY_STRING"] != "a%20b" {
		t.Errorf("an escaped space: %d %q", res.Status, res.Body)
	}
	if line := waitForLog(t, p.stderr, "space in the request target"); !strings.Contains(line, `"status":400`) {
		t.Errorf("logged as %s", line)
	}
}

// TestHTTP2MethodNotAToken: the real binary refuses an HTTP/2 :method that
// is not a token with its own 400, before PHP or gunicorn. Before, PHP ran
// with REQUEST_METHOD "GET X", and the Django proxy wrote the method into
// gunicorn's request line ("GET X /dj/ HTTP/1.1"), which gunicorn 20.1
// happens to refuse as a bad version; the target and version in such a
// line are the client's, past the path the gateway's rules had checked.
func TestHTTP2MethodNotAToken(t *testing.T) {
	t.Parallel()
	p, addr := startH2Binary(t)
	for _, method := range []string{"GET X", "GET /%41DMIN/ HTTP/1.1", "G(T"} {
		for _, target := range []string{"/dj/", "/info.php"} {
			res := testh2.Do(t, addr, []testh2.Field{{":method", method}, {":scheme", "https"}, {":authority", "example.com"}, {":path", target}}, nil)
			if res.Status != 400 || res.Body != "Bad Request\n" {
				t.Errorf("%q %s: %d %q, want the gateway's 400", method, target, res.Status, res.Body)
			}
		}
	}
	if strings.Contains(p.stderr.String(), `"upstream":"django"`) || strings.Contains(p.stderr.String(), `"upstream":"php"`) {
		t.Errorf("a request reached an app:\n%s", p.stderr.String())
	}
}

// h2CounterCookie gets a session from counter.php over HTTP/2 and returns
// its cookie.
func h2CounterCookie(t *testing.T, client *http.Client, addr string) *http.Cookie {
	t.Helper()
	res, err := client.Get("https://" + addr + "/counter.php")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == "sessionid" && res.ProtoMajor == 2 && string(b) == "1" {
			if !c.Secure {
				t.Errorf("session cookie over HTTPS without Secure: %s", res.Header.Get("Set-Cookie"))
			}
			return c
		}
	}
	t.Fatalf("%s %d %q, no session cookie: %q", res.Proto, res.StatusCode, b, res.Header.Values("Set-Cookie"))
	return nil
}

// TestHTTP2CookieFields: an HTTP/2 client may send its cookies as several
// cookie fields (RFC 9113 section 8.2.3, for better HPACK compression).
// They are one Cookie header to the gateway's session lookup, to PHP and
// to Django, joined with "; " as the RFC asks: the session is found in any
// of them, PHP's HTTP_COOKIE holds them all, and Django gets the others
// without the session cookie.
func TestHTTP2CookieFields(t *testing.T) {
	t.Parallel()
	_, addr := startH2Sessions(t)
	sess := h2CounterCookie(t, h2Client(), addr)
	fields := func(target string) []testh2.Field {
		return []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", target},
			{"cookie", "a=1"}, {"cookie", sess.Name + "=" + sess.Value}, {"cookie", "b=2"}}
	}
	if res := testh2.Do(t, addr, fields("/counter.php"), nil); res.Status != 200 || res.Body != "2" {
		t.Errorf("counter.php with the session in the second cookie field: %d %q, want 2", res.Status, res.Body)
	}
	res := testh2.Do(t, addr, fields("/info.php"), nil)
	var php map[string]string
	if json.Unmarshal([]byte(res.Body), &php) != nil || !strings.HasPrefix(php["HTTP_COOKIE"], "a=1; ") || !strings.HasSuffix(php["HTTP_COOKIE"], "; b=2") {
		t.Errorf("PHP's HTTP_COOKIE: %d %q", res.Status, res.Body)
	}
	res = testh2.Do(t, addr, fields("/dj/"), nil)
	var dj map[string]string
	if json.Unmarshal([]byte(res.Body), &dj) != nil || dj["HTTP_COOKIE"] != "a=1; b=2" || dj["HTTP_X_SESSIONGATE_SESSION_ID"] == "" {
		t.Errorf("Django's cookies and session: %d %q", res.Status, res.Body)
	}
}

// TestHTTP2ResetReleasesSessionLock: an HTTP/2 client that resets its
// stream (RST_STREAM: a tab closed, a fetch aborted) while PHP holds the
// session lock leaves the connection open for its other streams. The
// request is logged 499, and the lock is released at once: the next
// request for the session, on the same connection, runs while the script
// of the reset one still sleeps (30 s, past the client's 10 s timeout).
func TestHTTP2ResetReleasesSessionLock(t *testing.T) {
	t.Parallel()
	p, addr := startH2Sessions(t)
	client := h2Client()
	client.Timeout = 10 * time.Second
	sess := h2CounterCookie(t, client, addr)
	started := filepath.Join(harness.PHPTempDir(t), "started")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+addr+"/hold.php?ms=30000&started="+started, nil)
	req.AddCookie(sess)
	held := make(chan error, 1)
	go func() {
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
		}
		held <- err
	}()
	waitForFile(t, started, "hold.php")
	cancel() // Go's client resets the stream and keeps the connection
	if err := <-held; !errors.Is(err, context.Canceled) {
		t.Fatalf("hold.php after the reset: %v", err)
	}
	req, _ = http.NewRequest("GET", "https://"+addr+"/counter.php", nil)
	req.AddCookie(sess)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("the session after a reset stream that held its lock: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "2" {
		t.Errorf("counter.php: %d %q, want 2", res.StatusCode, b)
	}
	if line := waitForLog(t, p.stderr, `"path":"/hold.php"`); !strings.Contains(line, `"status":499`) {
		t.Errorf("the reset request logged as %s", line)
	}
}

// TestHTTP2StalledReaderReleasesPHP: with SESSIONGATE_RESPONSE_BUFFERING
// off, an HTTP/2 client that takes the header of a large PHP response and
// then stops reading (its stream's flow-control window stays shut) holds
// the php-fpm connection only until SESSIONGATE_WRITE_TIMEOUT: the stream
// is reset and logged as cut, and the one connection
// SESSIONGATE_PHP_MAX_CONNS allows serves the next request, well before
// SESSIONGATE_PHP_TIMEOUT would have refused it.
func TestHTTP2StalledReaderReleasesPHP(t *testing.T) {
	t.Parallel()
	p, addr := startH2Site(t, map[string]string{
		"big.php": `<?php for ($i = 0; $i < 64; $i++) { echo str_repeat('x', 1 << 20); }`,
	}, "SESSIONGATE_SESSIONS=off", "SESSIONGATE_RESPONSE_BUFFERING=off", "SESSIONGATE_WRITE_TIMEOUT=2s",
		"SESSIONGATE_PHP_MAX_CONNS=1", "SESSIONGATE_PHP_TIMEOUT=30s", "SESSIONGATE_COMPRESS=off")
	stalled := h2Client()
	stalled.Timeout = 0 // it stalls for as long as the gateway lets it
	res, err := stalled.Get("https://" + addr + "/big.php")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close() // read nothing
	if res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Fatalf("big.php: %s %d", res.Proto, res.StatusCode)
	}
	other := h2Client()
	other.Timeout = 20 * time.Second
	res2, err := other.Get("https://" + addr + "/info.php")
	if err != nil {
		t.Fatalf("the next PHP request while a client stalls: %v", err)
	}
	res2.Body.Close()
	if res2.StatusCode != 200 {
		t.Errorf("the next PHP request while a client stalls: %d, want 200", res2.StatusCode)
	}
	if line := waitForLog(t, p.stderr, `"path":"/big.php"`); !strings.Contains(line, `"aborted":true`) || !strings.Contains(line, "timed out") {
		t.Errorf("the stalled response logged as %s", line)
	}
}

// TestWriteTimeoutCountsFromTheResponse: SESSIONGATE_WRITE_TIMEOUT is
// "longest time to write a whole response", so a page PHP takes longer
// than it to make, and then writes at once, goes out whole, over HTTP/1.1
// and HTTP/2. It was net/http's WriteTimeout, which runs from the end of
// the request headers: with 1s, a page PHP took 1.5 s over reached the
// client as an empty reply (HTTP/1.1) or a reset stream (HTTP/2), logged
// as 200 with its bytes sent, without an error.
func TestWriteTimeoutCountsFromTheResponse(t *testing.T) {
	t.Parallel()
	p, addr := startH2Site(t, map[string]string{
		"nap.php": `<?php usleep(1500000); echo 'napped';`,
		"big.php": `<?php for ($i = 0; $i < 64; $i++) { echo str_repeat('x', 1 << 20); }`,
	}, "SESSIONGATE_SESSIONS=off", "SESSIONGATE_WRITE_TIMEOUT=1s", "SESSIONGATE_COMPRESS=off")
	h1 := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	for _, client := range []*http.Client{h1, h2Client()} {
		res, err := client.Get("https://" + addr + "/nap.php")
		if err != nil {
			t.Errorf("a page PHP took 1.5 s over, SESSIONGATE_WRITE_TIMEOUT=1s: %v", err)
			continue
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "napped" || err != nil {
			t.Errorf("a page PHP took 1.5 s over, SESSIONGATE_WRITE_TIMEOUT=1s, over %s: %d %q %v, want 200 napped", res.Proto, res.StatusCode, body, err)
		}
	}
	// It still bounds the writing: an HTTP/1.1 client that takes the
	// start of a 64 MB page and stops reading is cut.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /big.php HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if _, err := c.Read(make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	if line := waitForLog(t, p.stderr, `"path":"/big.php"`); !strings.Contains(line, `"aborted":true`) || !strings.Contains(line, "timed out") {
		t.Errorf("the stalled response logged as %s", line)
	}
}

// TestHTTP2MaxHeaderBytes: SESSIONGATE_MAX_HEADER_BYTES is the same limit
// over HTTP/2 as over HTTP/1.1: the request line and headers as HTTP/1.1
// carries them. net/http sizes an HTTP/2 header list otherwise (32 bytes
// more per field, pseudo-headers included) from the same
// http.Server.MaxHeaderBytes, which the gateway sets 4 KiB under the limit
// for HTTP/1's sake: with 8k, HTTP/2 requests over 4.3 KB were refused
// (a browser's cookies), and with 4k, the smallest setting, every browser
// request (Go's client and curl refuse to send a list over the limit the
// server announces).
func TestHTTP2MaxHeaderBytes(t *testing.T) {
	t.Parallel()
	h1 := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	get := func(client *http.Client, addr string, pad int) (string, error) {
		req, err := http.NewRequest("GET", "https://"+addr+"/info.php", nil)
		if err != nil {
			t.Fatal(err)
		}
		// About what a browser sends besides its cookies.
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8")
		req.Header.Set("Accept-Language", "en-GB,en-US;q=0.9,en;q=0.8")
		req.Header.Set("Sec-Ch-Ua", `"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"`)
		req.Header.Set("Cookie", "pad="+strings.Repeat("a", pad))
		res, err := client.Do(req)
		if err != nil {
			return "", err
		}
		res.Body.Close()
		return fmt.Sprint(res.Proto, " ", res.StatusCode), nil
	}
	for _, c := range []struct {
		limit string
		pad   int
		want  int
	}{
		{"4k", 100, 200},
		{"4k", 3000, 200},
		{"4k", 4500, 431},
		{"8k", 7000, 200},
		{"8k", 9000, 431},
	} {
		_, addr := startH2Binary(t, "SESSIONGATE_MAX_HEADER_BYTES="+c.limit)
		for _, client := range []*http.Client{h1, h2Client()} {
			got, err := get(client, addr, c.pad)
			proto := "HTTP/2.0"
			if client == h1 {
				proto = "HTTP/1.1"
			}
			if want := fmt.Sprint(proto, " ", c.want); got != want {
				t.Errorf("SESSIONGATE_MAX_HEADER_BYTES=%s, a cookie of %d bytes: %q (%v), want %s", c.limit, c.pad, got, err, want)
			}
		}
		if c.want != 200 {
			// A request line alone over the limit: 414, as over plain
			// HTTP and from nginx; over TLS it got 431.
			req := "GET /info.php?" + strings.Repeat("a", c.pad) + " HTTP/1.1\r\nHost: x\r\n\r\n"
			if resp := tlsRawAll(t, addr, req); !strings.HasPrefix(resp, "HTTP/1.1 414 ") {
				t.Errorf("SESSIONGATE_MAX_HEADER_BYTES=%s, a request line of %d bytes over TLS: %.60q, want 414", c.limit, c.pad, resp)
			}
		}
	}
}

// TestHTTP2ResetContentHasNoBody: over HTTP/2 too, what PHP prints after a
// 205 (TestPHPResetContentHasNoBody) went out as DATA frames; the client
// gets the status and no content now.
func TestHTTP2ResetContentHasNoBody(t *testing.T) {
	t.Parallel()
	p, addr := startH2Site(t, resetContentScripts, "SESSIONGATE_SESSIONS=off")
	client := h2Client()
	for name := range resetContentScripts {
		res, err := client.Get("https://" + addr + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.ProtoMajor != 2 || res.StatusCode != 205 || len(b) != 0 || res.Header.Get("Content-Length") != "0" {
			t.Errorf("%s: %s %d %q (%v), Content-Length %q\n%s", name, res.Proto, res.StatusCode, b, err, res.Header.Get("Content-Length"), p.stderr.String())
		}
	}
}

// TestTLSRefusalsLoggedAndCounted: the requests net/http refuses itself
// before any handler runs (headers over SESSIONGATE_MAX_HEADER_BYTES: 431;
// malformed: 400; an unknown Transfer-Encoding: 501) were logged and
// counted on plain HTTP only: over SESSIONGATE_TLS_CERT a client told 431
// left no trace in the log or in sessiongate_http_requests_total. They are
// logged and counted over TLS too now, and a folded header line gets the
// 400 it gets on plain HTTP (a proxy that re-encrypts toward the gateway
// parses HTTP as well). HTTP/2 and the pages the gateway serves are as
// before.
func TestTLSRefusalsLoggedAndCounted(t *testing.T) {
	t.Parallel()
	p, addr := startH2Binary(t, "SESSIONGATE_MAX_HEADER_BYTES=8k")
	for _, c := range []struct {
		name, req, status string
	}{
		// The gateway's own 431, and net/http's, past the room left for
		// HTTP/2 (tlsMaxHeaderBytes).
		{"headers too large", "GET /info.php HTTP/1.1\r\nHost: x\r\nCookie: a=" + strings.Repeat("b", 9<<10) + "\r\n\r\n", "431"},
		{"headers far too large", "GET /info.php HTTP/1.1\r\nHost: x\r\nCookie: a=" + strings.Repeat("b", 24<<10) + "\r\n\r\n", "431"},
		{"space before colon", "GET /info.php HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", "400"},
		{"transfer-encoding", "POST /info.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "501"},
		{"pipelined after a served request", "GET /info.php HTTP/1.1\r\nHost: x\r\n\r\nPOST /info.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "501"},
		{"folded header line", "POST /echo.php HTTP/1.1\r\nHost: x\r\nX-A: y\r\n Content-Length: 3\r\n\r\nabc", "400"},
	} {
		before := len(p.stderr.String())
		resp := tlsRawAll(t, addr, c.req)
		if i := strings.LastIndex(resp, "HTTP/1.1 "); i < 0 || !strings.HasPrefix(resp[i:], "HTTP/1.1 "+c.status+" ") {
			t.Errorf("%s: got %.200q, want %s last", c.name, resp, c.status)
			continue
		}
		since := func() string { return p.stderr.String()[before:] }
		if log, ok := textWhen(since, func(log string) bool { return strings.Contains(log, `"status":`+c.status) }); !ok {
			t.Errorf("%s: the %s is not in the log:\n%s", c.name, c.status, log)
		}
	}
	m := metricstest.Scrape(t, p.Admin+"/metrics")
	for code, want := range map[string]float64{"431": 2, "400": 2, "501": 2} {
		if got := m[`sessiongate_http_requests_total{code="`+code+`",upstream="gateway"}`]; got != want {
			t.Errorf("refusals with %s counted %v times, want %v", code, got, want)
		}
	}

	// What the gateway serves over TLS is unchanged: HTTP/1.1 and HTTP/2,
	// each seen as HTTPS (HSTS, the https scheme PHP gets).
	h1 := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	for _, client := range []*http.Client{h1, h2Client()} {
		res, err := client.Get("https://" + addr + "/info.php")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), `"HTTPS":"on"`) {
			t.Errorf("%s: %d %.200q, want 200 with HTTPS on", res.Proto, res.StatusCode, b)
		}
	}
}

// tlsRawAll sends request as it is over HTTP/1.1 on a new TLS connection
// to addr and returns all it gets until the gateway closes the
// connection (or 5 s pass).
func tlsRawAll(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestTLSStaticFileCopiesThroughPooledBuffer: a static file over
// HTTPS/1.1 goes out in 64 KiB ReadFrom calls; since the public listener
// wraps TLS connections (to log net/http's own refusals), net/http handed
// each to the wrapper's io.Copy, which allocated a 32 KiB buffer per call:
// 544 KiB of garbage per 1 MiB file, against 24 KiB before the wrapping.
func TestTLSStaticFileCopiesThroughPooledBuffer(t *testing.T) {
	t.Parallel()
	p, addr := startH2Binary(t)
	h1 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	get := func() {
		t.Helper()
		res, err := h1.Get("https://" + addr + "/big.bin")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if n != 1<<20 || res.ProtoMajor != 1 {
			t.Fatalf("got %d bytes over %s", n, res.Proto)
		}
	}
	get()
	const runs = 50
	before := metricstest.Scrape(t, p.Admin+"/metrics")["go_memstats_alloc_bytes_total"]
	for range runs {
		get()
	}
	after := metricstest.Scrape(t, p.Admin+"/metrics")["go_memstats_alloc_bytes_total"]
	if per := (after - before) / runs; per > 256<<10 {
		t.Errorf("%.0f KiB allocated per 1 MiB static file over HTTPS/1.1, want well under the 512 KiB of a 32 KiB buffer per 64 KiB", per/1024)
	}
}

// TestHTTP2BodyLongerThanContentLength: an HTTP/2 request whose DATA runs
// past its content-length is the client's fault, like one that ends short
// of it (400). net/http resets the stream, which ends the request's
// context, and the access log recorded 499 "client left" with net/http's
// "sender tried to send more than declared Content-Length", on the PHP
// and the Django path: a small body read ahead, a large one spooled to a
// file, and (SESSIONGATE_REQUEST_BUFFERING=off) one streamed to the app.
func TestHTTP2BodyLongerThanContentLength(t *testing.T) {
	t.Parallel()
	const big = 100000 // over the 64 KiB read into memory
	for _, env := range [][]string{nil, {"SESSIONGATE_REQUEST_BUFFERING=off"}} {
		p, addr := startH2Binary(t, env...)
		for _, target := range []string{"/echo.php", "/dj/over"} {
			for _, length := range []int{3, big} {
				if env != nil && length != big {
					continue
				}
				path := target + "/" + strconv.Itoa(length)
				fields := []testh2.Field{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", path},
					{"content-type", "application/octet-stream"}, {"content-length", strconv.Itoa(length)}}
				// The frame that would pass the length is refused whole.
				res := testh2.DoSplit(t, addr, fields, make([]byte, length+16<<10))
				if !res.Reset && res.Status != http.StatusBadRequest {
					t.Errorf("%v %s: %+v, want a reset stream or 400", env, path, res)
				}
				line := waitForLog(t, p.stderr, `"path":"`+path+`"`)
				if !strings.Contains(line, `"status":400`) || !strings.Contains(line, "more than declared Content-Length") {
					t.Errorf("%v %s logged as %s, want 400 naming the body", env, path, line)
				}
			}
		}
	}
}

// TestHTTP2BodyPastContentLengthAfterRead: an HTTP/2 request whose body
// ran past its content-length only after the app had read those bytes
// (DATA that came while PHP or Django was running) was logged 499, as a
// client that left: net/http resets the stream and cancels the request's
// context, and the body read, the one place that sees net/http's
// error, had already ended well. It is the client's fault, 400, as when
// the extra bytes come while the gateway reads the body.
func TestHTTP2BodyPastContentLengthAfterRead(t *testing.T) {
	t.Parallel()
	const big = 100000 // over the 64 KiB read into memory
	files := map[string]string{
		"readwait.php": `<?php $b = file_get_contents('php://input'); touch($_GET['started']); usleep(2000000); echo strlen($b);`,
	}
	for _, env := range [][]string{{"SESSIONGATE_SESSIONS=off"}, {"SESSIONGATE_SESSIONS=off", "SESSIONGATE_REQUEST_BUFFERING=off"}} {
		p, addr := startH2Site(t, files, env...)
		for _, target := range []string{"/readwait.php", "/dj/readwait"} {
			for _, length := range []int{3, big} {
				if len(env) > 1 && (length != big || target == "/dj/readwait") {
					// Streamed to gunicorn, the body's last bytes wait
					// in the gateway for its end: Django never has all
					// of them before the extra DATA.
					continue
				}
				started, q := markFile(t)
				os.Remove(started)
				path := target + "/" + strconv.Itoa(length) + "?started=" + q
				fields := []testh2.Field{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", path},
					{"content-type", "application/octet-stream"}, {"content-length", strconv.Itoa(length)}}
				res := testh2.DoThenMore(t, addr, fields, make([]byte, length), func() { waitForFile(t, started, target) }, []byte("extra"))
				if !res.Reset && res.Status != http.StatusBadRequest {
					t.Errorf("%v %s: %+v, want a reset stream or 400", env, path, res)
				}
				logged := path
				if i := strings.IndexByte(logged, '?'); i >= 0 {
					logged = logged[:i]
				}
				line := waitForLog(t, p.stderr, `"path":"`+logged+`"`)
				if !strings.Contains(line, `"status":400`) || !strings.Contains(line, "more than declared Content-Length") {
					t.Errorf("%v %s logged as %s, want 400 naming the body", env, path, line)
				}
			}
		}
	}
}

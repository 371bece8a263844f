package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/testh2"
)

// TestHTTP2AuthorityCheckedAsHost: net/http refuses an HTTP/1 Host that is
// no host (a space, a slash, a quote) with 400, but takes an HTTP/2
// :authority, or a Host field in its place, as it comes. Such a request
// must be refused the same way, not run PHP with it as HTTP_HOST and
// SERVER_NAME (which applications print into links and pages). A Host
// field that names another host than :authority, or two Host fields, make
// the request malformed (RFC 9113 section 8.3.1): refused too, since which
// of them the app reads is anyone's guess.
func TestHTTP2AuthorityCheckedAsHost(t *testing.T) {
	e := newEnv(t, nil)
	ts := startH2(t, e.srv.Handler())
	for _, c := range []struct {
		name   string
		fields []testh2.Field // after :method, :scheme and :path
		want   int
	}{
		{"authority", []testh2.Field{{":authority", "example.com"}}, 200},
		{"authority with port", []testh2.Field{{":authority", "example.com:8443"}}, 200},
		{"IPv6 authority", []testh2.Field{{":authority", "[::1]:443"}}, 200},
		{"Host field alone", []testh2.Field{{"host", "example.com"}}, 200},
		{"Host field as authority, other case", []testh2.Field{{":authority", "example.com"}, {"host", "Example.COM"}}, 200},
		{"space", []testh2.Field{{":authority", "example.com evil"}}, 400},
		{"slash", []testh2.Field{{":authority", "evil.example/x?"}}, 400},
		{"markup", []testh2.Field{{":authority", `x"><script>alert(1)</script>`}}, 400},
		{"backslash", []testh2.Field{{":authority", `evil.example\x`}}, 400},
		{"Host field alone, markup", []testh2.Field{{"host", "<b>x</b>"}}, 400},
		{"Host field names another host", []testh2.Field{{":authority", "example.com"}, {"host", "evil.example"}}, 400},
		{"two Host fields", []testh2.Field{{"host", "example.com"}, {"host", "evil.example"}}, 400},
		{"neither :authority nor Host", nil, 400},
		{"empty :authority", []testh2.Field{{":authority", ""}}, 400},
	} {
		before := len(e.php.scripts)
		fields := append([]testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":path", "/hello.php"}}, c.fields...)
		res := testh2.Do(t, ts.Listener.Addr().String(), fields, nil)
		e.php.mu.Lock()
		ran := len(e.php.scripts) - before
		e.php.mu.Unlock()
		if res.Status != c.want || (ran == 1) != (c.want == 200) {
			t.Errorf("%s: status %d (reset %v), PHP ran %d times; want %d", c.name, res.Status, res.Reset, ran, c.want)
			continue
		}
		if c.want == 400 {
			if m := e.lastLog(t); m["status"] != float64(400) || m["error"] == nil {
				t.Errorf("%s: access log %v, want 400 with the reason", c.name, m)
			}
		}
	}
}

// TestHTTP2TargetWithSpace: an HTTP/1 request line cannot carry a space
// in its target (net/http answers 400), but an HTTP/2 :path can, and
// net/http passes it. In a query it went on raw: Django's request line
// became "GET /dj/?a b HTTP/1.1", a malformed request written to gunicorn
// (which refused it with a page of its own), and PHP got QUERY_STRING
// "a b". Refused with 400, as nginx and nghttp2 refuse such a :path.
func TestHTTP2TargetWithSpace(t *testing.T) {
	mount, mounted := countingDjango()
	e := newEnv(t, nil, mount)
	ts := startH2(t, e.srv.Handler())
	for _, target := range []string{"/hello.php?a b", "/dj/?x HTTP/1.0", "/dj/a b", "/hello.php ", "/style.css?v=1 2"} {
		before := len(e.php.scripts)
		res := testh2.Do(t, ts.Listener.Addr().String(), []testh2.Field{
			{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", target}}, nil)
		e.php.mu.Lock()
		ran := len(e.php.scripts) - before
		e.php.mu.Unlock()
		if res.Status != 400 || ran != 0 || *mounted != 0 {
			t.Errorf("%q: status %d (reset %v), PHP ran %d, Django %d; want 400 and neither", target, res.Status, res.Reset, ran, *mounted)
		}
	}
	// Escaped, it is an ordinary target.
	if res := testh2.Do(t, ts.Listener.Addr().String(), []testh2.Field{
		{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/hello.php?a%20b+c"}}, nil); res.Status != 200 {
		t.Errorf("escaped space: %d", res.Status)
	}
}

// TestHTTP2MethodNotAToken: net/http refuses an HTTP/1 method that is not
// a token (a space, a slash, a parenthesis) with 400, but passes an
// HTTP/2 :method as the client wrote it. PHP ran with such a
// REQUEST_METHOD, and the Django proxy wrote it into gunicorn's request
// line: ":method GET X" became "GET X /dj/ HTTP/1.1", a request line
// whose target and version are the client's to choose, past the path the
// gateway's rules had checked. Refused with 400 before anything runs.
func TestHTTP2MethodNotAToken(t *testing.T) {
	mount, mounted := countingDjango()
	e := newEnv(t, nil, mount)
	ts := startH2(t, e.srv.Handler())
	for _, method := range []string{"GET /%41DMIN/ HTTP/1.1", "GET X", "G(T", "GET/1", `GE"T`, "GET\t", "PÖST"} {
		for _, target := range []string{"/hello.php", "/dj/", "/style.css"} {
			before := len(e.php.scripts)
			res := testh2.Do(t, ts.Listener.Addr().String(), []testh2.Field{
				{":method", method}, {":scheme", "https"}, {":authority", "example.com"}, {":path", target}}, nil)
			e.php.mu.Lock()
			ran := len(e.php.scripts) - before
			e.php.mu.Unlock()
			if !res.Reset && res.Status != 400 || ran != 0 || *mounted != 0 {
				t.Errorf("%q %s: status %d (reset %v), PHP ran %d, Django %d; want 400 and neither", method, target, res.Status, res.Reset, ran, *mounted)
			}
		}
	}
	// A token with the characters a token may have is a method (PHP may
	// answer it: WebDAV, PURGE).
	before := len(e.php.scripts)
	if res := testh2.Do(t, ts.Listener.Addr().String(), []testh2.Field{
		{":method", "X-PURGE_1.0!"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/hello.php"}}, nil); res.Status != 200 || len(e.php.scripts) != before+1 {
		t.Errorf("a token method: %d", res.Status)
	}
}

// TestMaxHeaderBytesAsHTTP1Carries: SESSIONGATE_MAX_HEADER_BYTES bounds an
// HTTP/2 request as HTTP/1.1 would carry it, request line ("GET /hello.php
// HTTP/1.1") and "Name: value" lines, Host and the final blank line
// included: exactly the limit is served, a byte more gets 431. (net/http
// sizes an HTTP/2 header list otherwise, and over TLS is given room for
// that, so the limit is the handler's to apply.)
func TestMaxHeaderBytesAsHTTP1Carries(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxHeaderBytes = 8 << 10 })
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	ts.EnableHTTP2 = true
	ts.Config.MaxHeaderBytes = 64 << 10
	ts.StartTLS()
	defer ts.Close()
	// "GET /hello.php HTTP/1.1\r\n" "Host: example.com\r\n" "X-Pad: ...\r\n" "\r\n"
	fixed := len("GET /hello.php HTTP/1.1\r\n") + len("Host: example.com\r\n") + len("X-Pad: \r\n") + len("\r\n")
	for _, c := range []struct{ size, want int }{{8 << 10, 200}, {8<<10 + 1, 431}, {12 << 10, 431}} {
		res := testh2.Do(t, ts.Listener.Addr().String(), []testh2.Field{
			{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/hello.php"},
			{"x-pad", strings.Repeat("a", c.size-fixed)}}, nil)
		if res.Status != c.want {
			t.Errorf("%d bytes as HTTP/1.1 carries them, limit 8k: status %d (reset %v), want %d", c.size, res.Status, res.Reset, c.want)
		}
	}
}

// TestHTTP2ContentLengthWithoutBody: an HTTP/2 request whose
// content-length names bytes its stream never carries is malformed (RFC
// 9113 section 8.1.1). net/http refuses DATA that ends short of it, but a
// stream the HEADERS frame ends it serves as an empty body, and a
// content-length that is no number it ignores: PHP and Django ran on an
// empty body (a PUT stored as empty, a form saved blank) where nginx
// answers 400, as net/http does over HTTP/1.1 for "Content-Length: abc".
func TestHTTP2ContentLengthWithoutBody(t *testing.T) {
	mount, mounted := countingDjango()
	e := newEnv(t, nil, mount)
	ts := startH2(t, e.srv.Handler())
	for _, c := range []struct {
		name   string
		length string
		body   []byte // nil: END_STREAM on the HEADERS frame
		want   int
	}{
		{"length 5, stream ended with the headers", "5", nil, 400},
		{"length abc, empty DATA", "abc", []byte{}, 400},
		{"length abc, stream ended with the headers", "abc", nil, 400},
		{"length 0, stream ended with the headers", "0", nil, 200},
		{"length 3, 3 bytes", "3", []byte("abc"), 200},
	} {
		for _, target := range []string{"/hello.php", "/dj/"} {
			before, mountedBefore := len(e.php.scripts), *mounted
			res := testh2.Do(t, ts.Listener.Addr().String(), []testh2.Field{
				{":method", "PUT"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", target},
				{"content-length", c.length}}, c.body)
			e.php.mu.Lock()
			ran := len(e.php.scripts) - before + *mounted - mountedBefore
			e.php.mu.Unlock()
			if res.Status != c.want || (ran == 1) != (c.want == 200) {
				t.Errorf("%s %s: status %d (reset %v), app ran %d times; want %d", c.name, target, res.Status, res.Reset, ran, c.want)
				continue
			}
			if c.want == 400 {
				if m := e.lastLog(t); m["status"] != float64(400) || !strings.Contains(fmt.Sprint(m["error"]), "content-length") {
					t.Errorf("%s %s: access log %v, want 400 naming the content-length", c.name, target, m)
				}
			}
		}
	}
}

// countingDjango is a mount of /dj/ standing for Django that counts the
// requests it gets.
func countingDjango() (Option, *int) {
	n := new(int)
	return WithMount("django", []string{"/dj/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { *n++ })), n
}

// startH2 serves h over TLS with HTTP/2 until the test ends.
func startH2(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

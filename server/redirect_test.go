package server

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

// redirectEnv is a server whose TLS listener is listen, with nothing but
// the test's files under its static root.
func redirectEnv(t *testing.T, listen string, opts ...Option) *env {
	t.Helper()
	return newEnv(t, func(c *config.Config) { c.Listen = listen }, opts...)
}

// rawRequest parses a request as net/http's server reads it off the wire,
// so RequestURI and Host are what the handler really gets (absolute form
// included).
func rawRequest(t *testing.T, s string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s)))
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	r.RemoteAddr = "192.0.2.7:5555"
	return r
}

func (e *env) redirect(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.srv.RedirectHandler(nil).ServeHTTP(w, r)
	return w
}

func TestRedirect(t *testing.T) {
	for _, tc := range []struct {
		name, listen, req string
		status            int
		location          string
	}{
		{"plain", ":443", "GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/path?q=1"},
		{"host port dropped", ":443", "GET / HTTP/1.1\r\nHost: example.com:80\r\n\r\n", 301, "https://example.com/"},
		{"host lower-cased", "0.0.0.0:443", "GET /A HTTP/1.1\r\nHost: WWW.Example.COM\r\n\r\n", 301, "https://www.example.com/A"},
		{"TLS port not 443", ":8443", "GET /x HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", 301, "https://example.com:8443/x"},
		{"TLS port on a host", "127.0.0.1:8443", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 301, "https://localhost:8443/"},
		{"IPv4", ":443", "GET / HTTP/1.1\r\nHost: 192.0.2.1:80\r\n\r\n", 301, "https://192.0.2.1/"},
		{"IPv6", ":443", "GET /v6 HTTP/1.1\r\nHost: [2001:DB8::1]:80\r\n\r\n", 301, "https://[2001:db8::1]/v6"},
		{"IPv6 without port", "[::]:8443", "GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", 301, "https://[::1]:8443/"},
		{"IPv4-mapped IPv6", ":443", "GET / HTTP/1.1\r\nHost: [::ffff:192.0.2.1]\r\n\r\n", 301, "https://[::ffff:192.0.2.1]/"},
		{"fully qualified", ":443", "GET / HTTP/1.1\r\nHost: example.com.\r\n\r\n", 301, "https://example.com/"},
		{"fully qualified with port", ":8443", "GET /x HTTP/1.1\r\nHost: WWW.example.com.:80\r\n\r\n", 301, "https://www.example.com:8443/x"},
		{"query as sent", ":443", "GET /search?q=a%20b&x=%2F&y&z=%3F#f HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/search?q=a%20b&x=%2F&y&z=%3F#f"},
		{"escaped path as sent", ":443", "GET /a%2Fb/%E2%82%AC/%2e%2e/c HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/a%2Fb/%E2%82%AC/%2e%2e/c"},
		{"dot segments as sent", ":443", "GET /a/../b/./c HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/a/../b/./c"},
		{"raw bytes escaped", ":443", "GET /caf\xc3\xa9?q=\"<x>\" HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/caf%C3%A9?q=%22%3Cx%3E%22"},
		{"backslash escaped", ":443", "GET /\\evil.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/%5Cevil.com/x"},
		{"double slash stays on the host", ":443", "GET //evil.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com//evil.com/x"},
		{"absolute form", ":443", "GET http://Example.com:80/p?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n", 301, "https://example.com/p?q=1"},
		{"absolute form, no path", ":443", "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/"},
		{"absolute form, query only", ":8443", "GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com:8443/?x=1"},
		{"site file not served", ":443", "GET /style.css HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/style.css"},
		{"script not run", ":443", "GET /hello.php HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/hello.php"},
		{"HEAD", ":443", "HEAD /h HTTP/1.1\r\nHost: example.com\r\n\r\n", 301, "https://example.com/h"},
		{"POST keeps its method", ":443", "POST /form?a=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nx=1", 308, "https://example.com/form?a=1"},
		{"PUT", ":443", "PUT /r HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n", 308, "https://example.com/r"},
		{"DELETE", ":8443", "DELETE /r HTTP/1.1\r\nHost: example.com\r\n\r\n", 308, "https://example.com:8443/r"},
		{"OPTIONS", ":443", "OPTIONS /r HTTP/1.1\r\nHost: example.com\r\n\r\n", 308, "https://example.com/r"},
		{"PATCH", ":443", "PATCH /r HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 308, "https://example.com/r"},
		{"POST to the challenge path", ":443", "POST /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: example.com\r\n\r\n", 308, "https://example.com/.well-known/acme-challenge/tok"},
		{"TRACE", ":443", "TRACE / HTTP/1.1\r\nHost: example.com\r\n\r\n", 405, ""},
		{"CONNECT", ":443", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, ""},
		{"lowercase method", ":443", "get / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, ""},
		{"OPTIONS *", ":443", "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, ""},
		{"HTTP/1.0 without Host", ":443", "GET / HTTP/1.0\r\n\r\n", 400, ""},
		{"absolute form with userinfo", ":443", "GET http://example.com@evil.example/x HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, ""},
		{"absolute form with user and password", ":443", "GET http://u:p@example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := redirectEnv(t, tc.listen)
			r := rawRequest(t, tc.req)
			w := e.redirect(r)
			if w.Code != tc.status || w.Header().Get("Location") != tc.location {
				t.Fatalf("%q: %d Location %q, want %d %q", tc.req, w.Code, w.Header().Get("Location"), tc.status, tc.location)
			}
			if r.Method == "HEAD" && w.Body.Len() > 0 {
				t.Errorf("HEAD got a body: %q", w.Body)
			}
			bodySent := r.ContentLength != 0 || r.TransferEncoding != nil || !r.ProtoAtLeast(1, 1)
			if got := w.Header().Get("Connection") == "close"; got != bodySent {
				t.Errorf("Connection: close = %v, want %v (a body left unread, or HTTP/1.0)", got, bodySent)
			}
			if e.php.calls() != 0 {
				t.Errorf("PHP ran")
			}
			log := e.lastLog(t)
			if log["msg"] != "request" || log["upstream"] != "redirect" || log["status"] != float64(tc.status) || log["remote"] != "192.0.2.7:5555" {
				t.Errorf("access log line: %v", log)
			}
		})
	}
}

// A Host that is not a plain name or address never makes a Location:
// userinfo, backslashes and the like would make the https:// URL name
// another host in a browser, and CR/LF would add headers.
func TestRedirectRefusesBadHosts(t *testing.T) {
	e := redirectEnv(t, ":443")
	for _, host := range []string{
		"",
		":80",
		"evil.com\\@example.com",
		"evil.com\\.example.com",
		"example.com@evil.com",
		"user:pw@example.com",
		"evil.com/example.com",
		"evil.com?.example.com",
		"evil.com#.example.com",
		"exa mple.com",
		"example.com\r\nSet-Cookie: x=1",
		"example.com\t",
		"%65vil.com",
		"ex_ample.com",
		"éxample.com",
		"example..com",
		".example.com",
		"example.com..",
		strings.Repeat("a", 64) + ".com",
		strings.Repeat("a.", 127) + "aa",
		"example.com:8o",
		"example.com:80:80",
		"example.com:1234567",
		"example.com:+80",
		"::1",
		"[::1",
		"[::1]x",
		"[::1]:x",
		"[zz::1]",
		"[192.0.2.1]",
		"[fe80::1%25eth0]",
		"[fe80::1%eth0]",
		"[::1]@evil.com",
	} {
		r := rawRequest(t, "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n")
		r.Host = host
		w := e.redirect(r)
		if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" {
			t.Errorf("Host %q: %d Location %q, want 400 without one", host, w.Code, w.Header().Get("Location"))
		}
	}
}

// The files certbot --webroot -w <static root> writes under
// .well-known/acme-challenge/ are served over plain HTTP, as the public
// listener serves the same URLs (its symlink rules included: a link inside
// the root is followed, one out of it only as SESSIONGATE_FOLLOW_SYMLINKS
// allows), and nothing else is: not another name, not a directory, not a
// FIFO, never a script run.
func TestRedirectServesACMEChallenges(t *testing.T) {
	e := redirectEnv(t, ":443")
	dir := filepath.Join(e.root, ".well-known", "acme-challenge")
	outside := t.TempDir()
	for name, body := range map[string]string{
		filepath.Join(dir, "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"): "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI",
		filepath.Join(dir, "tok_EN-1"):                                    "key-authorization",
		filepath.Join(dir, "sub", "a"):                                    "inside a directory",
		filepath.Join(dir, "dirtoken", "x"):                               "x",
		filepath.Join(e.root, "secret.txt"):                               "site file",
		filepath.Join(outside, "passwd"):                                  "outside the root",
		filepath.Join(outside, "acme-challenge", "elsewhere"):             "outside the root",
	} {
		os.MkdirAll(filepath.Dir(name), 0o755)
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		filepath.Join(dir, "uptoroot"):    "../../secret.txt",
		filepath.Join(dir, "absolute"):    filepath.Join(outside, "passwd"),
		filepath.Join(dir, "intoscripts"): "../../hello.php",
		filepath.Join(dir, "sideways"):    "tok_EN-1", // stays in the directory
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	get := func(method, target string) *httptest.ResponseRecorder {
		t.Helper()
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() {
			done <- e.redirect(rawRequest(t, method+" "+target+" HTTP/1.1\r\nHost: example.com\r\n\r\n"))
		}()
		select {
		case w := <-done:
			return w
		case <-time.After(5 * time.Second):
			t.Fatalf("%s %s: no answer after 5 s", method, target)
			return nil
		}
	}

	for target, body := range map[string]string{
		"/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI",
		"/.well-known/acme-challenge/tok_EN-1?x=1":                                "key-authorization",
		"http://example.com/.well-known/acme-challenge/tok_EN-1":                  "key-authorization",
		"/.well-known/acme-challenge/sideways":                                    "key-authorization",
		"/.well-known/acme-challenge/uptoroot":                                    "site file", // public over TLS too
		"/.well-known/acme-challenge/intoscripts":                                 "<?php",     // its source, as over TLS; never run
	} {
		w := get("GET", target)
		if w.Code != 200 || w.Body.String() != body || w.Header().Get("Location") != "" {
			t.Errorf("GET %s: %d %q, want 200 %q", target, w.Code, w.Body, body)
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("GET %s: Content-Type %q", target, ct)
		}
		if log := e.lastLog(t); log["upstream"] != "redirect" || log["status"] != float64(200) || log["error"] != nil {
			t.Errorf("GET %s: access log line %v", target, log)
		}
	}
	if w := get("HEAD", "/.well-known/acme-challenge/tok_EN-1"); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "17" {
		t.Errorf("HEAD: %d %q %v", w.Code, w.Body, w.Header())
	}

	for _, target := range []string{
		"/.well-known/acme-challenge/",
		"/.well-known/acme-challenge/missing",
		"/.well-known/acme-challenge/tok.EN",
		"/.well-known/acme-challenge/tok_EN-1/",
		"/.well-known/acme-challenge/sub/a",
		"/.well-known/acme-challenge/..",
		"/.well-known/acme-challenge/%2e%2e",
		"/.well-known/acme-challenge/../../secret.txt",
		"/.well-known/acme-challenge/..%2f..%2fsecret.txt",
		"/.well-known/acme-challenge/tok%00",
		"/.well-known/acme-challenge/absolute",
		"/.well-known/acme-challenge/dirtoken",
		"/.well-known/acme-challenge/sub",
		"/.well-known/acme-challenge/fifo",
		"/.well-known/acme-challenge/" + strings.Repeat("a", 256),
	} {
		if w := get("GET", target); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "site file") || w.Header().Get("Location") != "" {
			t.Errorf("GET %s: %d %q, want 404", target, w.Code, w.Body)
		}
	}
	if e.php.calls() != 0 {
		t.Errorf("PHP ran")
	}

	// A challenge directory that is itself a symlink out of the static
	// root is not followed either.
	if err := os.RemoveAll(filepath.Join(e.root, ".well-known")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(e.root, ".well-known")); err != nil {
		t.Fatal(err)
	}
	if w := get("GET", "/.well-known/acme-challenge/elsewhere"); w.Code != http.StatusNotFound {
		t.Errorf("challenge directory linked out of the root: %d %q, want 404", w.Code, w.Body)
	}
	if log := e.lastLog(t); !strings.Contains(fmt.Sprint(log["error"]), "SESSIONGATE_STATIC_ROOT") {
		t.Errorf("the link out of the root is not in the log line: %v", log)
	}

	// Where SESSIONGATE_FOLLOW_SYMLINKS lets links lead there, it is served,
	// as over TLS (a certbot directory shared between sites).
	e2 := newEnv(t, func(c *config.Config) { c.Listen, c.FollowSymlinks = ":443", []string{"any"} })
	if err := os.Symlink(outside, filepath.Join(e2.root, ".well-known")); err != nil {
		t.Fatal(err)
	}
	if w := e2.redirect(rawRequest(t, "GET /.well-known/acme-challenge/elsewhere HTTP/1.1\r\nHost: example.com\r\n\r\n")); w.Code != 200 || w.Body.String() != "outside the root" {
		t.Errorf("with SESSIONGATE_FOLLOW_SYMLINKS=any: %d %q", w.Code, w.Body)
	}
}

// The redirect listener's requests are counted like the public ones.
func TestRedirectObserved(t *testing.T) {
	var o observations
	e := redirectEnv(t, ":443", WithObserver(o.observe))
	e.redirect(rawRequest(t, "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	e.redirect(rawRequest(t, "GET /.well-known/acme-challenge/none HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	got := o.all()
	if len(got) != 2 || got[0].upstream != "redirect" || got[0].status != 301 || got[1].upstream != "redirect" || got[1].status != 404 {
		t.Errorf("observed %+v", got)
	}
}

// With SESSIONGATE_SERVER_NAMES, port 80 redirects (and answers ACME
// challenges for) the listed names only.
func TestRedirectOnlyServerNames(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Listen = ":443"
		c.ServerNames = []string{"example.com", "*.example.com"}
	})
	checkRedirects(t, e, []redirectCase{
		{"example.com", "/a?b", 301, "https://example.com/a?b"},
		{"www.example.com:80", "/", 301, "https://www.example.com/"},
		{"www.example.com", "/.well-known/acme-challenge/tok-1", 200, ""},
		{"evil.example", "/a", 421, ""},
		{"evil.example", "/.well-known/acme-challenge/tok-1", 421, ""},
	})
}

type redirectCase struct {
	host, target string
	status       int
	location     string
}

// checkRedirects puts the ACME token tok-1 under e's root and sends each
// case's GET to the port-80 listener.
func checkRedirects(t *testing.T, e *env, cases []redirectCase) {
	t.Helper()
	os.MkdirAll(filepath.Join(e.root, ".well-known/acme-challenge"), 0o755)
	os.WriteFile(filepath.Join(e.root, ".well-known/acme-challenge/tok-1"), []byte("tok-1.key"), 0o644)
	for _, tc := range cases {
		w := e.redirect(rawRequest(t, "GET "+tc.target+" HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n"))
		if w.Code != tc.status || w.Header().Get("Location") != tc.location {
			t.Errorf("%s %s: %d %q, want %d %q", tc.host, tc.target, w.Code, w.Header().Get("Location"), tc.status, tc.location)
		}
	}
}

// Behind a trusted proxy that sends its own Host (nginx's proxy_pass sends
// the upstream's name), port 80 redirects to the host the client asked
// for, its X-Forwarded-Host, as the public listener's canonical redirect
// reads it: not to the proxy's name for the gateway.
func TestRedirectBehindHostRewritingProxy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		names     []string
		canonical string
		req       string
		location  string
	}{
		{"no server names", nil, "",
			"GET /x?a=1 HTTP/1.1\r\nHost: app:8080\r\nX-Forwarded-Host: www.example.com\r\nX-Forwarded-Proto: http\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", "https://www.example.com/x?a=1"},
		{"Forwarded host=", nil, "",
			"GET /x HTTP/1.1\r\nHost: app\r\nForwarded: for=198.51.100.1;host=\"shop.example.com:80\"\r\n\r\n", "https://shop.example.com/x"},
		{"listed names", []string{"example.com", "www.example.com", "app"}, "",
			"GET /x HTTP/1.1\r\nHost: app\r\nX-Forwarded-Host: www.example.com\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", "https://www.example.com/x"},
		{"canonical name, in one hop", []string{"example.com", "www.example.com", "app"}, "example.com",
			"GET /x HTTP/1.1\r\nHost: app\r\nX-Forwarded-Host: www.example.com\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", "https://example.com/x"},
		{"proxy Host is the canonical name, client asked for www", []string{"example.com", "www.example.com"}, "example.com",
			"GET /x HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Host: www.example.com\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", "https://example.com/x"},
		{"proxy without X-Forwarded-Host", nil, "",
			"GET /x HTTP/1.1\r\nHost: www.example.com\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", "https://www.example.com/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *config.Config) {
				c.Listen = ":443"
				c.ServerNames, c.CanonicalName = tc.names, tc.canonical
				c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.1/32")}
			})
			r := rawRequest(t, tc.req)
			r.RemoteAddr = "10.0.0.1:40000"
			w := e.redirect(r)
			if w.Code != 301 || w.Header().Get("Location") != tc.location {
				t.Errorf("%d %q, want 301 %q", w.Code, w.Header().Get("Location"), tc.location)
			}
		})
	}
	// From anyone else X-Forwarded-Host is not believed.
	e := newEnv(t, func(c *config.Config) {
		c.Listen = ":443"
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.1/32")}
	})
	r := rawRequest(t, "GET /x HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Host: evil.example\r\n\r\n")
	if w := e.redirect(r); w.Code != 301 || w.Header().Get("Location") != "https://example.com/x" {
		t.Errorf("untrusted client's X-Forwarded-Host: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// The host a trusted proxy forwards is the entry it wrote, not one its
// client wrote before it: a proxy that appends to X-Forwarded-Host (Apache's
// mod_proxy) or Forwarded (RFC 7239) passes the client's own entries on in
// front of its own, and the first of them sent port 80's visitors (and
// any cache in front, for everyone) to https://evil.example. As the
// X-Forwarded-For walk counts them (clientOf), each trusted proxy between
// the client and the gateway wrote one entry, from the right.
func TestRedirectForwardedHostOfTrustedHop(t *testing.T) {
	for _, tc := range []struct {
		name, fwd, xff, location string
	}{
		{"client's X-Forwarded-Host before the proxy's", "X-Forwarded-Host: evil.example, www.example.com", "198.51.100.1", "https://www.example.com/x"},
		{"two trusted proxies", "X-Forwarded-Host: www.example.com, app", "198.51.100.1, 10.0.0.2", "https://www.example.com/x"},
		{"client's before two trusted proxies", "X-Forwarded-Host: evil.example\r\nX-Forwarded-Host: www.example.com, app", "198.51.100.1, 10.0.0.2", "https://www.example.com/x"},
		{"one proxy that sets it, behind another", "X-Forwarded-Host: www.example.com", "198.51.100.1, 10.0.0.2", "https://www.example.com/x"},
		{"client's Forwarded element before the proxy's", "Forwarded: for=1.2.3.4;host=evil.example, for=198.51.100.1;host=www.example.com", "198.51.100.1", "https://www.example.com/x"},
		{"proxy's Forwarded element without a host", "Forwarded: host=evil.example, for=198.51.100.1", "198.51.100.1", "https://app/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *config.Config) {
				c.Listen = ":443"
				c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("10.0.0.2/32")}
			})
			r := rawRequest(t, "GET /x HTTP/1.1\r\nHost: app\r\n"+tc.fwd+"\r\nX-Forwarded-For: "+tc.xff+"\r\n\r\n")
			r.RemoteAddr = "10.0.0.1:40000"
			w := e.redirect(r)
			if w.Code != 301 || w.Header().Get("Location") != tc.location {
				t.Errorf("%d %q, want 301 %q", w.Code, w.Header().Get("Location"), tc.location)
			}
		})
	}
}

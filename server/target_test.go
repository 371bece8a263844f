package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// TestAbsoluteFormWithoutPath: a request line in absolute form may leave
// the path empty ("GET http://example.com HTTP/1.1", RFC 9112 section 3.2.2);
// its path is "/", as nginx takes it: the site's home page, with
// REQUEST_URI "/" (and the query kept), not a 400.
func TestAbsoluteFormWithoutPath(t *testing.T) {
	mounted := 0
	e := newEnv(t, nil, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	for target, want := range map[string]string{
		"http://example.com":           "/",
		"http://example.com?a=1&b=%2F": "/?a=1&b=%2F",
		"https://example.com:8443":     "/",
	} {
		s, ok := e.runPHP(t, target)
		if !ok {
			continue
		}
		if s.ScriptName != "/index.php" || s.RequestURI != want {
			t.Errorf("%s: SCRIPT_NAME %q REQUEST_URI %q, want /index.php and %q", target, s.ScriptName, s.RequestURI, want)
		}
	}
	if mounted != 0 {
		t.Errorf("an empty path reached the Django mount %d times", mounted)
	}
	// CONNECT's authority form names no path either; it stays refused
	// (405, TestConnectRefused).
	r := httptest.NewRequest("CONNECT", "example.com:443", nil)
	if w := e.do(r); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("CONNECT example.com:443: %d, want 405", w.Code)
	}
}

// TestRawFragmentInTarget: a "#" sent unescaped in the request target
// starts a fragment, which nginx leaves out of the path its locations
// match. Routed on the whole string instead, "/admin/users#/../../x" went
// to PHP's front controller (normalised to "/x"), which routes on
// REQUEST_URI and, like PHP's parse_url and Symfony, reads "/admin/users":
// a PHP page under a prefix the operator gave to Django. An escaped "%23"
// is part of the path, for nginx too.
func TestRawFragmentInTarget(t *testing.T) {
	var seen []string
	e := newEnv(t, nil, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.EscapedPath())
	})))
	for target, want := range map[string]string{
		"/admin/users#/../../x":                 "/admin/users",
		"/admin/a%2Fb#/../../x":                 "/admin/a%2Fb",
		"http://example.com/admin/x#/../../y?q": "/admin/x",
	} {
		seen = nil
		w := e.do(httptest.NewRequest("GET", target, nil))
		if w.Code != http.StatusOK || len(seen) != 1 || seen[0] != want {
			t.Errorf("%s: %d, Django saw %q, want it to get %q", target, w.Code, seen, want)
		}
	}
	if n := len(e.php.scripts); n != 0 {
		t.Fatalf("PHP ran for a Django path: %+v", e.php.scripts)
	}
	if w := e.do(httptest.NewRequest("GET", "/admin#/../hello.php", nil)); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/admin/" {
		t.Errorf("/admin#/../hello.php: %d Location %q, want 301 to /admin/", w.Code, w.Header().Get("Location"))
	}
	// The path before the "#" decides; REQUEST_URI stays as sent, like
	// nginx's $request_uri.
	seen = nil
	for target, script := range map[string]string{
		"/hello.php#/../admin/":  "/hello.php",
		"/admin%23/../hello.php": "/hello.php",
	} {
		s, ok := e.runPHP(t, target)
		if !ok {
			continue
		}
		if s.ScriptName != script || s.RequestURI != target {
			t.Errorf("%s: SCRIPT_NAME %q REQUEST_URI %q, want %q and the target as sent", target, s.ScriptName, s.RequestURI, script)
		}
	}
	if len(seen) != 0 {
		t.Errorf("Django got %q, a path outside /admin/", seen)
	}
}

// TestRawFragmentInQuery: the fragment ends the query string too. nginx's
// QUERY_STRING ($args) stops at a "#" sent unescaped, so PHP's $_GET has
// a=1 for "/hello.php?a=1#frag", not "1#frag"; and a "?" after the "#"
// ("/hello.php#x?c=d") is part of the fragment, no query at all. The query
// also follows a redirect without the fragment. REQUEST_URI stays as sent.
func TestRawFragmentInQuery(t *testing.T) {
	e := newEnv(t, nil)
	for target, want := range map[string]string{
		"/hello.php?a=1#frag":    "a=1",
		"/hello.php?a=1#f?g=2":   "a=1",
		"/hello.php?#x":          "",
		"/hello.php#x?c=d":       "",
		"/hello.php?a=%23#b":     "a=%23",
		"/hello.php?a=1&b=2":     "a=1&b=2",
		"http://h/hello.php?q#r": "q",
	} {
		before := len(e.php.reqs)
		if _, ok := e.runPHP(t, target); !ok {
			continue
		}
		r := e.php.reqs[before]
		if r.URL.RawQuery != want {
			t.Errorf("%s: PHP's QUERY_STRING %q, want %q", target, r.URL.RawQuery, want)
		}
		if s := e.php.scripts[before]; s.RequestURI != originForm(target) {
			t.Errorf("%s: REQUEST_URI %q, want the target as sent", target, s.RequestURI)
		}
	}
	if w := e.do(httptest.NewRequest("GET", "/dir?x=1#f", nil)); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/dir/?x=1" {
		t.Errorf("/dir?x=1#f: %d Location %q, want 301 to /dir/?x=1", w.Code, w.Header().Get("Location"))
	}
}

// TestAbsoluteFormWithoutAuthority: "GET http:admin HTTP/1.1" is an
// absolute URI without "//host" (net/http keeps "admin" as its opaque
// part, its path empty). Taken as "/" it ran the front controller with
// REQUEST_URI "http:admin", which Symfony's Request (parse_url) routes as
// /admin, past an entry on /admin/. nginx refuses such a target with 400,
// as RFC 9110 section 4.2.1 wants an http URI without a host refused; so
// does the gateway now, before PHP or Django runs.
func TestAbsoluteFormWithoutAuthority(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8"}
	})
	for _, target := range []string{"http:admin", "http:admin/users?x=1", "https:admin", "http:/admin/users", "http:///admin/users", "http:blog"} {
		before := e.php.calls()
		r := rawRequest(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = "192.0.2.9:1"
		if code := e.do(r).Code; code != http.StatusBadRequest || e.php.calls() != before {
			t.Errorf("%s: %d, want 400 before PHP", target, code)
		}
	}
	if s, ok := e.runPHP(t, "http://example.com/blog?x=1"); ok && s.RequestURI != "/blog?x=1" {
		t.Errorf("http://example.com/blog?x=1: REQUEST_URI %q", s.RequestURI)
	}
}

// TestAbsoluteFormWithUserinfo: an absolute-form target with userinfo
// ("GET http://user@example.com/ HTTP/1.1") was served, net/http taking
// the host after the "@" and dropping the rest, where nginx answers 400, as
// RFC 9110 section 4.2.4 asks a recipient to treat userinfo in an http URI
// as an error: a proxy in front that reads the authority another way
// ("example.com@evil.example") routes the request for one host while PHP
// builds its links from the other.
func TestAbsoluteFormWithUserinfo(t *testing.T) {
	mounted := 0
	e := newEnv(t, nil, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	for _, target := range []string{
		"http://user@example.com/hello.php",
		"http://user:pw@example.com/hello.php",
		"http://example.com@evil.example/hello.php",
		"https://@example.com/style.css",
		"http://user@example.com/admin/",
	} {
		before := e.php.calls()
		w := e.do(rawRequest(t, "GET "+target+" HTTP/1.1\r\nHost: example.com\r\n\r\n"))
		if w.Code != http.StatusBadRequest || e.php.calls() != before || mounted != 0 {
			t.Errorf("%s: %d, PHP ran %d, Django %d; want 400 and neither", target, w.Code, e.php.calls()-before, mounted)
		}
	}
	if s, ok := e.runPHP(t, "http://example.com/hello.php"); ok && s.RequestURI != "/hello.php" {
		t.Errorf("without userinfo: REQUEST_URI %q", s.RequestURI)
	}
}

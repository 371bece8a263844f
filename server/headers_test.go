package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/fcgi"
)

// TestHSTS: SESSIONGATE_HSTS goes out on every HTTPS response, static,
// PHP (replacing the app's own) and errors alike, as nginx's add_header
// ... always; never on plain HTTP; and over a trusted TLS proxy too.
func TestHSTS(t *testing.T) {
	const hsts = "max-age=63072000; includeSubDomains"
	e := newEnv(t, func(c *config.Config) {
		c.HSTS = hsts
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("192.0.2.0/24")}
	})
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/html"},
			"Strict-Transport-Security": {"max-age=60"}}, Body: io.NopCloser(strings.NewReader("php")), Request: r}, nil
	}
	for _, tc := range []struct {
		name, target string
		tls          bool
		proto        string // X-Forwarded-Proto from the trusted proxy
		want         string
	}{
		{"static over TLS", "/style.css", true, "", hsts},
		{"PHP over TLS replaces the app's", "/hello.php", true, "", hsts},
		{"404 over TLS", "/.env", true, "", hsts},
		{"static over HTTP", "/style.css", false, "", ""},
		{"PHP over HTTP keeps the app's", "/hello.php", false, "", "max-age=60"},
		{"static via a TLS proxy", "/style.css", false, "https", hsts},
		{"static via a plain proxy", "/style.css", false, "http", ""},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if tc.proto != "" {
			r.RemoteAddr = "192.0.2.7:4000"
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		w := e.do(r)
		if got := w.Header().Values("Strict-Transport-Security"); strings.Join(got, "|") != tc.want {
			t.Errorf("%s: Strict-Transport-Security %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestStaticMaxAge: SESSIONGATE_STATIC_MAX_AGE gives static assets a
// Cache-Control max-age, as nginx's expires, on 200 and 304; HTML pages
// get no-cache, and PHP what it sends.
func TestStaticMaxAge(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.StaticMaxAge = 720 * time.Hour })
	want := "public, max-age=2592000"
	w := e.do(httptest.NewRequest("GET", "/style.css", nil))
	if w.Header().Get("Cache-Control") != want {
		t.Errorf("style.css: Cache-Control %q", w.Header().Get("Cache-Control"))
	}
	r := httptest.NewRequest("GET", "/style.css", nil)
	r.Header.Set("If-None-Match", w.Header().Get("ETag"))
	if w := e.do(r); w.Code != http.StatusNotModified || w.Header().Get("Cache-Control") != want {
		t.Errorf("304: %d Cache-Control %q", w.Code, w.Header().Get("Cache-Control"))
	}
	r = httptest.NewRequest("GET", "/style.css", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	writeFile(t, e.root+"/big.css", bigCSS, time.Now())
	r.URL.Path = "/big.css"
	if w := e.do(r); w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Cache-Control") != want {
		t.Errorf("compressed: Content-Encoding %q Cache-Control %q", w.Header().Get("Content-Encoding"), w.Header().Get("Cache-Control"))
	}
	// HTML pages are revalidated every time instead; PHP keeps its own.
	writeFile(t, e.root+"/page.xhtml", "<html/>", time.Now())
	for target, want := range map[string]string{"/page.html": "no-cache", "/page.xhtml": "no-cache", "/hello.php": ""} {
		if w := e.do(httptest.NewRequest("GET", target, nil)); w.Header().Get("Cache-Control") != want {
			t.Errorf("%s: Cache-Control %q, want %q", target, w.Header().Get("Cache-Control"), want)
		}
	}
	// Off by default.
	e = newEnv(t, nil)
	if w := e.do(httptest.NewRequest("GET", "/style.css", nil)); w.Header().Get("Cache-Control") != "" {
		t.Errorf("default: Cache-Control %q", w.Header().Get("Cache-Control"))
	}
}

// TestRedirectListenerNeverSendsHSTS: the plain-HTTP listener sends no
// Strict-Transport-Security (RFC 6797 section 7.2), even when a trusted
// proxy says the request was HTTPS; such a request is a proxy pointed at
// the wrong port, which a redirect to https:// would loop back here: 421,
// logged with the fix.
func TestRedirectListenerNeverSendsHSTS(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Listen, c.HSTS = ":443", "max-age=63072000"
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("192.0.2.0/24")}
	})
	for _, target := range []string{"/x", "/.well-known/acme-challenge/none"} {
		r := httptest.NewRequest("GET", target, nil)
		r.RemoteAddr = "192.0.2.7:5555"
		r.Header.Set("X-Forwarded-Proto", "https")
		w := httptest.NewRecorder()
		e.srv.RedirectHandler(nil).ServeHTTP(w, r)
		if v := w.Header().Get("Strict-Transport-Security"); v != "" {
			t.Errorf("%s: %d with Strict-Transport-Security %q", target, w.Code, v)
		}
		if target == "/x" {
			log := e.lastLog(t)
			if w.Code != http.StatusMisdirectedRequest || w.Header().Get("Location") != "" || !strings.Contains(fmt.Sprint(log["error"]), "point the proxy at SESSIONGATE_LISTEN") {
				t.Errorf("HTTPS through a proxy on the redirect listener: %d Location %q, log %v", w.Code, w.Header().Get("Location"), log)
			}
		}
	}
}

// TestResponseHeaders: SESSIONGATE_RESPONSE_HEADERS reach every response
// of the site (static, PHP, a mount, 304, errors), the most specific line
// deciding per header and an empty value keeping a header off a part of
// the site; the app's own value is kept, never doubled;
// SESSIONGATE_HIDE_HEADERS removes what the app sent, which lets the
// gateway's value replace it. The plain-HTTP redirect listener gets none.
func TestResponseHeaders(t *testing.T) {
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Powered-By", "Django")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		io.WriteString(w, "django")
	})
	e := newEnv(t, func(c *config.Config) {
		c.Listen = ":443"
		c.ResponseHeaderSpecs = config.Lines{
			"X-Frame-Options: SAMEORIGIN",
			"X-Content-Type-Options: nosniff",
			"Referrer-Policy: strict-origin-when-cross-origin",
			"/fonts/ Access-Control-Allow-Origin: *",
			"/embed/ X-Frame-Options:",
			"/embed/ Content-Security-Policy: frame-ancestors https://partner.example",
			"/embed/open.php Content-Security-Policy:",
			"/hello.php Permissions-Policy: camera=(), microphone=()",
			"/admin/ X-Frame-Options: DENY",
			"/widget/ X-Frame-Options:",
			"/docs/index.html X-Robots-Tag: noindex",
			"/private/ X-Robots-Tag: noarchive",
		}
		c.InternalPaths = []string{"/private/"}
		c.HideHeaders = []string{"X-Powered-By", "Referrer-Policy"}
	}, WithMount("django", []string{"/app/"}, mounted))
	os.MkdirAll(e.root+"/fonts", 0o755)
	writeFile(t, e.root+"/fonts/a.woff2", "woff2", time.Now())
	os.MkdirAll(e.root+"/embed", 0o755)
	writeFile(t, e.root+"/embed/open.php", "<?php", time.Now())
	os.MkdirAll(e.root+"/docs", 0o755)
	writeFile(t, e.root+"/docs/index.html", "<p>docs</p>", time.Now())
	os.MkdirAll(e.root+"/private", 0o755)
	writeFile(t, e.root+"/private/report.pdf", "%PDF", time.Now())
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		h := http.Header{"Content-Type": {"text/html"}, "X-Powered-By": {"PHP/8.2.7"}, "Referrer-Policy": {"unsafe-url"}}
		if s := fcgi.ScriptFrom(r.Context()); s != nil && s.ScriptName == "/hello.php" {
			h.Set("X-Frame-Options", "DENY")
		}
		if r.URL.Query().Get("download") != "" {
			h.Set("X-Accel-Redirect", "/private/report.pdf?v=1")
		}
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader("php")), Request: r}, nil
	}
	all := map[string]string{
		"X-Frame-Options":        "SAMEORIGIN",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "strict-origin-when-cross-origin",
	}
	with := func(changes ...string) map[string]string {
		m := maps.Clone(all)
		for i := 0; i < len(changes); i += 2 {
			if changes[i+1] == "" {
				delete(m, changes[i])
			} else {
				m[changes[i]] = changes[i+1]
			}
		}
		return m
	}
	checked := []string{"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Access-Control-Allow-Origin",
		"Content-Security-Policy", "Permissions-Policy", "X-Powered-By", "X-Robots-Tag"}
	for _, tc := range []struct {
		name, target string
		status       int
		want         map[string]string
	}{
		{"static file", "/style.css", 200, all},
		{"PHP: the app's X-Frame-Options kept, X-Powered-By and its Referrer-Policy hidden", "/hello.php",
			200, with("X-Frame-Options", "DENY", "Permissions-Policy", "camera=(), microphone=()")},
		{"front controller", "/some/route", 200, all},
		{"the gateway's 404", "/.env", 404, all},
		{"a directory's line", "/fonts/a.woff2", 200, with("Access-Control-Allow-Origin", "*")},
		{"the directory's line after dot segments", "/x/../fonts/a.woff2", 200, with("Access-Control-Allow-Origin", "*")},
		{"an empty value keeps the header off", "/embed/page", 200,
			with("X-Frame-Options", "", "Content-Security-Policy", "frame-ancestors https://partner.example")},
		{"an exact URL's empty value beats the directory's", "/embed/open.php", 200, with("X-Frame-Options", "")},
		{"a mount: its own nosniff kept once, X-Powered-By hidden", "/app/x", 200, all},
		{"a redirect", "/dir", 301, all},
		// The script that ran, the path after it and the file sent count
		// for a line with a value; a client cannot pick a URL that dodges
		// a page's policy.
		{"the script behind the URL", "/hello.php/x", 200,
			with("X-Frame-Options", "DENY", "Permissions-Policy", "camera=(), microphone=()")},
		{"the path after the front controller", "/index.php/admin/users", 200, with("X-Frame-Options", "DENY")},
		{"a directory's URL", "/admin/users", 200, with("X-Frame-Options", "DENY")},
		{"a directory's static index", "/docs/", 200, with("X-Robots-Tag", "noindex")},
		{"the file an X-Accel-Redirect sent", "/some/route?download=1", 200, with("X-Robots-Tag", "noarchive")},
		// The path after another script than the front controller is
		// only its argument: /embed/'s lines are not its.
		{"the path after another script", "/dir/index.php/embed/x", 200, all},
		// A directory's name without its slash is a route of its own
		// for Symfony and Django, outside nginx's location /widget/.
		{"a loosening directory's name without its slash", "/widget", 200, all},
		{"a loosening directory's URL", "/widget/x", 200, with("X-Frame-Options", "")},
		{"a tightening directory's name without its slash", "/admin", 200, with("X-Frame-Options", "DENY")},
		{"the path after the front controller, an empty value", "/index.php/embed/x", 200,
			with("X-Frame-Options", "", "Content-Security-Policy", "frame-ancestors https://partner.example")},
		// Readings apps route on: Django's (?i) patterns take /ADMIN/ for
		// /admin/, and /admin/..%2fembed/page is the admin page to Django
		// and Symfony, though it cleans to /embed/page. Such a spelling
		// may add a page's headers, never take them off.
		{"a case-folded spelling", "/ADMIN/users", 200, with("X-Frame-Options", "DENY")},
		{"a dot-segment spelling takes no header off", "/admin/..%2fembed/page", 200,
			with("X-Frame-Options", "DENY", "Content-Security-Policy", "frame-ancestors https://partner.example")},
		{"a dot-segment spelling of a loosening directory", "/x/..%2fwidget/x", 200, all},
	} {
		w := e.do(httptest.NewRequest("GET", tc.target, nil))
		if w.Code != tc.status {
			t.Errorf("%s: %s gave %d, want %d", tc.name, tc.target, w.Code, tc.status)
		}
		for _, name := range checked {
			if got := strings.Join(w.Header().Values(name), "|"); got != tc.want[name] {
				t.Errorf("%s: %s: %s %q, want %q", tc.name, tc.target, name, got, tc.want[name])
			}
		}
	}

	// A raw # ends the path, for the lines as for routing: this is /admin/x.
	if w := e.do(rawRequest(t, "GET /admin/x#/../../embed/y HTTP/1.1\r\nHost: example.com\r\n\r\n")); w.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("/admin/x#/../../embed/y: %d X-Frame-Options %q, want /admin/'s DENY", w.Code, w.Header().Get("X-Frame-Options"))
	}

	// An escaped %23 is no fragment but part of the path, for the lines
	// as for routing: this is /fonts/a.woff2, whose line applies (it was
	// matched as /x, and the file sent without it).
	if w := e.do(httptest.NewRequest("GET", "/x%23/../fonts/a.woff2", nil)); w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("/x%%23/../fonts/a.woff2: %d Access-Control-Allow-Origin %q, want 200 and /fonts/'s *", w.Code, w.Header().Get("Access-Control-Allow-Origin"))
	}

	// "OPTIONS *" is about the whole server, whose lines apply: nginx's
	// add_header ... always is on its 400 too.
	if w := e.do(rawRequest(t, "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n")); w.Code != http.StatusBadRequest || w.Header().Get("X-Frame-Options") != "SAMEORIGIN" {
		t.Errorf("OPTIONS *: %d X-Frame-Options %q, want 400 with the site's SAMEORIGIN", w.Code, w.Header().Get("X-Frame-Options"))
	}

	// A 304 carries them too, as the 200 it stands for.
	w := e.do(httptest.NewRequest("GET", "/style.css", nil))
	r := httptest.NewRequest("GET", "/style.css", nil)
	r.Header.Set("If-None-Match", w.Header().Get("ETag"))
	if w := e.do(r); w.Code != http.StatusNotModified || w.Header().Get("X-Frame-Options") != "SAMEORIGIN" {
		t.Errorf("304: %d X-Frame-Options %q", w.Code, w.Header().Get("X-Frame-Options"))
	}

	// The port-80 listener only redirects to the site: none of it.
	w = httptest.NewRecorder()
	e.srv.RedirectHandler(nil).ServeHTTP(w, httptest.NewRequest("GET", "/style.css", nil))
	if w.Code != http.StatusMovedPermanently || w.Header().Get("X-Frame-Options") != "" {
		t.Errorf("redirect listener: %d X-Frame-Options %q", w.Code, w.Header().Get("X-Frame-Options"))
	}
}

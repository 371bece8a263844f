package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
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
		e.srv.RedirectHandler().ServeHTTP(w, r)
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

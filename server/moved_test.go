package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// TestMovedURLs: SESSIONGATE_REDIRECTS answers before PHP, Django, the
// body limit and the access rules, as nginx's rewrite phase does: the
// exact entry first, then the longest directory; a directory moved to a
// directory keeps the rest of the path, escaped anew so that no client
// path can point the Location at another host; the query follows.
func TestMovedURLs(t *testing.T) {
	var djangoRan bool
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { djangoRan = true })
	e := newEnv(t, func(c *config.Config) {
		c.RedirectSpecs = []string{
			"/old-page /new-page",
			"/blog/ https://blog.example.com/",
			"/blog/feed https://blog.example.com/rss.xml 302",
			"/docs/ /guide/",
			"/shop/ /store",
			"/promo /sale?utm_source=old 307",
			"/app/legacy/ /app/current/",
			"/admin/old/ /admin/new/",
			"/campaign /landing?",
			"/archive/ /old-site/?",
		}
		c.RestrictedPathSpecs = []string{"/admin/ none"}
		c.MaxBody = 10
	}, WithMount("django", []string{"/app/"}, mounted))
	for _, tc := range []struct {
		req      string
		status   int
		location string
	}{
		{"GET /old-page HTTP/1.1", 301, "/new-page"},
		{"GET /old-page?a=1&b=%2F HTTP/1.1", 301, "/new-page?a=1&b=%2F"},
		{"HEAD /old-page HTTP/1.1", 301, "/new-page"},
		{"POST /old-page HTTP/1.1", 308, "/new-page"},
		{"GET /old-page/x HTTP/1.1", 200, ""}, // exact: the front controller has the rest
		{"GET /blog/2024/hello%20world?ref=x HTTP/1.1", 301, "https://blog.example.com/2024/hello%20world?ref=x"},
		{"GET /blog/ HTTP/1.1", 301, "https://blog.example.com/"},
		{"GET /blog HTTP/1.1", 301, "https://blog.example.com/"},
		{"GET /blog/feed HTTP/1.1", 302, "https://blog.example.com/rss.xml"},
		{"GET /docs/a/b.html HTTP/1.1", 301, "/guide/a/b.html"},
		{"GET /docs/x/../y HTTP/1.1", 301, "/guide/y"},
		{"GET /docs//evil.example/ HTTP/1.1", 301, "/guide/evil.example/"},
		{"GET /docs/%5Cevil.example HTTP/1.1", 301, "/guide/%5Cevil.example"},
		{"GET /docs/%2F%2Fevil.example HTTP/1.1", 301, "/guide/evil.example"},
		{"GET /docs/caf%C3%A9?q=%22%3C HTTP/1.1", 301, "/guide/caf%C3%A9?q=%22%3C"},
		{"GET /shop/cart/42 HTTP/1.1", 301, "/store"},
		{"GET /promo?x=1 HTTP/1.1", 307, "/sale?utm_source=old&x=1"},
		{"GET /app/legacy/page HTTP/1.1", 301, "/app/current/page"},
		// A target ending in "?" leaves the query behind (nginx's idiom).
		{"GET /campaign?utm_source=x HTTP/1.1", 301, "/landing"},
		{"GET /archive/2019/a?page=2 HTTP/1.1", 301, "/old-site/2019/a"},
		// A raw # ends the path, for the redirect as for routing.
		{"GET /old-page#x HTTP/1.1", 301, "/new-page"},
		{"GET /docs/a#/../../old-page HTTP/1.1", 301, "/guide/a"},
		// Before the access rules, as nginx's return in a location.
		{"GET /admin/old/users HTTP/1.1", 301, "/admin/new/users"},
		{"GET /admin/new/users HTTP/1.1", 403, ""},
	} {
		r := rawRequest(t, tc.req+"\r\nHost: example.com\r\n\r\n")
		w := e.do(r)
		if w.Code != tc.status || w.Header().Get("Location") != tc.location {
			t.Errorf("%s: %d %q, want %d %q", tc.req, w.Code, w.Header().Get("Location"), tc.status, tc.location)
		}
	}
	if djangoRan {
		t.Error("the mount ran for a moved URL")
	}
	if n := len(e.php.scripts); n != 1 {
		t.Errorf("PHP ran %d times, want once (/old-page/x)", n)
	}
	// A body is never read: the connection closes after the redirect,
	// even past the body limit (413 comes after the rewrite phase).
	r := rawRequest(t, "POST /old-page HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100))
	if w := e.do(r); w.Code != 308 || w.Header().Get("Connection") != "close" {
		t.Errorf("POST with a body: %d Connection %q", w.Code, w.Header().Get("Connection"))
	}
}

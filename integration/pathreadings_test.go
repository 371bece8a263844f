package integration

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// The rate limits and the response header lines read a path as the apps
// behind the gateway route it, as the restricted paths do
// (restricted_test.go): with its dot segments left in, from each of its
// slashes (gunicorn hands Django the path as sent and Django's resolver
// does not resolve them; HttpFoundation's path info keeps them), and
// lower-cased (Django's (?i) patterns). A limit on a login view counted
// /dj/login/../x as /dj/x, and the login view ran past it; the page
// /dj/account/..%2fembed/ went out without the site's X-Frame-Options,
// taken off by the line of /dj/embed/, which it cleans to; /dj/ADMIN/ got
// none of the lines of /dj/admin/. A line that takes a header off now never
// applies to a path with dot segments, which browsers do not send.

const pathReadingsDjangoURLs = `
from django.urls import path, re_path
from django.http import HttpResponse

def view(name):
    return lambda request, **kw: HttpResponse(name.encode() + b" " + request.path.encode())

# Old-style patterns without "$" (Django's url() tutorials, DRF's
# url(r'^api-token-auth/', ...)), a path converter, a case-insensitive one.
urlpatterns = [
    re_path(r"^dj/login/", view("LOGIN")),
    path("dj/files/<path:name>", view("FILES")),
    re_path(r"^dj/account/", view("ACCOUNT")),
    re_path(r"^dj/embed/", view("EMBED")),
    re_path(r"(?i)^dj/admin/", view("ADMIN")),
    re_path(r"^dj/", view("PUBLIC")),
]
`

func TestPathReadingsDjango(t *testing.T) {
	t.Parallel()
	gw := startURLConfDjango(t, pathReadingsDjangoURLs, nil, "SESSIONGATE_RATE_LIMITS=/dj/login/ 1r/m,/dj/files/ 1r/m",
		"SESSIONGATE_RESPONSE_HEADERS=X-Frame-Options: DENY\n/dj/embed/ X-Frame-Options:\n/dj/admin/ X-Robots-Tag: noindex")
	client := &http.Client{}
	for _, tc := range []struct{ first, over, view string }{
		{"/dj/login/", "/dj/login/../x", "LOGIN"},
		{"/dj/files/a", "/dj/files/%2e%2e/x", "FILES"},
	} {
		if res, body := getVia(t, client, gw.URL, tc.first); res.StatusCode != 200 || !strings.HasPrefix(body, tc.view) {
			t.Fatalf("first %s: %d %q, want the view", tc.first, res.StatusCode, body)
		}
		if res, body := getVia(t, client, gw.URL, tc.over); res.StatusCode != 429 || strings.HasPrefix(body, tc.view) {
			t.Errorf("%s over the allowance of 1r/m: %d %q, want 429", tc.over, res.StatusCode, body)
		}
	}
	for _, tc := range []struct{ target, view, frame, robots string }{
		{"/dj/account/", "ACCOUNT", "DENY", ""},
		{"/dj/embed/", "EMBED", "", ""},
		{"/dj/account/..%2fembed/", "ACCOUNT", "DENY", ""},
		{"/dj/admin/", "ADMIN", "DENY", "noindex"},
		{"/dj/ADMIN/", "ADMIN", "DENY", "noindex"},
		{"/dj/adm%C4%B1n/", "ADMIN", "DENY", "noindex"},
	} {
		res, body := getVia(t, client, gw.URL, tc.target)
		if !strings.HasPrefix(body, tc.view) || res.Header.Get("X-Frame-Options") != tc.frame || res.Header.Get("X-Robots-Tag") != tc.robots {
			t.Errorf("%s: %q with X-Frame-Options %q and X-Robots-Tag %q, want %s with %q and %q", tc.target, body,
				res.Header.Get("X-Frame-Options"), res.Header.Get("X-Robots-Tag"), tc.view, tc.frame, tc.robots)
		}
	}
}

// The same in front of PHP, the front controller routing as Laravel and
// Symfony do (HttpFoundation's path info, a route that takes the rest:
// Route::get('/account/{any}', ...)->where('any', '.*')).
func TestPathReadingsSymfony(t *testing.T) {
	t.Parallel()
	g := startSymfonyRouted(t, `if (preg_match('#^/(login|account)(/|$)#', $path, $m)) { echo strtoupper($m[1]), ' PAGE ', $path; exit; }`, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/login/ 1r/m"}
		c.ResponseHeaderSpecs = config.Lines{"X-Frame-Options: DENY", "/embed/ X-Frame-Options:"}
	})
	if res, body := g.get(t, "/login/"); res.StatusCode != 200 || !strings.HasPrefix(body, "LOGIN PAGE") {
		t.Fatalf("first /login/: %d %q", res.StatusCode, body)
	}
	for _, target := range []string{"/login/%2e%2e/x", "/x/%2e%2e/login/%2e%2e/y"} {
		if res, body := g.get(t, target); res.StatusCode != 429 || strings.HasPrefix(body, "LOGIN PAGE") {
			t.Errorf("%s over the allowance of 1r/m: %d %q, want 429", target, res.StatusCode, body)
		}
	}
	for _, target := range []string{"/account/", "/account/..%2fembed/"} {
		if res, body := g.get(t, target); res.Header.Get("X-Frame-Options") != "DENY" || !strings.HasPrefix(body, "ACCOUNT PAGE") {
			t.Errorf("%s: %q with X-Frame-Options %q, want the account page with DENY", target, body, res.Header.Get("X-Frame-Options"))
		}
	}
	if res, body := g.get(t, "/embed/"); res.Header.Get("X-Frame-Options") != "" || body != "public /embed/" {
		t.Errorf("/embed/: %q with X-Frame-Options %q, want the page without", body, res.Header.Get("X-Frame-Options"))
	}
}

const scriptNameDjangoURLs = `
from django.urls import re_path
from django.http import HttpResponse

def view(name):
    return lambda request: HttpResponse(name.encode() + b" " + request.path.encode())

# The project's URLs without the prefix it is mounted under.
urlpatterns = [re_path(r"^admin/", view("ADMIN")), re_path(r"^", view("PUBLIC"))]
`

// TestPathReadingsDjangoUnderScriptName: a Django mounted under /dj with
// gunicorn's documented --env SCRIPT_NAME=/dj. Debian 12's gunicorn 20.1
// cuts SCRIPT_NAME off the path as sent at the first place it occurs, and
// the gateway sent the path as the client escaped it: /%64j/x/dj/admin/,
// /dj/x/dj/admin/ to the gateway and under no entry, ran Django's admin
// view past SESSIONGATE_RESTRICTED_PATHS=/dj/admin/. The escapes of
// unreserved characters are decoded before the path goes to Django.
func TestPathReadingsDjangoUnderScriptName(t *testing.T) {
	t.Parallel()
	gw := startURLConfDjango(t, scriptNameDjangoURLs, []string{"SCRIPT_NAME=/dj"}, "SESSIONGATE_RESTRICTED_PATHS=/dj/admin/ 10.0.0.0/8")
	client := &http.Client{}
	if res, body := getVia(t, client, gw.URL, "/dj/page/"); res.StatusCode != 200 || body != "PUBLIC /dj/page/" {
		t.Fatalf("/dj/page/: %d %q", res.StatusCode, body)
	}
	for _, target := range []string{"/dj/admin/", "/dj//admin/", "/%64j/admin/"} {
		if res, body := getVia(t, client, gw.URL, target); res.StatusCode != 403 {
			t.Errorf("%s from outside: %d %q, want 403", target, res.StatusCode, body)
		}
	}
	for _, target := range []string{"/%64j/x/dj/admin/", "/dj%2Fx/dj/admin/"} {
		if res, body := getVia(t, client, gw.URL, target); strings.HasPrefix(body, "ADMIN") {
			t.Errorf("%s from outside: %d %q, want anything but the admin view", target, res.StatusCode, body)
		}
	}
}

package integration

import (
	"strings"
	"testing"
)

// cacheDjangoURLs: a profile page that varies on User-Agent (as a page
// marked with vary_on_headers, or Origin under django-cors-headers, does),
// the view that logs a session in, and one that shows the cache token as
// any error report or APM hook shows request.COOKIES.
const cacheDjangoURLs = `
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.vary import vary_on_headers

@vary_on_headers("User-Agent")
def profile(request):
    return HttpResponse("user=%s" % request.session.get("user"), content_type="text/plain")

def login(request):
    request.session["user"] = "ana"
    return HttpResponse("ok")

def leak(request):
    return HttpResponse(request.COOKIES.get("sessiongate", ""), content_type="text/plain")

urlpatterns = [path("dj/profile/", profile), path("dj/login/", login), path("dj/leak/", leak)]
`

// TestDjangoCacheKeyedBySession: Django's per-site cache keys a page that
// varies on Cookie by the session (the middleware's cache token), never
// hands one session's page to another visitor, and cannot be tricked into
// it by a visitor without a session who learnt the token: Django's key
// joins the varied fields' values with nothing between them, and the
// token spelled across Cookie and User-Agent (`Cookie: sessiongat`,
// `User-Agent: e=<token>...`) got the session's cached page.
func TestDjangoCacheKeyedBySession(t *testing.T) {
	t.Parallel()
	settings := strings.Replace(bodyDjangoSettings,
		`MIDDLEWARE = ["sessiongate_django.SessionMiddleware", "django.middleware.common.CommonMiddleware"]`,
		`MIDDLEWARE = ["django.middleware.cache.UpdateCacheMiddleware", "sessiongate_django.SessionMiddleware", "django.middleware.cache.FetchFromCacheMiddleware"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}`, 1)
	if settings == bodyDjangoSettings {
		t.Fatal("the body project's MIDDLEWARE line changed")
	}
	gw := startBodyProject(t, settings, cacheDjangoURLs, nil)
	const ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
	ana := jar{}
	call(t, gw, ana, "GET", "/dj/login/", "")
	if res, body := call(t, gw, ana, "GET", "/dj/profile/", "", "User-Agent", ua); res.StatusCode != 200 || body != "user=ana" {
		t.Fatalf("the session's page: %d %q", res.StatusCode, body)
	}
	_, token := call(t, gw, ana, "GET", "/dj/leak/", "")
	if len(token) != 32 {
		t.Fatalf("cache token %q", token)
	}
	for _, c := range []struct {
		name string
		hdr  []string
	}{
		{"no session", []string{"User-Agent", ua}},
		{"the token as its own cookie", []string{"Cookie", "sessiongate=" + token, "User-Agent", ua}},
		{"the token across Cookie and User-Agent", []string{"Cookie", "sessiongat", "User-Agent", "e=" + token + ua}},
	} {
		if res, body := call(t, gw, jar{}, "GET", "/dj/profile/", "", c.hdr...); body != "user=None" {
			t.Errorf("%s: %d %q, want a page of its own, not the session's cached one", c.name, res.StatusCode, body)
		}
	}
}

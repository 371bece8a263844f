package integration

// Django set-ups that silently lose the shared session, against a real
// gunicorn and Django: MIDDLEWARE that still lists Django's own
// SessionMiddleware, and a SESSIONGATE_SESSION_KEYS that differs from the
// gateway's. Users looked logged out on Django and nothing said why; the
// gateway now counts and logs them (X-Sessiongate-Django, the middleware's
// mark), and stays quiet on what answers before the middleware.

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

const markDjangoSettings = `
import os, sys
sys.path.insert(0, os.environ["SG_PKG"])
SECRET_KEY = "mark-test-secret-key-0123456789-0123456789-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
_SESSION = {
    "ours": "sessiongate_django.SessionMiddleware",
    "django": "django.contrib.sessions.middleware.SessionMiddleware",
}[os.environ["SG_SESSION_MIDDLEWARE"]]
MIDDLEWARE = [
    "markproj.early.Preflight",
    "django.middleware.security.SecurityMiddleware",
    "markproj.early.StaticFiles",
    "markproj.early.Boom",
    _SESSION,
    "django.middleware.common.CommonMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
]
ROOT_URLCONF = "markproj.urls"
DATABASES = {}
USE_TZ = True
# Only /dj/secure/ is redirected to https: SecurityMiddleware answers it
# before the session middleware runs.
SECURE_SSL_REDIRECT = True
SECURE_REDIRECT_EXEMPT = [r"^(?!dj/secure/)"]
`

// markDjangoEarly plays middlewares listed before the session middleware
// that answer by themselves: django-cors-headers' preflight, whitenoise's
// static files (200, and 304 on a matching If-None-Match), and one that
// fails.
const markDjangoEarly = `
from django.http import HttpResponse

class Preflight:
    def __init__(self, get_response):
        self.get_response = get_response
    def __call__(self, request):
        if request.method == "OPTIONS":
            r = HttpResponse()
            r["Access-Control-Allow-Origin"] = "*"
            return r
        return self.get_response(request)

class StaticFiles:
    def __init__(self, get_response):
        self.get_response = get_response
    def __call__(self, request):
        if request.path.startswith("/dj/static/"):
            if request.META.get("HTTP_IF_NONE_MATCH") == '"v1"':
                return HttpResponse(status=304)
            r = HttpResponse("body{}", content_type="text/css")
            r["ETag"] = '"v1"'
            r["Last-Modified"] = "Sat, 05 Dec 2026 06:00:00 GMT"  # whitenoise sends both
            return r
        return self.get_response(request)

class Boom:
    def __init__(self, get_response):
        self.get_response = get_response
    def __call__(self, request):
        if request.path == "/dj/early-boom/":
            raise RuntimeError("a middleware before the session's failed")
        return self.get_response(request)
`

const markDjangoURLs = `
from django.urls import path
from django.http import HttpResponse, StreamingHttpResponse

def page(request):
    return HttpResponse("user=%s" % request.session.get("user"))

def login(request):
    request.session["user"] = "ana"
    return HttpResponse("ok")

def stream(request):
    return StreamingHttpResponse(iter([b"a" * 100, b"b" * 100]))

def etag(request):
    r = HttpResponse("tagged")
    r["ETag"] = '"e1"'
    return r

def boom(request):
    raise RuntimeError("view failed")

urlpatterns = [path("dj/page/", page), path("dj/login/", login), path("dj/stream/", stream),
               path("dj/etag/", etag), path("dj/boom/", boom), path("dj/secure/", page)]
`

// startMarkDjango starts gunicorn on the mark test project with the session
// middleware named ("ours" or "django") and the keys given, and one gateway
// (keys sessionTestKey) sending /dj/ to it.
func startMarkDjango(t *testing.T, middleware, keys string) *sessionGW {
	t.Helper()
	return startMarkDjangoOn(t, debianDjango, middleware, keys)
}

// startMarkDjangoOn is startMarkDjango on rel's Django and gunicorn.
func startMarkDjangoOn(t *testing.T, rel djangoRelease, middleware, keys string) *sessionGW {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "gunicorn", "django")
	proj := t.TempDir()
	writeTree(t, proj, map[string]string{
		"markproj/__init__.py": "",
		"markproj/settings.py": markDjangoSettings,
		"markproj/early.py":    markDjangoEarly,
		"markproj/urls.py":     markDjangoURLs,
		"markproj/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'markproj.settings')\n" +
			"from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
	})
	pkg, err := filepath.Abs("../wsgi/django")
	if err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, rel.gunicornOptions("markproj", harness.GunicornOptions{Dir: proj,
		Env: []string{"SG_PKG=" + pkg, "SG_SESSION_MIDDLEWARE=" + middleware, "SESSIONGATE_SESSION_KEYS=" + keys}, Workers: 1, Threads: 2}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})
	return startDjangoGateway(t, g.URL())
}

const (
	djangoMiddlewareMissing = "without sessiongate_django's middleware"
	djangoSessionRefused    = "Django refused the gateway's session"
)

// markRequest sends one request through gw and checks that the mark does
// not reach the client.
func markRequest(t *testing.T, gw *sessionGW, method, target, cookie string, hdr ...string) (int, string) {
	t.Helper()
	res, err := sessionClient.Do(gw.request(method, target, cookie, hdr...))
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for name := range res.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-sessiongate") {
			t.Errorf("%s %s: the client got %s", method, target, name)
		}
	}
	return res.StatusCode, string(b)
}

func TestDjangoMiddlewareMissingIsLogged(t *testing.T) {
	t.Parallel()
	t.Run("Django's own SessionMiddleware left in MIDDLEWARE", func(t *testing.T) {
		t.Parallel()
		gw := startMarkDjango(t, "django", sessionTestKey)
		for i := 0; i < 3; i++ {
			if status, _ := markRequest(t, gw, "GET", "/dj/page/", ""); status != 200 {
				t.Fatalf("page: %d", status)
			}
		}
		logs := gw.Logs.String()
		if n := strings.Count(logs, djangoMiddlewareMissing); n != 1 {
			t.Fatalf("%d lines about the missing middleware after 3 pages, want 1 (once a minute):\n%s", n, logs)
		}
		for _, want := range []string{"django.contrib.sessions.middleware.SessionMiddleware", `\"sessiongate_django.SessionMiddleware\"`, `"path":"/dj/page/"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("the line does not say %s:\n%s", want, logs)
			}
		}
		m := metricstest.Scrape(t, gw.Admin+"/metrics")
		if got := m[`sessiongate_session_events_total{event="django_middleware_missing"}`]; got != 3 {
			t.Errorf("django_middleware_missing events %v, want 3", got)
		}
	})
	t.Run("SESSIONGATE_SESSION_KEYS differs", func(t *testing.T) {
		t.Parallel()
		gw := startMarkDjango(t, "ours", "another-key-than-the-gateways-0123456789abcdef")
		_, _, cookie := gw.get(t, "/dj/login/", "")
		status, body := markRequest(t, gw, "GET", "/dj/page/", cookie)
		if status != 200 || body != "user=None" {
			t.Fatalf("page: %d %q, want the anonymous page the user sees", status, body)
		}
		logs := gw.Logs.String()
		if n := strings.Count(logs, djangoSessionRefused); n != 1 || !strings.Contains(logs, "SESSIONGATE_SESSION_KEYS") || !strings.Contains(logs, "keys differ") ||
			!strings.Contains(logs, `"mark":"refused-signature"`) {
			t.Fatalf("%d lines about the refused session, want 1 naming SESSIONGATE_SESSION_KEYS:\n%s", n, logs)
		}
		if strings.Contains(logs, djangoMiddlewareMissing) {
			t.Errorf("a refusal was taken for a missing middleware:\n%s", logs)
		}
		m := metricstest.Scrape(t, gw.Admin+"/metrics")
		if got := m[`sessiongate_session_events_total{event="django_signature_rejected"}`]; got != 2 {
			t.Errorf("django_signature_rejected events %v, want 2", got)
		}
	})
}

// TestDjangoMarkNoFalseAlarm: a site set up right says nothing, also for
// what middlewares listed before the session's, gunicorn or Django's error
// handling answer, and for HEAD, 304, 404, 500 and streamed pages.
//
// On gunicorn 20.1 (Django 3.2) and 23 (Django 5.2), whose own refusal of
// an oversized header field is a 400 and a 431: the 431 was taken for a
// page Django answered without the middleware.
func TestDjangoMarkNoFalseAlarm(t *testing.T) {
	t.Parallel()
	forEachDjango(t, djangoReleases(t, "3.2", "5.2"), testDjangoMarkNoFalseAlarmOn)
}

func testDjangoMarkNoFalseAlarmOn(t *testing.T, rel djangoRelease) {
	gw := startMarkDjangoOn(t, rel, "ours", sessionTestKey)
	// A header line over gunicorn's limit (8190 bytes), under the gateway's.
	long := []string{"X-Filler", strings.Repeat("x", 9000)}
	type step struct {
		method, target string
		status         int
		hdr            []string
	}
	check := func(steps []step, cookie string) {
		t.Helper()
		for _, c := range steps {
			if status, body := markRequest(t, gw, c.method, c.target, cookie, c.hdr...); status != c.status {
				t.Errorf("%s %s: %d, want %d\n%.300s", c.method, c.target, status, c.status, body)
			}
		}
	}
	// Answered before the middleware ran, while no response has been
	// marked yet.
	check([]step{
		{"GET", "/dj/secure/", 301, nil},                    // SecurityMiddleware's redirect to https
		{"OPTIONS", "/dj/page/", 200, nil},                  // a CORS preflight answered at the top
		{"GET", "/dj/early-boom/", 500, nil},                // a middleware before the session's failed
		{"GET", "/dj/static/site.css", 200, nil},            // whitenoise's file as the first answer after a start
		{"GET", "/dj/page/", rel.headerLimitStatus(), long}, // gunicorn's own refusal (its HTML names the limit)
	}, "")
	_, _, cookie := gw.get(t, "/dj/login/", "")
	if cookie == "" || cookie == "-" {
		t.Fatal("no session from the login")
	}
	check([]step{
		{"GET", "/dj/page/", 200, nil},
		{"HEAD", "/dj/page/", 200, nil},
		{"GET", "/dj/nope/", 404, nil},
		{"GET", "/dj/page", 301, nil}, // CommonMiddleware's APPEND_SLASH
		{"GET", "/dj/page/", 400, []string{"Host", "evil.example"}},
		{"GET", "/dj/stream/", 200, nil},
		{"GET", "/dj/etag/", 200, nil},
		{"GET", "/dj/etag/", 304, []string{"If-None-Match", `"e1"`}},
		{"GET", "/dj/boom/", 500, nil},
		// whitenoise's files, after a page: a middleware before ours.
		{"GET", "/dj/static/site.css", 200, nil},
		{"GET", "/dj/static/site.css", 304, []string{"If-None-Match", `"v1"`}},
		{"HEAD", "/dj/static/site.css", 200, nil},
	}, cookie)
	if status, body := markRequest(t, gw, "GET", "/dj/page/", cookie); status != 200 || body != "user=ana" {
		t.Errorf("the session is not shared: %d %q", status, body)
	}
	logs := gw.Logs.String()
	if strings.Contains(logs, djangoMiddlewareMissing) || strings.Contains(logs, djangoSessionRefused) {
		t.Errorf("a site set up right is reported:\n%s", logs)
	}
	m := metricstest.Scrape(t, gw.Admin+"/metrics")
	for _, e := range []string{"django_middleware_missing", "django_signature_rejected"} {
		if got := m[`sessiongate_session_events_total{event="`+e+`"}`]; got != 0 {
			t.Errorf("%s events %v, want 0", e, got)
		}
	}
}

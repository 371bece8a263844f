package integration

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

const noBodyDjangoURLs = `
from django.urls import path
from django.http import HttpResponse, JsonResponse

def nocontent(request):
    # A common slip: a 204 with a body. CommonMiddleware gives it a
    # Content-Length, and gunicorn sends the body after the headers.
    return JsonResponse({}, status=204)

def resetcontent(request):
    # The same slip with a 205 ("clear the form").
    return JsonResponse({"saved": True}, status=205)

def page(request):
    return HttpResponse(b"ok")

urlpatterns = [path("dj/nocontent/", nocontent), path("dj/resetcontent/", resetcontent), path("dj/page/", page)]
`

// TestDjango204WithBodyLeavesTheConnectionClean: gunicorn (gthread, kept
// alive) writes the body Django gave a 204 after its headers; the next
// request on that connection must get its own answer, not a 502 from
// reading those bytes as the start of it.
func TestDjango204WithBodyLeavesTheConnectionClean(t *testing.T) {
	t.Parallel()
	gw, g := startNoBodyDjango(t)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(path string) (int, string) {
		t.Helper()
		res, err := client.Get(gw.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for i := 0; i < 30; i++ {
		if code, _ := get("/dj/nocontent/"); code != 204 {
			t.Fatalf("round %d: 204 view answered %d", i, code)
		}
		if code, body := get("/dj/page/"); code != 200 || body != "ok" {
			t.Fatalf("round %d: the request after a 204 with a body got %d %q\ngunicorn log:\n%s", i, code, body, g.Log())
		}
	}
}

// startNoBodyDjango starts gunicorn (one worker, kept-alive connections)
// serving noBodyDjangoURLs and a gateway in front of it.
func startNoBodyDjango(t *testing.T) (*sessionGW, *harness.Gunicorn) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "gunicorn", "django")
	proj := djangoProject(t, "nobodyproj", strings.ReplaceAll(bodyDjangoSettings, "bodyproj", "nobodyproj"), noBodyDjangoURLs)
	pkg, err := filepath.Abs("../wsgi/django")
	if err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{
		Dir: proj, App: "nobodyproj.wsgi:application", Workers: 1, Threads: 2,
		Env: []string{"SG_PKG=" + pkg, "SESSIONGATE_SESSION_KEYS=" + sessionTestKey},
	})
	gw := startDjangoGateway(t, "http://"+g.Addr)
	return gw, g
}

// TestDjango205HasNoBody: a 205 has no content (RFC 9110 section 15.3.6),
// but the JSON body Django gave one reached the client, with Django's
// Content-Length. The client gets the status alone now, with
// Content-Length: 0, and the next request on its connection its own
// answer.
func TestDjango205HasNoBody(t *testing.T) {
	t.Parallel()
	gw, g := startNoBodyDjango(t)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		res, err := client.Get(gw.URL + "/dj/resetcontent/")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 205 || len(b) != 0 || res.Header.Get("Content-Length") != "0" {
			t.Fatalf("round %d: %d %q (%v), Content-Length %q\ngunicorn log:\n%s", i, res.StatusCode, b, err, res.Header.Get("Content-Length"), g.Log())
		}
		if res, err = client.Get(gw.URL + "/dj/page/"); err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("round %d: the request after the 205 got %d %q", i, res.StatusCode, b)
		}
	}
}

const earlyAnswerDjangoURLs = `
from django.urls import path
from django.http import HttpResponse

def refuse(request):
    # Answers a large page without reading the upload it was sent (an
    # error page, a permission check before the form is read).
    return HttpResponse(b"x" * (8 << 20), status=403)

urlpatterns = [path("dj/refuse/", refuse)]
`

// TestDjangoLargeAnswerToAnUnreadUpload: Django answers a streamed upload
// with a page larger than the socket buffers without reading the upload.
// gunicorn blocks writing the page, the gateway blocked writing the upload:
// the client must still get the page, not wait for ever.
func TestDjangoLargeAnswerToAnUnreadUpload(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "gunicorn", "django")
	proj := djangoProject(t, "earlyproj", strings.ReplaceAll(bodyDjangoSettings, "bodyproj", "earlyproj"), earlyAnswerDjangoURLs)
	pkg, err := filepath.Abs("../wsgi/django")
	if err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{
		Dir: proj, App: "earlyproj.wsgi:application", Workers: 1, Threads: 2,
		Env: []string{"SG_PKG=" + pkg, "SESSIONGATE_SESSION_KEYS=" + sessionTestKey},
	})
	gw := startDjangoGateway(t, "http://"+g.Addr, "SESSIONGATE_DJANGO_TIMEOUT=2s", "SESSIONGATE_MAX_BODY=256m")
	client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	const size = 64 << 20
	req, _ := http.NewRequest("POST", gw.URL+"/dj/refuse/", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("the upload Django did not read: %v (SESSIONGATE_DJANGO_TIMEOUT 2s)", err)
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if res.StatusCode != 403 || n != 8<<20 || err != nil {
		t.Fatalf("got %d with %d bytes (%v), want Django's 403 page of %d bytes", res.StatusCode, n, err, 8<<20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

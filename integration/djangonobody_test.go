package integration

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

const noBodyDjangoURLs = `
from django.urls import path
from django.http import HttpResponse, JsonResponse

def nocontent(request):
    # A common slip: a 204 with a body. CommonMiddleware gives it a
    # Content-Length, and gunicorn sends the body after the headers.
    return JsonResponse({}, status=204)

def page(request):
    return HttpResponse(b"ok")

urlpatterns = [path("dj/nocontent/", nocontent), path("dj/page/", page)]
`

// TestDjango204WithBodyLeavesTheConnectionClean: gunicorn (gthread, kept
// alive) writes the body Django gave a 204 after its headers; the next
// request on that connection must get its own answer, not a 502 from
// reading those bytes as the start of it.
func TestDjango204WithBodyLeavesTheConnectionClean(t *testing.T) {
	t.Parallel()
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

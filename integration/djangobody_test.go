package integration

// Request and response bodies on the Django path, against a real gunicorn
// serving a minimal Django project written by the test (the example project
// has no streaming or echo views).

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

const bodyDjangoSettings = `
import os, sys
sys.path.insert(0, os.environ["SG_PKG"])
SECRET_KEY = "body-test-secret-key-0123456789-0123456789-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
MIDDLEWARE = ["sessiongate_django.SessionMiddleware", "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "bodyproj.urls"
DATABASES = {}
USE_TZ = True
`

const bodyDjangoURLs = `
import hashlib
from django.urls import path
from django.http import HttpResponse, JsonResponse

def page(request):
    return HttpResponse(b"x" * int(request.GET.get("n", "100")))

def echo(request):
    b = request.body
    return JsonResponse({"len": len(b), "md5": hashlib.md5(b).hexdigest(),
                         "cl": request.META.get("CONTENT_LENGTH")})

def setkey(request):
    request.session["k"] = request.GET.get("v", "1")
    return HttpResponse(b"ok")

def hsts(request):
    r = HttpResponse(b"x" * 300)
    r["Strict-Transport-Security"] = "max-age=5"
    return r

def stream(request):
    from django.http import StreamingHttpResponse
    # 10 pieces of 30 rows: each is more than the 256 bytes under which a
    # flushed piece makes the response a plain stream.
    rows = [b"<li>row %d</li>\n" % i for i in range(300)]
    return StreamingHttpResponse((b"".join(rows[i:i + 30]) for i in range(0, 300, 30)), content_type="text/html")

urlpatterns = [path("dj/page/", page), path("dj/echo/", echo), path("dj/set/", setkey),
               path("dj/hsts/", hsts), path("dj/stream/", stream)]
`

// startBodyDjango starts gunicorn (one worker, so that kept-alive
// connections are reused) and one gateway sending /dj/ to it.
func startBodyDjango(t *testing.T, extra ...string) *sessionGW {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "gunicorn", "django")
	proj := djangoProject(t, "bodyproj", bodyDjangoSettings, bodyDjangoURLs)
	pkg, err := filepath.Abs("../wsgi/django")
	if err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: proj, App: "bodyproj.wsgi:application",
		Env: []string{"SG_PKG=" + pkg, "SESSIONGATE_SESSION_KEYS=" + sessionTestKey}, Workers: 1, Threads: 2})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})
	return startDjangoGateway(t, g.URL(), extra...)
}

// TestDjangoHeadKeepsUpstreamConnectionClean: gunicorn sends the body of a
// response to HEAD (it leaves that to the app, and Django writes it). The
// client must get none, and the bytes must not be read as the start of the
// next response on that kept-alive connection: each GET after a HEAD used
// to get a 502 ("malformed HTTP version").
func TestDjangoHeadKeepsUpstreamConnectionClean(t *testing.T) {
	t.Parallel()
	gw := startBodyDjango(t)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("HEAD", gw.URL+"/dj/page/?n=100", nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.ContentLength != 100 || len(b) != 0 {
			t.Fatalf("HEAD %d: %d, Content-Length %d, body %q", i, res.StatusCode, res.ContentLength, b)
		}
		res, err = client.Get(gw.URL + "/dj/page/?n=7")
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "xxxxxxx" {
			t.Fatalf("GET after HEAD %d: %d %q", i, res.StatusCode, b)
		}
	}
}

// TestDjangoChunkedRequestBody: Django reads a request body only up to
// CONTENT_LENGTH, so a chunked upload reached it empty and the view
// answered 200 as if nothing had been sent. Like nginx (proxy_request_buffering),
// the gateway buffers a body of unknown length and sends it with its length;
// over SESSIONGATE_MAX_BODY it is 413.
func TestDjangoChunkedRequestBody(t *testing.T) {
	t.Parallel()
	gw := startBodyDjango(t, "SESSIONGATE_MAX_BODY=300k")
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, size := range []int{5, 70 << 10, 300 << 10} {
		body := strings.Repeat("q", size)
		req, _ := http.NewRequest("POST", gw.URL+"/dj/echo/", io.NopCloser(strings.NewReader(body))) // unknown length: chunked
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(got), `"len": `+strconv.Itoa(size)) {
			t.Errorf("chunked body of %d bytes: %d %s", size, res.StatusCode, got)
		}
	}
	// With Expect: 100-continue the client gets 100 Continue, then the answer.
	resp, _ := raw(t, addr, "POST /dj/echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ") || !strings.Contains(resp, `"len": 5`) {
		t.Errorf("Expect: 100-continue, chunked: %q", resp)
	}
	// Over the limit.
	big := strings.Repeat("q", 300<<10+1)
	req, _ := http.NewRequest("POST", gw.URL+"/dj/echo/", io.NopCloser(strings.NewReader(big)))
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked body over the limit: %d", res.StatusCode)
		}
	}
	// Logged and counted as the gateway's refusal, as a Content-Length
	// over the limit is, not as Django's answer.
	refused := `"path":"/dj/echo/","status":413,`
	if !poll(5*time.Second, func() bool { return strings.Contains(gw.Logs.String(), refused) }) {
		t.Fatalf("no 413 in the access log:\n%s", gw.Logs.String())
	}
	for _, l := range strings.Split(gw.Logs.String(), "\n") {
		if strings.Contains(l, refused) && !strings.Contains(l, `"upstream":"gateway"`) {
			t.Errorf("the chunked body over the limit, logged: %s", l)
		}
	}
}

// TestDjangoRequestBodyEndingShortIs400: a client whose connection ends
// inside its body's framing (short of its Content-Length, inside a chunk)
// broke the request: the access log says 400 with the body read as the
// error, as README's access_log row says and as on the PHP path. net/http
// cancels the request's context as soon as the connection's read fails, so
// it passed for a client that left (499), and a client that only
// half-closed, still reading, got an empty 200 for its failed upload.
func TestDjangoRequestBodyEndingShortIs400(t *testing.T) {
	t.Parallel()
	gw := startBodyDjango(t, "SESSIONGATE_MAX_BODY=8m")
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, tc := range []struct {
		name, req string
		halfClose bool // shutdown(SHUT_WR): the client still reads
	}{
		{"chunk", "Transfer-Encoding: chunked\r\n\r\n1000\r\n" + strings.Repeat("q", 100), false},
		{"small", "Content-Length: 1000\r\n\r\n" + strings.Repeat("q", 100), false},
		{"large", "Content-Length: 900000\r\n\r\n" + strings.Repeat("q", 300<<10), false},
		{"halfclosed", "Content-Length: 1000\r\n\r\n" + strings.Repeat("q", 100), true},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// The access log has no query: the name goes in the path.
		io.WriteString(c, "POST /dj/echo/"+tc.name+" HTTP/1.1\r\nHost: 127.0.0.1\r\n"+tc.req)
		if tc.halfClose {
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if answer, _ := io.ReadAll(c); !strings.HasPrefix(string(answer), "HTTP/1.1 400 ") {
				t.Errorf("%s: the client still reading got %.40q, want 400", tc.name, answer)
			}
		}
		c.Close()
		if line, ok := logLine(gw.Logs, `"path":"/dj/echo/`+tc.name+`"`); !ok {
			t.Errorf("%s: no access log line for the body cut short:\n%s", tc.name, gw.Logs.String())
		} else if !strings.Contains(line, `"status":400`) || !strings.Contains(line, "read request body") {
			t.Errorf("%s: body cut short logged as %s; want 400 with the body read as the error", tc.name, line)
		}
	}
}

// TestDjangoSlowUploadHoldsNothing: while a client is still sending a body
// to Django, the other pages of its session are served (the session lock is
// taken only once the body is in), as nginx's request buffering gives:
// the upload reaches gunicorn whole, so it holds no gunicorn thread either.
// A body up to 64 KiB is always read first; a larger one of known length
// with SESSIONGATE_REQUEST_BUFFERING=on (off, it streams to Django).
func TestDjangoSlowUploadHoldsNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		buffering string
		size      int
	}{{"off", 1000}, {"on", 200 << 10}} {
		t.Run(fmt.Sprintf("%d bytes, buffering %s", tc.size, tc.buffering), func(t *testing.T) {
			djangoSlowUploadHoldsNothing(t, tc.buffering, tc.size)
		})
	}
}

func djangoSlowUploadHoldsNothing(t *testing.T, buffering string, size int) {
	gw := startBodyDjango(t, "SESSIONGATE_SESSION_LOCK_TIMEOUT=3s", "SESSIONGATE_REQUEST_BUFFERING="+buffering)
	_, _, cookie := gw.get(t, "/dj/set/", "")
	if cookie == "" || cookie == "-" {
		t.Fatal("no session")
	}
	finish := startSlowUpload(t, gw.URL, "/dj/echo/", "127.0.0.1", cookie, size)
	res, body, _ := gw.get(t, "/dj/page/?n=3", cookie)
	if res.StatusCode != 200 || body != "xxx" {
		t.Errorf("%d-byte upload under way: the same session's page got %d %q", size, res.StatusCode, body)
	}
	if status, b := finish(); status != 200 || !strings.Contains(b, `"len": `+strconv.Itoa(size)) {
		t.Errorf("%d-byte upload: %d %q", size, status, b)
	}
}

// djangoProject writes a Django project package named module (settings and
// urls given, a wsgi.py that loads them) into a new directory and returns it.
func djangoProject(t *testing.T, module, settings, urls string) string {
	t.Helper()
	proj := t.TempDir()
	writeTree(t, proj, map[string]string{
		module + "/__init__.py": "",
		module + "/settings.py": settings,
		module + "/urls.py":     urls,
		module + "/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', '" + module + ".settings')\n" +
			"from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
	})
	return proj
}

// TestDjangoSlowDownloadsHoldNoThread: two clients download a 32 MiB page
// slowly (ten bytes, then nothing) from a gunicorn with two threads. The
// gateway reads Django's output ahead of them (SESSIONGATE_RESPONSE_BUFFERING,
// nginx's proxy_buffering), so both threads are free: a third page answers
// at once, and the slow clients still get every byte.
func TestDjangoSlowDownloadsHoldNoThread(t *testing.T) {
	t.Parallel()
	gw := startBodyDjango(t)
	const size = 32 << 20
	var slow []*http.Response
	for i := 0; i < 2; i++ {
		client := &http.Client{Transport: &http.Transport{}}
		res, err := client.Get(gw.URL + "/dj/page/?n=" + strconv.Itoa(size))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		first := make([]byte, 10)
		if _, err := io.ReadFull(res.Body, first); err != nil || res.StatusCode != 200 {
			t.Fatalf("download %d: %d %v", i, res.StatusCode, err)
		}
		slow = append(slow, res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", gw.URL+"/dj/page/?n=3", nil)
	start := time.Now()
	res, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatalf("a page while two downloads are slow: %v after %v", err, time.Since(start))
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "xxx" {
		t.Fatalf("a page while two downloads are slow: %d %q", res.StatusCode, b)
	}
	t.Logf("page answered in %v while two downloads waited", time.Since(start).Round(time.Millisecond))
	for i, res := range slow {
		n, err := io.Copy(io.Discard, res.Body)
		if err != nil || n != size-10 {
			t.Errorf("download %d: %d more bytes, %v", i, n, err)
		}
	}
}

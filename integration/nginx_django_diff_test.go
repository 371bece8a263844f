package integration

// The Django path side by side with nginx's proxy_pass: the same raw
// requests go to a real nginx (Django's and gunicorn's documented proxy
// settings) and to the gateway, both in front of one gunicorn, and what
// Django sees (a view dumps request.META and what Django derives from it)
// and what the client gets must be the same, except for the differences
// listed here on purpose, each asserted with both values so that it
// cannot change unnoticed.

import (
	"bufio"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/wsgi"
)

const diffDjangoSettings = `
import os, sys
sys.path.insert(0, os.environ["SG_PKG"])
SECRET_KEY = "diff-test-secret-key-0123456789-0123456789-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
MIDDLEWARE = ["sessiongate_django.SessionMiddleware", "django.middleware.http.ConditionalGetMiddleware",
              "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "diffproj.urls"
DATABASES = {}
USE_TZ = True
# What a site behind a proxy sets (Django's deployment checklist).
USE_X_FORWARDED_HOST = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
`

const diffDjangoURLs = `
import hashlib, io, json, time
from django.urls import path, re_path
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse, FileResponse
from django.utils.cache import patch_vary_headers, patch_cache_control
from django.views.decorators.http import etag as etag_decorator

CGI = ("REQUEST_METHOD", "PATH_INFO", "SCRIPT_NAME", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
       "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "RAW_URI", "REMOTE_ADDR", "wsgi.url_scheme")

def call(f):
    try:
        return f()
    except Exception as e:
        return "error: %s: %s" % (type(e).__name__, e)

def dump(request):
    out = {}
    for k, v in request.META.items():
        if k.startswith("HTTP_") or k in CGI:
            out["META." + k] = v
    body = request.body
    out.update({
        "get_host": call(request.get_host),
        "is_secure": request.is_secure(),
        "build_absolute_uri": call(request.build_absolute_uri),
        "path": request.path,
        "path_info": request.path_info,
        "get_full_path": request.get_full_path(),
        "GET": json.dumps({k: request.GET.getlist(k) for k in sorted(request.GET)}),
        "COOKIES": json.dumps(request.COOKIES, sort_keys=True),
        "body_len": len(body),
        "body_md5": hashlib.md5(body).hexdigest(),
    })
    return HttpResponse(json.dumps(out), content_type="application/json")

def cookies(request):
    r = HttpResponse(b"cookies")
    r.set_cookie("a", "1")
    r.set_cookie("b", "2", path="/dj/", httponly=True)
    r.set_cookie("c", "3", max_age=60, samesite="Lax", secure=True)
    return r

def caching(request):
    r = HttpResponse(b"cached")
    patch_vary_headers(r, ["Accept-Language", "Cookie"])
    patch_cache_control(r, public=True, max_age=60)
    return r

def download(request):
    return FileResponse(io.BytesIO(b"%PDF-1.4 fake\n" * 100), as_attachment=True, filename="r\u00e9sum\u00e9 \u00fcber.pdf")

def afile(request):
    return FileResponse(open(__file__, "rb"))

def stream(request):
    first = b"first\n" * int(request.GET.get("n", "1"))
    def parts():
        yield first
        time.sleep(1.0)
        yield b"second\n"
    return StreamingHttpResponse(parts(), content_type=request.GET.get("type", "text/plain"))

def etag(request):
    return HttpResponse(b"etag body " * 10)

def relredirect(request):
    return HttpResponseRedirect("../dump/?from=redirect")

def bighdr(request):
    r = HttpResponse(b"big")
    r["X-Big"] = "x" * 20000
    return r

def setsession(request):
    request.session["seen"] = request.session.get("seen", 0) + 1
    r = HttpResponse(b"session")
    r.set_cookie("a", "1")
    r.set_cookie("b", "2", path="/dj/", httponly=True)
    return r

def odd(request):
    r = HttpResponse(b"odd")
    r["X-Latin"] = "caf\u00e9"
    r["X-Empty"] = ""
    r["Content-Language"] = "fr"
    r["Link"] = "</s.css>; rel=preload; as=style"
    r["X-Frame-Options"] = "DENY"
    r["WWW-Authenticate"] = 'Basic realm="x"'
    r.status_code = int(request.GET.get("status", "200"))
    return r

@etag_decorator(lambda request: "rev-7")
def resource(request):
    # An API resource with optimistic locking: PUT must carry the tag the
    # client read (If-Match), else 412.
    if request.method == "PUT":
        return HttpResponse(b"updated")
    return HttpResponse(json.dumps({"rows": ["row %d" % i for i in range(40)]}), content_type="application/json")

def sleep(request):
    time.sleep(float(request.GET.get("s", "0")))
    return HttpResponse(b"slept")

urlpatterns = [path("dj/cookies/", cookies), path("dj/caching/", caching), path("dj/download/", download),
    path("dj/file/", afile), path("dj/stream/", stream), path("dj/etag/", etag),
    path("dj/redirect/", relredirect), path("dj/bighdr/", bighdr), path("dj/sleep/", sleep),
    path("dj/setsession/", setsession), path("dj/odd/", odd), path("dj/resource/", resource),
    # Everything else, however odd its path, is dumped.
    re_path(r"", dump)]
`

// djangoDiffStack is one gunicorn with nginx and the gateway in front of it,
// configured alike.
type djangoDiffStack struct {
	gunicorn *harness.Gunicorn
	nginx    *harness.NginxDjango
	gw       *sessionGW
	gwAddr   string
}

// startDiffStacks starts gunicorn and two pairs of fronts on it: one where
// the client is the end user (no trusted proxy), one where it is a
// trusted proxy (nginx's set_real_ip_from, SESSIONGATE_TRUSTED_PROXIES).
func startDiffStacks(t *testing.T) (direct, proxied *djangoDiffStack) {
	t.Helper()
	harness.Require(t, "gunicorn", "django", "nginx")
	proj := djangoProject(t, "diffproj", diffDjangoSettings, diffDjangoURLs)
	pkg, err := filepath.Abs("../wsgi/django")
	if err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: proj, App: "diffproj.wsgi:application",
		Env: []string{"SG_PKG=" + pkg, "SESSIONGATE_SESSION_KEYS=" + sessionTestKey}, Workers: 1, Threads: 4})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})
	mk := func(trusted string) *djangoDiffStack {
		s := &djangoDiffStack{gunicorn: g}
		s.nginx = harness.StartNginxDjango(t, harness.NginxDjangoOptions{Upstream: g.Addr, Location: "/dj/",
			RealIPFrom: trusted, ReadTimeout: 2 * time.Second})
		root := t.TempDir()
		env := []string{
			// Never reached: every path here is Django's.
			"SESSIONGATE_PHP_FPM=127.0.0.1:9",
			"SESSIONGATE_DOCUMENT_ROOT=" + root,
			"SESSIONGATE_INDEX=off",
			"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
			"SESSIONGATE_DJANGO_URL=" + g.URL(),
			"SESSIONGATE_DJANGO_PATHS=/dj/",
			"SESSIONGATE_DJANGO_TIMEOUT=2s",
		}
		if trusted != "" {
			env = append(env, "SESSIONGATE_TRUSTED_PROXIES="+trusted)
		}
		cfg, err := config.Load(env)
		if err != nil {
			t.Fatal(err)
		}
		s.gw = startGateways(t, cfg, 1)[0]
		s.gwAddr = strings.TrimPrefix(s.gw.URL, "http://")
		return s
	}
	return mk(""), mk("127.0.0.0/8")
}

// rawResponse is one answer to a raw request.
type rawResponse struct {
	res     *http.Response
	body    []byte
	interim []string // status lines of 1xx answers before it
	err     error
}

// status is the response's status code, 0 for none.
func (r rawResponse) status() int {
	if r.res == nil {
		return 0
	}
	return r.res.StatusCode
}

// rawDo sends req (a whole HTTP/1.1 request as bytes) on a new connection
// to addr and reads one response. With expect, the request's body (after
// the blank line) is held back until a 100 Continue arrives (or 3 s pass).
func rawDo(addr, req string, expect bool) rawResponse {
	var out rawResponse
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		out.err = err
		return out
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	head, body := req, ""
	if expect {
		i := strings.Index(req, "\r\n\r\n")
		head, body = req[:i+4], req[i+4:]
	}
	if _, err := io.WriteString(c, head); err != nil {
		out.err = err
		return out
	}
	br := bufio.NewReader(c)
	if expect {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		line, err := br.ReadString('\n')
		if err == nil && strings.Contains(line, " 100 ") {
			out.interim = append(out.interim, strings.TrimSpace(line))
			br.ReadString('\n') // the blank line
		} else if err == nil {
			out.err = fmt.Errorf("first line %q, want 100 Continue", line)
			return out
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, body); err != nil {
			out.err = err
			return out
		}
	}
	method, _, _ := strings.Cut(req, " ")
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		out.err = err
		return out
	}
	out.res = res
	out.body, out.err = io.ReadAll(res.Body)
	res.Body.Close()
	return out
}

// djangoView is what the dump view reported, flattened to strings.
type djangoView map[string]string

func parseView(t *testing.T, who string, r rawResponse) djangoView {
	t.Helper()
	if r.err != nil || r.res.StatusCode != 200 {
		status := 0
		if r.res != nil {
			status = r.res.StatusCode
		}
		t.Fatalf("%s: %d %v %.300q", who, status, r.err, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: %v: %.300q", who, err, r.body)
	}
	v := djangoView{}
	for k, x := range m {
		v[k] = fmt.Sprint(x)
	}
	return v
}

// viewDiff lists the keys whose values differ: key -> [nginx, gateway],
// "<absent>" for a missing key.
func viewDiff(ng, gw djangoView) map[string][2]string {
	d := map[string][2]string{}
	get := func(v djangoView, k string) string {
		if x, ok := v[k]; ok {
			return x
		}
		return "<absent>"
	}
	for k := range ng {
		if a, b := get(ng, k), get(gw, k); a != b {
			d[k] = [2]string{a, b}
		}
	}
	for k := range gw {
		if a, b := get(ng, k), get(gw, k); a != b {
			d[k] = [2]string{a, b}
		}
	}
	return d
}

func fmtDiff(d map[string][2]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: nginx %q, gateway %q\n", k, d[k][0], d[k][1])
	}
	return b.String()
}

// djangoDiffCase is one request of the corpus and the differences expected in
// what Django sees through nginx and through the gateway, beyond the
// signed session headers (normalize checks and removes them).
type djangoDiffCase struct {
	name   string
	req    string // a whole raw request
	expect bool   // the body goes after the 100 Continue
	// want lists what Django sees differently: key -> {through nginx,
	// through the gateway}, "<absent>" for a missing key. The fronts'
	// addresses in values read NGINX, GW and GUNICORN, their ports
	// NGINX_PORT, GW_PORT and GUNICORN_PORT.
	want map[string][2]string
}

const absent = "<absent>"

// forwardedHostOnly is the one difference of an ordinary request: the
// gateway always tells Django the host in X-Forwarded-Host, which the
// documented nginx configuration leaves out (Django reads it only with
// USE_X_FORWARDED_HOST, and then gets the same host).
func forwardedHostOnly(host string) map[string][2]string {
	return map[string][2]string{"META.HTTP_X_FORWARDED_HOST": {absent, host}}
}

// with adds more expected differences to base.
func with(base map[string][2]string, more map[string][2]string) map[string][2]string {
	out := map[string][2]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// normalize replaces the fronts' addresses in what Django reported, so
// that expected values can name them, and checks and removes the signed
// session headers: only the gateway sends them (docs/protocol.md section
// 5), every time.
func (s *djangoDiffStack) normalize(t *testing.T, who string, v djangoView) {
	t.Helper()
	repl := []string{}
	for _, a := range []struct{ name, addr string }{{"NGINX", s.nginx.Addr}, {"GW", s.gwAddr}, {"GUNICORN", s.gunicorn.Addr}} {
		repl = append(repl, a.addr, a.name)
		_, port, _ := net.SplitHostPort(a.addr)
		if v["META.SERVER_PORT"] == port {
			v["META.SERVER_PORT"] = a.name + "_PORT"
		}
	}
	r := strings.NewReplacer(repl...)
	for k, x := range v {
		if strings.HasPrefix(k, "META.") || k == "get_host" || k == "build_absolute_uri" {
			v[k] = r.Replace(x)
		}
	}
	var session []string
	for k := range v {
		if strings.HasPrefix(k, "META.HTTP_X_SESSIONGATE_") {
			session = append(session, k)
			delete(v, k)
		}
	}
	sort.Strings(session)
	want := []string{"META.HTTP_X_SESSIONGATE_DATA_0", "META.HTTP_X_SESSIONGATE_DATA_COUNT", "META.HTTP_X_SESSIONGATE_FEATURES",
		"META.HTTP_X_SESSIONGATE_NONCE", "META.HTTP_X_SESSIONGATE_SESSION_ID", "META.HTTP_X_SESSIONGATE_SIGNATURE", "META.HTTP_X_SESSIONGATE_TIMESTAMP"}
	if who == "nginx" {
		want = nil
	}
	if !slices.Equal(session, want) {
		t.Errorf("%s: session headers Django got: %q, want %q", who, session, want)
	}
}

// compareViews sends c to both fronts of s and checks that Django saw the
// same request except for c.want.
func (s *djangoDiffStack) compareViews(t *testing.T, c djangoDiffCase) {
	t.Helper()
	ng := parseView(t, "nginx", rawDo(s.nginx.Addr, c.req, c.expect))
	gw := parseView(t, "gateway", rawDo(s.gwAddr, c.req, c.expect))
	s.normalize(t, "nginx", ng)
	s.normalize(t, "gateway", gw)
	got := viewDiff(ng, gw)
	unexpected, missing := map[string][2]string{}, map[string][2]string{}
	for k, v := range got {
		if c.want[k] != v {
			unexpected[k] = v
		}
	}
	for k, v := range c.want {
		if got[k] != v {
			missing[k] = v
		}
	}
	if len(unexpected) > 0 || len(missing) > 0 {
		t.Errorf("%s: Django saw the request differently through the gateway:\n%s(expected differences not seen:\n%s)",
			c.name, fmtDiff(unexpected), fmtDiff(missing))
	}
}

// TestNginxDjangoRequestDiff: what Django sees of the same raw request
// through nginx (Django's and gunicorn's documented proxy settings) and
// through the gateway.
func TestNginxDjangoRequestDiff(t *testing.T) {
	t.Parallel()
	direct, proxied := startDiffStacks(t)
	big := strings.Repeat("0123456789abcdef", 200<<10/16)
	chunk := func(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }
	const host = "shop.example"
	plain := forwardedHostOnly(host)
	cases := []djangoDiffCase{
		{name: "plain", req: "GET /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: plain},
		{name: "host with port", req: "GET /dj/dump/ HTTP/1.1\r\nHost: Shop.Example:8080\r\n\r\n", want: forwardedHostOnly("Shop.Example:8080")},
		// HTTP/1.0 without Host: the gateway names the address the
		// client reached (README, SESSIONGATE_SERVER_NAMES), nginx sends
		// none and gunicorn makes up its own.
		{name: "HTTP/1.0 without Host", req: "GET /dj/dump/ HTTP/1.0\r\n\r\n", want: map[string][2]string{
			"META.HTTP_HOST":             {absent, "GW"},
			"META.HTTP_X_FORWARDED_HOST": {absent, "GW"},
			"get_host":                   {"GUNICORN", "GW"},
			"build_absolute_uri":         {"http://GUNICORN/dj/dump/", "http://GW/dj/dump/"},
		}},
		// Absolute-form target: the gateway takes the host from it (RFC
		// 9112 section 3.2.2), nginx's $http_host is the Host field.
		{name: "absolute-form target", req: "GET http://other.example/dj/dump/ HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: map[string][2]string{
			"META.HTTP_HOST":             {host, "other.example"},
			"META.HTTP_X_FORWARDED_HOST": {absent, "other.example"},
			"get_host":                   {host, "other.example"},
			"build_absolute_uri":         {"http://shop.example/dj/dump/", "http://other.example/dj/dump/"},
		}},
		// Escapes of unreserved characters arrive decoded (the same URL,
		// RFC 3986): gunicorn before 22 cuts a SCRIPT_NAME mount off the
		// path as sent (TestPathReadingsDjangoUnderScriptName). Django's
		// decoded path is the same.
		{name: "percent-encoded path", req: "GET /dj/dump/a%2Fb/%7Euser/%41%20c%25/x%3Fy;p=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: with(plain, map[string][2]string{
			"META.RAW_URI": {"/dj/dump/a%2Fb/%7Euser/%41%20c%25/x%3Fy;p=1", "/dj/dump/a%2Fb/~user/A%20c%25/x%3Fy;p=1"},
		})},
		// Raw UTF-8 in the target: nginx passes the bytes, which
		// gunicorn hands Django as mojibake; the gateway sends them
		// percent-encoded, as a browser does, and Django decodes them.
		{name: "raw UTF-8 path", req: "GET /dj/dump/caf\xc3\xa9 HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: with(plain, map[string][2]string{
			"META.PATH_INFO":     {"/dj/dump/caf\u00c3\u00a9", "/dj/dump/caf\u00e9"},
			"META.RAW_URI":       {"/dj/dump/caf\u00c3\u00a9", "/dj/dump/caf%C3%A9"},
			"path":               {"/dj/dump/caf\u00c3\u00a9", "/dj/dump/caf\u00e9"},
			"path_info":          {"/dj/dump/caf\u00c3\u00a9", "/dj/dump/caf\u00e9"},
			"get_full_path":      {"/dj/dump/caf%C3%83%C2%A9", "/dj/dump/caf%C3%A9"},
			"build_absolute_uri": {"http://shop.example/dj/dump/caf%C3%83%C2%A9", "http://shop.example/dj/dump/caf%C3%A9"},
		})},
		{name: "encoded UTF-8", req: "GET /dj/dump/caf%C3%A9/%E2%82%AC?q=%C3%A9 HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: plain},
		{name: "broken UTF-8", req: "GET /dj/dump/%FF%FE?x=%FF HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: plain},
		{name: "double slashes", req: "GET //dj//dump//x HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: plain},
		{name: "dot segments", req: "GET /dj/x/../dump/./y HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: plain},
		{name: "query", req: "GET /dj/dump/?a=1&a=2&b=&c&d=%20x+y&e=%26;f=g HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: plain},
		{name: "odd query", req: "GET /dj/dump/?a=[1]&b={x}|y&c=%zz&d=%C3%A9 HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: plain},
		{name: "empty query", req: "GET /dj/dump/? HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: plain},
		// The client's own forwarding headers: nginx's documented
		// configuration replaces only -Proto and appends to -For; the
		// gateway drops the whole family (README,
		// SESSIONGATE_TRUSTED_PROXIES), so USE_X_FORWARDED_HOST cannot
		// be turned into a host the client picks.
		{name: "forwarding headers from a client", req: "GET /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n" +
			"X-Forwarded-Host: evil.example\r\nX-Forwarded-Port: 443\r\nForwarded: for=203.0.113.9;host=evil.example\r\n\r\n", want: map[string][2]string{
			"META.HTTP_X_FORWARDED_FOR":  {"203.0.113.9, 127.0.0.1", "127.0.0.1"},
			"META.HTTP_X_FORWARDED_HOST": {"evil.example", host},
			"META.HTTP_X_FORWARDED_PORT": {"443", absent},
			"META.HTTP_FORWARDED":        {"for=203.0.113.9;host=evil.example", absent},
			"get_host":                   {"evil.example", host},
			"build_absolute_uri":         {"http://evil.example/dj/dump/", "http://shop.example/dj/dump/"},
		}},
		{name: "repeated headers", req: "GET /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nX-Multi: a\r\nX-Multi: b\r\nAccept: text/html\r\nAccept: application/json\r\n" +
			"X-Under_Score: u\r\nX-Latin: caf\xc3\xa9\r\n\r\n", want: plain},
		// Two Cookie fields: nginx passes both and gunicorn joins them
		// with a comma, which Django reads as part of a value; the
		// gateway joins them with "; ". Its session cookie never reaches
		// Django (docs/protocol.md section 5).
		{name: "cookies", req: "GET /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nCookie: a=1; sessionid=zzz; b=2\r\nCookie: c=3\r\n\r\n", want: with(plain, map[string][2]string{
			"META.HTTP_COOKIE": {"a=1; sessionid=zzz; b=2,c=3", "a=1; b=2; c=3"},
			"COOKIES":          {`{"a": "1", "b": "2,c=3", "sessionid": "zzz"}`, `{"a": "1", "b": "2", "c": "3"}`},
		})},
		// Hop-by-hop fields: nginx sends its own Connection and drops
		// Upgrade, TE and Keep-Alive but passes the fields the client's
		// Connection names; the gateway drops those (RFC 9110 section
		// 7.6.1) and passes a WebSocket upgrade (101 is relayed) and TE:
		// trailers, as net/http's ReverseProxy does.
		{name: "hop-by-hop headers", req: "GET /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Hop, Upgrade\r\nUpgrade: websocket\r\nTE: trailers\r\n" +
			"Keep-Alive: timeout=5\r\nX-Hop: 1\r\nProxy-Connection: keep-alive\r\nTrailer: X-T\r\n\r\n", want: with(plain, map[string][2]string{
			"META.HTTP_CONNECTION":       {absent, "Upgrade"},
			"META.HTTP_UPGRADE":          {absent, "websocket"},
			"META.HTTP_TE":               {absent, "trailers"},
			"META.HTTP_X_HOP":            {"1", absent},
			"META.HTTP_PROXY_CONNECTION": {"keep-alive", absent},
			"META.HTTP_TRAILER":          {"X-T", absent},
		})},
		// Both answer the client's 100-continue themselves; the gateway
		// passes Expect on (gunicorn's 100 is skipped), nginx drops it.
		{name: "Expect: 100-continue", expect: true, req: "POST /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
			want: with(plain, map[string][2]string{"META.HTTP_EXPECT": {absent, "100-continue"}})},
		{name: "chunked body", req: "POST /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
			chunk("hello ") + chunk("world") + "0\r\n\r\n", want: plain},
		{name: "large body", req: "PUT /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
			fmt.Sprint(len(big)) + "\r\n\r\n" + big, want: plain},
		{name: "large chunked body", req: "POST /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
			chunk(big) + chunk(big) + "0\r\n\r\n", want: plain},
	}
	// Through a trusted proxy (nginx: set_real_ip_from; the gateway:
	// SESSIONGATE_TRUSTED_PROXIES). nginx's documented configuration sets
	// X-Forwarded-Proto from its own $scheme and appends the address
	// real_ip found to X-Forwarded-For; the gateway believes the proxy's
	// X-Forwarded-Proto (README, SESSIONGATE_TRUSTED_PROXIES) and sends
	// the client address alone.
	proxyCases := []djangoDiffCase{
		{name: "trusted proxy", req: "GET /dj/dump/ HTTP/1.1\r\nHost: gw.internal:8080\r\nX-Forwarded-For: 203.0.113.9, 198.51.100.7\r\nX-Forwarded-Proto: https\r\n" +
			"X-Forwarded-Host: www.example.com\r\nX-Forwarded-Port: 443\r\n\r\n", want: map[string][2]string{
			"META.HTTP_X_FORWARDED_FOR":   {"203.0.113.9, 198.51.100.7, 198.51.100.7", "198.51.100.7"},
			"META.HTTP_X_FORWARDED_PROTO": {"http", "https"},
			"META.wsgi.url_scheme":        {"http", "https"},
			"is_secure":                   {"false", "true"},
			"build_absolute_uri":          {"http://www.example.com/dj/dump/", "https://www.example.com/dj/dump/"},
		}},
		{name: "trusted proxy, host in Forwarded", req: "GET /dj/dump/ HTTP/1.1\r\nHost: gw.internal\r\nForwarded: for=203.0.113.9;proto=https;host=www.example.com\r\n" +
			"X-Forwarded-For: 203.0.113.9\r\n\r\n", want: map[string][2]string{
			"META.HTTP_X_FORWARDED_FOR":  {"203.0.113.9, 203.0.113.9", "203.0.113.9"},
			"META.HTTP_X_FORWARDED_HOST": {absent, "www.example.com"},
			"get_host":                   {"gw.internal", "www.example.com"},
			"build_absolute_uri":         {"http://gw.internal/dj/dump/", "http://www.example.com/dj/dump/"},
		}},
		{name: "trusted proxy keeping Host", req: "GET /dj/dump/ HTTP/1.1\r\nHost: www.example.com\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\r\n",
			want: map[string][2]string{
				"META.HTTP_X_FORWARDED_FOR":   {"203.0.113.9, 203.0.113.9", "203.0.113.9"},
				"META.HTTP_X_FORWARDED_HOST":  {absent, "www.example.com"},
				"META.HTTP_X_FORWARDED_PROTO": {"http", "https"},
				"META.wsgi.url_scheme":        {"http", "https"},
				"is_secure":                   {"false", "true"},
				"build_absolute_uri":          {"http://www.example.com/dj/dump/", "https://www.example.com/dj/dump/"},
			}},
	}
	for _, h := range []string{"[::1]:8080", "shop.example.", "shop.example:99999", "1.2.3.4"} {
		cases = append(cases, djangoDiffCase{name: "Host " + h, req: "GET /dj/dump/ HTTP/1.1\r\nHost: " + h + "\r\n\r\n", want: forwardedHostOnly(h)})
	}
	for _, c := range cases {
		direct.compareViews(t, c)
	}
	// A real session: Django never sees the gateway's cookie (it gets
	// the session in the signed headers) but sessiongate_django's cache
	// cookie in its place (docs/protocol.md section 5); nginx passes the
	// cookie as it is.
	set := rawDo(direct.gwAddr, "GET /dj/setsession/ HTTP/1.1\r\nHost: shop.example\r\n\r\n", false)
	var sid string
	for _, c := range set.res.Cookies() {
		if c.Name == "sessionid" {
			sid = c.Value
		}
	}
	if sid == "" {
		t.Fatalf("no session cookie from /dj/setsession/: %q", set.res.Header.Values("Set-Cookie"))
	}
	withSession := "GET /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nCookie: a=1; sessionid=" + sid + "\r\n\r\n"
	id := parseView(t, "gateway", rawDo(direct.gwAddr, withSession, false))["META.HTTP_X_SESSIONGATE_SESSION_ID"]
	m := hmac.New(sha256.New, wsgi.HeaderKey([]byte(sessionTestKey)))
	m.Write([]byte("sg1-cache\n" + id))
	token := hex.EncodeToString(m.Sum(nil))[:32]
	direct.compareViews(t, djangoDiffCase{name: "session cookie", req: withSession, want: with(plain, map[string][2]string{
		// After a line feed, which no client field can carry: Django's
		// cache key joins the varied fields with nothing between them.
		"META.HTTP_COOKIE": {"a=1; sessionid=" + sid, "a=1; \nsessiongate=" + token},
		"COOKIES":          {`{"a": "1", "sessionid": "` + sid + `"}`, `{"a": "1", "sessiongate": "` + token + `"}`},
	})})

	// Refused alike, before Django: a NUL in the path (nginx refuses it
	// in any URI), bad escapes and bytes, hosts that are no host.
	for _, req := range []string{
		"GET /dj/dump/a%00b HTTP/1.1\r\nHost: shop.example\r\n\r\n",
		"GET /dj/dump/%zz HTTP/1.1\r\nHost: shop.example\r\n\r\n",
		"GET /dj/dump/a% HTTP/1.1\r\nHost: shop.example\r\n\r\n",
		"GET /dj/dump/\x7f HTTP/1.1\r\nHost: shop.example\r\n\r\n",
		"GET /dj/dump/ HTTP/1.1\r\nHost: shop.example:\r\n\r\n",
		"GET /dj/dump/ HTTP/1.1\r\nHost: shop_x.example\r\n\r\n",
		"GET /dj/dump/ HTTP/1.1\r\nHost: a@b\r\n\r\n",
		"GET /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\nHost: other.example\r\n\r\n",
		"GET /dj/dump/ HTTP/1.1\r\n\r\n",
	} {
		ng, gw := rawDo(direct.nginx.Addr, req, false), rawDo(direct.gwAddr, req, false)
		if ng.status() != 400 || gw.status() != 400 {
			t.Errorf("%q: nginx %d %v, gateway %d %v; want 400 from both", strings.SplitN(req, "\r\n", 2)[0], ng.status(), ng.err, gw.status(), gw.err)
		}
	}
	// gunicorn trusts the scheme headers of a proxy on 127.0.0.1 and
	// refuses contradictory ones with 400: nginx passes a client's
	// X-Forwarded-Ssl: on beside its own X-Forwarded-Proto: http, so any
	// client could have any page refused; the gateway drops the client's.
	for _, h := range []string{"X-Forwarded-Ssl: on", "X-Forwarded-Protocol: ssl"} {
		req := "GET /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\n" + h + "\r\n\r\n"
		if ng, gw := rawDo(direct.nginx.Addr, req, false), rawDo(direct.gwAddr, req, false); ng.status() != 400 || gw.status() != 200 {
			t.Errorf("a client's %s: nginx %d, gateway %d; want 400 (gunicorn) and 200", h, ng.status(), gw.status())
		}
	}
	for _, c := range proxyCases {
		proxied.compareViews(t, c)
	}
	// A proxy that appends to X-Forwarded-Host (Apache's mod_proxy)
	// passes its client's entry on in front of its own. Django refuses
	// the list nginx passes (400, DisallowedHost); through the gateway it
	// got the first entry, a host the client picked, which with
	// ALLOWED_HOSTS = ["*"] named evil.example in every absolute link. It
	// gets the proxy's (server.TestRedirectForwardedHostOfTrustedHop).
	for _, fwd := range []string{"X-Forwarded-Host: evil.example, www.example.com", "Forwarded: host=evil.example, for=203.0.113.9;host=www.example.com"} {
		req := "GET /dj/dump/ HTTP/1.1\r\nHost: gw.internal\r\nX-Forwarded-For: 203.0.113.9\r\n" + fwd + "\r\n\r\n"
		v := parseView(t, "gateway", rawDo(proxied.gwAddr, req, false))
		if v["get_host"] != "www.example.com" || v["build_absolute_uri"] != "http://www.example.com/dj/dump/" {
			t.Errorf("trusted proxy appending %q: Django's get_host %q, build_absolute_uri %q; want the proxy's www.example.com", fwd, v["get_host"], v["build_absolute_uri"])
		}
	}

	// Many nginx configurations send "Host $host": lower case, without
	// the port (nginx's variable), so Django's absolute URLs lost a
	// non-default port; the gateway sends the Host as the client wrote
	// it, as "$http_host" (above) does.
	hostNginx := *direct
	hostNginx.nginx = harness.StartNginxDjango(t, harness.NginxDjangoOptions{Upstream: direct.gunicorn.Addr, Location: "/dj/", Host: "$host"})
	for _, c := range []djangoDiffCase{
		{name: "$host, plain", req: "GET /dj/dump/ HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: plain},
		{name: "$host, host with port", req: "GET /dj/dump/ HTTP/1.1\r\nHost: Shop.Example:8080\r\n\r\n", want: map[string][2]string{
			"META.HTTP_HOST":             {host, "Shop.Example:8080"},
			"META.HTTP_X_FORWARDED_HOST": {absent, "Shop.Example:8080"},
			"get_host":                   {host, "Shop.Example:8080"},
			"build_absolute_uri":         {"http://shop.example/dj/dump/", "http://Shop.Example:8080/dj/dump/"},
		}},
		{name: "$host, absolute-form target", req: "GET http://other.example/dj/dump/ HTTP/1.1\r\nHost: shop.example\r\n\r\n", want: forwardedHostOnly("other.example")},
	} {
		hostNginx.compareViews(t, c)
	}
}

// headerDiff lists the response header fields whose values differ:
// name -> {through nginx, through the gateway}, values joined with " | ".
// Date, Connection and Keep-Alive are each front's own. A Set-Cookie's
// expires date is Django's clock at each answer plus Max-Age, so the two
// requests can straddle a second: its date is left out (Max-Age stays).
func headerDiff(ng, gw http.Header) map[string][2]string {
	d := map[string][2]string{}
	join := func(h http.Header, k string) string {
		if v, ok := h[k]; ok {
			j := strings.Join(v, " | ")
			if k == "Set-Cookie" {
				j = cookieExpires.ReplaceAllString(j, "expires=(date)")
			}
			return j
		}
		return absent
	}
	for _, h := range []http.Header{ng, gw} {
		for k := range h {
			switch k {
			case "Date", "Connection", "Keep-Alive":
				continue
			}
			if a, b := join(ng, k), join(gw, k); a != b {
				d[k] = [2]string{a, b}
			}
		}
	}
	return d
}

// cookieExpires matches a Set-Cookie's expires attribute and its date.
var cookieExpires = regexp.MustCompile(`(?i)expires=[^;|]*`)

// TestNginxDjangoResponseDiff: what a client gets of Django's answers
// through nginx and through the gateway.
func TestNginxDjangoResponseDiff(t *testing.T) {
	t.Parallel()
	s, _ := startDiffStacks(t)
	get := func(addr, target string, hdr ...string) rawResponse {
		method := "GET"
		if m, rest, ok := strings.Cut(target, " "); ok {
			method, target = m, rest
		}
		return rawDo(addr, method+" "+target+" HTTP/1.1\r\nHost: shop.example\r\n"+strings.Join(hdr, "")+"\r\n", false)
	}
	// Every response differs in these: Server is nginx's own there and
	// gunicorn's through the gateway, which also removes sessiongate
	// _django's mark (docs/protocol.md section 5) and, compressing text
	// (SESSIONGATE_COMPRESS), says Vary: Accept-Encoding.
	own := func(ng, gw rawResponse, vary bool) map[string][2]string {
		d := map[string][2]string{
			"Server":               {ng.res.Header.Get("Server"), "gunicorn"},
			"X-Sessiongate-Django": {"refused-missing", absent},
		}
		if !strings.HasPrefix(ng.res.Header.Get("Server"), "nginx/") {
			t.Errorf("nginx sent Server %q", ng.res.Header.Get("Server"))
		}
		if vary {
			d["Vary"] = [2]string{absent, "Accept-Encoding"}
			if v := ng.res.Header.Values("Vary"); len(v) > 0 {
				d["Vary"] = [2]string{strings.Join(v, " | "), strings.Join(v, " | ") + " | Accept-Encoding"}
			}
		}
		return d
	}
	same := func(name string, ng, gw rawResponse, want map[string][2]string) {
		t.Helper()
		if ng.err != nil || gw.err != nil {
			t.Errorf("%s: nginx %v, gateway %v", name, ng.err, gw.err)
			return
		}
		if ng.res.StatusCode != gw.res.StatusCode || string(ng.body) != string(gw.body) {
			t.Errorf("%s: nginx %d %.100q, gateway %d %.100q", name, ng.res.StatusCode, ng.body, gw.res.StatusCode, gw.body)
		}
		got := headerDiff(ng.res.Header, gw.res.Header)
		for k, v := range got {
			if want[k] != v {
				t.Errorf("%s: header %s: nginx %q, gateway %q", name, k, v[0], v[1])
			}
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: header %s: want nginx %q, gateway %q; got %q", name, k, v[0], v[1], got[k])
			}
		}
	}
	for _, c := range []struct {
		target string
		hdr    []string
		vary   bool // a text type the gateway may compress
		more   map[string][2]string
	}{
		{target: "/dj/cookies/", vary: true},                                     // three Set-Cookie fields, in order
		{target: "/dj/caching/", vary: true},                                     // Vary and Cache-Control of Django's
		{target: "/dj/download/"},                                                // Content-Disposition with filename*=utf-8''...
		{target: "/dj/file/", vary: true},                                        // FileResponse
		{target: "/dj/redirect/", vary: true},                                    // relative Location, as it is
		{target: "/dj/etag/", vary: true},                                        // ConditionalGetMiddleware's ETag
		{target: "/dj/stream/", vary: true},                                      // StreamingHttpResponse, chunked
		{target: "OPTIONS /dj/etag/", vary: true},                                // Django's own OPTIONS
		{target: "/dj/odd/", vary: true},                                         // a latin-1 value, an empty one, Link, WWW-Authenticate
		{target: "/dj/file/", hdr: []string{"Range: bytes=0-9\r\n"}, vary: true}, // Django 3.2 answers it whole
		{target: "/dj/etag/?412", hdr: []string{"If-Match: \"nope\"\r\n"}, vary: true},
		{target: "/dj/odd/?status=401", vary: true},
		{target: "/dj/odd/?status=599", vary: true},
		// A 204 has no content (RFC 9110 section 15.3.5): nginx passes
		// the Content-Length Django's HttpResponse gave it, the gateway
		// does not.
		{target: "/dj/odd/?status=204", more: map[string][2]string{"Content-Length": {"3", absent}}},
	} {
		ng, gw := get(s.nginx.Addr, c.target, c.hdr...), get(s.gwAddr, c.target, c.hdr...)
		if ng.res == nil || gw.res == nil {
			t.Errorf("%s: nginx %v, gateway %v", c.target, ng.err, gw.err)
			continue
		}
		same(c.target, ng, gw, with(own(ng, gw, c.vary), c.more))
		if c.target == "/dj/etag/" {
			// The browser's revalidation: 304 from
			// ConditionalGetMiddleware, with the tag.
			tag := "If-None-Match: " + ng.res.Header.Get("ETag") + "\r\n"
			ng, gw := get(s.nginx.Addr, c.target, tag), get(s.gwAddr, c.target, tag)
			if ng.res.StatusCode != 304 {
				t.Errorf("revalidation through nginx: %d", ng.res.StatusCode)
			}
			same("revalidation", ng, gw, own(ng, gw, false))
		}
	}

	t.Run("gzip", func(t *testing.T) {
		// Deliberate (SESSIONGATE_COMPRESS=on, README): the documented
		// nginx configuration has no gzip.
		ng := get(s.nginx.Addr, "/dj/file/", "Accept-Encoding: gzip\r\n")
		if ng.res == nil {
			// Seen once in a full run (nginx's kept-alive upstream):
			// the reference's failure, not what this compares.
			t.Logf("nginx: %v; asking again", ng.err)
			ng = get(s.nginx.Addr, "/dj/file/", "Accept-Encoding: gzip\r\n")
		}
		gw := get(s.gwAddr, "/dj/file/", "Accept-Encoding: gzip\r\n")
		if ng.res == nil || gw.res == nil {
			t.Fatalf("nginx %v, gateway %v", ng.err, gw.err)
		}
		if ng.res.Header.Get("Content-Encoding") != "" || gw.res.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("Content-Encoding: nginx %q, gateway %q", ng.res.Header.Get("Content-Encoding"), gw.res.Header.Get("Content-Encoding"))
		}
	})

	t.Run("prefix without its slash", func(t *testing.T) {
		// Both redirect to the location with its slash; nginx names
		// itself with the port it listens on (port_in_redirect), which
		// behind a port mapping is not the one the client used. The
		// gateway's Location is relative.
		ng, gw := get(s.nginx.Addr, "/dj?x=1"), get(s.gwAddr, "/dj?x=1")
		if ng.status() != 301 || gw.status() != 301 || ng.res.Header.Get("Location") != "http://shop.example:"+s.nginx.Addr[strings.LastIndexByte(s.nginx.Addr, ':')+1:]+"/dj/?x=1" ||
			gw.res.Header.Get("Location") != "/dj/?x=1" {
			t.Errorf("/dj?x=1: nginx %d %q, gateway %d %q", ng.status(), ng.res.Header.Get("Location"), gw.status(), gw.res.Header.Get("Location"))
		}
	})

	t.Run("If-Match with the tag of a compressed read", func(t *testing.T) {
		// An API resource with optimistic locking (Django's @etag): the
		// client reads it, accepting gzip as browsers and requests do,
		// and updates it with If-Match. The gateway compresses JSON and
		// marks the tag weak (W/"rev-7", package compress); Django
		// compares If-Match strongly, and a weak tag never matches: every
		// update was refused with 412, where nginx (which compresses only
		// text/html by default, and nothing here) let it through.
		for _, f := range []struct{ who, addr, tag string }{{"nginx", s.nginx.Addr, `"rev-7"`}, {"gateway", s.gwAddr, `W/"rev-7"`}} {
			r := get(f.addr, "/dj/resource/", "Accept-Encoding: gzip\r\n")
			if r.status() != 200 || r.res.Header.Get("ETag") != f.tag {
				t.Fatalf("%s: GET %d, ETag %q, want %s", f.who, r.status(), r.res.Header.Get("ETag"), f.tag)
			}
			put := rawDo(f.addr, "PUT /dj/resource/ HTTP/1.1\r\nHost: shop.example\r\nIf-Match: "+f.tag+"\r\nContent-Length: 2\r\n\r\n{}", false)
			if put.status() != 200 || string(put.body) != "updated" {
				t.Errorf("%s: PUT with If-Match %s: %d %q, want 200", f.who, f.tag, put.status(), put.body)
			}
			// Another tag is still refused.
			put = rawDo(f.addr, "PUT /dj/resource/ HTTP/1.1\r\nHost: shop.example\r\nIf-Match: W/\"rev-6\", \"rev-5\"\r\nContent-Length: 2\r\n\r\n{}", false)
			if put.status() != 412 {
				t.Errorf("%s: PUT with If-Match of older revisions: %d, want 412", f.who, put.status())
			}
		}
	})

	t.Run("header larger than nginx's proxy buffer", func(t *testing.T) {
		// Deliberate: the gateway reads up to 10 MB of Django's header
		// (it carries the session Django writes back); nginx refuses one
		// over proxy_buffer_size (4 KiB or 8 KiB) with 502.
		ng, gw := get(s.nginx.Addr, "/dj/bighdr/"), get(s.gwAddr, "/dj/bighdr/")
		if ng.res.StatusCode != 502 || gw.res.StatusCode != 200 || len(gw.res.Header.Get("X-Big")) != 20000 {
			t.Errorf("20 KB header: nginx %d, gateway %d with %d bytes", ng.res.StatusCode, gw.res.StatusCode, len(gw.res.Header.Get("X-Big")))
		}
	})

	t.Run("session cookie beside Django's cookies", func(t *testing.T) {
		gw := get(s.gwAddr, "/dj/setsession/")
		var names []string
		for _, c := range gw.res.Cookies() {
			names = append(names, c.Name)
		}
		if gw.res.StatusCode != 200 || !slices.Equal(names, []string{"a", "b", "sessionid"}) {
			t.Errorf("a view that sets two cookies and writes the session: %d, cookies %q", gw.res.StatusCode, gw.res.Header.Values("Set-Cookie"))
		}
	})

	t.Run("stream flushed as it comes", func(t *testing.T) {
		// The view yields its first part, sleeps a second, yields
		// "second\n". A browser accepts gzip: through the gateway, a part
		// large enough to be compressed (100 lines of HTML) is flushed
		// compressed at once too. (nginx has no gzip here, and was seen
		// to hold such an HTML part until the second came.)
		for _, f := range []struct{ who, addr, query string }{
			{"nginx", s.nginx.Addr, ""}, {"gateway", s.gwAddr, ""}, {"gateway", s.gwAddr, "?n=100&type=text/html"},
		} {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			io.WriteString(c, "GET /dj/stream/"+f.query+" HTTP/1.1\r\nHost: shop.example\r\nAccept-Encoding: gzip\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s: %v", f.who, err)
			}
			var body io.Reader = res.Body
			if gz := res.Header.Get("Content-Encoding") == "gzip"; gz != (f.query != "") {
				t.Errorf("%s %s: Content-Encoding %q", f.who, f.query, res.Header.Get("Content-Encoding"))
			} else if gz {
				if body, err = gzip.NewReader(res.Body); err != nil {
					t.Fatalf("%s %s: %v", f.who, f.query, err)
				}
			}
			first := make([]byte, len("first\n"))
			_, err = io.ReadFull(body, first)
			early := time.Since(start)
			rest, _ := io.ReadAll(body)
			if err != nil || string(first) != "first\n" || !strings.HasSuffix(string(rest), "second\n") || early > 800*time.Millisecond {
				t.Errorf("%s %s: first line %q after %v (%v), then %.40q", f.who, f.query, first, early, err, rest)
			}
		}
	})

	t.Run("view past the read timeout", func(t *testing.T) {
		// proxy_read_timeout 2s, SESSIONGATE_DJANGO_TIMEOUT=2s.
		var ng rawResponse
		done := make(chan struct{})
		go func() { ng = get(s.nginx.Addr, "/dj/sleep/?s=3"); close(done) }()
		gw := get(s.gwAddr, "/dj/sleep/?s=3")
		<-done
		if ng.res == nil || gw.res == nil || ng.res.StatusCode != 504 || gw.res.StatusCode != 504 {
			t.Errorf("nginx %v %v, gateway %v %v; want 504 from both", ng.res, ng.err, gw.res, gw.err)
		}
	})

	t.Run("clients that leave", func(t *testing.T) {
		for _, addr := range []string{s.nginx.Addr, s.gwAddr} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET /dj/sleep/?s=0.5&left=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n")
			time.Sleep(200 * time.Millisecond)
			c.Close()
			// Gone after the first line of a stream: nginx logs the
			// status it sent (200), the gateway 499 with the cause
			// (server.RequestInfo.Status), deliberately.
			c, err = net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET /dj/stream/?left=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n")
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if res, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || res.StatusCode != 200 {
				t.Fatalf("stream through %s: %v %v", addr, res, err)
			}
			c.Close()
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			lines := s.nginx.AccessLines()
			ngOK := slices.Contains(lines, "499 /dj/sleep/?s=0.5&left=1") && slices.Contains(lines, "200 /dj/stream/?left=1")
			logs := s.gw.Logs.String()
			gwOK := strings.Contains(logs, `"path":"/dj/sleep/","status":499`) && strings.Contains(logs, `"path":"/dj/stream/","status":499`)
			if ngOK && gwOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("clients that left logged as wanted: nginx %v (%q), gateway %v", ngOK, lines, gwOK)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		// gunicorn sends Django's body after the headers of a HEAD
		// answer. nginx leaves it on its kept-alive upstream connection,
		// where it is read as the answer to the next request ("upstream
		// sent no valid HTTP/1.0 header": the client gets the leftover
		// bytes as an HTTP/0.9 response, seen about one time in three);
		// the gateway closes that connection (wsgi/transport.go). So
		// nginx gets one HEAD, last, and through the gateway every
		// request after a HEAD must be answered right.
		ng, gw := get(s.nginx.Addr, "HEAD /dj/file/"), get(s.gwAddr, "HEAD /dj/file/")
		if ng.res == nil || gw.res == nil {
			t.Fatalf("HEAD: nginx %v, gateway %v", ng.err, gw.err)
		}
		same("HEAD", ng, gw, own(ng, gw, true))
		for range 3 {
			for _, target := range []string{"HEAD /dj/file/", "HEAD /dj/etag/"} {
				gw := get(s.gwAddr, target)
				if gw.err != nil || gw.res.StatusCode != 200 || len(gw.body) != 0 {
					t.Errorf("%s through the gateway: %v %v %q", target, gw.res, gw.err, gw.body)
				}
				gw = get(s.gwAddr, "/dj/redirect/")
				if gw.err != nil || gw.res.StatusCode != 302 {
					t.Errorf("GET after %s through the gateway: %v %v", target, gw.res, gw.err)
				}
			}
		}
	})

	t.Run("gunicorn gone", func(t *testing.T) {
		s.gunicorn.Stop()
		ng, gw := get(s.nginx.Addr, "/dj/dump/"), get(s.gwAddr, "/dj/dump/")
		if ng.res == nil || gw.res == nil || ng.res.StatusCode != 502 || gw.res.StatusCode != 502 {
			t.Errorf("nginx %v %v, gateway %v %v; want 502 from both", ng.res, ng.err, gw.res, gw.err)
		}
	})
}

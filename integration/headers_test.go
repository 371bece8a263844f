package integration

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/app"
	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

// echoWSGI answers with the WSGI environ's text values as JSON: what
// Django's request.META would hold.
const echoWSGI = `import json, time, urllib.parse
def application(environ, start_response):
    q = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "started" in q:
        # Read the body, say so in that file, then take ?sleep= seconds.
        environ["wsgi.input"].read()
        open(q["started"][0], "w").close()
        time.sleep(float(q.get("sleep", ["2"])[0]))
    d = {k: v for k, v in environ.items() if isinstance(v, str)}
    d["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    body = json.dumps(d).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
`

// startEchoStack runs one gateway in front of php-fpm (gwSite) and of a
// gunicorn 20.1 serving echoWSGI under /dj/; env adds SESSIONGATE_*
// settings. It returns the gateway's address.
func startEchoStack(t *testing.T, env ...string) string {
	t.Helper()
	u := serveEchoStack(t, gwSite(t), false, append([]string{"SESSIONGATE_SESSION_DEV=on"}, env...))
	return strings.TrimPrefix(u, "http://")
}

// serveEchoStack runs a gateway (on TLS with tls) in front of php-fpm on
// root and of a gunicorn serving echoWSGI under /dj/, configured with env
// added, and returns its URL.
func serveEchoStack(t *testing.T, root string, tls bool, env []string) string {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "gunicorn")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "echoapp.py"), []byte(echoWSGI), 0o644); err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: dir, App: "echoapp:application", Workers: 1, Threads: 2})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	cfg, err := config.Load(append([]string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_DJANGO_URL=" + g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/"}, env...))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	a, err := app.Build(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(a.Server.Handler())
	if tls {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(func() {
		ts.Close()
		a.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s\ngunicorn log:\n%s", logs.String(), g.Log())
		}
	})
	return ts.URL
}

// rawJSON sends request (lines joined with CRLF, ending the header) on a
// fresh connection and decodes the JSON body of the answer.
func rawJSON(t *testing.T, addr string, lines ...string) map[string]string {
	t.Helper()
	out, _ := raw(t, addr, strings.Join(lines, "\r\n")+"\r\nConnection: close\r\n\r\n")
	_, body, ok := strings.Cut(out, "\r\n\r\n")
	var m map[string]string
	if !ok || json.Unmarshal([]byte(body), &m) != nil {
		t.Fatalf("%q: no JSON answer: %q", lines[0], out)
	}
	return m
}

// TestAbsoluteFormRequestURI: "GET http://host/path HTTP/1.1" gives PHP
// REQUEST_URI "/path?query", as nginx's $request_uri, and Django the same
// path; Host comes from the request line on both (RFC 9112 3.2.2).
func TestAbsoluteFormRequestURI(t *testing.T) {
	t.Parallel()
	gw := startEchoStack(t)
	d := rawJSON(t, gw, "GET http://other.example/info.php?a=1 HTTP/1.1", "Host: example.com")
	if d["REQUEST_URI"] != "/info.php?a=1" || d["HTTP_HOST"] != "other.example" || d["SCRIPT_NAME"] != "/info.php" {
		t.Errorf("PHP: REQUEST_URI %q HTTP_HOST %q SCRIPT_NAME %q", d["REQUEST_URI"], d["HTTP_HOST"], d["SCRIPT_NAME"])
	}
	d = rawJSON(t, gw, "GET http://other.example/no/such/page?b=2 HTTP/1.1", "Host: example.com")
	if d["REQUEST_URI"] != "/no/such/page?b=2" || d["SCRIPT_NAME"] != "/index.php" {
		t.Errorf("front controller: REQUEST_URI %q SCRIPT_NAME %q", d["REQUEST_URI"], d["SCRIPT_NAME"])
	}
	d = rawJSON(t, gw, "GET http://other.example/dj/x?c=3 HTTP/1.1", "Host: example.com")
	if d["RAW_URI"] != "/dj/x?c=3" || d["HTTP_HOST"] != "other.example" {
		t.Errorf("Django: RAW_URI %q HTTP_HOST %q", d["RAW_URI"], d["HTTP_HOST"])
	}
}

// TestDjangoHeaderAliasing: gunicorn 20.1 keeps header names with '_' and
// folds them with '-' into one environ key (joined with ','), so
// X_Forwarded_For would reach Django as HTTP_X_FORWARDED_FOR. None of a
// client's spellings of the forwarding, Remote-Addr or session headers may
// reach the environ; the gateway's own values do.
func TestDjangoHeaderAliasing(t *testing.T) {
	t.Parallel()
	gw := startEchoStack(t)
	d := rawJSON(t, gw, "GET /dj/a HTTP/1.1", "Host: example.com",
		"X_Forwarded_For: 6.6.6.6", "x_forwarded_proto: https", "X_FORWARDED_HOST: evil.example",
		"X-Forwarded-For: 6.6.6.7", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example",
		"Forwarded: for=6.6.6.8;proto=https", "Remote_Addr: 7.7.7.7", "Script_Name: /evil",
		"X_Sessiongate_Session_Id: forged", "x-sessiongate-signature: forged", "X_sessiongate-Data-0: forged")
	for k, v := range d {
		if strings.Contains(v, "6.6.6.") || strings.Contains(v, "evil") || strings.Contains(v, "7.7.7.7") || strings.Contains(v, "forged") {
			t.Errorf("client header reached Django: %s=%q", k, v)
		}
	}
	if d["HTTP_X_FORWARDED_FOR"] != "127.0.0.1" || d["HTTP_X_FORWARDED_PROTO"] != "http" ||
		d["HTTP_X_FORWARDED_HOST"] != "example.com" || d["HTTP_HOST"] != "example.com" || d["wsgi.url_scheme"] != "http" {
		t.Errorf("gateway's forwarding headers: %v", d)
	}
}

// TestTrustedProxyPHPAndDjangoAgree: through a trusted proxy, PHP's
// REMOTE_ADDR/HTTPS and Django's X-Forwarded-For/Proto name the same client
// and scheme, whatever the shape of the X-Forwarded-For chain.
func TestTrustedProxyPHPAndDjangoAgree(t *testing.T) {
	t.Parallel()
	gw := startEchoStack(t, "SESSIONGATE_TRUSTED_PROXIES=127.0.0.0/8,10.0.0.0/8")
	for _, c := range []struct {
		hdr    []string
		client string
		https  bool
	}{
		{[]string{"X-Forwarded-For: 6.6.6.6, 203.0.113.5 , 127.0.0.2", "X-Forwarded-For: 10.0.0.1", "X-Forwarded-Proto: http, https"}, "203.0.113.5", true},
		{[]string{"X-Forwarded-For: 2001:db8::1, [2001:db8::2]:443", "X-Forwarded-Proto: HTTPS"}, "2001:db8::2", true},
		{[]string{"X-Forwarded-For: ::ffff:198.51.100.4"}, "198.51.100.4", false},
		{[]string{"X-Forwarded-For: garbage, unknown", "X-Forwarded-Proto: http"}, "127.0.0.1", false},
	} {
		php := rawJSON(t, gw, append([]string{"GET /info.php HTTP/1.1", "Host: example.com"}, c.hdr...)...)
		dj := rawJSON(t, gw, append([]string{"GET /dj/ HTTP/1.1", "Host: example.com"}, c.hdr...)...)
		scheme := map[bool]string{false: "http", true: "https"}[c.https]
		if php["REMOTE_ADDR"] != c.client || php["REQUEST_SCHEME"] != scheme || (php["HTTPS"] == "on") != c.https {
			t.Errorf("%q: PHP REMOTE_ADDR %q REQUEST_SCHEME %q HTTPS %q, want %s %s", c.hdr, php["REMOTE_ADDR"], php["REQUEST_SCHEME"], php["HTTPS"], c.client, scheme)
		}
		if dj["HTTP_X_FORWARDED_FOR"] != c.client || dj["HTTP_X_FORWARDED_PROTO"] != scheme || dj["wsgi.url_scheme"] != scheme {
			t.Errorf("%q: Django X-Forwarded-For %q X-Forwarded-Proto %q url_scheme %q, want %s %s", c.hdr, dj["HTTP_X_FORWARDED_FOR"], dj["HTTP_X_FORWARDED_PROTO"], dj["wsgi.url_scheme"], c.client, scheme)
		}
	}
}

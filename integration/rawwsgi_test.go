package integration

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// rawWSGIApp is a WSGI application without Django: start_response takes
// any list of header lines, so it can send what Django never does.
const rawWSGIApp = `
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/dj/two-types/":
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Type", "application/json")])
        return [b'{"a": 1}']
    if path == "/dj/switch/":
        # What a Django view's HttpResponse(status=101) becomes.
        start_response("101 Switching Protocols", [("Content-Length", "0")])
        return [b""]
    if path == "/dj/spacecl/":
        start_response("200 OK", [("Content-Length", "5"), ("Content-Length ", "11")])
        return [b"hello"]
    if path == "/dj/who/":
        body = ("who: xff=%s" % environ.get("HTTP_X_FORWARDED_FOR")).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such page"]
`

// TestRawWSGIAppTwoContentTypes: a WSGI app behind the Django path that
// sends two Content-Type lines. Clients differ on which of two they
// believe, so a JSON answer could be opened as a page; the client gets
// the last one alone, as from PHP (and from nginx's fastcgi_pass).
func TestRawWSGIAppTwoContentTypes(t *testing.T) {
	t.Parallel()
	harness.Require(t, "gunicorn", "php-fpm8.2")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rawwsgi.py"), []byte(rawWSGIApp), 0o644); err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: dir, App: "rawwsgi:application", Workers: 1})
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_DJANGO_URL=" + g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/",
	})
	resp, _ := raw(t, strings.TrimPrefix(gw.URL, "http://"), "GET /dj/two-types/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	head, body, _ := strings.Cut(resp, "\r\n\r\n")
	if statusOf(resp) != 200 || !strings.Contains(body, `{"a": 1}`) {
		t.Fatalf("response %q", resp)
	}
	var types []string
	for _, line := range strings.Split(head, "\r\n")[1:] {
		if name, value, _ := strings.Cut(line, ":"); strings.EqualFold(name, "Content-Type") {
			types = append(types, strings.TrimSpace(value))
		}
	}
	if len(types) != 1 || types[0] != "application/json" {
		t.Errorf("Content-Type lines %q, want the app's last one alone", types)
	}

	// A plain GET the app answers 101: the gateway joined the client's
	// connection to gunicorn's, and the client's next request reached
	// gunicorn straight, with the X-Forwarded-For it chose. A 502.
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /dj/switch/ HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusBadGateway {
		io.WriteString(c, "GET /dj/who/ HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
		got := ""
		if res2, err := http.ReadResponse(br, nil); err == nil {
			b, _ := io.ReadAll(res2.Body)
			got = string(b)
		}
		t.Errorf("a GET the app answered 101: client got %d, want 502; its next request then got %q", res.StatusCode, got)
	}
}

// TestRawWSGIAppFramingFieldUnderUWSGI: uWSGI's HTTP socket passes an
// app's "Content-Length " (a space before the colon) as it is. The
// gateway framed the answer by the other Content-Length and sent both to
// the client, two values that disagree; a 502, as from nginx.
func TestRawWSGIAppFramingFieldUnderUWSGI(t *testing.T) {
	t.Parallel()
	harness.Require(t, "uwsgi_python3", "php-fpm8.2")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rawwsgi.py"), []byte(rawWSGIApp), 0o644); err != nil {
		t.Fatal(err)
	}
	u := harness.StartUWSGI(t, harness.UWSGIOptions{Dir: dir, Module: "rawwsgi:application"})
	if resp, _ := raw(t, u.Addr, "GET /dj/spacecl/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.Contains(resp, "\r\nContent-Length : 11\r\n") {
		t.Fatalf("uWSGI no longer sends the field as the app gave it: %q", resp)
	}
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_DJANGO_URL=http://" + u.Addr, "SESSIONGATE_DJANGO_PATHS=/dj/",
	})
	resp, _ := raw(t, strings.TrimPrefix(gw.URL, "http://"), "GET /dj/spacecl/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if statusOf(resp) != 502 {
		t.Errorf("behind uWSGI, an answer with \"Content-Length : 11\" beside Content-Length: 5: %q, want a 502", resp)
	}
}

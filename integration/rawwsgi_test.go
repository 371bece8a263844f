package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
}

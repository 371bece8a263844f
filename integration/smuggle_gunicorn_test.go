package integration

// Request smuggling toward gunicorn 20.1 (Debian's), whose own parser has
// the Transfer-Encoding flaws of CVE-2024-1135 and CVE-2024-6827: the
// gateway must hand it exactly the requests it accepted, framed by a
// Content-Length it computed, whatever framing the client tried.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testh2"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

const smuggleDjangoSettings = `
SECRET_KEY = "smuggle-test-secret-key-0123456789-0123456789-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
MIDDLEWARE = []
ROOT_URLCONF = "smugproj.urls"
DATABASES = {}
`

// Every request Django gets is one line in SG_RUNLOG, written before the
// answer: what gunicorn parsed the request as, body and framing included.
const smuggleDjangoURLs = `
import os
from django.urls import re_path
from django.http import HttpResponse

def record(request):
    body = request.body
    line = "%s %s len=%d cl=%s te=%s\n" % (request.method, request.path, len(body),
        request.META.get("CONTENT_LENGTH", ""), request.META.get("HTTP_TRANSFER_ENCODING", "-"))
    with open(os.environ["SG_RUNLOG"], "a") as f:
        f.write(line)
    return HttpResponse(("ran " + line).encode())

urlpatterns = [re_path(r"^dj/", record)]
`

// smuggleStack is a gunicorn (one sync worker: requests in order) serving
// smugproj with its access log, and the gateway binary on plain HTTP and on
// TLS in front of it and of a php-fpm on gwSite.
type smuggleStack struct {
	plain, tls       *gwProc
	plainAddr        string
	tlsAddr          string
	root             string
	runlog, accesslg string
}

func startSmuggleStack(t *testing.T) *smuggleStack {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "gunicorn", "django")
	s := &smuggleStack{root: gwSite(t)}
	dir := t.TempDir()
	s.runlog, s.accesslg = filepath.Join(dir, "runlog"), filepath.Join(dir, "access.log")
	proj := djangoProject(t, "smugproj", smuggleDjangoSettings, smuggleDjangoURLs)
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: proj, App: "smugproj.wsgi:application",
		Env: []string{"SG_RUNLOG=" + s.runlog}, Workers: 1, Args: []string{"--access-logfile", s.accesslg}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: s.root, Children: 2})
	env := []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + s.root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_DJANGO_URL=" + g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/",
		"SESSIONGATE_ACCESS_LOG=on",
	}
	s.plain = startBinary(t, buildGateway(t), env)
	s.plainAddr = strings.TrimPrefix(s.plain.URL, "http://")
	cert, key := testtls.Pair(t)
	s.tls = startBinary(t, buildGateway(t), append(env, "SESSIONGATE_TLS_CERT="+cert, "SESSIONGATE_TLS_KEY="+key))
	s.tlsAddr = strings.TrimPrefix(s.tls.URL, "http://")
	return s
}

// seen returns what Django ran and what gunicorn logged since the last
// call: a sentinel request is sent and waited for in gunicorn's access log,
// which its one sync worker writes in request order, so a request gunicorn
// parsed from the bytes before it is in there too.
func (s *smuggleStack) seen(t *testing.T, ran, logged *int) (django, gunicorn []string) {
	t.Helper()
	sentinel := "/dj/sentinel/" + strconv.Itoa(*logged)
	if resp, _ := raw(t, s.plainAddr, "GET "+sentinel+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); statusOf(resp) != 200 {
		t.Fatalf("sentinel: %q", resp)
	}
	read := func(path string) string { b, _ := os.ReadFile(path); return string(b) }
	text, ok := textWhen(func() string { return read(s.accesslg) }, func(text string) bool { return strings.Contains(text, sentinel+" ") })
	if !ok {
		t.Fatalf("sentinel %s not in gunicorn's access log:\n%s", sentinel, text)
	}
	lines := func(text string, from *int) []string {
		all := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		out := all[*from:]
		*from = len(all)
		var kept []string
		for _, l := range out {
			if !strings.Contains(l, "/dj/sentinel/") {
				kept = append(kept, l)
			}
		}
		return kept
	}
	django = lines(read(s.runlog), ran)
	gunicorn = lines(text, logged)
	return django, gunicorn
}

// TestSmugglingToGunicorn_CVE_2024_1135_CVE_2024_6827: gunicorn 20.1
// takes Transfer-Encoding chains and duplicates it should refuse
// (CVE-2024-1135) and falls back to Content-Length on a Transfer-Encoding
// it does not understand (CVE-2024-6827, TE.CL), so a request it got with
// the client's framing could carry a second one in its body. The gateway
// answers what it cannot frame exactly (400 or 501, logged, nothing sent
// on), and sends what it accepts with a Content-Length of its own and no
// Transfer-Encoding: gunicorn parses exactly that one request, and the one
// hidden in the body never reaches Django or PHP, over HTTP/1.1 or from
// HTTP/2 downgraded to HTTP/1.1.
func TestSmugglingToGunicorn_CVE_2024_1135_CVE_2024_6827(t *testing.T) {
	t.Parallel()
	s := startSmuggleStack(t)
	var ran, logged int
	s.seen(t, &ran, &logged)

	smug := "GET /dj/smuggled/ HTTP/1.1\r\nHost: x\r\n\r\n"
	smugPHP := "GET /smuggled.php HTTP/1.1\r\nHost: x\r\n\r\n"
	// The smuggled requests as one chunk: a chunked body to a parser that
	// honours the encoding, requests to one framing by Content-Length.
	hidden := smug + smugPHP
	chunk := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(hidden), hidden)
	post := "POST /dj/count/ HTTP/1.1\r\nHost: x\r\n"
	// refused: 400 or 501 from net/http or the gateway; accepted: Django
	// gets one POST of bodyLen bytes.
	const refused = -1
	type tc struct {
		name    string
		req     string
		bodyLen int
	}
	cve1135 := []tc{
		{"chunked, gzip", post + "Transfer-Encoding: chunked, gzip\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"chunked, chunked", post + "Transfer-Encoding: chunked, chunked\r\n\r\n" + chunk, refused},
		{"two fields chunked then identity", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"two fields identity then chunked", post + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"two fields chunked twice", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk, refused},
		{"TE and CL, smuggled in the chunk", post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk, len(hidden)},
		{"CL and TE, smuggled after the chunks", post + "Content-Length: " + strconv.Itoa(5+len(hidden)) + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, 0},
		{"CHUNKED in capitals", post + "Transfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + hidden, 3},
		{"chunked with spaces around", post + "Transfer-Encoding:    chunked   \r\n\r\n3\r\nabc\r\n0\r\n\r\n" + hidden, 3},
		{"chunked with tabs around", post + "Transfer-Encoding:\tchunked\t\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + hidden, 3},
		{"chunked with a vertical tab", post + "Transfer-Encoding: chunked\x0b\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"chunked with a NUL", post + "Transfer-Encoding: chunked\x00\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"space before the colon", post + "Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"chunk size with a plus", post + "Transfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n" + hidden, refused},
		{"chunk size 0x", post + "Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n" + hidden, refused},
		{"chunk with an extension", post + "Transfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\n\r\n" + hidden, 3},
		{"trailer after the last chunk", post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" + hidden, 3},
	}
	cve6827 := []tc{
		{"identity and CL", post + "Transfer-Encoding: identity\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"xchunked and CL", post + "Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"quoted chunked and CL", post + "Transfer-Encoding: \"chunked\"\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"chunked;q=1 and CL", post + "Transfer-Encoding: chunked;q=1\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"empty TE and CL", post + "Transfer-Encoding: \r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		{"folded TE and CL", post + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
		// HTTP/1.0 has no Transfer-Encoding: its framing is faulty (RFC
		// 9112 section 6.1), refused like nginx does, where net/http
		// would frame the body by the Content-Length.
		{"HTTP/1.0 TE.CL", "POST /dj/count/ HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk, refused},
	}
	for _, set := range []struct {
		cve   string
		cases []tc
	}{{"CVE-2024-1135", cve1135}, {"CVE-2024-6827", cve6827}} {
		t.Run(set.cve, func(t *testing.T) {
			for _, c := range set.cases {
				os.Remove(filepath.Join(s.root, "smuggled.ran"))
				before := len(s.plain.stderr.String())
				resp, closed := raw(t, s.plainAddr, c.req)
				django, gunicorn := s.seen(t, &ran, &logged)
				status := 0
				if strings.HasPrefix(resp, "HTTP/1.") && len(resp) >= 12 {
					status, _ = strconv.Atoi(resp[9:12])
				}
				if n := strings.Count(resp, "HTTP/1."); n != 1 || !closed {
					t.Errorf("%s: %d responses, connection closed %v; want one and a close:\n%s", c.name, n, closed, resp)
				}
				if strings.Contains(resp, "/dj/smuggled/") || strings.Contains(resp, "SMUGGLED") {
					t.Errorf("%s: a smuggled request was answered:\n%s", c.name, resp)
				}
				if _, err := os.Stat(filepath.Join(s.root, "smuggled.ran")); err == nil {
					t.Errorf("%s: the smuggled request ran in PHP", c.name)
				}
				if c.bodyLen == refused {
					if status != 400 && status != 501 {
						t.Errorf("%s: status %d, want 400 or 501:\n%s", c.name, status, resp)
					}
					if len(django) != 0 || len(gunicorn) != 0 {
						t.Errorf("%s: refused, yet Django ran %q and gunicorn logged %q", c.name, django, gunicorn)
					}
					since := func() string { return s.plain.stderr.String()[before:] }
					want := fmt.Sprintf(`"status":%d`, status)
					if log, ok := textWhen(since, func(log string) bool { return strings.Contains(log, want) }); !ok {
						t.Errorf("%s: the %d is not in the gateway's log:\n%s", c.name, status, log)
					}
					continue
				}
				want := fmt.Sprintf("POST /dj/count/ len=%d cl=%d te=-", c.bodyLen, c.bodyLen)
				if status != 200 || len(django) != 1 || django[0] != want || len(gunicorn) != 1 || !strings.Contains(gunicorn[0], `"POST /dj/count/ HTTP/1.1"`) {
					t.Errorf("%s: status %d; Django ran %q and gunicorn logged %q, want exactly %q", c.name, status, django, gunicorn, want)
				}
			}
		})
	}

	// The same framings toward PHP: FastCGI frames the body itself, so
	// php-fpm cannot be desynchronized, but the gateway must still read
	// no request out of a body and close after a chunked one.
	t.Run("PHP", func(t *testing.T) {
		for _, c := range append(cve1135, cve6827...) {
			os.Remove(filepath.Join(s.root, "smuggled.ran"))
			req := strings.Replace(c.req, "POST /dj/count/ ", "POST /echo.php ", 1)
			resp, closed := raw(t, s.plainAddr, req)
			django, _ := s.seen(t, &ran, &logged)
			if n := strings.Count(resp, "HTTP/1."); n != 1 || !closed {
				t.Errorf("%s: %d responses, connection closed %v; want one and a close:\n%s", c.name, n, closed, resp)
			}
			if _, err := os.Stat(filepath.Join(s.root, "smuggled.ran")); err == nil || strings.Contains(resp, "SMUGGLED") || len(django) != 0 {
				t.Errorf("%s: the smuggled request ran (Django: %q):\n%s", c.name, django, resp)
			}
			status := 0
			if strings.HasPrefix(resp, "HTTP/1.") && len(resp) >= 12 {
				status, _ = strconv.Atoi(resp[9:12])
			}
			switch {
			case c.bodyLen == refused && status != 400 && status != 501:
				t.Errorf("%s: status %d, want 400 or 501:\n%s", c.name, status, resp)
			case c.bodyLen != refused && (status != 200 || !strings.HasSuffix(resp, "len="+strconv.Itoa(c.bodyLen))):
				t.Errorf("%s: want 200 and len=%d:\n%s", c.name, c.bodyLen, resp)
			}
		}
	})

	t.Run("HTTP2Downgrade", func(t *testing.T) {
		h2 := func(fields ...testh2.Field) []testh2.Field {
			return append([]testh2.Field{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/dj/count/"}}, fields...)
		}
		for _, c := range []struct {
			name    string
			fields  []testh2.Field
			body    string
			bodyLen int
		}{
			{"CRLF in a field name", h2(testh2.Field{"x-a\r\ntransfer-encoding", "chunked"}), chunk, refused},
			{"CRLF in a field value", h2(testh2.Field{"x-a", "b\r\nTransfer-Encoding: chunked"}), chunk, refused},
			{"LF in a field value", h2(testh2.Field{"x-a", "b\nContent-Length: 4"}), chunk, refused},
			{"CR in a field value", h2(testh2.Field{"x-a", "b\rContent-Length: 4"}), chunk, refused},
			{"colon in a field name", h2(testh2.Field{"transfer-encoding:chunked", "1"}), chunk, refused},
			{"space in a field name", h2(testh2.Field{"transfer-encoding ", "chunked"}), chunk, refused},
			{"transfer-encoding field", h2(testh2.Field{"transfer-encoding", "chunked"}), chunk, refused},
			{"content-length over the body", h2(testh2.Field{"content-length", "200"}), chunk, refused},
			{"content-length under the body", h2(testh2.Field{"content-length", "4"}), chunk, refused},
			{"two content-lengths", h2(testh2.Field{"content-length", "4"}, testh2.Field{"content-length", strconv.Itoa(len(chunk))}), chunk, refused},
			{"request in :path", []testh2.Field{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"},
				{":path", "/dj/count/ HTTP/1.1\r\nHost: x\r\n\r\n" + smug}}, chunk, refused},
			{"content-length that matches", h2(testh2.Field{"content-length", strconv.Itoa(len(chunk))}), chunk, len(chunk)},
			{"no content-length", h2(), chunk, len(chunk)},
		} {
			res := testh2.Do(t, s.tlsAddr, c.fields, []byte(c.body))
			django, gunicorn := s.seen(t, &ran, &logged)
			if strings.Contains(res.Body, "/dj/smuggled/") {
				t.Errorf("%s: a smuggled request was answered: %+v", c.name, res)
			}
			if c.bodyLen == refused {
				if !res.Reset && res.Status != 400 {
					t.Errorf("%s: %+v, want 400 or a reset", c.name, res)
				}
				if len(django) != 0 || len(gunicorn) != 0 {
					t.Errorf("%s: refused, yet Django ran %q and gunicorn logged %q", c.name, django, gunicorn)
				}
				continue
			}
			want := fmt.Sprintf("POST /dj/count/ len=%d cl=%d te=-", c.bodyLen, c.bodyLen)
			if res.Status != 200 || len(django) != 1 || django[0] != want || len(gunicorn) != 1 {
				t.Errorf("%s: %+v; Django ran %q and gunicorn logged %q, want exactly %q", c.name, res, django, gunicorn, want)
			}
		}
	})
}

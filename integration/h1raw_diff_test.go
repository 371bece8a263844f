package integration

// Malformed, ambiguous and hostile HTTP/1.x, byte for byte, sent to Debian
// 12's nginx and to the gateway binary, both in front of one php-fpm and
// one gunicorn: the answers (status of each, in order), whether the
// connection ended, what a request pipelined after the odd one got (an
// answer to a request the client did not frame that way is a desync), and
// what PHP and Django saw of every request they ran.

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// h1DumpPHP answers with, and appends to LOGFILE, what PHP got: X-Case,
// method, target, CONTENT_LENGTH, the body (hex), the Host and the X-
// headers. noread.php never reads the body.
const h1DumpPHP = `<?php
$x = [];
foreach ($_SERVER as $k => $v) {
	if (is_string($v) && strncmp($k, 'HTTP_X_', 7) === 0 && $k !== 'HTTP_X_CASE') { $x[$k] = bin2hex($v); }
}
$o = ['id' => $_SERVER['HTTP_X_CASE'] ?? '', 'm' => $_SERVER['REQUEST_METHOD'], 'u' => bin2hex($_SERVER['REQUEST_URI']),
	'cl' => $_SERVER['CONTENT_LENGTH'] ?? '', 'h' => bin2hex($_SERVER['HTTP_HOST'] ?? ''),
	'body' => READBODY, 'x' => (object)$x];
$j = json_encode($o);
file_put_contents('LOGFILE', $j . "\n", FILE_APPEND | LOCK_EX);
header('Content-Type: application/json');
echo $j;
`

const h1DjangoSettings = `
SECRET_KEY = "h1raw-test-secret-key-0123456789-0123456789-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
MIDDLEWARE = []
ROOT_URLCONF = "h1proj.urls"
DATABASES = {}
`

// The same record as h1DumpPHP's, from Django's request.
const h1DjangoURLs = `
import fcntl, json, os
from django.urls import re_path
from django.http import HttpResponse

def record(request, read=True):
    x = {k: v.encode("latin-1").hex() for k, v in request.META.items() if k.startswith("HTTP_X_") and k != "HTTP_X_CASE"}
    o = {"id": request.META.get("HTTP_X_CASE", ""), "m": request.method,
        "u": request.META.get("RAW_URI", "").encode("latin-1").hex(),
        "cl": request.META.get("CONTENT_LENGTH", ""), "h": request.META.get("HTTP_HOST", "").encode("latin-1").hex(),
        "body": request.body.hex() if read else "", "x": x}
    j = json.dumps(o)
    with open(os.environ["SG_RUNLOG"], "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(j + "\n")
    return HttpResponse(j.encode(), content_type="application/json")

urlpatterns = [re_path(r"^dj/noread", lambda r: record(r, False)), re_path(r"^dj/", record)]
`

// h1Stack is nginx and the gateway in front of one php-fpm and one gunicorn.
type h1Stack struct {
	nginx, gw  string
	gwProc     *gwProc
	phpLog     string
	djangoLog  string
	nginxLog   func() string
	logsBefore [2]int // bytes of the two app logs already read
}

func startH1Stack(t *testing.T) *h1Stack {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "nginx", "gunicorn", "django")
	s := &h1Stack{}
	logDir := harness.PHPTempDir(t)
	s.phpLog = filepath.Join(logDir, "php.log")
	dump := strings.ReplaceAll(h1DumpPHP, "LOGFILE", s.phpLog)
	root := filepath.Join(t.TempDir(), "root")
	writeTree(t, root, map[string]string{
		"index.php":  strings.ReplaceAll(dump, "READBODY", "bin2hex(file_get_contents('php://input'))"),
		"info.php":   strings.ReplaceAll(dump, "READBODY", "bin2hex(file_get_contents('php://input'))"),
		"noread.php": strings.ReplaceAll(dump, "READBODY", "''"),
		"style.css":  "body { color: red; }\n",
		"up101.php":  "<?php http_response_code(101); header('Upgrade: websocket'); header('Connection: Upgrade'); echo 'after';",
	})
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 3})
	s.djangoLog = filepath.Join(t.TempDir(), "django.log")
	proj := djangoProject(t, "h1proj", h1DjangoSettings, h1DjangoURLs)
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: proj, App: "h1proj.wsgi:application",
		Env: []string{"SG_RUNLOG=" + s.djangoLog}, Workers: 1, Threads: 4})
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return `
    upstream h1django {
        server ` + g.Addr + `;
        keepalive 8;
    }
` + nginxPHPShop(addrs[0], root, fpm.Addr, `
        location /dj/ {
            proxy_pass http://h1django;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }`, "")
	})
	s.nginx = ng.Addrs[0]
	s.nginxLog = ng.Log
	s.gwProc = startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_PHP_MAX_CONNS=1",
		"SESSIONGATE_DJANGO_URL=" + g.URL(),
		"SESSIONGATE_DJANGO_PATHS=/dj/",
		"SESSIONGATE_READ_TIMEOUT=10s",
	})
	s.gw = strings.TrimPrefix(s.gwProc.URL, "http://")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})
	return s
}

// h1Case is one exchange: req is sent as it is, after "{P}" is replaced by
// the path under test (a PHP script, or a Django path) and "{ID}" by the
// exchange's id, which each request carries in X-Case followed by a letter;
// then, unless noSentinel, a last request with Connection: close ("z").
// "{LEN}" and "{HEX}" become the length, in decimal and hex, of the part
// between "[[" and "]]" (the brackets dropped).
type h1Case struct {
	name       string
	req        string
	php, dj    bool // run against the PHP path, the Django path
	noSentinel bool
}

// appRecord is what PHP or Django got of one request.
type appRecord struct {
	ID   string            `json:"id"`
	M    string            `json:"m"`
	U    string            `json:"u"`
	CL   string            `json:"cl"`
	H    string            `json:"h"`
	Body string            `json:"body"`
	X    map[string]string `json:"x"`
}

// show shows r with "{ID}" for the exchange's id, so that nginx's and
// the gateway's records of one case read alike.
func (r appRecord) show(id string) string {
	unhex := func(s string) string {
		b, err := hex.DecodeString(s)
		if err != nil {
			return "?" + s
		}
		if id != "" {
			b = []byte(strings.ReplaceAll(string(b), id, "{ID}"))
		}
		if len(b) > 80 {
			return fmt.Sprintf("%q...(%d bytes)", b[:40], len(b))
		}
		return strconv.Quote(string(b))
	}
	var b strings.Builder
	cl := r.CL
	if len(cl) > 20 {
		cl = fmt.Sprintf("%.6s...(%d bytes)", cl, len(cl))
	}
	fmt.Fprintf(&b, "%s{%s %s cl=%s", strings.TrimPrefix(r.ID, id), r.M, unhex(r.U), cl)
	if h := unhex(r.H); h != `"shop.example"` {
		fmt.Fprintf(&b, " h=%s", h)
	}
	fmt.Fprintf(&b, " body=%s", unhex(r.Body))
	keys := make([]string, 0, len(r.X))
	for k := range r.X {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "HTTP_X_FORWARDED_") {
			// Set by nginx and the gateway toward Django, not by the
			// cases (nginx_django_diff_test.go compares them).
			continue
		}
		fmt.Fprintf(&b, " %s=%s", k, unhex(r.X[k]))
	}
	b.WriteString("}")
	return b.String()
}

// h1Outcome is what one server did with an exchange.
type h1Outcome struct {
	answers []string // status of each response, with what the app said in it
	end     string   // closed, open (nothing more within the wait), or the bytes that were no response
	ran     []string // requests the app ran that no answer reported
}

func (o h1Outcome) String() string {
	s := strings.Join(o.answers, " ") + " | " + o.end
	if len(o.ran) > 0 {
		s += " | unanswered runs: " + strings.Join(o.ran, " ")
	}
	return s
}

// outcome is o with "{P}" for the path under test p, so that the PHP
// and the Django path of a case may read alike.
func (o h1Outcome) outcome(p string) string {
	return strings.ReplaceAll(o.String(), p, "{P}")
}

// h1Wait is how long an exchange waits for the next byte before it takes
// the connection for open. The gateway's SESSIONGATE_READ_TIMEOUT is
// longer, so that a body it waits for shows as open, not as its 408.
const h1Wait = 3 * time.Second

// exchange runs c on addr as id with path p.
func (s *h1Stack) exchange(t *testing.T, addr, p, id string, c h1Case) h1Outcome {
	t.Helper()
	req := c.req
	if !c.noSentinel {
		req += "GET {P}?last HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}z\r\nConnection: close\r\n\r\n"
	}
	req = strings.ReplaceAll(strings.ReplaceAll(req, "{P}", p), "{ID}", id)
	if i, j := strings.Index(req, "[["), strings.Index(req, "]]"); i >= 0 && j > i {
		n := j - i - 2
		req = req[:i] + req[i+2:j] + req[j+2:]
		req = strings.NewReplacer("{LEN}", strconv.Itoa(n), "{HEX}", strconv.FormatInt(int64(n), 16)).Replace(req)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	var o h1Outcome
	answered := map[string]bool{}
	br := bufio.NewReader(conn)
	for o.end == "" {
		// Nothing for h1Wait: the server waits for more, or keeps the
		// connection for another request.
		conn.SetReadDeadline(time.Now().Add(h1Wait))
		if _, err := br.Peek(1); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				o.end = "open"
			} else {
				// EOF, or a reset when the server closed with the
				// rest of the request unread.
				o.end = "closed"
			}
			break
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, _ := br.Peek(5); string(b) != "HTTP/" {
			rest, _ := io.ReadAll(io.LimitReader(br, 200))
			o.end = fmt.Sprintf("no status line: %.12q", rest)
			break
		}
		res, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			rest, _ := io.ReadAll(io.LimitReader(br, 200))
			o.end = fmt.Sprintf("no response: %.40q", rest)
			break
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		a := strconv.Itoa(res.StatusCode)
		if err != nil {
			a += "(body: " + err.Error() + ")"
		}
		var r appRecord
		if res.Header.Get("Content-Type") == "application/json" && json.Unmarshal(body, &r) == nil {
			a += r.show(id)
			answered[r.ID] = true
		}
		o.answers = append(o.answers, a)
	}
	for _, r := range s.newRecords(t) {
		if r.ID == "" && c.name == "HTTP/0.9" {
			o.ran = append(o.ran, r.show("")) // no header to carry an id
			continue
		}
		if !strings.HasPrefix(r.ID, id) || len(r.ID) != len(id)+1 {
			t.Errorf("%s: the app ran a request of another exchange, or without its id: %s", c.name, r.show(""))
			continue
		}
		if !answered[r.ID] {
			o.ran = append(o.ran, r.show(id))
		}
	}
	return o
}

// newRecords returns what the apps logged since the last call.
func (s *h1Stack) newRecords(t *testing.T) []appRecord {
	t.Helper()
	var out []appRecord
	for i, f := range []string{s.phpLog, s.djangoLog} {
		b, _ := os.ReadFile(f)
		if len(b) < s.logsBefore[i] {
			t.Fatalf("%s shrank", f)
		}
		text := string(b[s.logsBefore[i]:])
		// Only whole lines.
		end := strings.LastIndexByte(text, '\n') + 1
		s.logsBefore[i] += end
		for _, line := range strings.Split(text[:end], "\n") {
			if line == "" {
				continue
			}
			var r appRecord
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: %v: %q", f, err, line)
			}
			out = append(out, r)
		}
	}
	return out
}

// TestH1RawDiff sends each case of h1Cases, byte for byte, to nginx and
// to the gateway binary (startH1Stack), on the PHP path, the Django path or
// both, and compares what each did (h1Outcome). Every difference must be
// one of h1KnownDiffs, with both sides' outcomes exactly as listed, and
// each listed difference must still be seen for each case it names.
func TestH1RawDiff(t *testing.T) {
	t.Parallel()
	s := startH1Stack(t)
	seen := map[string]bool{}
	n := 0
	for _, c := range h1Cases() {
		for _, p := range []struct {
			on   bool
			path string
		}{{c.php, "/info.php"}, {c.dj, "/dj/x"}} {
			if !p.on {
				continue
			}
			n++
			no := s.exchange(t, s.nginx, p.path, "n"+strconv.Itoa(n), c).outcome(p.path)
			time.Sleep(10 * time.Millisecond)
			s.newRecords(t) // a late run of nginx's, which the gateway's would be blamed for
			gw := s.exchange(t, s.gw, p.path, "g"+strconv.Itoa(n), c).outcome(p.path)
			if no == gw {
				continue
			}
			known := false
			for i, k := range h1KnownDiffs {
				if slices.Contains(k.cases, c.name) && (k.path == "" || k.path == p.path) && k.nginx == no && k.gateway == gw {
					seen[strconv.Itoa(i)+c.name] = true
					known = true
					break
				}
			}
			if !known {
				t.Errorf("%s on %s: unexpected difference:\n  nginx:   %s\n  gateway: %s", c.name, p.path, no, gw)
			}
		}
	}
	for i, k := range h1KnownDiffs {
		for _, name := range k.cases {
			if !seen[strconv.Itoa(i)+name] {
				t.Errorf("%s: listed difference no longer seen (%s):\n  nginx:   %s\n  gateway: %s", name, k.why, k.nginx, k.gateway)
			}
		}
	}
}

// h1Diff is a way the gateway answers cases differently from nginx on
// purpose: both sides' outcomes (h1Outcome, with "{P}" for the path), on
// path ("" both).
type h1Diff struct {
	cases          []string
	path           string
	nginx, gateway string
	why            string
}

// Outcomes that recur in h1KnownDiffs.
const (
	h1PostA = `200a{POST "{P}" cl=3 body="abc"}`
	h1GetA  = `200a{GET "{P}" cl= body=""}`
	h1GetB  = `200b{GET "{P}" cl= body=""}`
	h1Last  = `200z{GET "{P}?last" cl= body=""}`
)

// h1KnownDiffs: README's rows on malformed HTTP/1.x, chunked and
// Content-Length requests, HTTP/1.0 and header limits.
var h1KnownDiffs = []h1Diff{
	{cases: []string{"CL then TE", "TE then CL"}, nginx: "400 | closed", gateway: h1PostA + " | closed",
		why: "Content-Length with chunked is framed by chunked (RFC 9112 section 6.3), and the connection closed"},
	{cases: []string{"CL.TE smuggle"}, nginx: "400 | closed", gateway: `200a{POST "{P}" cl=0 body=""} | closed`,
		why: "the same: the chunked body is empty, and what follows it is never read"},
	{cases: []string{"TE.CL smuggle"}, path: "/info.php", nginx: "400 | closed",
		gateway: `200a{POST "{P}" cl=69 body="GET {P}?smuggled HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}s\r\n\r\n"} | closed`,
		why:     "the same: the chunk is the body, as the client framed it"},
	{cases: []string{"TE.CL smuggle"}, path: "/dj/x", nginx: "400 | closed",
		gateway: `200a{POST "{P}" cl=65 body="GET {P}?smuggled HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}s\r\n\r\n"} | closed`,
		why:     "the same: the chunk is the body, as the client framed it"},
	{cases: []string{"CL twice equal"}, nginx: "400 | closed", gateway: h1PostA + " " + h1Last + " | closed",
		why: "a repeated identical Content-Length is that length (RFC 9112 section 6.3)"},
	{cases: []string{"TE chunked twice lines"}, nginx: "400 | closed", gateway: "501 | closed",
		why: "both refuse; net/http calls chunked applied twice unsupported"},
	{cases: []string{"TE vertical tab"}, nginx: "501 | closed", gateway: "400 | closed",
		why: "both refuse; net/http takes the vertical tab for a bad value"},
	{cases: []string{"TE tab chunked"}, nginx: "501 | closed", gateway: h1PostA + " | closed",
		why: "a tab is whitespace before a field value (RFC 9110 section 5.5); nginx 1.22 takes it for part of the coding"},
	{cases: []string{"TE Chunked", "TE CHUNKED", "TE chunked trailing space", "chunk leading zeros", "chunk extension",
		"chunk extension quoted", "chunk size trailing space", "last chunk extension", "last chunk 000", "trailer",
		"trailer Content-Length", "trailer Host", "trailer Transfer-Encoding", "trailer X-Case", "trailer bare LF", "trailer folded"},
		nginx: h1PostA + " " + h1Last + " | closed", gateway: h1PostA + " | closed",
		why: "the connection closes after a chunked body (README, HTTP/1.0 and chunked rows); trailer fields reach neither app"},
	{cases: []string{"chunked then smuggled"},
		nginx:   h1PostA + ` 200s{GET "{P}?smuggled" cl= body=""} ` + h1Last + " | closed",
		gateway: h1PostA + " | closed",
		why:     "the same"},
	{cases: []string{"pipelined after chunked body"}, nginx: h1PostA + " " + h1GetB + " " + h1Last + " | closed", gateway: h1PostA + " | closed",
		why: "the same"},
	{cases: []string{"GET chunked empty"}, path: "/info.php", nginx: `200a{GET "{P}" cl=0 body=""} ` + h1Last + " | closed",
		gateway: `200a{GET "{P}" cl=0 body=""} | closed`, why: "the same"},
	{cases: []string{"GET chunked empty"}, path: "/dj/x", nginx: `200a{GET "{P}" cl=0 body=""} ` + h1Last + " | closed",
		gateway: h1GetA + " | closed", why: "the same; an empty body reaches Django without a Content-Length"},
	{cases: []string{"static POST chunked pipelined"}, nginx: `405 200s{GET "{P}?smuggled" cl= body=""} ` + h1Last + " | closed",
		gateway: "405 | closed", why: "the same"},
	{cases: []string{"CL leading zeros"}, path: "/info.php", nginx: `200a{POST "{P}" cl=003 body="abc"} ` + h1Last + " | closed",
		gateway: h1PostA + " " + h1Last + " | closed", why: "CONTENT_LENGTH is the length the gateway read"},
	{cases: []string{"chunk space before extension", "chunk bare LF", "chunk size bare LF", "chunk data bare LF", "trailer no colon"},
		nginx: h1PostA + " " + h1Last + " | closed", gateway: "400 | closed",
		why: "net/http's chunked reader wants CRLF line ends (bare LF there is a smuggling vector, CVE-2025-22871), no whitespace before a chunk extension, and trailer lines with a colon"},
	{cases: []string{"chunk extension long"}, nginx: h1PostA + " " + h1Last + " | closed", gateway: "400 | closed",
		why: "net/http refuses a chunk line over 4 KiB"},
	{cases: []string{"chunk size 64 bits"}, nginx: "400 | closed", gateway: " | open",
		why: "a chunk size of 2^63 or more is read as a chunk still to come, until SESSIONGATE_READ_TIMEOUT's 408"},
	{cases: []string{"header without colon", "header name at", "header name non-ASCII", "two spaces after method", "HTTP/1.10",
		"empty lines before request", "request line trailing space"},
		nginx: h1GetA + " " + h1Last + " | closed", gateway: "400 | closed",
		why: "net/http refuses a malformed header line or request line, where nginx drops the line or reads past it; it skips empty lines before a request only after a POST"},
	{cases: []string{"CRLF after GET"}, nginx: h1GetA + " " + h1GetB + " " + h1Last + " | closed", gateway: h1GetA + " 400 | closed",
		why: "the same: empty lines after a GET"},
	{cases: []string{"CTL in value"}, nginx: `200a{GET "{P}" cl= body="" HTTP_X_A="a\x01b"} ` + h1Last + " | closed", gateway: "400 | closed",
		why: "net/http refuses a control character in a field value, which nginx passes to the app"},
	{cases: []string{"DEL in value"}, nginx: `200a{GET "{P}" cl= body="" HTTP_X_A="a\x7fb"} ` + h1Last + " | closed", gateway: "400 | closed",
		why: "the same"},
	{cases: []string{"absolute form other host"}, path: "/dj/x", nginx: h1GetA + " " + h1Last + " | closed",
		gateway: `200a{GET "{P}" cl= h="other.example" body=""} ` + h1Last + " | closed",
		why:     "the host of an absolute-form target is the request's (RFC 9112 section 3.2.2), where nginx's $http_host is the Host field (nginx_django_diff_test.go)"},
	{cases: []string{"OPTIONS *", "lower-case method", "asterisk GET", "bad Host with body", "header 20k"},
		nginx: "400 | closed", gateway: "400 " + h1Last + " | closed",
		why: "a request refused whose framing is sound leaves the connection open (its body read and dropped); header 20k on Django: gunicorn's 8190-byte field limit, through either"},
	{cases: []string{"CONNECT", "CONNECT with body", "CONNECT with body folded"}, path: "/info.php", nginx: "400 | closed", gateway: "405 " + h1Last + " | closed",
		why: "CONNECT gets 405 on every path (README, TRACE and CONNECT row); a body it declares is read and dropped, never taken for a request or a tunnel"},
	{cases: []string{"TRACE with body"}, nginx: "405 | closed", gateway: "405 " + h1Last + " | closed",
		why: "the same as for a refused request whose framing is sound"},
	{cases: []string{"HTTP/0.9"}, path: "/info.php", nginx: ` | no status line: "{\"id\":\"\",\"m\"" | unanswered runs: {GET "{P}" cl= body=""}`,
		gateway: "400 | closed", why: "HTTP/0.9 is not served"},
	{cases: []string{"HTTP/0.9"}, path: "/dj/x", nginx: ` | no status line: "{\"id\": \"\", \"" | unanswered runs: {GET "{P}" cl= h="" body=""}`,
		gateway: "400 | closed", why: "HTTP/0.9 is not served"},
	{cases: []string{"target 9k"}, path: "/info.php", nginx: "414 | closed",
		gateway: `200a{GET "{P}?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"...(9010 bytes) cl= body=""} ` + h1Last + " | closed",
		why:     "SESSIONGATE_MAX_HEADER_BYTES (64k by default) bounds the request line with the headers; nginx's large_client_header_buffers 8k each line"},
	{cases: []string{"target 9k"}, path: "/dj/x", nginx: "414 | closed", gateway: "400 " + h1Last + " | closed",
		why: "gunicorn's 4094-byte request line limit answers, through the gateway, however much of the line it left unread"},
	{cases: []string{"header 20k"}, path: "/info.php", nginx: "400 | closed",
		gateway: `200a{GET "{P}" cl= body="" HTTP_X_BIG="bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"...(20000 bytes)} ` + h1Last + " | closed",
		why:     "SESSIONGATE_MAX_HEADER_BYTES, as for target 9k"},
	{cases: []string{"101 headers"}, path: "/info.php", nginx: `200a{GET "{P}" cl= body="" HTTP_X_N="1"} ` + h1Last + " | closed", gateway: "431 | closed",
		why: "more than 100 header lines get 431 (README, large_client_header_buffers row)"},
	{cases: []string{"101 headers"}, path: "/dj/x", nginx: "400 " + h1Last + " | closed", gateway: "431 | closed",
		why: "the same; behind nginx, gunicorn's limit of 100 answers"},
	{cases: []string{"PHP answers 101"}, nginx: `101 | no status line: "afterHTTP/1." | unanswered runs: z{GET "{P}?last" cl= body=""}`,
		gateway: "502 " + h1Last + " | closed",
		why:     "php-fpm cannot switch protocols: a 101 from PHP is a bad answer, where nginx passes it on with what PHP printed after it, and the client takes the connection for switched"},
	{cases: []string{"Expect 100-continue without body"}, nginx: "100 " + h1GetA + " " + h1Last + " | closed", gateway: h1GetA + " " + h1Last + " | closed",
		why: "net/http sends 100 Continue only when a body is read"},
	{cases: []string{"Expect other"}, nginx: h1PostA + " " + h1Last + " | closed", gateway: "417 | closed",
		why: "net/http answers an expectation it cannot meet with 417 (RFC 9110 section 10.1.1)"},
	{cases: []string{"padded CL then folded"}, path: "/info.php", nginx: `200a{POST "{P}" cl=000000...(151 bytes) body="abc"} 400 | closed`,
		gateway: h1PostA + " | closed", why: "after a head the obs-fold check cannot follow, the connection closes (README, folded header row)"},
	{cases: []string{"padded CL then folded"}, path: "/dj/x", nginx: h1PostA + " 400 | closed", gateway: h1PostA + " | closed",
		why: "the same"},
	{cases: []string{"CRs after body then folded"}, nginx: h1PostA + " " + h1GetB + " 400 | closed", gateway: h1PostA + " " + h1GetB + " | closed",
		why: "the same"},
}

func h1Cases() []h1Case {
	head := "POST {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n"
	get := "GET {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n"
	smuggled := "GET {P}?smuggled HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}s\r\n\r\n"
	// A folded Content-Length: the body is smuggled to a front that
	// takes the line for a header of its own.
	folded := "POST {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}f\r\nX-A: y\r\n Content-Length: {LEN}\r\n\r\n[[" + smuggled + "]]"
	both := func(name, req string) h1Case { return h1Case{name: name, req: req, php: true, dj: true} }
	// The cases where a side waits for more (h1Wait each) run on one path.
	php := func(name, req string) h1Case { return h1Case{name: name, req: req, php: true} }
	chunked := func(name, body string) h1Case {
		return both(name, head+"Transfer-Encoding: chunked\r\n\r\n"+body)
	}
	return []h1Case{
		both("plain POST", head+"Content-Length: 3\r\n\r\nabc"),
		both("pipelined GET", get+"\r\n"+strings.ReplaceAll(get, "{ID}a", "{ID}b")+"\r\n"),

		// Content-Length and Transfer-Encoding together.
		both("CL then TE", head+"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("TE then CL", head+"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("CL.TE smuggle", head+"Content-Length: {LEN}\r\nTransfer-Encoding: chunked\r\n\r\n[[0\r\n\r\n"+smuggled+"]]"),
		both("TE.CL smuggle", head+"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{HEX}\r\n[["+smuggled+"]]\r\n0\r\n\r\n"),
		both("TE chunked, identity", head+"Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("TE identity, chunked", head+"Transfer-Encoding: identity, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("TE chunked twice lines", head+"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("TE chunked, chunked", head+"Transfer-Encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("TE xchunked with CL", head+"Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc"),
		both("TE Chunked", head+"Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("TE CHUNKED", head+"Transfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("TE tab chunked", head+"Transfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("TE chunked trailing space", head+"Transfer-Encoding: chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("TE space before colon", head+"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc"),
		both("TE vertical tab", head+"Transfer-Encoding: \vchunked\r\nContent-Length: 3\r\n\r\nabc"),
		both("TE identity with CL", head+"Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc"),
		both("TE gzip with CL", head+"Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc"),
		both("TE empty with CL", head+"Transfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc"),
		both("Transfer_Encoding with CL", head+"Transfer_Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc"),
		both("HTTP/1.0 TE and CL", "POST {P} HTTP/1.0\r\nHost: shop.example\r\nX-Case: {ID}a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		both("HTTP/1.0 TE only", "POST {P} HTTP/1.0\r\nHost: shop.example\r\nX-Case: {ID}a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),

		// Content-Length alone.
		both("CL twice equal", head+"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
		both("CL twice different", head+"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
		both("CL list equal", head+"Content-Length: 3, 3\r\n\r\nabc"),
		both("CL list different", head+"Content-Length: 3, 4\r\n\r\nabcd"),
		both("CL plus sign", head+"Content-Length: +3\r\n\r\nabc"),
		both("CL minus", head+"Content-Length: -3\r\n\r\nabc"),
		both("CL leading zeros", head+"Content-Length: 003\r\n\r\nabc"),
		both("CL hex", head+"Content-Length: 0x3\r\n\r\nabc"),
		both("CL trailing garbage", head+"Content-Length: 3a\r\n\r\nabc"),
		both("CL spaces", head+"Content-Length:   3  \r\n\r\nabc"),
		both("CL inner space", head+"Content-Length: 3 3\r\n\r\nabc"),
		both("CL empty", head+"Content-Length:\r\n\r\nabc"),
		both("CL huge", head+"Content-Length: 99999999999999999999\r\n\r\nabc"),
		php("CL max int64", head+"Content-Length: 9223372036854775807\r\n\r\nabc"),
		both("CL space before colon", head+"Content-Length : 3\r\n\r\nabc"),
		both("CL longer than body", head+"Content-Length: 10\r\n\r\nabc"),
		both("GET with body pipelined", get+"Content-Length: 3\r\n\r\nabc"),

		// Chunk syntax.
		chunked("chunk leading zeros", "0003\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk 0x", "0x3\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk extension", "3;a=b\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk extension quoted", "3;a=\"b;c\"\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk space before extension", "3 ;a=b\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk size trailing space", "3 \r\nabc\r\n0\r\n\r\n"),
		chunked("chunk size overflow", "10000000000000003\r\nabc\r\n0\r\n\r\n"),
		php("chunk size 64 bits", head+"Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk size negative", "-3\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk size plus", "+3\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk data short", "5\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk data long", "2\r\nabc\r\n0\r\n\r\n"),
		chunked("chunk bare LF", "3\nabc\n0\n\n"),
		chunked("chunk size bare LF", "3\nabc\r\n0\r\n\r\n"),
		chunked("chunk data bare LF", "3\r\nabc\n0\r\n\r\n"),
		chunked("chunk bare CR", "3\rabc\r\n0\r\n\r\n"),
		chunked("chunk no CRLF after data", "3\r\nabc0\r\n\r\n"),
		chunked("chunk last missing", "3\r\nabc\r\n"),
		chunked("last chunk extension", "3\r\nabc\r\n0;x=y\r\n\r\n"),
		chunked("last chunk 000", "3\r\nabc\r\n000\r\n\r\n"),
		chunked("trailer", "3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"),
		chunked("trailer Content-Length", "3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n"),
		chunked("trailer Host", "3\r\nabc\r\n0\r\nHost: evil.example\r\n\r\n"),
		chunked("trailer Transfer-Encoding", "3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
		chunked("trailer X-Case", "3\r\nabc\r\n0\r\nX-Injected: 1\r\n\r\n"),
		chunked("trailer bare LF", "3\r\nabc\r\n0\r\nX-Trailer: t\n\r\n"),
		chunked("trailer folded", "3\r\nabc\r\n0\r\nX-Trailer: t\r\n u\r\n\r\n"),
		chunked("trailer no colon", "3\r\nabc\r\n0\r\ngarbage\r\n\r\n"),
		chunked("chunk extension long", "3;"+strings.Repeat("x", 8000)+"\r\nabc\r\n0\r\n\r\n"),
		chunked("chunked then smuggled", "3\r\nabc\r\n0\r\n\r\n"+smuggled),

		// Header lines.
		both("space before colon", get+"X-A : 1\r\n\r\n"),
		both("empty header name", get+": x\r\n\r\n"),
		both("header without colon", get+"garbage\r\n\r\n"),
		both("NUL in value", get+"X-A: a\x00b\r\n\r\n"),
		both("CTL in value", get+"X-A: a\x01b\r\n\r\n"),
		both("DEL in value", get+"X-A: a\x7fb\r\n\r\n"),
		both("bare CR in value", get+"X-A: a\rb\r\n\r\n"),
		both("header bare LF", get+"X-A: 1\n\r\n"),
		both("all bare LF", "GET {P} HTTP/1.1\nHost: shop.example\nX-Case: {ID}a\n\n"),
		both("request line bare LF", "GET {P} HTTP/1.1\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("bare CR line end", get+"X-A: 1\rX-B: 2\r\n\r\n"),
		both("obs-fold", get+"X-A: 1\r\n 2\r\n\r\n"),
		both("header name space", get+"X A: 1\r\n\r\n"),
		both("header name at", get+"X@A: 1\r\n\r\n"),
		both("header name non-ASCII", get+"X-\xc3\xa9: 1\r\n\r\n"),
		both("header value non-ASCII", get+"X-A: caf\xc3\xa9\r\n\r\n"),
		both("header value latin-1", get+"X-A: caf\xe9\r\n\r\n"),
		both("header value tab", get+"X-A: a\tb\r\n\r\n"),
		both("Host twice equal", "GET {P} HTTP/1.1\r\nHost: shop.example\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("Host twice different", "GET {P} HTTP/1.1\r\nHost: shop.example\r\nHost: evil.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("Host missing", "GET {P} HTTP/1.1\r\nX-Case: {ID}a\r\n\r\n"),
		both("absolute form other host", "GET http://other.example{P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("absolute form https", "GET https://shop.example{P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("absolute form ftp", "GET ftp://shop.example{P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("NUL in target", "GET {P}?a=\x00 HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("CTL in target", "GET {P}?a=\x01 HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("DEL in target", "GET {P}?a=\x7f HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("tab in target", "GET {P}?a=\tb HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("two spaces after method", "GET  {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("space in target", "GET {P}?a b HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("raw non-ASCII target", "GET {P}?a=\xff HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),

		// Request lines.
		{name: "OPTIONS *", req: "OPTIONS * HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n", php: true},
		{name: "CONNECT with body", req: "CONNECT shop.example:443 HTTP/1.1\r\nHost: shop.example:443\r\nX-Case: {ID}a\r\nContent-Length: {LEN}\r\n\r\n[[" + smuggled + "]]", php: true},
		{name: "CONNECT with body folded", req: "CONNECT shop.example:443 HTTP/1.1\r\nHost: shop.example:443\r\nX-Case: {ID}a\r\nContent-Length: {LEN}\r\n\r\n[[" + folded + "]]", php: true},
		{name: "CONNECT", req: "CONNECT shop.example:443 HTTP/1.1\r\nHost: shop.example:443\r\nX-Case: {ID}a\r\n\r\n", php: true},
		both("HTTP/0.9", "GET {P}\r\n"),
		both("HTTP/1.2", "GET {P} HTTP/1.2\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("HTTP/1.10", "GET {P} HTTP/1.10\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("HTTP/2.0", "GET {P} HTTP/2.0\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("HTTP/3.0", "GET {P} HTTP/3.0\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("http/1.1 lower case", "GET {P} http/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("HTTP/01.1", "GET {P} HTTP/01.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		{name: "h2 preface", req: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", php: true},
		both("lower-case method", "get {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("unknown method", "FOO {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("unknown method with body", "FOO {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\nContent-Length: 3\r\n\r\nabc"),
		both("long method", strings.Repeat("M", 300)+" {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("method with slash", "GE/T {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("target 9k", "GET {P}?"+strings.Repeat("a", 9000)+" HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("target 70k", "GET {P}?"+strings.Repeat("a", 70000)+" HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		// gunicorn answers 400 after 4 KiB of the line and closes: the
		// rest cannot be written, and its answer is read all the same.
		both("target 500k", "GET {P}?"+strings.Repeat("a", 500000)+" HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("header 20k", get+"X-Big: "+strings.Repeat("b", 20000)+"\r\n\r\n"),
		both("101 headers", get+strings.Repeat("X-N: 1\r\n", 101)+"\r\n"),
		both("empty lines before request", "\r\n\r\n"+get+"\r\n"),

		// Expect.
		both("Expect 100-continue with body", head+"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"),
		both("Expect 100-continue without body", get+"Expect: 100-continue\r\n\r\n"),
		both("Expect other", head+"Expect: something-else\r\nContent-Length: 3\r\n\r\nabc"),
		both("Expect 100-continue HTTP/1.0", "POST {P} HTTP/1.0\r\nHost: shop.example\r\nX-Case: {ID}a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"),

		// Pipelining and connections.
		both("pipelined after body", head+"Content-Length: 3\r\n\r\nabc"+strings.ReplaceAll(get, "{ID}a", "{ID}b")+"\r\n"),
		both("pipelined after chunked body", head+"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+strings.ReplaceAll(get, "{ID}a", "{ID}b")+"\r\n"),
		{name: "body not read, pipelined", req: "POST /noread.php HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\nContent-Length: 5\r\n\r\nabcde" + strings.ReplaceAll(get, "{ID}a", "{ID}b") + "\r\n", php: true},
		{name: "Django body not read, pipelined", req: "POST /dj/noread HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\nContent-Length: 5\r\n\r\nabcde" + strings.ReplaceAll(get, "{ID}a", "{ID}b") + "\r\n", dj: true},
		both("Connection close", get+"Connection: close\r\n\r\n"),
		both("padded CL then folded", head+"Content-Length: "+strings.Repeat("0", 150)+"3\r\n\r\nabc"+folded),
		both("CRs after body then folded", head+"Content-Length: 3\r\n\r\nabc\r\r\n"+strings.ReplaceAll(get, "{ID}a", "{ID}b")+"\r\n"+folded),
		both("CL 3 and 03", head+"Content-Length: 3\r\nContent-Length: 03\r\n\r\nabc"),
		both("GET chunked empty", get+"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
		both("asterisk GET", "GET * HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("request line trailing space", "GET {P} HTTP/1.1 \r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("CTL in Host", "GET {P} HTTP/1.1\r\nHost: shop.exa\x01mple\r\nX-Case: {ID}a\r\n\r\n"),
		both("CRLF after body", head+"Content-Length: 3\r\n\r\nabc\r\n"+strings.ReplaceAll(get, "{ID}a", "{ID}b")+"\r\n"),
		both("CRLF after GET", get+"\r\n\r\n"+strings.ReplaceAll(get, "{ID}a", "{ID}b")+"\r\n"),
		both("LF after body", head+"Content-Length: 3\r\n\r\nabc\n"+strings.ReplaceAll(get, "{ID}a", "{ID}b")+"\r\n"),
		{name: "static POST body pipelined", req: "POST /style.css HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\nContent-Length: {LEN}\r\n\r\n[[" + smuggled + "]]", php: true},
		{name: "static POST chunked pipelined", req: "POST /style.css HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\nTransfer-Encoding: chunked\r\n\r\n{HEX}\r\n[[" + smuggled + "]]\r\n0\r\n\r\n" + smuggled, php: true},
		{name: "static POST Expect body sent", req: "POST /style.css HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\nExpect: 100-continue\r\nContent-Length: {LEN}\r\n\r\n[[" + smuggled + "]]", php: true},
		php("Expect over max body, body sent", head+"Expect: 100-continue\r\nContent-Length: 2000000\r\n\r\n"+smuggled),
		php("over max body, smuggled", head+"Content-Length: 2000000\r\n\r\n"+smuggled),
		both("TRACE with body", "TRACE {P} HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\nContent-Length: {LEN}\r\n\r\n[["+smuggled+"]]"),
		both("bad Host with body", "POST {P} HTTP/1.1\r\nHost: a..b\r\nX-Case: {ID}a\r\nContent-Length: {LEN}\r\n\r\n[["+smuggled+"]]"),
		both("HTTP/1.0 keep-alive", "GET {P} HTTP/1.0\r\nHost: shop.example\r\nX-Case: {ID}a\r\nConnection: keep-alive\r\n\r\n"),
		both("HTTP/1.0", "GET {P} HTTP/1.0\r\nHost: shop.example\r\nX-Case: {ID}a\r\n\r\n"),
		both("Upgrade h2c", get+"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"),
		{name: "PHP answers 101", req: "GET /up101.php HTTP/1.1\r\nHost: shop.example\r\nX-Case: {ID}a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", php: true},
		both("Upgrade websocket", get+"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
	}
}

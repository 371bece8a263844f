package integration

// A differential test of HTTP/2: the same frames sent to Debian 12's
// nginx 1.22 (listen ... ssl http2, fastcgi to php-fpm, proxy_pass to
// gunicorn) and to the gateway on TLS, both in front of one php-fpm and
// one gunicorn, and what PHP and Django saw, the status and the
// response's header fields compared.

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testh2"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

// h2DiffRespPHP answers ?c=NAME with a response a PHP script may make
// that HTTP/2 frames differently from HTTP/1.1.
const h2DiffRespPHP = `<?php switch ($_GET['c'] ?? '') {
case 'cookies': setcookie('a', '1'); setcookie('b', '2'); setcookie('c', '3', ['httponly' => true]); echo 'k'; break;
case 'flush': for ($i = 0; $i < 3; $i++) { echo "part$i\n"; flush(); usleep(100000); } break;
case 'connection': header('Connection: close'); echo 'c'; break;
case 'keepalive': header('Keep-Alive: timeout=5'); echo 'c'; break;
case 'te': header('Transfer-Encoding: chunked'); echo 'c'; break;
case 'upgrade': header('Upgrade: h2c'); echo 'c'; break;
case 'proxyconn': header('Proxy-Connection: keep-alive'); echo 'c'; break;
case 'upper': header('X-UPPER-Case: v'); echo 'c'; break;
case 'big': header('X-Big: ' . str_repeat('b', 12000)); echo 'c'; break;
case 'huge': for ($i = 0; $i < 8; $i++) { header("X-Huge-$i: " . str_repeat('h', 7000)); } echo 'c'; break;
case 'early': http_response_code(103); echo 'c'; break;
case 'ctl': header("X-Ctl: a\x01b"); echo 'c'; break;
case 'status': header('Status: 299 Odd'); echo 'c'; break;
case 'badname': header('X Bad: v'); echo 'c'; break;
case 'colon': header('X(Bad): v'); echo 'c'; break;
case 'wsval': header("X-Ws: \tv\t"); echo 'c'; break;
case 'cllong': header('Content-Length: 100'); echo 'short'; break;
case 'clshort': header('Content-Length: 2'); echo 'longer'; break;
case 'twocl': header('Content-Length: 5'); header('Content-Length: 6', false); echo 'abcdef'; break;
case 'empty': header('X-E:'); echo 'c'; break;
}`

// h2DiffStack is nginx and the gateway in front of one php-fpm and one
// gunicorn, both on TLS with HTTP/2.
type h2DiffStack struct {
	nginx, gw string
	gwp       *gwProc
	access    string // nginx's access log: "$status $request_uri"
	tmp       string // a directory PHP may write (harness.PHPTempDir)
}

// startH2Diff starts php-fpm on a site with the dump script (diffDumpPHP)
// as dump.php and index.php, h2DiffRespPHP as resp.php and files, a
// gunicorn serving echoWSGI, nginx with one server block (listen ssl
// http2, Debian's PHP location, /dj/ proxied as Django's guide does) and
// the gateway with env added.
func startH2Diff(t *testing.T, files map[string]string, env ...string) *h2DiffStack {
	t.Helper()
	return startH2DiffApp(t, files, echoWSGI, env...)
}

// startH2DiffApp is startH2Diff with app as gunicorn's WSGI application.
func startH2DiffApp(t *testing.T, files map[string]string, app string, env ...string) *h2DiffStack {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "nginx", "gunicorn")
	s := &h2DiffStack{tmp: harness.PHPTempDir(t)}
	dump := strings.ReplaceAll(diffDumpPHP, "DUMPDIR", s.tmp)
	root := filepath.Join(t.TempDir(), "root")
	site := map[string]string{"dump.php": dump, "index.php": dump, "resp.php": h2DiffRespPHP}
	for k, v := range files {
		site[k] = v
	}
	writeTree(t, root, site)
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "echoapp.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: dir, App: "echoapp:application", Workers: 1, Threads: 4})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	cert, key := testtls.Pair(t)
	s.access = filepath.Join(t.TempDir(), "access.log")
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return "    log_format h2d '$status $request_uri';\n" + nginxPHPShop(addrs[0]+" ssl http2", root, fpm.Addr, `ssl_certificate `+cert+`;
        ssl_certificate_key `+key+`;
        access_log `+s.access+` h2d;
        client_max_body_size 1m;

        location ^~ /dj/ {
            proxy_pass `+g.URL()+`;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }`, "")
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
		}
	})
	s.nginx = ng.Addrs[0]
	s.gwp = startBinary(t, buildGateway(t), append([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_DJANGO_URL=" + g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/",
		"SESSIONGATE_ACCESS_LOG=on", "SESSIONGATE_PHP_MAX_CONNS=2",
		"SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + key,
	}, env...))
	s.gw = strings.TrimPrefix(s.gwp.URL, "http://")
	return s
}

// h2dCase is one request as raw frames on stream 1.
type h2dCase struct {
	name   string
	frames func(target string) [][]byte
	// want are entries both servers must give the app: "php:KEY" in
	// PHP's $_SERVER (or _body, _post...), "dj:KEY" in Django's environ.
	want map[string]string
}

func (c h2dCase) wanting(want map[string]string) h2dCase {
	c.want = want
	return c
}

// h2dFields are the pseudo-headers of a request for target on
// shop.example, then extra.
func h2dFields(method, target string, extra ...testh2.Field) []testh2.Field {
	return append([]testh2.Field{{":method", method}, {":scheme", "https"}, {":authority", "shop.example"}, {":path", target}}, extra...)
}

// h2dHeaders is one HEADERS frame on stream 1 with fields, ending the
// stream if end.
func h2dHeaders(fields []testh2.Field, end bool) []byte {
	flags := byte(testh2.FlagEndHeaders)
	if end {
		flags |= testh2.FlagEndStream
	}
	return testh2.Frame(testh2.TypeHeaders, flags, 1, testh2.Block(fields))
}

// h2dData is one DATA frame on stream 1.
func h2dData(b string, end bool) []byte {
	flags := byte(0)
	if end {
		flags = testh2.FlagEndStream
	}
	return testh2.Frame(testh2.TypeData, flags, 1, []byte(b))
}

func h2dGet(name string, extra ...testh2.Field) h2dCase {
	return h2dCase{name: name, frames: func(target string) [][]byte { return [][]byte{h2dHeaders(h2dFields("GET", target, extra...), true)} }}
}

func h2dRaw(name string, fields func(target string) []testh2.Field) h2dCase {
	return h2dCase{name: name, frames: func(target string) [][]byte { return [][]byte{h2dHeaders(fields(target), true)} }}
}

func h2dPost(name, body string, extra ...testh2.Field) h2dCase {
	return h2dCase{name: name, frames: func(target string) [][]byte {
		return [][]byte{h2dHeaders(h2dFields("POST", target, extra...), false), h2dData(body, true)}
	}}
}

func h2dCases() []h2dCase {
	noAuth := func(target string, extra ...testh2.Field) []testh2.Field {
		return append([]testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":path", target}}, extra...)
	}
	return []h2dCase{
		h2dGet("plain").wanting(map[string]string{"php:SERVER_PROTOCOL": "HTTP/2.0", "php:HTTPS": "on", "php:REQUEST_SCHEME": "https",
			"php:HTTP_HOST": "shop.example", "php:REQUEST_URI": "/dump.php?q=1", "dj:HTTP_HOST": "shop.example", "dj:wsgi.url_scheme": "https"}),
		{name: "padded headers with priority", frames: func(target string) [][]byte {
			// PADDED (0x8) and PRIORITY (0x20): pad length, stream
			// dependency and weight before the block, padding after.
			p := append([]byte{4, 0, 0, 0, 0, 15}, testh2.Block(h2dFields("GET", target))...)
			p = append(p, 0, 0, 0, 0)
			return [][]byte{testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream|0x8|0x20, 1, p)}
		}},
		{name: "headers in continuation", frames: func(target string) [][]byte {
			b := testh2.Block(h2dFields("GET", target, testh2.Field{"x-a", "1"}))
			return [][]byte{testh2.Frame(testh2.TypeHeaders, testh2.FlagEndStream, 1, b[:10]),
				testh2.Frame(testh2.TypeContinuation, 0, 1, b[10:20]), testh2.Frame(testh2.TypeContinuation, testh2.FlagEndHeaders, 1, b[20:])}
		}},
		h2dRaw("host field only", func(target string) []testh2.Field { return noAuth(target, testh2.Field{"host", "shop.example"}) }),
		h2dRaw("neither authority nor host", func(target string) []testh2.Field { return noAuth(target) }),
		h2dRaw("userinfo in authority", func(target string) []testh2.Field {
			return []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "user@shop.example"}, {":path", target}}
		}),
		h2dGet("host field same", testh2.Field{"host", "shop.example"}),
		h2dGet("host field other", testh2.Field{"host", "other.example"}),
		h2dGet("cookie fields", testh2.Field{"cookie", "a=1"}, testh2.Field{"cookie", "b=2"}, testh2.Field{"cookie", "c=3; d=4"}).wanting(map[string]string{
			"php:HTTP_COOKIE": "a=1; b=2; c=3; d=4", "php:_cookie": `{"a":"1","b":"2","c":"3","d":"4"}`, "dj:HTTP_COOKIE": "a=1; b=2; c=3; d=4"}),
		h2dGet("upper-case name", testh2.Field{"X-Upper", "1"}),
		h2dGet("connection", testh2.Field{"connection", "keep-alive"}),
		h2dGet("keep-alive", testh2.Field{"keep-alive", "timeout=5"}),
		h2dGet("proxy-connection", testh2.Field{"proxy-connection", "keep-alive"}),
		h2dGet("transfer-encoding", testh2.Field{"transfer-encoding", "chunked"}),
		h2dGet("upgrade", testh2.Field{"upgrade", "websocket"}),
		h2dGet("te trailers", testh2.Field{"te", "trailers"}),
		h2dGet("te gzip", testh2.Field{"te", "gzip"}),
		h2dGet("pseudo after regular", testh2.Field{"x-a", "1"}, testh2.Field{":foo", "1"}),
		h2dGet("unknown pseudo", testh2.Field{":foo", "1"}),
		h2dRaw("pseudo after field", func(target string) []testh2.Field {
			return []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {"x-a", "1"}, {":authority", "shop.example"}, {":path", target}}
		}),
		h2dRaw("path twice", func(target string) []testh2.Field { return h2dFields("GET", target, testh2.Field{":path", target}) }),
		h2dRaw("no path", func(string) []testh2.Field {
			return []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "shop.example"}}
		}),
		h2dRaw("empty path", func(string) []testh2.Field { return h2dFields("GET", "") }),
		h2dRaw("path star", func(string) []testh2.Field { return h2dFields("OPTIONS", "*") }),
		h2dRaw("absolute path", func(target string) []testh2.Field { return h2dFields("GET", "https://shop.example"+target) }),
		h2dRaw("relative path", func(target string) []testh2.Field { return h2dFields("GET", strings.TrimPrefix(target, "/")) }),
		h2dRaw("double slash", func(target string) []testh2.Field { return h2dFields("GET", "/"+target) }),
		h2dRaw("fragment", func(target string) []testh2.Field { return h2dFields("GET", target+"#frag") }),
		h2dRaw("control character in the query", func(target string) []testh2.Field { return h2dFields("GET", target+"&a=\x01") }),
		h2dRaw("no method", func(target string) []testh2.Field {
			return []testh2.Field{{":scheme", "https"}, {":authority", "shop.example"}, {":path", target}}
		}),
		h2dRaw("no scheme", func(target string) []testh2.Field {
			return []testh2.Field{{":method", "GET"}, {":authority", "shop.example"}, {":path", target}}
		}),
		h2dRaw("scheme http", func(target string) []testh2.Field {
			return []testh2.Field{{":method", "GET"}, {":scheme", "http"}, {":authority", "shop.example"}, {":path", target}}
		}),
		h2dRaw("connect", func(string) []testh2.Field {
			return []testh2.Field{{":method", "CONNECT"}, {":authority", "shop.example:443"}}
		}),
		h2dRaw("connect with path", func(target string) []testh2.Field { return h2dFields("CONNECT", target) }),
		h2dRaw("unknown method", func(target string) []testh2.Field { return h2dFields("PROPFIND", target) }),
		h2dRaw("odd method", func(target string) []testh2.Field { return h2dFields("FROB", target) }),
		h2dRaw("lower-case method", func(target string) []testh2.Field { return h2dFields("get", target) }),
		h2dPost("post without length", "a=1&b=2", testh2.Field{"content-type", "application/x-www-form-urlencoded"}).wanting(map[string]string{
			"php:CONTENT_LENGTH": "7", "php:_body": "a=1&b=2", "php:_post": `{"a":"1","b":"2"}`, "dj:CONTENT_LENGTH": "7"}),
		h2dPost("post with length", "a=1&b=2", testh2.Field{"content-type", "application/x-www-form-urlencoded"}, testh2.Field{"content-length", "7"}),
		h2dPost("post length short", "a=1&b=2", testh2.Field{"content-length", "5"}),
		h2dPost("post length long", "a=1&b=2", testh2.Field{"content-length", "20"}),
		h2dRaw("post end_stream on headers", func(target string) []testh2.Field { return h2dFields("POST", target) }),
		h2dRaw("post end_stream on headers with length", func(target string) []testh2.Field {
			return h2dFields("POST", target, testh2.Field{"content-length", "5"})
		}),
		h2dPost("length abc, empty data", "", testh2.Field{"content-length", "abc"}),
		h2dPost("two lengths", "abc", testh2.Field{"content-length", "3"}, testh2.Field{"content-length", "3"}),
		h2dPost("length plus", "abc", testh2.Field{"content-length", "+3"}),
		h2dPost("length list", "abc", testh2.Field{"content-length", "3, 3"}),
		h2dRaw("absolute path other host", func(target string) []testh2.Field { return h2dFields("GET", "https://evil.example"+target) }),
		h2dRaw("post end_stream on headers length 0", func(target string) []testh2.Field {
			return h2dFields("POST", target, testh2.Field{"content-length", "0"})
		}),
		{name: "post with trailers", frames: func(target string) [][]byte {
			return [][]byte{h2dHeaders(h2dFields("POST", target, testh2.Field{"content-type", "text/plain"}), false), h2dData("abc", false),
				h2dHeaders([]testh2.Field{{"x-trailer", "1"}}, true)}
		}},
		{name: "post with pseudo in trailers", frames: func(target string) [][]byte {
			return [][]byte{h2dHeaders(h2dFields("POST", target), false), h2dData("abc", false),
				h2dHeaders([]testh2.Field{{":path", "/x"}}, true)}
		}},
	}
}

// h2dAnswer is what one server did with a case on one target.
type h2dAnswer struct {
	out  testh2.Outcome
	seen map[string]string // what PHP or Django saw, nil when neither ran
}

// outcome is the answer's shape: the status, or how the stream ended
// without one ("reset PROTOCOL_ERROR", "goaway PROTOCOL_ERROR").
func (a h2dAnswer) outcome() string {
	names := map[uint32]string{0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR", 8: "CANCEL"}
	switch {
	case a.out.Reset && a.out.GoAway && a.out.GoAwayCode != 0:
		return "goaway " + names[a.out.GoAwayCode]
	case a.out.Reset:
		return "reset " + names[a.out.ResetCode]
	}
	return strconv.Itoa(a.out.Status)
}

// sendH2Case sends c for target on a new connection to addr; the dump
// script and echoWSGI answer with what the app saw as JSON.
func sendH2Case(t *testing.T, addr string, c h2dCase, target string) h2dAnswer {
	t.Helper()
	a := h2dAnswer{out: testh2.DoFrames(t, addr, c.frames(target)...)}
	if a.out.Status == 200 {
		var m map[string]any
		if err := json.Unmarshal([]byte(a.out.Body), &m); err != nil {
			t.Fatalf("%s %s: %v: %q", c.name, target, err, a.out.Body)
		}
		a.seen = map[string]string{}
		for k, v := range m {
			a.seen[k] = fmt.Sprint(v)
		}
	}
	return a
}

// h2dDiff is one way nginx and the gateway answered a case differently:
// key "outcome" (n and g are outcome()s) or an entry of what the app saw.
type h2dDiff struct {
	c          h2dCase
	target     string
	key        string
	n, g       string
	nok, gok   bool
	nAns, gAns h2dAnswer
}

func (d h2dDiff) String() string {
	return fmt.Sprintf("%s (%s): %s: nginx %s, gateway %s", d.c.name, d.target, d.key, show(d.n, d.nok), show(d.g, d.gok))
}

// compareH2 lists how n and g differ; the peers' ports are left out.
func compareH2(c h2dCase, target string, n, g h2dAnswer) []h2dDiff {
	if no, gout := n.outcome(), g.outcome(); no != gout || (n.seen == nil) != (g.seen == nil) {
		return []h2dDiff{{c: c, target: target, key: "outcome", n: no, g: gout, nok: true, gok: true, nAns: n, gAns: g}}
	}
	var diffs []h2dDiff
	for _, k := range unionKeys(n.seen, g.seen) {
		if k == "REMOTE_PORT" || k == "SERVER_PORT" || k == "DOCUMENT_ROOT" && n.seen[k] == g.seen[k] {
			continue
		}
		nv, nok := n.seen[k]
		gv, gok := g.seen[k]
		if nv != gv || nok != gok {
			diffs = append(diffs, h2dDiff{c: c, target: target, key: k, n: nv, g: gv, nok: nok, gok: gok, nAns: n, gAns: g})
		}
	}
	return diffs
}

// h2ConnFields are the connection-specific fields RFC 9113 section 8.2.2
// makes a request malformed with (TE but "trailers").
var h2ConnFields = map[string]bool{"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true, "upgrade": true}

// h2KnownDiffs are the differences from nginx the gateway means to make
// over HTTP/2, as README's row on listen ... ssl http2 says.
var h2KnownDiffs = []knownDiff[h2dDiff]{
	{"PATH_INFO and REMOTE_USER unset when there is none (nginx: empty)", func(d h2dDiff) bool {
		return (d.key == "PATH_INFO" || d.key == "REMOTE_USER") && d.nok && d.n == "" && !d.gok
	}},
	{"a fragment in :path is not written into gunicorn's request line (nginx passes it; gunicorn's PATH_INFO and QUERY_STRING leave it out either way)", func(d h2dDiff) bool {
		return d.key == "RAW_URI" && d.c.name == "fragment" && d.n == d.target+"#frag" && d.g == d.target
	}},
	{"SERVER_SOFTWARE names the gateway", func(d h2dDiff) bool {
		return d.key == "SERVER_SOFTWARE" && strings.HasPrefix(d.n, "nginx/") && d.g == "sessiongate (nginx-compatible)"
	}},
	{"Django is told the host in X-Forwarded-Host (README, Django row)", func(d h2dDiff) bool {
		return d.key == "HTTP_X_FORWARDED_HOST" && !d.nok && d.g == d.gAns.seen["HTTP_HOST"]
	}},
	{"Content-Type and Content-Length reach PHP only as CONTENT_TYPE and CONTENT_LENGTH", func(d h2dDiff) bool {
		return (d.key == "HTTP_CONTENT_TYPE" || d.key == "HTTP_CONTENT_LENGTH") && d.nok && !d.gok &&
			d.n == d.nAns.seen[strings.TrimPrefix(d.key, "HTTP_")]
	}},
	{"TE: trailers is hop-by-hop to PHP and passed on to Django (nginx: the other way round)", func(d h2dDiff) bool {
		return d.key == "HTTP_TE" && d.c.name == "te trailers" &&
			(d.n == "trailers" && !d.gok && strings.HasPrefix(d.target, "/dump.php") ||
				!d.nok && d.g == "trailers" && strings.HasPrefix(d.target, "/dj/"))
	}},
	{"a POST without DATA reaches Django with Content-Length: 0 (nginx: none)", func(d h2dDiff) bool {
		return d.key == "CONTENT_LENGTH" && !d.nok && d.g == "0" && strings.HasPrefix(d.target, "/dj/") &&
			d.gAns.seen["REQUEST_METHOD"] == "POST"
	}},
	{"a connection-specific field or a TE other than trailers makes the request malformed: net/http's 400 (nginx serves it)", func(d h2dDiff) bool {
		// RFC 9113 section 8.2.2. net/http answers it before any
		// handler, so the access log has no line for it (report).
		conn := false
		for name := range h2ConnFields {
			conn = conn || d.c.name == name
		}
		return d.key == "outcome" && d.n == "200" && d.g == "400" && d.gAns.seen == nil && (conn || d.c.name == "te gzip")
	}},
	{"a malformed request is a stream error, PROTOCOL_ERROR (nginx: 400)", func(d h2dDiff) bool {
		// RFC 9113 section 8.1.1: a pseudo-header missing, twice, unknown,
		// empty or after a field; DATA past content-length; a
		// content-length that is no plain number. Neither app runs.
		return d.key == "outcome" && d.n == "400" && d.g == "reset PROTOCOL_ERROR"
	}},
	{"a pseudo-header after a regular field, or userinfo in :authority, resets the stream (RFC 9113 sections 8.3 and 8.3.1; nginx 1.22 serves it)", func(d h2dDiff) bool {
		return d.key == "outcome" && (d.c.name == "pseudo after field" || d.c.name == "userinfo in authority") &&
			d.n == "200" && d.g == "reset PROTOCOL_ERROR"
	}},
	{"CONNECT with :scheme and :path resets the stream (nginx: 405)", func(d h2dDiff) bool {
		return d.key == "outcome" && d.c.name == "connect with path" && d.n == "405" && d.g == "reset PROTOCOL_ERROR"
	}},
	{"CONNECT gets 405 (nginx: 400)", func(d h2dDiff) bool {
		return d.key == "outcome" && d.c.name == "connect" && d.n == "400" && d.g == "405"
	}},
	{"a Host field naming :authority's host is served (nginx 1.22: 400, a second Host)", func(d h2dDiff) bool {
		return d.key == "outcome" && d.c.name == "host field same" && d.n == "400" && d.g == "200"
	}},
	{"an absolute-form :path is served as its path, for :authority's host (nginx: 400)", func(d h2dDiff) bool {
		return d.key == "outcome" && strings.HasPrefix(d.c.name, "absolute path") && d.n == "400" && d.g == "200" &&
			(d.gAns.seen["REQUEST_URI"] == d.target || d.gAns.seen["RAW_URI"] == d.target) &&
			d.gAns.seen["HTTP_HOST"] == "shop.example"
	}},
	{"two equal content-length fields are served (RFC 9110 section 8.6; nginx: 400)", func(d h2dDiff) bool {
		return d.key == "outcome" && d.c.name == "two lengths" && d.n == "400" && d.g == "200" &&
			(d.gAns.seen["_body"] == "abc" || d.gAns.seen["CONTENT_LENGTH"] == "3")
	}},
	{"trailers after a body are taken and dropped (nginx 1.22: GOAWAY, the client's other streams with it)", func(d h2dDiff) bool {
		return d.key == "outcome" && d.c.name == "post with trailers" && d.n == "goaway PROTOCOL_ERROR" && d.g == "200"
	}},
	{"a pseudo-header in trailers resets the stream (nginx 1.22: GOAWAY)", func(d h2dDiff) bool {
		return d.key == "outcome" && d.c.name == "post with pseudo in trailers" && d.n == "goaway PROTOCOL_ERROR" && d.g == "reset PROTOCOL_ERROR"
	}},
}

// TestNginxH2DiffRequests sends each of h2dCases as raw HTTP/2 frames
// to nginx (listen ssl http2) and to the gateway on TLS, for a PHP script
// and a Django path, and compares the outcome (status, or the stream or
// connection reset) and everything the app saw. Every difference must be
// one of h2KnownDiffs, each of which must still be seen.
func TestNginxH2DiffRequests(t *testing.T) {
	t.Parallel()
	s := startH2Diff(t, nil, "SESSIONGATE_SESSIONS=off")
	seen := map[string]int{}
	for _, c := range h2dCases() {
		for _, target := range []string{"/dump.php?q=1", "/dj/x?q=1"} {
			n := sendH2Case(t, s.nginx, c, target)
			g := sendH2Case(t, s.gw, c, target)
			if testing.Verbose() {
				t.Logf("%s %s: nginx %s, gateway %s", c.name, target, n.outcome(), g.outcome())
			}
			for k, v := range c.want {
				app, key, _ := strings.Cut(k, ":")
				if (app == "dj") != strings.HasPrefix(target, "/dj/") {
					continue
				}
				for side, a := range map[string]h2dAnswer{"nginx": n, "gateway": g} {
					if got, ok := a.seen[key]; !ok || got != v {
						t.Errorf("%s %s: %s gave the app %s %s, want %q", c.name, target, side, key, show(got, ok), v)
					}
				}
			}
			judgeDiffs(t, compareH2(c, target, n, g), h2KnownDiffs, seen, "")
		}
	}
	knownAllSeen(t, h2KnownDiffs, seen)

	// A body without content-length, in DATA frames as flow control
	// lets them go: up to SESSIONGATE_MAX_BODY (client_max_body_size
	// 1m) the app gets its exact length; a byte more is 413 on both.
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	for _, size := range []int{1 << 20, 1<<20 + 1} {
		for _, target := range []string{"/dump.php", "/dj/x"} {
			for side, addr := range map[string]string{"nginx": s.nginx, "gateway": s.gw} {
				req, err := http.NewRequest("POST", "https://"+addr+target, io.NopCloser(strings.NewReader(strings.Repeat("b", size))))
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = -1
				res, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s, %d bytes: %v", side, target, size, err)
				}
				var d map[string]any
				json.NewDecoder(res.Body).Decode(&d)
				res.Body.Close()
				want := map[bool]int{true: 200, false: 413}[size <= 1<<20]
				if res.ProtoMajor != 2 || res.StatusCode != want || want == 200 && d["CONTENT_LENGTH"] != strconv.Itoa(size) {
					t.Errorf("%s %s, %d bytes without content-length: %s %d, CONTENT_LENGTH %v; want %d", side, target, size, res.Proto, res.StatusCode, d["CONTENT_LENGTH"], want)
				}
			}
		}
	}
	// The gateway's own refusals are logged with their reason.
	for _, why := range []string{"empty host", "differs from :authority", "content-length 5 but the stream ended", "malformed content-length"} {
		if line := waitForLog(t, s.gwp.stderr, why); !strings.Contains(line, `"status":400`) {
			t.Errorf("logged as %s", line)
		}
	}
}

// h2dResp is what Go's HTTP/2 client made of a response: the status, the
// body, the header fields but those of the framing and the server's own
// (Date, Server, Content-Length, the Vary: Accept-Encoding the gateway
// adds), or the error that ended it.
type h2dResp struct {
	status int
	body   string
	header http.Header
	err    string
}

func (r h2dResp) String() string {
	h := fmt.Sprint(r.header)
	if len(h) > 200 {
		h = h[:200] + "..."
	}
	return fmt.Sprintf("%d %q %s err=%q", r.status, r.body, h, r.err)
}

// h2RespKnownDiffs are the response shapes the gateway passes on
// otherwise than nginx, by resp.php's case.
var h2RespKnownDiffs = map[string]func(n, g h2dResp) bool{
	// RFC 9113 section 8.2.2: a response with a connection-specific
	// field is malformed; browsers fail it (Chrome:
	// ERR_HTTP2_PROTOCOL_ERROR). nginx drops Connection, Keep-Alive
	// and Transfer-Encoding only.
	"upgrade": func(n, g h2dResp) bool {
		return n.header.Get("Upgrade") == "h2c" && g.header.Get("Upgrade") == "" && n.status == 200 && g.status == 200
	},
	"proxyconn": func(n, g h2dResp) bool {
		return n.header.Get("Proxy-Connection") == "keep-alive" && g.header.Get("Proxy-Connection") == "" && g.status == 200
	},
	// nginx: 502 past fastcgi_buffer_size (4 KiB).
	"big": func(n, g h2dResp) bool {
		return n.status == 502 && g.status == 200 && len(g.header.Get("X-Big")) == 12000
	},
	"huge": func(n, g h2dResp) bool {
		return n.status == 502 && g.status == 200 && len(g.header.Get("X-Huge-7")) == 7000
	},
	// A 103 from PHP as its final status: nginx sends it, then DATA,
	// which the client takes as a protocol error; the gateway 502.
	"early": func(n, g h2dResp) bool { return strings.Contains(n.err, "PROTOCOL_ERROR") && g.status == 502 },
	// A control character in a value: nginx sends it, the client
	// refuses the response; the gateway makes it a space.
	"ctl": func(n, g h2dResp) bool {
		return strings.Contains(n.err, "invalid header field value") && g.status == 200 && g.header.Get("X-Ctl") == "a b"
	},
	// A name that is no token: nginx sends it, the client refuses the
	// response; the gateway answers 502 (as both do for one with a space).
	"colon": func(n, g h2dResp) bool {
		return strings.Contains(n.err, "invalid header field name") && g.status == 502
	},
	// Whitespace around a value (malformed in HTTP/2, section 8.2.1):
	// nginx keeps the leading tab.
	"wsval": func(n, g h2dResp) bool { return n.header.Get("X-Ws") == "\tv" && g.header.Get("X-Ws") == "v" },
	// Fewer bytes than PHP's Content-Length: a cut response on both
	// (nginx resets the stream, the gateway ends it short).
	"cllong": func(n, g h2dResp) bool { return n.err != "" && g.err != "" && n.body == "short" && g.body == "short" },
}

// TestNginxH2DiffResponses: what Go's HTTP/2 client gets from nginx and
// from the gateway for the responses of h2DiffRespPHP, several
// Set-Cookie fields, large fields, fields HTTP/2 has no room for. Every
// difference is one of h2RespKnownDiffs, and no gateway response carries
// a connection-specific field (which browsers fail). PHP's flush()
// reaches the client while the script still runs (nginx holds it).
func TestNginxH2DiffResponses(t *testing.T) {
	t.Parallel()
	tmp := harness.PHPTempDir(t)
	s := startH2Diff(t, map[string]string{
		// Prints a line, then waits (2 s at most) for the client to
		// have read it, which it can only if the line was sent.
		"flushwait.php": `<?php $f = '` + tmp + `/go-' . preg_replace('/[^a-z]/', '', $_GET['id']);
while (ob_get_level()) { ob_end_flush(); } // php.ini's output_buffering
echo "first\n"; flush();
for ($i = 0; $i < 20 && !file_exists($f); $i++) { usleep(100000); }
echo file_exists($f) ? "released\n" : "timeout\n";`,
	}, "SESSIONGATE_SESSIONS=off")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	get := func(addr, c string) h2dResp {
		t.Helper()
		res, err := client.Get("https://" + addr + "/resp.php?c=" + c)
		if err != nil {
			return h2dResp{err: err.Error()}
		}
		defer res.Body.Close()
		if res.ProtoMajor != 2 {
			t.Fatalf("%s: %s", c, res.Proto)
		}
		b, err := io.ReadAll(res.Body)
		r := h2dResp{status: res.StatusCode, body: string(b), header: res.Header}
		if err != nil {
			r.err = err.Error()
		}
		if addr == s.gw {
			for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"} {
				if v, ok := res.Header[k]; ok {
					t.Errorf("%s: the gateway sent %s: %q over HTTP/2", c, k, v)
				}
			}
		}
		for _, k := range []string{"Date", "Server", "Content-Length"} {
			res.Header.Del(k)
		}
		if vs := res.Header.Values("Vary"); len(vs) > 0 && vs[len(vs)-1] == "Accept-Encoding" && addr == s.gw {
			res.Header["Vary"] = vs[:len(vs)-1]
			if len(vs) == 1 {
				res.Header.Del("Vary")
			}
		}
		return r
	}
	seen := map[string]bool{}
	for _, c := range []string{"cookies", "flush", "connection", "keepalive", "te", "upgrade", "proxyconn", "upper", "big", "huge",
		"early", "ctl", "status", "badname", "colon", "wsval", "cllong", "clshort", "twocl", "empty"} {
		n, g := get(s.nginx, c), get(s.gw, c)
		if c == "badname" || c == "status" {
			// An error page's, or the gateway's nosniff.
			n.body, g.body = "", ""
			n.header.Del("Content-Type")
			g.header.Del("Content-Type")
			g.header.Del("X-Content-Type-Options")
		}
		if n.String() == g.String() {
			if h2RespKnownDiffs[c] != nil {
				t.Errorf("%s: documented difference no longer seen: %v", c, n)
			}
			continue
		}
		if known := h2RespKnownDiffs[c]; known == nil || !known(n, g) {
			t.Errorf("%s: nginx %v\ngateway %v", c, n, g)
		}
		seen[c] = true
	}
	if vs := func() []string {
		r := get(s.gw, "cookies")
		return r.header.Values("Set-Cookie")
	}(); strings.Join(vs, "|") != "a=1|b=2|c=3; HttpOnly" {
		t.Errorf("the gateway's Set-Cookie fields: %q", vs)
	}

	for _, side := range []struct{ name, addr string }{{"nginx", s.nginx}, {"gateway", s.gw}} {
		id := map[string]string{"nginx": "n", "gateway": "g"}[side.name]
		res, err := client.Get("https://" + side.addr + "/flushwait.php?id=" + id)
		if err != nil {
			t.Fatal(err)
		}
		br := make([]byte, len("first\n"))
		if _, err := io.ReadFull(res.Body, br); err != nil || string(br) != "first\n" {
			t.Fatalf("%s: %q %v", side.name, br, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, "go-"+id), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(res.Body)
		res.Body.Close()
		// nginx (fastcgi_buffering on) holds a small flushed part until
		// its buffer fills or the script ends: its client had the
		// first line only with the rest.
		want := map[string]string{"nginx": "timeout\n", "gateway": "released\n"}[side.name]
		if string(rest) != want || err != nil {
			t.Errorf("%s: flush() over HTTP/2: %q %v after the first line, want %q", side.name, rest, err, want)
		}
	}
}

// h2StreamPHP prints 30 lines of 8 KiB, flushing each, 100 ms apart,
// writing its progress and, at its end, a done file.
const h2StreamPHP = `<?php
$id = preg_replace('/[^a-z0-9]/', '', $_GET['id'] ?? 'x');
for ($i = 0; $i < 30; $i++) {
    echo str_repeat('x', 8192), "\n";
    flush();
    file_put_contents("TMPDIR/prog-$id", $i);
    usleep(100000);
}
file_put_contents("TMPDIR/done-$id", 'done');
`

// h2ConcPHP counts the scripts running at once in TMPDIR/conc (under a
// lock) and keeps the highest count in TMPDIR/max.
const h2ConcPHP = `<?php
function bump($d) {
    $f = fopen('TMPDIR/conc.lock', 'c'); flock($f, LOCK_EX);
    $n = (int) @file_get_contents('TMPDIR/conc') + $d;
    file_put_contents('TMPDIR/conc', $n);
    if ($n > (int) @file_get_contents('TMPDIR/max')) { file_put_contents('TMPDIR/max', $n); }
    flock($f, LOCK_UN); fclose($f);
}
bump(1); usleep(200000); bump(-1); echo 'ok';
`

// TestNginxH2DiffAborts: a client that resets its stream mid-response or
// mid-upload, says GOAWAY, or opens 30 streams at once for a slow script,
// against nginx and the gateway (SESSIONGATE_PHP_MAX_CONNS=2 against
// php-fpm's 4 children). Both stop the script whose response was reset
// (PHP's next flush fails), run none whose upload was reset, finish a
// request the client said GOAWAY after, and answer every stream; the
// gateway never runs more than SESSIONGATE_PHP_MAX_CONNS scripts at once.
// The access logs: 499 for the reset upload on both, and for the reset
// response the gateway logs 499 (cut) where nginx logs the 200 it had
// begun.
func TestNginxH2DiffAborts(t *testing.T) {
	t.Parallel()
	tmp := harness.PHPTempDir(t)
	up := `<?php file_put_contents('TMPDIR/ran-' . preg_replace('/[^a-z0-9]/', '', $_GET['id']), strlen(file_get_contents('php://input'))); echo 'ok';`
	s := startH2Diff(t, map[string]string{
		"stream.php": strings.ReplaceAll(h2StreamPHP, "TMPDIR", tmp),
		"up.php":     strings.ReplaceAll(up, "TMPDIR", tmp),
		"sleep.php":  `<?php usleep(300000); echo 'slept';`,
	}, "SESSIONGATE_SESSIONS=off")
	for _, side := range []struct{ name, addr string }{{"nginx", s.nginx}, {"gateway", s.gw}} {
		// Reset once the response has begun.
		id := side.name[:1] + "rst"
		c := testh2.Dial(t, side.addr)
		c.Write(h2dHeaders(h2dFields("GET", "/stream.php?id="+id), true))
		if !poll(10*time.Second, func() bool { return c.Seen().Statuses[1] == 200 }) {
			t.Fatalf("%s: no response from stream.php: %+v", side.name, c.Seen())
		}
		waitForFile(t, filepath.Join(tmp, "prog-"+id), "stream.php")
		c.Write(testh2.RST(1))
		// The script would have ended 3 s after it began.
		time.Sleep(3500 * time.Millisecond)
		if _, err := os.Stat(filepath.Join(tmp, "done-"+id)); err == nil {
			t.Errorf("%s: the script of a reset stream ran to its end", side.name)
		}

		// Reset while the body comes.
		id = side.name[:1] + "up"
		c = testh2.Dial(t, side.addr)
		c.Write(h2dHeaders(h2dFields("POST", "/up.php?id="+id, testh2.Field{"content-length", "50000"}), false),
			h2dData(strings.Repeat("u", 30000), false))
		time.Sleep(300 * time.Millisecond)
		c.Write(testh2.RST(1))

		// GOAWAY after a request: it is still answered.
		c = testh2.Dial(t, side.addr)
		c.Write(h2dHeaders(h2dFields("GET", "/sleep.php"), true), testh2.Frame(0x7, 0, 0, []byte{0, 0, 0, 1, 0, 0, 0, 0}))
		if !poll(10*time.Second, func() bool { return c.Seen().Ended == 1 }) || c.Seen().Statuses[1] != 200 {
			t.Errorf("%s: a request before the client's GOAWAY: %+v", side.name, c.Seen())
		}
	}
	for _, side := range []struct{ name, addr string }{{"nginx", s.nginx}, {"gateway", s.gw}} {
		if _, err := os.Stat(filepath.Join(tmp, "ran-"+side.name[:1]+"up")); err == nil {
			t.Errorf("%s: PHP ran on an upload whose stream was reset", side.name)
		}
	}
	if line := waitForLog(t, s.gwp.stderr, `"path":"/stream.php"`); !strings.Contains(line, `"status":499`) || !strings.Contains(line, `"aborted":true`) {
		t.Errorf("the gateway logged the reset response as %s", line)
	}
	if line := waitForLog(t, s.gwp.stderr, `"path":"/up.php"`); !strings.Contains(line, `"status":499`) {
		t.Errorf("the gateway logged the reset upload as %s", line)
	}
	access := func() string { b, _ := os.ReadFile(s.access); return string(b) }
	if log, ok := textWhen(access, func(log string) bool {
		return strings.Contains(log, "200 /stream.php?id=nrst") && strings.Contains(log, "499 /up.php?id=nup")
	}); !ok {
		t.Errorf("nginx's access log:\n%s", log)
	}
}

// TestNginxH2DiffManyStreams: 30 streams at once on one connection, each
// for a script that takes 200 ms, to nginx (php-fpm's 4 children) and to
// the gateway with SESSIONGATE_PHP_MAX_CONNS=2: every stream is answered,
// and the gateway never has more than 2 scripts running at once.
func TestNginxH2DiffManyStreams(t *testing.T) {
	t.Parallel()
	tmp := harness.PHPTempDir(t)
	s := startH2Diff(t, map[string]string{"conc.php": strings.ReplaceAll(h2ConcPHP, "TMPDIR", tmp)}, "SESSIONGATE_SESSIONS=off")
	for _, side := range []struct {
		name, addr string
		most       int
	}{{"nginx", s.nginx, 4}, {"gateway", s.gw, 2}} {
		os.Remove(filepath.Join(tmp, "max"))
		c := testh2.Dial(t, side.addr)
		var fs [][]byte
		const streams = 30
		for i := range uint32(streams) {
			fs = append(fs, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, 1+2*i, testh2.Block(h2dFields("GET", "/conc.php"))))
		}
		c.Write(fs...)
		poll(30*time.Second, func() bool { return c.Seen().Ended == streams })
		seen := c.Seen()
		ok := 0
		for _, st := range seen.Statuses {
			if st == 200 {
				ok++
			}
		}
		b, _ := os.ReadFile(filepath.Join(tmp, "max"))
		most, _ := strconv.Atoi(string(b))
		if ok != streams || most < 1 || most > side.most {
			t.Errorf("%s: %d of %d streams answered 200, at most %d scripts at once (want 1 to %d): %+v", side.name, ok, streams, most, side.most, seen)
		}
		t.Logf("%s: at most %d scripts at once", side.name, most)
	}
}

// TestH2StreamsOfOneSession: twelve streams at once on one connection,
// all of one session, to counter.php, beside a slow script holding the
// session: every stream is answered, none loses its increment to another
// (the session lock), and a request of another session, on the same
// connection, is answered while they still wait: waiting for one
// session's lock holds none of the SESSIONGATE_PHP_MAX_CONNS=2 php-fpm
// connections the other needs.
func TestH2StreamsOfOneSession(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	red := harness.StartRedis(t)
	files := map[string]string{}
	for _, name := range []string{"hold.php", "counter.php"} {
		b, err := os.ReadFile(filepath.Join("testdata/session", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	_, addr := startH2Site(t, files, "SESSIONGATE_SESSION_KEYS="+sessionTestKey, "SESSIONGATE_PHP_PREPEND="+writePrepend(t),
		"SESSIONGATE_REDIS_URL="+red.URL(), "SESSIONGATE_PHP_MAX_CONNS=2")
	client := h2Client()
	a := h2CounterCookie(t, client, addr)
	b := h2CounterCookie(t, client, addr)
	started := filepath.Join(harness.PHPTempDir(t), "started")
	c := testh2.Dial(t, addr)
	get := func(stream uint32, path string, sess *http.Cookie) []byte {
		return testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, stream,
			testh2.Block(append(h2dFields("GET", path), testh2.Field{"cookie", sess.Name + "=" + sess.Value})))
	}
	c.Write(get(1, "/hold.php?ms=2000&started="+url.QueryEscape(started), a))
	waitForFile(t, started, "hold.php")
	var fs [][]byte
	const streams = 12
	for i := range uint32(streams) {
		fs = append(fs, get(3+2*i, "/counter.php", a))
	}
	c.Write(fs...)
	c.Write(get(3+2*streams, "/counter.php", b))
	if !poll(10*time.Second, func() bool { return c.Seen().Statuses[3+2*streams] != 0 }) {
		t.Fatalf("another session's request behind one session's queue: %+v", c.Seen())
	}
	if seen := c.Seen(); seen.Statuses[3+2*streams] != 200 || seen.Ended > 2 {
		t.Errorf("another session's request: %+v, want 200 while the first session's wait", seen)
	}
	poll(30*time.Second, func() bool { return c.Seen().Ended == streams+2 })
	for stream, st := range c.Seen().Statuses {
		if st != 200 {
			t.Errorf("stream %d: %d", stream, st)
		}
	}
	req, _ := http.NewRequest("GET", "https://"+addr+"/counter.php", nil)
	req.AddCookie(a)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := strconv.Itoa(streams + 2); string(n) != want {
		t.Errorf("the session's counter after %d streams: %s, want %s", streams, n, want)
	}
}

// TestH2ResetStreamSavesNothingOfTheSession: a client that resets its
// stream while a script that changed the session is still sending (a tab
// closed mid-page) stops the script at its next flush, as behind nginx,
// and the session keeps what it held before that request: no change the
// script made up to the reset is saved (its end never came), the lock is
// free for the next request, and the session is still the client's.
func TestH2ResetStreamSavesNothingOfTheSession(t *testing.T) {
	t.Parallel()
	tmp := harness.PHPTempDir(t)
	_, addr := startH2Site(t, map[string]string{
		"half.php": `<?php session_start(); $_SESSION['a'] = 1;
for ($i = 0; $i < 30; $i++) { echo str_repeat('x', 8192), "\n"; flush(); file_put_contents('` + tmp + `/prog', $i); usleep(100000); }
$_SESSION['b'] = 1; file_put_contents('` + tmp + `/done', 1);`,
		"show.php": `<?php session_start(); $_SESSION['seen'] = 1; echo json_encode($_SESSION);`,
	}, "SESSIONGATE_SESSION_DEV=on", "SESSIONGATE_PHP_PREPEND="+writePrepend(t))
	client := h2Client()
	show := func(sess *http.Cookie) (string, *http.Response) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+"/show.php", nil)
		if sess != nil {
			req.AddCookie(sess)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return string(b), res
	}
	_, res := show(nil)
	cookies := res.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("no session cookie: %q", res.Header.Values("Set-Cookie"))
	}
	sess := cookies[0]
	c := testh2.Dial(t, addr)
	c.Write(testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, 1,
		testh2.Block(append(h2dFields("GET", "/half.php"), testh2.Field{"cookie", sess.Name + "=" + sess.Value}))))
	waitForFile(t, filepath.Join(tmp, "prog"), "half.php")
	c.Write(testh2.RST(1))
	// The script would have ended 3 s after it began.
	time.Sleep(3500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(tmp, "done")); err == nil {
		t.Errorf("the script of a reset stream ran to its end")
	}
	if got, res := show(sess); got != `{"seen":1}` || len(res.Cookies()) != 0 {
		t.Errorf("the session after a reset stream that changed it: %s (Set-Cookie %q), want only what it held before", got, res.Header.Values("Set-Cookie"))
	}
}

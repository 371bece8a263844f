package integration

// A differential test of response compression: the same raw requests sent
// to Debian 12's nginx with the gzip settings a PHP shop runs (gzip on,
// gzip_vary on, gzip_proxied any, its text types, gzip_min_length 256) and
// to the gateway (SESSIONGATE_COMPRESS=on), both in front of one php-fpm
// running scripts that answer every way a PHP app does (and of one
// gunicorn), and what the client gets compared: the status, the body once
// decoded, Content-Encoding, Vary, ETag and the framing.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

// gzipDiffPHP answers as its query says: c picks a shape (below), t is the
// Content-Type, n the body's size, cl=1 declares its Content-Length, e a
// Content-Encoding, cc a Cache-Control, etag an ETag (If-None-Match equal
// to it as text gets 304, an If-Match other than it 412, as apps compare),
// vary a Vary, code the status.
const gzipDiffPHP = `<?php
$g = $_GET;
$n = (int)($g['n'] ?? 2000);
$body = '';
for ($i = 0; strlen($body) < $n; $i++) { $body .= "<p>line $i</p>\n"; }
$body = substr($body, 0, $n);
$c = $g['c'] ?? '';
if ($c === 'zlib') { ini_set('zlib.output_compression', '1'); }
if ($c === 'ob') { ob_start('ob_gzhandler'); }
if (isset($g['t'])) { header('Content-Type: ' . $g['t']); }
if (isset($g['e'])) { header('Content-Encoding: ' . $g['e']); }
if (isset($g['cc'])) { header('Cache-Control: ' . $g['cc']); }
if (isset($g['disp'])) { header('Content-Disposition: ' . $g['disp']); }
if (isset($g['ar'])) { header('Accept-Ranges: bytes'); }
if (isset($g['te'])) { header('Transfer-Encoding: ' . $g['te']); }
if (isset($g['badcl'])) { header('Content-Length: ' . $g['badcl']); }
if (isset($g['hdr'])) { header('X-Pad: ' . str_repeat('a', (int)$g['hdr'])); }
if (isset($g['clshort'])) { header('Content-Length: 500'); }
if (isset($g['vary'])) { header('Vary: ' . $g['vary']); }
if (isset($g['etag'])) {
	header('ETag: ' . $g['etag']);
	$inm = $_SERVER['HTTP_IF_NONE_MATCH'] ?? null;
	$im = $_SERVER['HTTP_IF_MATCH'] ?? null;
	if ($im !== null && $im !== $g['etag']) { http_response_code(412); exit; }
	if ($inm === $g['etag']) { http_response_code(304); exit; }
}
if (isset($g['code'])) { http_response_code((int)$g['code']); }
switch ($c) {
case 'range':
	http_response_code(206);
	header('Content-Range: bytes 0-' . ($n - 1) . '/' . (2 * $n));
	break;
case 'accel':
	header('X-Accel-Redirect: /protected/doc.css');
	break;
case 'flush':
	// The first part, flushed; then, once the client has read it (the
	// test creates SIGDIR/id), or after 5 s without, the rest. With
	// cl=1 the Content-Length is the first part's alone, as in the
	// idiom that answers at once and then goes on working; the rest
	// goes to SIGDIR/id.out instead.
	while (ob_get_level()) { ob_end_flush(); }
	header('X-Accel-Buffering: no');
	if (isset($g['cl'])) { header('Content-Length: ' . $n); }
	echo $body;
	flush();
	if (isset($g['fin'])) { fastcgi_finish_request(); }
	$f = 'SIGDIR/' . preg_replace('/[^a-z0-9]/', '', $g['id'] ?? '');
	for ($i = 0; $i < 500 && !file_exists($f); $i++) { usleep(10000); }
	$end = file_exists($f) ? 'END:read' : 'END:held';
	if (isset($g['cl'])) { file_put_contents($f . '.out', $end); } else { echo $end; }
	exit;
case 'kill':
	// The worker dies after the first part: php-fpm ends the
	// connection with no FCGI_END_REQUEST.
	while (ob_get_level()) { ob_end_flush(); }
	if (isset($g['cl'])) { header('Content-Length: ' . (2 * $n)); }
	echo $body;
	flush();
	usleep(100000);
	posix_kill(getmypid(), 9);
	sleep(5);
	echo 'never';
	exit;
}
if (isset($g['cl'])) { header('Content-Length: ' . strlen($body)); }
echo $body;
`

// gzipDiffTypes are the types nginx is told to compress: h5bp's list,
// trimmed to what a PHP shop sends (text/html is always compressed).
const gzipDiffTypes = "text/plain text/css text/xml text/javascript text/csv application/javascript application/x-javascript " +
	"application/json application/ld+json application/xml application/rss+xml application/atom+xml application/xhtml+xml " +
	"application/manifest+json image/svg+xml"

// gzipDiffStack is nginx and the gateway on one php-fpm, over plain
// HTTP/1.x and over TLS with HTTP/2.
type gzipDiffStack struct {
	nginx, gw, nginxTLS, gwTLS string
	sigDir                     string
}

func startGzipDiff(t *testing.T) *gzipDiffStack {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "nginx")
	sig := harness.PHPTempDir(t)
	root := filepath.Join(t.TempDir(), "root")
	private := filepath.Join(t.TempDir(), "private")
	errors := filepath.Join(t.TempDir(), "errors")
	css := strings.Repeat("body { color: red; }\n", 100)
	writeTree(t, root, map[string]string{"g.php": strings.ReplaceAll(gzipDiffPHP, "SIGDIR", sig)})
	writeTree(t, private, map[string]string{"doc.css": css})
	writeTree(t, errors, map[string]string{"404.html": "<h1>Not here</h1>" + strings.Repeat("<p>Try the search.</p>\n", 40)})
	for _, d := range []string{root, private, errors} {
		harness.ShareWithPHP(t, d)
	}
	root, _ = filepath.EvalSymlinks(root)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 6})
	cert, key := testtls.Pair(t)
	gzipConf := fmt.Sprintf(`
        gzip on;
        gzip_vary on;
        gzip_proxied any;
        gzip_min_length 256;
        gzip_types %s;
        location /protected/ { internal; alias %s/; }
        error_page 404 /errors/404.html;
        location /errors/ { internal; alias %s/; }`, gzipDiffTypes, private, errors)
	ng := harness.StartNginx(t, 2, func(addrs []string) string {
		return nginxPHPShop(addrs[0], root, fpm.Addr, gzipConf, "") +
			nginxPHPShop(addrs[1]+" ssl http2", root, fpm.Addr, gzipConf+"\n        ssl_certificate "+cert+";\n        ssl_certificate_key "+key+";", "")
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
		}
	})
	bin := buildGateway(t)
	start := func(env ...string) string {
		p := startBinary(t, bin, append([]string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
			"SESSIONGATE_SESSIONS=off", "SESSIONGATE_PHP_MAX_CONNS=2",
			"SESSIONGATE_INTERNAL_PATHS=/protected/=" + private + ",/errors/=" + errors,
			"SESSIONGATE_ERROR_PAGES=404=/errors/404.html"}, env...))
		return strings.TrimPrefix(p.URL, "http://")
	}
	return &gzipDiffStack{nginx: ng.Addrs[0], nginxTLS: ng.Addrs[1], gw: start(),
		gwTLS: start("SESSIONGATE_TLS_CERT="+cert, "SESSIONGATE_TLS_KEY="+key), sigDir: sig}
}

// gzipReq is one request: its method, target, protocol ("HTTP/1.1",
// "HTTP/1.0" or "h2") and header lines.
type gzipReq struct {
	method, target, proto string
	headers               []string
}

func (r gzipReq) String() string {
	return fmt.Sprintf("%s %s %s %q", r.method, r.target, r.proto, r.headers)
}

// gzipAnswer is a response and its body as it came, and the error that
// ended reading it, if any.
type gzipAnswer struct {
	res     *http.Response
	body    []byte
	readErr error
	interim []int // 1xx statuses before it
}

// gzipDo sends r to addr, on a connection of its own, and reads the answer.
func gzipDo(t *testing.T, addr string, r gzipReq) gzipAnswer {
	t.Helper()
	if r.proto == "h2" {
		return gzipDoH2(t, addr, r)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\nHost: shop.example\r\nConnection: close\r\n", r.method, r.target, r.proto)
	for _, h := range r.headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var a gzipAnswer
	for {
		res, err := http.ReadResponse(br, &http.Request{Method: r.method})
		if err != nil {
			a.readErr = err
			return a
		}
		if res.StatusCode < 200 {
			a.interim = append(a.interim, res.StatusCode)
			continue
		}
		a.res = res
		break
	}
	a.body, a.readErr = io.ReadAll(a.res.Body)
	a.res.Body.Close()
	return a
}

// gzipDoH2 sends r over HTTP/2 with TLS, its header lines as fields.
func gzipDoH2(t *testing.T, addr string, r gzipReq) gzipAnswer {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true, DisableCompression: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(r.method, "https://"+addr+r.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "shop.example"
	for _, h := range r.headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	c := &http.Client{Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		return gzipAnswer{readErr: err}
	}
	if res.ProtoMajor != 2 {
		t.Fatalf("%s: %s, want HTTP/2", addr, res.Proto)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	return gzipAnswer{res: res, body: body, readErr: err}
}

// gzipView is what is compared of an answer: its status, the fields a
// client and a cache act on, the framing, and the body once decoded
// (short bodies as they are, others as their size and digest). A gzip
// body that does not decode whole, or a body cut short, says so.
func gzipView(a gzipAnswer) map[string]string {
	if a.res == nil {
		return map[string]string{"status": "none: " + errText(a.readErr)}
	}
	h := a.res.Header
	v := map[string]string{"status": fmt.Sprint(a.res.StatusCode)}
	for _, k := range []string{"Content-Type", "Content-Encoding", "Vary", "ETag", "Content-Range"} {
		if vs := h.Values(k); len(vs) > 0 {
			v[k] = strings.Join(vs, "|")
		}
	}
	if len(a.interim) > 0 {
		v["interim"] = fmt.Sprint(a.interim)
	}
	switch {
	case a.res.ProtoMajor == 2 && a.res.ContentLength >= 0:
		v["framing"] = "length"
	case a.res.ProtoMajor == 2:
		v["framing"] = "stream"
	case len(a.res.TransferEncoding) > 0:
		v["framing"] = "chunked"
	case a.res.ContentLength >= 0:
		v["framing"] = "length"
	default:
		v["framing"] = "close"
	}
	body := a.body
	if a.readErr != nil {
		v["cut"] = "yes"
	}
	if h.Get("Content-Encoding") == "gzip" && len(body) > 0 {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			v["cut"] = "yes"
			v["gzip"] = "does not decode whole"
		} else {
			v["gzip"] = "decodes whole"
		}
	} else if h.Get("Content-Encoding") == "" && a.readErr == nil && v["framing"] == "length" {
		v["Content-Length"] = fmt.Sprint(a.res.ContentLength)
	}
	if v["cut"] != "" {
		// How much of a cut answer arrived is each server's own (nginx
		// reads ahead more); what did must be the page's first bytes.
		v["cut"] = "yes, a prefix of the page"
		if string(body) != gzipDiffBody(len(body)) {
			v["cut"] = fmt.Sprintf("yes, but %d bytes that are not the page's", len(body))
		}
		return v
	}
	if len(body) <= 40 {
		v["body"] = fmt.Sprintf("%q", body)
	} else {
		v["body"] = fmt.Sprintf("%d bytes %x", len(body), md5.Sum(body))[:24]
	}
	return v
}

// fileTag is nginx's ETag of a file, which changes with each run.
var fileTag = regexp.MustCompile(`"[0-9a-f]+-[0-9a-f]+"`)

// gzipViewLen is the length of a view's decoded body.
func gzipViewLen(v map[string]string) int {
	var n int
	if _, err := fmt.Sscanf(v["body"], "%d bytes", &n); err == nil {
		return n
	}
	q, err := strconv.Unquote(v["body"])
	if err != nil {
		return -1
	}
	return len(q)
}

// gzipDiffBody is the first n bytes of g.php's page.
func gzipDiffBody(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<p>line %d</p>\n", i)
	}
	return b.String()[:n]
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// gzipCase is one request and the differences left after the rules, each
// "field: nginx value | gateway value"; gw are values the gateway's view
// must have.
type gzipCase struct {
	req   gzipReq
	diffs []string
	gw    map[string]string
}

// compareGzip sends each case to both servers and checks that they differ
// in exactly the case's diffs once rules have taken theirs out, and that
// every rule applied somewhere.
func compareGzip(t *testing.T, s *gzipDiffStack, cases []gzipCase, rules []staticRule) {
	t.Helper()
	seen := map[string]int{}
	for _, c := range cases {
		na, ga := s.nginx, s.gw
		if c.req.proto == "h2" {
			na, ga = s.nginxTLS, s.gwTLS
		}
		n, g := gzipView(gzipDo(t, na, c.req)), gzipView(gzipDo(t, ga, c.req))
		for k, v := range c.gw {
			if g[k] != v {
				t.Errorf("%s: the gateway's %s is %q, want %q", c.req, k, g[k], v)
			}
		}
		if g["gzip"] == "does not decode whole" && g["cut"] == "" {
			t.Errorf("%s: the gateway's gzip body does not decode", c.req)
		}
		countRules(rules, n, g, seen)
		for _, v := range []map[string]string{n, g} {
			if tag, ok := v["ETag"]; ok {
				v["ETag"] = fileTag.ReplaceAllString(tag, `"TAG"`)
			}
		}
		got := viewDiffs(n, g, "")
		if strings.Join(got, "\n") != strings.Join(c.diffs, "\n") {
			t.Errorf("%s: nginx | gateway:\n    %s\nwant:\n    %s", c.req, strings.Join(got, "\n    "), strings.Join(c.diffs, "\n    "))
		}
	}
	rulesAllSeen(t, rules, seen)
}

// gzipRules are the differences the gateway makes wherever they apply.
// A rule's name is its README wording.
var gzipRules = []staticRule{
	// nginx's gzip_min_length goes by the Content-Length alone: a page
	// PHP sends without one is compressed however short. The gateway
	// holds it until 256 bytes or its end decide, and sends a shorter one
	// as it is, which gzip would make larger (README, gzip row).
	{"a short page without a length left uncompressed", func(n, g map[string]string) bool {
		if n["Content-Encoding"] != "gzip" || g["Content-Encoding"] != "" || n["gzip"] != "decodes whole" ||
			n["body"] != g["body"] || !unframed(n) || g["framing"] != "length" || gzipViewLen(g) >= 256 {
			return false
		}
		for _, k := range []string{"Content-Encoding", "gzip", "framing"} {
			delete(n, k)
		}
		delete(g, "framing")
		delete(g, "Content-Length")
		return true
	}},
	// A page of up to 2 KiB without a Content-Length is held and sent
	// with one (README, access_log row); nginx sends what PHP gives it
	// without a length chunked (over HTTP/1.0 to the connection's end).
	{"Content-Length on a small page", func(n, g map[string]string) bool {
		if !unframed(n) || g["framing"] != "length" {
			return false
		}
		delete(n, "framing")
		delete(g, "framing")
		delete(g, "Content-Length")
		return true
	}},
	// The gateway compresses every text type and the structured ones
	// (compress.Compressible); nginx only those gzip_types names, and
	// a shop's list never names them all.
	{"a type beyond the shop's gzip_types compressed", func(n, g map[string]string) bool {
		mt, _, _ := strings.Cut(n["Content-Type"], ";")
		if !gzipBeyondTypes[mt] || n["Content-Encoding"] != "" || g["Content-Encoding"] != "gzip" ||
			g["gzip"] != "decodes whole" || n["body"] != g["body"] || n["Vary"] != "" || g["Vary"] != "Accept-Encoding" {
			return false
		}
		for _, k := range []string{"Content-Encoding", "gzip", "Vary", "framing"} {
			delete(g, k)
		}
		delete(n, "Content-Length")
		delete(n, "framing")
		if n["ETag"] != "" && g["ETag"] == "W/"+n["ETag"] {
			// The app's tag, weak on what the gateway compressed.
			delete(n, "ETag")
			delete(g, "ETag")
		}
		return true
	}},
	// nginx's gzip_vary adds its Vary: Accept-Encoding in front of the
	// app's, even when the app named it already or said "*"; the
	// gateway adds the token to the app's list only when it is not
	// there. The same set of fields, for a cache.
	{"Vary: Accept-Encoding added once, after the app's", func(n, g map[string]string) bool {
		if n["Vary"] == g["Vary"] || !sameVary(n["Vary"], g["Vary"]) {
			return false
		}
		delete(n, "Vary")
		delete(g, "Vary")
		return true
	}},
	// The gateway says Vary: Accept-Encoding on every answer of a type
	// it may compress; nginx only on those it would compress for a
	// client that asked (gzip_min_length, its statuses).
	{"Vary: Accept-Encoding on an answer not worth compressing", func(n, g map[string]string) bool {
		if n["Vary"] != "" || g["Vary"] != "Accept-Encoding" || n["Content-Encoding"] != "" || g["Content-Encoding"] != "" {
			return false
		}
		delete(g, "Vary")
		return true
	}},
}

// unframed reports whether a view's body had no length: chunked, ended
// by the connection's end, or an HTTP/2 stream without content-length.
func unframed(v map[string]string) bool {
	return v["framing"] == "chunked" || v["framing"] == "close" || v["framing"] == "stream"
}

// sameVary reports whether two Vary values (fields joined with "|")
// name the same set of request fields, "*" standing for all.
func sameVary(a, b string) bool {
	set := func(v string) map[string]bool {
		m := map[string]bool{}
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == '|' || r == ',' }) {
			m[strings.ToLower(strings.TrimSpace(f))] = true
		}
		if m["*"] {
			return map[string]bool{"*": true}
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for k := range sa {
		if !sb[k] {
			return false
		}
	}
	return true
}

// gzipBeyondTypes are the types of the cases that nginx's gzip_types
// (gzipDiffTypes) leaves out and the gateway compresses.
var gzipBeyondTypes = map[string]bool{"application/vnd.api+json": true, "text/x-component": true, "application/wasm": true, "font/ttf": true}

// gzipPHP is a GET of g.php with query q over HTTP/1.1, with headers.
func gzipPHP(q url.Values, headers ...string) gzipReq {
	target := "/g.php"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	return gzipReq{method: "GET", target: target, proto: "HTTP/1.1", headers: headers}
}

// gzipQuery builds a query from name, value pairs.
func gzipQuery(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// TestNginxDiffGzip: each type, with its charset and parameters and in
// upper case, at each size, with and without PHP's Content-Length.
func TestNginxDiffGzip(t *testing.T) {
	t.Parallel()
	s := startGzipDiff(t)
	ae := "Accept-Encoding: gzip, deflate, br"
	var cases []gzipCase
	add := func(req gzipReq, diffs ...string) { cases = append(cases, gzipCase{req: req, diffs: diffs}) }
	for _, ct := range []string{"text/html", "text/html; charset=UTF-8", "TEXT/HTML; Charset=utf-8", "text/css", "text/plain;charset=iso-8859-1",
		"application/json", "application/json; charset=utf-8", "application/javascript", "text/javascript", "image/svg+xml",
		"application/xml", "application/rss+xml", "application/ld+json", "text/csv", "image/png", "application/octet-stream",
		"application/pdf", "text/event-stream", "application/vnd.api+json", "text/x-component", "application/wasm", "font/ttf"} {
		for _, n := range []string{"100", "255", "256", "3000", "200000"} {
			add(gzipPHP(gzipQuery("t", ct, "n", n), ae))
			add(gzipPHP(gzipQuery("t", ct, "n", n, "cl", "1"), ae))
		}
	}
	// Sizes around the gateway's own boundaries: the 2 KiB it holds to
	// give a length, net/http's 4 KiB buffer, php-fpm's 8 KiB records,
	// its 64 KiB read of what came with the header, and 1 MiB.
	for _, n := range []string{"2047", "2048", "2049", "4095", "4097", "8184", "8185", "65535", "65537", "1048576"} {
		add(gzipPHP(gzipQuery("n", n), ae))
		add(gzipPHP(gzipQuery("n", n, "cl", "1"), ae))
		add(gzipPHP(gzipQuery("n", n)))
	}
	compareGzip(t, s, cases, []staticRule{gzipRules[0], gzipRules[1], gzipRules[2], gzipRules[4]})
}

// TestNginxDiffGzipShapes: the answers PHP apps make that compression must
// leave alone or handle, and the Accept-Encoding values clients send.
func TestNginxDiffGzipShapes(t *testing.T) {
	t.Parallel()
	s := startGzipDiff(t)
	ae := "Accept-Encoding: gzip, deflate, br"
	var cases []gzipCase
	add := func(req gzipReq, diffs ...string) { cases = append(cases, gzipCase{req: req, diffs: diffs}) }
	page, lpage := gzipQuery("t", "text/html; charset=UTF-8"), gzipQuery("t", "text/html", "cl", "1")
	// The gateway compresses where nginx does not.
	gz := []string{"Content-Encoding:  | gzip", "gzip:  | decodes whole"}
	lgz := []string{"Content-Encoding:  | gzip", "Content-Length: 2000 | ", "gzip:  | decodes whole"}
	// ... and the other way round, with the Vary nginx gives it.
	nogz := []string{"Content-Encoding: gzip | ", "Vary: Accept-Encoding | ", "gzip: decodes whole | "}

	// Accept-Encoding as clients write it: the same answers, except
	// that the gateway reads it as RFC 9110 section 12.5.3 does, where
	// nginx 1.22 looks for "gzip" in the first field: "x-gzip" is gzip,
	// "*" stands for it, a second field counts, and a q that does not
	// parse is taken as absent.
	for _, h := range [][]string{{"Accept-Encoding: gzip"}, {"Accept-Encoding: GZIP"}, {"Accept-Encoding: gzip;q=0"},
		{"Accept-Encoding: gzip; q=0.5"}, {"Accept-Encoding: identity;q=0"}, {"Accept-Encoding: br, gzip;q=0.5"},
		{"Accept-Encoding: deflate"}, {"Accept-Encoding:"}, nil, {"Accept-Encoding: gzip", "Accept-Encoding: br"},
		{"Accept-Encoding: " + strings.Repeat("x-custom-coding;q=0.1, ", 200) + "gzip"},
		{"Accept-Encoding: gzip;q=0.001"}, {"Accept-Encoding: gzip2"}, {"Accept-Encoding: xgzip, gzip"},
		{"Accept-Encoding: gzip, *;q=0"}, {"Accept-Encoding: *;q=0, gzip"}, {"Accept-Encoding: gzip;q=0, *"},
		{"Accept-Encoding: gzip", "Via: 1.1 cdn"}} {
		add(gzipPHP(page, h...))
		add(gzipPHP(lpage, h...))
	}
	for _, h := range [][]string{{"Accept-Encoding: x-gzip"}, {"Accept-Encoding: *"}, {"Accept-Encoding: identity", "Accept-Encoding: gzip"},
		{"Accept-Encoding: gzip;q=abc"}} {
		add(gzipPHP(page, h...), gz...)
		add(gzipPHP(lpage, h...), lgz...)
	}

	// HTTP/1.0: nginx's gzip_http_version 1.1 compresses nothing for it;
	// the gateway does, as Apache's mod_deflate (README, gzip row).
	h10 := func(q url.Values, h ...string) gzipReq {
		r := gzipPHP(q, h...)
		r.proto = "HTTP/1.0"
		return r
	}
	add(h10(page, ae), gz...)
	add(h10(lpage, ae), lgz...)
	add(h10(gzipQuery("n", "200000"), ae), gz...)
	add(h10(gzipQuery("n", "100"), ae))
	add(h10(page))
	add(h10(lpage))
	// HTTP/2: the same as HTTP/1.1.
	for _, q := range []url.Values{page, lpage, gzipQuery("n", "100"), gzipQuery("n", "200000")} {
		r := gzipPHP(q, ae)
		r.proto = "h2"
		add(r)
		r = gzipPHP(q)
		r.proto = "h2"
		add(r)
	}

	// Codings of the app's own, "identity" included: left alone by both.
	for _, q := range []url.Values{gzipQuery("c", "zlib"), gzipQuery("c", "ob"), gzipQuery("e", "br"), gzipQuery("e", "identity"), gzipQuery("e", "gzip", "n", "10"),
		gzipQuery("c", "zlib", "cl", "1"), gzipQuery("c", "zlib", "n", "100"), gzipQuery("c", "ob", "n", "100")} {
		add(gzipPHP(q, ae))
		add(gzipPHP(q, "Accept-Encoding: identity"))
	}

	// Cache-Control: no-transform (RFC 9110 section 7.7): nginx 1.22's
	// gzip does not look at it; the gateway leaves the body alone, and
	// says no Vary for a body that never varies.
	for _, cc := range []string{"no-transform", "public, max-age=60, No-Transform"} {
		add(gzipPHP(gzipQuery("cc", cc), ae), nogz...)
		add(gzipPHP(gzipQuery("cc", cc)), "Vary: Accept-Encoding | ")
	}
	add(gzipPHP(gzipQuery("cc", "private"), ae))
	// The app's Vary.
	for _, v := range []string{"Cookie", "*", "accept-encoding", "Accept-Encoding, Cookie"} {
		add(gzipPHP(gzipQuery("vary", v), ae))
		add(gzipPHP(gzipQuery("vary", v)))
	}
	// Statuses: nginx compresses 200, 403 and 404 only; the gateway
	// every status with a body (README, gzip row).
	for _, code := range []string{"201", "301", "410", "500", "503"} {
		add(gzipPHP(gzipQuery("code", code), ae), "Content-Encoding:  | gzip", "Vary:  | Accept-Encoding", "gzip:  | decodes whole")
		add(gzipPHP(gzipQuery("code", code)))
	}
	for _, code := range []string{"403", "404", "204", "304"} {
		add(gzipPHP(gzipQuery("code", code), ae))
		add(gzipPHP(gzipQuery("code", code)))
	}
	// A 1xx as the final status, which PHP lets a script set: nginx
	// sends it, then PHP's body as if it were the next response (a
	// client reads "<p>line 0</p>..." as a status line); the gateway
	// answers 502.
	for _, code := range []string{"100", "103"} {
		for _, h := range [][]string{{ae}, nil} {
			cases = append(cases, gzipCase{req: gzipPHP(gzipQuery("code", code), h...),
				diffs: []string{`status: none: malformed HTTP status code "0</p>" | 502`}})
		}
	}
	// Ranges PHP answers itself, lengths it declares, empty bodies.
	for _, q := range []url.Values{gzipQuery("c", "range"), gzipQuery("c", "range", "cl", "1"), gzipQuery("cl", "1"), gzipQuery("cl", "1", "n", "0"), gzipQuery("n", "0")} {
		add(gzipPHP(q, ae))
		add(gzipPHP(q))
	}
	// X-Accel-Redirect to a stylesheet: nginx's static location gzips
	// it; the gateway sends the file as it is, with its ranges and
	// sendfile (README, X-Accel-Redirect row).
	add(gzipPHP(gzipQuery("c", "accel"), ae), "Content-Encoding: gzip | ", `ETag: W/"TAG" | "TAG"`, "Vary: Accept-Encoding | ", "gzip: decodes whole | ")
	add(gzipPHP(gzipQuery("c", "accel")), "Vary: Accept-Encoding | ")

	// Validators: the app's strong tag is weak on both when compressed
	// (an unquoted one dropped), and a weak one stays. The app compares
	// If-None-Match and If-Match with its tag as text.
	for _, tag := range []string{`"v1"`, `W/"v1"`, "d41d8cd98f00b204e9800998ecf8427e"} {
		for _, h := range []string{"", "If-None-Match: " + tag, `If-None-Match: "v1"`, "If-Match: " + tag, `If-Match: "v2"`} {
			if h == `If-Match: W/"v1"` {
				continue // below
			}
			hs := []string{ae}
			if h != "" {
				hs = append(hs, h)
			}
			add(gzipPHP(gzipQuery("etag", tag), hs...))
			add(gzipPHP(gzipQuery("etag", tag, "cl", "1"), hs...))
		}
	}
	for _, cl := range []url.Values{gzipQuery("etag", `"v1"`), gzipQuery("etag", `"v1"`, "cl", "1")} {
		// The weak tag of a compressed page, in a revalidation: the
		// gateway answers 304 for the app, which never matches it.
		add(gzipPHP(cl, ae, `If-None-Match: W/"v1"`), "status: 200 | 304")
		add(gzipPHP(cl, ae, `If-None-Match: "x", W/"v1"`), "status: 200 | 304")
		// ... and in an update: the app gets its strong tag.
		add(gzipPHP(cl, ae, `If-Match: W/"v1"`), "status: 412 | 200")
	}
	for _, cl := range []url.Values{gzipQuery("etag", `W/"v1"`), gzipQuery("etag", `W/"v1"`, "cl", "1")} {
		// The cost of that: an app that gives out a weak tag itself
		// and compares If-Match with it as text now refuses it (a weak
		// tag never matches If-Match, RFC 9110 section 13.1.1, so an
		// app that compares as the RFC says refuses it either way).
		add(gzipPHP(cl, ae, `If-Match: W/"v1"`), "status: 200 | 412")
		add(gzipPHP(cl, ae, `If-None-Match: W/"v1"`))
	}

	// HEAD: with the length PHP declared, the headers the GET gets on
	// both; without one, nginx promises gzip even for a body too short
	// for it, the gateway leaves the headers as PHP sent them (README).
	add(gzipReq{method: "HEAD", target: gzipPHP(page).target, proto: "HTTP/1.1", headers: []string{ae}}, "Content-Encoding: gzip | ")
	add(gzipReq{method: "HEAD", target: gzipPHP(gzipQuery("n", "100")).target, proto: "HTTP/1.1", headers: []string{ae}}, "Content-Encoding: gzip | ")
	for _, q := range []url.Values{lpage, gzipQuery("etag", `"v1"`, "cl", "1"), gzipQuery("c", "zlib"), gzipQuery("c", "ob")} {
		add(gzipReq{method: "HEAD", target: gzipPHP(q).target, proto: "HTTP/1.1", headers: []string{ae}})
	}

	// A php-fpm worker that dies after its first part: the answer is
	// cut on both, compressed or not, never a body that decodes whole.
	for _, q := range []url.Values{gzipQuery("c", "kill"), gzipQuery("c", "kill", "cl", "1"), gzipQuery("c", "kill", "n", "100"), gzipQuery("c", "kill", "n", "200000")} {
		for _, h := range [][]string{{ae}, nil} {
			c := gzipCase{req: gzipPHP(q, h...), gw: map[string]string{"cut": "yes, a prefix of the page"}}
			if q.Get("n") == "100" && h != nil {
				// Flushed before 256 bytes: sent as it is (README).
				c.diffs = []string{"Content-Encoding: gzip | ", "gzip: does not decode whole | "}
			}
			cases = append(cases, c)
			// Over HTTP/2 too. (Over HTTP/1.0 an answer without a length
			// ends with the connection, and a cut one looks whole from
			// both servers unless compressed.)
			c.req.proto = "h2"
			cases = append(cases, c)
		}
	}
	// A download: nginx compresses it; the gateway keeps its length and
	// ranges (README, gzip row).
	add(gzipPHP(gzipQuery("t", "text/csv", "disp", "attachment; filename=a.csv"), ae), nogz...)
	// A Content-Length shorter than the body PHP prints.
	add(gzipPHP(gzipQuery("clshort", "1"), ae))
	add(gzipPHP(gzipQuery("clshort", "1")))
	// A Range the app ignores, and one it offers with Accept-Ranges.
	add(gzipPHP(page, ae, "Range: bytes=0-9"))
	add(gzipPHP(gzipQuery("ar", "1"), ae, "Range: bytes=0-9"))
	add(gzipPHP(gzipQuery("ar", "1"), "Range: bytes=0-9"))

	// PHP's Transfer-Encoding (its output is never chunked) and invalid
	// lengths: the same answers, except that with a Transfer-Encoding
	// PHP's Content-Length is dropped (README, FastCGI row), where nginx
	// keeps it.
	for _, q := range []url.Values{gzipQuery("te", "chunked"), gzipQuery("te", "chunked", "cl", "1"), gzipQuery("badcl", "abc"), gzipQuery("badcl", "2000, 2000"),
		gzipQuery("badcl", "+2000")} {
		add(gzipPHP(q, ae))
		if q.Get("cl") != "" {
			add(gzipPHP(q), "Content-Length: 2000 | ", "framing: length | chunked")
		} else {
			add(gzipPHP(q))
		}
	}
	// An empty Content-Encoding from PHP (header('Content-Encoding:')):
	// the gateway leaves the answer alone, as for any coding of the
	// app's; nginx compresses it and adds Content-Encoding: gzip after
	// the empty field.
	add(gzipPHP(gzipQuery("e", ""), ae), "Content-Encoding: |gzip | ", "Vary: Accept-Encoding | ", "body: 307 bytes cd77d1e2985812 | 2000 bytes 7eafc231c44b4")
	add(gzipPHP(gzipQuery("e", "")), "Vary: Accept-Encoding | ")
	// A header of nearly 8 KiB (a long Content-Security-Policy, many
	// cookies) left the first piece of the body a few bytes short of
	// php-fpm's 8 KiB record, and the page went out uncompressed; nginx
	// answers 502 past its fastcgi_buffer_size (4 or 8 KiB).
	for _, hdr := range []string{"7800", "7900", "7950", "8000", "8050", "8100", "8150", "16000", "16300"} {
		cases = append(cases, gzipCase{req: gzipPHP(gzipQuery("hdr", hdr, "n", "3000"), ae), diffs: []string{"status: 502 | 200"},
			gw: map[string]string{"Content-Encoding": "gzip", "gzip": "decodes whole"}})
	}
	// Other methods: compressed alike.
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		add(gzipReq{method: m, target: gzipPHP(page).target, proto: "HTTP/1.1", headers: []string{ae, "Content-Length: 0"}})
		add(gzipReq{method: m, target: gzipPHP(gzipQuery("etag", `"v1"`)).target, proto: "HTTP/1.1", headers: []string{ae, "Content-Length: 0", `If-None-Match: W/"v1"`}})
	}
	// Error pages (error_page 404, SESSIONGATE_ERROR_PAGES): gzipped by
	// both; nginx gives its page's ETag, the gateway none, since the
	// page stands for no resource a client could revalidate.
	for _, target := range []string{"/missing.php", "/missing.css"} {
		add(gzipReq{method: "GET", target: target, proto: "HTTP/1.1", headers: []string{ae}}, `ETag: W/"TAG" | `)
		add(gzipReq{method: "GET", target: target, proto: "HTTP/1.1"}, `ETag: "TAG" | `)
	}
	// The same over HTTP/2, where they can be: what the comparison
	// holds does not depend on the protocol.
	n := len(cases)
	for _, c := range cases[:n] {
		if c.req.proto != "HTTP/1.1" || strings.Contains(c.req.target, "c=kill") || strings.Contains(c.req.target, "code=10") ||
			strings.Contains(c.req.target, "hdr=") || len(c.req.headers) > 1 && strings.HasPrefix(c.req.headers[1], "Accept-Encoding") {
			continue
		}
		c.req.proto = "h2"
		c.diffs = slices.Clone(c.diffs)
		for i, d := range c.diffs {
			c.diffs[i] = strings.ReplaceAll(d, "chunked", "stream")
		}
		if strings.Contains(c.req.target, "code=204") {
			// nginx's HTTP/2 drops the type of a 204 (its HTTP/1.1
			// keeps it, as the gateway does over both).
			c.diffs = []string{"Content-Type:  | text/html; charset=UTF-8"}
		}
		cases = append(cases, c)
	}
	compareGzip(t, s, cases, []staticRule{gzipRules[0], gzipRules[1], gzipRules[3], gzipRules[4]})

	// BREACH: the same page, compressed, is one size every time from
	// nginx (an attacker measures each guess exactly), and of varying
	// sizes from the gateway (README, gzip row).
	sizes := map[string]map[int]bool{}
	for _, who := range []string{s.nginx, s.gw} {
		sizes[who] = map[int]bool{}
		for range 6 {
			a := gzipDo(t, who, gzipPHP(page, ae))
			if a.res == nil || a.res.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("%s: %v", who, a.readErr)
			}
			sizes[who][len(a.body)] = true
		}
	}
	if len(sizes[s.nginx]) != 1 || len(sizes[s.gw]) < 2 {
		t.Errorf("sizes of one compressed page: nginx %v, gateway %v", sizes[s.nginx], sizes[s.gw])
	}
}

// TestNginxDiffGzipFlush: what a script flushes reaches the client before
// the script ends, compressed or not, short or long, with a length of its
// own or not, over HTTP/1.1 and HTTP/2.
func TestNginxDiffGzipFlush(t *testing.T) {
	t.Parallel()
	s := startGzipDiff(t)
	run := func(addr, proto, n string, cl bool, ae string) string {
		q := gzipQuery("c", "flush", "n", n)
		if cl {
			q.Set("cl", "1")
		}
		return gzipFlushRun(t, s, addr, proto, "/g.php?"+q.Encode(), n, cl, ae)
	}
	for _, proto := range []string{"HTTP/1.1", "h2"} {
		for _, n := range []string{"100", "3000"} {
			for _, cl := range []bool{false, true} {
				for _, ae := range []string{"gzip", ""} {
					na, ga := s.nginx, s.gw
					if proto == "h2" {
						na, ga = s.nginxTLS, s.gwTLS
					}
					ng, gw := run(na, proto, n, cl, ae), run(ga, proto, n, cl, ae)
					want := ng
					if n == "100" && !cl && ae != "" {
						// Flushed before 256 bytes: a stream of small
						// pieces, which the gateway sends as they are
						// (README, gzip row); nginx compresses each.
						want = strings.Replace(ng, `Content-Encoding "gzip"`, `Content-Encoding ""`, 1)
					}
					if !strings.HasSuffix(gw, "END:read") || gw != want {
						t.Errorf("%s, %s bytes, Content-Length %v, Accept-Encoding %q: nginx %s; gateway %s, want %s",
							proto, n, cl, ae, ng, gw, want)
					}
				}
			}
		}
	}

	// The idiom that answers with a Content-Length and goes on working:
	// uncompressed, the answer ends for the client with its length;
	// compressed, it has none, and ends (the gzip trailer, the last
	// chunk) only with the script, behind nginx too.
	// fastcgi_finish_request() ends it at once.
	for _, c := range []struct {
		q, ae, want string
	}{
		{"c=flush&cl=1&n=3000", "identity", `Content-Encoding "", END:read`},
		{"c=flush&cl=1&n=3000", "gzip", `Content-Encoding "gzip", END:held`},
		{"c=flush&cl=1&n=3000&fin=1", "gzip", `Content-Encoding "gzip", END:read`},
	} {
		for _, addr := range []string{s.nginx, s.gw} {
			if got := gzipWholeRun(t, s, addr, "/g.php?"+c.q, c.ae); got != c.want {
				t.Errorf("%s, Accept-Encoding %s, from %s: %s, want %s", c.q, c.ae, addr, got, c.want)
			}
		}
	}
}

// gzipWholeRun requests target (with &id=... added) from addr, a script
// that answers with its Content-Length, then goes on until the client has
// read the whole answer (or 5 s have passed); it returns the
// Content-Encoding and the script's verdict: END:read when the answer
// ended for the client while the script went on, END:held when only with
// the script's end.
func gzipWholeRun(t *testing.T, s *gzipDiffStack, addr, target, ae string) string {
	t.Helper()
	name := fmt.Sprintf("f%d", gzipFlushID.Add(1))
	r := gzipReq{method: "GET", target: target + "&id=" + name, proto: "HTTP/1.1", headers: []string{"Accept-Encoding: " + ae}}
	res, err := gzipStream(t, addr, r)
	if err != nil {
		return "error: " + err.Error()
	}
	_, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return "body: " + err.Error()
	}
	if err := os.WriteFile(filepath.Join(s.sigDir, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for range 100 {
		if out, err = os.ReadFile(filepath.Join(s.sigDir, name+".out")); err == nil && len(out) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("Content-Encoding %q, %s", res.Header.Get("Content-Encoding"), out)
}

// gzipFlushRun requests target (with &id=... added) from addr, a script
// or view that sends n bytes, then waits for the client to have read them
// before it ends; it returns what the client saw: the Content-Encoding,
// and END:read when the first part arrived while the app still waited,
// END:held when only at its end. With cl, the answer ends with its first
// part and the app's verdict is in SIGDIR/<id>.out.
func gzipFlushRun(t *testing.T, s *gzipDiffStack, addr, proto, target, n string, cl bool, ae string) string {
	t.Helper()
	name := fmt.Sprintf("f%d", gzipFlushID.Add(1))
	r := gzipReq{method: "GET", target: target + "&id=" + name, proto: proto}
	if ae != "" {
		r.headers = []string{"Accept-Encoding: " + ae}
	}
	res, err := gzipStream(t, addr, r)
	if err != nil {
		return "error: " + err.Error()
	}
	defer res.Body.Close()
	var body io.Reader = res.Body
	ce := res.Header.Get("Content-Encoding")
	if ce == "gzip" {
		if body, err = gzip.NewReader(res.Body); err != nil {
			return "gzip: " + err.Error()
		}
	}
	size, _ := strconv.Atoi(n)
	first := make([]byte, size)
	if _, err := io.ReadFull(body, first); err != nil {
		return "first part: " + err.Error()
	}
	// Read: the app may go on.
	if err := os.WriteFile(filepath.Join(s.sigDir, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(body)
	if err != nil {
		return "rest: " + err.Error()
	}
	end := string(rest)
	if cl {
		var out []byte
		for range 100 {
			if out, err = os.ReadFile(filepath.Join(s.sigDir, name+".out")); err == nil && len(out) > 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		end = string(out)
	}
	return fmt.Sprintf("Content-Encoding %q, %s", ce, end)
}

// gzipFlushID numbers gzipFlushRun's requests (tests share one counter).
var gzipFlushID atomic.Int64

// gzipStream sends r to addr and returns the response as soon as its
// header is in, its body to be read as it comes.
func gzipStream(t *testing.T, addr string, r gzipReq) (*http.Response, error) {
	t.Helper()
	if r.proto == "h2" {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true, DisableCompression: true}
		t.Cleanup(tr.CloseIdleConnections)
		req, err := http.NewRequest(r.method, "https://"+addr+r.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "shop.example"
		for _, h := range r.headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Add(k, strings.TrimSpace(v))
		}
		return (&http.Client{Transport: tr, Timeout: 15 * time.Second}).Do(req)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(conn, "%s %s %s\r\nHost: shop.example\r\n%s\r\n", r.method, r.target, r.proto, strings.Join(append(r.headers, ""), "\r\n"))
	return http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: r.method})
}

const gzipDjangoSettings = `
SECRET_KEY = "gzip-diff-test-secret-key-0123456789-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware", "django.middleware.http.ConditionalGetMiddleware"]
ROOT_URLCONF = "gzproj.urls"
DATABASES = {}
`

// gzipDjangoURLs: /dj/page/ answers as g.php does (t, n, code, cc, vary,
// etag, e); /dj/gz/ through Django's own GZipMiddleware; /dj/stream/ a
// StreamingHttpResponse of n bytes, then, once SIGDIR/<id> exists (or
// after 5 s), END:read or END:held.
const gzipDjangoURLs = `
import os, time
from django.urls import path
from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.gzip import gzip_page

def body(n):
    out, i = [], 0
    size = 0
    while size < n:
        line = "<p>line %d</p>\n" % i
        out.append(line)
        size += len(line)
        i += 1
    return "".join(out)[:n].encode()

def page(request):
    g = request.GET
    r = HttpResponse(body(int(g.get("n", "2000"))), content_type=g.get("t", "text/html; charset=utf-8"),
                     status=int(g.get("code", "200")))
    for k, h in (("cc", "Cache-Control"), ("vary", "Vary"), ("etag", "ETag"), ("e", "Content-Encoding"),
                 ("disp", "Content-Disposition")):
        if k in g:
            r[h] = g[k]
    return r

def stream(request):
    g = request.GET
    sig = os.path.join("SIGDIR", "".join(c for c in g.get("id", "") if c.isalnum()))
    def parts():
        yield body(int(g.get("n", "2000")))
        for _ in range(500):
            if os.path.exists(sig):
                break
            time.sleep(0.01)
        yield b"END:read" if os.path.exists(sig) else b"END:held"
    return StreamingHttpResponse(parts(), content_type="text/html; charset=utf-8")

urlpatterns = [path("dj/page/", page), path("dj/gz/", gzip_page(page)), path("dj/stream/", stream)]
`

// startGzipDiffDjango starts gunicorn with gzipDjangoURLs, nginx proxying
// /dj/ to it with the shop's gzip settings, and the gateway with
// SESSIONGATE_DJANGO_PATHS=/dj/.
func startGzipDiffDjango(t *testing.T) *gzipDiffStack {
	t.Helper()
	harness.Require(t, "gunicorn", "django", "nginx")
	sig := harness.PHPTempDir(t)
	proj := djangoProject(t, "gzproj", gzipDjangoSettings, strings.ReplaceAll(gzipDjangoURLs, "SIGDIR", sig))
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: proj, App: "gzproj.wsgi:application", Workers: 1, Threads: 4})
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return fmt.Sprintf(`
    server {
        listen %s;
        gzip on;
        gzip_vary on;
        gzip_proxied any;
        gzip_min_length 256;
        gzip_types %s;
        location /dj/ {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
`, addrs[0], gzipDiffTypes, g.Addr)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s\ngunicorn log:\n%s", ng.Log(), g.Log())
		}
	})
	p := startBinary(t, buildGateway(t), []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_INDEX=off", "SESSIONGATE_SESSIONS=off", "SESSIONGATE_DJANGO_URL=" + g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/"})
	return &gzipDiffStack{nginx: ng.Addrs[0], gw: strings.TrimPrefix(p.URL, "http://"), sigDir: sig}
}

// TestNginxDiffGzipDjango: Django's answers through nginx's proxy_pass
// with gzip and through the gateway.
func TestNginxDiffGzipDjango(t *testing.T) {
	t.Parallel()
	s := startGzipDiffDjango(t)
	ae := "Accept-Encoding: gzip, deflate, br"
	var cases []gzipCase
	add := func(target string, headers []string, diffs ...string) {
		method := "GET"
		if m, rest, ok := strings.Cut(target, " "); ok {
			method, target = m, rest
		}
		cases = append(cases, gzipCase{req: gzipReq{method: method, target: target, proto: "HTTP/1.1", headers: headers}, diffs: diffs})
	}
	dj := func(view string, q url.Values) string { return "/dj/" + view + "/?" + q.Encode() }
	for _, ct := range []string{"text/html; charset=utf-8", "application/json", "text/css", "image/png", "application/vnd.api+json"} {
		for _, n := range []string{"100", "3000", "200000"} {
			add(dj("page", gzipQuery("t", ct, "n", n)), []string{ae})
			add(dj("page", gzipQuery("t", ct, "n", n)), nil)
		}
	}
	for _, q := range []url.Values{gzipQuery("vary", "Cookie"), gzipQuery("vary", "*"), gzipQuery("code", "404"), gzipQuery("code", "204"), gzipQuery("etag", `"v1"`),
		gzipQuery("etag", `W/"v1"`), gzipQuery("e", "identity")} {
		add(dj("page", q), []string{ae})
	}
	// ConditionalGetMiddleware's tag: weak where compressed. Left alone by
	// the gateway, compressed by nginx: no-transform and a download.
	tag := `"7eafc231c44b43b9e542458da1f40172"`
	for _, q := range []url.Values{gzipQuery("cc", "no-transform"), gzipQuery("disp", "attachment; filename=a.html")} {
		add(dj("page", q), []string{ae}, "Content-Encoding: gzip | ", "ETag: W/"+tag+" | "+tag, "Vary: Accept-Encoding | ", "gzip: decodes whole | ")
	}
	// Compressed by the gateway only: statuses other than 200, 403, 404.
	for _, code := range []string{"201", "500"} {
		add(dj("page", gzipQuery("code", code)), []string{ae}, "Content-Encoding:  | gzip", "Content-Length: 2000 | ", "ETag: "+tag+" | W/"+tag,
			"Vary:  | Accept-Encoding", "gzip:  | decodes whole")
	}
	add(dj("gz", gzipQuery()), []string{ae})
	add(dj("gz", gzipQuery()), nil)
	add(dj("gz", gzipQuery("n", "100")), []string{ae})
	add("HEAD "+dj("gz", gzipQuery()), []string{ae})
	// x-gzip (README, gzip row).
	add(dj("page", gzipQuery()), []string{"Accept-Encoding: x-gzip"}, "Content-Encoding:  | gzip", "Content-Length: 2000 | ",
		"ETag: "+tag+" | W/"+tag, "gzip:  | decodes whole")
	add(dj("page", gzipQuery("n", "100000")), []string{ae, "Range: bytes=0-9"})
	add(dj("page", gzipQuery("etag", `"v1"`)), []string{ae, `If-None-Match: W/"v1"`})
	add(dj("page", gzipQuery("etag", `"v1"`)), []string{ae, `If-None-Match: "v1"`})
	add(dj("page", gzipQuery()), []string{ae, `If-None-Match: W/"ETAG"`})
	add("HEAD "+dj("page", gzipQuery()), []string{ae})
	add("HEAD "+dj("page", gzipQuery("n", "100")), []string{ae})
	compareGzip(t, s, cases, gzipRules[1:])

	// A StreamingHttpResponse's first part reaches the client while the
	// view goes on, compressed or not.
	for _, n := range []string{"100", "3000"} {
		for _, ae := range []string{"gzip", ""} {
			ng := gzipFlushRun(t, s, s.nginx, "HTTP/1.1", "/dj/stream/?n="+n, n, false, ae)
			gw := gzipFlushRun(t, s, s.gw, "HTTP/1.1", "/dj/stream/?n="+n, n, false, ae)
			// nginx holds a compressed part until the next comes (its
			// gzip waits for more, proxy_buffering gives it no flush).
			want := strings.Replace(ng, "END:held", "END:read", 1)
			if n == "100" && ae != "" {
				want = strings.Replace(want, `Content-Encoding "gzip"`, `Content-Encoding ""`, 1)
			}
			if gw != want {
				t.Errorf("stream of %s bytes, Accept-Encoding %q: nginx %s; gateway %s, want %s", n, ae, ng, gw, want)
			}
		}
	}
}

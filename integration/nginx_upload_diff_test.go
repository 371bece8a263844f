package integration

// A differential test of request bodies and uploads on the PHP path: the
// same bytes sent to Debian 12's nginx and to the gateway, configured alike
// (client_max_body_size and SESSIONGATE_MAX_BODY, fastcgi_request_buffering
// and SESSIONGATE_REQUEST_BUFFERING), in front of one php-fpm whose
// upload_max_filesize and post_max_size are small, and what PHP made of
// the body compared: $_FILES, $_POST, CONTENT_LENGTH, php://input.

import (
	"bufio"
	"crypto/tls"
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

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testh2"
	"github.com/sessiongate/sessiongate/internal/testnet"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

// uploadDumpPHP writes to DUMPDIR/<X-Case>.json what PHP made of the body:
// each $_FILES entry (field, index, name, full_path, type, size, error and
// the SHA-1 of the uploaded file), $_POST, CONTENT_LENGTH, CONTENT_TYPE,
// the length of php://input and the last error (post_max_size's warning).
const uploadDumpPHP = `<?php
function sg_str($v) { return preg_match('//u', $v) ? $v : 'hex:' . bin2hex($v); }
$o = [];
foreach (['CONTENT_LENGTH', 'CONTENT_TYPE', 'REQUEST_METHOD'] as $k) { if (isset($_SERVER[$k])) { $o[$k] = sg_str((string)$_SERVER[$k]); } }
$files = [];
foreach ($_FILES as $field => $e) {
  foreach ((array)$e['name'] as $i => $_) {
    $g = fn($k) => is_array($e[$k] ?? null) ? ($e[$k][$i] ?? null) : ($e[$k] ?? null);
    $tmp = $g('tmp_name');
    $files[] = [$field, $i, $g('name'), $g('full_path'), $g('type'), $g('size'), $g('error'),
      (is_string($tmp) && $tmp !== '' && is_file($tmp)) ? sha1_file($tmp) : ''];
  }
}
$o['_files'] = sg_str(json_encode($files, JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_UNICODE));
$o['_post'] = sg_str(json_encode($_POST, JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_UNICODE));
$o['_inlen'] = (string)strlen(file_get_contents('php://input'));
$err = error_get_last();
$o['_err'] = $err ? sg_str($err['message']) : '';
$j = json_encode($o);
$id = $_SERVER['HTTP_X_CASE'] ?? '';
if (preg_match('/^[a-z0-9]+$/', $id)) { file_put_contents('DUMPDIR/' . $id . '.json', $j); }
header('Content-Type: application/json');
echo $j;
`

// The limits both sides run with: PHP's own, and the servers' body limit
// above post_max_size so that PHP's errors can be reached.
const (
	upMaxFile = 90 << 10  // upload_max_filesize
	upMaxPost = 110 << 10 // post_max_size
	upMaxBody = 128 << 10 // client_max_body_size, SESSIONGATE_MAX_BODY
)

// uploadPairs are nginx and gateway pairs: buffering on, buffering off,
// and TLS with HTTP/2 (buffering on).
type uploadPairs struct {
	on, off, secure    nginxDiffPair
	gwOn, gwOff, gwTLS *gwProc
	dumpDir            string
}

func startUploadDiff(t *testing.T) uploadPairs {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "nginx")
	var u uploadPairs
	u.dumpDir = harness.PHPTempDir(t)
	root := filepath.Join(t.TempDir(), "root")
	writeTree(t, root, map[string]string{"up.php": strings.ReplaceAll(uploadDumpPHP, "DUMPDIR", u.dumpDir)})
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 6, Values: map[string]string{
		"upload_max_filesize": strconv.Itoa(upMaxFile/1024) + "K",
		"post_max_size":       strconv.Itoa(upMaxPost/1024) + "K",
		"display_errors":      "0",
	}})
	cert, key := testtls.Pair(t)
	limit := fmt.Sprintf("client_max_body_size %dk;\n        client_body_timeout 1s;", upMaxBody>>10)
	ng := harness.StartNginx(t, 3, func(addrs []string) string {
		return nginxPHPShop(addrs[0], root, fpm.Addr, limit, "") +
			nginxPHPShop(addrs[1], root, fpm.Addr, limit, "fastcgi_request_buffering off;") +
			nginxPHPShop(addrs[2]+" ssl http2", root, fpm.Addr, limit+"\n        ssl_certificate "+cert+";\n        ssl_certificate_key "+key+";", "")
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
		}
	})
	bin := buildGateway(t)
	start := func(env ...string) *gwProc {
		return startBinary(t, bin, append([]string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
			"SESSIONGATE_PHP_MAX_CONNS=1", "SESSIONGATE_SESSIONS=off", fmt.Sprintf("SESSIONGATE_MAX_BODY=%dk", upMaxBody>>10),
			"SESSIONGATE_READ_TIMEOUT=1s"}, env...))
	}
	u.gwOn = start()
	u.gwOff = start("SESSIONGATE_REQUEST_BUFFERING=off")
	u.gwTLS = start("SESSIONGATE_TLS_CERT="+cert, "SESSIONGATE_TLS_KEY="+key)
	addr := func(p *gwProc) string { return strings.TrimPrefix(strings.TrimPrefix(p.URL, "http://"), "https://") }
	u.on = nginxDiffPair{nginx: ng.Addrs[0], gw: addr(u.gwOn)}
	u.off = nginxDiffPair{nginx: ng.Addrs[1], gw: addr(u.gwOff)}
	u.secure = nginxDiffPair{nginx: ng.Addrs[2], gw: addr(u.gwTLS)}
	return u
}

// mpPart is one part of a multipart body: its Content-Disposition
// parameters after form-data (as sent), an optional Content-Type, and its
// content.
type mpPart struct {
	disp, ctype, content string
}

// mpBody builds a body with boundary b and line ending nl.
func mpBody(b, nl string, parts ...mpPart) string {
	var s strings.Builder
	for _, p := range parts {
		s.WriteString("--" + b + nl + "Content-Disposition: form-data; " + p.disp + nl)
		if p.ctype != "" {
			s.WriteString("Content-Type: " + p.ctype + nl)
		}
		s.WriteString(nl + p.content + nl)
	}
	s.WriteString("--" + b + "--" + nl)
	return s.String()
}

// chunkBody frames body in chunks of n bytes.
func chunkBody(body string, n int) string {
	var s strings.Builder
	for len(body) > 0 {
		c := body[:min(n, len(body))]
		body = body[len(c):]
		fmt.Fprintf(&s, "%x\r\n%s\r\n", len(c), c)
	}
	s.WriteString("0\r\n\r\n")
	return s.String()
}

// uploadCase is a diffCase with the pair it goes to.
type uploadCase struct {
	diffCase
	pair  string // "on", "off", "h2"
	split bool   // h2: the body in DATA frames of 16 KiB
}

// sendSplit is diffCase.sendH2 with the body in frames of 16 KiB.
func (c uploadCase) sendSplit(t *testing.T, addr, dumpDir, id string) diffAnswer {
	t.Helper()
	method, target, _ := strings.Cut(c.line, " ")
	target, _, _ = strings.Cut(target, " ")
	fields := []testh2.Field{{":method", method}, {":scheme", "https"}, {":path", target}, {":authority", "shop.example"}}
	for _, h := range c.headers {
		k, v, _ := strings.Cut(h, ":")
		fields = append(fields, testh2.Field{strings.ToLower(k), strings.TrimSpace(v)})
	}
	fields = append(fields, testh2.Field{"x-case", id})
	res := testh2.DoSplit(t, addr, fields, []byte(c.body))
	return readDump(t, c.diffCase, diffAnswer{status: res.Status}, dumpDir, id)
}

func uploadCases() []uploadCase {
	const bd = "XyZzY"
	ct := "Content-Type: multipart/form-data; boundary=" + bd
	post := func(name, body string, headers ...string) diffCase {
		return diffCase{name: name, line: "POST /up.php HTTP/1.1", body: body,
			headers: append(headers, "Content-Length: "+strconv.Itoa(len(body)))}
	}
	file := func(field, filename, content string) mpPart {
		return mpPart{disp: `name="` + field + `"; filename="` + filename + `"`, ctype: "application/octet-stream", content: content}
	}
	field := func(name, v string) mpPart { return mpPart{disp: `name="` + name + `"`, content: v} }
	several := mpBody(bd, "\r\n", field("a", "1"), file("f1", "one.txt", "first file"),
		mpPart{disp: `name="f2"; filename="two.png"`, ctype: "image/png", content: "\x89PNG\r\n\x1a\n\x00\x01binary"},
		field("arr[]", "x"), field("arr[]", "y"), file("multi[]", "m1.txt", "m1"), file("multi[]", "m2.txt", "m2"), field("b", "two\r\nlines"))
	big := func(n int) string { return strings.Repeat("0123456789abcdef", n/16+1)[:n] }
	// A body of exactly n bytes: one file padded to fit.
	sized := func(n int) string {
		empty := mpBody(bd, "\r\n", file("f", "pad.bin", ""))
		return mpBody(bd, "\r\n", file("f", "pad.bin", big(n-len(empty))))
	}
	var cs []diffCase
	add := func(c ...diffCase) { cs = append(cs, c...) }
	add(post("several files and fields", several, ct),
		post("empty file", mpBody(bd, "\r\n", file("e", "empty.txt", ""), field("a", "1")), ct),
		post("file with empty filename", mpBody(bd, "\r\n", file("e", "", ""), field("a", "1")), ct),
		post("file with empty filename and content", mpBody(bd, "\r\n", file("e", "", "data")), ct),
		post("part with no filename", mpBody(bd, "\r\n", mpPart{disp: `name="nf"`, ctype: "text/plain", content: "plain"}), ct),
		post("filename with escaped quote", mpBody(bd, "\r\n", file("q", `a\"b.txt`, "q")), ct),
		post("filename with unescaped quote", mpBody(bd, "\r\n", mpPart{disp: `name="q"; filename="a"b.txt"`, content: "q"}), ct),
		post("filename with semicolon", mpBody(bd, "\r\n", file("s", "a;b.txt", "s")), ct),
		post("filename with slashes", mpBody(bd, "\r\n", file("p", "dir/sub/c.txt", "p")), ct),
		post("filename with backslashes", mpBody(bd, "\r\n", file("p", `C:\Users\x\d.txt`, "p")), ct),
		post("filename in UTF-8", mpBody(bd, "\r\n", file("u", "café ü.txt", "u")), ct),
		post("filename*=", mpBody(bd, "\r\n", mpPart{disp: `name="u"; filename*=UTF-8''caf%C3%A9.txt`, content: "u"}), ct),
		post("filename and filename*=", mpBody(bd, "\r\n", mpPart{disp: `name="u"; filename="cafe.txt"; filename*=UTF-8''caf%C3%A9.txt`, content: "u"}), ct),
		post("very long filename", mpBody(bd, "\r\n", file("l", strings.Repeat("n", 1000)+".txt", "l")), ct),
		post("no boundary", several, "Content-Type: multipart/form-data"),
		post("other boundary", several, "Content-Type: multipart/form-data; boundary=other"),
		post("duplicate boundary", several, "Content-Type: multipart/form-data; boundary=other; boundary="+bd),
		post("quoted boundary", several, `Content-Type: multipart/form-data; boundary="`+bd+`"`),
		post("preamble", "This is a preamble.\r\n"+several, ct),
		post("LF line endings", mpBody(bd, "\n", field("a", "1"), file("f", "lf.txt", "lf")), ct),
		post("last boundary without CRLF", strings.TrimSuffix(several, "\r\n"), ct),
		post("no last boundary", strings.TrimSuffix(several, "--"+bd+"--\r\n"), ct),
		post("file over upload_max_filesize", mpBody(bd, "\r\n", field("a", "1"), file("f", "big.bin", big(upMaxFile+1)), file("g", "small.txt", "s")), ct),
		post("body over post_max_size", sized(upMaxPost+1), ct),
		post("body at MAX_BODY", sized(upMaxBody), ct),
		post("body over MAX_BODY", sized(upMaxBody+1), ct),
		post("urlencoded", "a=1&b=%C3%A9&c[]=x", "Content-Type: application/x-www-form-urlencoded"),
		post("raw body", big(5000), "Content-Type: application/octet-stream"),
		post("expect 100-continue", several, ct, "Expect: 100-continue"),
		diffCase{name: "chunked upload", line: "POST /up.php HTTP/1.1", body: chunkBody(several, 100), headers: []string{ct, "Transfer-Encoding: chunked"}},
		diffCase{name: "chunked large upload", line: "POST /up.php HTTP/1.1", body: chunkBody(sized(80<<10), 8192), headers: []string{ct, "Transfer-Encoding: chunked"}},
		diffCase{name: "chunked at MAX_BODY", line: "POST /up.php HTTP/1.1", body: chunkBody(sized(upMaxBody), 8192), headers: []string{ct, "Transfer-Encoding: chunked"}},
		diffCase{name: "chunked with Expect over MAX_BODY", line: "POST /up.php HTTP/1.1", body: chunkBody(sized(upMaxBody+1), 8192), headers: []string{ct, "Transfer-Encoding: chunked", "Expect: 100-continue"}},
		post("expect with an empty body", "", ct, "Expect: 100-continue"),
		post("expect in other case", several, ct, "Expect: 100-Continue"),
		post("64 KiB", sized(64<<10), ct),
		post("64 KiB and one", sized(64<<10+1), ct),
		diffCase{name: "chunked 64 KiB and one", line: "POST /up.php HTTP/1.1", body: chunkBody(sized(64<<10+1), 8192), headers: []string{ct, "Transfer-Encoding: chunked"}},
		diffCase{name: "chunked with a trailer", line: "POST /up.php HTTP/1.1", body: strings.TrimSuffix(chunkBody(several, 100), "\r\n") + "X-Sum: 1\r\n\r\n", headers: []string{ct, "Transfer-Encoding: chunked"}},
		diffCase{name: "chunked over MAX_BODY", line: "POST /up.php HTTP/1.1", body: chunkBody(sized(upMaxBody+1), 8192), headers: []string{ct, "Transfer-Encoding: chunked"}},
	)
	var out []uploadCase
	for _, c := range cs {
		out = append(out, uploadCase{c, "on", false})
	}
	// Streamed to PHP: over 64 KiB with buffering off.
	for _, c := range []diffCase{post("streamed upload", sized(80<<10), ct), post("streamed several", several, ct),
		post("streamed 64 KiB", sized(64<<10), ct), post("streamed 64 KiB and one", sized(64<<10+1), ct),
		post("streamed with Expect", sized(80<<10), ct, "Expect: 100-continue"),
		post("streamed over upload_max_filesize", mpBody(bd, "\r\n", file("f", "big.bin", big(upMaxFile+1))), ct),
		post("streamed over post_max_size", sized(upMaxPost+1), ct), post("streamed over MAX_BODY", sized(upMaxBody+1), ct),
		{name: "streamed chunked", line: "POST /up.php HTTP/1.1", body: chunkBody(sized(80<<10), 8192), headers: []string{ct, "Transfer-Encoding: chunked"}}} {
		out = append(out, uploadCase{c, "off", false})
	}
	for _, c := range []diffCase{post("h2 several", several, ct), post("h2 empty file", mpBody(bd, "\r\n", file("e", "empty.txt", "")), ct),
		post("h2 over MAX_BODY", sized(upMaxBody+1), ct),
		{name: "h2 Content-Length over the body", line: "POST /up.php HTTP/1.1", body: several, headers: []string{ct, "Content-Length: " + strconv.Itoa(len(several)+10)}},
		{name: "h2 Content-Length under the body", line: "POST /up.php HTTP/1.1", body: several, headers: []string{ct, "Content-Length: " + strconv.Itoa(len(several)-10)}},
		{name: "h2 without Content-Length", line: "POST /up.php HTTP/1.1", body: several, headers: []string{ct}}} {
		c.proto = "h2"
		out = append(out, uploadCase{c, "h2", false})
	}
	for _, c := range []diffCase{post("h2 60 KiB in frames", sized(60<<10), ct),
		{name: "h2 60 KiB in frames without Content-Length", line: "POST /up.php HTTP/1.1", body: sized(60 << 10), headers: []string{ct}}} {
		c.proto = "h2"
		out = append(out, uploadCase{c, "h2", true})
	}
	return out
}

// uploadKnownDiffs are the differences from nginx the gateway means to
// make with request bodies, as README says.
var uploadKnownDiffs = []knownDiff[paramDiff]{
	{"HTTP/2 DATA beyond the Content-Length resets the stream", func(d paramDiff) bool {
		// RFC 9113 section 8.1.1 makes such a request malformed, a
		// stream error; nginx answers 400. PHP runs behind neither.
		cl := d.c.headerValues("Content-Length")
		n := -1
		if len(cl) == 1 {
			n, _ = strconv.Atoi(cl[0])
		}
		return d.c.proto == "h2" && n >= 0 && n < len(d.c.body) &&
			d.key == "status" && d.n == "400" && d.g == "0" && d.nAns.php == nil && d.gAns.php == nil
	}},
	{"a chunked body reaches PHP with its length when buffering is off", func(d paramDiff) bool {
		// nginx with fastcgi_request_buffering off streams a chunked body
		// without CONTENT_LENGTH, and php-fpm reads no body without one:
		// the upload is lost. The gateway reads it whole first.
		if !slices.Contains(d.c.headerValues("Transfer-Encoding"), "chunked") || !strings.HasPrefix(d.c.name, "streamed") {
			return false
		}
		switch d.key {
		case "CONTENT_LENGTH":
			return d.nok && d.n == "" && d.g != "" && d.g != "0"
		case "_files":
			return d.n == "[]" && d.g != "[]"
		}
		return false
	}},
}

// TestNginxDiffUploads sends each of uploadCases to nginx and the gateway
// and compares what PHP made of the body. Every difference must be one of
// uploadKnownDiffs, each of which must still be seen.
func TestNginxDiffUploads(t *testing.T) {
	t.Parallel()
	u := startUploadDiff(t)
	seen := map[string]int{}
	for i, c := range uploadCases() {
		pair := u.on
		switch c.pair {
		case "off":
			pair = u.off
		case "h2":
			pair = u.secure
		}
		send := c.send
		if c.split {
			send = c.sendSplit
		}
		n := send(t, pair.nginx, u.dumpDir, "n"+strconv.Itoa(i))
		g := send(t, pair.gw, u.dumpDir, "g"+strconv.Itoa(i))
		if testing.Verbose() {
			t.Logf("%s: nginx %d %v\n gateway %d %v", c.name, n.status, n.php, g.status, g.php)
		}
		_, nport, _ := net.SplitHostPort(pair.nginx)
		_, gport, _ := net.SplitHostPort(pair.gw)
		judgeDiffs(t, compareAnswers(c.diffCase, n, g, nport, gport), uploadKnownDiffs, seen, "")
	}
	knownAllSeen(t, uploadKnownDiffs, seen)
	for _, p := range []*gwProc{u.gwOn, u.gwOff, u.gwTLS} {
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(p.URL, "http://"), "https://"))
		if h := heldBy(t, p, port); len(h.spools) > 0 {
			t.Errorf("spool files left open: %v", h.spools)
		}
	}
}

// expectFirst sends a request's head with Expect: 100-continue and no body
// and returns the status of the first response line the server sends
// within a second (0 for none).
func expectFirst(t *testing.T, addr, path string, length int) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/octet-stream\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", path, length)
	c.SetReadDeadline(time.Now().Add(time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	return res.StatusCode
}

// TestNginxDiffUploadExpect: a client that asks Expect: 100-continue for a
// body over the limit gets 413 before it sends the body, from both; one
// under the limit gets 100 Continue.
func TestNginxDiffUploadExpect(t *testing.T) {
	t.Parallel()
	u := startUploadDiff(t)
	for _, pair := range []nginxDiffPair{u.on, u.off} {
		for _, n := range []int{upMaxBody, upMaxBody + 1} {
			ns, gs := expectFirst(t, pair.nginx, "/up.php", n), expectFirst(t, pair.gw, "/up.php", n)
			want := map[bool]int{true: 100, false: 413}[n <= upMaxBody]
			if ns != want {
				t.Errorf("Expect: 100-continue, Content-Length %d: nginx's first answer %d, want %d", n, ns, want)
			}
			if ns != gs {
				t.Errorf("Expect: 100-continue, Content-Length %d: nginx's first answer %d, gateway's %d", n, ns, gs)
			}
		}
	}
}

// cutUpload sends the head of an upload of length bytes and half its body
// to addr, then closes the connection.
// A chunked one (chunked) is cut in the middle of a chunk of length bytes.
func cutUpload(t *testing.T, addr, id string, length int, chunked bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	framing := fmt.Sprintf("Content-Length: %d", length)
	if chunked {
		framing = fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x", length)
	}
	fmt.Fprintf(c, "POST /up.php HTTP/1.1\r\nHost: shop.example\r\nX-Case: %s\r\nContent-Type: application/octet-stream\r\n%s\r\n\r\n", id, framing)
	io.WriteString(c, strings.Repeat("c", length/2))
	time.Sleep(200 * time.Millisecond)
	c.Close()
}

// cutLines counts the access lines of requests cut short in log.
func cutLines(log string) int {
	return strings.Count(log, `"status":499`) + strings.Count(log, `"status":400`)
}

// TestNginxDiffUploadCut: an upload the client abandons half-way. With
// buffering on, PHP runs on neither side; the gateway's access line says
// 499 (or 400). With buffering off both hand PHP what came of a body of
// known length; a chunked one only nginx does.
func TestNginxDiffUploadCut(t *testing.T) {
	t.Parallel()
	u := startUploadDiff(t)
	for _, tc := range []struct {
		name    string
		pair    nginxDiffPair
		gw      *gwProc
		length  int
		chunked bool
	}{{"buffering on, small", u.on, u.gwOn, 20000, false}, {"buffering on, spooled", u.on, u.gwOn, 100000, false},
		{"buffering on, chunked", u.on, u.gwOn, 100000, true},
		{"buffering off, streamed", u.off, u.gwOff, 100000, false}, {"buffering off, chunked", u.off, u.gwOff, 100000, true}} {
		before := cutLines(tc.gw.stderr.String())
		cutUpload(t, tc.pair.nginx, "ncut", tc.length, tc.chunked)
		cutUpload(t, tc.pair.gw, "gcut", tc.length, tc.chunked)
		time.Sleep(500 * time.Millisecond)
		_, nerr := os.Stat(filepath.Join(u.dumpDir, "ncut.json"))
		_, gerr := os.Stat(filepath.Join(u.dumpDir, "gcut.json"))
		if testing.Verbose() {
			t.Logf("%s: PHP ran behind nginx: %v, behind the gateway: %v", tc.name, nerr == nil, gerr == nil)
		}
		// A chunked body with buffering off: nginx streams it to php-fpm
		// without CONTENT_LENGTH, PHP runs at once on no body; the
		// gateway reads it whole first (README).
		nginxRan := nerr == nil
		if tc.chunked && tc.gw == u.gwOff && nginxRan {
			nginxRan = false
		}
		if nginxRan != (gerr == nil) {
			t.Errorf("%s: PHP ran behind nginx: %v, behind the gateway: %v", tc.name, nerr == nil, gerr == nil)
		}
		if tc.gw == u.gwOn {
			if gerr == nil {
				t.Errorf("%s: PHP ran on a cut body", tc.name)
			}
			if _, ok := textWhen(tc.gw.stderr.String, func(s string) bool { return cutLines(s) > before }); !ok {
				t.Errorf("%s: no 499 or 400 logged:\n%s", tc.name, tc.gw.stderr.String())
			}
		}
		os.Remove(filepath.Join(u.dumpDir, "ncut.json"))
		os.Remove(filepath.Join(u.dumpDir, "gcut.json"))
	}
	for _, p := range []*gwProc{u.gwOn, u.gwOff} {
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(p.URL, "http://"))
		var h gwHeld
		for range 20 {
			if h = heldBy(t, p, port); len(h.spools) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(h.spools) > 0 {
			t.Errorf("spool files left open: %v", h.spools)
		}
	}
}

const uploadDjangoSettings = `
SECRET_KEY = "upload-diff-secret-key-0123456789-0123456789-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
MIDDLEWARE = []
ROOT_URLCONF = "updiff.urls"
DATABASES = {}
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
`

// uploadDjangoURLs dumps what Django made of the body: request.FILES (field,
// name, content type, size, SHA-1), request.POST, the body's length and
// CONTENT_LENGTH, or the error parsing gave.
const uploadDjangoURLs = `
import hashlib, json, os
from django.urls import re_path
from django.http import HttpResponse

def up(request):
    case = request.META.get("HTTP_X_CASE", "")
    if case.isalnum():
        open(os.path.join(os.environ["SG_DUMP"], case), "w").close()
    out = {"CONTENT_LENGTH": request.META.get("CONTENT_LENGTH", "<absent>")}
    try:
        out["bodylen"] = len(request.body)
        out["POST"] = sorted((k, v) for k, vs in request.POST.lists() for v in vs)
        out["FILES"] = sorted((k, f.name, f.content_type, f.size, hashlib.sha1(f.read()).hexdigest())
                              for k, fs in request.FILES.lists() for f in fs)
    except Exception as e:
        out["error"] = type(e).__name__
    return HttpResponse(json.dumps(out, ensure_ascii=False), content_type="application/json")

urlpatterns = [re_path(r"", up)]
`

// TestNginxDiffUploadsDjango: the multipart cases on the Django path, through
// nginx's proxy_pass and through the gateway to one gunicorn; what Django
// made of each body must be the same.
func TestNginxDiffUploadsDjango(t *testing.T) {
	t.Parallel()
	harness.Require(t, "gunicorn", "django", "nginx")
	proj := djangoProject(t, "updiff", uploadDjangoSettings, uploadDjangoURLs)
	dump := t.TempDir()
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: proj, App: "updiff.wsgi:application", Workers: 1, Threads: 4,
		Env: []string{"SG_DUMP=" + dump}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})
	ng := harness.StartNginxDjango(t, harness.NginxDjangoOptions{Upstream: g.Addr, Location: "/dj/", MaxBody: "1m"})
	cfg, err := config.Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_INDEX=off", "SESSIONGATE_SESSIONS=off", "SESSIONGATE_DJANGO_URL=" + g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/"})
	if err != nil {
		t.Fatal(err)
	}
	gw := strings.TrimPrefix(startGateways(t, cfg, 1)[0].URL, "http://")
	ngOff := harness.StartNginxDjango(t, harness.NginxDjangoOptions{Upstream: g.Addr, Location: "/dj/", MaxBody: "1m",
		LocationExtra: "proxy_request_buffering off;"})
	cfg, err = config.Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(), "SESSIONGATE_REQUEST_BUFFERING=off",
		"SESSIONGATE_INDEX=off", "SESSIONGATE_SESSIONS=off", "SESSIONGATE_DJANGO_URL=" + g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/"})
	if err != nil {
		t.Fatal(err)
	}
	gwOff := strings.TrimPrefix(startGateways(t, cfg, 1)[0].URL, "http://")
	// Uploads cut half-way, of known length and chunked: Django runs
	// behind neither.
	for i, chunked := range []bool{false, true} {
		for who, addr := range map[string]string{"nginx": ng.Addr, "gateway": gw} {
			id := fmt.Sprintf("cut%s%d", who, i)
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			framing := "Content-Length: 100000\r\n\r\n"
			if chunked {
				framing = "Transfer-Encoding: chunked\r\n\r\n186a0\r\n"
			}
			fmt.Fprintf(c, "POST /dj/up/ HTTP/1.1\r\nHost: shop.example\r\nX-Case: %s\r\nContent-Type: application/octet-stream\r\n%s%s", id, framing, strings.Repeat("c", 50000))
			time.Sleep(100 * time.Millisecond)
			c.Close()
			time.Sleep(300 * time.Millisecond)
			if _, err := os.Stat(filepath.Join(dump, id)); err == nil {
				t.Errorf("upload cut half-way (chunked: %v): Django ran behind %s", chunked, who)
			}
		}
	}
	// The marker works: a whole upload leaves one.
	for who, addr := range map[string]string{"nginx": ng.Addr, "gateway": gw} {
		if r := rawDo(addr, "POST /dj/up/ HTTP/1.1\r\nHost: shop.example\r\nX-Case: whole"+who+"\r\nContent-Length: 3\r\n\r\nabc", false); r.status() != 200 {
			t.Fatalf("%s: whole upload: %d %v", who, r.status(), r.err)
		}
		if _, err := os.Stat(filepath.Join(dump, "whole"+who)); err != nil {
			t.Errorf("whole upload behind %s left no marker: %v", who, err)
		}
	}
	// A body over the limit sent whole before the answer is read
	// (TestNginxDiffUploadOverLimitSentWhole): a 413, not a reset.
	for _, chunked := range []bool{false, true} {
		for who, addr := range map[string]string{"nginx": ng.Addr, "gateway": gw, "gateway, buffering off": gwOff} {
			if status, err := overLimitWhole(addr, "/dj/up/", overLimitWholeSize, chunked); status != 413 {
				t.Errorf("body over the limit sent whole (chunked: %v): %s answered %d %v, want 413", chunked, who, status, err)
			}
		}
	}
	for _, n := range []int{1 << 20, 1<<20 + 1} {
		ns, gs := expectFirst(t, ng.Addr, "/dj/up/", n), expectFirst(t, gw, "/dj/up/", n)
		if want := map[bool]int{true: 100, false: 413}[n <= 1<<20]; ns != want || gs != want {
			t.Errorf("Expect: 100-continue, Content-Length %d: nginx's first answer %d, gateway's %d, want %d", n, ns, gs, want)
		}
	}
	for _, c := range uploadCases() {
		nAddr, gAddr := ng.Addr, gw
		switch c.pair {
		case "off":
			nAddr, gAddr = ngOff.Addr, gwOff
		case "h2":
			continue
		}
		var b strings.Builder
		b.WriteString(strings.Replace(c.line, "/up.php", "/dj/up/", 1) + "\r\nHost: shop.example\r\n")
		expect := false
		for _, h := range c.headers {
			b.WriteString(h + "\r\n")
			expect = expect || strings.EqualFold(h, "Expect: 100-continue")
		}
		body := c.body
		if strings.HasSuffix(c.name, "MAX_BODY") && !strings.HasPrefix(c.name, "chunked") {
			// SESSIONGATE_MAX_BODY's default, 1m.
			body = strings.Repeat("x", 1<<20)
			if strings.Contains(c.name, "over") {
				body += "x"
			}
			b.Reset()
			b.WriteString("POST /dj/up/ HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/octet-stream\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
		}
		if expect && body == "" {
			// No 100 Continue for an empty body from the gateway:
			// nothing to wait for (nginx sends one; the PHP test
			// compares the final answers).
			continue
		}
		req := b.String() + "\r\n" + body
		n, gr := rawDo(nAddr, req, expect), rawDo(gAddr, req, expect)
		if c.name == "streamed chunked" {
			// nginx with proxy_request_buffering off passes the chunked
			// body on without a length, and Django reads none; the
			// gateway sends it whole with its length (README).
			if !strings.Contains(string(n.body), `"CONTENT_LENGTH": "<absent>", "bodylen": 0,`) ||
				!strings.Contains(string(gr.body), `"CONTENT_LENGTH": "81920", "bodylen": 81920,`) {
				t.Errorf("%s: Django saw through nginx: %d %.300s\nthrough the gateway: %d %.300s", c.name, n.status(), n.body, gr.status(), gr.body)
			}
			continue
		}
		// The 413's page is each front's own.
		if n.status() != gr.status() || n.status() == 200 && string(n.body) != string(gr.body) {
			t.Errorf("%s: Django saw through nginx: %d %v %.600s\nthrough the gateway: %d %v %.600s", c.name, n.status(), n.err, n.body, gr.status(), gr.err, gr.body)
		} else if testing.Verbose() {
			t.Logf("%s: %d %.300s", c.name, n.status(), n.body)
		}
	}
}

// stalledUpload sends the head of an upload of length bytes and 1000 bytes
// of it to addr, then waits: it returns the status of the answer that
// comes (0 for none before the connection closed or 5 s passed).
func stalledUpload(t *testing.T, addr, id string, length, sent int) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /up.php HTTP/1.1\r\nHost: shop.example\r\nX-Case: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", id, length)
	io.WriteString(c, strings.Repeat("s", sent))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	return res.StatusCode
}

// TestNginxDiffUploadStall: a body that stops coming, past
// client_body_timeout and SESSIONGATE_READ_TIMEOUT (1 s). Both give up on
// it; nginx closes the connection without an answer (its 408 goes to the
// log only), the gateway answers 408, which tells the client why. With
// buffering on PHP runs on neither. With buffering off nginx has already
// started PHP on the first bytes and PHP runs on what came; the gateway
// reads the first 64 KiB before it starts PHP, so a body that stops before
// them never reaches PHP, and one that stops after does, as behind nginx.
func TestNginxDiffUploadStall(t *testing.T) {
	t.Parallel()
	u := startUploadDiff(t)
	for _, tc := range []struct {
		name            string
		pair            nginxDiffPair
		length, sent    int
		nginxPHP, gwPHP bool
	}{{"buffering on", u.on, 20000, 1000, false, false}, {"buffering on, spooled", u.on, 100000, 80000, false, false},
		{"buffering off, before 64 KiB", u.off, 100000, 1000, true, false}, {"buffering off, streamed", u.off, 100000, 80000, true, true}} {
		var ns, gs int
		done := make(chan struct{})
		go func() { ns = stalledUpload(t, tc.pair.nginx, "nstall", tc.length, tc.sent); close(done) }()
		gs = stalledUpload(t, tc.pair.gw, "gstall", tc.length, tc.sent)
		<-done
		time.Sleep(200 * time.Millisecond)
		_, nerr := os.Stat(filepath.Join(u.dumpDir, "nstall.json"))
		_, gerr := os.Stat(filepath.Join(u.dumpDir, "gstall.json"))
		if ns != 0 || gs != 408 || (nerr == nil) != tc.nginxPHP || (gerr == nil) != tc.gwPHP {
			t.Errorf("%s: stalled body: nginx answered %d (PHP ran: %v), the gateway %d (PHP ran: %v); want nginx 0 (%v), the gateway 408 (%v)",
				tc.name, ns, nerr == nil, gs, gerr == nil, tc.nginxPHP, tc.gwPHP)
		}
		os.Remove(filepath.Join(u.dumpDir, "nstall.json"))
		os.Remove(filepath.Join(u.dumpDir, "gstall.json"))
	}
}

// failingReader gives n bytes, then an error: a client whose upload breaks.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		time.Sleep(100 * time.Millisecond)
		return 0, errors.New("upload broken off")
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'h'
	}
	r.n -= k
	return k, nil
}

// TestNginxDiffUploadCutH2: an HTTP/2 upload the client resets half-way
// (RST_STREAM): PHP runs behind neither, and the gateway keeps no spool.
func TestNginxDiffUploadCutH2(t *testing.T) {
	t.Parallel()
	u := startUploadDiff(t)
	for _, who := range []string{"nginx", "gateway"} {
		addr := map[string]string{"nginx": u.secure.nginx, "gateway": u.secure.gw}[who]
		for _, length := range []int{0, 20000, 100000} {
			id := fmt.Sprintf("h2cut%s%d", who[:1], length)
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			before := cutLines(u.gwTLS.stderr.String())
			// Length 0: a whole upload of 1000 bytes, which PHP gets.
			var body io.Reader = &failingReader{n: length / 2}
			if length == 0 {
				body = strings.NewReader(strings.Repeat("w", 1000))
			}
			req, err := http.NewRequest("POST", "https://"+addr+"/up.php", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "shop.example"
			req.ContentLength = int64(max(length, 1000))
			req.Header.Set("X-Case", id)
			res, err := client.Do(req)
			if err == nil {
				res.Body.Close()
				if res.ProtoMajor != 2 {
					t.Fatalf("%s: HTTP/%d, want HTTP/2", who, res.ProtoMajor)
				}
			}
			client.CloseIdleConnections()
			time.Sleep(300 * time.Millisecond)
			_, err = os.Stat(filepath.Join(u.dumpDir, id+".json"))
			if length == 0 && err != nil {
				t.Errorf("whole HTTP/2 upload: PHP did not run behind %s", who)
			}
			if length > 0 && err == nil {
				t.Errorf("HTTP/2 upload of %d bytes reset half-way: PHP ran behind %s", length, who)
			}
			if length > 0 && who == "gateway" {
				if _, ok := textWhen(u.gwTLS.stderr.String, func(s string) bool { return cutLines(s) > before }); !ok {
					t.Errorf("HTTP/2 upload of %d bytes reset half-way: no 499 or 400 logged:\n%s", length, u.gwTLS.stderr.String())
				}
			}
		}
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(u.gwTLS.URL, "http://"))
	var h gwHeld
	for range 20 {
		if h = heldBy(t, u.gwTLS, port); len(h.spools) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(h.spools) > 0 {
		t.Errorf("spool files left open: %v", h.spools)
	}
}

// overLimitWhole sends a body of size bytes to addr at path, known length
// or chunked, the whole of it before it reads the answer
// (testnet.SendBodyBeforeReading).
func overLimitWhole(addr, path string, size int, chunked bool) (int, error) {
	framing := "Content-Length: " + strconv.Itoa(size)
	if chunked {
		framing = "Transfer-Encoding: chunked"
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/octet-stream\r\n%s\r\n\r\n", path, framing)
	return testnet.SendBodyBeforeReading(addr, head, size, chunked)
}

// overLimitWholeSize is far more than loopback's socket buffers hold
// (tcp_rmem and tcp_wmem top out at 6 and 4 MiB), so a front that stops
// reading at the limit and closes leaves most of it unread.
const overLimitWholeSize = 32 << 20

// TestNginxDiffUploadOverLimitSentWhole: a client that sends a body over
// the limit whole, without Expect: 100-continue, and reads the answer only
// then, gets the 413 from both. nginx reads and drops what follows the
// refusal (lingering_close) before it closes; a front that closed with
// the rest unread would reset the connection, and the client, still
// writing, would see the reset instead of the 413.
func TestNginxDiffUploadOverLimitSentWhole(t *testing.T) {
	t.Parallel()
	u := startUploadDiff(t)
	for _, tc := range []struct {
		name    string
		pair    nginxDiffPair
		chunked bool
	}{{"buffering on, known length", u.on, false}, {"buffering on, chunked", u.on, true},
		{"buffering off, known length", u.off, false}, {"buffering off, chunked", u.off, true}} {
		for who, addr := range map[string]string{"nginx": tc.pair.nginx, "gateway": tc.pair.gw} {
			if status, err := overLimitWhole(addr, "/up.php", overLimitWholeSize, tc.chunked); status != 413 {
				t.Errorf("%s: %s answered %d %v, want 413", tc.name, who, status, err)
			}
		}
	}
}

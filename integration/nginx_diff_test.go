package integration

// A differential test of the PHP path: the same requests, byte for byte,
// sent to Debian 12's nginx configured as a PHP shop runs it and to the
// gateway, both in front of one php-fpm on one document root, and what PHP
// saw compared.

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testh2"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

// diffDumpPHP writes what PHP got to DUMPDIR/<X-Case>.json (a HEAD's body
// never arrives) and echoes it: $_SERVER's strings (bytes that are not
// UTF-8 as "hex:..."), the parsed $_GET, $_POST, $_COOKIE and $_FILES, and
// the body.
const diffDumpPHP = `<?php
function sg_str($v) { return preg_match('//u', $v) ? $v : 'hex:' . bin2hex($v); }
$o = [];
foreach ($_SERVER as $k => $v) { if (is_string($v)) { $o[$k] = sg_str($v); } }
unset($o['REQUEST_TIME'], $o['REQUEST_TIME_FLOAT']);
$o['_file'] = __FILE__;
$o['_get'] = sg_str(json_encode($_GET, JSON_INVALID_UTF8_SUBSTITUTE));
$o['_post'] = sg_str(json_encode($_POST, JSON_INVALID_UTF8_SUBSTITUTE));
$o['_cookie'] = sg_str(json_encode($_COOKIE, JSON_INVALID_UTF8_SUBSTITUTE));
$o['_files'] = json_encode(array_map(fn($f) => [$f['name'], $f['size'], $f['error']], $_FILES));
$o['_body'] = sg_str(file_get_contents('php://input'));
$j = json_encode($o);
$id = $_SERVER['HTTP_X_CASE'] ?? '';
if (preg_match('/^[a-z0-9]+$/', $id)) { file_put_contents('DUMPDIR/' . $id . '.json', $j); }
header('Content-Type: application/json');
echo $j;
`

// diffRespPHP answers ?c=NAME with a response shape PHP scripts make.
const diffRespPHP = `<?php switch ($_GET['c'] ?? '') {
case 'code404': http_response_code(404); echo 'not found'; break;
case 'status': header('Status: 201 Created'); echo 'created'; break;
case 'teapot': header('HTTP/1.1 418 Teapot'); echo 't'; break;
case 'custom': http_response_code(299); echo 'x'; break;
case 'location': header('Location: /elsewhere'); break;
case 'location301': header('Location: /elsewhere', true, 301); break;
case 'cookies': setcookie('a', '1'); setcookie('b', '2', ['samesite' => 'Lax', 'httponly' => true]); echo 'k'; break;
case 'empty': break;
case 'nocontent': http_response_code(204); echo 'dropped'; break;
case 'notmodified': http_response_code(304); echo 'dropped'; break;
case 'type': header('Content-Type: text/plain'); echo 'p'; break;
case 'repeated': header('X-A: 1'); header('X-A: 2', false); header('Cache-Control: no-store'); header('Cache-Control: private', false); echo 'm'; break;
case 'emptyvalue': header('X-Empty:'); echo 'e'; break;
case 'code500': http_response_code(500); echo 'error'; break;
case 'fatal': undefined_function(); break;
case 'unauthorized': header('WWW-Authenticate: Basic realm="x"'); http_response_code(401); echo 'u'; break;
case 'vary': header('Vary: Cookie'); echo 'v'; break;
case 'twotypes': header('Content-Type: text/html'); header('Content-Type: application/json', false); echo '{}'; break;
case 'twolocations': header('Location: /a'); header('Location: /b', false); break;
}`

// nginxDiffSite is the document root: scripts that dump, a directory with
// index.php, one with only index.html, one with no index, static files,
// and names with a '%' and non-ASCII letters.
func nginxDiffSite(t *testing.T, dumpDir string) string {
	t.Helper()
	dump := strings.ReplaceAll(diffDumpPHP, "DUMPDIR", dumpDir)
	root := filepath.Join(t.TempDir(), "root")
	writeTree(t, root, map[string]string{
		"index.php":       dump,
		"info.php":        dump,
		"dir/index.php":   dump,
		"sub/app.php":     dump,
		"café.php":        dump,
		"100%.php":        dump,
		"docs/index.html": "<h1>docs</h1>",
		"empty/notes.txt": "notes",
		"style.css":       "body { color: red; }\n",
		"resp.php":        diffRespPHP,
	})
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

// nginxPHPShop is the server block a PHP shop on Debian runs: the
// front-controller try_files, the PHP location of Debian's
// snippets/fastcgi-php.conf (with its fix for try_files emptying
// $fastcgi_path_info, nginx ticket 321) on fastcgi_params, and httpoxy's
// HTTP_PROXY "". extra goes into the server block, phpExtra into the PHP
// location (whose fastcgi_param lines replace the server's).
func nginxPHPShop(listen, root, fpm, extra, phpExtra string) string {
	return nginxPHPShopIndex(listen, root, fpm, "/index.php", extra, phpExtra)
}

// nginxPHPShopIndex is nginxPHPShop with another front controller (the
// try_files fallback), as for WordPress under /blog/.
func nginxPHPShopIndex(listen, root, fpm, index, extra, phpExtra string) string {
	return fmt.Sprintf(`
    server {
        listen %s;
        server_name shop.example;
        root %s;
        index index.php index.html;
        %s

        location ~ /\. { deny all; }

        location / {
            try_files $uri $uri/ %s$is_args$args;
        }

        location ~ [^/]\.php(/|$) {
            fastcgi_split_path_info ^(.+?\.php)(/.*)$;
            try_files $fastcgi_script_name =404;
            set $path_info $fastcgi_path_info;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param PATH_INFO $path_info;
            fastcgi_param HTTP_PROXY "";
            %s
            fastcgi_pass %s;
        }
    }
`, listen, root, extra, index, phpExtra, fpm)
}

// nginxDiffPair is one nginx server block and one gateway, configured alike.
type nginxDiffPair struct {
	nginx, gw string // addresses
}

// startNginxDiff starts php-fpm, nginx with two server blocks (a direct one,
// and one behind a trusted proxy on 127.0.0.0/8 with realip and the usual
// X-Forwarded-Proto map for HTTPS, and one on TLS with HTTP/2) and three
// gateways configured the same way (the direct one with sessions), all on
// one document root.
func startNginxDiff(t *testing.T) (direct, proxied, secure, sub nginxDiffPair, dumpDir string) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "nginx")
	dumpDir = harness.PHPTempDir(t)
	root := nginxDiffSite(t, dumpDir)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 6})
	cert, key := testtls.Pair(t)
	ng := harness.StartNginx(t, 4, func(addrs []string) string {
		return `
    map $http_x_forwarded_proto $fastcgi_https {
        default "";
        https on;
    }
` + nginxPHPShop(addrs[0], root, fpm.Addr, "", "") +
			nginxPHPShop(addrs[1], root, fpm.Addr, `set_real_ip_from 127.0.0.0/8;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;`, "fastcgi_param HTTPS $fastcgi_https if_not_empty;") +
			nginxPHPShop(addrs[2]+" ssl http2", root, fpm.Addr, "ssl_certificate "+cert+";\n        ssl_certificate_key "+key+";", "") +
			nginxPHPShopIndex(addrs[3], root, fpm.Addr, "/sub/app.php", "", "")
	})
	bin := buildGateway(t)
	// One php-fpm connection per gateway: an idle kept-alive connection
	// pins a worker (four of the six), and nginx (without keepalive)
	// needs one free.
	start := func(env ...string) string {
		gw := startBinary(t, bin, append([]string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
			"SESSIONGATE_PHP_MAX_CONNS=1"}, env...))
		return strings.TrimPrefix(gw.URL, "http://")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
		}
	})
	// The direct gateway with sessions (in memory) and the prepend, as
	// deployed: the prepend takes its params out of $_SERVER. The other
	// without, the PHP path alone.
	direct = nginxDiffPair{nginx: ng.Addrs[0], gw: start("SESSIONGATE_SESSION_DEV=on", "SESSIONGATE_PHP_PREPEND="+writePrepend(t))}
	proxied = nginxDiffPair{nginx: ng.Addrs[1], gw: start("SESSIONGATE_SESSIONS=off", "SESSIONGATE_TRUSTED_PROXIES=127.0.0.0/8")}
	secure = nginxDiffPair{nginx: ng.Addrs[2], gw: start("SESSIONGATE_SESSIONS=off", "SESSIONGATE_TLS_CERT="+cert, "SESSIONGATE_TLS_KEY="+key)}
	sub = nginxDiffPair{nginx: ng.Addrs[3], gw: start("SESSIONGATE_SESSIONS=off", "SESSIONGATE_INDEX=sub/app.php")}
	return direct, proxied, secure, sub, dumpDir
}

// diffCase is one request: its request line, headers (X-Case is added)
// and body, sent as they are.
type diffCase struct {
	name    string
	line    string
	headers []string
	body    string
	proxied bool // to the pair behind a trusted proxy
	sub     bool // to the pair whose front controller is /sub/app.php
	// proto is "tls" for HTTP/1.1 over TLS, "h2" for HTTP/2 (the request
	// line gives :method and :path, the Host header :authority, the
	// other headers their fields in lower case), both to the TLS pair;
	// "" for plain HTTP/1.x.
	proto string
	// want are $_SERVER entries both servers must give PHP: the values
	// the comparison finds equal, anchored.
	want map[string]string
}

// diffAnswer is what one server did with a case.
type diffAnswer struct {
	status   int
	location string
	php      map[string]string // nil when no script ran
}

// send sends c to addr and returns the status, Location and PHP's dump.
// id names the case's dump file (X-Case).
func (c diffCase) send(t *testing.T, addr, dumpDir, id string) diffAnswer {
	t.Helper()
	var b strings.Builder
	b.WriteString(c.line + "\r\n")
	hasHost := false
	for _, h := range c.headers {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			hasHost = true
		}
	}
	if !hasHost && !strings.HasSuffix(c.line, "HTTP/1.0") {
		b.WriteString("Host: shop.example\r\n")
	}
	for _, h := range c.headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("X-Case: " + id + "\r\n\r\n" + c.body)
	if c.proto == "h2" {
		return c.sendH2(t, addr, dumpDir, id)
	}
	var conn net.Conn
	var err error
	if c.proto == "tls" {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(c.line, " ")
	br := bufio.NewReader(conn)
	var resp *http.Response
	for resp == nil || resp.StatusCode < 200 {
		// Past the 100 Continue nginx sends for Expect.
		if resp, err = http.ReadResponse(br, &http.Request{Method: method}); err != nil {
			t.Fatalf("%s: %s: %v", c.name, id, err)
		}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return readDump(t, c, diffAnswer{status: resp.StatusCode, location: resp.Header.Get("Location")}, dumpDir, id)
}

// sendH2 is send over HTTP/2, the case's header lines as fields.
func (c diffCase) sendH2(t *testing.T, addr, dumpDir, id string) diffAnswer {
	t.Helper()
	method, target, _ := strings.Cut(c.line, " ")
	target, _, _ = strings.Cut(target, " ")
	fields := []testh2.Field{{":method", method}, {":scheme", "https"}, {":path", target}, {":authority", c.hostAsSent()}}
	for _, h := range c.headers {
		k, v, _ := strings.Cut(h, ":")
		if !strings.EqualFold(k, "Host") {
			fields = append(fields, testh2.Field{strings.ToLower(k), strings.TrimSpace(v)})
		}
	}
	fields = append(fields, testh2.Field{"x-case", id})
	var body []byte
	if c.body != "" {
		body = []byte(c.body)
	}
	res := testh2.Do(t, addr, fields, body)
	return readDump(t, c, diffAnswer{status: res.Status}, dumpDir, id)
}

// readDump adds to a what PHP wrote for case id, if a script ran.
func readDump(t *testing.T, c diffCase, a diffAnswer, dumpDir, id string) diffAnswer {
	t.Helper()
	f := filepath.Join(dumpDir, id+".json")
	if j, err := os.ReadFile(f); err == nil {
		os.Remove(f)
		if err := json.Unmarshal(j, &a.php); err != nil {
			t.Fatalf("%s: %s: %v: %s", c.name, id, err, j)
		}
	}
	return a
}

// paramDiff is one way nginx and the gateway answered a case differently:
// a $_SERVER entry (or _get, _post, _cookie, _files, _body), or "status"
// (then nAns and gAns say the rest), or "Location".
type paramDiff struct {
	c          diffCase
	key        string
	n, g       string
	nok, gok   bool // whether the entry was set
	nAns, gAns diffAnswer
}

func (d paramDiff) String() string {
	return fmt.Sprintf("%s (%s): %s: nginx %s, gateway %s", d.c.name, d.c.line, d.key, show(d.n, d.nok), show(d.g, d.gok))
}

func show(v string, ok bool) string {
	if !ok {
		return "(unset)"
	}
	return strconv.Quote(v)
}

// encodedControl is a percent-encoded control character.
var encodedControl = regexp.MustCompile(`%([01][0-9A-Fa-f]|7[Ff])`)

// absoluteURL is the scheme and authority nginx puts in its redirects.
var absoluteURL = regexp.MustCompile(`^https?://[^/]*`)

// compareAnswers lists how the two answers to c differ. Per-connection
// values (REMOTE_PORT of a direct client, SERVER_PORT, each server's own)
// are left out; X-Case too.
func compareAnswers(c diffCase, n, g diffAnswer, nport, gport string) []paramDiff {
	var diffs []paramDiff
	if n.status != g.status {
		return []paramDiff{{c: c, key: "status", n: strconv.Itoa(n.status), g: strconv.Itoa(g.status), nok: true, gok: true, nAns: n, gAns: g}}
	}
	if n.location != g.location {
		diffs = append(diffs, paramDiff{c: c, key: "Location", n: n.location, g: g.location, nok: n.location != "", gok: g.location != ""})
	}
	if (n.php == nil) != (g.php == nil) {
		return append(diffs, paramDiff{c: c, key: "PHP ran", n: strconv.FormatBool(n.php != nil), g: strconv.FormatBool(g.php != nil), nok: true, gok: true, nAns: n, gAns: g})
	}
	if n.php == nil {
		return diffs
	}
	for _, m := range []map[string]string{n.php, g.php} {
		delete(m, "HTTP_X_CASE")
	}
	np, _ := strconv.Atoi(n.php["REMOTE_PORT"])
	gp, _ := strconv.Atoi(g.php["REMOTE_PORT"])
	if np > 0 && gp > 0 {
		delete(n.php, "REMOTE_PORT")
		delete(g.php, "REMOTE_PORT")
	}
	if n.php["SERVER_PORT"] == nport && g.php["SERVER_PORT"] == gport {
		delete(n.php, "SERVER_PORT")
		delete(g.php, "SERVER_PORT")
	}
	for _, k := range unionKeys(n.php, g.php) {
		nv, nok := n.php[k]
		gv, gok := g.php[k]
		if nv != gv || nok != gok {
			diffs = append(diffs, paramDiff{c: c, key: k, n: nv, g: gv, nok: nok, gok: gok, nAns: n, gAns: g})
		}
	}
	return diffs
}

// TestNginxDiffPHPParams sends each request of nginxDiffCases, byte for
// byte, to Debian 12's nginx (a PHP shop's configuration, nginxPHPShop)
// and to the gateway binary, both in front of one php-fpm on one document
// root, and compares the status, the redirect and everything PHP saw
// ($_SERVER, $_GET, $_POST, $_COOKIE, $_FILES, the body). Every difference
// must be one of nginxKnownDiffs, each of which README ("From nginx to
// sessiongate") or docs/protocol.md describes, and each of those must
// still be seen: a
// difference that goes away, or changes shape, fails the test as much as a
// new one.
func TestNginxDiffPHPParams(t *testing.T) {
	t.Parallel()
	direct, proxied, secure, sub, dumpDir := startNginxDiff(t)
	seen := map[string]int{}
	for i, c := range nginxDiffCases() {
		pair := direct
		switch {
		case c.proxied:
			pair = proxied
		case c.proto != "":
			pair = secure
		case c.sub:
			pair = sub
		}
		n := c.send(t, pair.nginx, dumpDir, "n"+strconv.Itoa(i))
		g := c.send(t, pair.gw, dumpDir, "g"+strconv.Itoa(i))
		for k, v := range c.want {
			for side, a := range map[string]diffAnswer{"nginx": n, "gateway": g} {
				if got, ok := a.php[k]; !ok || got != v {
					t.Errorf("%s (%s): %s gave PHP %s %s, want %q", c.name, c.line, side, k, show(got, ok), v)
				}
			}
		}
		_, nport, _ := net.SplitHostPort(pair.nginx)
		_, gport, _ := net.SplitHostPort(pair.gw)
		judgeDiffs(t, compareAnswers(c, n, g, nport, gport), nginxKnownDiffs, seen, "")
	}
	knownAllSeen(t, nginxKnownDiffs, seen)
}

// TestNginxDiffPHPResponses: what a client gets for the responses PHP
// scripts make (diffRespPHP), from nginx and from the gateway: status, body
// and header fields, but those of the connection and its framing (Date,
// Server, Connection, Keep-Alive, Content-Length, Transfer-Encoding) and
// the Vary: Accept-Encoding the gateway adds where it may compress (README,
// gzip row). Of two Content-Type lines both send the last; nginx with the
// charset of the first when the last has none.
func TestNginxDiffPHPResponses(t *testing.T) {
	t.Parallel()
	direct, _, _, _, _ := startNginxDiff(t)
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(addr, c string) (int, string, http.Header) {
		req, err := http.NewRequest("GET", "http://"+addr+"/resp.php?c="+c, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "shop.example"
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %s: %v", c, addr, err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("%s: %s: %v", c, addr, err)
		}
		for _, k := range []string{"Date", "Server", "Connection", "Keep-Alive", "Content-Length", "Transfer-Encoding"} {
			res.Header.Del(k)
		}
		return res.StatusCode, string(b), res.Header
	}
	for _, c := range []string{"code404", "status", "teapot", "custom", "location", "location301", "cookies", "empty",
		"nocontent", "notmodified", "type", "repeated", "emptyvalue", "code500", "fatal", "unauthorized", "vary",
		"twotypes", "twolocations"} {
		ns, nb, nh := get(direct.nginx, c)
		gs, gb, gh := get(direct.gw, c)
		if vary := nh.Values("Vary"); strings.Join(gh.Values("Vary"), "|") == strings.Join(append(vary, "Accept-Encoding"), "|") {
			gh["Vary"] = vary
			if len(vary) == 0 {
				delete(gh, "Vary")
			}
		}
		if c == "twotypes" {
			// One Content-Type, PHP's last, on both; nginx adds the
			// charset PHP gave the first.
			nt, _, _ := strings.Cut(nh.Get("Content-Type"), ";")
			if len(nh.Values("Content-Type")) == 1 && nt == "application/json" && strings.Join(gh.Values("Content-Type"), "|") == "application/json" {
				nh.Del("Content-Type")
				gh.Del("Content-Type")
			}
		}
		if ns != gs || nb != gb || fmt.Sprint(nh) != fmt.Sprint(gh) {
			t.Errorf("%s: nginx %d %q %v\ngateway %d %q %v", c, ns, nb, nh, gs, gb, gh)
		}
	}
}

// knownDiff is a difference from nginx the gateway means to make, as
// README describes it. match checks both sides' exact values, so that a
// gateway drifting to a third value fails.
type knownDiff[D any] struct {
	name  string
	match func(d D) bool
}

// judgeDiffs reports each of diffs that no entry of known matches (with
// detail after it) and counts in seen the entries that do.
func judgeDiffs[D any](t *testing.T, diffs []D, known []knownDiff[D], seen map[string]int, detail string) {
	t.Helper()
diffs:
	for _, d := range diffs {
		for _, k := range known {
			if k.match(d) {
				seen[k.name]++
				continue diffs
			}
		}
		t.Errorf("unexpected difference: %v%s", d, detail)
	}
}

// knownAllSeen reports the entries of known no answer showed: a
// documented difference that is gone, or drifted.
func knownAllSeen[D any](t *testing.T, known []knownDiff[D], seen map[string]int) {
	t.Helper()
	for _, k := range known {
		if seen[k.name] == 0 {
			t.Errorf("documented difference no longer seen: %s", k.name)
		}
	}
}

// headerValues returns the values c sends for the header name (any case),
// in order.
func (c diffCase) headerValues(name string) []string {
	var vs []string
	for _, h := range c.headers {
		k, v, ok := strings.Cut(h, ":")
		if ok && strings.EqualFold(k, name) {
			vs = append(vs, strings.TrimSpace(v))
		}
	}
	return vs
}

// paramHeader is the header an HTTP_* param stands for ("X-Multi" for
// HTTP_X_MULTI), or "".
func paramHeader(key string) string {
	name, ok := strings.CutPrefix(key, "HTTP_")
	if !ok {
		return ""
	}
	return strings.ReplaceAll(name, "_", "-")
}

// hostAsSent is the host c names: its absolute-form target's authority
// (userinfo left out), or its Host field, or "" without either (the
// default shop.example when the case sets no Host on HTTP/1.1).
func (c diffCase) hostAsSent() string {
	_, target, _ := strings.Cut(c.line, " ")
	target, _, _ = strings.Cut(target, " ")
	if _, rest, ok := strings.Cut(target, "://"); ok {
		auth := rest
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			auth = rest[:i]
		}
		if _, h, ok := strings.Cut(auth, "@"); ok {
			auth = h
		}
		return auth
	}
	if hs := c.headerValues("Host"); len(hs) > 0 {
		return hs[0]
	}
	if strings.HasSuffix(c.line, "HTTP/1.0") {
		return ""
	}
	return "shop.example"
}

// withoutPort is host without its port; an IPv6 literal keeps its brackets.
func withoutPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}

// debianHost is nginx's $host, which Debian 12's fastcgi_params sends as
// HTTP_HOST: lower case, without port or trailing dot, the server_name when
// the request has no host.
func debianHost(host string) string {
	if host == "" {
		return "shop.example"
	}
	host = strings.ToLower(host)
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i >= 0 {
			host = host[:i+1]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.TrimSuffix(host, ".")
}

// hopByHopParams are the connection's headers, which the gateway does not
// pass on (RFC 9110 section 7.6.1) and nginx does.
var hopByHopParams = map[string]bool{
	"HTTP_CONNECTION": true, "HTTP_KEEP_ALIVE": true, "HTTP_TE": true, "HTTP_UPGRADE": true,
	"HTTP_TRANSFER_ENCODING": true, "HTTP_PROXY_CONNECTION": true,
}

// nginxKnownDiffs are the differences README documents (section "From
// nginx to sessiongate", rows on fastcgi_params, try_files, dotfiles,
// SESSIONGATE_SERVER_NAMES and SESSIONGATE_TRUSTED_PROXIES).
var nginxKnownDiffs = []knownDiff[paramDiff]{
	{"PHP_VALUE carries the session bridge's auto_prepend_file and session settings (docs/protocol.md)", func(d paramDiff) bool {
		return d.key == "PHP_VALUE" && !d.nok && !d.c.proxied && strings.HasPrefix(d.g, "auto_prepend_file=/") &&
			strings.Contains(d.g, "/sessiongate-prepend.php\nsession.")
	}},
	{"SERVER_SOFTWARE names the gateway", func(d paramDiff) bool {
		return d.key == "SERVER_SOFTWARE" && strings.HasPrefix(d.n, "nginx/") && d.g == "sessiongate (nginx-compatible)"
	}},
	{"PATH_INFO unset without a path after the script (nginx: empty)", func(d paramDiff) bool {
		return d.key == "PATH_INFO" && d.nok && d.n == "" && !d.gok
	}},
	{"PATH_TRANSLATED set with PATH_INFO (nginx's fastcgi_params: never)", func(d paramDiff) bool {
		return d.key == "PATH_TRANSLATED" && !d.nok && d.gok && d.gAns.php["PATH_INFO"] != "" &&
			d.g == d.gAns.php["DOCUMENT_ROOT"]+d.gAns.php["PATH_INFO"]
	}},
	{"DOCUMENT_URI is the script and its PATH_INFO (nginx, after try_files $fastcgi_script_name: the script)", func(d paramDiff) bool {
		script := d.gAns.php["SCRIPT_NAME"]
		return d.key == "DOCUMENT_URI" && d.n == script && d.g == script+d.gAns.php["PATH_INFO"] && d.gAns.php["PATH_INFO"] != ""
	}},
	{"REMOTE_USER only for a user SESSIONGATE_BASIC_AUTH checked (nginx: empty, or any Basic user)", func(d paramDiff) bool {
		return d.key == "REMOTE_USER" && d.nok && !d.gok &&
			(d.n == "" || strings.Contains(strings.Join(d.c.headerValues("Authorization"), ""), "Basic "))
	}},
	{"Content-Type and Content-Length only as CONTENT_TYPE and CONTENT_LENGTH", func(d paramDiff) bool {
		h := paramHeader(d.key)
		vs := d.c.headerValues(h)
		return (d.key == "HTTP_CONTENT_TYPE" || d.key == "HTTP_CONTENT_LENGTH") && len(vs) == 1 && d.n == vs[0] && !d.gok
	}},
	{"hop-by-hop headers and those Connection names not passed on", func(d paramDiff) bool {
		h := paramHeader(d.key)
		vs := d.c.headerValues(h)
		named := false
		for _, v := range d.c.headerValues("Connection") {
			for tok := range strings.SplitSeq(v, ",") {
				named = named || strings.EqualFold(strings.TrimSpace(tok), h)
			}
		}
		return (hopByHopParams[d.key] || named) && len(vs) == 1 && d.n == vs[0] && !d.gok
	}},
	{"repeated header lines joined (nginx 1.22: the last one only)", func(d paramDiff) bool {
		vs := d.c.headerValues(paramHeader(d.key))
		sep := ", "
		if d.key == "HTTP_COOKIE" {
			sep = "; "
		}
		return len(vs) > 1 && d.n == vs[len(vs)-1] && d.g == strings.Join(vs, sep)
	}},
	{"$_COOKIE has every Cookie line's cookies (nginx 1.22: the last line's)", func(d paramDiff) bool {
		return d.key == "_cookie" && len(d.c.headerValues("Cookie")) > 1 && d.nAns.php["HTTP_COOKIE"] != d.gAns.php["HTTP_COOKIE"]
	}},
	{"forwarding, URL-override and sendfile headers of an untrusted client dropped", func(d paramDiff) bool {
		vs := d.c.headerValues(paramHeader(d.key))
		switch {
		case strings.HasPrefix(d.key, "HTTP_X_FORWARDED_"), d.key == "HTTP_FORWARDED", d.key == "HTTP_X_REAL_IP":
			if d.c.proxied {
				return false
			}
		case d.key == "HTTP_X_ORIGINAL_URL", d.key == "HTTP_X_REWRITE_URL", d.key == "HTTP_X_SENDFILE_TYPE", d.key == "HTTP_X_ACCEL_MAPPING":
		default:
			return false
		}
		return len(vs) == 1 && d.n == vs[0] && !d.gok
	}},
	{"HTTP_HOST is the host as sent (Debian 12's fastcgi_params: $host, lower case and without port)", func(d paramDiff) bool {
		h := d.c.hostAsSent()
		return d.key == "HTTP_HOST" && d.n == debianHost(h) && (h == "" && !d.gok || d.gok && d.g == h)
	}},
	{"SERVER_NAME is the host as sent, without port (nginx: its server_name)", func(d paramDiff) bool {
		want := withoutPort(d.c.hostAsSent())
		if want == "" {
			want = "127.0.0.1" // no Host: the address the client reached
		}
		return d.key == "SERVER_NAME" && d.n == "shop.example" && d.g == want
	}},
	{"REQUEST_SCHEME https with HTTPS behind a trusted proxy (nginx: $scheme, http)", func(d paramDiff) bool {
		return d.c.proxied && d.key == "REQUEST_SCHEME" && d.n == "http" && d.g == "https" &&
			d.nAns.php["HTTPS"] == "on" && d.gAns.php["HTTPS"] == "on"
	}},
	{"REMOTE_PORT 0 for a client named by X-Forwarded-For (nginx: empty, or the port it names)", func(d paramDiff) bool {
		xff := d.c.headerValues("X-Forwarded-For")
		if !d.c.proxied || d.key != "REMOTE_PORT" || len(xff) == 0 || d.g != "0" {
			return false
		}
		_, port, err := net.SplitHostPort(xff[len(xff)-1])
		return d.n == "" || err == nil && d.n == port
	}},
	{"the canonical-URL redirect of a directory is relative (nginx: absolute, with its own port)", func(d paramDiff) bool {
		return d.key == "Location" && strings.HasPrefix(d.g, "/") && absoluteURL.ReplaceAllString(d.n, "") == d.g &&
			(strings.HasPrefix(d.n, "http://shop.example:") || strings.HasPrefix(d.n, "https://shop.example:"))
	}},
	{"an absolute-form target without a path has the path / (nginx: REQUEST_URI without it)", func(d paramDiff) bool {
		_, target, _ := strings.Cut(d.c.line, " ")
		target, _, _ = strings.Cut(target, " ")
		_, rest, _ := strings.Cut(target, "://")
		i := strings.IndexAny(rest, "/?")
		return d.key == "REQUEST_URI" && i >= 0 && rest[i] == '?' && d.n == rest[i:] && d.g == "/"+rest[i:]
	}},
	{"Content-Length with chunked, or twice the same, is served by RFC 9112 (nginx 1.22: 400)", func(d paramDiff) bool {
		cl := d.c.headerValues("Content-Length")
		te := d.c.headerValues("Transfer-Encoding")
		return d.key == "status" && d.n == "400" && d.g == "200" && (len(cl) == 1 && len(te) == 1 && te[0] == "chunked" ||
			len(cl) == 2 && cl[0] == cl[1] && len(te) == 0)
	}},
	{"a directory without index goes to the front controller (nginx: 403)", func(d paramDiff) bool {
		index := "/index.php"
		if d.c.sub {
			index = "/sub/app.php"
		}
		return d.key == "status" && d.n == "403" && d.g == "200" && d.gAns.php["SCRIPT_NAME"] == index &&
			strings.HasSuffix(d.gAns.php["REQUEST_URI"], "/")
	}},
	{"an encoded control character in the path gets 400 (nginx: routed)", func(d paramDiff) bool {
		_, target, _ := strings.Cut(d.c.line, " ")
		path, _, _ := strings.Cut(target, "?")
		return d.key == "status" && d.g == "400" && d.n != "400" && encodedControl.MatchString(path)
	}},
	{"dotfiles get 404 (nginx's location ~ /\\. { deny all; }: 403)", func(d paramDiff) bool {
		return d.key == "status" && d.n == "403" && d.g == "404" && strings.Contains(d.c.line, "/.")
	}},
}

func nginxDiffCases() []diffCase {
	get := func(name, target string, headers ...string) diffCase {
		return diffCase{name: name, line: "GET " + target + " HTTP/1.1", headers: headers}
	}
	return []diffCase{
		{name: "root", line: "GET / HTTP/1.1", want: map[string]string{"SCRIPT_NAME": "/index.php", "REQUEST_URI": "/",
			"DOCUMENT_URI": "/index.php", "PHP_SELF": "/index.php", "QUERY_STRING": "", "CONTENT_LENGTH": "", "CONTENT_TYPE": "",
			"GATEWAY_INTERFACE": "CGI/1.1", "REDIRECT_STATUS": "200", "REQUEST_SCHEME": "http", "SERVER_PROTOCOL": "HTTP/1.1",
			"SERVER_ADDR": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "shop.example", "SERVER_NAME": "shop.example"}},
		get("script", "/info.php"),
		get("query", "/info.php?a=1&b=%20&c=x+y&d[]=1&d[]=2"),
		get("empty query", "/info.php?"),
		get("query odd bytes", "/info.php?a=\"<'>\"&b=\xff\xfe&c=%ZZ&d=%00&e=a?b&f=/x"),
		get("query fragment", "/info.php?a=1#frag"),
		{name: "front controller", line: "GET /no/such/page?x=1 HTTP/1.1", want: map[string]string{"SCRIPT_NAME": "/index.php",
			"REQUEST_URI": "/no/such/page?x=1", "QUERY_STRING": "x=1", "DOCUMENT_URI": "/index.php", "PHP_SELF": "/index.php"}},
		get("front controller slash", "/no/such/page/"),
		get("front controller unicode", "/%E6%97%A5%E6%9C%AC/caf%C3%A9?q=%C3%A9"),
		get("front controller raw unicode", "/\xe6\x97\xa5\xe6\x9c\xac"),
		get("front controller encoded slash", "/a%2Fb/c"),
		get("dir without slash", "/dir"),
		get("dir without slash query", "/dir?x=1"),
		get("dir", "/dir/"),
		get("dir index by name", "/dir/index.php"),
		get("html index dir", "/docs/"),
		get("html index dir no slash", "/docs"),
		get("dir without index", "/empty/"),
		get("dir without index no slash", "/empty"),
		get("static", "/style.css"),
		get("static trailing slash", "/style.css/"),
		get("static in dir without index", "/empty/notes.txt"),
		get("missing script", "/missing.php"),
		get("missing script path info", "/missing.php/x"),
		get("missing script in dir", "/no/such.php"),
		{name: "path info", line: "GET /info.php/extra/path HTTP/1.1", want: map[string]string{"SCRIPT_NAME": "/info.php",
			"PATH_INFO": "/extra/path", "PHP_SELF": "/info.php/extra/path", "REQUEST_URI": "/info.php/extra/path"}},
		get("path info trailing slash", "/info.php/extra/"),
		get("path info slash", "/info.php/"),
		get("path info query", "/index.php/route/x?y=1"),
		{name: "path info encoded slash", line: "GET /sub/app.php/a%2Fb HTTP/1.1", want: map[string]string{"SCRIPT_NAME": "/sub/app.php",
			"PATH_INFO": "/a/b", "REQUEST_URI": "/sub/app.php/a%2Fb"}},
		get("path info encoded", "/info.php/%C3%A9%20x"),
		get("path info dot segments", "/info.php/a/../b/./c"),
		get("path info double slash", "/info.php//a//b"),
		get("script trailing slash", "/sub/app.php/"),
		get("double slash", "//info.php"),
		get("double slash in dir", "/sub//app.php"),
		get("dot segment", "/./info.php"),
		get("dot dot", "/sub/../info.php"),
		{name: "encoded dot dot", line: "GET /sub/%2e%2e/info.php HTTP/1.1", want: map[string]string{"SCRIPT_NAME": "/info.php",
			"REQUEST_URI": "/sub/%2e%2e/info.php"}},
		get("encoded slash", "/sub%2Fapp.php"),
		get("encoded letter", "/%69nfo.php"),
		{name: "unicode script", line: "GET /caf%C3%A9.php HTTP/1.1", want: map[string]string{"SCRIPT_NAME": "/café.php", "PHP_SELF": "/café.php"}},
		get("percent script", "/100%25.php"),
		get("encoded NUL", "/info.php%00.txt"),
		get("encoded newline in path info", "/info.php/a%0Ab"),
		get("encoded newline after script", "/info.php%0A.txt"),
		get("encoded newline front controller", "/page%0Ax"),
		get("encoded tab", "/page%09x"),
		get("encoded DEL", "/page%7Fx"),
		get("encoded CR", "/info.php/%0D"),
		get("dotfile", "/.env"),
		get("dotfile in path info", "/info.php/.git/config"),
		get("script after static", "/style.css/x.php"),
		get("path params", "/info.php;x=1"),
		get("encoded question mark", "/info.php%3Fa=1"),
		get("encoded trailing slash", "/info.php%2F"),
		get("backslash", "/sub\\app.php"),
		get("upper case extension", "/info.PHP"),
		get("missing script trailing slash", "/missing.php/"),
		get("two scripts", "/info.php/x.php/y"),
		get("dir script path info", "/dir/index.php/x"),
		get("fragment in path", "/no/such#frag?x=1"),
		get("fragment after script", "/info.php#x?y=1"),
		get("front controller empty query", "/page?"),
		get("encoded space", "/%20page"),
		get("double encoded", "/page%2520x?a=%2520"),
		get("tilde plus colon at", "/~user/a+b/c:d/@e"),
		get("semicolon segments", "/a;b/c;d"),
		get("invalid UTF-8 path", "/%FF%FE.php"),
		get("invalid UTF-8 front controller", "/%FF%FEx"),
		get("overlong dots", "/%C0%AE%C0%AE/info.php"),
		get("dir dot", "/dir/."),
		get("dir dot dot", "/dir/.."),
		get("sub dot slash", "/sub/./"),
		get("path info dot", "/info.php/."),
		get("path info dot dot", "/info.php/.."),
		get("encoded dot segment", "/%2e/info.php"),
		get("mixed encoded dot dot", "/sub/.%2e/info.php"),
		get("dir query", "/dir/?a=1"),
		get("index by name", "/index.php"),
		get("climb after script", "/info.php/../../x"),
		get("scheme-relative path", "//evil.example/x?y=1"),
		get("absolute query no path", "http://other.example?x=1"),
		get("long query", "/info.php?"+strings.Repeat("a=1&", 500)),
		get("percent in query", "/info.php?q=100%&r=%"),
		get("unicode query raw", "/info.php?q=\xc3\xa9&r=\xe2\x82\xac"),
		get("climb", "/../info.php"),
		{name: "HEAD", line: "HEAD /info.php?h=1 HTTP/1.1"},
		{name: "HEAD front controller", line: "HEAD /page HTTP/1.1"},
		{name: "POST form", line: "POST /info.php HTTP/1.1", headers: []string{"Content-Type: application/x-www-form-urlencoded", "Content-Length: 7"}, body: "a=1&b=2",
			want: map[string]string{"CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": "7", "_post": `{"a":"1","b":"2"}`}},
		{name: "POST front controller", line: "POST /login?next=/x HTTP/1.1", headers: []string{"Content-Type: application/x-www-form-urlencoded", "Content-Length: 7"}, body: "u=a&p=b"},
		{name: "POST without Content-Type", line: "POST /info.php HTTP/1.1", headers: []string{"Content-Length: 5"}, body: "hello"},
		{name: "POST empty", line: "POST /info.php HTTP/1.1", headers: []string{"Content-Length: 0"}},
		{name: "POST no length", line: "POST /info.php HTTP/1.1"},
		{name: "POST chunked", line: "POST /info.php HTTP/1.1", headers: []string{"Content-Type: text/plain", "Transfer-Encoding: chunked"}, body: "5\r\nhello\r\n0\r\n\r\n",
			want: map[string]string{"CONTENT_LENGTH": "5", "_body": "hello"}},
		{name: "POST multipart", line: "POST /info.php HTTP/1.1", headers: []string{"Content-Type: multipart/form-data; boundary=XX", "Content-Length: 151"},
			body: "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n"},
		{name: "POST chunked front controller", line: "POST /api/upload HTTP/1.1", headers: []string{"Content-Type: application/json", "Transfer-Encoding: chunked"}, body: "2\r\n{}\r\n0\r\n\r\n"},
		{name: "POST HTTP/1.0", line: "POST /info.php HTTP/1.0", headers: []string{"Host: shop.example", "Content-Type: application/x-www-form-urlencoded", "Content-Length: 3"}, body: "a=1"},
		{name: "POST html index dir", line: "POST /docs/ HTTP/1.1", headers: []string{"Content-Length: 1"}, body: "x"},
		{name: "HEAD static", line: "HEAD /style.css HTTP/1.1"},
		{name: "OPTIONS static", line: "OPTIONS /style.css HTTP/1.1"},
		{name: "DELETE static", line: "DELETE /style.css HTTP/1.1"},
		{name: "Content-Length and chunked", line: "POST /info.php HTTP/1.1", headers: []string{"Content-Length: 3", "Transfer-Encoding: chunked"}, body: "3\r\nabc\r\n0\r\n\r\n"},
		{name: "Content-Length twice same", line: "POST /info.php HTTP/1.1", headers: []string{"Content-Length: 3", "Content-Length: 3"}, body: "abc"},
		{name: "Content-Length list", line: "POST /info.php HTTP/1.1", headers: []string{"Content-Length: 3, 3"}, body: "abc"},
		{name: "Transfer-Encoding gzip", line: "POST /info.php HTTP/1.1", headers: []string{"Transfer-Encoding: gzip, chunked"}, body: "0\r\n\r\n"},
		{name: "chunked with trailer", line: "POST /info.php HTTP/1.1", headers: []string{"Transfer-Encoding: chunked"}, body: "3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"},
		{name: "chunked empty", line: "POST /info.php HTTP/1.1", headers: []string{"Transfer-Encoding: chunked", "Content-Type: text/plain"}, body: "0\r\n\r\n"},
		{name: "POST static", line: "POST /style.css HTTP/1.1", headers: []string{"Content-Length: 1"}, body: "x"},
		{name: "PUT json", line: "PUT /index.php/api/items/1 HTTP/1.1", headers: []string{"Content-Type: application/json", "Content-Length: 8"}, body: `{"a":1}` + "\n"},
		{name: "PATCH", line: "PATCH /info.php HTTP/1.1", headers: []string{"Content-Length: 2"}, body: "{}"},
		{name: "DELETE", line: "DELETE /info.php?id=3 HTTP/1.1"},
		{name: "OPTIONS", line: "OPTIONS /info.php HTTP/1.1"},
		{name: "OPTIONS front controller", line: "OPTIONS /api/x HTTP/1.1", headers: []string{"Origin: https://app.example", "Access-Control-Request-Method: PUT"}},
		{name: "OPTIONS *", line: "OPTIONS * HTTP/1.1"},
		get("GET with Content-Type", "/info.php", "Content-Type: text/plain"),
		get("GET with Content-Length 0", "/info.php", "Content-Length: 0"),
		{name: "GET with body", line: "GET /info.php HTTP/1.1", headers: []string{"Content-Length: 3"}, body: "abc"},
		get("absolute form", "http://other.example/info.php?a=1"),
		get("absolute form with port", "http://other.example:8080/info.php"),
		get("absolute form front controller", "http://other.example/x/y?z=1"),
		get("absolute form no path", "http://other.example"),
		get("host with port", "/info.php", "Host: shop.example:8080"),
		get("host upper case", "/info.php", "Host: SHOP.Example"),
		get("host trailing dot", "/info.php", "Host: shop.example."),
		get("host other", "/info.php", "Host: other.example"),
		get("host IPv6", "/info.php", "Host: [::1]:8080"),
		get("host IPv6 no port", "/info.php", "Host: [::1]"),
		get("host IP", "/info.php", "Host: 127.0.0.1"),
		get("host default port", "/info.php", "Host: shop.example:80"),
		get("host underscore", "/info.php", "Host: shop_example"),
		get("host twice", "/info.php", "Host: shop.example", "Host: other.example"),
		get("host empty", "/info.php", "Host:"),
		get("host port only", "/info.php", "Host: :8080"),
		get("host bad port", "/info.php", "Host: shop.example:abc"),
		get("host empty port", "/info.php", "Host: shop.example:"),
		get("host bad IPv6", "/info.php", "Host: [::1"),
		get("host leading dot", "/info.php", "Host: .shop.example"),
		get("host double dot", "/info.php", "Host: shop..example"),
		get("host with slash", "/info.php", "Host: shop.example/x"),
		get("absolute https", "https://other.example/info.php"),
		get("absolute empty host", "http:///info.php"),
		get("absolute userinfo", "http://user@other.example/info.php"),
		get("absolute userinfo host confusion", "http://shop.example@other.example/info.php"),
		get("absolute upper scheme", "HTTP://other.example/info.php"),
		get("cookie non-ASCII", "/info.php", "Cookie: n=caf\xc3\xa9"),
		{name: "no host HTTP/1.0", line: "GET /info.php HTTP/1.0"},
		{name: "HTTP/1.0 with host", line: "GET /info.php HTTP/1.0", headers: []string{"Host: shop.example"}},
		get("header underscore", "/info.php", "X_Foo: 1", "X-Bar_Baz: 2"),
		get("header dot", "/info.php", "X.Foo: 1"),
		get("header lower case", "/info.php", "x-lower: v", "X-UPPER: V"),
		get("header digits", "/info.php", "X-1: one", "Accept-Language: en"),
		get("header empty value", "/info.php", "X-Empty:"),
		get("header spaces", "/info.php", "X-Spaces:   a  b   "),
		get("header repeated", "/info.php", "X-Multi: 1", "X-Multi: 2", "Accept: text/html", "Accept: */*"),
		get("header non-ASCII value", "/info.php", "X-Name: caf\xc3\xa9"),
		get("cookie", "/info.php", "Cookie: a=1; b=2"),
		get("cookie repeated", "/info.php", "Cookie: a=1", "Cookie: b=2"),
		get("cookie odd", "/info.php", "Cookie: a=1;b=2; c=x y; d=%41; e"),
		get("proxy header", "/info.php", "Proxy: http://evil.example:3128"),
		get("connection headers", "/info.php", "Connection: keep-alive, X-Hop", "X-Hop: 1", "Keep-Alive: 300", "TE: trailers", "Upgrade: websocket"),
		get("expect", "/info.php", "Expect: 100-continue"),
		get("authorization basic", "/info.php", "Authorization: Basic dXNlcjpwYXNz"),
		get("authorization bearer", "/info.php", "Authorization: Bearer abc"),
		get("url override headers", "/info.php", "X-Original-URL: /admin", "X-Rewrite-URL: /admin"),
		get("sendfile headers", "/info.php", "X-Sendfile-Type: X-Sendfile", "X-Accel-Mapping: /=/"),
		get("forwarded untrusted", "/info.php", "X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example", "X-Forwarded-Port: 443", "Forwarded: for=203.0.113.7;proto=https", "X-Real-IP: 203.0.113.7"),
		{name: "TLS", line: "GET /info.php/x?y=1 HTTP/1.1", proto: "tls", want: map[string]string{"HTTPS": "on", "REQUEST_SCHEME": "https",
			"SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/x", "QUERY_STRING": "y=1"}},
		{name: "TLS host with port", line: "GET /info.php HTTP/1.1", proto: "tls", headers: []string{"Host: shop.example:8443"}},
		{name: "TLS front controller", line: "GET /no/such?x=1 HTTP/1.1", proto: "tls"},
		{name: "TLS dir redirect", line: "GET /dir?x=1 HTTP/1.1", proto: "tls"},
		{name: "TLS forwarded", line: "GET /info.php HTTP/1.1", proto: "tls", headers: []string{"X-Forwarded-Proto: http", "X-Forwarded-For: 203.0.113.7"}},
		{name: "HTTP/2", line: "GET /info.php/x?y=1 HTTP/2", proto: "h2", want: map[string]string{"HTTPS": "on", "REQUEST_SCHEME": "https",
			"PATH_INFO": "/x", "QUERY_STRING": "y=1", "REQUEST_URI": "/info.php/x?y=1", "SCRIPT_NAME": "/info.php"}},
		{name: "HTTP/2 front controller", line: "GET /no/such/page?x=1 HTTP/2", proto: "h2"},
		{name: "HTTP/2 authority with port", line: "GET /info.php HTTP/2", proto: "h2", headers: []string{"Host: shop.example:8443"}},
		{name: "HTTP/2 cookies", line: "GET /info.php HTTP/2", proto: "h2", headers: []string{"Cookie: a=1", "Cookie: b=2", "Cookie: c=3; d=4"}},
		{name: "HTTP/2 repeated header", line: "GET /info.php HTTP/2", proto: "h2", headers: []string{"X-Multi: 1", "X-Multi: 2"}},
		{name: "HTTP/2 POST", line: "POST /info.php HTTP/2", proto: "h2", headers: []string{"Content-Type: application/x-www-form-urlencoded", "Content-Length: 7"}, body: "a=1&b=2"},
		{name: "HTTP/2 POST without length", line: "POST /login HTTP/2", proto: "h2", headers: []string{"Content-Type: application/json"}, body: `{"u":1}`},
		{name: "HTTP/2 dir", line: "GET /dir/ HTTP/2", proto: "h2"},
		{name: "HTTP/2 encoded path", line: "GET /sub/%2e%2e/caf%C3%A9.php/a%2Fb HTTP/2", proto: "h2"},
		{name: "sub front controller", line: "GET /blog/2024/hello/?p=1 HTTP/1.1", sub: true, want: map[string]string{"SCRIPT_NAME": "/sub/app.php",
			"REQUEST_URI": "/blog/2024/hello/?p=1", "QUERY_STRING": "p=1", "PHP_SELF": "/sub/app.php"}},
		{name: "sub front controller root", line: "GET /?s=x HTTP/1.1", sub: true},
		{name: "sub front controller dir index", line: "GET /dir/ HTTP/1.1", sub: true},
		{name: "sub front controller index-less dir", line: "GET /empty/ HTTP/1.1", sub: true},
		{name: "sub front controller sub dir", line: "GET /sub/ HTTP/1.1", sub: true},
		{name: "sub front controller missing script", line: "GET /wp-login.php HTTP/1.1", sub: true},
		{name: "sub front controller POST", line: "POST /wp-json/x HTTP/1.1", sub: true, headers: []string{"Content-Type: application/json", "Content-Length: 2"}, body: "{}"},
		{name: "proxied plain", line: "GET /info.php HTTP/1.1", proxied: true},
		{name: "proxied https", line: "GET /info.php?x=1 HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"},
			want: map[string]string{"REMOTE_ADDR": "203.0.113.7", "HTTPS": "on", "HTTP_X_FORWARDED_PROTO": "https"}},
		{name: "proxied HTTPS upper case", line: "GET /info.php HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: HTTPS"}},
		{name: "proxied address with port", line: "GET /info.php HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: 203.0.113.7:4711", "X-Forwarded-Proto: https"}},
		{name: "proxied IPv6", line: "GET /info.php HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: 2001:db8::7", "X-Forwarded-Proto: https"}},
		{name: "proxied garbage", line: "GET /info.php HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: nonsense, 203.0.113.7"}},
		{name: "proxied two lines", line: "GET /info.php HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: 203.0.113.7"}},
		{name: "proxied http", line: "GET /info.php HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: http"}},
		{name: "proxied chain", line: "GET /info.php HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: 198.51.100.1, 203.0.113.7, 127.0.0.5", "X-Forwarded-Proto: https"}},
		{name: "proxied host", line: "GET /page HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https", "X-Forwarded-Host: shop.example", "X-Forwarded-Port: 443"}},
		{name: "proxied dir redirect", line: "GET /dir?x=1 HTTP/1.1", proxied: true, headers: []string{"X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"}},
	}
}

// TestNginxDiffStaticValidators: a static file's ETag and Last-Modified are
// nginx's, byte for byte, so a browser that cached a file behind nginx
// revalidates it with a 304 behind the gateway, and a rollout that puts
// both behind one load balancer does not make every revalidation a full
// download. Each side answers the other's tag with 304.
func TestNginxDiffStaticValidators(t *testing.T) {
	t.Parallel()
	direct, _, _, _, _ := startNginxDiff(t)
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(addr, path, inm string) *http.Response {
		req, err := http.NewRequest("GET", "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "shop.example"
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s%s: %v", addr, path, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	for _, path := range []string{"/style.css", "/docs/index.html", "/empty/notes.txt"} {
		n, g := get(direct.nginx, path, ""), get(direct.gw, path, "")
		if n.StatusCode != 200 || g.StatusCode != 200 {
			t.Fatalf("%s: nginx %d, gateway %d", path, n.StatusCode, g.StatusCode)
		}
		ntag, gtag := n.Header.Get("ETag"), g.Header.Get("ETag")
		if ntag == "" || ntag != gtag || n.Header.Get("Last-Modified") != g.Header.Get("Last-Modified") {
			t.Errorf("%s: nginx ETag %q Last-Modified %q, gateway %q %q", path, ntag, n.Header.Get("Last-Modified"), gtag, g.Header.Get("Last-Modified"))
		}
		if res := get(direct.gw, path, ntag); res.StatusCode != 304 {
			t.Errorf("%s: the gateway answers nginx's tag %q with %d, want 304", path, ntag, res.StatusCode)
		}
		if res := get(direct.nginx, path, gtag); res.StatusCode != 304 {
			t.Errorf("%s: nginx answers the gateway's tag %q with %d, want 304", path, gtag, res.StatusCode)
		}
	}
}

// unionKeys is the keys of nginx's and the gateway's answers, sorted, so
// that a difference is reported in the same order on every run.
func unionKeys(n, g map[string]string) []string {
	keys := slices.Collect(maps.Keys(n))
	for k := range g {
		if _, ok := n[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

package integration

// A differential test of host names, redirects, HSTS and the port-80
// listener: the same site expressed as nginx server blocks (server_name
// lists with a wildcard, a default_server that refuses the rest, the
// canonical-name server block, location redirects, the port-80 block with
// its ACME challenge location, add_header Strict-Transport-Security
// always) and as SESSIONGATE_* variables, both in front of one php-fpm,
// and the same bytes sent to each. What is compared: the status, every
// Location byte for byte (each side's own TLS port written PORT), the
// Strict-Transport-Security fields and what PHP saw of the host and the
// scheme. Above all, no Location may lead to another host than the
// configuration names, nor carry a header of its own.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testh2"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

// hostDiffHSTS is the Strict-Transport-Security value both send.
const hostDiffHSTS = "max-age=63072000; includeSubDomains"

// hostDiffToken is an ACME HTTP-01 token certbot wrote.
const hostDiffToken = "Tk9_hostdiff-1"

// hostDiffRedirects are SESSIONGATE_REDIRECTS; nginxHostRedirects are the
// same moves as nginx locations, as README's nginx table writes them.
var hostDiffRedirects = []string{
	"/old-page /new-page",
	"/blog/ https://blog.example.com/",
	"/docs-old/ /docs/",
	"/promo /sale? 302",
	"/shop/ /store 307",
	"/api/v1/ /api/v2/ 308",
	"/gone/ /",
	"/landing https://shop.example/welcome?src=landing",
	"/temp /elsewhere 302",
}

const nginxHostRedirects = `
        location = /old-page { rewrite ^ /new-page permanent; }
        location = /blog { rewrite ^ https://blog.example.com/ permanent; }
        location /blog/ { rewrite ^/blog/(.*)$ https://blog.example.com/$1 permanent; }
        location = /docs-old { rewrite ^ /docs/ permanent; }
        location /docs-old/ { rewrite ^/docs-old/(.*)$ /docs/$1 permanent; }
        location = /promo { return 302 /sale; }
        location = /shop { return 307 /store$is_args$args; }
        location /shop/ { return 307 /store$is_args$args; }
        location = /api/v1 { return 308 /api/v2/$is_args$args; }
        location ~ ^/api/v1/(.*)$ { return 308 /api/v2/$1$is_args$args; }
        location = /gone { rewrite ^ / permanent; }
        location /gone/ { rewrite ^/gone/(.*)$ /$1 permanent; }
        location = /landing { rewrite ^ https://shop.example/welcome?src=landing permanent; }
        location = /temp { rewrite ^ /elsewhere redirect; }
`

// hostDiffEnd is one side of the comparison: the TLS site and the port-80
// listener, and the TLS port its redirects name.
type hostDiffEnd struct {
	site, plain, tlsPort string
}

// hostDiffPair is nginx and the gateway, configured alike.
type hostDiffPair struct{ nginx, gw hostDiffEnd }

// startHostDiff starts php-fpm, nginx and two gateways: "named" lists its
// server names (shop.example, www.shop.example, *.shop.example, localhost,
// 127.0.0.1) with shop.example canonical, "open" answers every Host; both
// have the redirects, TLS, HSTS and a port-80 listener.
func startHostDiff(t *testing.T) (named, open, proxied hostDiffPair, dumpDir string) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "nginx")
	dumpDir = harness.PHPTempDir(t)
	root := nginxDiffSite(t, dumpDir)
	writeTree(t, root, map[string]string{
		".well-known/acme-challenge/" + hostDiffToken: hostDiffToken + ".thumb",
		"evil.example/index.html":                     "<h1>a directory named like a host</h1>",
		"\\evil.example/index.html":                   "<h1>a directory named like a host after a backslash</h1>",
		"\tx/index.html":                              "<h1>a directory named with a tab</h1>",
		"hsts.php":                                    `<?php header('Strict-Transport-Security: max-age=5'); echo 'own';`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	cert, key := testtls.Pair(t)
	phpWith := func(params string) string {
		return fmt.Sprintf(`
        location ~ /\.(?!well-known/) { deny all; }
        location / { try_files $uri $uri/ /index.php$is_args$args; }
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
`, params, fpm.Addr)
	}
	php := phpWith("")
	acme := fmt.Sprintf(`
        location ^~ /.well-known/acme-challenge/ { root %s; default_type application/octet-stream; try_files $uri =404; }
`, root)
	ng := harness.StartNginx(t, 5, func(a []string) string {
		port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
		return fmt.Sprintf(`
    ssl_certificate %[1]s;
    ssl_certificate_key %[2]s;
    absolute_redirect off;

    # named: the default_server refuses other hosts (421 rather than the
    # usual 444, to have a status to compare), www and the other
    # subdomains move to the canonical name, the site has the rest.
    server {
        listen %[4]s ssl http2 default_server;
        server_name _;
        add_header Strict-Transport-Security "%[3]s" always;
        return 421;
    }
    server {
        listen %[4]s ssl http2;
        server_name www.shop.example *.shop.example;
        add_header Strict-Transport-Security "%[3]s" always;
        return 301 $scheme://shop.example$request_uri;
    }
    server {
        listen %[4]s ssl http2;
        server_name shop.example localhost 127.0.0.1;
        add_header Strict-Transport-Security "%[3]s" always;
        root %[6]s;
        index index.php index.html;
%[7]s%[8]s    }
    # named, port 80.
    server {
        listen %[5]s default_server;
        server_name _;
        return 421;
    }
    server {
        listen %[5]s;
        server_name www.shop.example *.shop.example;
%[9]s        location / { return 301 https://shop.example:%[10]s$request_uri; }
    }
    server {
        listen %[5]s;
        server_name shop.example localhost 127.0.0.1;
%[9]s        location / { return 301 https://$host:%[10]s$request_uri; }
    }

    # open: one server block each, every Host.
    server {
        listen %[11]s ssl http2;
        add_header Strict-Transport-Security "%[3]s" always;
        root %[6]s;
        index index.php index.html;
%[7]s%[8]s    }
    server {
        listen %[12]s;
%[9]s        location / { return 301 https://$host:%[13]s$request_uri; }
    }

    # proxied: plain HTTP behind a TLS proxy on 127.0.0.0/8, whose
    # X-Forwarded-Proto (its last value, as the gateway reads it) makes
    # the scheme of the redirects, HTTPS, REQUEST_SCHEME and HSTS.
    map $http_x_forwarded_proto $fwd_scheme {
        default http;
        "~*(?:^|,)\s*https\s*$" https;
    }
    map $fwd_scheme $fwd_hsts {
        https "%[3]s";
        default "";
    }
    map $fwd_scheme $fwd_https {
        https on;
        default "";
    }
    server {
        listen %[14]s default_server;
        server_name _;
        add_header Strict-Transport-Security $fwd_hsts always;
        return 421;
    }
    server {
        listen %[14]s;
        server_name www.shop.example *.shop.example;
        add_header Strict-Transport-Security $fwd_hsts always;
        return 301 $fwd_scheme://shop.example$request_uri;
    }
    server {
        listen %[14]s;
        server_name shop.example localhost 127.0.0.1;
        set_real_ip_from 127.0.0.0/8;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        add_header Strict-Transport-Security $fwd_hsts always;
        root %[6]s;
        index index.php index.html;
%[7]s%[15]s    }
`, cert, key, hostDiffHSTS, a[0], a[1], root, nginxHostRedirects, php, acme, port(a[0]), a[2], a[3], port(a[2]),
			a[4], phpWith("fastcgi_param HTTPS $fwd_https if_not_empty;\n            fastcgi_param REQUEST_SCHEME $fwd_scheme;"))
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
		}
	})
	bin := buildGateway(t)
	names := []string{"SESSIONGATE_SERVER_NAMES=shop.example,www.shop.example,*.shop.example,localhost,127.0.0.1", "SESSIONGATE_CANONICAL_NAME=shop.example"}
	run := func(env ...string) string {
		gw := startBinary(t, bin, append([]string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
			"SESSIONGATE_PHP_MAX_CONNS=1", "SESSIONGATE_SESSIONS=off", "SESSIONGATE_HSTS=" + hostDiffHSTS,
			"SESSIONGATE_REDIRECTS=" + strings.Join(hostDiffRedirects, ",")}, env...))
		return strings.TrimPrefix(gw.URL, "http://")
	}
	start := func(env ...string) hostDiffEnd {
		plain := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
		site := run(append([]string{"SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + key, "SESSIONGATE_HTTP_REDIRECT_LISTEN=" + plain}, env...)...)
		_, p, _ := net.SplitHostPort(site)
		return hostDiffEnd{site: site, plain: plain, tlsPort: p}
	}
	nend := func(site, plain string) hostDiffEnd {
		_, p, _ := net.SplitHostPort(site)
		return hostDiffEnd{site: site, plain: plain, tlsPort: p}
	}
	named = hostDiffPair{nginx: nend(ng.Addrs[0], ng.Addrs[1]), gw: start(names...)}
	open = hostDiffPair{nginx: nend(ng.Addrs[2], ng.Addrs[3]), gw: start()}
	proxied = hostDiffPair{nginx: nend(ng.Addrs[4], ""), gw: nend(run(append(names, "SESSIONGATE_TRUSTED_PROXIES=127.0.0.0/8")...), "")}
	return named, open, proxied, dumpDir
}

// hostCase is one request, sent as written: its request line and header
// lines (no Host is added), to the TLS site, the port-80 listener or the
// site behind a proxy.
type hostCase struct {
	name    string
	line    string
	headers []string
	body    string
	open    bool // to the pair without server names
	proxied bool // to the plain-HTTP pair behind a trusted TLS proxy
	plain   bool // to the port-80 listener
	// h2 sends it over HTTP/2: the request line's method and target as
	// :method and :path, the Host header as :authority. With h2Authority,
	// as raw frames, the Host header is a field beside :authority naming
	// h2Authority ("-": no :authority), and only the status is read.
	h2          bool
	h2Authority string
}

// hostAnswer is what one server did with a case. status 0: the connection
// closed without an answer.
type hostAnswer struct {
	status   int
	location []string
	hsts     []string
	body     string // of a challenge file
	php      map[string]string
}

// hostDiffKeys are what is compared of PHP's $_SERVER.
var hostDiffKeys = []string{"SERVER_NAME", "HTTP_HOST", "HTTPS", "REQUEST_SCHEME", "REQUEST_URI", "QUERY_STRING", "SCRIPT_NAME"}

// hostHeader is c's Host field, trimmed, and whether it has one.
func (c hostCase) hostHeader() (string, bool) {
	for _, h := range c.headers {
		if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Host") {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// send sends c to e and reads the answer; id names PHP's dump.
func (c hostCase) send(t *testing.T, e hostDiffEnd, dumpDir, id string) hostAnswer {
	t.Helper()
	if c.h2 {
		return c.sendH2(t, e, dumpDir, id)
	}
	addr := e.site
	if c.plain {
		addr = e.plain
	}
	var conn net.Conn
	var err error
	if c.plain || c.proxied {
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
	} else {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}, ServerName: "shop.example"})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	b.WriteString(c.line + "\r\n")
	for _, h := range c.headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("X-Case: " + id + "\r\nConnection: close\r\n\r\n" + c.body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(c.line, " ")
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return hostAnswer{} // closed without an answer
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	a := hostAnswer{status: res.StatusCode, location: res.Header.Values("Location"), hsts: res.Header.Values("Strict-Transport-Security")}
	if res.StatusCode == 200 && strings.Contains(c.line, "acme-challenge") {
		a.body = string(body)
	}
	return c.withDump(t, a, dumpDir, id)
}

func (c hostCase) withDump(t *testing.T, a hostAnswer, dumpDir, id string) hostAnswer {
	t.Helper()
	d := readDump(t, diffCase{name: c.name, line: c.line}, diffAnswer{}, dumpDir, id)
	if d.php != nil {
		a.php = map[string]string{}
		for _, k := range hostDiffKeys {
			if v, ok := d.php[k]; ok {
				a.php[k] = v
			}
		}
	}
	return a
}

// sendH2 is send over HTTP/2: with Go's client, whose :authority is the
// Host header; with h2Authority, as raw frames.
func (c hostCase) sendH2(t *testing.T, e hostDiffEnd, dumpDir, id string) hostAnswer {
	t.Helper()
	method, target, _ := strings.Cut(c.line, " ")
	target, _, _ = strings.Cut(target, " ")
	host, _ := c.hostHeader()
	if c.h2Authority != "" {
		fields := []testh2.Field{{":method", method}, {":scheme", "https"}, {":path", target}}
		if c.h2Authority != "-" { // "-": none
			fields = append(fields, testh2.Field{":authority", c.h2Authority})
		}
		if host != "" {
			fields = append(fields, testh2.Field{"host", host})
		}
		fields = append(fields, testh2.Field{"x-case", id})
		res := testh2.Do(t, e.site, fields, nil)
		return c.withDump(t, hostAnswer{status: res.Status}, dumpDir, id)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "shop.example"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(method, "https://"+e.site+target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("X-Case", id)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("%s: answered over %s", c.name, res.Proto)
	}
	return c.withDump(t, hostAnswer{status: res.StatusCode, location: res.Header.Values("Location"),
		hsts: res.Header.Values("Strict-Transport-Security")}, dumpDir, id)
}

// hostDiff is one way the two answers to a case differ: key is "status",
// "Location", "HSTS", "body", "PHP ran" or a $_SERVER entry (nok and gok
// say whether it was set).
type hostDiff struct {
	c          hostCase
	key        string
	n, g       string
	nok, gok   bool
	nAns, gAns hostAnswer
}

func (d hostDiff) String() string {
	where := "site"
	if d.c.plain {
		where = "port 80"
	}
	if d.c.open {
		where += ", open"
	}
	if d.c.proxied {
		where = "proxied"
	}
	return fmt.Sprintf("%s (%s %q %q, %s): %s: nginx %s, gateway %s", d.c.name, d.c.line, d.c.headers, d.c.h2Authority, where, d.key,
		show(d.n, d.nok), show(d.g, d.gok))
}

// compareHost lists how n and g differ, Locations with each side's TLS
// port written PORT.
func compareHost(c hostCase, n, g hostAnswer, nport, gport string) []hostDiff {
	mk := func(key, nv, gv string) hostDiff {
		return hostDiff{c: c, key: key, n: nv, g: gv, nok: true, gok: true, nAns: n, gAns: g}
	}
	if n.status != g.status {
		return []hostDiff{mk("status", strconv.Itoa(n.status), strconv.Itoa(g.status))}
	}
	var diffs []hostDiff
	portless := func(locs []string, port string) string {
		r := strings.NewReplacer(":"+port+"/", ":PORT/", ":"+port+"?", ":PORT?")
		return r.Replace(strings.Join(locs, "\n"))
	}
	nl, gl := portless(n.location, nport), portless(g.location, gport)
	if nl != gl {
		diffs = append(diffs, mk("Location", nl, gl))
	}
	if nh, gh := strings.Join(n.hsts, "\n"), strings.Join(g.hsts, "\n"); nh != gh {
		diffs = append(diffs, mk("HSTS", nh, gh))
	}
	if n.body != g.body {
		diffs = append(diffs, mk("body", n.body, g.body))
	}
	if (n.php == nil) != (g.php == nil) {
		return append(diffs, mk("PHP ran", strconv.FormatBool(n.php != nil), strconv.FormatBool(g.php != nil)))
	}
	for _, k := range hostDiffKeys {
		nv, nok := n.php[k]
		gv, gok := g.php[k]
		if nv != gv || nok != gok {
			d := mk(k, nv, gv)
			d.nok, d.gok = nok, gok
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// hostAsSent is the host c names: its absolute-form target's authority,
// else its Host field ("" without either).
func (c hostCase) hostAsSent() string {
	return diffCase{line: c.line, headers: c.headers}.hostAsSent()
}

// lastForwardedProto is the last value of c's X-Forwarded-Proto, the one
// the proxy in front wrote.
func (c hostCase) lastForwardedProto() string {
	vs := diffCase{headers: c.headers}.headerValues("X-Forwarded-Proto")
	if len(vs) == 0 {
		return ""
	}
	parts := strings.Split(vs[len(vs)-1], ",")
	return strings.TrimSpace(parts[len(parts)-1])
}

// target is c's request target.
func (c hostCase) target() string {
	_, t, _ := strings.Cut(c.line, " ")
	t, _, _ = strings.Cut(t, " ")
	return t
}

// urlEscapeRaw percent-encodes what a URL may not hold raw: bytes outside
// printable ASCII, and the quote, angle brackets, backslash, caret,
// backquote, braces and bar (RFC 3986 section 2; the WHATWG URL standard's
// path and query sets).
func urlEscapeRaw(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// hostKnownDiffs are the differences README describes (section "From
// nginx to sessiongate": the server_name, canonical name, return 301,
// port-80, add_header Strict-Transport-Security, fastcgi_params and
// listen 443 rows).
var hostKnownDiffs = []knownDiff[hostDiff]{
	{"HTTP_HOST is the host as sent (Debian 12's fastcgi_params: $host, lower case, without port or trailing dot)", func(d hostDiff) bool {
		h := d.c.hostAsSent()
		want := debianHost(h)
		if h == "" && d.c.open {
			want = "" // $host: no name asked for, no server_name
		}
		return d.key == "HTTP_HOST" && d.n == want && (h == "" && !d.gok || d.gok && d.g == h)
	}},
	{"SERVER_NAME is the listed name the client asked for (nginx: the first server_name)", func(d hostDiff) bool {
		return d.key == "SERVER_NAME" && !d.c.open && d.n == "shop.example" && d.g == debianHost(d.c.hostAsSent())
	}},
	{"SERVER_NAME is the host as sent without its port, or the address reached without one (nginx without server_name: empty)", func(d hostDiff) bool {
		want := withoutPort(d.c.hostAsSent())
		if d.c.hostAsSent() == "" {
			want = "127.0.0.1"
		}
		return d.key == "SERVER_NAME" && d.c.open && d.n == "" && d.g == want
	}},
	{"the canonical redirect keeps the port the client used (nginx's return 301 https://shop.example$request_uri drops it)", func(d hostDiff) bool {
		_, port, err := net.SplitHostPort(d.c.hostAsSent())
		return d.key == "Location" && err == nil && strings.HasPrefix(d.n, "https://shop.example/") &&
			d.g == "https://shop.example:"+port+strings.TrimPrefix(d.n, "https://shop.example")
	}},
	{"a Host with bytes net/http refuses (non-ASCII, a backslash, an @) gets its 400 (nginx: taken as a name, redirected to on port 80)", func(d hostDiff) bool {
		h := d.c.hostAsSent()
		return d.key == "status" && d.g == "400" && d.n != "400" && strings.ContainsFunc(h, func(r rune) bool { return r > 0x7f || r == '\\' || r == '@' })
	}},
	{"a request line past nginx's 8 KiB (large_client_header_buffers) is answered, up to SESSIONGATE_MAX_HEADER_BYTES (nginx: 414)", func(d hostDiff) bool {
		return d.key == "status" && d.n == "414" && d.g != "414" && len(d.c.line) > 8<<10 && len(d.c.line) < 16<<10
	}},
	{"a Host that is no host name (a port that is no number, a *) gets 421 (nginx: served as the name before it, or as the wildcard)", func(d hostDiff) bool {
		h := d.c.hostAsSent()
		return d.key == "status" && !d.c.open && d.g == "421" && (d.n == "200" || d.n == "301") &&
			(strings.HasPrefix(h, "*.") || strings.HasSuffix(h, ":abc"))
	}},
	{"HTTP/1.0 without Host is served under the canonical name (nginx: the default_server, which refuses it)", func(d hostDiff) bool {
		return d.key == "status" && !d.c.open && d.c.hostAsSent() == "" && d.n == "421" && (d.g == "200" || d.g == "301")
	}},
	{"port 80 refuses HTTP/1.0 without Host when no name is listed: 400 (nginx: 301 to https://:PORT, no host)", func(d hostDiff) bool {
		return d.key == "status" && d.c.open && d.c.plain && d.c.hostAsSent() == "" && d.n == "301" && d.g == "400" &&
			len(d.nAns.location) == 1 && strings.HasPrefix(d.nAns.location[0], "https://:")
	}},
	{"port 80 redirects only a DNS name or an IP address: 400 for another Host (nginx: https://$host as sent)", func(d hostDiff) bool {
		h := d.c.hostAsSent()
		return d.key == "status" && d.c.plain && d.c.open && d.n == "301" && d.g == "400" && strings.ContainsAny(h, "_;',%") &&
			len(d.nAns.location) == 1 && strings.HasPrefix(d.nAns.location[0], "https://"+h+":")
	}},
	{"an absolute-form target without a path has the path / (nginx: the query right after the host)", func(d hostDiff) bool {
		_, rest, _ := strings.Cut(d.c.target(), "://")
		i := strings.IndexAny(rest, "/?")
		if i < 0 || rest[i] != '?' {
			return false
		}
		q := rest[i:]
		return d.key == "Location" && strings.HasSuffix(d.n, q) && d.g == strings.TrimSuffix(d.n, q)+"/"+q ||
			d.key == "REQUEST_URI" && d.n == q && d.g == "/"+q
	}},
	{"bytes a URL may not hold raw are percent-encoded in Location (nginx: sent raw, a backslash too)", func(d hostDiff) bool {
		return d.key == "Location" && d.n != d.g && urlEscapeRaw(d.n) == d.g
	}},
	{"an encoded ? in a moved directory's path stays %3F (nginx's rewrite capture decodes it into the query's start)", func(d hostDiff) bool {
		return d.key == "Location" && strings.Contains(d.g, "%3F") && strings.ReplaceAll(d.g, "%3F", "?") == d.n
	}},
	{"an encoded control character in a moved directory's path is moved, still encoded (nginx: 400 for %00, 404 for a line break, which the rewrite's . does not match)", func(d hostDiff) bool {
		path, _, _ := strings.Cut(d.c.target(), "?")
		return d.key == "status" && (d.n == "404" && (strings.Contains(path, "%0D") || strings.Contains(path, "%0A")) || d.n == "400" && strings.Contains(path, "%00")) &&
			(d.g == "301" || d.g == "308") && encodedControl.MatchString(path)
	}},
	{"an encoded control character in a path no redirect moves gets 400 (nginx: routed, here to a directory's redirect)", func(d hostDiff) bool {
		path, _, _ := strings.Cut(d.c.target(), "?")
		return d.key == "status" && d.g == "400" && d.n == "301" && encodedControl.MatchString(path)
	}},
	{"methods other than GET and HEAD get 308 where the redirect names no code (nginx's permanent and return 301: 301)", func(d hostDiff) bool {
		m, _, _ := strings.Cut(d.c.line, " ")
		return d.key == "status" && m != "GET" && m != "HEAD" && d.n == "301" && d.g == "308"
	}},
	{"a challenge path with dot segments gets 404 on port 80 (nginx: resolved, then redirected)", func(d hostDiff) bool {
		return d.key == "status" && d.c.plain && strings.HasPrefix(d.c.target(), "/.well-known/acme-challenge/../") && d.n == "301" && d.g == "404"
	}},
	{"a challenge path with a doubled slash is not served on port 80 (nginx: slashes merged, the file sent)", func(d hostDiff) bool {
		return d.key == "status" && d.c.plain && strings.Contains(d.c.target(), "acme-challenge") && strings.Contains(d.c.target(), "//") &&
			d.n == "200" && (d.g == "404" || d.g == "301")
	}},
	{"an HTTP/2 Host field beside :authority naming the same host is served (nginx 1.22: 400, a second Host)", func(d hostDiff) bool {
		h, _ := d.c.hostHeader()
		return d.key == "status" && d.c.h2Authority != "" && d.c.h2Authority != "-" && strings.EqualFold(h, d.c.h2Authority) &&
			d.n == "400" && d.g == "200"
	}},
	{"X-Forwarded-Proto on two lines is one list, whose last value counts (nginx 1.22's $http_x_forwarded_proto: the first line)", func(d hostDiff) bool {
		vs := diffCase{headers: d.c.headers}.headerValues("X-Forwarded-Proto")
		if !d.c.proxied || len(vs) < 2 || !strings.EqualFold(d.c.lastForwardedProto(), "https") || strings.EqualFold(vs[0], "https") {
			return false
		}
		switch d.key {
		case "HSTS":
			return d.n == "" && d.g == hostDiffHSTS
		case "HTTPS":
			return !d.nok && d.g == "on"
		case "REQUEST_SCHEME":
			return d.n == "http" && d.g == "https"
		}
		return false
	}},
	{"behind a trusted proxy, X-Forwarded-Host is the host asked for: moved to the canonical name, refused when not listed (nginx: Host decides)", func(d hostDiff) bool {
		xfh := diffCase{headers: d.c.headers}.headerValues("X-Forwarded-Host")
		return d.key == "status" && d.c.proxied && len(xfh) == 1 && d.n == "200" &&
			(xfh[0] == "www.shop.example" && d.g == "301" || xfh[0] == "evil.example" && d.g == "421")
	}},
	{"a POST to a challenge on port 80 is redirected (nginx: 405 from the static location)", func(d hostDiff) bool {
		return d.key == "status" && d.c.plain && strings.HasPrefix(d.c.line, "POST /.well-known/acme-challenge/") && d.n == "405" && d.g == "308"
	}},
	{"the app's own Strict-Transport-Security is replaced (nginx's add_header: both go out)", func(d hostDiff) bool {
		return d.key == "HSTS" && d.g == hostDiffHSTS && strings.HasSuffix(d.n, "\n"+hostDiffHSTS) && !strings.Contains(strings.TrimSuffix(d.n, "\n"+hostDiffHSTS), "\n")
	}},
}

// TestNginxDiffHosts sends each of hostDiffCases to nginx and to the
// gateway, configured alike (startHostDiff), and compares what a client
// and PHP get. Every difference must be one of hostKnownDiffs, and each
// of those must still be seen.
func TestNginxDiffHosts(t *testing.T) {
	t.Parallel()
	named, open, proxied, dumpDir := startHostDiff(t)
	seen := map[string]int{}
	for i, c := range hostDiffCases() {
		pair := named
		switch {
		case c.open:
			pair = open
		case c.proxied:
			pair = proxied
		}
		n := c.send(t, pair.nginx, dumpDir, "hn"+strconv.Itoa(i))
		g := c.send(t, pair.gw, dumpDir, "hg"+strconv.Itoa(i))
		checkHostSafety(t, c, g)
		judgeDiffs(t, compareHost(c, n, g, pair.nginx.tlsPort, pair.gw.tlsPort), hostKnownDiffs, seen, "")
	}
	knownAllSeen(t, hostKnownDiffs, seen)
}

// checkHostSafety: the gateway's Location leads to a host the
// configuration names (or stays on the site), and holds no byte that
// could end the header or start another. nginx's are not checked: it fails some of these.
func checkHostSafety(t *testing.T, c hostCase, a hostAnswer) {
	t.Helper()
	const side = "gateway"
	// net/http refuses a malformed request (400) before the gateway sees
	// it, without HSTS (README); an HTTP/2 request sent as raw frames has
	// only its status read.
	if !c.plain && !c.proxied && len(a.hsts) != 1 && a.status != 400 && c.h2Authority == "" {
		t.Errorf("%s: %s sent %d Strict-Transport-Security fields over TLS: %q", c.name, side, len(a.hsts), a.hsts)
	}
	https := !c.plain && (!c.proxied || strings.EqualFold(c.lastForwardedProto(), "https"))
	if !https && slices.Contains(a.hsts, hostDiffHSTS) {
		// The app's own goes out as it is, as with nginx; browsers ignore
		// it over plain HTTP (RFC 6797 section 8.1).
		t.Errorf("%s: %s sent SESSIONGATE_HSTS over plain HTTP: %q", c.name, side, a.hsts)
	}
	for _, loc := range a.location {
		if strings.ContainsAny(loc, "\r\n\\ \t") {
			t.Errorf("%s: %s Location %q holds a byte a URL may not", c.name, side, loc)
		}
		if strings.HasPrefix(loc, "/") {
			if strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
				t.Errorf("%s: %s Location %q leads to another host", c.name, side, loc)
			}
			continue
		}
		scheme := "https://"
		if !https && c.proxied {
			scheme = "http://"
		}
		rest, ok := strings.CutPrefix(loc, scheme)
		if !ok {
			t.Errorf("%s: %s Location %q is neither a path nor %s", c.name, side, loc, scheme)
			continue
		}
		host := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			host = rest[:i]
		}
		h := withoutPort(host)
		if !c.open {
			if h != "shop.example" && h != "blog.example.com" && h != "localhost" && h != "127.0.0.1" {
				t.Errorf("%s: %s Location %q leads to %q, no name of the site", c.name, side, loc, h)
			}
		}
		if strings.ContainsAny(host, "@%") {
			t.Errorf("%s: %s Location %q has userinfo or escapes in its host", c.name, side, loc)
		}
	}
}

func hostDiffCases() []hostCase {
	get := func(name, target, host string, more ...string) hostCase {
		return hostCase{name: name, line: "GET " + target + " HTTP/1.1", headers: append([]string{"Host: " + host}, more...)}
	}
	plain := func(c hostCase) hostCase { c.plain = true; return c }
	openc := func(c hostCase) hostCase { c.open = true; return c }
	h2 := func(c hostCase) hostCase { c.h2 = true; return c }
	prox := func(c hostCase) hostCase { c.proxied = true; return c }
	method := func(m string, c hostCase) hostCase { c.line = m + strings.TrimPrefix(c.line, "GET"); return c }
	post := func(c hostCase) hostCase {
		c.line = "POST" + strings.TrimPrefix(c.line, "GET")
		c.headers = append(c.headers, "Content-Type: application/x-www-form-urlencoded", "Content-Length: 3")
		c.body = "a=1"
		return c
	}
	var cs []hostCase
	// Host names on the named site.
	hosts := []string{"shop.example", "SHOP.Example", "shop.example.", "shop.example:8443", "shop.example:443",
		"localhost", "127.0.0.1", "127.0.0.1:8443", "www.shop.example", "WWW.Shop.Example", "www.shop.example.",
		"www.shop.example:8443", "de.shop.example", "a.b.shop.example", "evil.example", "shop.example.evil.example",
		"evilshop.example", "[::1]", "[::1]:8443", "xn--caf-dma.example", "xn--caf-dma.shop.example", "caf\xc3\xa9.shop.example",
		"shop.example:abc", "shop.example:", "shop_example", "*.shop.example", "shop.example\\evil", "shop.example%2F"}
	for _, h := range hosts {
		cs = append(cs, get("site Host "+h, "/info.php?q=1", h))
	}
	for _, h := range hosts {
		cs = append(cs, plain(get("port 80 Host "+h, "/x/y?q=1", h)))
	}
	cs = append(cs,
		hostCase{name: "site no host HTTP/1.0", line: "GET /info.php HTTP/1.0"},
		hostCase{name: "site no host HTTP/1.0 redirect", line: "GET /old-page HTTP/1.0"},
		plain(hostCase{name: "port 80 no host HTTP/1.0", line: "GET /x HTTP/1.0"}),
		openc(hostCase{name: "open site no host HTTP/1.0", line: "GET /info.php HTTP/1.0"}),
		openc(plain(hostCase{name: "open port 80 no host HTTP/1.0", line: "GET /x HTTP/1.0"})),
		hostCase{name: "site HTTP/1.0 www", line: "GET /x HTTP/1.0", headers: []string{"Host: www.shop.example"}},
		// Absolute-form targets whose host differs from Host.
		get("absolute other host", "https://evil.example/info.php", "shop.example"),
		get("absolute www", "https://www.shop.example/x?y=1", "shop.example"),
		get("absolute site, Host other", "https://shop.example/info.php", "evil.example"),
		get("absolute site, Host www", "https://shop.example/info.php", "www.shop.example"),
		get("absolute http scheme", "http://shop.example/info.php", "shop.example"),
		get("absolute upper case", "https://SHOP.EXAMPLE/info.php", "shop.example"),
		plain(get("port 80 absolute other host", "http://evil.example/x", "shop.example")),
		plain(get("port 80 absolute site, Host other", "http://shop.example/x", "evil.example")),
		plain(get("port 80 absolute www", "http://www.shop.example/x?y", "shop.example")),
		openc(plain(get("open port 80 absolute other host", "http://evil.example/x", "shop.example"))),
		openc(get("open site absolute other host", "https://evil.example/info.php", "shop.example")),
		// Userinfo, empty hosts and targets without a path.
		get("absolute userinfo", "https://shop.example@evil.example/info.php", "shop.example"),
		get("absolute userinfo www", "https://evil.example@www.shop.example/x", "shop.example"),
		plain(get("port 80 absolute userinfo", "http://shop.example@evil.example/x", "shop.example")),
		plain(get("port 80 absolute userinfo listed", "http://evil.example@shop.example/x", "shop.example")),
		openc(plain(get("open port 80 absolute userinfo", "http://shop.example@evil.example/x", "shop.example"))),
		openc(plain(get("open port 80 absolute userinfo 2", "http://user:pw@evil.example/x", "evil.example"))),
		openc(get("open site absolute userinfo", "https://shop.example@evil.example/info.php", "shop.example")),
		plain(get("port 80 empty Host", "/x", "")),
		plain(get("port 80 Host port only", "/x", ":8080")),
		plain(get("port 80 Host empty label", "/x", "shop..example")),
		openc(plain(get("open port 80 empty Host", "/x", ""))),
		openc(plain(get("open port 80 Host port only", "/x", ":8080"))),
		openc(plain(get("open port 80 Host empty label", "/x", "shop..example"))),
		openc(plain(get("open port 80 Host IPv6", "/x", "[::1]:8080"))),
		openc(plain(get("open port 80 Host IPv6 zone", "/x", "[fe80::1%25eth0]"))),
		openc(plain(get("open port 80 Host trailing dot", "/x", "Evil.Example."))),
		openc(plain(get("open port 80 Host underscore", "/x", "a_b.example"))),
		openc(plain(get("open port 80 Host semicolon", "/x", "a;b.example"))),
		openc(plain(get("open port 80 Host quote", "/x", "a'b.example"))),
		openc(plain(get("open port 80 Host comma", "/x", "a.example,b.example"))),
		openc(get("open site Host comma", "/info.php", "a.example,b.example")),
		plain(method("OPTIONS", get("port 80 OPTIONS *", "*", "shop.example"))),
		method("OPTIONS", get("canonical OPTIONS *", "*", "www.shop.example")),
		plain(get("port 80 absolute no path", "http://shop.example", "shop.example")),
		plain(get("port 80 absolute query only", "http://shop.example?x=1", "shop.example")),
		get("canonical absolute no path", "https://www.shop.example", "www.shop.example"),
		get("canonical absolute query only", "https://www.shop.example?x=1", "www.shop.example"),
		get("redirect absolute no path query", "https://shop.example?x=1", "shop.example"),
		get("Host with userinfo", "/info.php", "evil.example@shop.example"),
		plain(get("port 80 Host with userinfo", "/x", "evil.example@shop.example")),
		openc(plain(get("open port 80 Host with userinfo", "/x", "shop.example@evil.example"))),
		get("acme token over TLS", "/.well-known/acme-challenge/"+hostDiffToken, "shop.example"),
		get("canonical long", "/"+strings.Repeat("d", 10000), "www.shop.example"),
		plain(get("port 80 long", "/"+strings.Repeat("e", 10000), "shop.example")),
		h2(get("h2 www upper case trailing dot", "/x?y=1", "WWW.SHOP.EXAMPLE.")),
		h2(get("h2 www with port", "/x", "www.shop.example:8443")),
		h2(get("h2 canonical double slash", "//evil.example/x", "www.shop.example")),
		h2(get("h2 redirect backslash", "/gone/%5Cevil.example", "shop.example")),
		h2(get("h2 redirect query only", "/old-page?", "shop.example")),
		h2(get("h2 IPv6", "/info.php", "[::1]")),
		h2(openc(get("h2 open IPv6", "/info.php", "[::1]:8443"))),
		h2(openc(get("h2 open trailing dot", "/info.php", "Other.Example."))),
		hostCase{name: "h2 Host without :authority", line: "GET /info.php HTTP/2", headers: []string{"Host: shop.example"}, h2: true, h2Authority: "-"},
		hostCase{name: "h2 Host www without :authority", line: "GET /info.php HTTP/2", headers: []string{"Host: www.shop.example"}, h2: true, h2Authority: "-"},
		hostCase{name: "h2 Host unknown without :authority", line: "GET /info.php HTTP/2", headers: []string{"Host: evil.example"}, h2: true, h2Authority: "-"},
		hostCase{name: "h2 neither :authority nor Host", line: "GET /info.php HTTP/2", h2: true, h2Authority: "-"},
		hostCase{name: "h2 :authority upper case, Host lower", line: "GET /info.php HTTP/2", headers: []string{"Host: shop.example"}, h2: true, h2Authority: "SHOP.EXAMPLE"},
		// Behind a trusted TLS proxy.
		prox(get("proxied https", "/info.php", "shop.example", "X-Forwarded-Proto: https", "X-Forwarded-For: 203.0.113.7")),
		prox(get("proxied http", "/info.php", "shop.example", "X-Forwarded-Proto: http")),
		prox(get("proxied no proto", "/info.php", "shop.example")),
		prox(get("proxied HTTPS upper case", "/info.php", "shop.example", "X-Forwarded-Proto: HTTPS")),
		prox(get("proxied proto list https last", "/info.php", "shop.example", "X-Forwarded-Proto: http, https")),
		prox(get("proxied proto list http last", "/info.php", "shop.example", "X-Forwarded-Proto: https, http")),
		prox(get("proxied proto two lines", "/info.php", "shop.example", "X-Forwarded-Proto: http", "X-Forwarded-Proto: https")),
		prox(get("proxied www https", "/x?y=1", "www.shop.example", "X-Forwarded-Proto: https")),
		prox(get("proxied www http", "/x?y=1", "www.shop.example", "X-Forwarded-Proto: http")),
		prox(get("proxied www no proto", "/x", "www.shop.example")),
		prox(get("proxied www proto list", "/x", "www.shop.example", "X-Forwarded-Proto: https, http")),
		prox(get("proxied www proto junk", "/x", "www.shop.example", "X-Forwarded-Proto: javascript")),
		prox(get("proxied unknown https", "/x", "evil.example", "X-Forwarded-Proto: https")),
		prox(get("proxied redirect https", "/blog/x?y=1", "shop.example", "X-Forwarded-Proto: https")),
		prox(get("proxied redirect relative", "/gone/%5Cevil.example", "shop.example", "X-Forwarded-Proto: https")),
		prox(get("proxied app's own HSTS", "/hsts.php", "shop.example", "X-Forwarded-Proto: https")),
		prox(get("proxied app's own HSTS over http", "/hsts.php", "shop.example", "X-Forwarded-Proto: http")),
		prox(get("proxied directory redirect", "/docs?x=1", "shop.example", "X-Forwarded-Proto: https")),
		prox(get("proxied forwarded host www", "/x", "shop.example", "X-Forwarded-Proto: https", "X-Forwarded-Host: www.shop.example")),
		prox(get("proxied forwarded host unknown", "/info.php", "shop.example", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example")),
		prox(post(get("proxied POST www", "/login", "www.shop.example", "X-Forwarded-Proto: https"))),
		hostCase{name: "proxied no host HTTP/1.0", line: "GET /info.php HTTP/1.0", headers: []string{"X-Forwarded-Proto: https"}, proxied: true},
		plain(get("acme double slash", "/.well-known/acme-challenge//"+hostDiffToken, "shop.example")),
		plain(get("acme double slash before", "/.well-known//acme-challenge/"+hostDiffToken, "shop.example")),
		plain(get("acme encoded slash", "/.well-known/acme-challenge%2F"+hostDiffToken, "shop.example")),
	)
	// The canonical redirect and the port-80 redirect with odd targets.
	targets := []string{"/", "/x?", "/x?a=1&b=%20c", "/caf%C3%A9?q=%C3%A9", "/caf\xc3\xa9", "//evil.example", "/%2F%2Fevil.example",
		"/\\evil.example", "/%5Cevil", "/%0D%0ASet-Cookie:%20a=1", "/x?%0D%0AX:%20y", "/a/../b", "/a\"<>`{|}^", "/x#frag",
		"/" + strings.Repeat("a", 6000), "/.well-known/acme-challenge/../../info.php"}
	for _, tg := range targets {
		cs = append(cs, get("canonical "+tg, tg, "www.shop.example"), plain(get("port 80 "+tg, tg, "shop.example")),
			openc(plain(get("open port 80 "+tg, tg, "shop.example"))))
	}
	// SESSIONGATE_REDIRECTS against locations.
	paths := []string{"/old-page", "/old-page?", "/old-page?a=1&b=%2F", "/old-page/", "/old-page/x", "/OLD-PAGE", "/x/../old-page",
		"//old-page", "/old%2Dpage", "/blog", "/blog/", "/blog/2024/x?y=1", "/blog?x=1", "/blog//evil.example",
		"/blog/%2F%2Fevil.example", "/blog/caf%C3%A9", "/blog/a%20b", "/blog/a+b?c=d+e", "/blog/%0D%0AX:%20y",
		"/blog/\\evil.example", "/blogger", "/docs-old", "/docs-old/", "/docs-old/a/b?c=1", "/docs-old//evil.example",
		"/docs-old/%2F%2Fevil.example", "/docs-old/%2Fevil.example", "/docs-old/\\evil.example", "/docs-old/%5Cevil.example",
		"/docs-old/%5C%5Cevil.example", "/docs-old/a%3Fb", "/docs-old/a%23b", "/docs-old/a%25b", "/docs-old/..%2F..%2Fx",
		"/promo", "/promo?x=1", "/shop", "/shop/", "/shop/x?y=1", "/api/v1", "/api/v1/", "/api/v1/items/1?x=2",
		"/gone", "/gone/", "/gone/x?y", "/gone//evil.example", "/gone/%2F%2Fevil.example", "/gone/%2Fevil.example",
		"/gone/\\evil.example", "/gone/%5Cevil.example", "/gone/%09/evil.example", "/gone/%20/evil.example",
		"/landing", "/landing?utm=x", "/temp?x", "/evil.example", "//evil.example", "/%2Fevil.example", "///evil.example",
		"/" + strings.Repeat("b", 6000), "/blog/" + strings.Repeat("c", 6000),
		"/docs-old/%FF", "/docs-old/a;b", "/docs-old/a,b", "/docs-old/a%2Cb", "/docs-old/%7Ex", "/docs-old/~x", "/docs-old/%E2%80%AE",
		"/docs-old/%00", "/docs-old/a%20b", "/docs-old/a+b", "/docs-old/a%2Bb", "/docs-old/%40evil.example", "/docs-old/@evil.example",
		"/docs-old/a:b", "/gone/http:%2F%2Fevil.example", "/gone/https:evil.example", "/gone/%2e%2e/evil.example", "/gone/.%2Fevil.example",
		"/old-page?a=%0D%0A", "/old-page?a=\"<>", "/old-page?%", "/old-page??", "/old-page?a=1#x", "/old-page#x", "/old-page?a=\\b",
		"/landing?a=%26b", "/landing?", "/blog/x?y=caf\xc3\xa9"}
	for _, p := range paths {
		cs = append(cs, get("redirect "+p, p, "shop.example"))
	}
	for _, p := range []string{"/old-page", "/blog/x", "/promo", "/shop/x", "/api/v1/x", "/temp", "/landing"} {
		cs = append(cs, post(get("POST "+p, p+"?q=1", "shop.example")), method("HEAD", get("HEAD "+p, p, "shop.example")),
			method("DELETE", get("DELETE "+p, p, "shop.example")))
	}
	cs = append(cs,
		post(get("POST canonical", "/login?next=/", "www.shop.example")),
		method("HEAD", get("HEAD canonical", "/x", "www.shop.example")),
		method("PUT", get("PUT canonical", "/x", "www.shop.example")),
		plain(post(get("POST port 80", "/login", "shop.example"))),
		plain(method("HEAD", get("HEAD port 80", "/x", "shop.example"))),
		plain(method("OPTIONS", get("OPTIONS port 80", "/x", "shop.example"))),
		// ACME challenges on port 80.
		plain(get("acme token", "/.well-known/acme-challenge/"+hostDiffToken, "shop.example")),
		plain(get("acme token www", "/.well-known/acme-challenge/"+hostDiffToken, "www.shop.example")),
		plain(get("acme token unknown host", "/.well-known/acme-challenge/"+hostDiffToken, "evil.example")),
		plain(get("acme missing", "/.well-known/acme-challenge/nosuch", "shop.example")),
		plain(get("acme dir", "/.well-known/acme-challenge/", "shop.example")),
		plain(get("acme dot", "/.well-known/acme-challenge/.hidden", "shop.example")),
		plain(get("acme query", "/.well-known/acme-challenge/"+hostDiffToken+"?x=1", "shop.example")),
		plain(get("acme encoded", "/.well-known/acme-challenge/%54k9_hostdiff-1", "shop.example")),
		plain(method("HEAD", get("acme HEAD", "/.well-known/acme-challenge/"+hostDiffToken, "shop.example"))),
		plain(post(get("acme POST", "/.well-known/acme-challenge/"+hostDiffToken, "shop.example"))),
		openc(plain(get("open acme token", "/.well-known/acme-challenge/"+hostDiffToken, "evil.example"))),
		// HSTS from the app.
		get("app's own HSTS", "/hsts.php", "shop.example"),
		get("static with HSTS", "/style.css", "shop.example"),
		get("directory redirect", "/docs", "shop.example"),
		get("directory redirect named like a host", "//evil.example", "shop.example"),
		get("directory redirect named like a host 2", "/%2Fevil.example", "shop.example"),
		get("directory redirect backslash", "/%5Cevil.example", "shop.example"),
		get("directory redirect backslash raw", "/\\evil.example", "shop.example"),
		get("directory redirect backslash query", "/%5Cevil.example?x=1", "shop.example"),
		get("directory redirect tab", "/%09x", "shop.example"),
		h2(get("h2 directory redirect backslash", "/%5Cevil.example", "shop.example")),
		get("front controller", "/no/such?x=1", "shop.example"),
		// HTTP/2: :authority from Host.
		h2(get("h2 site", "/info.php?q=1", "shop.example")),
		h2(get("h2 site with port", "/info.php", "shop.example:8443")),
		h2(get("h2 www", "/x?y=1", "www.shop.example")),
		h2(get("h2 unknown", "/info.php", "evil.example")),
		h2(get("h2 redirect", "/blog/x?y=1", "shop.example")),
		h2(get("h2 redirect open", "/gone/%2F%2Fevil.example", "shop.example")),
		h2(post(get("h2 POST redirect", "/old-page", "shop.example"))),
		hostCase{name: "h2 Host beside :authority", line: "GET /info.php HTTP/2", headers: []string{"Host: evil.example"}, h2: true, h2Authority: "shop.example"},
		hostCase{name: "h2 Host beside :authority www", line: "GET /info.php HTTP/2", headers: []string{"Host: shop.example"}, h2: true, h2Authority: "www.shop.example"},
		hostCase{name: "h2 :authority unknown, Host listed", line: "GET /info.php HTTP/2", headers: []string{"Host: shop.example"}, h2: true, h2Authority: "evil.example"},
	)
	return cs
}

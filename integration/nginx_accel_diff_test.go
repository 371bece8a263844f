package integration

// A differential test of X-Accel-Redirect, internal locations and error
// pages: one site configured for Debian 12's nginx (internal locations,
// one with alias, error_page) and for the gateway (SESSIONGATE_INTERNAL_PATHS,
// SESSIONGATE_ERROR_PAGES), both in front of one php-fpm, whose scripts
// answer with X-Accel-Redirect; the same raw requests sent to both and
// what a client sees of the answers compared.

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// accelDiffPHP answers with X-Accel-Redirect: t (absent: none), after the
// status code and the header lines h[] the app sets, and prints body.
const accelDiffPHP = `<?php
if (isset($_GET['code'])) { http_response_code((int)$_GET['code']); }
foreach ((array)($_GET['h'] ?? []) as $line) { header($line, false); }
if (isset($_GET['t'])) { header('X-Accel-Redirect: ' . $_GET['t']); }
echo $_GET['body'] ?? '';
`

// accelDiffMtime is every file's modification time.
var accelDiffMtime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// accelDiffSite is the site both servers front.
type accelDiffSite struct {
	root, private, errors string
	fpm                   *harness.PHPFPM
}

// newAccelDiffSite writes the document root (scripts, public files, the
// internal /downloads/ directory inside it), the /protected/ alias
// directory and the /errors/ one outside it, and starts php-fpm on it.
func newAccelDiffSite(t *testing.T) accelDiffSite {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "nginx")
	base := t.TempDir()
	s := accelDiffSite{root: filepath.Join(base, "root"), private: filepath.Join(base, "private"), errors: filepath.Join(base, "errors")}
	writeTree(t, s.root, map[string]string{
		"index.php":               `<?php http_response_code(404); echo "the app's own 404";`,
		"accel.php":               accelDiffPHP,
		"secret.php":              `<?php /* SOURCE */ echo "ran secret.php";`,
		"sleep.php":               `<?php sleep(3); echo "slept";`,
		".env":                    "DB_PASSWORD=root-dotfile",
		"public.txt":              "public text",
		"404.html":                "<!doctype html><title>Not found</title>\n",
		"downloads/file.txt":      "0123456789",
		"downloads/sp ace.txt":    "space",
		"downloads/café.txt":      "cafe",
		"downloads/x%2Fy.txt":     "encoded slash",
		"downloads/a?b.txt":       "question",
		"downloads/x.php":         `<?php /* SOURCE */ echo "ran downloads/x.php";`,
		"downloads/.hidden":       "DOTFILE",
		"downloads/sub/inner.txt": "inner",
		"downloads/index.html":    "downloads index",
	})
	writeTree(t, s.private, map[string]string{
		"invoice.pdf":    "%PDF-1.7 invoice",
		"x.php":          `<?php /* SOURCE */ echo "ran private x.php";`,
		".hidden":        "PRIVATE DOTFILE",
		"sub/inner.txt":  "private inner",
		"sp ace.pdf":     "private space",
		"index.html":     "private index",
		"50x.html":       "not the error page",
		"empty.txt":      "",
		"download.bin":   strings.Repeat("0123456789", 100),
		"caf\u00e9.pdf":  "private cafe",
		"deep/a/b/c.txt": "deep",
		"staff/pay.pdf":  "payroll",
	})
	writeTree(t, s.errors, map[string]string{
		"50x.html": "<!doctype html><title>Maintenance</title>\n",
	})
	// Links an operator made: to a script inside the root, and out of the
	// alias directory into the root.
	for link, to := range map[string]string{
		filepath.Join(s.root, "downloads/src.txt"): "../secret.php",
		filepath.Join(s.private, "link.txt"):       filepath.Join(s.root, "public.txt"),
	} {
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{s.root, s.private, s.errors} {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				os.Chtimes(p, accelDiffMtime, accelDiffMtime)
			}
			return err
		})
		harness.ShareWithPHP(t, dir)
	}
	var err error
	for _, p := range []*string{&s.root, &s.private, &s.errors} {
		if *p, err = filepath.EvalSymlinks(*p); err != nil {
			t.Fatal(err)
		}
	}
	s.fpm = harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: s.root, Children: 4})
	return s
}

// accelNginx is the server block: the PHP shop's (nginxPHPShop) with the
// internal locations (^~, so that neither the PHP location nor the dotfile
// rule takes their URLs first) and the error pages.
func (s accelDiffSite) accelNginx(listen, fpm, errorPages string) string {
	return nginxPHPShop(listen, s.root, fpm, errorPages+`
        client_max_body_size 1k;
        fastcgi_read_timeout 1s;
        location ^~ /downloads/ { internal; }
        location ^~ /protected/ { internal; alias `+s.private+`/; }
        location ^~ /errors/ { internal; alias `+s.errors+`/; }
        location ^~ /protected/staff/ { internal; alias `+s.private+`/staff/; deny all; }`, "")
}

// accelGateway starts the gateway configured as accelNginx.
func (s accelDiffSite) accelGateway(t *testing.T, fpm, errorPages string, env ...string) string {
	t.Helper()
	p := startBinary(t, buildGateway(t), append([]string{"SESSIONGATE_PHP_FPM=" + fpm, "SESSIONGATE_DOCUMENT_ROOT=" + s.root,
		"SESSIONGATE_SESSIONS=off", "SESSIONGATE_MAX_BODY=1k", "SESSIONGATE_PHP_TIMEOUT=1s", "SESSIONGATE_PHP_MAX_CONNS=2",
		"SESSIONGATE_INTERNAL_PATHS=/downloads/,/protected/=" + s.private + ",/errors/=" + s.errors,
		"SESSIONGATE_ERROR_PAGES=" + errorPages, "SESSIONGATE_RESTRICTED_PATHS=/protected/staff/ none"}, env...))
	return strings.TrimPrefix(p.URL, "http://")
}

// accelCase is one request, sent as written, and the differences left
// after the rules, each "field: nginx value | gateway value".
type accelCase struct {
	method, target string
	headers        []string
	body           string
	diffs          []string
	gw             map[string]string // fields the gateway's answer must have
}

// accel is the target of accel.php answering with X-Accel-Redirect: t
// and the app's header lines h.
func accel(t string, h ...string) string {
	q := url.Values{"t": {t}, "h[]": h}
	return "/accel.php?" + q.Encode()
}

// accelDo sends one request as written, on a connection of its own.
func accelDo(t *testing.T, addr string, c accelCase) staticAnswer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n", c.method, c.target)
	for _, h := range c.headers {
		b.WriteString(h + "\r\n")
	}
	if c.body != "" {
		fmt.Fprintf(&b, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n", len(c.body))
	}
	b.WriteString("\r\n" + c.body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: c.method})
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.target, err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.target, err)
	}
	return staticAnswer{res, body}
}

// accelView is what is compared of an answer: the status, the fields a
// browser or cache acts on, and the body; nginx's own error page, and
// the gateway's line of text, as such.
func accelView(a staticAnswer) map[string]string {
	v := map[string]string{"status": fmt.Sprint(a.res.StatusCode)}
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified",
		"Cache-Control", "Expires", "Set-Cookie", "Content-Disposition", "Location", "X-Robots-Tag", "X-Content-Type-Options", "Vary"} {
		if vs := a.res.Header.Values(k); len(vs) > 0 {
			v[k] = strings.Join(vs, "|")
		}
	}
	for k, vs := range a.res.Header {
		if strings.HasPrefix(k, "X-Accel") {
			v[k] = strings.Join(vs, "|")
		}
	}
	body := string(a.body)
	if strings.HasPrefix(a.res.Header.Get("Content-Type"), "multipart/byteranges") {
		sv := staticView(a)
		v["Content-Type"], body = sv["Content-Type"], sv["body"]
		delete(v, "Content-Length")
	}
	switch {
	case strings.Contains(body, "<hr><center>nginx"):
		body = "nginx's page"
		delete(v, "Content-Length")
	case a.res.Header.Get("Content-Type") == "text/plain; charset=utf-8" && a.res.StatusCode >= 400:
		body = "text"
		delete(v, "Content-Length")
	case len(body) > 100:
		body = fmt.Sprintf("%d bytes %x", len(body), sha256.Sum256(a.body))
	}
	v["body"] = body
	return v
}

// accelRules are the differences the gateway makes wherever they apply
// (README's X-Accel-Redirect, error_page and static rows).
var accelRules = []staticRule{
	staticRules[0], // X-Content-Type-Options: nosniff
	staticRules[1], // Vary: Accept-Encoding where the gateway may gzip
	staticRules[2], // Accept-Ranges on a 206
	staticRules[3], // no Last-Modified on a 304 that has an ETag
	{"Content-Length on PHP's own answer (buffered whole), nginx's chunked", func(n, g map[string]string) bool {
		if n["status"] != g["status"] || n["body"] != g["body"] || n["Content-Length"] != "" || g["Content-Length"] == "" {
			return false
		}
		delete(g, "Content-Length")
		return true
	}},
	{"Cache-Control: private on a file sent for an app that set none", func(n, g map[string]string) bool {
		if n["status"] != g["status"] || n["status"] >= "400" || n["Cache-Control"] != "" || g["Cache-Control"] != "private" {
			return false
		}
		delete(g, "Cache-Control")
		return true
	}},
	{"no ETag on an error page: nginx's names the page's file", func(n, g map[string]string) bool {
		if n["status"] != g["status"] || n["status"] < "400" || n["body"] != g["body"] || n["ETag"] == "" || g["ETag"] != "" {
			return false
		}
		delete(n, "ETag")
		return true
	}},
	{"an error page's own type, not the charset nginx keeps from PHP's Content-Type", func(n, g map[string]string) bool {
		if n["status"] != g["status"] || n["status"] < "400" || !strings.EqualFold(n["Content-Type"], "text/html; charset=UTF-8") || g["Content-Type"] != "text/html" {
			return false
		}
		delete(n, "Content-Type")
		delete(g, "Content-Type")
		return true
	}},
	{"an error's own answer: nginx's page, the gateway's line of text", func(n, g map[string]string) bool {
		if n["status"] != g["status"] || n["body"] != "nginx's page" || g["body"] != "text" {
			return false
		}
		for _, m := range []map[string]string{n, g} {
			delete(m, "body")
			delete(m, "Content-Type")
		}
		return true
	}},
}

func TestNginxDiffAccel(t *testing.T) {
	t.Parallel()
	s := newAccelDiffSite(t)
	pages := "404=/404.html,502 503 504=/errors/50x.html"
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return s.accelNginx(addrs[0], s.fpm.Addr, "error_page 404 /404.html;\n        error_page 502 503 504 /errors/50x.html;")
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
		}
	})
	gw := s.accelGateway(t, s.fpm.Addr, pages)
	get := func(target string, headers ...string) accelCase {
		return accelCase{method: "GET", target: target, headers: headers}
	}
	var cases []accelCase
	for _, target := range []string{
		"/downloads/file.txt", "/protected/invoice.pdf", "/public.txt", "/404.html",
		"/downloads/sp%20ace.txt", "/downloads/sp ace.txt", "/downloads/caf%C3%A9.txt", "/downloads/café.txt",
		"/protected/sp%20ace.pdf", "/protected/caf%C3%A9.pdf", "/protected/deep/a/b/c.txt", "/protected/deep%2Fa%2Fb/c.txt",
		"/downloads/x%2Fy.txt", "/downloads/x%252Fy.txt", "/downloads/a%3Fb.txt", "/downloads/a?b.txt",
		"/downloads/file.txt%00", "/downloads/file.txt%00.html", "/downloads/%2e%2e/secret.php", "/downloads/%2e%2e/public.txt",
		"/downloads/../public.txt", "/protected/../secret.php", "/protected/..%2fsecret.php", "/protected/%2e%2e%2f.env",
		"/downloads/file.txt?x=1", "/protected/invoice.pdf?download=1#x",
		"/downloads/", "/downloads/sub", "/downloads/sub/", "/protected/", "/protected", "/protected/sub",
		"/downloads/missing.txt", "/protected/missing.pdf", "/missing.txt",
		"/secret.php", "/downloads/x.php", "/protected/x.php", "/downloads/x.PHP", "/downloads/x%2ephp",
		"/.env", "/downloads/.hidden", "/protected/.hidden", "/protected/%2ehidden",
		"http://example.com/public.txt", "//example.com/public.txt", "public.txt", "", "@named",
		"/errors/50x.html", "/protected//invoice.pdf", "/downloads/./file.txt", "/protected/./invoice.pdf",
		"/protected/empty.txt", "/downloads/src.txt", "/protected/link.txt",
	} {
		cases = append(cases, get(accel(target)))
	}
	cases = append(cases,
		get(accel("/protected/invoice.pdf", "Content-Type: application/pdf", `Content-Disposition: attachment; filename="invoice.pdf"`,
			"Cache-Control: max-age=60", "Set-Cookie: dl=1; Path=/", `ETag: "app"`, "Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT",
			"Expires: Thu, 01 Jan 2099 00:00:00 GMT", "X-Robots-Tag: noindex")),
		get(accel("/protected/invoice.pdf", "Content-Length: 5")),
		get(accel("/protected/invoice.pdf", "Content-Type:")),
		get(accel("/protected/invoice.pdf", "Cache-Control: no-store", "Set-Cookie: dl=1")),
		get(accel("/protected/missing.pdf", "Content-Type: application/pdf", `Content-Disposition: attachment; filename="x.pdf"`,
			"Cache-Control: max-age=60", "Set-Cookie: dl=1; Path=/")),
		get(accel("/protected/invoice.pdf")+"&code=404"),
		get(accel("/protected/invoice.pdf")+"&code=206"),
		get(accel("/protected/invoice.pdf", "Content-Range: bytes 0-1/16")+"&code=206"),
		get(accel("/protected/invoice.pdf")+"&code=500"),
		get(accel("/protected/invoice.pdf")+"&code=302"),
		get(accel("/protected/invoice.pdf")+"&body=the+app%27s+body"),
		get(accel("/protected/download.bin"), "Range: bytes=2-4"),
		get(accel("/protected/download.bin"), "Range: bytes=0-1,5-6"),
		get(accel("/protected/download.bin"), "Range: bytes=5000-"),
		get(accel("/protected/download.bin", "Content-Length: 0")),
	)
	tag := accelDo(t, gw, get(accel("/protected/download.bin"))).res.Header.Get("ETag")
	lm := accelDiffMtime.Format(http.TimeFormat)
	cases = append(cases,
		get(accel("/protected/download.bin"), "If-None-Match: "+tag),
		get(accel("/protected/download.bin"), `If-None-Match: "app"`),
		get(accel("/protected/download.bin"), "If-Modified-Since: "+lm),
		get(accel("/protected/download.bin"), "Range: bytes=2-4", "If-Range: "+tag),
		get(accel("/protected/download.bin", "Set-Cookie: dl=1"), "If-None-Match: "+tag),
		accelCase{method: "HEAD", target: accel("/protected/download.bin")},
		accelCase{method: "HEAD", target: accel("/protected/missing.pdf")},
		accelCase{method: "POST", target: accel("/protected/download.bin"), body: "a=1"},
		accelCase{method: "POST", target: accel("/protected/download.bin"), body: "a=1", headers: []string{"Range: bytes=2-4"}},
		accelCase{method: "PUT", target: accel("/protected/invoice.pdf"), body: "a=1"},
		accelCase{method: "DELETE", target: accel("/protected/invoice.pdf")},
		accelCase{method: "OPTIONS", target: accel("/protected/invoice.pdf")},
	)
	// Direct requests into the internal directories, every spelling.
	for _, target := range []string{
		"/downloads/file.txt", "//downloads/file.txt", "/./downloads/file.txt", "/x/../downloads/file.txt",
		"/%64ownloads/file.txt", "/downloads%2Ffile.txt", "/downloads%2ffile.txt", "/downloads/file.txt?", "/downloads/file.txt?a=1",
		"/downloads", "/downloads/", "/downloads/sub/", "/downloads/x.php", "/downloads/.hidden", "/downloads/file.txt/",
		"/downloads/file.txt%00", "/downloads/./file.txt", "/downloads//file.txt", "/Downloads/file.txt", "/downloads;/file.txt",
		"/downloads/file%2etxt", "/index.php/../downloads/file.txt", "/protected/invoice.pdf", "/protected/", "/protected",
		"/protected/x.php", "/protected/sub/inner.txt", "/%70rotected/invoice.pdf", "/protected%2Finvoice.pdf",
		"/errors/50x.html", "/errors/", "/errors", "/secret.php/../downloads/file.txt", "/downloads/..%2Fpublic.txt",
		"http://shop.example/downloads/file.txt", "/downloads/file.txt#x",
	} {
		cases = append(cases, get(target))
	}
	cases = append(cases,
		accelCase{method: "HEAD", target: "/downloads/file.txt"},
		accelCase{method: "POST", target: "/protected/invoice.pdf", body: "a=1"},
	)
	// Error pages: the gateway's own 404s, a 404 page's own conditions,
	// a body too large, PHP's own 404, a timeout.
	cases = append(cases,
		get("/missing.php"),
		accelCase{method: "HEAD", target: "/missing.php"},
		get("/missing.php", "Range: bytes=0-5"),
		get("/missing.php", "If-None-Match: "+accelDo(t, ngAddr(ng), get("/404.html")).res.Header.Get("ETag")),
		get("/missing.php", "If-Modified-Since: "+lm),
		get("/404.html"),
		get("/nope"),
		get("/.env"),
		accelCase{method: "POST", target: "/accel.php", body: strings.Repeat("a", 2000)},
		accelCase{method: "TRACE", target: "/public.txt"},
		get("/sleep.php"),
	)
	cases = append(cases,
		// The header's name in any case, and the first of two.
		get(accel("", "x-accel-redirect: /protected/invoice.pdf")),
		get(accel("/protected/invoice.pdf", "X-Accel-Redirect: /downloads/file.txt")),
		// What the app tells nginx never reaches the client.
		get(accel("/protected/invoice.pdf", "X-Accel-Buffering: no", "X-Accel-Expires: 60", "X-Accel-Limit-Rate: 1000", "X-Accel-Charset: utf-8")),
		get("/accel.php?h[]=X-Accel-Buffering:+no&h[]=X-Accel-Expires:+60&h[]=X-Accel-Limit-Rate:+1000&h[]=X-Accel-Charset:+utf-8&body=b"),
		get(accel("/protected/invoice.pdf")+"&code=304"),
		// The file's 200: the app's other headers stay, Location too.
		accelCase{method: "GET", target: accel("/protected/invoice.pdf", "Location: /elsewhere") + "&code=302",
			diffs: []string{"Location:  | /elsewhere"}},
		get(accel("/protected/invoice.pdf/")),
		get(accel("/downloads/file.txt/.")),
		get(accel("/protected/deep/a/b/c.txt/")),
		get(accel("/protected/invoice.pdf%2F")),
		get(accel("/protected/invoice.pdf%3Fx=1")),
		get(accel("/")),
		get(accel("?x")),
		get(accel("/protected/invoice.pdf", "Content-Encoding: gzip")),
		get(accel("/protected/invoice.pdf", "Vary: Cookie")),
		get(accel("/protected/invoice.pdf", "Content-Type: text/html")),
		get(accel("/protected/download.bin"), "Range: bytes=2-4", "If-Range: "+accelDiffMtime.Format(http.TimeFormat)),
		get(accel("/protected/empty.txt"), "Range: bytes=-5"),
		get(accel("/protected/invoice.pdf")+"&code=204"),
	)
	// A precondition the file fails: nginx's page, ServeContent's empty
	// 412 with the file's validators; neither keeps what the app said
	// about the download (a shared cache could keep the refusal). A range
	// the file does not have: nginx keeps the app's freshness on its 416.
	public := "Cache-Control: public, max-age=600"
	cases = append(cases,
		accelCase{method: "GET", target: accel("/protected/download.bin", public, `Content-Disposition: attachment; filename="d.bin"`),
			headers: []string{`If-Match: "x"`},
			diffs:   []string{"Content-Length:  | 0", "Content-Type: text/html | ", "ETag:  | " + tag, "Last-Modified:  | " + lm, "body: nginx's page | "}},
		accelCase{method: "GET", target: accel("/protected/download.bin", "Expires: Thu, 01 Jan 2099 00:00:00 GMT"),
			headers: []string{"If-Unmodified-Since: " + time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)},
			diffs: []string{"Cache-Control:  | private", "Content-Length:  | 0", "Content-Type: text/html | ", "ETag:  | " + tag,
				"Last-Modified:  | " + lm, "body: nginx's page | "}},
		// A file in a directory no client may have (nginx's deny, the
		// gateway's SESSIONGATE_RESTRICTED_PATHS): refused, the refusal
		// without the download's freshness on the gateway.
		accelCase{method: "GET", target: accel("/protected/staff/pay.pdf", public, `Content-Disposition: attachment; filename="d.bin"`,
			"Expires: Thu, 01 Jan 2099 00:00:00 GMT"),
			diffs: []string{public + " | ", `Content-Disposition: attachment; filename="d.bin" | `, "Expires: Thu, 01 Jan 2099 00:00:00 GMT | "}},
		// Asked for directly: nginx's internal location answers before
		// its access rules, the gateway's SESSIONGATE_RESTRICTED_PATHS
		// before its internal paths.
		accelCase{method: "GET", target: "/protected/staff/pay.pdf", diffs: []string{"status: 404 | 403"}},
		accelCase{method: "GET", target: accel("/protected/download.bin", public, `Content-Disposition: attachment; filename="d.bin"`),
			headers: []string{"Range: bytes=900-800"}, diffs: []string{public + " | ", `Content-Disposition: attachment; filename="d.bin" | `}},
	)
	// Each difference the gateway means, README's X-Accel-Redirect and
	// internal paths rows: only a file is sent, never a directory, a
	// script (nginx runs /secret.php again, and sends the source of a .php
	// in an internal directory), a dotfile (nginx sends those in an
	// internal directory) or a URL nginx would hand the front controller.
	expect := func(target string, diffs ...string) {
		t.Helper()
		for i := range cases {
			if cases[i].target == target && cases[i].method == "GET" && cases[i].headers == nil {
				cases[i].diffs = diffs
				return
			}
		}
		t.Fatalf("no case %s", target)
	}
	page404 := "body: the app's own 404 | <!doctype html><title>Not found</title>\n"
	for _, target := range []string{"/downloads/", "/protected/", "/secret.php", "/downloads/x.php", "/protected/x.php",
		"/downloads/x%2ephp", "/downloads/.hidden", "/protected/.hidden", "/protected/%2ehidden"} {
		expect(accel(target), "status: 200 | 404")
	}
	for _, target := range []string{"/downloads/sub", "/protected/sub"} {
		expect(accel(target), "status: 301 | 404")
	}
	expect(accel("/downloads/sub/"), "status: 403 | 404")
	expect(accel("/.env"), "status: 403 | 404")
	expect(accel("/"), "Content-Length:  | 40", page404)
	// A link out of the alias directory: nginx follows any,
	// SESSIONGATE_FOLLOW_SYMLINKS=root only those inside the directory.
	// (A link inside the root to a script sends its source on both.)
	expect(accel("/protected/link.txt"), "status: 200 | 404")
	expect(accel("@named"), "status: 500 | 404")
	for _, target := range []string{"/protected", "/missing.txt", "//example.com/public.txt"} {
		expect(accel(target), "Content-Length:  | 40", page404)
	}
	// nginx passes on only the fields it knows to describe the download;
	// the gateway all of the app's (README, X-Accel-Redirect row).
	cases[slices.IndexFunc(cases, func(c accelCase) bool { return strings.Contains(c.target, "X-Robots-Tag") })].diffs =
		[]string{"X-Robots-Tag:  | noindex"}
	cases[slices.IndexFunc(cases, func(c accelCase) bool { return strings.Contains(c.target, "Vary") })].diffs =
		[]string{"Vary:  | Cookie"}
	// nginx's error page after a failed X-Accel-Redirect keeps what the
	// app said about the download; the gateway's does not.
	cases[slices.IndexFunc(cases, func(c accelCase) bool { return strings.Contains(c.target, "x.pdf") })].diffs =
		[]string{"Cache-Control: max-age=60 | ", `Content-Disposition: attachment; filename="x.pdf" | `}
	// Direct requests: nginx redirects a directory without its slash
	// before its internal location refuses it, answers a NUL with 400,
	// and hands an alias location's URL without its slash to the front
	// controller (no location matches it); the dotfile rule is nginx's
	// deny (403).
	expect("/downloads", "status: 301 | 404")
	expect("/downloads/file.txt%00", "status: 400 | 404")
	expect("/protected", "Content-Length:  | 40", page404)
	expect("/errors", "Content-Length:  | 40", page404)
	expect("/.env", "status: 403 | 404")
	compareAccel(t, ngAddr(ng), gw, cases, accelRules)
}

// ngAddr is the address of ng's only listener.
func ngAddr(ng *harness.Nginx) string { return ng.Addrs[0] }

// compareAccel is compareStatic for accelCase.
func compareAccel(t *testing.T, nginx, gw string, cases []accelCase, rules []staticRule) {
	t.Helper()
	compareAccelKeys(t, nginx, gw, cases, rules)
}

// compareAccelKeys is compareAccel with more header fields compared.
func compareAccelKeys(t *testing.T, nginx, gw string, cases []accelCase, rules []staticRule, keys ...string) {
	t.Helper()
	_, nport, _ := net.SplitHostPort(nginx)
	seen := map[string]int{}
	view := func(a staticAnswer) map[string]string {
		v := accelView(a)
		for _, k := range keys {
			if vs := a.res.Header.Values(k); len(vs) > 0 {
				v[k] = strings.Join(vs, "|")
			}
		}
		return v
	}
	for _, c := range cases {
		n, g := view(accelDo(t, nginx, c)), view(accelDo(t, gw, c))
		what := c.method + " " + c.target
		if u, err := url.Parse(c.target); err == nil && strings.HasPrefix(c.target, "/accel.php?") {
			what = fmt.Sprintf("%s accel %q %q code=%s", c.method, u.Query().Get("t"), u.Query()["h[]"], u.Query().Get("code"))
		}
		for k, v := range c.gw {
			if g[k] != v {
				t.Errorf("%s %q: the gateway's %s is %q, want %q", what, c.headers, k, g[k], v)
			}
		}
		countRules(rules, n, g, seen)
		got := viewDiffs(n, g, nport)
		if strings.Join(got, "\n") != strings.Join(c.diffs, "\n") {
			t.Errorf("%s %q: nginx | gateway:\n    %s\nwant:\n    %s\n  nginx: %v\n  gateway: %v", what, c.headers,
				strings.Join(got, "\n    "), strings.Join(c.diffs, "\n    "), n, g)
		}
	}
	rulesAllSeen(t, rules, seen)
}

// TestNginxDiffAccelErrorPages: error pages while php-fpm is down, one of
// them missing, both in an internal directory: nginx with error_page
// 502 503 504 /errors/50x.html and error_page 404 /errors/404.html (a
// file that does not exist), the gateway with the same
// SESSIONGATE_ERROR_PAGES.
func TestNginxDiffAccelErrorPages(t *testing.T) {
	t.Parallel()
	s := newAccelDiffSite(t)
	down := harness.DeadAddr(t)
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return s.accelNginx(addrs[0], down, "error_page 404 /errors/404.html;\n        error_page 405 413 502 503 504 /errors/50x.html;")
	})
	gw := s.accelGateway(t, down, "404=/errors/404.html,405 413 502 503 504=/errors/50x.html")
	get := func(target string, headers ...string) accelCase {
		return accelCase{method: "GET", target: target, headers: headers}
	}
	lm := accelDiffMtime.Format(http.TimeFormat)
	cases := []accelCase{
		get(accel("/protected/invoice.pdf")),
		get("/"),
		get("/accel.php", "Range: bytes=0-5"),
		get("/accel.php", "If-Modified-Since: "+lm),
		accelCase{method: "HEAD", target: "/accel.php"},
		accelCase{method: "POST", target: "/accel.php", body: "a=1"},
		get("/public.txt"),
		get("/downloads/file.txt"),
		get("/errors/50x.html"),
		get("/errors/404.html"),
		accelCase{method: "POST", target: "/accel.php", body: strings.Repeat("a", 2000)},
		accelCase{method: "POST", target: "/public.txt", body: "a=1"},
		accelCase{method: "TRACE", target: "/public.txt"},
		accelCase{method: "HEAD", target: "/downloads/file.txt"},
	}
	cases[len(cases)-1].diffs = []string{"Content-Length: 153 | ", "Content-Type: text/html | text/plain; charset=utf-8", "body:  | text"}
	var rules []staticRule
	for _, r := range accelRules {
		if strings.HasPrefix(r.name, "an error's own answer") || strings.HasPrefix(r.name, "no ETag on an error page") ||
			strings.HasPrefix(r.name, "Vary") || strings.HasPrefix(r.name, "X-Content-Type-Options") {
			rules = append(rules, r)
		}
	}
	compareAccel(t, ngAddr(ng), gw, cases, rules)
}

// accelSessionPHP counts its runs in the session, regenerates the ID when
// asked, and answers with X-Accel-Redirect: t without closing the session
// itself: PHP writes it at shutdown, after the headers.
const accelSessionPHP = `<?php
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
if (isset($_GET['regen'])) { session_regenerate_id(true); }
header('Content-Type: application/pdf');
header('Content-Disposition: attachment; filename="x.pdf"');
header('X-Accel-Redirect: ' . $_GET['t']);
echo 'dropped';
`

// TestAccelSessionSaved: whatever the X-Accel-Redirect leads to (the file,
// a HEAD or POST of it, a missing file, a script, a dotfile, a directory,
// a path the client is kept out of, an error page), the session change
// PHP made is saved, its lock released for the user's next request, and
// a regenerated ID's cookie reaches the client.
func TestAccelSessionSaved(t *testing.T) {
	t.Parallel()
	private := t.TempDir()
	if err := os.WriteFile(filepath.Join(private, "invoice.pdf"), []byte("%PDF invoice"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(private, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".hidden", "x.php", "sub/secret.pdf"} {
		if err := os.WriteFile(filepath.Join(private, name), []byte("SECRET"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{Children: 2}, env: []string{
		"SESSIONGATE_INTERNAL_PATHS=/protected/=" + private,
		"SESSIONGATE_RESTRICTED_PATHS=/protected/sub/ none",
		"SESSIONGATE_ERROR_PAGES=404=/404.html",
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=2s",
	}})
	writeTree(t, s.fpm.DocRoot, map[string]string{"accel_session.php": accelSessionPHP, "404.html": "<h1>no such page</h1>"})
	gw := s.gws[0]
	ck := s.newSession(t)
	n := 0
	for _, c := range []struct {
		method, target string
		status         int
		body           string
	}{
		{"GET", "/protected/invoice.pdf", 200, "%PDF invoice"},
		{"HEAD", "/protected/invoice.pdf", 200, ""},
		{"POST", "/protected/invoice.pdf", 200, "%PDF invoice"},
		{"GET", "/protected/missing.pdf", 404, "<h1>no such page</h1>"},
		{"GET", "/protected/x.php", 404, "<h1>no such page</h1>"},
		{"GET", "/protected/.hidden", 404, "<h1>no such page</h1>"},
		{"GET", "/protected/sub/", 403, "Forbidden\n"},
		{"GET", "/protected/sub/secret.pdf", 403, "Forbidden\n"},
		{"GET", "/protected/..%2fx.php", 404, "<h1>no such page</h1>"},
		{"GET", "/protected/", 404, "<h1>no such page</h1>"},
		{"GET", "@named", 404, "<h1>no such page</h1>"},
	} {
		for _, regen := range []bool{false, true} {
			target := "/accel_session.php?t=" + url.QueryEscape(c.target)
			if regen {
				target += "&regen=1"
			}
			req := gw.request(c.method, target, ck)
			res, err := sessionClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", c.method, target, err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			n++
			if res.StatusCode != c.status || string(b) != c.body {
				t.Errorf("%s %s: %d %q, want %d %q", c.method, target, res.StatusCode, b, c.status, c.body)
			}
			var set string
			for _, k := range res.Cookies() {
				if k.Name == "sessionid" {
					set = k.Value
				}
			}
			if regen {
				if set == "" || set == ck {
					t.Errorf("%s %s: regenerated, cookie %q", c.method, target, set)
				} else {
					ck = set
				}
			}
			// The next request of the same session is not kept
			// waiting for a lock (2s, then 503), and sees the count.
			d := gw.dump(t, ck)
			if want := fmt.Sprintf(`"n":%d`, n); !strings.Contains(string(d.Data), want) {
				t.Errorf("%s %s: session after: %s, want %s", c.method, target, d.Data, want)
			}
		}
	}
}

// TestNginxDiffAccelHeaders: fastcgi_hide_header and add_header ... always
// against SESSIONGATE_HIDE_HEADERS and SESSIONGATE_RESPONSE_HEADERS, on
// the files X-Accel-Redirect sends and on the error pages.
func TestNginxDiffAccelHeaders(t *testing.T) {
	t.Parallel()
	s := newAccelDiffSite(t)
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return s.accelNginx(addrs[0], s.fpm.Addr, `error_page 404 /404.html;
        error_page 502 503 504 /errors/50x.html;
        fastcgi_hide_header X-Powered-By;
        fastcgi_hide_header X-Secret;
        add_header X-Frame-Options SAMEORIGIN always;`)
	})
	gw := s.accelGateway(t, s.fpm.Addr, "404=/404.html,502 503 504=/errors/50x.html",
		"SESSIONGATE_HIDE_HEADERS=X-Powered-By,X-Secret", "SESSIONGATE_RESPONSE_HEADERS=X-Frame-Options: SAMEORIGIN")
	get := func(target string, headers ...string) accelCase {
		return accelCase{method: "GET", target: target, headers: headers}
	}
	hdrs := []string{"X-Powered-By: PHP/8.2", "X-Secret: s3cret"}
	cases := []accelCase{
		get(accel("/protected/invoice.pdf", hdrs...)),
		get(accel("/downloads/file.txt", hdrs...), "Range: bytes=0-1"),
		get(accel("/protected/missing.pdf", hdrs...)),
		get(accel("/secret.php", hdrs...)),
		get("/accel.php?h[]=X-Powered-By:+PHP/8.2&h[]=X-Secret:+s3cret&body=b"),
		get("/downloads/file.txt"),
		get("/missing.php"),
		get("/public.txt"),
		get("/sleep.php"),
	}
	cases[3].diffs = []string{"status: 200 | 404"}
	var rules []staticRule
	for _, r := range accelRules {
		if !strings.HasPrefix(r.name, "an error's own answer") && !strings.HasPrefix(r.name, "no Last-Modified on a 304") {
			rules = append(rules, r)
		}
	}
	compareAccelKeys(t, ngAddr(ng), gw, cases, rules, "X-Frame-Options", "X-Powered-By", "X-Secret")
}

// accelWSGI is accel.php as a WSGI app under /dj/: status code, header
// lines h[], X-Accel-Redirect t, body.
const accelWSGI = `from urllib.parse import parse_qs


def app(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    headers = []
    for line in q.get("h[]", []):
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    if "t" in q:
        headers.append(("X-Accel-Redirect", q["t"][0]))
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "text/html; charset=utf-8"))
    start_response(q.get("code", ["200"])[0] + " X", headers)
    return [q.get("body", [""])[0].encode()]
`

// TestNginxDiffAccelDjango: X-Accel-Redirect from an app behind
// proxy_pass (gunicorn), as django-sendfile2's nginx backend sends it,
// against the gateway's SESSIONGATE_DJANGO_PATHS.
func TestNginxDiffAccelDjango(t *testing.T) {
	t.Parallel()
	harness.Require(t, "gunicorn")
	s := newAccelDiffSite(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"accelapp.py": accelWSGI})
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: dir, App: "accelapp:app", Workers: 1})
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return fmt.Sprintf(`
    server {
        listen %s;
        server_name shop.example;
        root %s;
        error_page 404 /404.html;
        error_page 502 503 504 /errors/50x.html;
        location /dj/ {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }
        location / { try_files $uri =404; }
        location ^~ /downloads/ { internal; }
        location ^~ /protected/ { internal; alias %s/; }
        location ^~ /errors/ { internal; alias %s/; }
    }
`, addrs[0], s.root, g.Addr, s.private, s.errors)
	})
	gw := s.accelGateway(t, s.fpm.Addr, "404=/404.html,502 503 504=/errors/50x.html",
		"SESSIONGATE_DJANGO_URL=http://"+g.Addr, "SESSIONGATE_DJANGO_PATHS=/dj/")
	dj := func(target string) string { return "/dj/" + strings.TrimPrefix(target, "/accel.php") }
	get := func(target string, headers ...string) accelCase {
		return accelCase{method: "GET", target: dj(target), headers: headers}
	}
	cases := []accelCase{
		get(accel("/downloads/file.txt")),
		get(accel("/protected/invoice.pdf", "Content-Type: application/pdf", `Content-Disposition: inline; filename="invoice.pdf"`,
			"Content-Length: 16", "X-Accel-Buffering: no", "Set-Cookie: dl=1; Path=/", "Cache-Control: no-cache")),
		get(accel("/protected/caf%C3%A9.pdf")),
		get(accel("/protected/sp%20ace.pdf")),
		get(accel("/protected/download.bin"), "Range: bytes=2-4"),
		get(accel("/protected/missing.pdf", "Content-Type: application/pdf")),
		get(accel("/protected/..%2fx.php")),
		get(accel("/protected/invoice.pdf", "Content-Length: 100000")),
		get(accel("/protected/invoice.pdf") + "&body=" + strings.Repeat("x", 1000)),
		{method: "HEAD", target: dj(accel("/protected/invoice.pdf"))},
		{method: "POST", target: dj(accel("/protected/invoice.pdf")), body: "a=1"},
		get("/dj/?h[]=X-Accel-Buffering:+no&h[]=X-Accel-Expires:+60&body=b"),
	}
	// nginx sends the source of a .php file in an internal directory.
	cases = append(cases, accelCase{method: "GET", target: dj(accel("/protected/x.php")), diffs: []string{"status: 200 | 404"}})
	var rules []staticRule
	for _, r := range accelRules {
		if !strings.HasPrefix(r.name, "an error's own answer") && !strings.HasPrefix(r.name, "no Last-Modified on a 304") &&
			!strings.HasPrefix(r.name, "Content-Length on PHP's") {
			rules = append(rules, r)
		}
	}
	compareAccel(t, ngAddr(ng), gw, cases, rules)
}

// TestNginxDiffAccelPathHeaders: add_header in an internal location
// against a SESSIONGATE_RESPONSE_HEADERS line for its path: on the files
// X-Accel-Redirect sends from it and on the error pages kept in it.
func TestNginxDiffAccelPathHeaders(t *testing.T) {
	t.Parallel()
	s := newAccelDiffSite(t)
	down := harness.DeadAddr(t)
	internal := func(fpm string) func(addrs []string) string {
		return func(addrs []string) string {
			return nginxPHPShop(addrs[0], s.root, fpm, `error_page 404 /404.html;
        error_page 502 503 504 /errors/50x.html;
        add_header X-Frame-Options SAMEORIGIN always;
        location ^~ /protected/ { internal; alias `+s.private+`/; add_header X-Frame-Options SAMEORIGIN always; add_header X-Robots-Tag noindex always; }
        location ^~ /errors/ { internal; alias `+s.errors+`/; add_header X-Frame-Options SAMEORIGIN always; add_header X-Robots-Tag noindex always; }`, "")
		}
	}
	env := []string{"SESSIONGATE_RESPONSE_HEADERS=X-Frame-Options: SAMEORIGIN\n/protected/ X-Robots-Tag: noindex\n/errors/ X-Robots-Tag: noindex"}
	up, dn := harness.StartNginx(t, 1, internal(s.fpm.Addr)), harness.StartNginx(t, 1, internal(down))
	gwUp := s.accelGateway(t, s.fpm.Addr, "404=/404.html,502 503 504=/errors/50x.html", env...)
	gwDown := s.accelGateway(t, down, "404=/404.html,502 503 504=/errors/50x.html", env...)
	get := func(target string) accelCase { return accelCase{method: "GET", target: target} }
	pick := func(names ...string) []staticRule {
		var rules []staticRule
		for _, r := range accelRules {
			for _, n := range names {
				if strings.HasPrefix(r.name, n) {
					rules = append(rules, r)
				}
			}
		}
		return rules
	}
	// A line covers the request's URL and the file an X-Accel-Redirect
	// names, the error page sent instead included; nginx's add_header is
	// the location's that serves the page.
	compareAccelKeys(t, ngAddr(up), gwUp, []accelCase{
		get(accel("/protected/invoice.pdf")),
		{method: "GET", target: accel("/protected/missing.pdf"), diffs: []string{"X-Robots-Tag:  | noindex"}},
		get("/missing.php"),
	}, pick("X-Content", "Vary", "Cache-Control: private", "no ETag", "an error page's own type"), "X-Frame-Options", "X-Robots-Tag")
	compareAccelKeys(t, ngAddr(dn), gwDown, []accelCase{
		{method: "GET", target: "/accel.php", diffs: []string{"X-Robots-Tag: noindex | "}},
		{method: "HEAD", target: "/accel.php", diffs: []string{"X-Robots-Tag: noindex | "}},
	}, pick("X-Content", "Vary", "no ETag"), "X-Frame-Options", "X-Robots-Tag")
}

// TestAccelDjangoSessionSaved: Django's session change (django-sendfile2's
// download count) is saved whatever its X-Accel-Redirect leads to, the
// file, a missing one, a path the client is kept out of, and the next
// request of the session is not kept waiting.
func TestAccelDjangoSessionSaved(t *testing.T) {
	t.Parallel()
	private := t.TempDir()
	for name, body := range map[string]string{"a.pdf": "%PDF a", "pay.pdf": "payroll", "x.php": "<?php // SOURCE"} {
		writeTree(t, private, map[string]string{name: body})
	}
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_INTERNAL_PATHS=/protected/="+private, "SESSIONGATE_RESTRICTED_PATHS=/protected/pay.pdf none",
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=2s")
	gw := s.gws[0]
	ck := s.newSession(t)
	for i, c := range []struct {
		name, body string
		status     int
	}{
		{"a.pdf", "%PDF a", 200},
		{"missing.pdf", "", 404},
		{"pay.pdf", "", 403},
		{"x.php", "", 404},
	} {
		res, body, _ := gw.get(t, "/accounts/api/protected/"+c.name, ck)
		if res.StatusCode != c.status || (c.body != "" && body != c.body) || strings.Contains(body, "payroll") || strings.Contains(body, "SOURCE") {
			t.Errorf("%s: %d %q, want %d", c.name, res.StatusCode, body, c.status)
		}
		if d := gw.dump(t, ck); !strings.Contains(string(d.Data), fmt.Sprintf(`"downloads":%d`, i+1)) {
			t.Errorf("%s: session after: %s, want downloads %d", c.name, d.Data, i+1)
		}
	}
}

// accelLatePHP hands a download over with its headers flushed first (a
// download script's flush() or ob_end_flush()), then holds the session
// for ?ms=, and changes it after: PHP writes it at shutdown, after the
// headers left PHP.
const accelLatePHP = `<?php
session_start();
header('Content-Type: application/pdf');
header('X-Accel-Redirect: /protected/a.pdf');
echo str_repeat(' ', (int)($_GET['pad'] ?? 1));
flush();
touch($_GET['started']);
usleep((int)$_GET['ms'] * 1000);
$_SESSION['downloaded'] = ($_SESSION['downloaded'] ?? 0) + 1;
`

// TestAccelSessionLateWriteLost: the session change PHP makes after its
// X-Accel-Redirect headers left it cannot be saved (its lock was lost, as
// a Redis failover can lose it, and another request took it): the file
// has not gone out yet, so the client gets the 503 a page whose change
// was lost before its headers gets, not the download as if it had been
// counted.
func TestAccelSessionLateWriteLost(t *testing.T) {
	t.Parallel()
	private := t.TempDir()
	writeTree(t, private, map[string]string{"a.pdf": "%PDF a"})
	s := startSessionStack(t, stackOpts{env: []string{
		"SESSIONGATE_SESSION_LOCK_LEASE=1s",
		"SESSIONGATE_INTERNAL_PATHS=/protected/=" + private,
	}})
	writeTree(t, s.fpm.DocRoot, map[string]string{"accel_late.php": accelLatePHP})
	ck := s.newSession(t)
	// Without a lost lock the change is saved and the file sent.
	started, q := markFile(t)
	if res, body, _ := s.gws[0].get(t, "/accel_late.php?ms=0&started="+q, ck); res.StatusCode != 200 || body != "%PDF a" {
		t.Fatalf("download: %d %q", res.StatusCode, body)
	}
	if d := s.gws[0].dump(t, ck); !strings.Contains(string(d.Data), `"downloaded":1`) {
		t.Fatalf("session after the download: %s", d.Data)
	}
	os.Remove(started)
	type result struct {
		code int
		body string
	}
	slow := make(chan result, 1)
	go func() {
		res, body, _ := s.gws[0].get(t, "/accel_late.php?ms=3000&pad=2000000&started="+q, ck)
		slow <- result{res.StatusCode, body}
	}()
	waitForFile(t, started, "accel_late.php")
	dropSessionLock(t, s)
	if res, body, _ := s.gws[1].get(t, "/counter.php", ck); res.StatusCode != 200 {
		t.Fatalf("second request: %d %q", res.StatusCode, body)
	}
	r := <-slow
	if r.code != 503 || strings.Contains(r.body, "PDF") {
		t.Errorf("download whose session change was not saved: %d %q, want 503", r.code, r.body)
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"downloaded":1`) {
		t.Errorf("session after: %s", d.Data)
	}
}

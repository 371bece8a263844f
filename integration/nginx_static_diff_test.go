package integration

// A differential test of static files: the same requests sent to Debian
// 12's nginx serving a document root the way a PHP shop's server block
// does (root, index, try_files, its mime.types) and to the gateway on the
// same root, and everything a browser, a CDN or a download manager sees
// of the answers compared.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// staticDiffExts are the extensions of the files a site serves, each
// served as a.EXT.
var staticDiffExts = []string{"html", "css", "js", "mjs", "json", "svg", "svgz", "png", "jpg", "gif", "webp", "avif",
	"woff", "woff2", "ttf", "wasm", "ico", "bmp", "txt", "xml", "pdf", "zip", "mp3", "mp4", "webm", "ts", "m3u8",
	"map", "webmanifest", "xhtml", "docx", "jar", "rar", "md", "xht", "rdf", "xsl", "smil", "unknownext"}

// staticDiffMtime is every file's modification time.
var staticDiffMtime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// startStaticDiff starts nginx and the gateway on one root of static files
// and returns their addresses and the root.
func startStaticDiff(t *testing.T) (nginx, gw, root string) {
	t.Helper()
	harness.Require(t, "nginx")
	root = filepath.Join(t.TempDir(), "root")
	files := map[string]string{
		"dir/index.html":    "<h1>dir</h1>",
		"sp dir/index.html": "<h1>space</h1>",
		"a?d/index.html":    "<h1>question</h1>",
		"a#d/index.html":    "<h1>hash</h1>",
		"empty.txt":         "",
		"noext":             "plain bytes",
		"A.CSS":             "body{}",
		"sp ace.txt":        "space",
		"café.txt":          "cafe",
		"a+b.txt":           "plus",
		"ten.txt":           "0123456789",
		"100%.txt":          "percent",
		"a?b.txt":           "question",
		"a#b.txt":           "hash",
		"a;b.txt":           "semicolon",
		"x%2Fy.txt":         "encoded slash",
		"cafe\u0301.txt":    "decomposed",
	}
	for _, ext := range staticDiffExts {
		files["a."+ext] = "content of a." + ext
	}
	writeTree(t, root, files)
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7 >> 3)
	}
	if err := os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			os.Chtimes(p, staticDiffMtime, staticDiffMtime)
		}
		return err
	})
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return fmt.Sprintf(`
    server {
        listen %s;
        server_name shop.example;
        root %s;
        index index.html;
        sendfile on;
        location / { try_files $uri $uri/ =404; }
    }
`, addrs[0], root)
	})
	p := startBinary(t, buildGateway(t), []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off", "SESSIONGATE_INDEX=off"})
	return ng.Addrs[0], strings.TrimPrefix(p.URL, "http://"), root
}

// staticAnswer is a response and its whole body.
type staticAnswer struct {
	res  *http.Response
	body []byte
}

// staticDo sends one request as written, on a connection of its own.
func staticDo(t *testing.T, addr, method, target string, headers ...string) staticAnswer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return staticAnswer{res, body}
}

// staticView is what is compared of an answer: the status, the header
// fields a client acts on, and the body; a multipart/byteranges body as
// its parts (each part's Content-Type, Content-Range and bytes), since
// the boundary and the order of a part's fields are each server's own.
// An error's body (nginx's HTML page, the gateway's line of text) is
// left out, and of its fields only those that tell the client what to
// do next.
func staticView(a staticAnswer) map[string]string {
	v := map[string]string{"status": fmt.Sprint(a.res.StatusCode)}
	h := a.res.Header
	keys := []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified",
		"Content-Encoding", "Cache-Control", "Allow", "Location", "Vary", "X-Content-Type-Options"}
	if a.res.StatusCode >= 300 && a.res.StatusCode != http.StatusNotModified {
		keys = []string{"Content-Range", "Allow", "Location", "Vary", "X-Content-Type-Options"}
	} else {
		v["body"] = string(a.body)
	}
	if h.Get("Content-Encoding") == "gzip" && a.res.StatusCode == http.StatusOK && len(a.body) > 0 {
		// Each server compresses at its own level: what counts is what
		// the client decodes.
		zr, err := gzip.NewReader(bytes.NewReader(a.body))
		if err == nil {
			b, err := io.ReadAll(zr)
			if err == nil {
				v["body"] = "gzip of " + string(b)
			}
		}
	}
	for _, k := range keys {
		if vs := h.Values(k); len(vs) > 0 {
			v[k] = strings.Join(vs, "|")
		}
	}
	if mt, params, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && mt == "multipart/byteranges" {
		v["Content-Type"] = mt
		delete(v, "Content-Length")
		var parts []string
		mr := multipart.NewReader(bytes.NewReader(a.body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				if err != io.EOF {
					parts = append(parts, "error: "+err.Error())
				}
				break
			}
			b, _ := io.ReadAll(p)
			parts = append(parts, fmt.Sprintf("[%s; %s; %q]", p.Header.Get("Content-Type"), p.Header.Get("Content-Range"), b))
		}
		v["body"] = strings.Join(parts, " ")
	}
	return v
}

// staticRule is a difference the gateway makes wherever it applies, as
// README describes it; it removes what it accounts for from both views,
// after checking both sides' values, and reports whether it applied.
type staticRule struct {
	name  string
	apply func(n, g map[string]string) bool
}

// nosniffRule, rangesOn206Rule and noLastModifiedOn304Rule: differences
// of static answers that every comparison with nginx's static files meets
// (the WordPress visit's too).
var (
	nosniffRule = staticRule{"X-Content-Type-Options: nosniff on every answer", func(n, g map[string]string) bool {
		if _, ok := n["X-Content-Type-Options"]; ok || g["X-Content-Type-Options"] != "nosniff" {
			return false
		}
		delete(g, "X-Content-Type-Options")
		return true
	}}
	rangesOn206Rule = staticRule{"Accept-Ranges on a 206", func(n, g map[string]string) bool {
		if n["status"] != "206" || g["status"] != "206" || n["Accept-Ranges"] != "" || g["Accept-Ranges"] != "bytes" {
			return false
		}
		delete(g, "Accept-Ranges")
		return true
	}}
	noLastModifiedOn304Rule = staticRule{"no Last-Modified on a 304 that has an ETag", func(n, g map[string]string) bool {
		if n["status"] != "304" || g["status"] != "304" || g["ETag"] == "" || n["Last-Modified"] == "" || g["Last-Modified"] != "" {
			return false
		}
		delete(n, "Last-Modified")
		return true
	}}
)

var staticRules = []staticRule{
	nosniffRule,
	{"Vary: Accept-Encoding where the gateway may gzip", func(n, g map[string]string) bool {
		if _, ok := n["Vary"]; ok || g["Vary"] != "Accept-Encoding" {
			return false
		}
		delete(g, "Vary")
		return true
	}},
	rangesOn206Rule,
	noLastModifiedOn304Rule,
	{"Allow on a 405", func(n, g map[string]string) bool {
		if n["status"] != "405" || g["status"] != "405" || n["Allow"] != "" || g["Allow"] != "GET, HEAD" {
			return false
		}
		delete(g, "Allow")
		return true
	}},
}

// staticCase is one request and the differences left after staticRules,
// each "field: nginx value | gateway value" (README's static rows).
type staticCase struct {
	method, target string
	headers        []string
	diffs          []string
	gw             map[string]string // fields the gateway's answer must have
}

func TestNginxDiffStatic(t *testing.T) {
	t.Parallel()
	nginx, gw, _ := startStaticDiff(t)
	tag := staticDo(t, nginx, "GET", "/ten.txt").res.Header.Get("ETag")
	lm := staticDiffMtime.Format(http.TimeFormat)
	before, after := staticDiffMtime.Add(-24*time.Hour).Format(http.TimeFormat), staticDiffMtime.Add(24*time.Hour).Format(http.TimeFormat)
	hostType, _, _ := strings.Cut(mime.TypeByExtension(".md"), ";")
	var cases []staticCase
	for _, ext := range staticDiffExts {
		c := staticCase{method: "GET", target: "/a." + ext}
		switch ext {
		case "js":
			// RFC 9239's type; nginx 1.22's table predates it.
			c.diffs = []string{"Content-Type: application/javascript | text/javascript"}
		case "mjs":
			// Module scripts: browsers refuse them as octet-stream.
			c.diffs = []string{"Content-Type: application/octet-stream | text/javascript"}
		case "map":
			c.diffs = []string{"Content-Type: application/octet-stream | application/json"}
		case "webmanifest":
			c.diffs = []string{"Content-Type: application/octet-stream | application/manifest+json"}
		case "ttf":
			c.diffs = []string{"Content-Type: application/octet-stream | font/ttf"}
		case "bmp":
			c.diffs = []string{"Content-Type: image/x-ms-bmp | image/bmp"}
		case "md":
			// nginx's table lacks it; the host's answers.
			if hostType != "" {
				c.diffs = []string{"Content-Type: application/octet-stream | " + hostType}
			}
		}
		cases = append(cases, c)
	}
	get := func(target string, headers ...string) {
		cases = append(cases, staticCase{method: "GET", target: target, headers: headers})
	}
	rng := func(headers ...string) { get("/ten.txt", headers...) }
	get("/noext")
	get("/A.CSS")
	get("/sp%20ace.txt")
	get("/caf%C3%A9.txt")
	get("/a+b.txt")
	get("/a%2Bb.txt")
	get("/sp+ace.txt")
	get("/caf%c3%a9.txt")
	get("/cafe%CC%81.txt")
	get("/100%25.txt")
	get("/a%3Fb.txt")
	get("/a%23b.txt")
	get("/a;b.txt")
	get("/a%3Bb.txt")
	get("/x%252Fy.txt")
	get("/x%2Fy.txt")
	get("/%61.css")
	get("/a.css?v=3")
	get("/a.css/")
	get("/A.css")
	get("/empty.txt")
	get("/empty.txt", "Range: bytes=-5")
	get("/big.bin")
	get("/big.bin", "Range: bytes=1000000-1000099,-100")
	get("/dir/")
	get("/dir/index.html")
	cases = append(cases,
		staticCase{method: "HEAD", target: "/big.bin"},
		staticCase{method: "HEAD", target: "/a.css"},
		staticCase{method: "HEAD", target: "/ten.txt", headers: []string{"Range: bytes=2-4"}},
		staticCase{method: "HEAD", target: "/ten.txt", headers: []string{"If-None-Match: " + tag}},
		// nginx names its own scheme, host and port (README, try_files row).
		staticCase{method: "GET", target: "/dir?x=1", diffs: []string{"Location: http://shop.example:PORT/dir/?x=1 | /dir/?x=1"}},
		staticCase{method: "GET", target: "/sp%20dir", diffs: []string{"Location: http://shop.example:PORT/sp%20dir/ | /sp%20dir/"}},
		staticCase{method: "GET", target: "/a%3Fd?q=%20", diffs: []string{"Location: http://shop.example:PORT/a%3Fd/?q=%20 | /a%3Fd/?q=%20"}},
		staticCase{method: "GET", target: "/a%23d", diffs: []string{"Location: http://shop.example:PORT/a%23d/ | /a%23d/"}},
		staticCase{method: "GET", target: "/a%3Fd/"},
	)
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		cases = append(cases, staticCase{method: m, target: "/a.css", headers: []string{"Content-Length: 0"}})
	}
	for _, r := range []string{"2-4", "-3", "7-", "0-", "3-100", "-20", "0-1,5-6", "0-3,2-5", "0-1,0-1", "0-0,-1",
		"20-30", "20-", "-0", "5-2", "abc", "", " 2-4", "2-4 ", "0-18446744073709551616", "99999999999999999999-",
		"-99999999999999999999", "9223372036854775807-", "0--1", "1-2-3", "-"} {
		rng("Range: bytes=" + r)
	}
	rng("Range: items=1-2")
	rng("Range: bytes=2-4", "If-Range: "+tag)
	rng("Range: bytes=2-4", `If-Range: "other"`)
	rng("Range: bytes=2-4", "If-Range: W/"+tag)
	rng("Range: bytes=2-4", "If-Range: "+lm)
	rng("Range: bytes=2-4", "If-Range: "+before)
	rng("Range: bytes=2-4", "If-Range: "+after)
	rng("Range: bytes=2-4", "If-Range: garbage")
	rng("If-None-Match: " + tag)
	rng(`If-None-Match: "x", ` + tag)
	rng("If-None-Match: *")
	rng("If-None-Match: W/" + tag)
	rng(`If-None-Match: "x"`)
	rng("If-Modified-Since: " + lm)
	rng("If-Modified-Since: " + before)
	rng("If-Modified-Since: garbage")
	rng("If-Modified-Since: Friday, 01-Mar-24 12:00:00 GMT")
	rng("If-Modified-Since: Fri Mar  1 12:00:00 2024")
	// Old Internet Explorer's "; length=" after the date, and UTC for
	// GMT: nginx reads the date and answers 304.
	rng("If-Modified-Since: " + lm + "; length=10")
	rng("If-Modified-Since: " + strings.TrimSuffix(lm, "GMT") + "UTC")
	rng("If-Modified-Since: " + strings.TrimSuffix(lm, "GMT") + "UTC; length=10")
	rng(`If-None-Match: "x"`, "If-Modified-Since: "+lm)
	rng("Range: bytes=0-1", "If-None-Match: "+tag)
	rng("If-Match: " + tag)
	rng(`If-Match: "x"`)
	rng("If-Match: *")
	rng("If-Unmodified-Since: " + lm)
	rng("If-Unmodified-Since: " + before)
	rng(`If-Match: "x"`, "Range: bytes=0-1")
	cases = append(cases,
		// nginx's default if_modified_since exact: only the very date is
		// "not modified"; the gateway, as RFC 9110 13.1.3, any date at or
		// after the file's (README, static files).
		staticCase{method: "GET", target: "/ten.txt", headers: []string{"If-Modified-Since: " + after},
			diffs: []string{"status: 200 | 304"}},
		// RFC 9110 13.1.3: If-Modified-Since is ignored when there is an
		// If-None-Match; nginx 1.22 requires both.
		staticCase{method: "GET", target: "/ten.txt", headers: []string{"If-None-Match: " + tag, "If-Modified-Since: " + before},
			diffs: []string{"status: 200 | 304"}},
		// A weak tag is the gateway's own strong one in If-Match (README,
		// gzip row): it gave out W/ for the gzipped copy.
		staticCase{method: "GET", target: "/ten.txt", headers: []string{"If-Match: W/" + tag},
			diffs: []string{"status: 412 | 200"}},
		// More than 200 ranges (Apache's MaxRanges) are ignored: each
		// costs a multipart part; nginx's max_ranges has no default.
		staticCase{method: "GET", target: "/big.bin", headers: []string{"Range: bytes=" + manyRanges(201)},
			diffs: []string{"status: 206 | 200"}},
		staticCase{method: "GET", target: "/big.bin", headers: []string{"Range: bytes=" + manyRanges(200)}},
		// RFC 9110 5.6.1: a list may have empty elements, and OWS
		// around its commas; nginx answers 416.
		staticCase{method: "GET", target: "/ten.txt", headers: []string{"Range: bytes=0-0,"}, diffs: []string{"status: 416 | 206"},
			gw: map[string]string{"Content-Range": "bytes 0-0/10", "body": "0"}},
		staticCase{method: "GET", target: "/ten.txt", headers: []string{"Range: bytes=0-0\t,1-1"}, diffs: []string{"status: 416 | 206"}},
		// RFC 9110 13.1.4: an invalid date is ignored, not failed.
		staticCase{method: "GET", target: "/ten.txt", headers: []string{"If-Unmodified-Since: garbage"},
			diffs: []string{"status: 412 | 200"}},
	)
	compareStatic(t, nginx, gw, cases, staticRules)
}

// manyRanges is a range-set of n one-byte ranges, 10 bytes apart.
func manyRanges(n int) string {
	rs := make([]string, n)
	for i := range rs {
		rs[i] = fmt.Sprintf("%d-%d", i*10, i*10)
	}
	return strings.Join(rs, ",")
}

// compareStatic sends each case to nginx and to the gateway and checks
// that they differ in exactly the case's diffs once rules have taken
// theirs out, and that every rule applied somewhere. When the statuses
// differ, that is the one difference listed; the case's gw then says
// what the gateway's answer must be.
func compareStatic(t *testing.T, nginx, gw string, cases []staticCase, rules []staticRule) {
	t.Helper()
	_, nport, _ := net.SplitHostPort(nginx)
	seen := map[string]int{}
	for _, c := range cases {
		n, g := staticView(staticDo(t, nginx, c.method, c.target, c.headers...)), staticView(staticDo(t, gw, c.method, c.target, c.headers...))
		for k, v := range c.gw {
			if g[k] != v {
				t.Errorf("%s %s %q: the gateway's %s is %q, want %q", c.method, c.target, c.headers, k, g[k], v)
			}
		}
		countRules(rules, n, g, seen)
		got := viewDiffs(n, g, nport)
		if strings.Join(got, "\n") != strings.Join(c.diffs, "\n") {
			t.Errorf("%s %s %q: nginx | gateway:\n    %s\nwant:\n    %s", c.method, c.target, c.headers,
				strings.Join(got, "\n    "), strings.Join(c.diffs, "\n    "))
		}
	}
	rulesAllSeen(t, rules, seen)
}

// viewDiffs lists where n, nginx's view of one answer, and g, the
// gateway's, differ, as "key: nginx | gateway" lines: the status alone when
// it differs, else every key whose values differ. nport in nginx's values
// is written PORT (none when ""), and bodies over 200 bytes together are
// given by their lengths.
func viewDiffs(n, g map[string]string, nport string) []string {
	if n["status"] != g["status"] {
		return []string{"status: " + n["status"] + " | " + g["status"]}
	}
	var got []string
	for _, k := range unionKeys(n, g) {
		if n[k] == g[k] {
			continue
		}
		nv := n[k]
		if nport != "" {
			nv = strings.ReplaceAll(nv, ":"+nport+"/", ":PORT/")
		}
		if k == "body" && len(n[k])+len(g[k]) > 200 {
			got = append(got, fmt.Sprintf("body: %d bytes | %d bytes", len(n[k]), len(g[k])))
			continue
		}
		got = append(got, k+": "+nv+" | "+g[k])
	}
	return got
}

// countRules counts in seen the rules that hold for one answer's views.
func countRules(rules []staticRule, n, g map[string]string, seen map[string]int) {
	for _, r := range rules {
		if r.apply(n, g) {
			seen[r.name]++
		}
	}
}

// rulesAllSeen reports the rules no answer of a comparison showed: a
// documented difference that is gone, or drifted.
func rulesAllSeen(t *testing.T, rules []staticRule, seen map[string]int) {
	t.Helper()
	for _, r := range rules {
		if seen[r.name] == 0 {
			t.Errorf("documented difference no longer seen: %s", r.name)
		}
	}
}

// TestNginxDiffStaticReplaced: a large file replaced while a client reads
// it. A deploy that renames a new file over it (rsync, an atomic
// checkout) leaves the open file as it was: both servers finish the old
// content whole. One that shrinks it in place cuts the download short on
// both, never passing it off as whole: the client sees fewer bytes than
// the Content-Length and can resume.
func TestNginxDiffStaticReplaced(t *testing.T) {
	t.Parallel()
	nginx, gw, root := startStaticDiff(t)
	// Larger than the most a server's send buffer holds (4 MiB by
	// default on Linux), so that most of it is still on disk when it
	// is replaced.
	old := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	for _, inPlace := range []bool{false, true} {
		for _, addr := range []string{nginx, gw} {
			name := fmt.Sprintf("r%v.bin", inPlace)
			p := filepath.Join(root, name)
			if err := os.WriteFile(p, old, 0o644); err != nil {
				t.Fatal(err)
			}
			// A small receive buffer, set before the handshake, so that
			// most of the file is still to be sent when it is replaced.
			d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
				return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
			}}
			conn, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "GET /%s HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n", name)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			first := make([]byte, 64<<10)
			if _, err := io.ReadFull(res.Body, first); err != nil {
				t.Fatal(err)
			}
			if inPlace {
				if err := os.Truncate(p, 1<<20); err != nil {
					t.Fatal(err)
				}
			} else {
				tmp := p + ".new"
				if err := os.WriteFile(tmp, bytes.Repeat([]byte("n"), len(old)), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, p); err != nil {
					t.Fatal(err)
				}
			}
			rest, err := io.ReadAll(res.Body)
			conn.Close()
			got := append(first, rest...)
			switch {
			case !inPlace && (err != nil || !bytes.Equal(got, old)):
				t.Errorf("%s, renamed over: %d of %d bytes (%v), want the old file whole", addr, len(got), len(old), err)
			case inPlace && (err == nil || len(got) >= len(old)):
				t.Errorf("%s, shrunk in place: %d of %d bytes, err %v; want a cut download", addr, len(got), res.ContentLength, err)
			}
		}
	}
}

// TestNginxDiffStaticGzip: static files to a client that accepts gzip,
// against nginx with gzip on for text types (gzip_vary on, the usual
// gzip_types, gzip_min_length 256) and gzip_static on under /s/, the
// gateway with SESSIONGATE_PRECOMPRESSED=/s/ (README, gzip row).
func TestNginxDiffStaticGzip(t *testing.T) {
	t.Parallel()
	harness.Require(t, "nginx")
	root := filepath.Join(t.TempDir(), "root")
	css := strings.Repeat("body { color: red; }\n", 100)
	writeTree(t, root, map[string]string{"s/app.css": css, "s/app.js": strings.Repeat("var a = 1;\n", 200)})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(css))
	zw.Close()
	if err := os.WriteFile(filepath.Join(root, "s/app.css.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, mtime := range map[string]time.Time{"app.css": staticDiffMtime, "app.js": staticDiffMtime, "app.css.gz": staticDiffMtime.Add(time.Second)} {
		if err := os.Chtimes(filepath.Join(root, "s", name), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return fmt.Sprintf(`
    gzip on;
    gzip_vary on;
    gzip_min_length 256;
    gzip_types text/css application/javascript text/javascript application/json image/svg+xml text/plain text/xml;
    server {
        listen %s;
        root %s;
        location / { try_files $uri $uri/ =404; }
        location /s/ { gzip_static on; }
    }
`, addrs[0], root)
	})
	p := startBinary(t, buildGateway(t), []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off", "SESSIONGATE_INDEX=off", "SESSIONGATE_PRECOMPRESSED=/s/"})
	gw, nginx := strings.TrimPrefix(p.URL, "http://"), ng.Addrs[0]
	jsTag := staticDo(t, nginx, "GET", "/s/app.js").res.Header.Get("ETag")
	copyTag := staticDo(t, nginx, "GET", "/s/app.css", "Accept-Encoding: gzip").res.Header.Get("ETag")
	ae := "Accept-Encoding: gzip"
	js := "Content-Type: application/javascript | text/javascript"
	cases := []staticCase{
		// The copy on disk: its own strong ETag on both; the gateway
		// also offers its ranges.
		{method: "GET", target: "/s/app.css", headers: []string{ae}, diffs: []string{"Accept-Ranges:  | bytes"}},
		{method: "HEAD", target: "/s/app.css", headers: []string{ae}, diffs: []string{"Accept-Ranges:  | bytes"}},
		{method: "GET", target: "/s/app.css", headers: []string{ae, "If-None-Match: " + copyTag}},
		// nginx's gzip_static sends the whole copy for a Range; the
		// gateway, bytes of the copy.
		{method: "GET", target: "/s/app.css", headers: []string{ae, "Range: bytes=0-9"}, diffs: []string{"status: 200 | 206"},
			gw: map[string]string{"Content-Encoding": "gzip", "ETag": copyTag, "Content-Range": fmt.Sprintf("bytes 0-9/%d", gz.Len())}},
		// Compressed by the server: the weak ETag on both; the
		// gateway's copy from memory has a length.
		{method: "GET", target: "/s/app.js", headers: []string{ae}, diffs: []string{js}},
		{method: "HEAD", target: "/s/app.js", headers: []string{ae}, diffs: []string{js}},
		// A revalidation of the gzipped copy: nginx answers with the
		// file's strong tag and no Vary, the gateway with the weak tag
		// the client stored (RFC 9111 4.3.4) and the Vary its 200 has
		// (RFC 9110 15.4.5).
		{method: "GET", target: "/s/app.js", headers: []string{ae, "If-None-Match: W/" + jsTag},
			diffs: []string{"ETag: " + jsTag + " | W/" + jsTag, "Vary:  | Accept-Encoding"}},
		{method: "GET", target: "/s/app.js", headers: []string{ae, "If-None-Match: " + jsTag},
			diffs: []string{"ETag: " + jsTag + " | W/" + jsTag, "Vary:  | Accept-Encoding"}},
		// A Range: nginx's gzip filter drops it (the whole file
		// gzipped, 200); the gateway sends the range uncompressed.
		{method: "GET", target: "/s/app.js", headers: []string{ae, "Range: bytes=0-9"}, diffs: []string{"status: 200 | 206"},
			gw: map[string]string{"Content-Encoding": "", "ETag": jsTag, "Content-Range": "bytes 0-9/2200", "body": "var a = 1;"}},
		// A weak If-Range never matches: the whole file, gzipped by
		// nginx, uncompressed by the gateway (a request with a Range is
		// about the file's own bytes: README, gzip row).
		{method: "GET", target: "/s/app.js", headers: []string{ae, "If-Range: W/" + jsTag, "Range: bytes=0-9"},
			diffs: []string{"Accept-Ranges:  | bytes", "Content-Encoding: gzip | ", "Content-Length:  | 2200", js,
				"ETag: W/" + jsTag + " | " + jsTag, "body: 2208 bytes | 2200 bytes"}},
		{method: "GET", target: "/s/app.js", diffs: []string{js}},
		{method: "GET", target: "/s/app.css"},
	}
	compareStatic(t, nginx, gw, cases, []staticRule{
		staticRules[0],
		{"Content-Length on what the server gzipped", func(n, g map[string]string) bool {
			if n["Content-Encoding"] != "gzip" || g["Content-Encoding"] != "gzip" || !strings.HasPrefix(n["ETag"], "W/") ||
				n["Content-Length"] != "" || g["Content-Length"] == "" {
				return false
			}
			delete(g, "Content-Length")
			return true
		}},
		staticRules[3],
	})
}

//go:build wordpress

// Not part of make test: mariadb-server is a system service package, and
// installing it starts a database server on the machine that runs the
// suite. To run it (as root on Debian 12):
//
//	apt-get install --no-install-recommends wordpress wordpress-theme-twentytwentyone mariadb-server php8.2-mysql
//	go test -tags wordpress -run TestWordPress ./integration/

package integration

// Debian 12's WordPress 6.1 behind nginx, configured as WordPress's own
// nginx guide says, and behind the gateway, driven through the same
// visit (install, log in, publish, permalinks, upload, comment, feeds,
// REST, XML-RPC, a protected post, log out) and compared hop by hop.
// wpRules and the steps run with wpCompare.known are the differences the
// README lists in its WordPress notes.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

const wordPressDir = "/usr/share/wordpress"

// requireWordPress checks that Debian's wordpress, its Twenty Twenty-One
// theme, mariadbd and PHP's mysqli are installed (in CI a missing one
// fails the test).
func requireWordPress(t *testing.T) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "php", "nginx")
	var missing []string
	if _, err := os.Stat(wordPressDir + "/wp-login.php"); err != nil {
		missing = append(missing, "wordpress")
	}
	if _, err := os.Stat(wordPressDir + "/wp-content/themes/twentytwentyone/style.css"); err != nil {
		missing = append(missing, "wordpress-theme-twentytwentyone")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		missing = append(missing, "mariadb-server")
	}
	if out, err := exec.Command("php", "-r", "echo extension_loaded('mysqli') ? 'yes' : 'no';").Output(); err != nil || string(out) != "yes" {
		missing = append(missing, "php8.2-mysql")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("Debian's %s missing", strings.Join(missing, " and "))
	}
	t.Skipf("%s not installed", strings.Join(missing, " and "))
}

// startMariaDB runs a mariadbd of the test's own on a unix socket only
// (no TCP listener), without grant tables (any user may connect: the
// socket's directory is the test's), on an empty data directory, which
// such a server accepts as it is: mariadb-install-db would add seconds
// for the grant tables it skips. It returns the socket's path.
func startMariaDB(t *testing.T) string {
	t.Helper()
	// sun_path holds 108 bytes: a short directory of its own.
	dir, err := os.MkdirTemp("", "sgwpdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// php-fpm's workers (nobody) connect to the socket.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, sock, logPath := filepath.Join(dir, "data"), filepath.Join(dir, "sock"), filepath.Join(dir, "error.log")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// --user: mariadbd refuses to run as root unless told to.
	cmd := exec.Command("mariadbd", "--no-defaults", "--user="+me.Username, "--datadir="+data, "--socket="+sock,
		"--skip-networking", "--skip-grant-tables", "--innodb-buffer-pool-size=32M", "--log-error="+logPath,
		"--pid-file="+filepath.Join(dir, "pid"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("mariadbd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return sock
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("mariadbd exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("mariadbd did not open %s\n%s", sock, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wordPressConfig is the site's wp-config.php: its database on the test's
// mariadbd, its address (each front has its own port), no requests to wordpress.org, and WP-Cron run only when the
// test asks for wp-cron.php (as on a site with a system cron job), so that
// no loopback request of WordPress's lands in the middle of the visit.
const wordPressConfig = `<?php
define('DB_NAME', 'DBNAME');
define('DB_USER', 'wordpress');
define('DB_PASSWORD', '');
define('DB_HOST', 'localhost:SOCKET');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as $k) {
    define($k, 'gateway-test ' . $k);
}
$table_prefix = 'wp_';
define('WP_HOME', 'HOME');
define('WP_SITEURL', 'HOME');
define('WP_DEFAULT_THEME', 'twentytwentyone');
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('FS_METHOD', 'direct');
if (!defined('ABSPATH')) {
    define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
`

// wordPressSite builds one site in root the way a shop keeps WordPress
// from Debian's package with a configuration of its own: the entry
// scripts and wp-admin copied (WordPress finds wp-config.php next to the
// wp-load.php its scripts resolve, so linked ones would load Debian's
// /etc/wordpress/config-HOST.php), wp-includes and the theme and plugin
// directories linked to the package, and wp-content/uploads writable.
// Its wp-config.php comes later (writeWordPressConfig), with its front's
// address.
func wordPressSite(t *testing.T, root, db, sock string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "wp-content", "uploads"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(wordPressDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == "wp-config.php" || strings.HasPrefix(name, "."):
		case name == "wp-includes":
			if err := os.Symlink(filepath.Join(wordPressDir, name), filepath.Join(root, name)); err != nil {
				t.Fatal(err)
			}
		case name == "wp-content":
			for _, sub := range []string{"themes", "plugins"} {
				if err := os.Symlink(filepath.Join(wordPressDir, name, sub), filepath.Join(root, name, sub)); err != nil {
					t.Fatal(err)
				}
			}
		default:
			if out, err := exec.Command("cp", "-rL", filepath.Join(wordPressDir, name), root).CombinedOutput(); err != nil {
				t.Fatalf("copy %s: %v\n%s", name, err, out)
			}
		}
	}
	writeTree(t, root, map[string]string{
		// What an attacker would try to run after an upload got through.
		"wp-content/uploads/shell.php": "<?php echo 'ran';",
	})
	if out, err := exec.Command("mariadb", "--no-defaults", "-S", sock, "-e", "CREATE DATABASE "+db).CombinedOutput(); err != nil {
		t.Fatalf("create database %s: %v\n%s", db, err, out)
	}
}

// writeWordPressConfig writes root's wp-config.php for the site at home.
func writeWordPressConfig(t *testing.T, root, db, sock, home string) {
	t.Helper()
	conf := strings.NewReplacer("DBNAME", db, "SOCKET", sock, "HOME", home).Replace(wordPressConfig)
	if err := os.WriteFile(filepath.Join(root, "wp-config.php"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// nginxWordPress is the server block of WordPress's nginx guide
// (developer.wordpress.org, "Nginx"): the front controller with $args,
// robots.txt handed to WordPress when there is no file, the PHP location
// refusing scripts that do not exist, long expiry on static assets, no PHP
// under uploads, no dot files; with Debian's gzip on (text/html).
// HTTP_HOST is the Host as sent, as nginx.org's fastcgi_params passes it:
// Debian 12's sends $host, without the port (README, "what PHP sees"),
// and WordPress's login redirects (auth_redirect) would then lead to
// port 80.
func nginxWordPress(listen, root, fpm string) string {
	return fmt.Sprintf(`
    gzip on;
    server {
        listen %s;
        server_name 127.0.0.1;
        root %s;
        index index.php;

        location = /favicon.ico { log_not_found off; }
        location = /robots.txt { allow all; log_not_found off; try_files $uri $uri/ /index.php?$args; }
        location ~ /\. { deny all; }
        location ~* /(?:uploads|files)/.*\.php$ { deny all; }

        location / {
            try_files $uri $uri/ /index.php?$args;
        }

        location ~ \.php$ {
            try_files $uri =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param HTTP_PROXY "";
            fastcgi_param HTTP_HOST $http_host;
            fastcgi_intercept_errors on;
            fastcgi_pass %s;
        }

        location ~* \.(js|css|png|jpg|jpeg|gif|ico)$ {
            expires max;
            log_not_found off;
        }
    }
`, listen, root, fpm)
}

// wpFront is one front of the comparison and the visitor's browser there.
type wpFront struct {
	name   string
	base   string // http://127.0.0.1:port
	client *http.Client
	// values the visit picks up from pages (nonces, IDs, URLs).
	vals map[string]string
}

// wpHop is one response of a step (a step follows redirects as a browser
// does, one hop at a time).
type wpHop struct {
	req  string
	res  *http.Response
	body []byte // decoded
}

func newWPFront(name, base string) *wpFront {
	jar, _ := cookiejar.New(nil)
	return &wpFront{name: name, base: base, vals: map[string]string{}, client: &http.Client{
		Jar:       jar,
		Timeout:   60 * time.Second,
		Transport: &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// do sends req and follows its redirects (GET after a POST's 302/303, as
// browsers do), returning every hop.
func (f *wpFront) do(t *testing.T, req *http.Request) []wpHop {
	t.Helper()
	var hops []wpHop
	for range 10 {
		if req.Header.Get("Accept-Encoding") == "" {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		res, err := f.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %s %s: %v", f.name, req.Method, req.URL, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("%s: %s %s: body: %v", f.name, req.Method, req.URL, err)
		}
		if res.Header.Get("Content-Encoding") == "gzip" && len(body) > 0 {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("%s: %s %s: gzip: %v", f.name, req.Method, req.URL, err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %s %s: gzip: %v", f.name, req.Method, req.URL, err)
			}
		}
		hops = append(hops, wpHop{req: req.Method + " " + strings.TrimPrefix(req.URL.String(), f.base), res: res, body: body})
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode > 308 || res.StatusCode == 304 || loc == "" {
			return hops
		}
		u, err := req.URL.Parse(loc)
		if err != nil {
			t.Fatalf("%s: Location %q: %v", f.name, loc, err)
		}
		if u.Host != req.URL.Host {
			return hops // off the site: not followed
		}
		method := req.Method
		if res.StatusCode != 307 && res.StatusCode != 308 {
			method = "GET"
		}
		if method != "GET" {
			t.Fatalf("%s: %d to %s after %s", f.name, res.StatusCode, loc, req.Method)
		}
		req, _ = http.NewRequest(method, u.String(), nil)
	}
	t.Fatalf("%s: too many redirects", f.name)
	return nil
}

// visitor is another browser on the same front: no cookies yet.
func (f *wpFront) visitor() *wpFront {
	v := newWPFront(f.name, f.base)
	v.vals = f.vals
	return v
}

func (f *wpFront) get(t *testing.T, target string, headers ...string) []wpHop {
	t.Helper()
	req, err := http.NewRequest("GET", f.base+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	return f.do(t, req)
}

func (f *wpFront) post(t *testing.T, target string, form url.Values, headers ...string) []wpHop {
	t.Helper()
	req, err := http.NewRequest("POST", f.base+target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	return f.do(t, req)
}

// finalBody is a step's final answer's body, failing the test unless its status
// is want.
func finalBody(t *testing.T, f *wpFront, hops []wpHop, want int) string {
	t.Helper()
	h := hops[len(hops)-1]
	if h.res.StatusCode != want {
		t.Fatalf("%s: %s: status %d, want %d\n%.1500s", f.name, h.req, h.res.StatusCode, want, h.body)
	}
	return string(h.body)
}

// pageValue returns the first group of re in page, failing the test without
// one.
func pageValue(t *testing.T, f *wpFront, what, page, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("%s: no %s in %.2000s", f.name, what, page)
	}
	return m[1]
}

// wpHeaderFields are the header fields compared on every hop.
var wpHeaderFields = []string{"Location", "Content-Type", "Content-Encoding", "Cache-Control", "Expires",
	"Pragma", "Last-Modified", "ETag", "Vary", "Content-Range", "Accept-Ranges", "X-Pingback", "Link",
	"X-Robots-Tag", "X-Frame-Options", "Allow", "X-WP-Total", "X-WP-TotalPages", "X-Content-Type-Options",
	"Referrer-Policy", "X-Redirect-By", "Access-Control-Allow-Headers", "Access-Control-Expose-Headers", "Content-Disposition"}

// wpNoise are the parts of a page that differ between two runs of one
// visit whatever serves it: nonces and tokens, times, the ports.
var wpNoise = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b[0-9a-f]{10}\b`), "NONCE"},
	{regexp.MustCompile(`(?i)(nonce|_wpnonce|token|key|rnd)([=":\\]+)[A-Za-z0-9%._-]{8,}`), "$1$2X"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d`), "DATETIME"},
	{regexp.MustCompile(`(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}`), "RFC822"},
	{regexp.MustCompile(`\b\d{1,2}:\d\d (am|pm)\b`), "TIME"},
	{regexp.MustCompile(`\b1[789]\d{8}(\.\d+)?\b`), "UNIXTIME"},
	{regexp.MustCompile(`"timestamp":\d+`), `"timestamp":N`},
	{regexp.MustCompile(`data-pw="[^"]*"`), `data-pw="PASSWORD"`},
	{regexp.MustCompile(`\b\d\.gravatar\.com`), `N.gravatar.com`},
}

// view is what is compared of one hop, normalised: base's host written
// HOST, cookie values and expiry left out.
func (h wpHop) view(base string) map[string]string {
	host := strings.TrimPrefix(base, "http://")
	norm := func(s string) string {
		s = strings.ReplaceAll(s, host, "HOST")
		s = strings.ReplaceAll(s, url.QueryEscape(host), "HOST")
		return s
	}
	v := map[string]string{"req": denoise(norm(h.req)), "status": fmt.Sprint(h.res.StatusCode)}
	for _, k := range wpHeaderFields {
		if vs := h.res.Header.Values(k); len(vs) > 0 {
			v[k] = norm(strings.Join(vs, " | "))
		}
	}
	if lm := v["Last-Modified"]; lm != "" {
		v["Last-Modified"] = "present"
	}
	if e := v["Expires"]; e != "" && e != "Thu, 31 Dec 2037 23:55:55 GMT" && e != "Wed, 11 Jan 1984 05:00:00 GMT" {
		v["Expires"] = "a date"
	}
	if e := v["ETag"]; e != "" {
		v["ETag"] = regexp.MustCompile(`[0-9a-f-]{6,}`).ReplaceAllString(e, "X")
	}
	var cookies []string
	for _, c := range h.res.Cookies() {
		s := c.Name
		if c.Path != "" {
			s += "; Path=" + c.Path
		}
		if c.Domain != "" {
			s += "; Domain=" + c.Domain
		}
		if c.HttpOnly {
			s += "; HttpOnly"
		}
		if c.Secure {
			s += "; Secure"
		}
		if !c.Expires.IsZero() {
			if c.Expires.Before(time.Now()) {
				s += "; expired"
			} else {
				s += "; expires"
			}
		}
		if c.SameSite != 0 {
			s += fmt.Sprintf("; SameSite=%d", c.SameSite)
		}
		cookies = append(cookies, regexp.MustCompile(`_[0-9a-f]{32}`).ReplaceAllString(s, "_HASH"))
	}
	slices.Sort(cookies)
	if len(cookies) > 0 {
		v["Set-Cookie"] = strings.Join(cookies, ", ")
	}
	v["body"] = denoise(norm(string(h.body)))
	return v
}

func denoise(s string) string {
	for _, n := range wpNoise {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// wpRules are the differences the gateway makes on purpose (README); each
// removes what it accounts for from both views.
var wpRules = []staticRule{
	nosniffRule,
	{"Vary: Accept-Encoding where the gateway may gzip", func(n, g map[string]string) bool {
		switch {
		case n["Vary"] == "" && g["Vary"] == "Accept-Encoding":
		case n["Vary"] != "" && g["Vary"] == n["Vary"]+" | Accept-Encoding":
		default:
			return false
		}
		g["Vary"] = n["Vary"]
		return true
	}},
	{"gzip for text types besides text/html (nginx's gzip_types: text/html alone)", func(n, g map[string]string) bool {
		if n["Content-Encoding"] != "" || g["Content-Encoding"] != "gzip" || strings.HasPrefix(g["Content-Type"], "text/html") {
			return false
		}
		delete(g, "Content-Encoding")
		if n["Accept-Ranges"] == "bytes" && g["Accept-Ranges"] == "" {
			delete(n, "Accept-Ranges") // a compressed answer has no ranges
		}
		return true
	}},
	{"gzip for every status with a body (nginx 1.22: 200, 403 and 404 only)", func(n, g map[string]string) bool {
		if n["Content-Encoding"] != "" || g["Content-Encoding"] != "gzip" || slices.Contains([]string{"200", "403", "404"}, g["status"]) {
			return false
		}
		delete(g, "Content-Encoding")
		return true
	}},
	{"an unquoted ETag (WordPress's load-scripts.php and load-styles.php send Etag: 6.1.9) is dropped from what the gateway compresses, as nginx drops it when its gzip_types covers JavaScript and CSS", func(n, g map[string]string) bool {
		if n["ETag"] == "" || strings.HasPrefix(n["ETag"], `"`) || strings.HasPrefix(n["ETag"], `W/`) || g["ETag"] != "" || g["Content-Encoding"] != "" {
			return false
		}
		delete(n, "ETag")
		return true
	}},
	{"a weak ETag on what the gateway compresses", func(n, g map[string]string) bool {
		if n["ETag"] == "" || g["ETag"] != "W/"+n["ETag"] {
			return false
		}
		delete(n, "ETag")
		delete(g, "ETag")
		return true
	}},
	{"the gateway's 304 for the weak tag of a PHP page: the page's headers (Link) without Last-Modified, where WordPress's own 304 has Last-Modified and no Link", func(n, g map[string]string) bool {
		if n["status"] != "304" || g["status"] != "304" || n["Link"] != "" || g["Link"] == "" || n["Last-Modified"] == "" || g["Last-Modified"] != "" {
			return false
		}
		delete(g, "Link")
		delete(n, "Last-Modified")
		return true
	}},
	{"no gzip under 256 bytes (nginx's gzip_min_length 20)", func(n, g map[string]string) bool {
		if n["Content-Encoding"] != "gzip" || g["Content-Encoding"] != "" || len(g["body"]) >= 256 {
			return false
		}
		delete(n, "Content-Encoding")
		return true
	}},
	{"/dir without its slash: 301 to the relative /dir/ with a line of text", func(n, g map[string]string) bool {
		if n["status"] != "301" || g["status"] != "301" || g["Location"] == "" || !strings.HasSuffix(n["Location"], g["Location"]) {
			return false
		}
		for _, k := range []string{"Location", "Content-Type", "body"} {
			delete(n, k)
			delete(g, k)
		}
		return true
	}},
	{"the gateway's own errors are a line of text, nginx's an HTML page", func(n, g map[string]string) bool {
		if n["status"] != g["status"] || n["status"] < "400" || !strings.HasPrefix(n["body"], "<html>\r\n<head><title>") ||
			g["Content-Type"] != "text/plain; charset=utf-8" {
			return false
		}
		for _, k := range []string{"Content-Type", "body"} {
			delete(n, k)
			delete(g, k)
		}
		return true
	}},
	{"SESSIONGATE_STATIC_MAX_AGE for expires max: Cache-Control public, no Expires", func(n, g map[string]string) bool {
		if n["Cache-Control"] != "max-age=315360000" || n["Expires"] != "Thu, 31 Dec 2037 23:55:55 GMT" || g["Cache-Control"] != "public, max-age=315360000" || g["Expires"] != "" {
			return false
		}
		for _, k := range []string{"Cache-Control", "Expires"} {
			delete(n, k)
			delete(g, k)
		}
		return true
	}},
	{".js is text/javascript (RFC 9239)", func(n, g map[string]string) bool {
		if n["Content-Type"] != "application/javascript" || g["Content-Type"] != "text/javascript" {
			return false
		}
		delete(n, "Content-Type")
		delete(g, "Content-Type")
		return true
	}},
	{"X-Pingback on WordPress's redirect from /index.php/post/: the gateway sends PATH_INFO, and WordPress finds the post before it redirects", func(n, g map[string]string) bool {
		if n["req"] != "GET /index.php/hello-gateway/" || n["status"] != "301" || n["X-Pingback"] != "" || g["X-Pingback"] == "" {
			return false
		}
		delete(g, "X-Pingback")
		return true
	}},
	{"HTML files get no-cache beside SESSIONGATE_STATIC_MAX_AGE", func(n, g map[string]string) bool {
		if n["Cache-Control"] != "" || g["Cache-Control"] != "no-cache" || !strings.HasPrefix(g["Content-Type"], "text/html") {
			return false
		}
		delete(g, "Cache-Control")
		return true
	}},
	rangesOn206Rule,
	noLastModifiedOn304Rule,
}

// wpCompare runs the visit's steps on both fronts and counts the rules
// each comparison needed in seen.
type wpCompare struct {
	t      *testing.T
	ng, gw *wpFront
	seen   map[string]int
}

// step runs one step on both fronts and reports every difference between
// their hops that wpRules do not account for.
func (c *wpCompare) step(name string, run func(f *wpFront) []wpHop) {
	t := c.t
	t.Helper()
	nh, gh := run(c.ng), run(c.gw)
	if len(nh) != len(gh) {
		t.Errorf("%s: nginx took %d hops (%s), the gateway %d (%s)", name, len(nh), hopList(nh), len(gh), hopList(gh))
	}
	for i := range min(len(nh), len(gh)) {
		n, g := nh[i].view(c.ng.base), gh[i].view(c.gw.base)
		countRules(wpRules, n, g, c.seen)
		for _, k := range unionKeys(n, g) {
			if n[k] == g[k] {
				continue
			}
			if k == "body" {
				t.Errorf("%s, hop %d (%s): bodies differ: %s", name, i+1, n["req"], firstDifference(n[k], g[k]))
				continue
			}
			t.Errorf("%s, hop %d (%s): %s: nginx %q | gateway %q", name, i+1, n["req"], k, n[k], g[k])
		}
	}
}

// known runs a step whose outcomes differ on purpose: each front's hops
// must be as listed ("GET /x → 404, ..."), and the step is counted as
// seen under reason.
func (c *wpCompare) known(name, reason, nginxHops, gatewayHops string, run func(f *wpFront) []wpHop) {
	t := c.t
	t.Helper()
	nh, gh := run(c.ng), run(c.gw)
	if got := hopList(nh); got != nginxHops {
		t.Errorf("%s: nginx: %s, want %s (%s)", name, got, nginxHops, reason)
	}
	if got := hopList(gh); got != gatewayHops {
		t.Errorf("%s: gateway: %s, want %s (%s)", name, got, gatewayHops, reason)
	}
}

func hopList(hops []wpHop) string {
	var s []string
	for _, h := range hops {
		s = append(s, fmt.Sprintf("%s → %d", h.req, h.res.StatusCode))
	}
	return strings.Join(s, ", ")
}

// firstDifference shows where two bodies part, with some context.
func firstDifference(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-80)
	return fmt.Sprintf("%d | %d bytes, from byte %d:\n    nginx:   %q\n    gateway: %q", len(a), len(b), i,
		a[from:min(len(a), i+120)], b[from:min(len(b), i+120)])
}

// testPNG is a small image for the upload.
func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 200, 150))
	for x := range 200 {
		for y := range 150 {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestWordPressBehindNginxAndGateway: one visitor's whole visit of a
// WordPress site, on nginx as WordPress's guide configures it and on the
// gateway, each front with its own copy of the site and its own database
// on one mariadbd and one php-fpm (WordPress keeps its address in its
// database; the visit's steps change the site).
func TestWordPressBehindNginxAndGateway(t *testing.T) {
	t.Parallel()
	requireWordPress(t)
	sock := startMariaDB(t)
	base := t.TempDir()
	roots := map[string]string{}
	for _, name := range []string{"nginx", "gateway"} {
		roots[name] = filepath.Join(base, name)
		wordPressSite(t, roots[name], "wp_"+name, sock)
	}
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: base, Children: 4})
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return nginxWordPress(addrs[0], roots["nginx"], fpm.Addr)
	})
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + roots["gateway"],
		"SESSIONGATE_FOLLOW_SYMLINKS=" + wordPressDir + ",/usr/share/javascript",
		"SESSIONGATE_NO_PHP_PATHS=/wp-content/uploads/",
		// nginx's expires max: ten years.
		"SESSIONGATE_STATIC_MAX_AGE=87600h",
		"SESSIONGATE_SESSION_DEV=on",
		"SESSIONGATE_PHP_PREPEND=" + writePrepend(t),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
			t.Logf("php-fpm log:\n%s", fpm.Log())
		}
	})
	c := &wpCompare{t: t, ng: newWPFront("nginx", "http://"+ng.Addrs[0]), gw: newWPFront("gateway", gw.URL), seen: map[string]int{}}
	writeWordPressConfig(t, roots["nginx"], "wp_nginx", sock, c.ng.base)
	writeWordPressConfig(t, roots["gateway"], "wp_gateway", sock, c.gw.base)
	wordPressVisit(t, c)
	rulesAllSeen(t, wpRules, c.seen)
	// WordPress 6.1's install.php warns of two undefined variables on
	// PHP 8.2, whatever the front.
	if l := fpmLogSettled(fpm); strings.Contains(l, "PHP Fatal") {
		t.Errorf("php-fpm's log:\n%s", l)
	}
}

// visitorComment posts a comment as a visitor who is not logged in and
// keeps WordPress's comment cookies.
func visitorComment(t *testing.T, f *wpFront) []wpHop {
	return f.post(t, "/wp-comments-post.php", url.Values{"comment": {"A visitor's comment."}, "author": {"Ana"},
		"email": {"ana@example.com"}, "url": {""}, "wp-comment-cookies-consent": {"yes"},
		"comment_post_ID": {f.vals["comment_post"]}, "comment_parent": {"0"}, "submit": {"Post Comment"}})
}

func wordPressVisit(t *testing.T, c *wpCompare) {
	const password = "gateway-test-password"
	c.step("before install", func(f *wpFront) []wpHop { return f.get(t, "/") })
	c.step("install", func(f *wpFront) []wpHop {
		hops := f.post(t, "/wp-admin/install.php?step=2", url.Values{
			"weblog_title": {"Gateway Test"}, "user_name": {"admin"}, "admin_password": {password},
			"admin_password2": {password}, "pw_weak": {"on"}, "admin_email": {"admin@example.com"},
			"blog_public": {"1"}, "language": {""}, "Submit": {"Install WordPress"},
		})
		finalBody(t, f, hops, 200)
		return hops
	})
	c.step("login form", func(f *wpFront) []wpHop {
		hops := f.get(t, "/wp-login.php")
		finalBody(t, f, hops, 200)
		return hops
	})
	c.step("log in", func(f *wpFront) []wpHop {
		hops := f.post(t, "/wp-login.php", url.Values{"log": {"admin"}, "pwd": {password}, "wp-submit": {"Log In"},
			"redirect_to": {f.base + "/wp-admin/"}, "testcookie": {"1"}})
		page := finalBody(t, f, hops, 200)
		f.vals["logout"] = pageValue(t, f, "logout link", page, `href="[^"]*(/wp-login\.php\?action=logout[^"]*)"`)
		f.vals["logout"] = html.UnescapeString(f.vals["logout"])
		f.vals["heartbeat"] = pageValue(t, f, "heartbeat nonce", page, `heartbeatSettings = \{"nonce":"([0-9a-f]+)"`)
		return hops
	})
	c.step("wp-admin without slash", func(f *wpFront) []wpHop { return f.get(t, "/wp-admin") })
	c.step("new post page", func(f *wpFront) []wpHop {
		hops := f.get(t, "/wp-admin/post-new.php")
		page := finalBody(t, f, hops, 200)
		f.vals["rest"] = pageValue(t, f, "REST nonce", page, `wpApiSettings = \{[^}]*"nonce":"([0-9a-f]+)"`)
		return hops
	})
	rest := func(f *wpFront, target string, v any) []wpHop {
		b, _ := json.Marshal(v)
		req, _ := http.NewRequest("POST", f.base+target, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-WP-Nonce", f.vals["rest"])
		return f.do(t, req)
	}
	c.step("publish a post (REST, plain permalinks)", func(f *wpFront) []wpHop {
		hops := rest(f, "/?rest_route=/wp/v2/posts", map[string]string{"title": "Hello gateway", "status": "publish", "date": "2026-01-02T10:00:00",
			"content": "<p>A post published through the front.</p>"})
		page := finalBody(t, f, hops, 201)
		f.vals["post"] = pageValue(t, f, "post id", page, `"id":(\d+)`)
		return hops
	})
	c.step("publish a protected post", func(f *wpFront) []wpHop {
		hops := rest(f, "/?rest_route=/wp/v2/posts", map[string]string{"title": "Members only", "status": "publish",
			"content": "<p>The secret content.</p>", "password": "letmein", "slug": "members-only", "date": "2026-01-03T10:00:00"})
		finalBody(t, f, hops, 201)
		return hops
	})
	c.step("publish a post with a non-ASCII slug", func(f *wpFront) []wpHop {
		hops := rest(f, "/?rest_route=/wp/v2/posts", map[string]string{"title": "Привет gateway", "status": "publish",
			"content": "<p>Accents.</p>", "date": "2026-01-01T10:00:00"})
		f.vals["cafe"] = pageValue(t, f, "post id", finalBody(t, f, hops, 201), `"id":(\d+)`)
		return hops
	})
	c.step("permalinks page", func(f *wpFront) []wpHop {
		hops := f.get(t, "/wp-admin/options-permalink.php")
		page := finalBody(t, f, hops, 200)
		f.vals["permalink"] = pageValue(t, f, "permalink nonce", page, `name="_wpnonce" value="([0-9a-f]+)"`)
		return hops
	})
	c.step("switch permalinks to post name", func(f *wpFront) []wpHop {
		hops := f.post(t, "/wp-admin/options-permalink.php", url.Values{
			"_wpnonce": {f.vals["permalink"]}, "_wp_http_referer": {"/wp-admin/options-permalink.php"},
			"selection": {"/%postname%/"}, "permalink_structure": {"/%postname%/"}, "category_base": {""},
			"tag_base": {""}, "submit": {"Save Changes"},
		}, "Referer: "+f.base+"/wp-admin/options-permalink.php")
		page := finalBody(t, f, hops, 200)
		if !strings.Contains(page, `value="/%postname%/" checked`) && !strings.Contains(page, `value="/%postname%/"  checked`) {
			pageValue(t, f, "post name structure chosen", page, `(id="permalink-input-post-name"[^>]*checked)`)
		}
		return hops
	})
	c.step("post by its pretty URL", func(f *wpFront) []wpHop {
		hops := f.get(t, "/hello-gateway/")
		page := finalBody(t, f, hops, 200)
		f.vals["comment_post"] = pageValue(t, f, "comment form", page, `name=['"]comment_post_ID['"] value=['"](\d+)`)
		return hops
	})
	c.step("post without its trailing slash", func(f *wpFront) []wpHop { return f.get(t, "/hello-gateway") })
	c.step("post by ?p=", func(f *wpFront) []wpHop { return f.get(t, "/?p="+f.vals["post"]) })
	c.step("upload page", func(f *wpFront) []wpHop {
		hops := f.get(t, "/wp-admin/media-new.php")
		page := finalBody(t, f, hops, 200)
		f.vals["upload"] = pageValue(t, f, "upload nonce", page, `"_wpnonce":"([0-9a-f]+)"`)
		return hops
	})
	img := testPNG(t)
	c.step("upload an image (async-upload.php)", func(f *wpFront) []wpHop {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for k, v := range map[string]string{"name": "pixels.png", "action": "upload-attachment", "_wpnonce": f.vals["upload"]} {
			mw.WriteField(k, v)
		}
		fw, _ := mw.CreateFormFile("async-upload", "pixels.png")
		fw.Write(img)
		mw.Close()
		req, _ := http.NewRequest("POST", f.base+"/wp-admin/async-upload.php", &b)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		hops := f.do(t, req)
		page := finalBody(t, f, hops, 200)
		u := pageValue(t, f, "uploaded URL", page, `"url":"([^"]+pixels[^"]*\.png)"`)
		f.vals["image"] = strings.TrimPrefix(strings.ReplaceAll(u, `\/`, "/"), f.base)
		return hops
	})
	c.step("the image", func(f *wpFront) []wpHop {
		hops := f.get(t, f.vals["image"])
		if body := finalBody(t, f, hops, 200); body != string(img) {
			t.Errorf("%s: the image came back as %d bytes, uploaded %d", f.name, len(body), len(img))
		}
		f.vals["image_lm"] = hops[0].res.Header.Get("Last-Modified")
		return hops
	})
	c.step("the image, a range", func(f *wpFront) []wpHop { return f.get(t, f.vals["image"], "Range: bytes=0-9") })
	c.step("the image, If-Modified-Since", func(f *wpFront) []wpHop {
		return f.get(t, f.vals["image"], "If-Modified-Since: "+f.vals["image_lm"])
	})
	c.step("an upload over 1 MB", func(f *wpFront) []wpHop {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("name", "big.png")
		mw.WriteField("action", "upload-attachment")
		mw.WriteField("_wpnonce", f.vals["upload"])
		fw, _ := mw.CreateFormFile("async-upload", "big.png")
		fw.Write(bytes.Repeat(img, 1<<20/len(img)+1))
		mw.Close()
		req, _ := http.NewRequest("POST", f.base+"/wp-admin/async-upload.php", &b)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return f.do(t, req)
	})
	c.step("a script under uploads", func(f *wpFront) []wpHop { return f.get(t, "/wp-content/uploads/shell.php") })
	c.step("comment as a visitor", func(f *wpFront) []wpHop {
		hops := visitorComment(t, f.visitor())
		finalBody(t, f, hops, 200)
		return hops
	})
	c.step("comment", func(f *wpFront) []wpHop {
		hops := f.post(t, "/wp-comments-post.php", url.Values{"comment": {"A comment through the front."},
			"comment_post_ID": {f.vals["comment_post"]}, "comment_parent": {"0"}, "submit": {"Post Comment"}})
		finalBody(t, f, hops, 200)
		return hops
	})
	c.step("search", func(f *wpFront) []wpHop { return f.get(t, "/?s=gateway") })
	c.step("search, non-ASCII", func(f *wpFront) []wpHop { return f.get(t, "/?s=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82") })
	c.step("search, pretty", func(f *wpFront) []wpHop { return f.get(t, "/search/gateway/") })
	// WordPress keeps a Cyrillic slug percent-encoded, in lower case.
	c.step("post with a non-ASCII slug", func(f *wpFront) []wpHop {
		hops := f.get(t, "/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82-gateway/")
		finalBody(t, f, hops, 200)
		return hops
	})
	c.step("post with a non-ASCII slug, lower-case escapes", func(f *wpFront) []wpHop {
		return f.get(t, "/%d0%bf%d1%80%d0%b8%d0%b2%d0%b5%d1%82-gateway/")
	})
	c.step("post under /index.php/", func(f *wpFront) []wpHop { return f.get(t, "/index.php/hello-gateway/") })
	c.step("category", func(f *wpFront) []wpHop { return f.get(t, "/category/uncategorized/") })
	c.step("second page", func(f *wpFront) []wpHop { return f.get(t, "/page/2/") })
	c.step("HEAD of the home page", func(f *wpFront) []wpHop {
		req, _ := http.NewRequest("HEAD", f.base+"/", nil)
		return f.do(t, req)
	})
	c.step("admin scripts (load-scripts.php)", func(f *wpFront) []wpHop {
		hops := f.get(t, "/wp-admin/load-scripts.php?c=0&load%5Bchunk_0%5D=jquery-core,jquery-migrate,utils&ver=6.1.9")
		f.vals["scripts_etag"] = hops[0].res.Header.Get("ETag")
		return hops
	})
	c.known("admin scripts, revalidated", "the gateway compressed them and dropped WordPress's unquoted ETag: the browser has no tag to send, and gets the scripts again (compressed)",
		"GET /wp-admin/load-scripts.php?c=0&load%5Bchunk_0%5D=jquery-core,jquery-migrate,utils&ver=6.1.9 → 304",
		"GET /wp-admin/load-scripts.php?c=0&load%5Bchunk_0%5D=jquery-core,jquery-migrate,utils&ver=6.1.9 → 200",
		func(f *wpFront) []wpHop {
			var h []string
			if tag := f.vals["scripts_etag"]; tag != "" {
				h = append(h, "If-None-Match: "+tag)
			}
			return f.get(t, "/wp-admin/load-scripts.php?c=0&load%5Bchunk_0%5D=jquery-core,jquery-migrate,utils&ver=6.1.9", h...)
		})
	c.step("admin styles (load-styles.php)", func(f *wpFront) []wpHop {
		return f.get(t, "/wp-admin/load-styles.php?c=0&dir=ltr&load%5Bchunk_0%5D=dashicons,admin-bar,common&ver=6.1.9")
	})
	c.step("a versioned stylesheet (?ver=)", func(f *wpFront) []wpHop {
		return f.get(t, "/wp-includes/css/dashicons.min.css?ver=6.1.9")
	})
	c.step("a page that does not exist", func(f *wpFront) []wpHop { return f.get(t, "/no-such-page/") })
	c.step("a script that does not exist", func(f *wpFront) []wpHop { return f.get(t, "/no-such-script.php") })
	c.step("feed", func(f *wpFront) []wpHop {
		hops := f.get(t, "/feed/")
		finalBody(t, f, hops, 200)
		f.vals["feed_etag"] = hops[0].res.Header.Get("ETag")
		f.vals["feed_lm"] = hops[0].res.Header.Get("Last-Modified")
		return hops
	})
	c.step("feed, If-None-Match", func(f *wpFront) []wpHop { return f.get(t, "/feed/", "If-None-Match: "+f.vals["feed_etag"]) })
	c.step("feed, If-Modified-Since", func(f *wpFront) []wpHop {
		return f.get(t, "/feed/", "If-Modified-Since: "+f.vals["feed_lm"])
	})
	c.step("comments feed", func(f *wpFront) []wpHop { return f.get(t, "/comments/feed/") })
	c.step("/wp-json/", func(f *wpFront) []wpHop { return f.get(t, "/wp-json/") })
	c.step("/wp-json/wp/v2/posts", func(f *wpFront) []wpHop { return f.get(t, "/wp-json/wp/v2/posts") })
	c.step("/wp-json without its slash", func(f *wpFront) []wpHop { return f.get(t, "/wp-json") })
	c.step("REST preflight (OPTIONS)", func(f *wpFront) []wpHop {
		req, _ := http.NewRequest("OPTIONS", f.base+"/wp-json/wp/v2/posts", nil)
		req.Header.Set("Origin", "http://other.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		return f.do(t, req)
	})
	c.step("REST update (PUT)", func(f *wpFront) []wpHop {
		req, _ := http.NewRequest("PUT", f.base+"/wp-json/wp/v2/posts/"+f.vals["post"], strings.NewReader(`{"excerpt":"Updated through the front."}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-WP-Nonce", f.vals["rest"])
		hops := f.do(t, req)
		finalBody(t, f, hops, 200)
		return hops
	})
	c.step("REST trash (DELETE)", func(f *wpFront) []wpHop {
		req, _ := http.NewRequest("DELETE", f.base+"/wp-json/wp/v2/posts/"+f.vals["cafe"], nil)
		req.Header.Set("X-WP-Nonce", f.vals["rest"])
		hops := f.do(t, req)
		finalBody(t, f, hops, 200)
		return hops
	})
	c.step("plain feed URL", func(f *wpFront) []wpHop { return f.get(t, "/?feed=rss2") })
	c.step("author by ID", func(f *wpFront) []wpHop { return f.get(t, "/?author=1") })
	c.step("?rest_route=/", func(f *wpFront) []wpHop { return f.get(t, "/?rest_route=/") })
	c.step("admin-ajax.php without action", func(f *wpFront) []wpHop { return f.get(t, "/wp-admin/admin-ajax.php") })
	c.step("admin-ajax.php heartbeat", func(f *wpFront) []wpHop {
		return f.post(t, "/wp-admin/admin-ajax.php", url.Values{"action": {"heartbeat"}, "_nonce": {f.vals["heartbeat"]},
			"screen_id": {"dashboard"}, "has_focus": {"false"}, "interval": {"60"}})
	})
	c.step("wp-cron.php", func(f *wpFront) []wpHop { return f.get(t, "/wp-cron.php?doing_wp_cron") })
	c.step("xmlrpc.php GET", func(f *wpFront) []wpHop { return f.get(t, "/xmlrpc.php") })
	c.step("xmlrpc.php listMethods", func(f *wpFront) []wpHop {
		req, _ := http.NewRequest("POST", f.base+"/xmlrpc.php", strings.NewReader(
			`<?xml version="1.0"?><methodCall><methodName>system.listMethods</methodName><params></params></methodCall>`))
		req.Header.Set("Content-Type", "text/xml")
		return f.do(t, req)
	})
	c.step("robots.txt", func(f *wpFront) []wpHop { return f.get(t, "/robots.txt") })
	c.step("wp-sitemap.xml", func(f *wpFront) []wpHop { return f.get(t, "/wp-sitemap.xml") })
	c.step("wp-sitemap-posts-post-1.xml", func(f *wpFront) []wpHop { return f.get(t, "/wp-sitemap-posts-post-1.xml") })
	c.step("theme stylesheet", func(f *wpFront) []wpHop { return f.get(t, "/wp-content/themes/twentytwentyone/style.css") })
	c.step("a script of wp-includes (linked to /usr/share/javascript)", func(f *wpFront) []wpHop {
		return f.get(t, "/wp-includes/js/underscore.min.js")
	})
	c.known("favicon.ico", "WordPress's guide has location = /favicon.ico, which serves a file or 404; the gateway hands a missing file to index.php, and WordPress redirects to its logo",
		"GET /favicon.ico → 404", "GET /favicon.ico → 302, GET /wp-includes/images/w-logo-blue-white-bg.png → 200",
		func(f *wpFront) []wpHop { return f.get(t, "/favicon.ico") })
	c.step("readme.html", func(f *wpFront) []wpHop { return f.get(t, "/readme.html") })
	c.known("wp-includes directory", "a directory without an index goes to the front controller (README, try_files), where nginx answers 403",
		"GET /wp-includes/ → 403", "GET /wp-includes/ → 404",
		func(f *wpFront) []wpHop { return f.get(t, "/wp-includes/") })
	c.step("log out", func(f *wpFront) []wpHop {
		hops := f.get(t, f.vals["logout"])
		finalBody(t, f, hops, 200)
		return hops
	})
	c.step("log in, wrong password", func(f *wpFront) []wpHop {
		return f.post(t, "/wp-login.php", url.Values{"log": {"admin"}, "pwd": {"wrong"}, "wp-submit": {"Log In"}, "testcookie": {"1"}})
	})
	c.step("the visitor's comment again (WordPress refuses a duplicate)", func(f *wpFront) []wpHop {
		return visitorComment(t, f)
	})
	c.step("protected post", func(f *wpFront) []wpHop {
		hops := f.get(t, "/members-only/")
		if strings.Contains(finalBody(t, f, hops, 200), "secret content") {
			t.Errorf("%s: the protected post showed before its password", f.name)
		}
		return hops
	})
	c.step("protected post's password", func(f *wpFront) []wpHop {
		hops := f.post(t, "/wp-login.php?action=postpass", url.Values{"post_password": {"letmein"}, "Submit": {"Enter"}},
			"Referer: "+f.base+"/members-only/")
		if !strings.Contains(finalBody(t, f, hops, 200), "secret content") {
			t.Errorf("%s: the protected post did not open with its password", f.name)
		}
		return hops
	})
	c.step("dashboard after logging out", func(f *wpFront) []wpHop { return f.get(t, "/wp-admin/") })
}

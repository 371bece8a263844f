package integration

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestRestrictedPaths: SESSIONGATE_RESTRICTED_PATHS keeps phpMyAdmin-style
// directories to the office network and xmlrpc.php to nobody, through the
// real php-fpm and gunicorn: a client outside the list gets 403 and no
// script runs (a file counts the runs); inside, the page. The client is the
// one X-Forwarded-For names, the test client being a trusted proxy.
func TestRestrictedPaths(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t,
		"SESSIONGATE_TRUSTED_PROXIES=127.0.0.1",
		"SESSIONGATE_RESTRICTED_PATHS=/pma/ 10.0.0.0/8,/xmlrpc.php none,/accounts/ 10.0.0.0/8")
	gw := s.gws[0]
	ran := filepath.Join(harness.PHPTempDir(t), "ran")
	src := `<?php file_put_contents('` + ran + `', $_SERVER['SCRIPT_NAME'] . "\n", FILE_APPEND); echo 'ran ', $_SERVER['REMOTE_ADDR'];`
	os.MkdirAll(filepath.Join(s.fpm.DocRoot, "pma"), 0o755)
	for _, name := range []string{"pma/index.php", "xmlrpc.php"} {
		if err := os.WriteFile(filepath.Join(s.fpm.DocRoot, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runs := func() string { b, _ := os.ReadFile(ran); return string(b) }
	for _, tc := range []struct {
		client, target string
		want           int
	}{
		{"198.51.100.7", "/pma/", 403},
		{"198.51.100.7", "/pma/index.php/x", 403},
		{"198.51.100.7", "/accounts/api/whoami/", 403},
		{"10.1.2.3", "/xmlrpc.php", 403},
		{"10.1.2.3", "/xmlrpc.php/x", 403},
	} {
		res, body, _ := gw.get(t, tc.target, "", "X-Forwarded-For", tc.client)
		if res.StatusCode != tc.want {
			t.Errorf("%s %s: %d %q, want %d", tc.client, tc.target, res.StatusCode, body, tc.want)
		}
	}
	if r := runs(); r != "" {
		t.Errorf("scripts ran for refused requests: %q", r)
	}
	if res, body, _ := gw.get(t, "/pma/", "", "X-Forwarded-For", "10.1.2.3"); res.StatusCode != 200 || body != "ran 10.1.2.3" {
		t.Errorf("from the office: %d %q", res.StatusCode, body)
	}
	if res, body, _ := gw.get(t, "/accounts/api/whoami/", "", "X-Forwarded-For", "10.1.2.3"); res.StatusCode != 200 {
		t.Errorf("Django from the office: %d %q", res.StatusCode, body)
	}
	if r := runs(); r != "/pma/index.php\n" {
		t.Errorf("runs %q, want the one allowed", r)
	}
}

// TestRestrictedPathsSymfonyRouting: a front controller that routes like
// Laravel and Symfony (HttpFoundation's getPathInfo, from REQUEST_URI,
// dot segments left in) cannot be reached in its admin area from outside,
// neither through dot segments nor through /index.php/admin/...
func TestRestrictedPathsSymfonyRouting(t *testing.T) {
	t.Parallel()
	// Laravel: Route::get('/admin/{any}', ...)->where('any', '.*')
	g := startSymfonyRouted(t, `if (preg_match('#^/admin(/|$)#', $path)) { echo 'ADMIN AREA ', $path; exit; }`, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8"}
	})
	for _, target := range []string{"/admin/users", "/admin", "/admin/%2e%2e/users", "/admin/users/%2e%2e/%2e%2e/delete-all", "/index.php/admin/users", "/index.php/admin"} {
		if res, body := g.get(t, target); res.StatusCode != 403 || strings.Contains(body, "ADMIN") {
			t.Errorf("%s from outside: %d %q, want 403", target, res.StatusCode, body)
		}
	}
	if res, body := g.get(t, "/blog/post-1"); res.StatusCode != 200 || body != "public /blog/post-1" {
		t.Errorf("a public page: %d %q", res.StatusCode, body)
	}
	// An absolute target without "//host": Symfony's parse_url reads
	// REQUEST_URI "http:admin/users" as /admin/users.
	for _, target := range []string{"http:admin/users", "http:/admin/users", "https:admin"} {
		out, _ := raw(t, strings.TrimPrefix(g.URL, "http://"), "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(out, "HTTP/1.1 400 ") || strings.Contains(out, "ADMIN") {
			t.Errorf("GET %s from outside: %.200q, want 400", target, out)
		}
	}
}

// startSymfonyRouted runs a front controller that routes as Laravel and
// Symfony do, on HttpFoundation's path info decoded ($path), with route
// (PHP that answers the routes a test needs), else "public " and the path,
// behind a gateway set up by mod.
func startSymfonyRouted(t *testing.T, route string, mod func(*config.Config)) *gw {
	t.Helper()
	harness.Require(t, "php-fpm8.2")
	autoload := requireSymfony(t)
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"index.php": `<?php
require '` + autoload + `';
$path = rawurldecode(Symfony\Component\HttpFoundation\Request::createFromGlobals()->getPathInfo());
` + route + `
echo 'public ', $path;`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	return startGWOn(t, fpm, root, mod)
}

// TestRestrictedPathsYiiRouting: Yii 2's Request::resolveRequestUri (and
// Symfony's and Zend Framework's before CVE-2018-14773) takes the URL from
// an X-Rewrite-Url or X-Original-Url header, which IIS's rewrite modules
// set, before REQUEST_URI. A client's own copy reaching PHP routed any URL the gateway
// let in to the admin area it keeps out: those headers never reach the
// app, as the X-Sendfile-Type nginx configurations hide.
func TestRestrictedPathsYiiRouting(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"index.php": `<?php
// yii\web\Request::resolveRequestUri, then the route from its path.
$uri = $_SERVER['HTTP_X_REWRITE_URL'] ?? $_SERVER['HTTP_X_ORIGINAL_URL'] ?? $_SERVER['REQUEST_URI'];
$path = parse_url($uri, PHP_URL_PATH);
if (preg_match('#^/admin(/|$)#', $path)) { echo 'ADMIN AREA ', $path; exit; }
echo 'public ', $path;`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8"}
	})
	for _, hdr := range []string{"X-Rewrite-Url", "X-Original-Url", "x-original-url"} {
		if res, body := g.get(t, "/blog/post-1", hdr, "/admin/users"); res.StatusCode != 200 || body != "public /blog/post-1" {
			t.Errorf("%s: /admin/users from outside: %d %q, want the public page", hdr, res.StatusCode, body)
		}
	}
	// parse_url takes what follows a leading "//" for a host: it reads
	// //evil/admin/users as /admin/users, where the gateway's path, its
	// slashes merged, is /evil/admin/users.
	// (Sent raw: net/http's client would send the absolute form.)
	get := func(target string) string {
		out, _ := raw(t, strings.TrimPrefix(g.URL, "http://"), "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		return out
	}
	for _, target := range []string{"//evil/admin/users", "//evil:80/admin", "//u@evil/%61dmin/x", "//evil/blog/../admin/users"} {
		if out := get(target); !strings.HasPrefix(out, "HTTP/1.1 403 ") || strings.Contains(out, "ADMIN") {
			t.Errorf("%s from outside: %.200q, want 403", target, out)
		}
	}
	if out := get("//evil/blog/post-1"); !strings.HasPrefix(out, "HTTP/1.1 200 ") || !strings.HasSuffix(out, "public /blog/post-1") {
		t.Errorf("//evil/blog/post-1: %.300q, want the public page", out)
	}
}

// TestRestrictedPathsCodeIgniterRouting: CodeIgniter (3 and 4, in its
// default REQUEST_URI mode) takes a query string that starts with "/" as
// the route when the path names nothing after the front controller, for
// servers that pass the route in the query (try_files ... /index.php?$uri):
// /?/admin/users and /index.php?/admin/users are its /admin/users. Such a
// query counts like the URL for the access rules, as the path after a
// script does.
func TestRestrictedPathsCodeIgniterRouting(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"index.php": `<?php
// CodeIgniter 3's CI_URI::_parse_request_uri, shortened.
$u = parse_url('http://dummy' . $_SERVER['REQUEST_URI']);
$query = $u['query'] ?? ''; $uri = $u['path'] ?? '';
if (strpos($uri, $_SERVER['SCRIPT_NAME']) === 0) { $uri = substr($uri, strlen($_SERVER['SCRIPT_NAME'])); }
if (trim($uri, '/') === '' && strncmp($query, '/', 1) === 0) { $uri = explode('?', $query, 2)[0]; }
$segs = array_values(array_filter(explode('/', $uri), fn($s) => $s !== '' && $s !== '..'));
if (($segs[0] ?? '') === 'admin') { echo 'ADMIN AREA ', implode('/', $segs); exit; }
echo 'public ', implode('/', $segs);`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8"}
	})
	for _, target := range []string{"/?/admin/users", "/index.php?/admin/users", "/index.php/?/admin/users", "/?/admin", "/?/../admin/users", "/?/%61dmin/users", "/?//admin/users?x=1"} {
		if res, body := g.get(t, target); res.StatusCode != 403 || strings.Contains(body, "ADMIN") {
			t.Errorf("%s from outside: %d %q, want 403", target, res.StatusCode, body)
		}
	}
	for target, want := range map[string]string{"/?/blog/post-1": "public blog/post-1", "/blog?x=/admin/": "public blog"} {
		if res, body := g.get(t, target); res.StatusCode != 200 || body != want {
			t.Errorf("%s: %d %q, want 200 %q", target, res.StatusCode, body, want)
		}
	}
}

// TestRestrictedPathsWordPressRestRoute: WordPress answers
// ?rest_route=/wp/v2/users on any URL its index.php serves as it answers
// /wp-json/wp/v2/users (rest_api_loaded() reads the query var), so the usual
// block of its user list, an entry on /wp-json/wp/v2/users/, must hold
// for both, through the real php-fpm and PHP's own reading of the query.
func TestRestrictedPathsWordPressRestRoute(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"index.php": `<?php
// WordPress's routing, shortened: the query var first, then the pretty URL.
$route = $_GET['rest_route'] ?? null;
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($route === null && strncmp($path, '/wp-json/', 9) === 0) { $route = substr($path, 8); }
if ($route !== null && preg_match('#^/wp/v2/users(/|$)#i', '/' . ltrim($route, '/'))) { echo 'USER LIST'; exit; }
echo 'page';`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	for _, target := range []string{"/wp-json/wp/v2/users", "/?rest_route=/wp/v2/users", "/index.php?rest_route=/wp/v2/users/1",
		"/hello-world/?rest_route=/wp/v2/users", "/?rest.route=/wp/v2/users", "/?rest_route=%2Fwp%2Fv2%2Fusers", "/?rest_route=wp/v2/users"} {
		if res, body := g.get(t, target); res.StatusCode != 403 || strings.Contains(body, "USER LIST") {
			t.Errorf("%s from outside: %d %q, want 403", target, res.StatusCode, body)
		}
	}
	for _, target := range []string{"/?rest_route=/wp/v2/posts", "/hello-world/"} {
		if res, body := g.get(t, target); res.StatusCode != 200 || body != "page" {
			t.Errorf("%s: %d %q, want 200 \"page\"", target, res.StatusCode, body)
		}
	}
}

// wpRESTIndexPHP routes as WordPress does for its REST API, shortened from
// WP::parse_request, WP_MatchesMapRegex, rest_api_loaded and
// WP_REST_Server::match_request_to_handler: the permalink is PATH_INFO
// when there is one, else REQUEST_URI's path, less the home directory
// (the script's); the rewrite rule
// ^wp-json/(.*)? is tried on it as sent, then urldecode()d, its capture
// going through urlencode and parse_str into the rest_route query var,
// which $_GET's own wins over, and $_POST's over both (it is a public
// query var; a $_GET and a $_POST one that differ are refused); untrailingslashit trims slashes and
// backslashes; a route matches its '@^...$@i' regex, case-insensitive and
// with PCRE's "$" matching before a final newline.
const wpRESTIndexPHP = `<?php
$home = trim(dirname($_SERVER['SCRIPT_NAME']), '/');
$uri = trim(explode('?', $_SERVER['REQUEST_URI'])[0], '/');
$pi = trim(str_replace('%', '%25', $_SERVER['PATH_INFO'] ?? ''), '/');
if ($home !== '') {
    $uri = trim(preg_replace('|^' . preg_quote($home, '|') . '|i', '', $uri), '/');
    $pi = trim(preg_replace('|^' . preg_quote($home, '|') . '|i', '', $pi), '/');
}
$req = ($pi !== '' && !preg_match('|^.*index.php$|', $pi)) ? $pi : ($uri === 'index.php' ? '' : $uri);
$perma = [];
if ($req !== '') {
    foreach ([$req, urldecode($req)] as $try) {
        if (preg_match('#^wp-json/?$#', $try)) { $perma['rest_route'] = '/'; break; }
        if (preg_match('#^wp-json/(.*)?#', $try, $m)) { parse_str('rest_route=/' . urlencode($m[1] ?? ''), $perma); break; }
    }
}
if (isset($_GET['rest_route'], $_POST['rest_route']) && $_GET['rest_route'] !== $_POST['rest_route']) { http_response_code(400); echo 'variable mismatch'; exit; }
$route = $_POST['rest_route'] ?? $_GET['rest_route'] ?? $perma['rest_route'] ?? '';
if ($route === '') { echo 'page'; exit; }
$route = rtrim($route, '/\\');
if ($route === '') { $route = '/'; }
$routes = ['/wp/v2/users' => 'USER LIST', '/wp/v2/users/(?P<id>[\d]+)' => 'USER', '/wp/v2/posts' => 'posts', '/jwt-auth/v1/token' => 'token'];
foreach ($routes as $re => $answer) {
    if (preg_match('@^' . $re . '$@i', $route)) { echo $answer; exit; }
}
echo 'no route ', json_encode($route);`

// TestRestrictedPathsWordPressRestServer: WordPress's REST server matches
// routes case-insensitively, trims trailing slashes and backslashes, lets
// PCRE's "$" match before a final newline, and captures a decoded
// permalink only up to its first newline; PHP reads "rest[route",
// " rest_route" and "rest_route\x00x" as $_GET['rest_route']. Each of
// those spellings of /wp-json/wp/v2/users serves the user list and must
// meet the entry that keeps it to the office, through the real php-fpm.
func TestRestrictedPathsWordPressRestServer(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{"index.php": wpRESTIndexPHP})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	for _, target := range []string{
		"/wp-json/wp/v2/users", "/?rest_route=/wp/v2/users", "/index.php/wp-json/wp/v2/users",
		"/wp-json/WP/v2/users", "/wp-json/wp/v2/Users/1", "/?rest_route=/WP/V2/USERS", "/index.php/wp-json/wp/v2/USERS",
		"/?rest_route=/wp/v2/users%5C", "/?rest_route=/wp/v2/users%0A", "/index.php/wp-json/wp/v2/users%5C",
		"/wp%2Djson/wp/v2/users%5C", "/wp%2Djson/wp/v2/users%0A", "/wp%2Djson/wp/v2/users%0Ax", "/wp%2Djson/wp/v2/users%0A/../../x",
		// Names PHP reads as rest_route.
		"/?rest[route=/wp/v2/users", "/?%20rest_route=/wp/v2/users", "/?+rest_route=/wp/v2/users", "/?rest_route%00x=/wp/v2/users",
		"/?rest%5Froute=/wp/v2/users", "/?rest_route%00%zz=/wp/v2/users",
		// PHP reads the first max_input_vars (1000) variables of a query:
		// here it keeps the first rest_route, and every one counts.
		"/?rest_route=/wp/v2/users" + strings.Repeat("&a", 1000) + "&rest_route=/wp/v2/posts",
	} {
		if res, body := g.get(t, target); res.StatusCode != 403 || strings.Contains(body, "USER") {
			t.Errorf("%s from outside: %d %q, want 403", target, res.StatusCode, body)
		}
	}
	// WordPress's other scripts that run wp() (wp-trackback.php,
	// wp-signup.php and wp-activate.php through wp-blog-header.php)
	// answer ?rest_route= too.
	writeTree(t, root, map[string]string{
		"wp-blog-header.php": "<?php require __DIR__ . '/index.php';",
		"wp-trackback.php":   "<?php require __DIR__ . '/wp-blog-header.php';",
	})
	for _, target := range []string{"/wp-trackback.php?rest_route=/wp/v2/users", "/wp-blog-header.php?rest_route=/wp/v2/users"} {
		if res, body := g.get(t, target); res.StatusCode != 403 || strings.Contains(body, "USER") {
			t.Errorf("%s from outside: %d %q, want 403", target, res.StatusCode, body)
		}
	}
	for target, want := range map[string]string{"/wp-json/wp/v2/posts": "posts", "/?rest_route=/WP/v2/Posts": "posts", "/hello-world/": "page"} {
		if res, body := g.get(t, target); res.StatusCode != 200 || body != want {
			t.Errorf("%s: %d %q, want 200 %q", target, res.StatusCode, body, want)
		}
	}
}

// TestRestrictedPathsWordPressRestRouteInTheBody: WordPress reads its
// public query vars from $_POST before $_GET, so a form POST to any URL
// its index.php serves, with rest_route in the body (urlencoded or
// multipart, small or large), is that REST route (and the REST server
// takes X-HTTP-Method-Override: GET for a GET): the entry on
// /wp-json/wp/v2/users/ must keep it out too, through the real php-fpm.
func TestRestrictedPathsWordPressRestRouteInTheBody(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{"index.php": wpRESTIndexPHP})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	post := func(target, ctype, body string) (int, string) {
		t.Helper()
		res, err := http.Post(g.URL+target, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	multipart := func(name, value string) (string, string) {
		return "multipart/form-data; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n--XyZ--\r\n"
	}
	pad := "pad=" + strings.Repeat("x", 100<<10) + "&"
	type req struct{ target, ctype, body string }
	mt, mb := multipart("rest_route", "/wp/v2/users")
	mt2, mb2 := multipart("rest[route", `/WP/v2/users\`)
	for _, c := range []req{
		{"/", formType, "rest_route=/wp/v2/users"},
		{"/wp-json/wp/v2/posts", formType, "rest_route=%2Fwp%2Fv2%2Fusers"},
		{"/hello-world/", formType + "; charset=UTF-8", "a=1&rest.route=/wp/v2/users/1"},
		{"/", "Application/X-WWW-Form-Urlencoded", "rest_route=/wp/v2/users"},
		{"/", formType, pad + "rest_route=/wp/v2/users"},
		{"/", formType, strings.Repeat("+", 1000) + "rest_route%00" + strings.Repeat("x", 1000) + "=/wp/v2/users"},
		// PHP drops raw spaces a name starts with too.
		{"/", formType, strings.Repeat(" ", 64) + "rest_route=/wp/v2/users"},
		{"/", mt, mb},
		{"/", mt2, mb2},
		// What PHP's multipart parser reads as a field: a folded header,
		// names unquoted, single-quoted, in capitals, after a ";" in
		// quotes, lines ended with LF alone.
		{"/", mt, "--XyZ\r\nContent-Disposition: form-data;\r\n name=\"rest_route\"\r\n\r\n/wp/v2/users\r\n--XyZ--\r\n"},
		{"/", mt, "--XyZ\r\nContent-Disposition: form-data; name=rest_route\r\n\r\n/wp/v2/users\r\n--XyZ--\r\n"},
		{"/", mt, "--XyZ\r\nContent-Disposition: form-data; name='rest_route'\r\n\r\n/wp/v2/users\r\n--XyZ--\r\n"},
		{"/", mt, "--XyZ\r\nCONTENT-DISPOSITION: form-data; NAME=\"rest_route\"\r\n\r\n/wp/v2/users\r\n--XyZ--\r\n"},
		{"/", mt, "--XyZ\r\nContent-Disposition: form-data; x=\"a;name=zzz\"; name=\"rest_route\"\r\n\r\n/wp/v2/users\r\n--XyZ--\r\n"},
		{"/", "multipart/form-data; BOUNDARY=\"XyZ\"", "--XyZ\nContent-Disposition: form-data; name=\"rest_route\"\n\n/wp/v2/users\n--XyZ--\n"},
		// Among a part's headers, a line that starts like the boundary
		// is a header line for PHP, not the part's end.
		{"/", mt, "--XyZ\r\nContent-Disposition: form-data; name=\"rest_route\"\r\n--XyZjunk\r\n\r\n/wp/v2/users\r\n--XyZ--\r\n"},
		// Of two Content-Disposition headers PHP reads the first.
		{"/", mt, "--XyZ\r\nContent-Disposition: form-data; name=\"rest_route\"\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n/wp/v2/users\r\n--XyZ--\r\n"},
	} {
		if code, body := post(c.target, c.ctype, c.body); code != 403 || strings.Contains(body, "USER") {
			t.Errorf("POST %s (%s) %.60q from outside: %d %q, want 403", c.target, c.ctype, c.body, code, body)
		}
	}
	// PHP reads a header line longer than its 5 KiB buffer in pieces: a
	// Content-Disposition in the middle of a line can start a header of
	// its own, and a piece that ends just before a line's "\n" leaves an
	// empty one that ends the part's headers, so the next line is the
	// value. Whatever the padding, the user list stays out.
	for n := 5100; n < 5130; n++ {
		for _, body := range []string{
			"--XyZ\r\nX-Pad: " + strings.Repeat("a", n) + "Content-Disposition: form-data; name=\"rest_route\"\r\n\r\n/wp/v2/users\r\n--XyZ--\r\n",
			"--XyZ\r\nContent-Disposition: form-data; name=\"rest_route\"\r\nX-Pad: " + strings.Repeat("a", n) + "\r\n/wp/v2/users\r\n--XyZ--\r\n",
			// A long Content-Disposition cut after "rest_route": the rest
			// of the line ("a:b\"") is a header of its own, and the name
			// PHP reads is rest_route.
			"--XyZ\r\nContent-Disposition: form-data; x=" + strings.Repeat("y", n-45) + "; name=\"rest_routea:b\"\r\n\r\n/wp/v2/users\r\n--XyZ--\r\n",
		} {
			if code, out := post("/", mt, body); strings.Contains(out, "USER") {
				t.Errorf("multipart with a %d-byte header line from outside: %d %q, want the user list kept out", n, code, out)
			}
		}
	}
	mt3, mb3 := multipart("comment", "hi")
	for _, c := range []req{{"/", formType, "comment=hi"}, {"/", formType, pad + "comment=hi"}, {"/", mt3, mb3}, {"/", "application/json", `{"rest_route":"/wp/v2/users"}`}} {
		if code, body := post(c.target, c.ctype, c.body); code != 200 || body != "page" {
			t.Errorf("POST %s (%s) %.60q: %d %q, want 200 \"page\"", c.target, c.ctype, c.body, code, body)
		}
	}
}

// TestRestrictedPathsWordPressInADirectory: a WordPress whose home is
// /blog/ (SESSIONGATE_INDEX=blog/index.php) serves its REST API under
// /blog/wp-json/, and ?rest_route= there: an entry on
// /blog/wp-json/wp/v2/users/ keeps out both, through the real php-fpm.
func TestRestrictedPathsWordPressInADirectory(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{"blog/index.php": wpRESTIndexPHP})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.Index = "blog/index.php"
		c.RestrictedPathSpecs = []string{"/blog/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	for _, target := range []string{"/blog/wp-json/wp/v2/users", "/blog/?rest_route=/wp/v2/users", "/blog/index.php?rest_route=/wp/v2/users", "/?rest_route=/wp/v2/users", "/blog/hello-world/?rest_route=/wp/v2/users"} {
		if res, body := g.get(t, target); res.StatusCode != 403 || strings.Contains(body, "USER") {
			t.Errorf("%s from outside: %d %q, want 403", target, res.StatusCode, body)
		}
	}
	res, err := http.Post(g.URL+"/blog/", formType, strings.NewReader("rest_route=/wp/v2/users"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 403 || strings.Contains(string(b), "USER") {
		t.Errorf("POST /blog/ rest_route=/wp/v2/users from outside: %d %q, want 403", res.StatusCode, b)
	}
	for target, want := range map[string]string{"/blog/wp-json/wp/v2/posts": "posts", "/blog/?rest_route=/wp/v2/posts": "posts", "/blog/hello-world/": "page"} {
		if res, body := g.get(t, target); res.StatusCode != 200 || body != want {
			t.Errorf("%s: %d %q, want 200 %q", target, res.StatusCode, body, want)
		}
	}
}

// TestRestrictedPathsCodeIgniter4Routing: CodeIgniter 4 urldecode()s the
// route it takes from the query (URI::filterPath), keeping a "%" that
// starts no escape: /?/%61dmin/users%zz is its /admin/users%zz, under the
// entry on /admin/, through the real php-fpm.
func TestRestrictedPathsCodeIgniter4Routing(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"index.php": `<?php
// CodeIgniter 4's SiteURIFactory and URI::filterPath, shortened.
$u = parse_url('http://dummy' . $_SERVER['REQUEST_URI']);
$query = $u['query'] ?? ''; $uri = $u['path'] ?? '';
if (strpos($uri, $_SERVER['SCRIPT_NAME']) === 0) { $uri = substr($uri, strlen($_SERVER['SCRIPT_NAME'])); }
if (trim($uri, '/') === '' && strncmp($query, '/', 1) === 0) { $uri = explode('?', $query, 2)[0]; }
$uri = urldecode($uri);
if (preg_match('#^/?admin(/|$)#', $uri)) { echo 'ADMIN AREA ', $uri; exit; }
echo 'public ', $uri;`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8"}
	})
	for _, target := range []string{"/?/admin/users", "/?/%61dmin/users%zz", "/index.php?/%61dmin/x%zz"} {
		if res, body := g.get(t, target); res.StatusCode != 403 || strings.Contains(body, "ADMIN") {
			t.Errorf("%s from outside: %d %q, want 403", target, res.StatusCode, body)
		}
	}
	if res, body := g.get(t, "/?/blog%zz"); res.StatusCode != 200 || body != "public /blog%zz" {
		t.Errorf("/?/blog%%zz: %d %q, want the public page", res.StatusCode, body)
	}
}

const caselessDjangoURLs = `
from django.urls import re_path
from django.http import HttpResponse

def admin(request):
    return HttpResponse(b"ADMIN AREA " + request.path.encode())

def public(request):
    return HttpResponse(b"public")

# A case-insensitive pattern, as some sites write for /Admin/ links.
urlpatterns = [re_path(r"(?i)^dj/admin/", admin), re_path(r"^dj/", public)]
`

// TestRestrictedPathsDjangoCaseInsensitivePattern: an entry on /dj/admin/
// in front of a Django whose admin pattern is case-insensitive (re_path
// with (?i)), through the real gunicorn. The gateway's folded reading
// refused /dj/ADMIN/, but Python's re with (?i) also takes dotless ı for i
// (and long ſ for s), which Go's lower-casing leaves: the admin view ran
// for a client outside the entry's network.
func TestRestrictedPathsDjangoCaseInsensitivePattern(t *testing.T) {
	t.Parallel()
	gw := startURLConfDjango(t, caselessDjangoURLs, nil, "SESSIONGATE_RESTRICTED_PATHS=/dj/admin/ 10.0.0.0/8")
	client := &http.Client{}
	// Control: the ASCII spellings are refused.
	for _, target := range []string{"/dj/admin/", "/dj/ADMIN/"} {
		if res, body := getVia(t, client, gw.URL, target); res.StatusCode != 403 {
			t.Fatalf("control %s: %d %q, want 403", target, res.StatusCode, body)
		}
	}
	for _, target := range []string{"/dj/adm%C4%B1n/", "/dj/ADM%C4%B1N/users"} {
		res, body := getVia(t, client, gw.URL, target)
		if res.StatusCode != 403 || strings.Contains(body, "ADMIN AREA") {
			t.Errorf("outsider %s: %d %q, want 403", target, res.StatusCode, body)
		}
	}
}

package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/htpasswd"
)

// TestRestrictedPaths: SESSIONGATE_RESTRICTED_PATHS refuses clients outside
// an entry's list with 403 before PHP, a static file or a mount is reached,
// for the URL and for the script that would run; the most specific entry
// decides; the client is the one trusted proxies name.
func TestRestrictedPaths(t *testing.T) {
	mounted := 0
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{
			"/pma/ 10.0.0.0/8 2001:db8::/32",
			"/pma/public/ 0.0.0.0/0",
			"/xmlrpc.php none",
			"/dir/index.php 10.1.1.1",
			"/admin/ 10.0.0.0/8",
		}
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("192.0.2.100/32")}
	}, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	for name, body := range map[string]string{"pma/index.php": "<?php", "pma/theme.css": "a{}", "pma/public/logo.txt": "logo", "xmlrpc.php": "<?php"} {
		os.MkdirAll(filepath.Dir(filepath.Join(e.root, name)), 0o755)
		os.WriteFile(filepath.Join(e.root, name), []byte(body), 0o644)
	}
	for _, tc := range []struct {
		remote, target string
		hdr            []string
		want           int
	}{
		{"10.2.3.4:1", "/pma/", nil, 200},
		{"10.2.3.4:1", "/pma/theme.css", nil, 200},
		{"[2001:db8::7]:1", "/pma/index.php", nil, 200},
		{"[::ffff:10.2.3.4]:1", "/pma/", nil, 200},
		{"192.0.2.9:1", "/pma/", nil, 403},
		{"192.0.2.9:1", "/pma", nil, 403},
		{"192.0.2.9:1", "/pma/theme.css", nil, 403},
		{"192.0.2.9:1", "/pma/nothing-here", nil, 403},
		{"192.0.2.9:1", "/PMA/../pma/index.php", nil, 403},
		{"192.0.2.9:1", "//pma//index.php", nil, 403},
		{"192.0.2.9:1", "/%70ma/index.php", nil, 403},
		{"192.0.2.9:1", "/pma/public/logo.txt", nil, 200},
		{"10.2.3.4:1", "/xmlrpc.php", nil, 403},
		// The script a URL runs: PATH_INFO, and the index of a directory.
		{"10.2.3.4:1", "/xmlrpc.php/x", nil, 403},
		{"10.2.3.4:1", "/dir/", nil, 403},
		{"10.1.1.1:1", "/dir/", nil, 200},
		// Through a trusted proxy, the client it names; from anyone else,
		// X-Forwarded-For is not believed.
		{"192.0.2.100:1", "/pma/", []string{"X-Forwarded-For", "10.9.9.9"}, 200},
		{"192.0.2.100:1", "/pma/", []string{"X-Forwarded-For", "198.51.100.1"}, 403},
		{"192.0.2.9:1", "/pma/", []string{"X-Forwarded-For", "10.9.9.9"}, 403},
		{"192.0.2.9:1", "/hello.php", nil, 200},
	} {
		r := rawRequest(t, "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = tc.remote
		if tc.hdr != nil {
			r.Header.Set(tc.hdr[0], tc.hdr[1])
		}
		before := e.php.calls()
		w := e.do(r)
		if w.Code != tc.want {
			t.Errorf("%s %s %v: %d, want %d", tc.remote, tc.target, tc.hdr, w.Code, tc.want)
		}
		if tc.want == 403 && e.php.calls() != before {
			t.Errorf("%s %s: PHP ran for a refused request", tc.remote, tc.target)
		}
	}
	r := rawRequest(t, "GET /admin/users/ HTTP/1.1\r\nHost: x\r\n\r\n")
	r.RemoteAddr = "192.0.2.9:1"
	if w := e.do(r); w.Code != 403 || mounted != 0 {
		t.Errorf("Django mount: %d, mounted %d", w.Code, mounted)
	}
	if log := e.lastLog(t); log["status"] != float64(403) || log["error"] != "not let in by SESSIONGATE_RESTRICTED_PATHS /admin/ 10.0.0.0/8" {
		t.Errorf("log line %v, want the 403 and the entry", log)
	}
	r = rawRequest(t, "GET /admin/users/ HTTP/1.1\r\nHost: x\r\n\r\n")
	r.RemoteAddr = "10.0.0.1:1"
	if w := e.do(r); w.Code != 200 || mounted != 1 {
		t.Errorf("Django mount from inside: %d, mounted %d", w.Code, mounted)
	}
}

func restrictedDo(t *testing.T, e *env, remote, target string) int {
	t.Helper()
	r := rawRequest(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
	r.RemoteAddr = remote
	return e.do(r).Code
}

// Apps that route on REQUEST_URI without resolving dot segments read
// /admin/%2e%2e/users as under /admin/: refused, for PHP and for a mount.
func TestRestrictedPathsDotSegments(t *testing.T) {
	var mountedURI []string
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8", "/app/admin/ 10.0.0.0/8"}
	}, WithMount("django", []string{"/app/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mountedURI = append(mountedURI, r.RequestURI)
	})))
	for _, target := range []string{"/admin/%2e%2e/x", "/admin/users/%2E%2E/%2E%2E/x", "/admin/../x", "/index.php/admin/%2e%2e/x", "//admin//..//x",
		"/app/admin/%2e%2e/x", "/app/admin/secret/../../x"} {
		before, mounted := e.php.calls(), len(mountedURI)
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 403 || e.php.calls() != before || len(mountedURI) != mounted {
			t.Errorf("outsider %s: %d, want 403 before PHP or Django", target, code)
		}
	}
	// Inside the list, and paths without dot segments, as before.
	if code := restrictedDo(t, e, "10.0.0.1:1", "/admin/%2e%2e/x"); code != 200 {
		t.Errorf("office /admin/%%2e%%2e/x: %d", code)
	}
	if code := restrictedDo(t, e, "192.0.2.9:1", "/x/%2e%2e/y"); code != 200 {
		t.Errorf("outsider /x/%%2e%%2e/y: %d", code)
	}
}

// Front controllers route on the path after the script:
// /index.php/admin/users is the admin area.
func TestRestrictedPathsFrontControllerPathInfo(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8"}
	})
	for _, target := range []string{"/index.php/admin/users", "/index.php/admin", "/index.php//admin/x"} {
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 403 {
			t.Errorf("outsider %s: %d, want 403", target, code)
		}
	}
	if code := restrictedDo(t, e, "192.0.2.9:1", "/index.php/blog"); code != 200 {
		t.Errorf("outsider /index.php/blog: %d", code)
	}
}

// A broad entry on the front controller does not override the URL's more
// specific one: a staging site kept to the office, with public webhooks.
func TestRestrictedPathsFrontControllerKeepsSpecificRule(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/ 10.0.0.0/8", "/webhooks/ 0.0.0.0/0 ::/0"}
	})
	for remote, want := range map[string]int{"192.0.2.9:1": 200, "10.1.1.1:1": 200} {
		if code := restrictedDo(t, e, remote, "/webhooks/stripe"); code != want {
			t.Errorf("%s /webhooks/stripe: %d, want %d", remote, code, want)
		}
	}
	if code := restrictedDo(t, e, "192.0.2.9:1", "/shop/"); code != 403 {
		t.Errorf("outsider /shop/: %d, want 403", code)
	}
}

// A link-local IPv6 client carries its zone; it matches its prefix.
func TestRestrictedPathsLinkLocalClient(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/pma/ fe80::/10", "/open/ ::/0"}
	})
	for _, dir := range []string{"pma", "open"} {
		os.MkdirAll(filepath.Join(e.root, dir), 0o755)
		os.WriteFile(filepath.Join(e.root, dir, "a.txt"), []byte("a"), 0o644)
		if code := restrictedDo(t, e, "[fe80::1%eth0]:1", "/"+dir+"/a.txt"); code != 200 {
			t.Errorf("[fe80::1%%eth0] /%s/a.txt: %d, want 200", dir, code)
		}
	}
}

// An entry on a directory's static index covers the directory's URL.
func TestRestrictedPathsStaticIndex(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/docs/index.html 10.0.0.0/8"}
	})
	os.MkdirAll(filepath.Join(e.root, "docs"), 0o755)
	os.WriteFile(filepath.Join(e.root, "docs/index.html"), []byte("internal"), 0o644)
	for _, target := range []string{"/docs/index.html", "/docs/"} {
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 403 {
			t.Errorf("outsider %s: %d, want 403", target, code)
		}
	}
	if code := restrictedDo(t, e, "10.0.0.1:1", "/docs/"); code != 200 {
		t.Errorf("office /docs/: %d", code)
	}
}

// basicAuthFile writes a password file with bo's password "secret"
// ($apr1$, htpasswd's default) and returns its path.
func basicAuthFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte("bo:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// keptOutEnv is a site with /private/data.txt behind a password
// (basicAuthFile's bo) and /office/data.txt kept to 10.0.0.0/8, for the
// tests of X-Accel-Redirects into them.
func keptOutEnv(t *testing.T) *env {
	t.Helper()
	users := basicAuthFile(t)
	e := newEnv(t, func(c *config.Config) {
		c.BasicAuthSpecs = []string{"/private/ " + users}
		c.RestrictedPathSpecs = []string{"/office/ 10.0.0.0/8"}
	})
	for _, dir := range []string{"private", "office"} {
		os.MkdirAll(filepath.Join(e.root, dir), 0o755)
		os.WriteFile(filepath.Join(e.root, dir, "data.txt"), []byte("SECRETTXT"), 0o644)
	}
	return e
}

// TestBasicAuth: SESSIONGATE_BASIC_AUTH asks for a password with 401 and
// WWW-Authenticate before PHP, a static file or a mount runs; the right
// one lets in, and PHP gets the user as REMOTE_USER; a more specific entry
// without a password (a restricted path open to all) opens its part, and
// an entry in both lists needs the address and the password.
func TestBasicAuth(t *testing.T) {
	users := basicAuthFile(t)
	mounted := 0
	e := newEnv(t, func(c *config.Config) {
		c.BasicAuthSpecs = []string{"/ " + users, "/office/ " + users}
		c.RestrictedPathSpecs = []string{"/webhooks/ 0.0.0.0/0 ::/0", "/office/ 10.0.0.0/8"}
		c.AccessLog = true
	}, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	os.MkdirAll(filepath.Join(e.root, "office"), 0o755)
	os.WriteFile(filepath.Join(e.root, "office/index.php"), []byte("<?php"), 0o644)
	do := func(target, remote, user, password string) *httptest.ResponseRecorder {
		r := rawRequest(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = remote
		if user != "" || password != "" {
			r.SetBasicAuth(user, password)
		}
		return e.do(r)
	}
	for _, tc := range []struct {
		target, remote, user, password string
		want                           int
	}{
		{"/hello.php", "192.0.2.9:1", "", "", 401},
		{"/style.css", "192.0.2.9:1", "", "", 401},
		{"/admin/", "192.0.2.9:1", "", "", 401},
		{"/hello.php", "192.0.2.9:1", "bo", "wrong", 401},
		{"/hello.php", "192.0.2.9:1", "nobody", "secret", 401},
		{"/hello.php", "192.0.2.9:1", "bo", "secret", 200},
		{"/style.css", "192.0.2.9:1", "bo", "secret", 200},
		{"/webhooks/stripe", "192.0.2.9:1", "", "", 200},
		{"/office/", "192.0.2.9:1", "bo", "secret", 403},
		{"/office/", "10.0.0.1:1", "", "", 401},
		{"/office/", "10.0.0.1:1", "bo", "secret", 200},
	} {
		before := e.php.calls()
		w := do(tc.target, tc.remote, tc.user, tc.password)
		if w.Code != tc.want {
			t.Errorf("%s from %s as %q/%q: %d, want %d", tc.target, tc.remote, tc.user, tc.password, w.Code, tc.want)
		}
		if tc.want == 401 && (w.Header().Get("WWW-Authenticate") != `Basic realm="Restricted", charset="UTF-8"` || e.php.calls() != before) {
			t.Errorf("%s: a 401 without the challenge, or after PHP ran: %v", tc.target, w.Header())
		}
	}
	if mounted != 0 {
		t.Errorf("Django ran %d times without a password", mounted)
	}
	if w := do("/hello.php", "192.0.2.9:1", "bo", "secret"); w.Code != 200 || e.php.scripts[len(e.php.scripts)-1].RemoteUser != "bo" {
		t.Errorf("REMOTE_USER %q, want bo", e.php.scripts[len(e.php.scripts)-1].RemoteUser)
	}
	if log := e.lastLog(t); log["user"] != "bo" {
		t.Errorf("access log %v, want the user", log)
	}
	do("/hello.php", "192.0.2.9:1", "bo", "Tr0ub4dor&3")
	if log := e.lastLog(t); log["status"] != float64(401) || !strings.Contains(fmt.Sprint(log["error"]), `unknown user "bo"`) || strings.Contains(e.logs.String(), "Tr0ub4dor") {
		t.Errorf("a wrong password's log line %v", log)
	}
}

// A broken password file is warned about once, not on every request it
// still lets in.
func TestBasicAuthBrokenFileWarnsOnce(t *testing.T) {
	users := basicAuthFile(t)
	e := newEnv(t, func(c *config.Config) { c.BasicAuthSpecs = []string{"/ " + users} })
	os.WriteFile(users+".tmp", []byte("bo:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\nbroken line\n"), 0o600)
	os.Rename(users+".tmp", users)
	time.Sleep(1100 * time.Millisecond)
	for range 20 {
		r := rawRequest(t, "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n")
		r.SetBasicAuth("bo", "secret")
		if w := e.do(r); w.Code != 200 {
			t.Fatalf("%d", w.Code)
		}
	}
	if n := strings.Count(e.logs.String(), "password file unreadable or malformed"); n != 1 {
		t.Errorf("%d warnings for 20 requests with the same broken file, want 1", n)
	}
}

// An X-Accel-Redirect into a path the client may not reach is refused, as
// nginx checks access again for an internal redirect's location.
func TestBasicAuthAccelRedirect(t *testing.T) {
	e := keptOutEnv(t)
	target := ""
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"X-Accel-Redirect": {target}, "Content-Type": {"text/plain"}}, Body: http.NoBody, Request: r}, nil
	}
	for _, tc := range []struct {
		target, remote, user string
		want                 int
	}{
		{"/private/data.txt", "192.0.2.9:1", "", 401},
		{"/private/%64ata.txt", "192.0.2.9:1", "", 401},
		{"/private/data.txt", "192.0.2.9:1", "bo", 200},
		{"/office/data.txt", "192.0.2.9:1", "", 403},
		{"/office/data.txt", "10.0.0.1:1", "", 200},
	} {
		target = tc.target
		r := rawRequest(t, "GET /hello.php HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = tc.remote
		if tc.user != "" {
			r.SetBasicAuth(tc.user, "secret")
		}
		w := e.do(r)
		if w.Code != tc.want || (tc.want != 200) == strings.Contains(w.Body.String(), "SECRETTXT") {
			t.Errorf("X-Accel-Redirect %s from %s as %q: %d %q, want %d", tc.target, tc.remote, tc.user, w.Code, w.Body, tc.want)
		}
	}
}

// Each reading of a request counts: an open entry on the front controller
// itself does not open the route after it (/index.php/admin/users is
// Laravel's /admin/users) to clients the route's own entry keeps out.
func TestRestrictedPathsOpenScriptKeepsRouteRule(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8", "/index.php 0.0.0.0/0 ::/0"}
	})
	if code := restrictedDo(t, e, "192.0.2.9:1", "/index.php/admin/users"); code != 403 {
		t.Errorf("outsider /index.php/admin/users: %d, want 403", code)
	}
	for remote, target := range map[string]string{"192.0.2.9:1": "/index.php/blog", "10.1.1.1:1": "/index.php/admin/users"} {
		if code := restrictedDo(t, e, remote, target); code != 200 {
			t.Errorf("%s %s: %d, want 200", remote, target, code)
		}
	}
}

// CodeIgniter routes /?/admin/users as /admin/users (queryRoute): refused
// like the URL, dot segments included (it drops "..", so /?/admin/../x is
// its admin/x).
func TestRestrictedPathsRouteInTheQuery(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8"}
	})
	for _, target := range []string{"/?/admin/users", "/index.php?/admin", "/index.php/?/admin/", "/?/admin/../x", "/?/%61dmin/x", "/?//admin/x?y=1", "/?/%61dmin/users%zz"} {
		before := e.php.calls()
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 403 || e.php.calls() != before {
			t.Errorf("outsider %s: %d, want 403 before PHP", target, code)
		}
	}
	for _, target := range []string{"/?/blog/x", "/?x=/admin/", "/hello.php?/x"} {
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 200 {
			t.Errorf("outsider %s: %d, want 200", target, code)
		}
	}
	if code := restrictedDo(t, e, "10.0.0.1:1", "/?/admin/users"); code != 200 {
		t.Errorf("office /?/admin/users: %d", code)
	}
}

// The route in the query counts on its own, as the path after a script
// does: an open entry on the front controller does not open it.
func TestRestrictedPathsRouteInTheQueryKeepsItsRule(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8", "/index.php 0.0.0.0/0 ::/0"}
	})
	if code := restrictedDo(t, e, "192.0.2.9:1", "/index.php?/admin/users"); code != 403 {
		t.Errorf("outsider /index.php?/admin/users: %d, want 403", code)
	}
	// Not read where CodeIgniter does not read it: after a path that names
	// a route of its own.
	if code := restrictedDo(t, e, "192.0.2.9:1", "/blog?/admin/users"); code != 200 {
		t.Errorf("outsider /blog?/admin/users: %d, want 200", code)
	}
}

// WordPress answers ?rest_route=/wp/v2/users on any URL its index.php
// serves as it answers /wp-json/wp/v2/users: an entry on /wp-json/ (the
// usual block of user enumeration) must keep the client out of both.
func TestRestrictedPathsWordPressRestRoute(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	for _, target := range []string{
		"/?rest_route=/wp/v2/users", "/index.php?rest_route=/wp/v2/users/1", "/some/page/?rest_route=/wp/v2/users",
		"/?rest_route=%2Fwp%2Fv2%2Fusers", "/?rest.route=/wp/v2/users", "/?rest_route=/x&rest_route=/wp/v2/users",
		"/?rest_route=/wp/v2/../v2/users", "/?rest_route=wp/v2/users",
		"/?rest[route=/wp/v2/users", "/?%20rest_route=/wp/v2/users", "/?+rest_route=/wp/v2/users", "/?rest_route%00x=/wp/v2/users",
		"/?rest_route%00%zz=/wp/v2/users",
		// Every rest_route counts: with more than max_input_vars (1000)
		// variables in between, PHP keeps the first, not the last.
		"/?rest_route=/wp/v2/users&rest_route=/wp/v2/posts",
		"/?rest_route=/wp/v2/users&" + strings.Repeat("v=1&", 1000) + "rest_route=/wp/v2/posts",
	} {
		before := e.php.calls()
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 403 || e.php.calls() != before {
			t.Errorf("outsider %s: %d, want 403 before PHP", target, code)
		}
	}
	for _, target := range []string{"/?rest_route=/wp/v2/posts", "/?x=/wp-json/wp/v2/users"} {
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 200 {
			t.Errorf("outsider %s: %d, want 200", target, code)
		}
	}
	if code := restrictedDo(t, e, "10.0.0.1:1", "/?rest_route=/wp/v2/users"); code != 200 {
		t.Errorf("office ?rest_route=/wp/v2/users: %d", code)
	}
}

// WordPress's REST server matches routes case-insensitively, trims
// trailing slashes and backslashes from them, and its regexes' "$" matches
// before a final newline: every such spelling of a kept-out route is
// refused, through the URL, PATH_INFO and ?rest_route= alike; Drupal and
// CodeIgniter 3 read /ADMIN/ and /Admin/ as /admin/, and Django's (?i)
// patterns /admın/ too.
func TestRestrictedPathsFoldedSpellings(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/wp-json/wp/v2/users/ 10.0.0.0/8", "/admin/ 10.0.0.0/8", "/Admin/public/ 0.0.0.0/0", "/xmlrpc.php none"}
	})
	for _, target := range []string{
		"/wp-json/WP/v2/users", "/wp-json/wp/v2/Users/1", "/index.php/wp-json/wp/v2/USERS", "/?rest_route=/WP/V2/users",
		"/?rest_route=/wp/v2/users%5C", "/?rest_route=/wp/v2/users%0A", "/?rest_route=/wp/v2/users%5C/%5C",
		"/wp-json/wp/v2/users%5C", "/index.php/wp-json/wp/v2/users%5C", "/wp-json/wp/v2/users%0Ax",
		"/ADMIN/users", "/Admin", "/index.php/aDmin/x", "/?/ADMIN/users", "/x/%2e%2e/ADMIN/users",
		"/admin/public/x", // its own entry, as sent, keeps it out
		// A case-insensitive regex with Unicode (Django's re_path with
		// (?i), PCRE's /iu) takes dotless ı for i and long ſ for s.
		"/adm%C4%B1n/users", "/ADM%C4%B1N", "/wp-json/wp/v2/u%C5%BFers", "/?rest_route=/wp/v2/U%C5%BFERS",
	} {
		before := e.php.calls()
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 403 || e.php.calls() != before {
			t.Errorf("outsider %s: %d, want 403 before PHP", target, code)
		}
	}
	for _, target := range []string{"/Admin/public/x", "/ADMIN/PUBLIC/x", "/wp-json/wp/v2/posts", "/administrator", "/?rest_route=/wp/v2/usersx"} {
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 200 {
			t.Errorf("outsider %s: %d, want 200", target, code)
		}
	}
	if code := restrictedDo(t, e, "10.0.0.1:1", "/wp-json/WP/v2/users"); code != 200 {
		t.Errorf("office /wp-json/WP/v2/users: %d", code)
	}
}

// phpVarName against what PHP 8.2's parse_str makes of each name.
func TestPHPVarName(t *testing.T) {
	for k, want := range map[string]string{
		"rest_route": "rest_route", "rest.route": "rest_route", "rest route": "rest_route", "  rest_route": "rest_route",
		"rest[route": "rest_route", "rest[ro.ute": "rest_ro_ute", "rest_route\x00junk": "rest_route", "rest_route\x00[x]": "rest_route",
		"rest_route[": "rest_route_", "rest_route]": "rest_route]", "rest_route ": "rest_route_", "rest_route[x[": "rest_route_x_",
		"\trest_route": "\trest_route", "REST_ROUTE": "REST_ROUTE",
	} {
		if got, scalar := phpVarName(k); got != want || !scalar {
			t.Errorf("phpVarName(%q) = %q, %v; want %q, a plain value", k, got, scalar, want)
		}
	}
	for _, k := range []string{"rest[route]", "rest_route[]", "rest_route[x]\x00", "[rest_route", "", " ", "\x00rest_route"} {
		if got, scalar := phpVarName(k); scalar {
			t.Errorf("phpVarName(%q) = %q, a plain value; PHP makes it an array or drops it", k, got)
		}
	}
}

// phpURLDecode against what PHP 8.2's urldecode makes of each string.
func TestPHPURLDecode(t *testing.T) {
	for in, want := range map[string]string{
		"rest_route%00%zz": "rest_route\x00%zz", "/wp/v2/%75sers%zz": "/wp/v2/users%zz", "%": "%", "%2": "%2", "%%32%46": "%2F",
		"a+b%2Bc": "a b+c", "%e9%E9": "\xe9\xe9", "plain": "plain",
	} {
		if got := phpURLDecode(in); got != want {
			t.Errorf("phpURLDecode(%q) = %q, want %q", in, got, want)
		}
	}
}

// PHP's parse_url reads what follows a leading "//" as a host:
// //evil/admin/users is its /admin/users. That reading counts too.
func TestRestrictedPathsHostInThePath(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8"}
	})
	for _, target := range []string{"//evil/admin/users", "//evil:80/admin", "//u@evil/%61dmin", "//evil%2Fx/admin", "//evil/ADMIN/x"} {
		before := e.php.calls()
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 403 || e.php.calls() != before {
			t.Errorf("outsider %s: %d, want 403 before PHP", target, code)
		}
	}
	for _, target := range []string{"//evil/blog", "//evil?/admin", "/evil/admin/x", "//evil"} {
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 200 {
			t.Errorf("outsider %s: %d, want 200", target, code)
		}
	}
}

// Every script that loads WordPress's front end runs its REST server for
// ?rest_route=: wp-blog-header.php, and wp-signup.php, wp-activate.php and
// wp-trackback.php, which load it or call wp() themselves, as any custom
// script that includes wp-blog-header.php does. So the query's route counts
// whatever PHP script runs.
func TestRestrictedPathsRESTRouteOnAnyScript(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	for _, target := range []string{"/hello.php?rest_route=/wp/v2/users", "/hello.php/x?rest_route=/WP/v2/users", "/dir/index.php?rest_route=/wp/v2/users"} {
		before := e.php.calls()
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 403 || e.php.calls() != before {
			t.Errorf("outsider %s: %d, want 403 before PHP", target, code)
		}
	}
	if code := restrictedDo(t, e, "192.0.2.9:1", "/hello.php?rest_route=/wp/v2/posts"); code != 200 {
		t.Errorf("outsider /hello.php?rest_route=/wp/v2/posts: %d, want 200", code)
	}
}

// The dot-segment readings of a long crafted path cost in proportion to
// its length, not its square: each reading from a slash used to fold
// (lower-case) the whole rest of the path, so a 64 KiB path of "/a"
// segments took 32768 copies averaging 32 KiB, a gigabyte allocated and
// most of a second of CPU, and a path near SESSIONGATE_MAX_HEADER_BYTES
// (1m) minutes of CPU for one request. The same for a rest_route in the
// query or a form body, read the same way. Measured in bytes allocated
// while the request is refused or let through, far over the bound before.
// (An upper-case letter at the end makes each fold a copy, which is what
// the bound sees.) The readings still refuse what they refused: a
// kept-out entry at the end of the long path, in any case, with trailing
// slashes or a newline.
func TestRestrictedDotReadingsOfLongPathCostItsLength(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/admin/ 10.0.0.0/8", "/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	long := "/x/." + strings.Repeat("/a", 30<<10) // a rest_route value is read up to 64 KiB
	for _, tc := range []struct {
		target string
		body   string // a form body POSTed, when set
		want   int
	}{
		{long + "/X", "", 200},
		{long + "/ADMIN/users", "", 403},
		{long + "/Admin//", "", 403},
		{long + "/Admin%0a/x", "", 403},
		{"/index.php" + long + "/Admin/x", "", 403},
		{"/?rest_route=" + long + "/X", "", 200},
		{"/?rest_route=" + long + "/wp-json/wp/v2/USERS", "", 403},
		{"/", "rest_route=" + long + "/X&rest_route=" + long + "/X", 200},
		{"/", "rest_route=" + long + "/wp-json/WP/v2/users/", 403},
	} {
		method := "GET"
		var body io.Reader
		if tc.body != "" {
			method, body = "POST", strings.NewReader(tc.body)
		}
		r := httptest.NewRequest(method, tc.target, body)
		if tc.body != "" {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		r.RemoteAddr = "192.0.2.9:1"
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		code := e.do(r).Code
		runtime.ReadMemStats(&after)
		size := len(tc.target) + len(tc.body)
		alloc := after.TotalAlloc - before.TotalAlloc
		if code != tc.want {
			t.Errorf("%s %.40q... (%d bytes): %d, want %d", method, tc.target, size, code, tc.want)
		}
		if alloc > uint64(200*size) {
			t.Errorf("%s %.40q... (%d bytes): %d MiB allocated, want at most 200 bytes per byte of the request", method, tc.target, size, alloc>>20)
		}
	}
}

// A form body's rest_route values with dot segments cost about what the
// same body without them costs: every slash of such a value is a
// reading, checked against the rate limits and the restricted paths, and
// each reading's first bytes were lower-cased on their own, a copy per
// reading when they have upper-case letters. A 1 MiB POST of "/A"
// segments, which any client may send to a PHP script once a rule turns
// body reading on, took over a second of CPU and 117 MB allocated, where
// the body without a dot segment took a twentieth of that. Measured in
// bytes allocated, relative to the plain body. The readings still refuse: the
// same long value ending in a kept-out route in upper case is refused.
func TestDotReadingsOfARESTRouteBodyCostAboutThePlainBody(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/wp-json/wp/v2/users/ 10.0.0.0/8", "/wp-admin/ 10.0.0.0/8"}
		c.RateLimitSpecs = []string{"/wp-json/jwt-auth/v1/token 10r/s", "/wp-login.php 10r/m"}
	})
	segments := strings.Repeat("/A", 30<<10) // a rest_route value is read up to 64 KiB
	post := func(body string) (code int, alloc uint64) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "192.0.2.9:1"
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		code = e.do(r).Code
		runtime.ReadMemStats(&after)
		return code, after.TotalAlloc - before.TotalAlloc
	}
	body := func(value string) string { return strings.Repeat("rest_route="+value+"&", 15) }
	plainCode, plain := post(body("/x" + segments))
	dottedCode, dotted := post(body("/." + segments))
	if plainCode != 200 || dottedCode != 200 {
		t.Fatalf("statuses %d (plain) and %d (dot segments), want 200", plainCode, dottedCode)
	}
	// Cleaning the dot segments out (config.CleanPath) and one fold of
	// each value for each check cost about as much again as the body.
	if dotted > 3*plain {
		t.Errorf("a %d-byte form body with dot segments in its rest_route values: %d KiB allocated, the same body without them %d KiB; want at most 3 times", len(body("/."+segments)), dotted>>10, plain>>10)
	}
	if code, _ := post(body("/." + segments + "/WP-JSON/wp/v2/USERS")); code != 403 {
		t.Errorf("dot-segment reading ending in /WP-JSON/wp/v2/USERS: %d, want 403", code)
	}
}

// Each reading suffixFolds gives is the fold (foldCase) of that suffix cut
// where matching stops looking, as if lower-cased on its own: with
// letters that fold to fewer bytes (İ, ı, ſ) or more (Ⱥ), bytes that are
// not UTF-8, newlines and trailing slashes and backslashes.
func TestSuffixFoldsAreEachReadingsOwnFold(t *testing.T) {
	for _, s := range []string{
		"/A/b/C",
		"/ADMIN/./x/../Users//",
		"/admın/ſecret/İX/ȺȺȺ/y",
		"/\xff\xfe/A\xe2\x82/B\xc3/C\x80\x80/ok",
		"/a/B\n/C/D\\/\n/e//\\",
		"/" + strings.Repeat("ȺB", 40) + "/" + strings.Repeat("İ", 50) + "/x",
		"/" + strings.Repeat("\xffAı", 30) + "/" + strings.Repeat("a/", 30),
	} {
		for _, limit := range []int{8, 13, 4*(len("/wp-json/wp/v2/users/")+1) + utf8.UTFMax, 1 << 20} {
			folds := suffixFolds{s: s, limit: limit, nl: -1}
			for k := 0; k < len(s); k++ {
				if s[k] != '/' {
					continue
				}
				if got, want := folds.at(k), ownFold(s[k:], limit); got != want {
					t.Errorf("%q from %d, limit %d: %q, want %q", s, k, limit, got, want)
				}
			}
		}
	}
}

// ownFold is foldedPath of reading cut to its first limit bytes (at a
// rune's start), lower-cased on its own: what suffixFolds.at stands for.
func ownFold(reading string, limit int) string {
	reading, _, _ = strings.Cut(reading, "\n")
	reading = strings.TrimRight(reading, `/\`)
	if reading == "" {
		return "/"
	}
	if len(reading) > limit {
		n := limit
		for n > 0 && !utf8.RuneStart(reading[n]) {
			n--
		}
		reading = reading[:n]
	}
	return strings.Map(func(r rune) rune {
		switch r = unicode.ToLower(r); r {
		case 'ı':
			return 'i'
		case 'ſ':
			return 's'
		}
		return r
	}, strings.ToLower(reading))
}

// Credentials are read as nginx's auth_basic reads them: the scheme in
// any case, then one or more spaces (RFC 9110's 1*SP), and base64 with or
// without its padding. What is not credentials stays refused: no space,
// a tab, base64 that is not, junk after the padding, no colon.
func TestBasicAuthCredentialSyntax(t *testing.T) {
	users := basicAuthFile(t)
	// cyd:secret is 10 bytes, whose base64 ends in "==".
	os.WriteFile(users, []byte("bo:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\ncyd:"+htpasswd.APR1("secret", "salt")+"\n"), 0o600)
	e := newEnv(t, func(c *config.Config) { c.BasicAuthSpecs = []string{"/ " + users} })
	const creds = "Ym86c2VjcmV0"      // bo:secret, 9 bytes: no padding
	const padded = "Y3lkOnNlY3JldA==" // cyd:secret
	for _, tc := range []struct {
		header string
		want   int
	}{
		{"Basic " + creds, 200},
		{"basic " + creds, 200},
		{"BASIC " + creds, 200},
		{"Basic  " + creds, 200},
		{"Basic     " + creds, 200},
		{"Basic " + padded, 200},
		{"Basic Y3lkOnNlY3JldA=", 200},
		{"Basic Y3lkOnNlY3JldA", 200},
		{"Basic Y3lkOnNlY3JldA==  ", 200},
		{"Basic Ym86c2VjcmV0eA", 401}, // bo:secretx: read, and wrong
		{"Basic" + creds, 401},
		{"Basic\t" + creds, 401},
		{"Basic !" + creds, 401},
		{"Basic " + padded + "junk", 401},
		{"Basic Ym9zZWNyZXQ=", 401}, // bosecret
		{"Bearer " + creds, 401},
	} {
		r := rawRequest(t, "GET /style.css HTTP/1.1\r\nHost: x\r\nAuthorization: "+tc.header+"\r\n\r\n")
		if w := e.do(r); w.Code != tc.want {
			t.Errorf("Authorization: %s: %d, want %d", tc.header, w.Code, tc.want)
		}
	}
}

// Two Authorization fields get 400, as from nginx: checking one let PHP
// read another, the joined lines decoded as one password.
func TestBasicAuthTwoAuthorizationFields(t *testing.T) {
	users := basicAuthFile(t)
	e := newEnv(t, func(c *config.Config) { c.BasicAuthSpecs = []string{"/private/ " + users} })
	os.MkdirAll(filepath.Join(e.root, "private"), 0o755)
	os.WriteFile(filepath.Join(e.root, "private/x.txt"), []byte("x"), 0o644)
	const right, wrong = "Authorization: Basic Ym86c2VjcmV0", "Authorization: Basic Ym86d3Jvbmc="
	for _, tc := range []struct {
		target, headers string
		want            int
	}{
		{"/private/x.txt", right + "\r\n" + wrong, 400},
		{"/private/x.txt", wrong + "\r\n" + right, 400},
		{"/private/x.txt", right + "\r\n" + right, 400},
		{"/private/x.txt", right, 200},
		{"/hello.php", right + "\r\n" + wrong, 200}, // no password asked: PHP's to read
	} {
		before := e.php.calls()
		w := e.do(rawRequest(t, "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\n"+tc.headers+"\r\n\r\n"))
		if w.Code != tc.want || tc.want != 200 && e.php.calls() != before {
			t.Errorf("%s with %q: %d, want %d", tc.target, tc.headers, w.Code, tc.want)
		}
	}
}

// An entry for a directory that opens it (no password, every address)
// does not open the directory's name without its slash, which nginx's
// broader location keeps: with "/ users" and "/webhooks/ 0.0.0.0/0",
// /webhooks is a route of its own for the front controller or Django
// (Symfony and Django tell /webhooks from /webhooks/), and asks for the
// password, as behind nginx; a directory entry that keeps clients out
// still covers it too.
func TestRestrictedPathsOpenDirectoryKeepsItsNameWithoutSlash(t *testing.T) {
	users := basicAuthFile(t)
	mounted := 0
	e := newEnv(t, func(c *config.Config) {
		c.BasicAuthSpecs = []string{"/ " + users}
		c.RestrictedPathSpecs = []string{"/webhooks/ 0.0.0.0/0 ::/0", "/dj/open/ 0.0.0.0/0 ::/0", "/dir/ 0.0.0.0/0 ::/0",
			"/office/ 10.0.0.0/8"}
	}, WithMount("django", []string{"/dj/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	for _, tc := range []struct {
		target, user string
		want         int
	}{
		{"/webhooks/stripe", "", 200},
		{"/webhooks/", "", 200},
		{"/webhooks", "", 401},
		{"/webhooks?x=1", "", 401},
		{"/WEBHOOKS", "", 401},
		{"/webhooks", "bo", 200},
		{"/index.php/webhooks", "", 401},
		{"/index.php/webhooks/stripe", "", 401}, // the URL's own entry, /, asks too
		{"/dj/open/x", "", 200},
		{"/dj/open", "", 401},
		{"/dj/open", "bo", 200},
		{"/dir/", "", 200},
		{"/dir", "", 401},
		{"/office", "bo", 403},
	} {
		r := rawRequest(t, "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = "192.0.2.9:1"
		if tc.user != "" {
			r.SetBasicAuth(tc.user, "secret")
		}
		if w := e.do(r); w.Code != tc.want {
			t.Errorf("%s as %q: %d, want %d", tc.target, tc.user, w.Code, tc.want)
		}
	}
	// The path after the front controller counts like the URL.
	e = newEnv(t, func(c *config.Config) {
		c.BasicAuthSpecs = []string{"/admin/ " + users}
		c.RestrictedPathSpecs = []string{"/admin/hooks/ 0.0.0.0/0 ::/0"}
	})
	for target, want := range map[string]int{"/index.php/admin/hooks": 401, "/index.php/admin/hooks/x": 200, "/admin/hooks": 401, "/admin/hooks/x": 200} {
		if w := e.do(rawRequest(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")); w.Code != want {
			t.Errorf("%s: %d, want %d", target, w.Code, want)
		}
	}
}

// An X-Accel-Redirect is checked as a URL is: a file named as an open
// directory entry without its slash (/files for /files/) stays under the
// entry nginx picks for it.
func TestBasicAuthAccelRedirectDirectoryNameWithoutSlash(t *testing.T) {
	users := basicAuthFile(t)
	e := newEnv(t, func(c *config.Config) {
		c.BasicAuthSpecs = []string{"/ " + users}
		c.RestrictedPathSpecs = []string{"/files/ 0.0.0.0/0 ::/0", "/hooks/ 0.0.0.0/0 ::/0"}
	})
	os.WriteFile(filepath.Join(e.root, "files"), []byte("SECRETTXT"), 0o644)
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"X-Accel-Redirect": {"/files"}, "Content-Type": {"text/plain"}}, Body: http.NoBody, Request: r}, nil
	}
	for _, target := range []string{"/hooks/stripe", "/files"} {
		w := e.do(rawRequest(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"))
		if w.Code != 401 || strings.Contains(w.Body.String(), "SECRETTXT") {
			t.Errorf("%s, to /files without a password: %d %q, want 401", target, w.Code, w.Body)
		}
	}
}

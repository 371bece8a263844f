package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// TestRateLimits: like nginx's limit_req nodelay, a client gets burst+1
// requests at once, then 429 with Retry-After, before PHP or a mount runs;
// each client (after trusted proxies) and each rule counts on its own; an
// exact path wins over a directory.
func TestRateLimits(t *testing.T) {
	mounted := 0
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/hello.php 1r/m burst=2", "/admin/ 2r/m", "/admin/login/ 1r/m"}
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.1/32")}
	}, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	get := func(target, remote string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", target, nil)
		r.RemoteAddr = remote
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return e.do(r)
	}
	for i := range 3 {
		if w := get("/hello.php", "192.0.2.1:1000"); w.Code != 200 {
			t.Fatalf("request %d of the burst: %d", i+1, w.Code)
		}
	}
	before := e.php.calls()
	w := get("/hello.php", "192.0.2.1:1001")
	retry, _ := strconv.Atoi(w.Header().Get("Retry-After"))
	if w.Code != http.StatusTooManyRequests || retry < 55 || retry > 60 || e.php.calls() != before {
		t.Fatalf("4th: %d, Retry-After %q, PHP ran %d; want 429, about 60 s, not run", w.Code, w.Header().Get("Retry-After"), e.php.calls()-before)
	}
	if log := e.lastLog(t); log["status"] != float64(429) || log["level"] != "WARN" || !strings.Contains(log["error"].(string), "/hello.php 1r/m burst=2") {
		t.Errorf("log %v", log)
	}
	// Another client, another path, the same client's other spellings.
	if w := get("/hello.php", "192.0.2.2:1000"); w.Code != 200 {
		t.Errorf("another client: %d", w.Code)
	}
	if w := get("/index.php", "192.0.2.1:1000"); w.Code != 200 {
		t.Errorf("another path: %d", w.Code)
	}
	if w := get("//hello.php", "192.0.2.1:1000"); w.Code != 429 {
		t.Errorf("//hello.php: %d, want 429 like /hello.php", w.Code)
	}
	// Behind a trusted proxy the client is the one it names.
	for i, want := range []int{200, 200, 200, 429} {
		if w := get("/hello.php", "10.0.0.1:5000", "X-Forwarded-For", "198.51.100.7"); w.Code != want {
			t.Errorf("via the proxy, request %d: %d, want %d", i+1, w.Code, want)
		}
	}
	if w := get("/hello.php", "10.0.0.1:5000", "X-Forwarded-For", "198.51.100.8"); w.Code != 200 {
		t.Errorf("another client via the proxy: %d", w.Code)
	}
	// A mount's directory rule, and an exact-er one inside it.
	for i, want := range []int{200, 429} {
		if w := get("/admin/login/", "192.0.2.3:1"); w.Code != want {
			t.Errorf("/admin/login/ %d: %d, want %d", i+1, w.Code, want)
		}
	}
	for i, want := range []int{200, 429} {
		if w := get("/admin/users/", "192.0.2.3:1"); w.Code != want {
			t.Errorf("/admin/users/ %d: %d, want %d", i+1, w.Code, want)
		}
	}
	if mounted != 2 {
		t.Errorf("Django ran %d times, want 2", mounted)
	}
}

// A rule counts the script that runs, however the URL reaches it: with
// PATH_INFO (/wp-login.php/x runs wp-login.php), through a directory's
// index.php, or with a raw "#" that routing cuts off; and each request
// once, though its URL and its script both match.
func TestRateLimitsFollowTheScript(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/hello.php 1r/m burst=1", "/dir/index.php 1r/m"}
	})
	get := func(target string) int {
		r := httptest.NewRequest("POST", target, nil)
		r.RemoteAddr = "192.0.2.1:1000"
		return e.do(r).Code
	}
	for i, want := range []int{200, 200, 429} {
		if code := get("/hello.php"); code != want {
			t.Errorf("/hello.php %d: %d, want %d (each request counted once)", i+1, code, want)
		}
	}
	before := e.php.calls()
	for _, target := range []string{"/hello.php/x", "/hello.php/", "/hello.php#x", "//hello.php"} {
		if code := get(target); code != 429 {
			t.Errorf("%s: %d, want 429 like /hello.php", target, code)
		}
	}
	if e.php.calls() != before {
		t.Errorf("PHP ran %d times past the limit", e.php.calls()-before)
	}
	for i, want := range []int{200, 429, 429} {
		target := []string{"/dir/", "/dir/", "/dir/index.php"}[i]
		if code := get(target); code != want {
			t.Errorf("%s: %d, want %d", target, code, want)
		}
	}
}

// A front controller routes on the path after the script: /index.php/login
// is the /login page, and counts against its rule.
func TestRateLimitsFollowTheFrontControllersPath(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/login 1r/m"}
	})
	get := func(target string) int {
		r := httptest.NewRequest("POST", target, nil)
		r.RemoteAddr = "192.0.2.1:1000"
		return e.do(r).Code
	}
	for i, target := range []string{"/login", "/index.php/login", "/login"} {
		want := []int{200, 429, 429}[i]
		if code := get(target); code != want {
			t.Errorf("%s: %d, want %d", target, code, want)
		}
	}
}

// TestRateLimitCountsARequestOnceAcrossItsPaths: a request whose URL and
// PATH_INFO fall under one rule and whose script under another is counted
// once by each, as the doc of rateLimited says (nginx's limit_req counts a
// request once): /hello.php/x under "/" and "/hello.php" used two of the
// client's "/" allowance.
func TestRateLimitCountsARequestOnceAcrossItsPaths(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/ 1r/m burst=1", "/hello.php 100r/m burst=100"}
	})
	for i, want := range []int{200, 200, 429} {
		r := httptest.NewRequest("GET", "/hello.php/x", nil)
		r.RemoteAddr = "192.0.2.1:1000"
		if w := e.do(r); w.Code != want {
			t.Errorf("request %d: %d, want %d", i+1, w.Code, want)
		}
	}
}

// A request under more than ten rules at once (a path with dot segments
// read from each slash) is counted once by each of them too: the rules
// past the tenth counted it once for each reading, so a client's second
// request was refused by allowances of two.
func TestRateLimitCountsARequestOnceUnderManyRules(t *testing.T) {
	var rules []string
	path := ""
	for c := 'a'; c <= 'l'; c++ {
		rules = append(rules, "/"+string(c)+"/ 1r/m burst=1")
		path += "/" + string(c)
	}
	e := newEnv(t, func(c *config.Config) { c.RateLimitSpecs = rules },
		WithMount("django", []string{"/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	// /l/ is the twelfth rule, which two of the readings fall under.
	for i, want := range []int{200, 200, 429} {
		r := rawRequest(t, "GET "+path+"/../l/y HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = "192.0.2.1:1000"
		if w := e.do(r); w.Code != want {
			t.Errorf("request %d: %d, want %d", i+1, w.Code, want)
		}
	}
}

// TestRateLimitsFollowTheRouteInTheQuery: CodeIgniter routes /?/login and
// /index.php?/login as /login (queryRoute): counted under /login's rule.
func TestRateLimitsFollowTheRouteInTheQuery(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/login 1r/m"}
	})
	for i, target := range []string{"/login", "/?/login", "/index.php?/login", "/?x=/login"} {
		want := []int{200, 429, 429, 200}[i]
		r := httptest.NewRequest("POST", target, nil)
		r.RemoteAddr = "192.0.2.1:1000"
		if code := e.do(r).Code; code != want {
			t.Errorf("%s: %d, want %d", target, code, want)
		}
	}
}

// WordPress's ?rest_route= is its /wp-json/ URL (restRoutes): a limit on
// the REST API counts both.
func TestRateLimitsFollowTheWordPressRestRoute(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/wp-json/ 1r/m"}
	})
	for i, target := range []string{"/wp-json/wp/v2/users", "/?rest_route=/wp/v2/users", "/page/?rest_route=/wp/v2/posts", "/?x=/wp-json/"} {
		want := []int{200, 429, 429, 200}[i]
		r := httptest.NewRequest("GET", target, nil)
		r.RemoteAddr = "192.0.2.1:1000"
		if code := e.do(r).Code; code != want {
			t.Errorf("%s: %d, want %d", target, code, want)
		}
	}
}

// WordPress answers /wp-json/JWT-AUTH/v1/token and ?rest_route= with a
// trailing backslash or newline as its token route (foldedPath): a limit
// on that route counts them all, each request once.
func TestRateLimitsCountFoldedSpellings(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/wp-json/jwt-auth/v1/token 1r/m burst=1"}
	})
	for i, target := range []string{"/wp-json/jwt-auth/v1/token", "/wp-json/JWT-AUTH/v1/token", "/?rest_route=/jwt-auth/v1/token%5C", "/?rest_route=/Jwt-Auth/v1/token%0A"} {
		want := []int{200, 200, 429, 429}[i]
		r := httptest.NewRequest("GET", target, nil)
		r.RemoteAddr = "192.0.2.1:1000"
		if code := e.do(r).Code; code != want {
			t.Errorf("%s: %d, want %d", target, code, want)
		}
	}
}

// A limit on /login also counts //evil/login, which routers that read
// REQUEST_URI with parse_url route as /login.
func TestRateLimitsCountTheHostInThePath(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/login 1r/m"}
	})
	for i, target := range []string{"/login", "//evil/login", "//x:1/login?a=1"} {
		want := []int{200, 429, 429}[i]
		r := rawRequest(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = "192.0.2.1:1000"
		if code := e.do(r).Code; code != want {
			t.Errorf("%s: %d, want %d", target, code, want)
		}
	}
}

// Behind a stateless NAT64 translator every IPv4 client is in
// 64:ff9b::/96, one /64: each still has its own allowance.
func TestRateLimitsNAT64ClientsApart(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/hello.php 1r/m"}
	})
	for i, remote := range []string{"[64:ff9b::c000:201]:1", "[64:ff9b::c000:202]:1", "[64:ff9b::c000:201]:2"} {
		want := []int{200, 200, 429}[i]
		r := httptest.NewRequest("GET", "/hello.php", nil)
		r.RemoteAddr = remote
		if code := e.do(r).Code; code != want {
			t.Errorf("%s: %d, want %d", remote, code, want)
		}
	}
}

// A directory's name without its slash counts against the rule nginx
// picks for it too, not only the directory's own: with a strict /api/
// and a lenient /api/bulk/, /api/bulk (a route of its own for Django and
// Symfony) is held to /api/'s limit, as behind nginx's location /api/.
func TestRateLimitsDirectoryNameWithoutSlash(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/api/ 1r/m", "/api/bulk/ 100r/s burst=100"}
	}, WithMount("django", []string{"/api/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	for i, target := range []string{"/api/bulk/x", "/api/bulk/y", "/api/bulk", "/api/x", "/api/bulk"} {
		want := []int{200, 200, 200, 429, 429}[i]
		r := httptest.NewRequest("GET", target, nil)
		r.RemoteAddr = "192.0.2.1:1000"
		if code := e.do(r).Code; code != want {
			t.Errorf("%d %s: %d, want %d", i, target, code, want)
		}
	}
}

// A path with dot segments counts against the rules of the readings that
// apps routing on it unresolved take: /login/../x runs the login view
// behind Django's re_path(r"^login/") or a catch-all under /login/, as
// /x/..%2flogin/ may (the folded reading too). Counted only as what it
// resolves to, it let a client past the login page's limit. A request is
// still counted once by each rule.
func TestRateLimitsCountDotSegmentReadings(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/login/ 1r/m", "/api/token 1r/m"}
	}, WithMount("django", []string{"/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	for i, target := range []string{"/login/", "/login/../x", "/login/%2e%2e/x", "/x/..%2fLOGIN/y", "//login//..//x"} {
		want := []int{200, 429, 429, 429, 429}[i]
		r := rawRequest(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = "192.0.2.1:1000"
		if code := e.do(r).Code; code != want {
			t.Errorf("%s: %d, want %d", target, code, want)
		}
	}
	for i, target := range []string{"/api/token/../../api/token", "/api/token"} {
		want := []int{200, 429}[i] // once by the rule, though two readings fall under it
		r := rawRequest(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		r.RemoteAddr = "192.0.2.2:1000"
		if code := e.do(r).Code; code != want {
			t.Errorf("%s: %d, want %d", target, code, want)
		}
	}
}

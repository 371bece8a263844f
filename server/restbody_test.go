package server

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

// WordPress reads rest_route from a POST form body before the query: the
// access rules read it there too, and PHP still gets the whole body.
func TestRestrictedPathsRESTRouteInTheBody(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	do := func(remote, method, target, ctype, body string) int {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		r.RemoteAddr = remote
		return e.do(r).Code
	}
	const form = "application/x-www-form-urlencoded"
	const mp = "multipart/form-data; boundary=B"
	for _, c := range [][3]string{
		{"/", form, "rest_route=/wp/v2/users"},
		{"/page/", form + ";charset=UTF-8", "x=1&%20rest.route=%2Fwp%2FV2%2Fusers%5C"},
		{"/", "APPLICATION/X-WWW-FORM-URLENCODED", strings.Repeat("%20", 500) + "rest_route%00" + strings.Repeat("y", 500) + "=/wp/v2/users"},
		{"/", mp, "--B\r\nContent-Disposition: form-data; name=\"rest_route\"\r\n\r\n/wp/v2/users\r\n--B--\r\n"},
		{"/", mp, "--B\r\nX-Pad: aaaContent-Disposition: form-data; name=rest[route\r\n\r\n/wp/v2/users\r\n--B--\r\n"},
		{"/hello.php", form, "rest_route=/wp/v2/users"},
	} {
		before := e.php.calls()
		if code := do("192.0.2.9:1", "POST", c[0], c[1], c[2]); code != 403 || e.php.calls() != before {
			t.Errorf("outsider POST %s %.80q: %d, want 403 before PHP", c[0], c[2], code)
		}
	}
	// Not where PHP or WordPress do not read it: another method, another
	// type, another field.
	for _, c := range [][4]string{
		{"PUT", "/", form, "rest_route=/wp/v2/users"},
		{"POST", "/", "application/json", `{"rest_route":"/wp/v2/users"}`},
		{"POST", "/", form, "comment=rest_route%3D/wp/v2/users"},
		{"POST", "/", mp, "--B\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n/wp/v2/users\r\n--B\r\nContent-Disposition: form-data; name=\"rest_route\"\r\n\r\n/wp/v2/posts\r\n--B--\r\n"},
	} {
		if code := do("192.0.2.9:1", c[0], c[1], c[2], c[3]); code != 200 {
			t.Errorf("outsider %s %s %q: %d, want 200", c[0], c[1], c[3], code)
		}
	}
	if code := do("10.0.0.1:1", "POST", "/", form, "rest_route=/wp/v2/users&x=1"); code != 200 {
		t.Errorf("office POST rest_route=/wp/v2/users: %d", code)
	}
	e.php.mu.Lock()
	last := e.php.reqs[len(e.php.reqs)-1]
	e.php.mu.Unlock()
	if b, _ := io.ReadAll(last.Body); string(b) != "rest_route=/wp/v2/users&x=1" {
		t.Errorf("PHP got the body %q, want it whole", b)
	}
}

// A rate limit on a REST route counts the route named in a POST body.
func TestRateLimitsCountTheRESTRouteInTheBody(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/wp-json/jwt-auth/v1/token 1r/m"}
	})
	for i, want := range []int{200, 429, 429} {
		body := "username=admin&password=guess" + strings.Repeat("&rest_route=/jwt-auth/v1/token", i)
		if i == 0 {
			body = "rest_route=/jwt-auth/v1/token&password=guess"
		}
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "192.0.2.1:1000"
		if code := e.do(r).Code; code != want {
			t.Errorf("attempt %d %q: %d, want %d", i+1, body, code, want)
		}
	}
}

// No rule a REST route can fall under: bodies are not read ahead.
func TestRESTBodyReadOnlyForRulesItCanMeet(t *testing.T) {
	for specs, want := range map[string]bool{
		"/phpmyadmin/ 10.0.0.0/8": false, "/wp-json/ none": true, "/WP-JSON/wp/v2/users/ none": true, "/ 10.0.0.0/8": true, "/wp-login.php none": false,
	} {
		e := newEnv(t, func(c *config.Config) { c.RestrictedPathSpecs = []string{specs} })
		if e.srv.restBody != want {
			t.Errorf("%s: reads bodies %v, want %v", specs, e.srv.restBody, want)
		}
	}
}

func TestPHPFormBodyHelpers(t *testing.T) {
	for ct, want := range map[string]string{
		"application/x-www-form-urlencoded": "urlencoded", "application/x-www-form-urlencoded;charset=UTF-8": "urlencoded",
		"Application/X-WWW-Form-Urlencoded, x": "urlencoded", "multipart/form-data; boundary=x": "multipart",
		"application/json": "", "text/plain": "", "": "", "application/x-www-form-urlencodedx": "",
	} {
		if got := phpFormKind(ct); got != want {
			t.Errorf("phpFormKind(%q) = %q, want %q", ct, got, want)
		}
	}
	for cd, want := range map[string][]string{
		`form-data; name="a"`: {"a", "a"}, `form-data; NAME=a b`: {"a", "a"}, `form-data; name='a\'b'`: {"a'b", "a'b"},
		`form-data; x="y;name=z"; name="a"`: {"a", `z"`, "a"}, `form-data; filename="f"`: nil,
	} {
		if got := dispositionNames(cd); !slices.Equal(got, want) {
			t.Errorf("dispositionNames(%q) = %q, want %q", cd, got, want)
		}
	}
}

func TestMultipartRESTRoutes(t *testing.T) {
	all := func(string) bool { return true }
	body := "pre\r\n--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnot this\r\n" +
		"--B\r\nContent-Disposition: form-data;\r\n\tname=\"rest_route\"\r\nContent-Type: text/plain\r\n\r\n/wp/v2/users\r\nsecond line\r\n" +
		"--B\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n/wp/v2/users\r\n--B--\r\n"
	// Every line after the field counts, each once, to the end.
	want := []string{"Content-Type: text/plain", "", "/wp/v2/users", "second line", "--B", "--B--"}
	if got := multipartRESTRoutes(strings.NewReader(body), all); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// Only the lines keep accepts are held.
	if got := multipartRESTRoutes(strings.NewReader(body), func(v string) bool { return strings.HasPrefix(v, "/wp/") }); !slices.Equal(got, []string{"/wp/v2/users"}) {
		t.Errorf("kept %q, want only /wp/v2/users", got)
	}
	// A header too long to read counts as naming the field.
	long := "--B\r\nContent-Disposition: form-data; " + strings.Repeat(" ", 70<<10) + "name=\"x\"\r\n\r\n/wp/v2/users\r\n--B--\r\n"
	if got := multipartRESTRoutes(strings.NewReader(long), all); !slices.Contains(got, "/wp/v2/users") {
		t.Errorf("a 70 KiB header: %q, want /wp/v2/users among them", got)
	}
	// No field that may be rest_route: nothing.
	if got := multipartRESTRoutes(strings.NewReader("--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n/wp/v2/users\r\n--B--\r\n"), all); got != nil {
		t.Errorf("without rest_route: %q", got)
	}
}

func TestURLEncodedRESTRoutes(t *testing.T) {
	for body, want := range map[string][]string{
		"rest_route=/a&x=1&rest_route=%2Fb": {"/a", "/b"}, "+%20+rest_route=/a": {"/a"}, "rest[route=/a": {"/a"},
		"rest_route%00" + strings.Repeat("z", 10000) + "=/a": {"/a"}, "rest_route[]=/a": nil, "x=rest_route=/a": nil,
		"rest_route": {""}, "rest_route=" + strings.Repeat("/", 100<<10): {strings.Repeat("/", maxRouteValue)},
		// PHP drops raw spaces a name starts with too, past the 64
		// bytes a name is read to.
		strings.Repeat(" ", 64) + "rest_route=/a": {"/a"}, " + %20rest_route=/a": {"/a"},
	} {
		if got := urlencodedRESTRoutes(strings.NewReader(body)); !slices.Equal(got, want) {
			t.Errorf("%.40q: %.60q, want %.60q", body, got, want)
		}
	}
}

// A WordPress whose index.php is in a directory (its home /dir/) answers
// ?rest_route=R as /dir/wp-json/R: an entry there reads it, in the query
// and in a POST body.
func TestRESTRouteUnderTheScriptsDirectory(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.RestrictedPathSpecs = []string{"/dir/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	for _, target := range []string{"/dir/?rest_route=/wp/v2/users", "/dir/index.php?rest_route=/WP/v2/users"} {
		if code := restrictedDo(t, e, "192.0.2.9:1", target); code != 403 {
			t.Errorf("outsider %s: %d, want 403", target, code)
		}
	}
	r := httptest.NewRequest("POST", "/dir/", strings.NewReader("rest_route=/wp/v2/users"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "192.0.2.9:1"
	if code := e.do(r).Code; code != 403 {
		t.Errorf("outsider POST /dir/ rest_route=/wp/v2/users: %d, want 403", code)
	}
	if code := restrictedDo(t, e, "192.0.2.9:1", "/dir/?rest_route=/wp/v2/posts"); code != 200 {
		t.Errorf("outsider /dir/?rest_route=/wp/v2/posts: %d, want 200", code)
	}
}

// PHP may cut a long Content-Disposition anywhere: a name that starts
// with rest_route may be read as rest_route.
func TestRESTRouteFieldCutShort(t *testing.T) {
	for cd, want := range map[string]bool{
		`form-data; name="rest_routea:b"`: true, `form-data; name="  rest[routeX"`: true, `form-data; name="rest_route"`: true,
		`form-data; name="rest_rout"`: false, `form-data; name="xrest_route"`: false, `form-data; name="rest_route[x]"`: true,
		`form-data; name="rest"`: false,
	} {
		if got := isRESTRouteField(cd); got != want {
			t.Errorf("isRESTRouteField(%q) = %v, want %v", cd, got, want)
		}
	}
}

// deployWhileRead is a request body whose first read lands a deploy
// (current -> releases/2) and lets another request see it, as a slow
// upload's body is read while a release goes live.
type deployWhileRead struct {
	io.Reader
	deploy func()
	once   sync.Once
}

func (d *deployWhileRead) Read(p []byte) (int, error) {
	d.once.Do(d.deploy)
	return d.Reader.Read(p)
}

// A POST that the access rules read the WordPress REST route from is
// routed, then its body read, then its params built: a deploy that
// another request finds in between must not have PHP run the request in
// the new release. Its DOCUMENT_ROOT named the new release while its
// route came from the old one, so php-fpm ran another script than the
// one routed to, or none ("Primary script unknown") for a script the new
// release no longer has.
func TestDeployDuringRESTBodyReadKeepsTheRoutedRelease(t *testing.T) {
	base := t.TempDir()
	for _, n := range []string{"1", "2"} {
		for _, name := range []string{"index.php", "only" + n + ".php"} {
			p := filepath.Join(base, "releases", n, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("<?php"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	current := filepath.Join(base, "current")
	if err := os.Symlink("releases/1", current); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *config.Config) {
		c.StaticRoot, c.DocumentRoot = current, current
		c.RestrictedPathSpecs = []string{"/wp-json/wp/v2/users/ 10.0.0.0/8"}
	})
	body := &deployWhileRead{Reader: strings.NewReader("a=1"), deploy: func() {
		if err := os.Symlink("releases/2", current+".tmp"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(current+".tmp", current); err != nil {
			t.Fatal(err)
		}
		// The router looks at its root path once a second.
		time.Sleep(1100 * time.Millisecond)
		if w := e.do(httptest.NewRequest("GET", "/only2.php", nil)); w.Code != 200 {
			t.Errorf("the new release's script after the deploy: %d", w.Code)
		}
	}}
	r := httptest.NewRequest("POST", "/only1.php", body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "10.1.2.3:4444"
	if w := e.do(r); w.Code != 200 {
		t.Fatalf("POST routed before the deploy: %d %s", w.Code, w.Body)
	}
	scripts := e.php.scripts
	if len(scripts) != 2 {
		t.Fatalf("%d scripts ran, want 2", len(scripts))
	}
	post := scripts[1]
	if post.ScriptName != "/only1.php" {
		t.Fatalf("second script run: %+v", post)
	}
	if want := filepath.Join(base, "releases/1"); post.DocumentRoot != want {
		t.Errorf("the POST's DOCUMENT_ROOT: %s, want the release it was routed in, %s", post.DocumentRoot, want)
	}
	if want := filepath.Join(base, "releases/2"); scripts[0].DocumentRoot != want {
		t.Errorf("the GET's DOCUMENT_ROOT: %s, want %s", scripts[0].DocumentRoot, want)
	}
}

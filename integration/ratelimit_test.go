package integration

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestRateLimits: SESSIONGATE_RATE_LIMITS against password guessing, as
// nginx's limit_req is set up in front of wp-login.php, through the real
// php-fpm and gunicorn: a client gets its burst, then 429 with Retry-After,
// and the refused attempts never run PHP or Django.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_RATE_LIMITS=/wp-login.php 2r/m burst=2,/accounts/api/login/ 1r/m burst=1")
	gw := s.gws[0]
	runs := filepath.Join(s.fpm.DocRoot, "runs.txt")
	src := `<?php file_put_contents(__DIR__ . '/runs.txt', "x", FILE_APPEND); echo 'ERROR: The password you entered is incorrect.';`
	if err := os.WriteFile(filepath.Join(s.fpm.DocRoot, "wp-login.php"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"log": {"admin"}, "pwd": {"guess"}}.Encode()
	for i, want := range []int{200, 200, 200, 429, 429} {
		res, body := call(t, gw, jar{}, "POST", "/wp-login.php", form, "Content-Type", formType)
		if res.StatusCode != want {
			t.Fatalf("attempt %d: %d %q, want %d", i+1, res.StatusCode, body, want)
		}
		if want == 429 && (res.Header.Get("Retry-After") == "" || strings.Contains(body, "password")) {
			t.Errorf("attempt %d: Retry-After %q, body %q", i+1, res.Header.Get("Retry-After"), body)
		}
	}
	// Other URLs that run the same script count too: PATH_INFO, and a
	// raw "#" routing cuts off (sent as is on its own connection).
	res, body := call(t, gw, jar{}, "POST", "/wp-login.php/x", form, "Content-Type", formType)
	if res.StatusCode != 429 {
		t.Errorf("/wp-login.php/x: %d %q, want 429", res.StatusCode, body)
	}
	if out, _ := raw(t, strings.TrimPrefix(gw.URL, "http://"), "POST /wp-login.php#x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "+formType+"\r\nContent-Length: "+strconv.Itoa(len(form))+"\r\nConnection: close\r\n\r\n"+form); !strings.HasPrefix(out, "HTTP/1.1 429 ") {
		t.Errorf("/wp-login.php#x: %.200q, want 429", out)
	}
	if b, _ := os.ReadFile(runs); string(b) != "xxx" {
		t.Errorf("PHP ran %d times, want 3", len(b))
	}
	// Other pages are not limited.
	for range 5 {
		if res, _, _ := gw.get(t, "/get.php", ""); res.StatusCode != 200 {
			t.Fatalf("get.php: %d", res.StatusCode)
		}
	}
	// Django's login view (its CSRF check answers 403 without a token):
	// two attempts reach it, the third does not.
	for i, want := range []int{403, 403, 429} {
		res, body := call(t, gw, jar{}, "POST", "/accounts/api/login/", form, "Content-Type", formType)
		if res.StatusCode != want {
			t.Errorf("Django attempt %d: %d %.100q, want %d", i+1, res.StatusCode, body, want)
		}
	}
	if !strings.Contains(gw.Logs.String(), `over SESSIONGATE_RATE_LIMITS /wp-login.php 2r/m burst=2`) {
		t.Errorf("refusals not logged with their rule")
	}
}

// TestRateLimitsWordPressRestServer: a limit on a WordPress REST route
// (a JWT plugin's token endpoint, where passwords are tried) counts the
// spellings WordPress's REST server answers as that route (case, trailing
// backslash, trailing newline), through the real php-fpm.
func TestRateLimitsWordPressRestServer(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{"index.php": wpRESTIndexPHP})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.RateLimitSpecs = []string{"/wp-json/jwt-auth/v1/token 1r/m burst=2"}
	})
	for i, target := range []string{"/wp-json/jwt-auth/v1/token", "/wp-json/JWT-AUTH/v1/token", "/?rest_route=/jwt-auth/v1/token%5C", "/?rest_route=/Jwt-Auth/v1/token%0A", "/index.php/wp-json/jwt-auth/V1/token"} {
		want, wantBody := 200, "token"
		if i >= 3 {
			want, wantBody = 429, ""
		}
		if res, body := g.get(t, target); res.StatusCode != want || wantBody != "" && body != wantBody || want == 429 && strings.Contains(body, "token") {
			t.Errorf("attempt %d %s: %d %q, want %d", i+1, target, res.StatusCode, body, want)
		}
	}
}

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResponseHeaders: SESSIONGATE_RESPONSE_HEADERS, written as the lines
// of a YAML block, and SESSIONGATE_HIDE_HEADERS on the real php-fpm and
// gunicorn (nginx's add_header ... always, fastcgi_hide_header and
// proxy_hide_header). Every answer gets the site's headers: PHP pages,
// Django views, static files, the gateway's own 404; an app's own value
// is kept, never doubled; a directory's line and an empty value apply
// under their path only; X-Powered-By, as PHP sends it, is gone.
func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	headers := `
  X-Frame-Options: SAMEORIGIN
  X-Content-Type-Options: nosniff
  Permissions-Policy: camera=(), microphone=()
  /fonts/ Access-Control-Allow-Origin: *
  /embed/ X-Frame-Options:
  /widget/ X-Frame-Options:
  /admin/ X-Frame-Options: DENY
`
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_RESPONSE_HEADERS="+headers, "SESSIONGATE_HIDE_HEADERS=X-Powered-By")
	gw := s.gws[0]
	root := s.fpm.DocRoot
	for name, body := range map[string]string{
		"page.php":        `<?php header('X-Powered-By: PHP/' . PHP_VERSION); echo 'page';`,
		"own.php":         `<?php header('X-Frame-Options: DENY'); header('Permissions-Policy: camera=(self)'); echo 'own';`,
		"embed/index.php": `<?php echo 'widget';`,
		"fonts/a.woff2":   "wOF2",
		"style.css":       "body{}",
		"index.php":       `<?php echo 'front controller ', $_SERVER['PATH_INFO'] ?? '';`,
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	site := map[string]string{
		"X-Frame-Options":             "SAMEORIGIN",
		"X-Content-Type-Options":      "nosniff",
		"Permissions-Policy":          "camera=(), microphone=()",
		"Access-Control-Allow-Origin": "",
		"X-Powered-By":                "",
	}
	except := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range site {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		target string
		status int
		want   map[string]string
	}{
		{"/page.php", 200, site},
		{"/own.php", 200, except("X-Frame-Options", "DENY", "Permissions-Policy", "camera=(self)")},
		{"/style.css", 200, site},
		{"/.env", 404, site},
		{"/fonts/a.woff2", 200, except("Access-Control-Allow-Origin", "*")},
		{"/embed/", 200, except("X-Frame-Options", "")},
		// No widget directory: /widget is the front controller's route,
		// which keeps the site's header; /widget/x is the directory's.
		{"/widget", 200, site},
		{"/widget/x", 200, except("X-Frame-Options", "")},
		{"/admin", 200, except("X-Frame-Options", "DENY")},
		// The route after the front controller is /admin/'s, the path
		// after another script only its argument.
		{"/admin/users", 200, except("X-Frame-Options", "DENY")},
		{"/index.php/admin/users", 200, except("X-Frame-Options", "DENY")},
		{"/page.php/admin/users", 200, site},
		{"/accounts/api/whoami/", 200, site},
		{"/accounts/api/deny-frames/", 200, except("X-Frame-Options", "DENY")},
	} {
		res, body, _ := gw.get(t, tc.target, "")
		if res.StatusCode != tc.status {
			t.Errorf("%s: %d %q, want %d", tc.target, res.StatusCode, body, tc.status)
		}
		for name, want := range tc.want {
			if got := strings.Join(res.Header.Values(name), "|"); got != want {
				t.Errorf("%s: %s %q, want %q", tc.target, name, got, want)
			}
		}
	}
}

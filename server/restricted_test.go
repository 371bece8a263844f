package server

import (
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessiongate/sessiongate/config"
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

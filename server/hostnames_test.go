package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// TestServerNames: with SESSIONGATE_SERVER_NAMES a request for another
// Host is refused before PHP or a mount sees it (a forged Host must not
// reach an app that builds links from it), and PHP's SERVER_NAME is the
// listed name the request is for.
func TestServerNames(t *testing.T) {
	mounted := 0
	e := newEnv(t, func(c *config.Config) {
		c.ServerNames = []string{"Shop.example.com", "*.cdn.example.com", "203.0.113.5", "2001:db8::1"}
	}, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	for _, tc := range []struct {
		host, serverName string
	}{
		{"shop.example.com", "shop.example.com"},
		{"SHOP.example.com:8443", "shop.example.com"},
		{"shop.example.com.", "shop.example.com"},
		{"img.cdn.example.com", "img.cdn.example.com"},
		{"a.b.cdn.example.com:80", "a.b.cdn.example.com"},
		{"203.0.113.5:8080", "203.0.113.5"},
		{"[2001:db8::1]:8080", "[2001:db8::1]"},
		// HTTP/1.0 without Host names no other site.
		{"", "shop.example.com"},
	} {
		r := httptest.NewRequest("GET", "/hello.php", nil)
		r.Host = tc.host
		before := e.php.calls()
		w := e.do(r)
		if w.Code != 200 || e.php.calls() != before+1 {
			t.Errorf("Host %q: %d, want 200 from PHP", tc.host, w.Code)
			continue
		}
		if got := e.php.scripts[len(e.php.scripts)-1].ServerName; got != tc.serverName {
			t.Errorf("Host %q: SERVER_NAME %q, want %q", tc.host, got, tc.serverName)
		}
	}
	for _, host := range []string{
		"evil.example", "shop.example.com.evil.example", "cdn.example.com", "xcdn.example.com",
		"example.com", "203.0.113.6", "[2001:db8::2]", "shop.example.com@evil.example", "shop.example.com:80:80",
	} {
		for _, target := range []string{"/hello.php", "/style.css", "/admin/", "/nothing"} {
			r := httptest.NewRequest("GET", target, nil)
			r.Host = host
			before := e.php.calls()
			if w := e.do(r); w.Code != http.StatusMisdirectedRequest || e.php.calls() != before || mounted != 0 {
				t.Errorf("Host %q %s: %d, PHP ran %d, Django %d; want 421 and neither", host, target, w.Code, e.php.calls()-before, mounted)
			}
		}
	}
}

// TestServerNamesOff: without the list every Host is served and PHP builds
// SERVER_NAME from it, as before.
func TestServerNamesOff(t *testing.T) {
	e := newEnv(t, nil)
	r := httptest.NewRequest("GET", "/hello.php", nil)
	r.Host = "anything.example:81"
	if w := e.do(r); w.Code != 200 || e.php.scripts[0].ServerName != "" {
		t.Errorf("%d, Script.ServerName %q", w.Code, e.php.scripts[0].ServerName)
	}
}

package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
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

// From a trusted proxy, the hosts it forwards must be listed too:
// Laravel's and Symfony's trusted-proxy settings build links from
// X-Forwarded-Host (and Forwarded: host=). A direct client's copies never
// reach PHP, so they change nothing.
func TestServerNamesForwardedHosts(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.ServerNames = []string{"shop.example.com", "2001:0DB8::0001"}
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.1/32")}
	})
	for _, tc := range []struct {
		remote, host string
		hdr          []string
		want         int
	}{
		{"10.0.0.1:1", "shop.example.com", []string{"X-Forwarded-Host", "shop.example.com"}, 200},
		{"10.0.0.1:1", "shop.example.com", []string{"X-Forwarded-Host", "evil.example"}, 421},
		{"10.0.0.1:1", "shop.example.com", []string{"X-Forwarded-Host", "shop.example.com, evil.example"}, 421},
		{"10.0.0.1:1", "shop.example.com", []string{"Forwarded", `for=192.0.2.1;host="evil.example";proto=https`}, 421},
		{"10.0.0.1:1", "shop.example.com", []string{"Forwarded", `for=192.0.2.1;Host=shop.example.com`}, 200},
		{"192.0.2.9:1", "shop.example.com", []string{"X-Forwarded-Host", "evil.example"}, 200},
		// One spelling of each IPv6 address.
		{"192.0.2.9:1", "[2001:db8::1]:8080", nil, 200},
		{"192.0.2.9:1", "[2001:DB8:0:0::1]", nil, 200},
		{"192.0.2.9:1", "[2001:db8::2]", nil, 421},
	} {
		r := httptest.NewRequest("GET", "/hello.php", nil)
		r.RemoteAddr, r.Host = tc.remote, tc.host
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			r.Header.Set(tc.hdr[i], tc.hdr[i+1])
		}
		if w := e.do(r); w.Code != tc.want {
			t.Errorf("%s %s %v: %d, want %d", tc.remote, tc.host, tc.hdr, w.Code, tc.want)
		}
	}
	// A refusal's log line names the Host.
	r := httptest.NewRequest("GET", "/hello.php", nil)
	r.Host = "203.0.113.80"
	e.do(r)
	if log := e.lastLog(t); log["status"] != float64(421) || log["host"] != "203.0.113.80" {
		t.Errorf("log %v, want the refused host", log)
	}
}

package integration

import (
	"strings"
	"testing"
)

// TestPHPServerNameAndForwardedFamily: what PHP sees through the gateway
// for an IPv6 literal Host, a request without Host, and forwarding headers
// a direct (untrusted) client made up, which reach neither PHP nor Django.
func TestPHPServerNameAndForwardedFamily(t *testing.T) {
	t.Parallel()
	gw := startEchoStack(t)
	d := rawJSON(t, gw, "GET /info.php HTTP/1.1", "Host: [::1]:8080")
	if d["SERVER_NAME"] != "[::1]" || d["HTTP_HOST"] != "[::1]:8080" {
		t.Errorf("IPv6 Host: SERVER_NAME %q HTTP_HOST %q, want [::1] and [::1]:8080", d["SERVER_NAME"], d["HTTP_HOST"])
	}
	d = rawJSON(t, gw, "GET /info.php HTTP/1.0")
	if d["SERVER_NAME"] != "127.0.0.1" || d["SERVER_ADDR"] != "127.0.0.1" {
		t.Errorf("no Host: SERVER_NAME %q SERVER_ADDR %q, want the address reached", d["SERVER_NAME"], d["SERVER_ADDR"])
	}
	d = rawJSON(t, gw, "GET /info.php HTTP/1.1", "Host: example.com",
		"X-Forwarded-Port: 4444", "X-Forwarded-Prefix: //evil.example", "X-Forwarded-Ssl: on", "X-Real-IP: 203.0.113.9")
	for k, v := range d {
		if strings.HasPrefix(k, "HTTP_X_FORWARDED_") || k == "HTTP_X_REAL_IP" {
			t.Errorf("untrusted client's %s=%q reached PHP", k, v)
		}
	}
	// Django gets the gateway's own X-Forwarded-For, -Proto and -Host,
	// and none of the client's.
	d = rawJSON(t, gw, "GET /dj/ HTTP/1.1", "Host: example.com",
		"X-Forwarded-Port: 4444", "X-Forwarded-Prefix: //evil.example", "X-Forwarded-Ssl: on", "X-Real-IP: 203.0.113.9")
	for k, v := range d {
		switch k {
		case "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST":
		default:
			if strings.HasPrefix(k, "HTTP_X_FORWARDED_") || k == "HTTP_X_REAL_IP" {
				t.Errorf("untrusted client's %s=%q reached Django", k, v)
			}
		}
	}
}

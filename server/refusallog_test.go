package server

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// The gateway's own refusals are failed requests: logged at warn with
// SESSIONGATE_ACCESS_LOG=off too, with an error that says why (README,
// access_log). A body over SESSIONGATE_MAX_BODY by its Content-Length and
// a Host not in SESSIONGATE_SERVER_NAMES were answered without a reason,
// so logged at info and, with the access log off, not at all, while the
// same body sent chunked left a warning; so were a malformed path, method
// or target, and a head over SESSIONGATE_MAX_HEADER_BYTES that net/http
// let through (over TLS). A 404 or a 405 is an answer, not a failure: no
// line with the access log off.
func TestGatewayRefusalsLoggedAtWarnWithAccessLogOff(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.AccessLog = false
		c.ServerNames = []string{"example.com"}
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.1/32")}
		c.MaxBody = 10
		c.MaxHeaderBytes = 4096
	})
	for _, tc := range []struct {
		name   string
		r      *http.Request
		status int
		error  string // in the line's error; "" for no line
	}{
		{"Host not listed", rawRequest(t, "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n"), 421, `Host "evil.example" not in SESSIONGATE_SERVER_NAMES`},
		{"forwarded host not listed", forwardedFrom("10.0.0.1:1", rawRequest(t, "GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Host: evil.example\r\n\r\n")), 421, `forwarded host "evil.example" not in SESSIONGATE_SERVER_NAMES`},
		{"Host clipped", rawRequest(t, "GET / HTTP/1.1\r\nHost: "+strings.Repeat("a", 300)+".example\r\n\r\n"), 421, `Host "` + strings.Repeat("a", 100)},
		{"body over the limit", rawRequest(t, "POST /hello.php HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100)), 413, "body of 100 bytes (Content-Length) over SESSIONGATE_MAX_BODY (10)"},
		{"head over the limit", rawRequest(t, "GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: "+strings.Repeat("x", 5000)+"\r\n\r\n"), 431, "over SESSIONGATE_MAX_HEADER_BYTES (4096)"},
		{"control character in the path", rawRequest(t, "GET /a%01 HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400, "control character in path"},
		{"path above the root", rawRequest(t, "GET /%2e%2e/x HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400, "path climbs above the root"},
		{"method in lower case", rawRequest(t, "get / HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400, "method not a token in upper case"},
		{"absolute target without a host", rawRequest(t, "GET http:admin HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400, "absolute request target without a host"},
		{"TRACE", rawRequest(t, "TRACE / HTTP/1.1\r\nHost: example.com\r\n\r\n"), 405, ""},
		{"POST to a static file", rawRequest(t, "POST /style.css HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1\r\n\r\nx"), 405, ""},
		{"dotfile", rawRequest(t, "GET /.env HTTP/1.1\r\nHost: example.com\r\n\r\n"), 404, ""},
	} {
		before := len(e.logs.String())
		w := e.do(tc.r)
		logged := strings.TrimSpace(e.logs.String()[before:])
		if w.Code != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.status)
		}
		if tc.error == "" {
			if logged != "" {
				t.Errorf("%s (%d): logged with SESSIONGATE_ACCESS_LOG=off: %s", tc.name, w.Code, logged)
			}
			continue
		}
		var line struct {
			Level, Msg, Error string
			Status            int
		}
		if err := json.Unmarshal([]byte(logged), &line); err != nil {
			t.Errorf("%s (%d): no log line with SESSIONGATE_ACCESS_LOG=off (%q)", tc.name, w.Code, logged)
			continue
		}
		if line.Level != "WARN" || line.Msg != "request" || line.Status != tc.status || !strings.Contains(line.Error, tc.error) {
			t.Errorf("%s: logged %s, want a warning with status %d and error %q", tc.name, logged, tc.status, tc.error)
		}
	}
}

// The redirect listener's refusals are failed requests too: a target
// without a path to redirect.
func TestRedirectListenerRefusalsLoggedAtWarn(t *testing.T) {
	e := redirectEnv(t, ":443")
	w := e.redirect(rawRequest(t, "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	if log := e.lastLog(t); w.Code != 400 || log["level"] != "WARN" || log["error"] != errNoPathToRedirect.Error() {
		t.Errorf("OPTIONS * on the redirect listener: %d, logged %v", w.Code, log)
	}
}

// forwardedFrom is r as sent by the proxy at addr.
func forwardedFrom(addr string, r *http.Request) *http.Request {
	r.RemoteAddr = addr
	return r
}

package integration

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// startTLSLBStack runs a gateway with sessions (the PHP prepend, an
// in-memory store) on a TLS listener, in front of php-fpm and of a
// gunicorn serving echoWSGI under /dj/, the way a load balancer that
// re-encrypts to its targets reaches it. env adds SESSIONGATE_* settings.
// It returns the gateway's https:// URL.
func startTLSLBStack(t *testing.T, env ...string) string {
	t.Helper()
	root := fixtureRoot(t, "testdata/session/set.php")
	writeTree(t, root, map[string]string{"info.php": dumpPHP})
	prepend := writePrepend(t)
	return serveEchoStack(t, root, true, append([]string{
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey, "SESSIONGATE_PHP_PREPEND=" + prepend}, env...))
}

// tlsGet sends GET target to the TLS gateway at base with hdr (name,
// value pairs) and returns the response and its body.
func tlsGet(t *testing.T, base, target string, hdr ...string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return getVia(t, client, base, target, hdr...)
}

// TestTLSBehindReencryptingLB: a load balancer that terminates the
// client's connection and opens a new TLS one to the gateway (an HTTPS
// target group) says in X-Forwarded-Proto what its client used. Its
// "http" must win over the TLS of its own hop, for PHP's HTTPS and
// REQUEST_SCHEME, Django's X-Forwarded-Proto and the session cookie's
// Secure attribute alike, as Django's SECURE_PROXY_SSL_HEADER and
// Symfony's trusted proxies would read it; otherwise an http client is
// told it is on https (no redirect to https) and gets a Secure cookie its
// browser drops, so it can never log in. An untrusted peer's header, and a
// trusted one that says nothing, leave the TLS connection HTTPS.
func TestTLSBehindReencryptingLB(t *testing.T) {
	t.Parallel()
	base := startTLSLBStack(t, "SESSIONGATE_TRUSTED_PROXIES=127.0.0.0/8")
	untrusted := startTLSLBStack(t)
	for _, c := range []struct {
		name  string
		base  string
		hdr   []string
		https bool
	}{
		{"trusted LB, client on http", base, []string{"X-Forwarded-Proto", "http", "X-Forwarded-For", "203.0.113.7"}, false},
		{"trusted LB, client on https", base, []string{"X-Forwarded-Proto", "https", "X-Forwarded-For", "203.0.113.7"}, true},
		{"trusted LB, no X-Forwarded-Proto", base, []string{"X-Forwarded-For", "203.0.113.7"}, true},
		{"untrusted client says http", untrusted, []string{"X-Forwarded-Proto", "http"}, true},
	} {
		scheme := map[bool]string{false: "http", true: "https"}[c.https]
		_, body := tlsGet(t, c.base, "/info.php", c.hdr...)
		php := phpDump(t, "/info.php", body)
		if php["REQUEST_SCHEME"] != scheme || (php["HTTPS"] == "on") != c.https {
			t.Errorf("%s: PHP REQUEST_SCHEME %q HTTPS %q, want %s", c.name, php["REQUEST_SCHEME"], php["HTTPS"], scheme)
		}
		_, body = tlsGet(t, c.base, "/dj/", c.hdr...)
		var dj map[string]string
		if err := json.Unmarshal([]byte(body), &dj); err != nil {
			t.Fatalf("%s: Django echo: %v: %q", c.name, err, body)
		}
		if dj["HTTP_X_FORWARDED_PROTO"] != scheme {
			t.Errorf("%s: Django X-Forwarded-Proto %q, want %s", c.name, dj["HTTP_X_FORWARDED_PROTO"], scheme)
		}
		res, body := tlsGet(t, c.base, "/set.php?k=a&v=1", c.hdr...)
		var ck *http.Cookie
		for _, k := range res.Cookies() {
			if k.Name == "sessionid" {
				ck = k
			}
		}
		if res.StatusCode != 200 || body != "ok" || ck == nil {
			t.Fatalf("%s: set.php %d %q, cookies %q", c.name, res.StatusCode, body, res.Header.Values("Set-Cookie"))
		}
		if ck.Secure != c.https {
			t.Errorf("%s: session cookie Secure=%v, want %v: %s", c.name, ck.Secure, c.https, res.Header.Get("Set-Cookie"))
		}
	}
}

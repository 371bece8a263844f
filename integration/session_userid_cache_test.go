package integration

import (
	"net/url"
	"testing"
	"time"
)

// TestSessionUserIDPageGetsCacheLimiter: a page that names the user
// through sessiongate_user_id() without session_start() depends on the
// session as much as one that started it, and gets the cache headers PHP's
// session.cache_limiter gives the latter (nocache by default: no-store and
// an Expires long past). It went out with no Cache-Control, Expires or
// Vary: heuristically cacheable (RFC 9111 section 4.2.2), and a shared
// cache keyed on the URL alone (a CDN's "cache everything" rule) served
// user 7's page to everyone. Behind nginx a page could only read the
// session through session_start(), which sent them. Another limiter gives
// its own headers, an empty one none, and a script's own Cache-Control
// stays as it is.
func TestSessionUserIDPageGetsCacheLimiter(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	_, _, ck := s.gws[0].get(t, "/set.php?k=_auth_user_id&v=7", "")
	const past = "Thu, 19 Nov 1981 08:52:00 GMT"
	for _, tc := range []struct {
		query             string
		cacheControl      string
		expires, pragma   string // "*": any date but the one long past
		lastModifiedIsSet bool
	}{
		{"", "no-store, no-cache, must-revalidate", past, "no-cache", false},
		{"limiter=private", "private, max-age=10800", past, "", true},
		{"limiter=private_no_expire", "private, max-age=10800", "", "", true},
		{"limiter=public", "public, max-age=10800", "*", "", true},
		{"limiter=", "", "", "", false},
		{"cc=" + url.QueryEscape("private, max-age=60"), "private, max-age=60", "", "", false},
	} {
		res, body, _ := s.gws[0].get(t, "/whoami_cache.php?"+tc.query, ck)
		h := res.Header
		if res.StatusCode != 200 || body != "user:7" {
			t.Fatalf("?%s: %d %q", tc.query, res.StatusCode, body)
		}
		expiresOK := h.Get("Expires") == tc.expires
		if tc.expires == "*" {
			e, err := time.Parse(time.RFC1123, h.Get("Expires"))
			expiresOK = err == nil && e.After(time.Now())
		}
		if h.Get("Cache-Control") != tc.cacheControl || !expiresOK || h.Get("Pragma") != tc.pragma || (h.Get("Last-Modified") != "") != tc.lastModifiedIsSet {
			t.Errorf("?%s: Cache-Control %q Expires %q Pragma %q Last-Modified %q; want %q %q %q, Last-Modified: %v",
				tc.query, h.Get("Cache-Control"), h.Get("Expires"), h.Get("Pragma"), h.Get("Last-Modified"),
				tc.cacheControl, tc.expires, tc.pragma, tc.lastModifiedIsSet)
		}
	}
}

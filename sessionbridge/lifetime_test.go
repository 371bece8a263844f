package sessionbridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// A browser can hold two of our own cookies under the session cookie's name
// once their attributes differ: after the operator sets
// SESSIONGATE_SESSION_COOKIE_DOMAIN, the host-only cookie of an older
// session stays next to the new Domain cookie, and the browser sends the
// older one first. Both verify; the one whose session is gone must not hide
// the live one, or every login is lost on the next request until the stale
// cookie expires (MAX_AGE, 14 days by default).
func TestStaleSignedCookieDoesNotShadowLiveSession(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		m := newTestManager(t, mode, nil)
		live := createSession(t, m, `{"user":"ana"}`)
		stale, _ := m.cookie.cookie(NewID(), false) // its session is gone
		mine, _ := m.cookie.cookie(live, false)
		for name, headers := range map[string][]string{
			"one header":  {"sessionid=" + stale.Value + "; sessionid=" + mine.Value},
			"two headers": {"sessionid=" + stale.Value, "sessionid=" + mine.Value},
		} {
			r := httptest.NewRequest("GET", "/", nil)
			for _, h := range headers {
				r.Header.Add("Cookie", h)
			}
			s, err := m.Open(context.Background(), r, false)
			if err != nil {
				t.Fatalf("%s %s: %v", mode, name, err)
			}
			got, data := s.ID(), string(s.Data())
			s.Release(context.Background())
			if got != live || data != `{"user":"ana"}` {
				t.Errorf("%s %s: session %q %s, want the live one %q", mode, name, got, data, live)
			}
		}
	}
}

// idOf is the first verified ID of r's cookies.
func idOf(c *cookieCodec, r *http.Request) (string, bool) {
	ids := c.idsFrom(r)
	if len(ids) == 0 {
		return "", false
	}
	return ids[0], true
}

// An app's expiry in seconds (Django's set_expiry(n)) is an idle timeout:
// each request that uses the session slides the store TTL by n. The cookie
// must slide with it on every app's requests, not only Django's (whose
// middleware repeats the expiry on each response): a user who goes on
// working in PHP pages would otherwise lose the cookie n seconds after the
// last Django page, while the session is still live.
func TestAppExpiryCookieSlidesWithTTL(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { mem.Close() })
		ts := &ttlStore{Store: mem}
		m := newTestManager(t, mode, ts)
		id := createSession(t, m, `{"a":1}`)
		// Django: set_expiry(90).
		h := setAppExpiry(t, m, id, 90*time.Second)
		if ck := cookieOf(t, h); ck.MaxAge != 90 {
			t.Fatalf("%s: cookie after set_expiry(90): %v", mode, h)
		}
		// PHP, later: session_start() and the lazy write's touch.
		s, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err := s.Touch(ctx, id); err != nil {
			t.Fatal(err)
		}
		h = http.Header{}
		s.SetCookie(h)
		s.Release(ctx)
		if ttl := ts.last(t); ttl != 90*time.Second {
			t.Fatalf("%s: TTL %v, want the app's 90s", mode, ttl)
		}
		if cks := (&http.Response{Header: h}).Cookies(); len(cks) != 1 || cks[0].MaxAge != 90 || cks[0].Value == "" {
			t.Errorf("%s: the TTL slid to 90s but the cookie did not: Set-Cookie %q", mode, h.Values("Set-Cookie"))
		}
	}
}

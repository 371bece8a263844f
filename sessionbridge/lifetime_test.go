package sessionbridge

import (
	"context"
	"encoding/json"
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

// README, "Expiry": the absolute lifetime (SESSIONGATE_SESSION_MAX_AGE)
// counts from the creation of the session's ID, so a regeneration (a
// login) starts a new one: the session it moves to still loads past the
// old ID's end, and ends a lifetime after the regeneration.
func TestRegenerationStartsANewAbsoluteLifetime(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil) // MaxAge 1h, idle 10 min
	x := createSession(t, m, `{"a":1}`)
	base := time.Now()
	for minute := 8; minute < 50; minute += 8 {
		m.now = func() time.Time { return base.Add(time.Duration(minute) * time.Minute) }
		s, err := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err != nil || s.ID() != x {
			t.Fatalf("minute %d: active session lost: %v %q", minute, err, s.ID())
		}
		if err := s.Touch(ctx, x); err != nil {
			t.Fatal(err)
		}
		s.Release(ctx)
	}
	m.now = func() time.Time { return base.Add(50 * time.Minute) }
	a, err := m.Open(ctx, requestWithCookie(t, m, x), false)
	if err != nil || a.ID() != x {
		t.Fatalf("open before the regeneration: %v %q", err, a.ID())
	}
	if err := a.Retire(ctx, x); err != nil {
		t.Fatal(err)
	}
	y := NewID()
	if _, err := a.Write(ctx, y, json.RawMessage(`{"a":1,"login":1}`), nil); err != nil {
		t.Fatal(err)
	}
	a.Release(ctx)
	// Used every 8 minutes (never idle), so only an absolute lifetime can
	// end it: not the first ID's, which ends at 60 min, but its own, at
	// 110 min.
	for minute := 58; minute <= 111; minute += 8 {
		if minute > 106 {
			minute = 111
		}
		m.now = func() time.Time { return base.Add(time.Duration(minute) * time.Minute) }
		s, err := m.Open(ctx, requestWithCookie(t, m, y), false)
		if err != nil {
			t.Fatal(err)
		}
		if loads, want := s.ID() == y, minute < 110; loads != want {
			t.Fatalf("minute %d (first ID created at 0, regenerated at 50, max age 1h): loads %v, want %v", minute, loads, want)
		}
		if err := s.Touch(ctx, y); err != nil {
			t.Fatal(err)
		}
		s.Release(ctx)
	}
}

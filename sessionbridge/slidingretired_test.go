package sessionbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A session with an app expiry in seconds (Django's set_expiry(n)) gets its
// cookie again on every response (SetCookie's slidingCookie). A request A
// of the same browser that loaded the session before a login B
// regenerated it (cycle_key(), session_regenerate_id(true)) and answers
// after B (merge mode: any concurrent request; strict mode: a page that
// let its session go early, session_write_close() or read_and_close) sent
// the old ID's cookie again: it replaced the one B gave the browser, which
// then named a tombstone, and the user who had just logged in was logged
// out. The re-send of a session the request no longer holds now checks
// that it is still stored.
func TestSlidingCookieOfARetiredSessionIsNotSent(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockMerge, LockStrict} {
		m := newTestManager(t, mode, nil) // MaxAge 1h
		x := createSession(t, m, `{"cart":1}`)
		setAppExpiry(t, m, x, 30*time.Minute)

		// A: a page of the session, still running.
		a, err := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err != nil || a.ID() != x {
			t.Fatalf("%s: A: %v %q", mode, err, a.ID())
		}
		if mode == LockStrict {
			a.Close(ctx, x) // read_and_close / session_write_close(), then work
		}

		// B: the login, cycle_key().
		b, err := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err != nil || b.ID() != x {
			t.Fatalf("%s: B: %v %q", mode, err, b.ID())
		}
		y := NewID()
		if _, err := b.Rotate(ctx, x, y, json.RawMessage(`{"cart":1,"user":"ana"}`), true); err != nil {
			t.Fatal(err)
		}
		hb := http.Header{}
		b.SetCookie(hb)
		b.Release(ctx)
		if ck := cookieOf(t, hb); ck.Value == "" {
			t.Fatalf("%s: B set no cookie: %v", mode, hb)
		}

		// A answers after B.
		ha := http.Header{}
		a.SetCookie(ha)
		a.Release(ctx)
		if ha.Get("Set-Cookie") == "" {
			continue
		}
		ck := cookieOf(t, ha)
		r := requestWithCookie(t, m, "")
		r.Header.Set("Cookie", "sessionid="+ck.Value) // the browser's jar now
		s, err := m.Open(ctx, r, false)
		if err != nil {
			t.Fatal(err)
		}
		got := s.ID()
		s.Release(ctx)
		if got != y {
			t.Errorf("%s: the request that loaded the session before the login answered after it with Set-Cookie %q; the browser's next request has session %q (new %q, old %q): logged out",
				mode, strings.SplitN(ha.Get("Set-Cookie"), ";", 2)[0][:20]+"...", got, y, x)
		}
	}
}

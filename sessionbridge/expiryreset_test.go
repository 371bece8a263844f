package sessionbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestNewSessionAfterDestroyHasNoOldExpiry: an app's own expiry belongs to
// the session it was set on (Django keeps it as _session_expiry in that
// session's data). A logout page that destroys the session and starts a new
// one in the same request (PHP: session_destroy(); session_start();
// $_SESSION['flash'] = ...) must give the new session the gateway's own
// policy, not the old one's browser-session cookie or idle timeout: its
// data holds no _session_expiry, Django then sends no expiry either, and a
// user logging in next on that browser would inherit the previous user's
// choice.
func TestNewSessionAfterDestroyHasNoOldExpiry(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		for _, old := range []struct {
			idle    time.Duration
			browser bool
		}{{0, true}, {300 * time.Second, false}} {
			m := newTestManager(t, mode, nil)
			id := createSession(t, m, `{"_auth_user_id":"1"}`)
			setAppExpiry(t, m, id, old.idle)
			if old.browser {
				s, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
				s.SetExpiry(0, true)
				if err := s.Touch(ctx, id); err != nil {
					t.Fatal(err)
				}
				s.Release(ctx)
			}

			s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Destroy(ctx, id); err != nil {
				t.Fatal(err)
			}
			fresh := NewID()
			if err := s.Announce(fresh); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(ctx, fresh, json.RawMessage(`{"flash":"bye"}`), []member{}); err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			s.SetCookie(h)
			s.Release(ctx)
			ck := cookieOf(t, h)
			if ck.MaxAge != int(time.Hour/time.Second) {
				t.Errorf("%s, old expiry %v browser %v: new session's cookie Max-Age %d, want the gateway's %d",
					mode, old.idle, old.browser, ck.MaxAge, int(time.Hour/time.Second))
			}
			rec, err := m.o.Store.Load(ctx, fresh)
			if err != nil {
				t.Fatal(err)
			}
			if r, err := decodeRecord(rec.Value); err != nil || r.Expiry != 0 || r.Browser {
				t.Errorf("%s, old expiry %v browser %v: new record %s (%v), want no app expiry", mode, old.idle, old.browser, rec.Value, err)
			}
		}
	}
}

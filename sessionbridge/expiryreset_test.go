package sessionbridge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
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

// TestPHPClearedSessionDropsItsAppExpiry: the same for a PHP page that
// clears the session instead of destroying it ($_SESSION = [], then
// session_regenerate_id(true) or not): the data no longer holds Django's
// _session_expiry, so the session's own expiry must go with it, as after
// session_destroy(); session_start(), or the next user to log in on that
// browser inherits the previous one's browser-session cookie or short idle
// timeout while Django, reading the session, sees none. A regeneration
// that moves the data, _session_expiry included (a login), keeps it.
func TestPHPClearedSessionDropsItsAppExpiry(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		for _, c := range []struct {
			name  string
			regen bool
			data  string
			keep  bool
		}{
			{"regenerate cleared", true, `{}`, false},
			{"regenerate cleared, then set", true, `{"flash":"bye"}`, false},
			{"cleared", false, `{}`, false},
			{"regenerate kept (a login)", true, `{"_auth_user_id":"1","_session_expiry":300,"n":1}`, true},
			{"written, expiry kept", false, `{"_auth_user_id":"1","_session_expiry":300,"n":1}`, true},
		} {
			m := newTestManager(t, mode, nil)
			x := createSession(t, m, `{"_auth_user_id":"1","_session_expiry":300}`)
			setAppExpiry(t, m, x, 300*time.Second)
			b := newTestBridge(t, m, x)
			payload, err := phpserial.EncodeSession(json.RawMessage(c.data), phpserial.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			id := x
			msgs := []message{{Op: "write", ID: x, Payload: payload}}
			if c.regen {
				id = NewID()
				msgs = []message{
					{Op: "destroy", ID: x, Payload: []byte("regenerate")},
					{Op: "open", ID: id},
					{Op: "write", ID: id, Payload: payload},
				}
			}
			for _, msg := range msgs {
				if err := b.apply(msg); err != nil {
					t.Fatalf("%s %s: %s: %v", mode, c.name, msg.Op, err)
				}
			}
			h := http.Header{}
			b.sess.SetCookie(h)
			b.sess.Release(ctx)
			r := storedRecord(t, m, id)
			want := int64(0)
			if c.keep {
				want = 300_000
			}
			if r.Expiry != want {
				t.Errorf("%s, %s: the session's app expiry is %d ms, want %d", mode, c.name, r.Expiry, want)
			}
			if ck := cookieOf(t, h); !c.keep && ck.MaxAge != int(time.Hour/time.Second) {
				t.Errorf("%s, %s: cookie Max-Age %d, want the gateway's %d", mode, c.name, ck.MaxAge, int(time.Hour/time.Second))
			}
		}
	}
}

// A cleared session's regeneration that the store then fails (503) leaves
// the old session as it was, its app expiry included: its data still holds
// _session_expiry.
func TestFailedClearingRegenerationKeepsTheAppExpiry(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { mem.Close() })
		fs := &failNewStore{Store: mem}
		m := newTestManager(t, mode, fs)
		x := createSession(t, m, `{"_auth_user_id":"1","_session_expiry":300}`)
		setAppExpiry(t, m, x, 300*time.Second)
		b := newTestBridge(t, m, x)
		fs.arm()
		y := NewID()
		payload, _ := phpserial.EncodeSession(json.RawMessage(`{}`), phpserial.DefaultLimits())
		var werr error
		for _, msg := range []message{
			{Op: "destroy", ID: x, Payload: []byte("regenerate")},
			{Op: "open", ID: y},
			{Op: "write", ID: y, Payload: payload},
		} {
			if err := b.apply(msg); err != nil {
				werr = err
			}
		}
		if !errors.Is(werr, ErrUnavailable) {
			t.Fatalf("%v: %v, want ErrUnavailable", mode, werr)
		}
		b.sess.Release(ctx)
		rec, err := mem.Load(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := decodeRecord(rec.Value); err != nil || r.Expiry != 300_000 {
			t.Errorf("%v: the old session after the failed regeneration: %s (%v), want its app expiry kept", mode, rec.Value, err)
		}
	}
}

// TestPHPClearedSessionDropsItsDeadline: the fixed end Django's
// set_expiry(datetime) gives a session (SetDeadline, kept in the data as an
// ISO _session_expiry) goes with the data too when a PHP page clears it, as
// an idle expiry does: a logout in PHP must not leave the next user of the
// browser a session cut short at the previous one's deadline.
func TestPHPClearedSessionDropsItsDeadline(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		m := newTestManager(t, mode, nil)
		x := createSession(t, m, `{"_auth_user_id":"1","_session_expiry":"2099-01-01T00:00:00"}`)
		s, err := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err != nil {
			t.Fatal(err)
		}
		s.SetDeadline(time.Now().Add(time.Hour))
		if err := s.Touch(ctx, x); err != nil {
			t.Fatal(err)
		}
		s.Release(ctx)
		b := newTestBridge(t, m, x)
		payload, err := phpserial.EncodeSession(json.RawMessage(`{}`), phpserial.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if err := b.apply(message{Op: "write", ID: x, Payload: payload}); err != nil {
			t.Fatalf("%s: write: %v", mode, err)
		}
		b.sess.Release(ctx)
		rec, err := m.o.Store.Load(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeRecord(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		if r.Until != 0 {
			t.Errorf("%s: the cleared session keeps its fixed end %d", mode, r.Until)
		}
	}
}

// TestLinkedPHPSessionKeepsItsAppExpiry: a PHP page that stores one object
// under two keys, or links two keys by reference, writes a session the
// codec keeps whole ({"__php_session__": ...}, docs/protocol.md "A whole
// linked PHP session"). Django's _session_expiry is still in its PHP text,
// where PHP keeps it: the session's own expiry (idle seconds, a
// browser-session cookie) stays, whether the session was linked before the
// write, after it, or both. It goes only when the PHP text no longer holds
// the key (a logout that clears the session, linked or not).
func TestLinkedPHPSessionKeepsItsAppExpiry(t *testing.T) {
	const (
		// $o = new stdClass; $_SESSION['a'] = $o; $_SESSION['b'] = $o;
		linked = `a:4:{s:13:"_auth_user_id";s:1:"1";s:15:"_session_expiry";i:300;s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:4;}`
		// Then $_SESSION['n'] = 1 before the object.
		linkedChanged = `a:5:{s:13:"_auth_user_id";s:1:"1";s:15:"_session_expiry";i:300;s:1:"n";i:1;s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:5;}`
		// $_SESSION['_session_expiry'] = &$_SESSION['x'];
		linkedByReference = `a:2:{s:1:"x";i:300;s:15:"_session_expiry";R:2;}`
		// $_SESSION = ['a' => $o, 'b' => $o]: a logout.
		linkedCleared = `a:2:{s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:2;}`
		cleared       = `a:0:{}`
	)
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		for _, c := range []struct {
			name    string
			browser bool     // the app's expiry is a browser-session cookie, else 300 s
			writes  []string // one PHP page each
			keep    bool
		}{
			{"linked by a write", false, []string{linked}, true},
			{"linked by a write, browser cookie", true, []string{linked}, true},
			{"linked by a reference", false, []string{linkedByReference}, true},
			{"linked, then changed", false, []string{linked, linkedChanged}, true},
			{"linked, then unlinked", false, []string{linked, `a:2:{s:15:"_session_expiry";i:300;s:1:"n";i:2;}`}, true},
			{"linked, then cleared", false, []string{linked, cleared}, false},
			{"linked, then cleared but linked", false, []string{linked, linkedCleared}, false},
			{"cleared but linked", false, []string{linkedCleared}, false},
		} {
			m := newTestManager(t, mode, nil)
			x := createSession(t, m, `{"_auth_user_id":"1","_session_expiry":300}`)
			if c.browser {
				s, err := m.Open(ctx, requestWithCookie(t, m, x), false)
				if err != nil {
					t.Fatal(err)
				}
				s.SetExpiry(0, true)
				if err := s.Touch(ctx, x); err != nil {
					t.Fatal(err)
				}
				s.Release(ctx)
			} else {
				setAppExpiry(t, m, x, 300*time.Second)
			}
			var h http.Header
			for _, w := range c.writes {
				b := newTestBridge(t, m, x)
				if err := b.apply(message{Op: "write", ID: x, Payload: []byte(w)}); err != nil {
					t.Fatalf("%s, %s: write %s: %v", mode, c.name, w, err)
				}
				h = http.Header{}
				b.sess.SetCookie(h)
				b.sess.Release(ctx)
			}
			r := storedRecord(t, m, x)
			wantExpiry, wantBrowser, wantMaxAge := int64(0), false, int(time.Hour/time.Second)
			switch {
			case c.keep && c.browser:
				wantBrowser = true
			case c.keep:
				wantExpiry, wantMaxAge = 300_000, 300
			}
			if r.Expiry != wantExpiry || r.Browser != wantBrowser {
				t.Errorf("%s, %s: stored %s\nthe session's app expiry is %d ms, browser %v; want %d ms, browser %v",
					mode, c.name, r.encode(), r.Expiry, r.Browser, wantExpiry, wantBrowser)
			}
			// An idle expiry's cookie slides with every response; a
			// browser-session cookie that stays is not sent again.
			if c.keep && c.browser {
				if sc := h.Get("Set-Cookie"); sc != "" {
					t.Errorf("%s, %s: a new cookie for an unchanged browser-session expiry: %s", mode, c.name, sc)
				}
			} else if cks := (&http.Response{Header: h}).Cookies(); len(cks) != 1 || cks[0].MaxAge != wantMaxAge {
				t.Errorf("%s, %s: cookies %v, want one with Max-Age %d", mode, c.name, h["Set-Cookie"], wantMaxAge)
			}
		}
	}
}

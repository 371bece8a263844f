package sessionbridge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
)

// A regeneration whose request holds no lock of the old session (merge
// mode, or strict mode once it released it) moves to the new session what
// other requests stored in the old one after it loaded it; these tests
// guard that the session's record moves with that data (the app expiry
// another request set), that nothing moves from a session a logout or
// another login ended meanwhile, and that session_regenerate_id(false)
// (the old session stays) does the same as session_regenerate_id(true).

// phpMessages applies PHP's messages to b, failing the test on an error.
func phpMessages(t *testing.T, b *phpBridge, msgs ...message) {
	t.Helper()
	for _, msg := range msgs {
		if err := b.apply(msg); err != nil {
			t.Fatalf("%s %s: %v", msg.Op, shortID(msg.ID), err)
		}
	}
}

// phpWriteMsg is PHP's write of data (JSON) as session id.
func phpWriteMsg(t *testing.T, id, data string) message {
	t.Helper()
	payload, err := phpserial.EncodeSession(json.RawMessage(data), phpserial.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return message{Op: "write", ID: id, Payload: payload}
}

// regenerations are the ways a request moves session x (loaded as
// {"n":1}) to a new ID, with the user "ana" added: PHP's
// session_regenerate_id(true) (its write of the new ID moves the session,
// moveTo; or a retirement applied first, Retire, then the write),
// session_regenerate_id(false) (the old session stays), Django's
// cycle_key(). They return the new ID and the error.
var regenerations = []struct {
	name   string
	strict bool // also in strict mode, after the lock was released
	run    func(t *testing.T, b *phpBridge, x string) (string, error)
}{
	{"php-regenerate-true", true, func(t *testing.T, b *phpBridge, x string) (string, error) {
		z := NewID()
		phpMessages(t, b, message{Op: "destroy", ID: x, Payload: []byte("regenerate")}, message{Op: "open", ID: z, Payload: []byte("regenerate")})
		return z, b.apply(phpWriteMsg(t, z, `{"n":1,"user":"ana"}`))
	}},
	{"php-retired-first", true, func(t *testing.T, b *phpBridge, x string) (string, error) {
		z := NewID()
		if err := b.sess.Retire(context.Background(), x); err != nil {
			return z, err
		}
		phpMessages(t, b, message{Op: "open", ID: z})
		return z, b.apply(phpWriteMsg(t, z, `{"n":1,"user":"ana"}`))
	}},
	{"php-regenerate-false", true, func(t *testing.T, b *phpBridge, x string) (string, error) {
		z := NewID()
		phpMessages(t, b, message{Op: "open", ID: z, Payload: []byte("regenerate")})
		return z, b.apply(phpWriteMsg(t, z, `{"n":1,"user":"ana"}`))
	}},
	{"django-cycle-key", false, func(t *testing.T, b *phpBridge, x string) (string, error) {
		z := NewID()
		_, err := b.sess.Rotate(context.Background(), x, z, json.RawMessage(`{"n":1,"user":"ana"}`), true)
		return z, err
	}},
}

// answered runs a regeneration on b and ends its request as the gateway
// does: the cookie the answer carries, then the release.
func answered(t *testing.T, run func(*testing.T, *phpBridge, string) (string, error), b *phpBridge, x string) (z, cookie string, err error) {
	t.Helper()
	z, err = run(t, b, x)
	h := http.Header{}
	b.sess.SetCookie(h)
	b.sess.Release(context.Background())
	return z, h.Get("Set-Cookie"), err
}

// unlockedModes are the lock modes in which a regeneration holds no lock of the
// old session; strict mode's request released it with a write first
// (session_write_close(), then session_start() again).
var unlockedModes = []LockMode{LockMerge, LockStrict}

// openUnlocked opens x for a request that holds no lock of it when it
// regenerates: in strict mode it writes first, which releases the lock.
func openUnlocked(t *testing.T, m *Manager, x string) *phpBridge {
	t.Helper()
	b := newTestBridge(t, m, x)
	if m.o.LockMode == LockStrict {
		phpMessages(t, b, phpWriteMsg(t, x, `{"n":1}`))
	}
	return b
}

// Request P loads session X; request D (Django) then gives X an expiry of
// its own (set_expiry(300), or set_expiry(0): a browser-session cookie,
// the "remember me" box unticked) and stores it, in the record and in the
// data's _session_expiry. P's login then moves the session to a new ID.
// D's _session_expiry moves along with D's data, and so must the record's
// expiry: the new session's TTL and cookie follow it, as they do when a
// plain write is merged onto D's record. Before, the new record took P's
// expiry as loaded: a persistent two-week cookie for a user who had just
// asked for a browser-session one.
func TestRegenerationKeepsAConcurrentAppExpiry(t *testing.T) {
	expiries := []struct {
		name    string
		idle    time.Duration
		browser bool
	}{{"idle300s", 5 * time.Minute, false}, {"browser-close", 0, true}}
	for _, mode := range unlockedModes {
		for _, rg := range regenerations {
			if mode == LockStrict && !rg.strict {
				continue
			}
			for _, ex := range expiries {
				t.Run(string(mode)+"/"+rg.name+"/"+ex.name, func(t *testing.T) {
					ctx := context.Background()
					m := newTestManager(t, mode, nil)
					x := createSession(t, m, `{"n":1}`)
					p := openUnlocked(t, m, x)
					d, err := m.Open(ctx, requestWithCookie(t, m, x), false)
					if err != nil {
						t.Fatal(err)
					}
					d.SetExpiry(ex.idle, ex.browser)
					marker := `{"n":1,"_session_expiry":300}`
					if ex.browser {
						marker = `{"n":1,"_session_expiry":0}`
					}
					if _, err := d.WriteReencoded(ctx, x, json.RawMessage(marker)); err != nil {
						t.Fatal(err)
					}
					d.Release(ctx)

					z, ck, err := answered(t, rg.run, p, x)
					if err != nil {
						t.Fatal(err)
					}
					dec := storedRecord(t, m, z)
					if !strings.Contains(string(dec.Data), `"_session_expiry"`) || !strings.Contains(string(dec.Data), `"user":"ana"`) {
						t.Fatalf("the new session holds %s: D's change did not move along", dec.Data)
					}
					if !strings.HasPrefix(ck, "sessionid=") {
						t.Fatalf("no cookie for the new session: %q", ck)
					}
					if dec.Expiry != ex.idle.Milliseconds() || dec.Browser != ex.browser {
						t.Errorf("the new session's record has expiry %d ms, browser %v; D set %d ms, browser %v", dec.Expiry, dec.Browser, ex.idle.Milliseconds(), ex.browser)
					}
					if ex.browser && (strings.Contains(ck, "Max-Age") || strings.Contains(ck, "Expires")) {
						t.Errorf("the new cookie is persistent though D asked for a browser-session one: %s", ck)
					}
					if !ex.browser && !strings.Contains(ck, "Max-Age=300") {
						t.Errorf("the new cookie does not carry D's 300 s: %s", ck)
					}
				})
			}
		}
	}
}

// The regenerating request's own set_expiry() still wins over the one
// another request set meanwhile, as for a merged write.
func TestRegenerationsOwnExpiryWinsOverAConcurrentOne(t *testing.T) {
	for _, mode := range unlockedModes {
		for _, rg := range regenerations {
			if mode == LockStrict && !rg.strict {
				continue
			}
			t.Run(string(mode)+"/"+rg.name, func(t *testing.T) {
				m := newTestManager(t, mode, nil)
				x := createSession(t, m, `{"n":1}`)
				p := openUnlocked(t, m, x)
				setAppExpiry(t, m, x, 5*time.Minute)
				p.sess.SetExpiry(2*time.Minute, false)
				z, ck, err := answered(t, rg.run, p, x)
				if err != nil {
					t.Fatal(err)
				}
				dec := storedRecord(t, m, z)
				if dec.Expiry != (2*time.Minute).Milliseconds() || !strings.Contains(ck, "Max-Age=120") {
					t.Errorf("record expiry %d ms, cookie %q: the request's own 120 s lost to the other request's", dec.Expiry, ck)
				}
			})
		}
	}
}

// Request A loads session X, logged in; request B then ends X: a logout
// (session_destroy(), Django's flush()) or a login
// (session_regenerate_id(true): X is a tombstone, the browser gets B's new
// cookie). A's regeneration, session_regenerate_id() with or without true,
// must then get 503 and store nothing: storing A's copy of X under a new
// ID with its cookie would log the logged-out user in again, or replace
// B's login cookie in the browser. session_regenerate_id(false) stored it
// (in merge mode, and in strict mode after A released the lock), and so
// did session_regenerate_id(true) in strict mode after the release.
func TestRegenerationAfterALogoutOrLoginStoresNothing(t *testing.T) {
	for _, mode := range unlockedModes {
		for _, rg := range regenerations {
			if mode == LockStrict && !rg.strict {
				continue
			}
			for _, by := range []string{"logout", "login"} {
				t.Run(string(mode)+"/"+rg.name+"/after-"+by, func(t *testing.T) {
					ctx := context.Background()
					m := newTestManager(t, mode, nil)
					x := createSession(t, m, `{"n":1}`)
					a := openUnlocked(t, m, x)
					b, err := m.Open(ctx, requestWithCookie(t, m, x), false)
					if err != nil {
						t.Fatal(err)
					}
					var y string
					if by == "logout" {
						if err := b.Destroy(ctx, x); err != nil {
							t.Fatal(err)
						}
					} else {
						y = NewID()
						if _, err := b.moveTo(ctx, x, y, []member{{Key: "n", Value: json.RawMessage(`1`)}, {Key: "user", Value: json.RawMessage(`"bob"`)}}, []member{{Key: "n", Value: json.RawMessage(`1`)}}); err != nil {
							t.Fatal(err)
						}
					}
					b.SetCookie(http.Header{})
					b.Release(ctx)
					before, _ := m.o.Store.Load(ctx, x)

					z, ck, err := answered(t, rg.run, a, x)
					if !errors.Is(err, errDestroyedConcurrently) {
						t.Errorf("the regeneration after the %s: error %v, want %v (503)", by, err, errDestroyedConcurrently)
					}
					if rec, _ := m.o.Store.Load(ctx, z); rec.Version != 0 {
						t.Errorf("the regeneration after the %s stored the session's old data under a new ID: %s", by, rec.Value)
					}
					if ck != "" {
						t.Errorf("the regeneration after the %s sends a cookie: %q", by, ck)
					}
					if after, _ := m.o.Store.Load(ctx, x); after.Version != before.Version {
						t.Errorf("the old ID changed: %q, was %q", after.Value, before.Value)
					}
					if by == "login" {
						if got := storedData(t, m, y); got != `{"n":1,"user":"bob"}` {
							t.Errorf("B's new session holds %s", got)
						}
					}
					// No lock of X is left behind (strict mode took it
					// again): a request of the old cookie goes at once.
					start := time.Now()
					if _, err := m.Open(ctx, requestWithCookie(t, m, x), false); err != nil || time.Since(start) > time.Second {
						t.Errorf("a request of the old cookie: %v after %v", err, time.Since(start))
					}
				})
			}
		}
	}
}

// README (merge mode): "A login (session_regenerate_id(), Django's
// cycle_key()) moves to the new session what other requests stored in the
// old one while it ran". session_regenerate_id(false) moved nothing: a
// key another tab stored in X after request A loaded it was missing from
// the new session Z, which the browser holds from A's answer on. Strict
// mode after the release takes the lock again and moves it too. The old
// session stays as it is.
func TestRegenerateKeepingTheOldSessionCarriesAConcurrentWrite(t *testing.T) {
	for _, mode := range unlockedModes {
		t.Run(string(mode), func(t *testing.T) {
			ctx := context.Background()
			m := newTestManager(t, mode, nil)
			x := createSession(t, m, `{"n":1}`)
			a := openUnlocked(t, m, x)
			b, err := m.Open(ctx, requestWithCookie(t, m, x), false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Write(ctx, x, json.RawMessage(`{"n":1,"cart":3}`), nil); err != nil {
				t.Fatal(err)
			}
			b.Release(ctx)
			z := NewID()
			phpMessages(t, a, message{Op: "open", ID: z, Payload: []byte("regenerate")}, phpWriteMsg(t, z, `{"n":1,"logged":1}`))
			a.sess.SetCookie(http.Header{})
			a.sess.Release(ctx)
			if got, want := storedData(t, m, z), `{"n":1,"cart":3,"logged":1}`; got != want {
				t.Errorf("the new session of session_regenerate_id(false) holds %s, want %s", got, want)
			}
			if got, want := storedData(t, m, x), `{"n":1,"cart":3}`; got != want {
				t.Errorf("the old session holds %s, want %s", got, want)
			}
		})
	}
}

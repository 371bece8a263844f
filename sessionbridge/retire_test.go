package sessionbridge

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// setCookieID is the session ID of the session cookie in h: "" when there
// is none, "-" when it is expired.
func setCookieID(t *testing.T, m *Manager, h http.Header) string {
	t.Helper()
	for _, ck := range (&http.Response{Header: h}).Cookies() {
		if ck.Name != m.CookieName() {
			continue
		}
		if ck.Value == "" || ck.MaxAge < 0 {
			return "-"
		}
		r, _ := http.NewRequest("GET", "/", nil)
		r.AddCookie(ck)
		ids := m.cookie.idsFrom(r)
		if len(ids) != 1 {
			t.Fatalf("cookie %q names no session", ck.Value)
		}
		return ids[0]
	}
	return ""
}

// regenerateAs applies, as bridge a, what PHP sends for
// session_regenerate_id(true) of session old followed by a write of data
// (JSON) under the new ID; each message must apply (label names the
// request in the failure). It returns the new ID.
func regenerateAs(t *testing.T, label string, a *phpBridge, old, data string) string {
	t.Helper()
	id := NewID()
	payload, err := phpserial.EncodeSession(json.RawMessage(data), phpserial.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []message{
		{Op: "destroy", ID: old, Payload: []byte("regenerate")},
		{Op: "open", ID: id},
		{Op: "write", ID: id, Payload: payload},
	} {
		if err := a.apply(msg); err != nil {
			t.Fatalf("%s %s: %v", label, msg.Op, err)
		}
	}
	return id
}

// waitingOpen opens the session of cookie id in the background, as a
// request the same browser sent while another one holds the session.
func waitingOpen(t *testing.T, m *Manager, id string) <-chan *Session {
	t.Helper()
	r := requestWithCookie(t, m, id)
	got := make(chan *Session, 1)
	go func() {
		s, err := m.Open(context.Background(), r, false)
		if err != nil {
			t.Errorf("waiting request: %v", err)
			close(got)
			return
		}
		got <- s
	}()
	return got
}

// A login regenerates the session (PHP's session_regenerate_id(true)):
// request A holds session X, moves its data to Y and answers with Y's
// cookie. Request B of the same browser, sent with X's cookie while A ran
// (an XHR poll, an image), waited for X and finds it gone. If B's page then
// starts a session, B must not answer with a cookie of its own: arriving
// after A's, it would replace Y in the browser and log out the user who
// just logged in. PHP's files handler keeps the browser's cookie in that
// race. B had no session (X's data went to Y) and none is stored for it.
func TestPHPRegenerationRaceKeepsTheNewCookie(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		for _, early := range []bool{false, true} { // B's output starts before its write
			ctx := context.Background()
			m := newTestManager(t, mode, nil)
			logs := captureLog(m)
			x := createSession(t, m, `{"user":"ana"}`)
			a := newTestBridge(t, m, x)
			var waiting <-chan *Session
			if mode == LockStrict {
				waiting = waitingOpen(t, m, x)
				select {
				case <-waiting:
					t.Fatalf("%s: B ran while A holds the session", mode)
				case <-time.After(50 * time.Millisecond):
				}
			}
			// A: session_regenerate_id(true); $_SESSION['logged'] = true.
			y := regenerateAs(t, string(mode)+" A", a, x, `{"user":"ana","logged":true}`)
			ha := http.Header{}
			a.sess.SetCookie(ha)
			a.sess.Release(ctx)
			if got := setCookieID(t, m, ha); got != y {
				t.Fatalf("%s: A's cookie names %q, want the new session %s", mode, got, y)
			}
			if mode == LockMerge {
				waiting = waitingOpen(t, m, x)
			}
			bs := <-waiting
			if bs == nil {
				t.FailNow()
			}
			if bs.ID() != "" || string(bs.Data()) != "{}" {
				t.Fatalf("%s: B got session %q %s with the old cookie", mode, bs.ID(), bs.Data())
			}
			// B: session_start(); $_SESSION['poll'] = 1.
			b := &phpBridge{h: a.h, sess: bs, ctx: ctx}
			z := NewID()
			hb := http.Header{}
			if err := b.apply(message{Op: "open", ID: z}); err != nil {
				t.Fatal(err)
			}
			if early {
				bs.SetCookie(hb)
			}
			if err := b.apply(message{Op: "write", ID: z, Payload: []byte(`a:1:{s:4:"poll";i:1;}`)}); err != nil {
				t.Fatalf("%s: B's write: %v", mode, err)
			}
			bs.SetCookie(hb)
			bs.Release(ctx)
			if got := setCookieID(t, m, hb); got != "" {
				t.Errorf("%s early=%v: B answers with a session cookie (%q) that replaces A's new one", mode, early, got)
			}
			if rec, err := m.o.Store.Load(ctx, z); err != nil || rec.Version != 0 {
				t.Errorf("%s early=%v: B's session was stored (%v)", mode, early, err)
			}
			if got := storedData(t, m, y); got != `{"user":"ana","logged":true}` {
				t.Errorf("%s: the new session holds %s", mode, got)
			}
			if s, err := m.Open(ctx, requestWithCookie(t, m, x), false); err != nil || s.ID() != "" || string(s.Data()) != "{}" {
				t.Errorf("%s: the old ID is a session: %q %s %v", mode, s.ID(), s.Data(), err)
			} else {
				s.Release(ctx)
			}
			if !strings.Contains(logs.String(), "level=INFO msg=\"new session not started") {
				t.Errorf("%s: not logged why B's session was not kept:\n%s", mode, logs)
			}
		}
	}
}

// Django's cycle_key() at login (Retire, then the data under a new ID) and
// a request that waited with the old cookie and writes (Django creates a
// session for it): that request sets no cookie either.
func TestCycleKeyRaceKeepsTheNewCookie(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	x := createSession(t, m, `{"cart":[1]}`)
	a, err := m.Open(ctx, requestWithCookie(t, m, x), false)
	if err != nil {
		t.Fatal(err)
	}
	waiting := waitingOpen(t, m, x)
	time.Sleep(50 * time.Millisecond)
	if err := a.Retire(ctx, x); err != nil {
		t.Fatal(err)
	}
	y := NewID()
	if _, err := a.WriteReencoded(ctx, y, json.RawMessage(`{"cart":[1],"_auth_user_id":"7"}`)); err != nil {
		t.Fatal(err)
	}
	ha := http.Header{}
	a.SetCookie(ha)
	a.Release(ctx)
	if got := setCookieID(t, m, ha); got != y {
		t.Fatalf("A's cookie names %q, want %s", got, y)
	}
	b := <-waiting
	if b == nil {
		t.FailNow()
	}
	if b.ID() != "" {
		t.Fatalf("B got session %q", b.ID())
	}
	z := NewID()
	if _, err := b.WriteReencoded(ctx, z, json.RawMessage(`{"seen":1}`)); err != nil {
		t.Fatal(err)
	}
	hb := http.Header{}
	b.SetCookie(hb)
	b.Release(ctx)
	if got := setCookieID(t, m, hb); got != "" {
		t.Fatalf("B answers with a session cookie (%q) that replaces A's new one", got)
	}
	if got := storedData(t, m, y); got != `{"cart":[1],"_auth_user_id":"7"}` {
		t.Fatalf("new session holds %s", got)
	}
}

// A logout (session_destroy(), Django's flush()) is no regeneration: the
// data is gone at once, and a request with the old cookie may start a new
// session, cookie included, as before.
func TestDestroyLeavesNoTombstone(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	x := createSession(t, m, `{"user":"ana"}`)
	a := newTestBridge(t, m, x)
	if err := a.apply(message{Op: "destroy", ID: x}); err != nil {
		t.Fatal(err)
	}
	a.sess.Release(ctx)
	if rec, _ := m.o.Store.Load(ctx, x); rec.Version != 0 {
		t.Fatalf("destroyed session still stored: %s", rec.Value)
	}
	b, err := m.Open(ctx, requestWithCookie(t, m, x), false)
	if err != nil {
		t.Fatal(err)
	}
	z := NewID()
	if _, err := b.Write(ctx, z, json.RawMessage(`{"flash":"bye"}`), nil); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	b.SetCookie(h)
	b.Release(ctx)
	if got := setCookieID(t, m, h); got != z {
		t.Fatalf("a new session after a logout got cookie %q, want %s", got, z)
	}
}

// Merge mode: a request that loaded the session before a regeneration
// retired it cannot write its data back under the old ID (the
// compare-and-set finds the tombstone), and the tombstone stays.
func TestMergeWriteDoesNotResurrectRetiredID(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	x := createSession(t, m, `{"user":"ana"}`)
	b, err := m.Open(ctx, requestWithCookie(t, m, x), false)
	if err != nil || b.ID() != x {
		t.Fatalf("open: %q %v", b.ID(), err)
	}
	a, err := m.Open(ctx, requestWithCookie(t, m, x), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Retire(ctx, x); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(ctx, NewID(), json.RawMessage(`{"user":"ana","logged":true}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write(ctx, x, json.RawMessage(`{"user":"ana","cart":[1]}`), nil); err == nil {
		t.Fatal("a write under the retired ID succeeded")
	}
	rec, err := m.o.Store.Load(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeRecord(rec.Value); err != errRetired {
		t.Fatalf("the retired ID holds %s (%v), want its tombstone", rec.Value, err)
	}
}

// A tombstone is never a session, whatever else its record holds.
func TestRetiredRecordIsNoSession(t *testing.T) {
	for _, v := range []string{
		string(retiredRecord(1)),
		`{"v":1,"created":1,"seen":1,"data":{"user":"ana"},"retired":1}`,
		`{"retired":1,"v":1,"created":1,"seen":1,"data":{}}`,
	} {
		if _, err := decodeRecord([]byte(v)); err != errRetired {
			t.Errorf("%s: %v, want errRetired", v, err)
		}
	}
}

// A login's answer that never reached the browser (a lost connection, the
// user pressed stop) leaves the browser with the old cookie only. Past
// retiredGrace its requests are no longer the login's race: the first one
// that writes starts a new session and sends its cookie, so the user can
// log in again at once instead of after the tombstone expires. Within the
// grace it still gets none.
func TestRetiredCookieLongAfterTheRegenerationStartsANewSession(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		ctx := context.Background()
		m := newTestManager(t, mode, nil)
		logs := captureLog(m)
		x := createSession(t, m, `{"user":"ana"}`)
		a, err := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Retire(ctx, x); err != nil {
			t.Fatal(err)
		}
		y := NewID()
		if _, err := a.WriteReencoded(ctx, y, json.RawMessage(`{"user":"ana","logged":true}`)); err != nil {
			t.Fatal(err)
		}
		a.SetCookie(http.Header{}) // lost on its way to the browser
		a.Release(ctx)

		retired := time.Now()
		for _, tc := range []struct {
			after      time.Duration
			wantCookie bool
		}{{retiredGrace - time.Second, false}, {retiredGrace + time.Second, true}} {
			m.now = func() time.Time { return retired.Add(tc.after) }
			b, err := m.Open(ctx, requestWithCookie(t, m, x), false)
			if err != nil {
				t.Fatal(err)
			}
			if b.ID() != "" || string(b.Data()) != "{}" {
				t.Fatalf("%s +%v: the old cookie got session %q %s", mode, tc.after, b.ID(), b.Data())
			}
			z := NewID()
			if _, err := b.WriteReencoded(ctx, z, json.RawMessage(`{"csrf":"t"}`)); err != nil {
				t.Fatalf("%s +%v: %v", mode, tc.after, err)
			}
			h := http.Header{}
			b.SetCookie(h)
			b.Release(ctx)
			got := setCookieID(t, m, h)
			if tc.wantCookie {
				if got != z {
					t.Errorf("%s +%v: the old cookie's new session answers with cookie %q, want %s", mode, tc.after, got, z)
				}
				if d := storedData(t, m, z); d != `{"csrf":"t"}` {
					t.Errorf("%s +%v: the new session holds %s", mode, tc.after, d)
				}
			} else if got != "" {
				t.Errorf("%s +%v: a request of the login's race answers with a session cookie %q", mode, tc.after, got)
			}
		}
		if got := storedData(t, m, y); got != `{"user":"ana","logged":true}` {
			t.Errorf("%s: the login's session holds %s", mode, got)
		}
		if !strings.Contains(logs.String(), "the browser never got the new cookie") {
			t.Errorf("%s: not logged why the old cookie may start a session:\n%s", mode, logs)
		}
	}
}

// A lock timeout of centuries is a valid setting: a request may wait for
// the lock that long behind a regenerating one, so the tombstone must
// outlive such a wait, however close to the largest duration (twice the
// timeout overflows).
func TestRetiredTTLOutlivesAnyLockTimeout(t *testing.T) {
	for _, lt := range []time.Duration{math.MaxInt64, 2000000 * time.Hour, time.Hour, time.Second} {
		m, err := New(Options{
			Store:        memory.New(memory.Options{}),
			Secrets:      [][]byte{[]byte(testSecret)},
			Cookie:       CookieOptions{Name: "sessionid", MaxAge: time.Hour},
			IdleTimeout:  time.Hour,
			LockMode:     LockStrict,
			LockTimeout:  lt,
			LockLease:    5 * time.Second,
			StoreTimeout: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		m.o.Store.Close()
		if got := m.retiredTTL(); got < lt || got < 2*time.Minute {
			t.Errorf("lock timeout %v: tombstone kept %v, shorter than a lock wait may last", lt, got)
		}
	}
}

package sessionbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
)

// Merge mode: request S loaded {"a":1,"b":1}; request R then deleted "a".
// S deletes "b" (its write merges to {}: "a" stays deleted, as R wanted),
// and then writes again from its own copy, adding "c" (PHP's session_start
// after session_write_close). That second write must not bring back "a",
// which R deleted and S never changed.
func TestMergeSecondWriteAfterAnEmptyMergeKeepsADeletion(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	id := createSession(t, m, `{"a":1,"b":1}`)
	s, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	r, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	if _, err := r.Write(ctx, id, json.RawMessage(`{"b":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, id, json.RawMessage(`{"a":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if got := storedData(t, m, id); got != `{}` {
		t.Fatalf("after S's first write: %s, want {}", got)
	}
	if _, err := s.Write(ctx, id, json.RawMessage(`{"a":1,"c":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := storedData(t, m, id), `{"c":1}`; got != want {
		t.Fatalf("after S's second write: %s, want %s (R's deletion of a undone)", got, want)
	}
}

// TestMergePHPRegenerationKeepsAConcurrentWriteAfterOutput is
// TestMergePHPRegenerationKeepsAConcurrentWrite with the login page's
// output starting between session_regenerate_id(true) and its write at the
// end of the script (a page larger than PHP's output buffer): the new
// session's cookie leaves with the headers, and merge mode stores it empty
// then. The write must still carry the other tab's key, and keep the text
// of members the page did not touch (Django's {} must not become PHP's []).
func TestMergePHPRegenerationKeepsAConcurrentWriteAfterOutput(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	x := createSession(t, m, `{"user":"ana","n":1,"prefs":{}}`)
	a := newTestBridge(t, m, x)
	c, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	if _, err := c.Write(ctx, x, json.RawMessage(`{"user":"ana","n":1,"prefs":{},"cart":3}`), nil); err != nil {
		t.Fatal(err)
	}
	y := NewID()
	for _, msg := range []message{
		{Op: "destroy", ID: x, Payload: []byte("regenerate")},
		{Op: "open", ID: y},
	} {
		if err := a.apply(msg); err != nil {
			t.Fatalf("A %s: %v", msg.Op, err)
		}
	}
	h := http.Header{}
	// The page's output starts: the headers leave, and with them the
	// regeneration is applied (onFrameHeaders).
	if err := a.retirePending(); err != nil {
		t.Fatal(err)
	}
	a.sess.SetCookie(h)
	if got := setCookieID(t, m, h); got != y {
		t.Fatalf("cookie %q, want the new session's", got)
	}
	// PHP renders {} as an empty array.
	payload, err := phpserial.EncodeSession(json.RawMessage(`{"user":"ana","n":2,"prefs":[],"logged":true}`), phpserial.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.apply(message{Op: "write", ID: y, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	a.sess.Release(ctx)
	if got, want := storedData(t, m, y), `{"user":"ana","n":2,"prefs":{},"cart":3,"logged":true}`; got != want {
		t.Fatalf("the new session holds %s, want %s", got, want)
	}
}

// Merge mode: two requests of one browser loaded session X and both call
// session_regenerate_id(true) (a double-submitted login form, two tabs).
// A moved X to Y and answered with Y's cookie. B's regeneration then finds
// X already retired: its write of a session of its own must not be
// stored, nor B answer with its cookie, which would replace Y's in the
// browser and lose what A stored there (the tombstone is there to prevent
// exactly that; strict mode's B finds no session). As for a plain write
// that finds the tombstone, B's change is refused (a 503), not dropped
// behind a 200.
func TestMergeSecondRegenerationOfARetiredSessionIsRefused(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	x := createSession(t, m, `{"user":"guest"}`)
	a := newFramingBridge(t, m, x, "0123456789abcdef0123456789abcdef")
	b := newFramingBridge(t, m, x, "0123456789abcdef0123456789abcdef")
	regenerate := func(br *phpBridge, data string) (string, http.Header, error) {
		id := NewID()
		payload, err := phpserial.EncodeSession(json.RawMessage(data), phpserial.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range []message{
			{Op: "destroy", ID: x, Payload: []byte("regenerate")},
			{Op: "open", ID: id},
			{Op: "write", ID: id, Payload: payload},
		} {
			br.mu.Lock()
			br.applyAll([]message{msg})
			br.mu.Unlock()
		}
		h := http.Header{}
		if err := br.failure(); err == nil {
			br.sess.SetCookie(h)
		}
		br.sess.Release(ctx)
		return id, h, br.failure()
	}
	y, ha, err := regenerate(a, `{"user":"ana","logged":true}`)
	if err != nil || setCookieID(t, m, ha) != y {
		t.Fatalf("A: %v, cookie %v", err, ha)
	}
	z, hb, err := regenerate(b, `{"user":"guest","theme":"dark"}`)
	if got := setCookieID(t, m, hb); got != "" {
		t.Errorf("B answers with a session cookie (%q; A's is %q) that replaces A's new session", got, y)
	}
	if err == nil {
		t.Errorf("B's regeneration of a retired session succeeded; its change is lost behind a 200")
	}
	if rec, err := m.o.Store.Load(ctx, z); err != nil || rec.Version != 0 {
		t.Errorf("B's session was stored (%v): %s", err, rec.Value)
	}
	if got := storedData(t, m, y); got != `{"user":"ana","logged":true}` {
		t.Errorf("A's new session holds %s", got)
	}
}

// Merge mode: a login page A loaded session X (a cart, a previous user's
// data); a logout (session_destroy() in another tab) then deleted X, and
// A's session_regenerate_id(true) comes after it. The logout must win as
// it does over a plain write of A's (503, nothing stored): A must not
// bring X's data back under a new ID with a cookie.
func TestMergeRegenerationAfterALogoutDoesNotResurrect(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	x := createSession(t, m, `{"user":"ana","cart":3}`)
	a := newFramingBridge(t, m, x, "0123456789abcdef0123456789abcdef")
	logout, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	if err := logout.Destroy(ctx, x); err != nil {
		t.Fatal(err)
	}
	y := NewID()
	payload, err := phpserial.EncodeSession(json.RawMessage(`{"user":"ana","cart":3,"logged":true}`), phpserial.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.applyAll([]message{
		{Op: "destroy", ID: x, Payload: []byte("regenerate")},
		{Op: "open", ID: y},
		{Op: "write", ID: y, Payload: payload},
	})
	a.mu.Unlock()
	h := http.Header{}
	failed := a.failure()
	if failed == nil {
		a.sess.SetCookie(h)
	}
	a.sess.Release(ctx)
	if rec, _ := m.o.Store.Load(ctx, y); rec.Version != 0 {
		t.Errorf("the logged-out session came back under a new ID: %s", rec.Value)
	}
	if got := setCookieID(t, m, h); got != "" {
		t.Errorf("A answers with cookie %q", got)
	}
	if failed == nil {
		t.Errorf("A's change was dropped behind a 200")
	}
}

// Merge mode: a PHP page that links top-level keys (the same object under
// two keys) stores its session as the single member "__php_session__",
// which must stay the only member (PHP could not be given anything else).
// A concurrent write of another request adding a key, landing before or
// after it, must not be merged next to it: every PHP page of the session
// would fail with 500 from then on.
func TestMergeNeverPutsKeysNextToAWholeLinkedSession(t *testing.T) {
	const linked = `{"__php_session__":"a:2:{s:1:\"a\";O:8:\"stdClass\":0:{}s:1:\"b\";r:2;}"}`
	for _, linkedFirst := range []bool{false, true} {
		ctx := context.Background()
		m := newTestManager(t, LockMerge, nil)
		id := createSession(t, m, `{"a":1,"b":1}`)
		p, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
		r, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
		writes := []func() error{
			func() error { _, err := r.Write(ctx, id, json.RawMessage(`{"a":1,"b":1,"c":1}`), nil); return err },
			func() error { _, err := p.Write(ctx, id, json.RawMessage(linked), nil); return err },
		}
		if linkedFirst {
			writes[0], writes[1] = writes[1], writes[0]
		}
		for _, w := range writes {
			if err := w(); err != nil {
				t.Fatal(err)
			}
		}
		got := storedData(t, m, id)
		if _, err := phpserial.EncodeSession(json.RawMessage(got), phpserial.DefaultLimits()); err != nil {
			t.Errorf("linkedFirst %v: the merged session %s cannot be given to PHP: %v", linkedFirst, got, err)
		}
	}
}

// A user who only reads the session (PHP's session_start() with
// read_and_close on every page, as the README's WordPress plugin does, or
// pages that never start it) uses it: the idle timeout is sliding, so the
// session must outlive SESSIONGATE_SESSION_IDLE_TIMEOUT as long as such
// requests keep coming, in either lock mode.
func TestReadOnlyUseKeepsTheSessionAlive(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		ctx := context.Background()
		m := newTestManager(t, mode, nil)
		m.o.IdleTimeout = 400 * time.Millisecond
		id := createSession(t, m, `{"user":"ana"}`)
		for i := 0; i < 8; i++ { // 1.6 s, four idle timeouts
			time.Sleep(200 * time.Millisecond)
			s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
			if err != nil {
				t.Fatal(err)
			}
			if s.ID() != id {
				t.Errorf("%s: after %d read-only requests %v apart the session is gone", mode, i, 200*time.Millisecond)
				break
			}
			s.Close(ctx, id) // read_and_close
		}
	}
}

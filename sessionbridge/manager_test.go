package sessionbridge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// countingStore counts every call that reaches the backend, to prove that
// requests without a valid cookie never touch it.
type countingStore struct {
	store.Store
	calls atomic.Int64
}

func (c *countingStore) Load(ctx context.Context, id string) (store.Record, error) {
	c.calls.Add(1)
	return c.Store.Load(ctx, id)
}

func (c *countingStore) Lock(ctx context.Context, id string, ttl time.Duration) (store.Lease, store.Record, error) {
	c.calls.Add(1)
	return c.Store.Lock(ctx, id, ttl)
}

const testSecret = "0123456789abcdef0123456789abcdef-test"

func newTestManager(t *testing.T, mode LockMode, st store.Store) *Manager {
	t.Helper()
	if st == nil {
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { mem.Close() })
		st = mem
	}
	m, err := New(Options{
		Store:        st,
		Secrets:      [][]byte{[]byte(testSecret)},
		Cookie:       CookieOptions{Name: "sessionid", MaxAge: time.Hour},
		IdleTimeout:  10 * time.Minute,
		LockMode:     mode,
		LockTimeout:  2 * time.Second,
		LockLease:    5 * time.Second,
		StoreTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func requestWithCookie(t *testing.T, m *Manager, id string) *http.Request {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	if id != "" {
		ck, err := m.cookie.cookie(id, false)
		if err != nil {
			t.Fatal(err)
		}
		r.AddCookie(ck)
	}
	return r
}

// setAppExpiry plays a request in which the app gives session id its own
// expiry (Django's set_expiry(d)) and returns the headers it answers with.
func setAppExpiry(t *testing.T, m *Manager, id string, d time.Duration) http.Header {
	t.Helper()
	ctx := context.Background()
	s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(ctx)
	s.SetExpiry(d, false)
	if err := s.Touch(ctx, id); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetCookie(h)
	return h
}

// storedData is the data a new request of session id would load.
func storedData(t *testing.T, m *Manager, id string) string {
	t.Helper()
	s, err := m.Open(context.Background(), requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(context.Background())
	return string(s.Data())
}

// storedRecord is session id's record as the store holds it, read without
// its lock.
func storedRecord(t *testing.T, m *Manager, id string) record {
	t.Helper()
	rec, err := m.o.Store.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decodeRecord(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

// createSession stores data under a fresh ID the way a first PHP write does.
func createSession(t *testing.T, m *Manager, data string) string {
	t.Helper()
	ctx := context.Background()
	s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	if _, err := s.Write(ctx, id, json.RawMessage(data), nil); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetCookie(h)
	if !strings.HasPrefix(h.Get("Set-Cookie"), "sessionid=") {
		t.Fatalf("no cookie for a new session: %v", h)
	}
	s.Release(ctx)
	return id
}

func TestNoValidCookieNeverTouchesStore(t *testing.T) {
	mem := memory.New(memory.Options{})
	defer mem.Close()
	cs := &countingStore{Store: mem}
	m := newTestManager(t, LockStrict, cs)
	other, err := New(Options{Store: mem, Secrets: [][]byte{[]byte(strings.Repeat("x", 40))}, Cookie: CookieOptions{Name: "sessionid", MaxAge: time.Hour},
		IdleTimeout: time.Minute, LockTimeout: time.Second, LockLease: time.Second, StoreTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.cookie.cookie(NewID(), false)
	for name, value := range map[string]string{"garbage": "abc", "forged": forged.Value, "empty": ""} {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: "sessionid", Value: value})
		s, err := m.Open(context.Background(), r, false)
		if err != nil || s.ID() != "" {
			t.Fatalf("%s: %v %q", name, err, s.ID())
		}
	}
	if n := cs.calls.Load(); n != 0 {
		t.Fatalf("store touched %d times", n)
	}
}

func TestExpiredCookieSignatureIsNoSession(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"a":1}`)
	r := requestWithCookie(t, m, id)
	// securecookie checks its own timestamp against MaxAge: the cookie is
	// refused as such, before any store lookup (the record's own Created
	// would end the session too, but only after a lock and a load).
	cs := &countingStore{Store: m.o.Store}
	short, _ := New(Options{Store: cs, Secrets: [][]byte{[]byte(testSecret)}, Cookie: CookieOptions{Name: "sessionid", MaxAge: time.Second},
		IdleTimeout: time.Minute, LockTimeout: time.Second, LockLease: time.Second, StoreTimeout: time.Second})
	time.Sleep(2100 * time.Millisecond)
	s, err := short.Open(context.Background(), r, false)
	if err != nil || s.ID() != "" {
		t.Fatalf("expired cookie accepted: %v %q", err, s.ID())
	}
	if n := cs.calls.Load(); n != 0 {
		t.Fatalf("expired cookie signature verified: the store was asked %d times", n)
	}
}

func TestWriteLoadRegenerateDestroy(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"user":"ana","n":1}`)

	s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil || s.ID() != id || string(s.Data()) != `{"user":"ana","n":1}` {
		t.Fatalf("load: %v %q %s", err, s.ID(), s.Data())
	}
	// session_regenerate_id(true): destroy old, write new.
	if err := s.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	newID := NewID()
	if _, err := s.Write(ctx, newID, json.RawMessage(`{"user":"ana","n":2}`), nil); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetCookie(h)
	resp := http.Response{Header: h}
	if cks := resp.Cookies(); len(cks) != 1 || cks[0].MaxAge <= 0 {
		t.Fatalf("want the new cookie, got %v", h)
	}
	s.Release(ctx)

	old, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil || old.ID() != "" {
		t.Fatalf("old id still resolves: %v %q", err, old.ID())
	}
	cur, err := m.Open(ctx, requestWithCookie(t, m, newID), false)
	if err != nil || string(cur.Data()) != `{"user":"ana","n":2}` {
		t.Fatalf("new id: %v %s", err, cur.Data())
	}
	// session_destroy(): row gone, cookie expired.
	if err := cur.Destroy(ctx, newID); err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	cur.SetCookie(h)
	resp = http.Response{Header: h}
	if cks := resp.Cookies(); len(cks) != 1 || cks[0].MaxAge >= 0 {
		t.Fatalf("want an expired cookie, got %v", h)
	}
	if rec, _ := m.o.Store.Load(ctx, newID); rec.Version != 0 {
		t.Fatal("destroyed session still stored")
	}
}

func TestEmptyNewSessionCreatesNothing(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	s, _ := m.Open(ctx, requestWithCookie(t, m, ""), false)
	id := NewID()
	if _, err := s.Write(ctx, id, json.RawMessage(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetCookie(h)
	if len(h) != 0 {
		t.Fatalf("cookie for an empty session: %v", h)
	}
	if rec, _ := m.o.Store.Load(ctx, id); rec.Version != 0 {
		t.Fatal("empty session stored")
	}
}

func TestAnnouncedSessionGetsCookieBeforeWrite(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	s, _ := m.Open(context.Background(), requestWithCookie(t, m, ""), false)
	id := NewID()
	if err := s.Announce(id); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetCookie(h)
	if !strings.HasPrefix(h.Get("Set-Cookie"), "sessionid=") {
		t.Fatalf("no cookie: %v", h)
	}
	if s.Announce("not-an-id") == nil {
		t.Fatal("malformed id accepted")
	}
}

// A new session PHP opened is kept, and its cookie sent, however it ends
// without a destroy: written empty (session_start(); session_write_close();
// as Icinga Web 2's login page does before it keys its CSRF token on the
// ID), closed unwritten (read_and_close, session_abort), or touched (an
// empty session in PHP's own format equals what was read). PHP's files
// handler keeps all three, so the next request sees the same ID. A write
// of an empty session PHP did not open (Django's) still stores nothing
// (TestEmptyNewSessionCreatesNothing).
func TestOpenedEmptySessionIsKept(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	for _, end := range []string{"write", "close", "touch"} {
		s, _ := m.Open(ctx, requestWithCookie(t, m, ""), false)
		id := NewID()
		if err := s.Announce(id); err != nil {
			t.Fatal(err)
		}
		switch end {
		case "write":
			if _, err := s.Write(ctx, id, json.RawMessage(`{}`), nil); err != nil {
				t.Fatal(err)
			}
		case "close":
			s.Close(ctx, id)
		case "touch":
			if err := s.Touch(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		h := http.Header{}
		s.SetCookie(h)
		if !strings.HasPrefix(h.Get("Set-Cookie"), "sessionid=") {
			t.Fatalf("%s: no cookie for the session PHP opened: %v", end, h)
		}
		s.Release(ctx)
		next, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		if next.ID() != id {
			t.Fatalf("%s: the next request does not find the session PHP opened (got %q)", end, next.ID())
		}
		next.Release(ctx)
	}
}

// A new session destroyed before it was written (session_start() then
// session_destroy() on a logout page, or session_regenerate_id() then
// session_destroy()) gets no cookie: nothing is stored under its ID.
func TestAnnouncedSessionDestroyedGetsNoCookie(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	s, _ := m.Open(ctx, requestWithCookie(t, m, ""), false)
	id := NewID()
	_ = s.Announce(id)
	if err := s.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetCookie(h)
	if len(h) != 0 {
		t.Fatalf("cookie for a new session destroyed unwritten: %v", h)
	}

	// Regenerated (old one destroyed), then the new one destroyed: the
	// client's cookie is expired, not replaced by one naming nothing.
	old := createSession(t, m, `{"user":"ana"}`)
	s, err := m.Open(ctx, requestWithCookie(t, m, old), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(ctx)
	if err := s.Destroy(ctx, old); err != nil {
		t.Fatal(err)
	}
	regen := NewID()
	_ = s.Announce(regen)
	if err := s.Destroy(ctx, regen); err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	s.SetCookie(h)
	if cks := (&http.Response{Header: h}).Cookies(); len(cks) != 1 || cks[0].MaxAge >= 0 {
		t.Fatalf("want the cookie expired, got %v", h)
	}
}

func TestStrictModeSerializesAndLosesNothing(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"n":0}`)
	const workers, rounds = 16, 20
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
				if err != nil {
					t.Error(err)
					return
				}
				var d struct{ N int }
				_ = json.Unmarshal(s.Data(), &d)
				next, _ := json.Marshal(map[string]int{"n": d.N + 1})
				if _, err := s.Write(ctx, id, next, nil); err != nil {
					t.Error(err)
				}
				s.Release(ctx)
			}
		}()
	}
	wg.Wait()
	s, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	defer s.Release(ctx)
	if string(s.Data()) != `{"n":320}` {
		t.Fatalf("got %s, want n=320", s.Data())
	}
}

func TestStrictLockTimeoutIsBusy(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	m.o.LockTimeout = 200 * time.Millisecond
	id := createSession(t, m, `{"n":0}`)
	holder, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release(ctx)
	if _, err := m.Open(ctx, requestWithCookie(t, m, id), false); !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
}

func TestMergeModeKeepsConcurrentKeys(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	id := createSession(t, m, `{"a":0,"b":0,"c":0}`)
	s1, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	s2, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	if c, err := s1.Write(ctx, id, json.RawMessage(`{"a":1,"b":0,"c":1}`), nil); err != nil || len(c) != 0 {
		t.Fatal(c, err)
	}
	conflicts, err := s2.Write(ctx, id, json.RawMessage(`{"a":0,"b":2,"c":2}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(conflicts) != 1 || conflicts[0] != "c" {
		t.Fatalf("conflicts %v", conflicts)
	}
	s3, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	if string(s3.Data()) != `{"a":1,"b":2,"c":2}` {
		t.Fatalf("merged %s", s3.Data())
	}
}

// TestAbsoluteExpiryOfAnActiveSession: SESSIONGATE_SESSION_MAX_AGE ends a
// session however active it is. The session here is used every 8 minutes
// (never idle: IdleTimeout is 10 min), so only the absolute lifetime, 1h
// from its creation, can end it at 61 minutes.
func TestAbsoluteExpiryOfAnActiveSession(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"a":1}`)
	base := time.Now()
	for minute := 8; minute <= 56; minute += 8 {
		m.now = func() time.Time { return base.Add(time.Duration(minute) * time.Minute) }
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil || s.ID() != id {
			t.Fatalf("minute %d: active session lost: %v %q", minute, err, s.ID())
		}
		if err := s.Touch(ctx, id); err != nil {
			t.Fatal(err)
		}
		s.Release(ctx)
	}
	m.now = func() time.Time { return base.Add(61 * time.Minute) }
	s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil || s.ID() != "" {
		t.Fatalf("active session past max age (1h) still loads: %v %q", err, s.ID())
	}
}

func TestAbsoluteAndIdleExpiry(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"a":1}`)
	base := time.Now()
	m.now = func() time.Time { return base.Add(61 * time.Minute) } // past MaxAge (1h)
	s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil || s.ID() != "" {
		t.Fatalf("session past max age still loads: %v %q", err, s.ID())
	}
	id = createSession(t, m, `{"a":1}`)
	// Idle past 10 min plus the grace for a last use written up to
	// seenRefreshMax (5 min) late.
	m.now = func() time.Time { return base.Add(61*time.Minute + 16*time.Minute) }
	s, err = m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil || s.ID() != "" {
		t.Fatalf("idle session still loads: %v %q", err, s.ID())
	}
}

// TestIdleTimeoutRollingChangeKeepsSessionsInUse: while gateways with
// different SESSIONGATE_SESSION_IDLE_TIMEOUTs share the store (a rolling
// change), a gateway with a long timeout writes a session's last use only
// every 5 minutes (seenRefreshMax), so the last use another gateway reads
// can be 5 minutes plus the gap between requests old. No gateway may take
// a session used within its own timeout for idle: its record would be
// deleted for every gateway, a logout. One unused past the timeout and
// that lag still ends.
func TestIdleTimeoutRollingChangeKeepsSessionsInUse(t *testing.T) {
	for name, mode := range map[string]LockMode{"strict": LockStrict, "merge": LockMerge} {
		t.Run(name, func(t *testing.T) {
			clock := time.Now().Truncate(time.Second)
			gateway := idleTimeoutGateways(t, mode, &clock)
			long, fourMin, tenMin := gateway(2*time.Hour), gateway(4*time.Minute), gateway(10*time.Minute)
			id := createSession(t, long, `{"user":"ana"}`)
			use := func(m *Manager, after time.Duration) bool {
				t.Helper()
				clock = clock.Add(after)
				s, err := m.Open(context.Background(), requestWithCookie(t, m, id), false)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Release(context.Background())
				return s.ID() == id
			}
			for range 10 { // a request every 30 s for five minutes
				if !use(long, 30*time.Second) {
					t.Fatal("dropped by the 2 h gateway")
				}
			}
			if !use(fourMin, 15*time.Second) {
				t.Fatal("a session used 15 s ago (every 30 s before) was taken for idle by the gateway with a 4 minute timeout")
			}
			// The 4 min gateway wrote the last use; the 2 h one's next
			// request finds it 4 min 59 s old and leaves it.
			if !use(long, 4*time.Minute+59*time.Second) {
				t.Fatal("dropped by the 2 h gateway")
			}
			if !use(tenMin, 9*time.Minute+59*time.Second) {
				t.Fatal("a session unused for 9 min 59 s was taken for idle by the gateway with a 10 minute timeout")
			}
			// Unused for the 10 minute gateway's timeout and the longest
			// lag of a last use: idle.
			if use(tenMin, 15*time.Minute+time.Second) {
				t.Fatal("a session unused for 15 min 1 s was kept by the gateway with a 10 minute timeout")
			}
		})
	}
}

func TestShortKeyRefused(t *testing.T) {
	withKey := func(k string) error {
		_, err := New(Options{Store: memory.New(memory.Options{}), Secrets: [][]byte{[]byte(k)}, Cookie: CookieOptions{Name: "s", MaxAge: time.Hour},
			IdleTimeout: time.Minute, LockTimeout: time.Second, LockLease: time.Second, StoreTimeout: time.Second})
		return err
	}
	// The README promises "at least 32 bytes": 31 is refused, 32 is not.
	for _, k := range []string{"short", strings.Repeat("k", MinKeyLen-1)} {
		if err := withKey(k); err == nil || !strings.Contains(err.Error(), "at least 32") {
			t.Errorf("%d-byte key: got %v, want refused", len(k), err)
		}
	}
	if err := withKey(strings.Repeat("k", MinKeyLen)); err != nil {
		t.Errorf("%d-byte key refused: %v", MinKeyLen, err)
	}
}

func TestCookieAttributesAndRotation(t *testing.T) {
	oldKey := []byte(strings.Repeat("o", 40))
	newKey := []byte(strings.Repeat("n", 40))
	opts := func(keys ...[]byte) Options {
		return Options{Store: memory.New(memory.Options{}), Secrets: keys,
			Cookie:      CookieOptions{Name: "sessionid", Domain: "example.com", MaxAge: time.Hour},
			IdleTimeout: time.Minute, LockTimeout: time.Second, LockLease: time.Second, StoreTimeout: time.Second}
	}
	before, err := New(opts(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	ck, _ := before.cookie.cookie(id, true)
	line := ck.String()
	for _, attr := range []string{"Path=/", "Domain=example.com", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=3600"} {
		if !strings.Contains(line, attr) {
			t.Errorf("cookie %q lacks %s", line, attr)
		}
	}
	if plain, _ := before.cookie.cookie(id, false); strings.Contains(plain.String(), "Secure") {
		t.Errorf("plain-HTTP cookie marked Secure: %s", plain)
	}
	// Rotation: the new key signs, the old one still verifies.
	after, err := New(opts(newKey, oldKey))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(ck)
	if got, ok := idOf(after.cookie, r); !ok || got != id {
		t.Fatalf("cookie signed with the old key rejected after rotation")
	}
	fresh, _ := after.cookie.cookie(id, false)
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(fresh)
	if _, ok := idOf(before.cookie, r); ok {
		t.Fatal("a cookie signed with the new key verified with the old key alone")
	}
	// Encryption on: the value no longer carries the ID in clear.
	enc := opts(newKey)
	enc.Cookie.Encrypt = true
	m, err := New(enc)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := m.cookie.cookie(id, false)
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(ec)
	if got, ok := idOf(m.cookie, r); !ok || got != id {
		t.Fatal("encrypted cookie does not verify")
	}
	// (A gateway without encryption still accepts it, see
	// TestEncryptToggleKeepsSessions, but cannot read it as plain text.)
	var clear string
	if err := after.cookie.codecs[0].Decode("sessionid", ec.Value, &clear); err == nil {
		t.Fatalf("encrypted cookie decodes without encryption: %q", clear)
	}
}

// An app's expiry (Django's set_expiry) is kept in the record, so the next
// request, from any app, keeps the shorter TTL and slides the cookie with it.
func TestAppExpiryPersists(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"a":1}`)
	h := setAppExpiry(t, m, id, 90*time.Second)
	resp := http.Response{Header: h}
	if cks := resp.Cookies(); len(cks) != 1 || cks[0].MaxAge != 90 {
		t.Fatalf("cookie after set_expiry: %v", h)
	}
	next, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	defer next.Release(ctx)
	if next.expiry != 90*time.Second {
		t.Fatalf("expiry not kept in the record: %v", next.expiry)
	}
	h = http.Header{}
	next.SetCookie(h)
	if cks := (&http.Response{Header: h}).Cookies(); len(cks) != 1 || cks[0].MaxAge != 90 {
		t.Fatalf("cookie not slid with the app's expiry: %v", h)
	}
}

// A new session first written empty (PHP: session_start(), then
// session_write_close() with nothing set) and then written again with data
// in the same request must be stored as a proper record that later
// requests can load, with a TTL.
func TestWriteAfterEmptyCreateIsLoadable(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		m := newTestManager(t, mode, nil)
		s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
		if err != nil {
			t.Fatal(err)
		}
		id := NewID()
		if _, err := s.Write(ctx, id, json.RawMessage(`{}`), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(ctx, id, json.RawMessage(`{"user":"ana"}`), nil); err != nil {
			t.Fatalf("%s: second write: %v", mode, err)
		}
		h := http.Header{}
		s.SetCookie(h)
		s.Release(ctx)
		if !strings.HasPrefix(h.Get("Set-Cookie"), "sessionid=") {
			t.Fatalf("%s: no cookie for the new session: %v", mode, h)
		}
		next, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		got := string(next.Data())
		next.Release(ctx)
		if got != `{"user":"ana"}` {
			t.Fatalf("%s: next request sees %s, want the written data", mode, got)
		}
	}
}

// The same, for a session regenerated without destroy: the old session's
// version must not be used as the base of the new ID's first real write.
func TestWriteAfterEmptyRegenerateIsLoadable(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	old := createSession(t, m, `{"a":1}`)
	s, err := m.Open(ctx, requestWithCookie(t, m, old), false)
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	if _, err := s.Write(ctx, id, json.RawMessage(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, id, json.RawMessage(`{"a":2}`), nil); err != nil {
		t.Fatalf("second write: %v", err)
	}
	s.Release(ctx)
	next, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release(ctx)
	if got := string(next.Data()); got != `{"a":2}` {
		t.Fatalf("next request sees %s, want {\"a\":2}", got)
	}
}

// A session whose absolute lifetime ends while a request holds it must not
// be written back without expiry: a TTL <= 0 means "never expires" to the
// store, so the record would outlive its cookie for ever.
func TestWriteAtMaxAgeNeverStoresWithoutExpiry(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { mem.Close() })
		ts := &ttlStore{Store: mem}
		m := newTestManager(t, mode, ts)
		base := time.UnixMilli(time.Now().UnixMilli())
		m.now = func() time.Time { return base }
		id := NewID()
		// Created just under MaxAge (1h) ago, used a moment ago.
		rec := record{Version: recordVersion, Created: ms(base.Add(-time.Hour + time.Second)), Seen: ms(base), Data: json.RawMessage(`{"a":1}`)}
		if _, err := mem.Save(ctx, id, 0, rec.encode(), time.Minute); err != nil {
			t.Fatal(err)
		}
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil || s.ID() != id {
			t.Fatalf("%s: open: %v %q", mode, err, s.ID())
		}
		// The script runs for 2 s: the absolute lifetime ends meanwhile.
		m.now = func() time.Time { return base.Add(2 * time.Second) }
		if _, err := s.Write(ctx, id, json.RawMessage(`{"a":2}`), nil); err != nil {
			t.Fatalf("%s: write: %v", mode, err)
		}
		s.Release(ctx)
		if ttl := ts.last(t); ttl <= 0 {
			t.Fatalf("%s: written with TTL %v: the record never expires", mode, ttl)
		}
	}
}

// A browser sends every cookie of the name that matches the request: one
// set for a parent domain (another app's "sessionid", Django's default name,
// on Domain=example.com), a stale one, or junk a sibling subdomain planted
// can come before ours. The one that verifies is the session, whatever its
// position, in one Cookie header or several.
func TestSessionCookieFoundAmongSameNameCookies(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"a":1}`)
	mine, _ := m.cookie.cookie(id, false)
	other, err := New(Options{Store: memory.New(memory.Options{}), Secrets: [][]byte{[]byte(strings.Repeat("x", 40))}, Cookie: CookieOptions{Name: "sessionid", MaxAge: time.Hour},
		IdleTimeout: time.Minute, LockTimeout: time.Second, LockLease: time.Second, StoreTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.cookie.cookie(NewID(), false)
	for name, headers := range map[string][]string{
		"junk first":      {"sessionid=ab7k2q9z0django0key; sessionid=" + mine.Value},
		"foreign first":   {"sessionid=" + foreign.Value + "; sessionid=" + mine.Value},
		"two headers":     {"sessionid=" + foreign.Value, "theme=dark; sessionid=" + mine.Value},
		"mine first":      {"sessionid=" + mine.Value + "; sessionid=junk"},
		"empty then ours": {"sessionid=; sessionid=" + mine.Value},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for _, h := range headers {
			r.Header.Add("Cookie", h)
		}
		s, err := m.Open(context.Background(), r, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := s.ID()
		s.Release(context.Background())
		if got != id {
			t.Errorf("%s: session %q, want %q", name, got, id)
		}
	}
}

// SESSIONGATE_SESSION_COOKIE_SAMESITE: a shop whose payment provider or
// SAML identity provider posts back from another site needs SameSite=None
// (PHP's session.cookie_samesite, which the gateway's cookie does not
// follow); one that wants no cross-site navigation to carry the session
// needs Strict.
func TestCookieSameSiteSetting(t *testing.T) {
	for _, tc := range []struct {
		set  http.SameSite
		want string
	}{
		{0, "SameSite=Lax"},
		{http.SameSiteLaxMode, "SameSite=Lax"},
		{http.SameSiteStrictMode, "SameSite=Strict"},
		{http.SameSiteNoneMode, "SameSite=None"},
	} {
		m, err := New(Options{Store: memory.New(memory.Options{}), Secrets: [][]byte{[]byte(testSecret)},
			Cookie:      CookieOptions{Name: "sessionid", MaxAge: time.Hour, Secure: true, SameSite: tc.set},
			IdleTimeout: time.Minute, LockTimeout: time.Second, LockLease: time.Second, StoreTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{NewID(), ""} {
			ck, _ := m.cookie.cookie(id, false)
			if line := ck.String(); strings.Count(line, "SameSite=") != 1 || !strings.Contains(line, tc.want) {
				t.Errorf("SameSite %v, id %q: cookie %q, want %s", tc.set, id, line, tc.want)
			}
		}
	}
}

// SESSIONGATE_SESSION_EXPIRE_AT_BROWSER_CLOSE: the cookie has no Max-Age,
// as PHP's default session.cookie_lifetime=0 and Django's
// SESSION_EXPIRE_AT_BROWSER_CLOSE give, so that closing the browser of a
// shared computer ends the login. The store's expiry is unchanged, and an
// app's own expiry in seconds (a "remember me" login) still gets a
// persistent cookie, capped at the max age, as set_expiry(n) does in Django.
func TestExpireAtBrowserClose(t *testing.T) {
	ctx := context.Background()
	mem := memory.New(memory.Options{})
	defer mem.Close()
	ts := &ttlStore{Store: mem}
	m, err := New(Options{Store: ts, Secrets: [][]byte{[]byte(testSecret)},
		Cookie:      CookieOptions{Name: "sessionid", MaxAge: time.Hour, BrowserSession: true},
		IdleTimeout: 10 * time.Minute, LockTimeout: time.Second, LockLease: time.Second, StoreTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	if _, err := s.Write(ctx, id, json.RawMessage(`{"a":1}`), nil); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetCookie(h)
	s.Release(ctx)
	if ck := cookieOf(t, h); ck.Value == "" || ck.MaxAge != 0 || strings.Contains(h.Get("Set-Cookie"), "Max-Age") {
		t.Errorf("new session: want a browser-session cookie, got %q", h.Get("Set-Cookie"))
	}
	if got := ts.last(t); got != 10*time.Minute {
		t.Errorf("store TTL %v, want the idle timeout", got)
	}

	// A "remember me" expiry: a persistent cookie of that length.
	h = setAppExpiry(t, m, id, 30*time.Minute)
	if ck := cookieOf(t, h); ck.MaxAge != 1800 {
		t.Errorf("set_expiry(1800): cookie %q, want Max-Age=1800", h.Get("Set-Cookie"))
	}
	// Longer than the max age: capped, still persistent.
	h = setAppExpiry(t, m, id, 48*time.Hour)
	if ck := cookieOf(t, h); ck.MaxAge != 3600 {
		t.Errorf("set_expiry(48h): cookie %q, want Max-Age=3600", h.Get("Set-Cookie"))
	}
	// set_expiry(None): the gateway's policy again, a browser-session cookie.
	h = setAppExpiry(t, m, id, 0)
	if ck := cookieOf(t, h); ck.Value == "" || ck.MaxAge != 0 || strings.Contains(h.Get("Set-Cookie"), "Max-Age") {
		t.Errorf("set_expiry(None): want a browser-session cookie, got %q", h.Get("Set-Cookie"))
	}
	// Logout still expires the cookie.
	s, _ = m.Open(ctx, requestWithCookie(t, m, id), false)
	if err := s.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	s.SetCookie(h)
	s.Release(ctx)
	if ck := cookieOf(t, h); ck.MaxAge >= 0 {
		t.Errorf("destroyed session: cookie %q does not expire", h.Get("Set-Cookie"))
	}
}

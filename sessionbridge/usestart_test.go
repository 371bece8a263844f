package sessionbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// useStartClock gives m a clock the test moves together with mr's: the
// manager's judgement (Seen, app expiry) and Redis's TTLs see the same
// time pass.
func useStartClock(m *Manager, mr *miniredis.Miniredis) (advance func(time.Duration)) {
	base, off := time.Now(), time.Duration(0)
	m.now = func() time.Time { return base.Add(off) }
	return func(d time.Duration) { off += d; mr.FastForward(d) }
}

// A request's use of its session starts when it starts: one that loads a
// session shortly before its record's TTL, counted from the last use,
// runs out, and writes after it, keeps its write and the session. The TTL
// was renewed only at the request's end, so merge mode found the record
// gone and dropped the write as "destroyed concurrently" (the login and
// the change lost).
func TestRequestOutlastingIdleTTLKeepsItsWrite(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		t.Run(string(mode), func(t *testing.T) {
			m, mr := newMiniredisManager(t, mode)
			m.o.IdleTimeout = 10 * time.Minute
			m.o.LockLease = time.Minute // the 5 s request holds its lock throughout
			advance := useStartClock(m, mr)
			ctx := context.Background()
			x := createSession(t, m, `{"user":"ana"}`)
			advance(10*time.Minute - time.Second) // still live
			s, err := m.Open(ctx, requestWithCookie(t, m, x), false)
			if err != nil || s.ID() != x {
				t.Fatalf("open: %v %q", err, s.ID())
			}
			advance(5 * time.Second) // the page runs 5 s, then writes
			if _, err := s.Write(ctx, x, json.RawMessage(`{"user":"ana","cart":3}`), nil); err != nil {
				t.Errorf("write: %v", err)
			}
			s.Release(ctx)
			rec, err := m.o.Store.Load(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Version == 0 || !strings.Contains(string(rec.Value), `"cart":3`) {
				t.Fatalf("a session used 9m59s after its last use, by a 5 s request that wrote, is %q after it: the write and the session are lost", rec.Value)
			}
			// Its idle time counts from that request's end again.
			advance(10*time.Minute - time.Second)
			if got := storedData(t, m, x); !strings.Contains(got, `"cart":3`) {
				t.Fatalf("session after another 9m59s unused: %s", got)
			}
		})
	}
}

// The same for a request that only reads the session (PHP's lazy write, a
// Django read): the session must not end under it.
func TestReadOnlyRequestOutlastingIdleTTLKeepsSession(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		t.Run(string(mode), func(t *testing.T) {
			m, mr := newMiniredisManager(t, mode)
			m.o.IdleTimeout = 10 * time.Minute
			m.o.LockLease = time.Minute
			advance := useStartClock(m, mr)
			ctx := context.Background()
			x := createSession(t, m, `{"user":"ana"}`)
			advance(10*time.Minute - time.Second)
			s, err := m.Open(ctx, requestWithCookie(t, m, x), false)
			if err != nil || s.ID() != x {
				t.Fatalf("open: %v %q", err, s.ID())
			}
			advance(5 * time.Second)
			if err := s.Touch(ctx, x); err != nil {
				t.Errorf("touch: %v", err)
			}
			s.Release(ctx)
			if got := storedData(t, m, x); got != `{"user":"ana"}` {
				t.Fatalf("a session used 9m59s after its last use by a 5 s read-only request is %s after it", got)
			}
		})
	}
}

// An app's own expiry shorter than the gateway's seen-refresh period
// (Django's set_expiry(60) under the default 2 h idle timeout, whose Seen
// is rewritten every 5 minutes) is a TTL a request can outlast too: strict
// mode released such a read with Keep, whose TTL refresh found the record
// expired under the request.
func TestRequestOutlastingAppExpiryKeepsSession(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		t.Run(string(mode), func(t *testing.T) {
			m, mr := newMiniredisManager(t, mode)
			m.o.IdleTimeout = 2 * time.Hour
			m.o.Cookie.MaxAge = 336 * time.Hour
			m.o.LockLease = time.Minute
			advance := useStartClock(m, mr)
			ctx := context.Background()
			x := createSession(t, m, `{"user":"ana"}`)
			setAppExpiry(t, m, x, time.Minute)
			advance(50 * time.Second)
			s, err := m.Open(ctx, requestWithCookie(t, m, x), false)
			if err != nil || s.ID() != x {
				t.Fatalf("open 50 s after its last use, with a 60 s expiry: %v %q", err, s.ID())
			}
			advance(20 * time.Second)
			if err := s.Touch(ctx, x); err != nil {
				t.Errorf("touch: %v", err)
			}
			s.Release(ctx)
			if got := storedData(t, m, x); got != `{"user":"ana"}` {
				t.Fatalf("a session with set_expiry(60), used 50 s after its last use by a 20 s request, is %s after it", got)
			}
			// The app's expiry still holds: a minute unused ends it.
			advance(time.Minute + time.Second)
			if rec, err := m.o.Store.Load(ctx, x); err != nil || rec.Version != 0 {
				t.Fatalf("session with set_expiry(60) a minute unused: %v version %d", err, rec.Version)
			}
		})
	}
}

// newMemoryManager is a manager over a memory store of its own (real
// time: its TTLs run out as time passes), with idle timeout idle.
func newMemoryManager(t *testing.T, mode LockMode, idle time.Duration) *Manager {
	t.Helper()
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	m, err := New(Options{
		Store:        mem,
		Secrets:      [][]byte{[]byte(testSecret)},
		Cookie:       CookieOptions{Name: "sessionid", MaxAge: time.Hour},
		IdleTimeout:  idle,
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

// A session is in use while a request holds it: a page that runs longer
// than the idle timeout (a 16-minute export under a 15-minute timeout)
// keeps the session, and its write. The load gave the record its TTL back,
// but nothing refreshed it while the page ran (the lock's renewals extend
// only the lock): a read-only page ended the session it used, and a
// merge-mode write was dropped as "destroyed concurrently".
func TestRequestLongerThanIdleTimeoutKeepsSession(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		for _, write := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s write=%v", mode, write), func(t *testing.T) {
				t.Parallel()
				m := newMemoryManager(t, mode, 400*time.Millisecond)
				ctx := context.Background()
				id := createSession(t, m, `{"user":"ana"}`)
				s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
				if err != nil || s.ID() != id {
					t.Fatalf("open: %v %q", err, s.ID())
				}
				time.Sleep(time.Second) // the page runs 2.5 idle timeouts
				want := `{"user":"ana"}`
				if write {
					want = `{"user":"ana","report":"done"}`
					if _, err := s.Write(ctx, id, json.RawMessage(want), nil); err != nil {
						t.Errorf("write: %v", err)
					}
				}
				s.Release(ctx)
				if got := storedData(t, m, id); got != want {
					t.Errorf("after a page longer than the idle timeout the session holds %s, want %s", got, want)
				}
			})
		}
	}
}

// The same under an app's own idle expiry (Django's set_expiry(60) and a
// 90 s page), in strict mode too, where the last-use refresh at the end
// is version-checked and found nothing left to refresh.
func TestRequestLongerThanAppExpiryKeepsSession(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			m := newMemoryManager(t, mode, 2*time.Hour)
			ctx := context.Background()
			id := createSession(t, m, `{"user":"ana"}`)
			setAppExpiry(t, m, id, 400*time.Millisecond)
			s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
			if err != nil || s.ID() != id {
				t.Fatalf("open: %v %q", err, s.ID())
			}
			time.Sleep(time.Second)
			if err := s.Touch(ctx, id); err != nil {
				t.Errorf("touch: %v", err)
			}
			s.Release(ctx)
			if got := storedData(t, m, id); got != `{"user":"ana"}` {
				t.Errorf("after a read-only page longer than the app's expiry the session holds %s, want it kept", got)
			}
		})
	}
}

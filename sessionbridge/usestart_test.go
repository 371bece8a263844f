package sessionbridge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
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

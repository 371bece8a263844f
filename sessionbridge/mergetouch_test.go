package sessionbridge

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

// newMiniredisManager is a manager in mode on the Redis store, over a
// miniredis the test can fail commands of and read TTLs from.
func newMiniredisManager(t *testing.T, mode LockMode) (*Manager, *miniredis.Miniredis) {
	t.Helper()
	st, mr := newMiniredisStore(t)
	return newTestManager(t, mode, st), mr
}

// newMiniredisStore is the Redis store over a miniredis of its own, closed
// with the test.
func newMiniredisStore(t *testing.T) (*redisstore.Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { c.Close() })
	st, err := redisstore.New(c, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, mr
}

// A merge-mode request that loaded session X before a login retired it
// (a tombstone now, living retiredTTL) and then only touches X (PHP's lazy
// write, a Django read, a write that changes nothing) must not stretch the
// tombstone to the full idle timeout: the browser still holding X's cookie
// could start no session for that long instead of for moments. Redis store
// (miniredis: its TTLs can be read), both touch paths (a plain TTL refresh,
// and one due to refresh the record's last-seen time).
func TestMergeStaleTouchKeepsTheTombstoneShort(t *testing.T) {
	for _, refreshSeen := range []bool{false, true} {
		m, mr := newMiniredisManager(t, LockMerge)
		m.o.IdleTimeout = 2 * time.Hour
		ctx := context.Background()
		x := createSession(t, m, `{"user":"ana"}`)
		if refreshSeen {
			later := time.Now().Add(40 * time.Minute) // beyond IdleTimeout/4
			m.now = func() time.Time { return later }
		}
		b, err := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err != nil || b.ID() != x {
			t.Fatalf("B: %v %q", err, b.ID())
		}
		a, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err := a.Retire(ctx, x); err != nil {
			t.Fatal(err)
		}
		if err := b.Touch(ctx, x); err != nil {
			t.Fatal(err)
		}
		keys := mr.Keys()
		if len(keys) != 1 {
			t.Fatalf("keys %v", keys)
		}
		if ttl := mr.TTL(keys[0]); ttl > m.retiredTTL() {
			t.Errorf("refreshSeen %v: the tombstone lives %v after a stale touch, want <= %v", refreshSeen, ttl, m.retiredTTL())
		}
		rec, _ := m.o.Store.Load(ctx, x)
		if _, err := decodeRecord(rec.Value); err != errRetired {
			t.Errorf("refreshSeen %v: not a tombstone any more: %s", refreshSeen, rec.Value)
		}
	}
}

// A merge-mode request that changes the session's expiry (Django's
// set_expiry, nothing else changed: a touch) while another request wrote
// the session must still store the new expiry: the browser gets the new
// cookie lifetime, and later requests of every app must honour it too.
func TestMergeTouchWithNewExpiryOutlastsAConcurrentWrite(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	x := createSession(t, m, `{"n":1}`)
	s, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	other, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	if _, err := other.Write(ctx, x, json.RawMessage(`{"n":2}`), nil); err != nil {
		t.Fatal(err)
	}
	s.SetExpiry(5*time.Minute, false)
	if err := s.Touch(ctx, x); err != nil {
		t.Fatal(err)
	}
	rec, _ := m.o.Store.Load(ctx, x)
	dec, err := decodeRecord(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Expiry != (5*time.Minute).Milliseconds() || string(dec.Data) != `{"n":2}` {
		t.Fatalf("stored expiry %d ms, data %s; want %d ms, {\"n\":2}", dec.Expiry, dec.Data, (5 * time.Minute).Milliseconds())
	}
	// And the browser-session flag alike.
	s2, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	if _, err := other.Write(ctx, x, json.RawMessage(`{"n":3}`), nil); err != nil {
		t.Fatal(err)
	}
	s2.SetExpiry(0, true)
	if err := s2.Touch(ctx, x); err != nil {
		t.Fatal(err)
	}
	rec, _ = m.o.Store.Load(ctx, x)
	dec, _ = decodeRecord(rec.Value)
	if !dec.Browser || dec.Expiry != 0 || string(dec.Data) != `{"n":3}` {
		t.Fatalf("stored browser %v expiry %d data %s; want browser, no expiry, {\"n\":3}", dec.Browser, dec.Expiry, dec.Data)
	}
}

// Merge mode: request S loaded a session whose app expiry was 5 minutes;
// request R then set the expiry back to the gateway's own (Django's
// set_expiry(None)) and stored that. S's later write of another key, merged
// onto R's record, must store it with the TTL of the expiry the record now
// holds (the idle timeout), not the 5 minutes S loaded: the session would
// otherwise end after 5 idle minutes although its app, and the cookie the
// browser got, say otherwise.
func TestMergeWriteUsesTheMergedRecordsExpiry(t *testing.T) {
	ctx := context.Background()
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	ts := &ttlStore{Store: mem}
	m := newTestManager(t, LockMerge, ts)
	x := createSession(t, m, `{"n":1}`)
	p, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	p.SetExpiry(5*time.Minute, false)
	if err := p.Touch(ctx, x); err != nil {
		t.Fatal(err)
	}
	s, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	r, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	r.SetExpiry(0, false)
	if _, err := r.Write(ctx, x, json.RawMessage(`{"n":2}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, x, json.RawMessage(`{"n":1,"k":true}`), nil); err != nil {
		t.Fatal(err)
	}
	rec, _ := mem.Load(ctx, x)
	dec, _ := decodeRecord(rec.Value)
	if dec.Expiry != 0 || string(dec.Data) != `{"n":2,"k":true}` {
		t.Fatalf("stored expiry %d, data %s", dec.Expiry, dec.Data)
	}
	if got := ts.last(t); got != m.o.IdleTimeout {
		t.Fatalf("S's merged write stored TTL %v, want the idle timeout %v (the record's expiry is the gateway's)", got, m.o.IdleTimeout)
	}
}

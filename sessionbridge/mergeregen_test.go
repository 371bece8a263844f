package sessionbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// Merge mode: another request (a second tab) stored a key in session X
// after the login request A loaded X and before A's
// session_regenerate_id(true) moved X's data to Y. The other request got
// its 200; its key must reach Y as if it had run before A (what strict
// mode's serial order gives), not vanish with X.
func TestMergePHPRegenerationKeepsAConcurrentWrite(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	x := createSession(t, m, `{"user":"ana","n":1}`)
	a := newTestBridge(t, m, x)
	c, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	if _, err := c.Write(ctx, x, json.RawMessage(`{"user":"ana","n":1,"cart":3}`), nil); err != nil {
		t.Fatal(err)
	}
	y := regenerateAs(t, "A", a, x, `{"user":"ana","n":2,"logged":true}`)
	if got, want := storedData(t, m, y), `{"user":"ana","n":2,"cart":3,"logged":true}`; got != want {
		t.Fatalf("the new session holds %s, want %s", got, want)
	}
	// A second write of A's, from its own copy (no "cart"), keeps it.
	payload, _ := phpserial.EncodeSession(json.RawMessage(`{"user":"ana","n":3,"logged":true}`), phpserial.DefaultLimits())
	if err := a.apply(message{Op: "write", ID: y, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	a.sess.Release(ctx)
	if got, want := storedData(t, m, y), `{"user":"ana","n":3,"cart":3,"logged":true}`; got != want {
		t.Fatalf("after A's second write the new session holds %s, want %s", got, want)
	}
}

// raceRetireStore lets another request store "cart":3 in the session just
// before the tombstone of a regeneration is written (an Unlock with a Put,
// or a Save of a tombstone), once.
// Its write takes slow first, as a large one on a loaded Redis does.
type raceRetireStore struct {
	store.Store
	mu   sync.Mutex
	done bool
	slow time.Duration
}

func (r *raceRetireStore) interfere(ctx context.Context, id string, value []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || !bytes.Contains(value, []byte(`"retired"`)) {
		return nil
	}
	r.done = true
	time.Sleep(r.slow)
	cur, err := r.Store.Load(ctx, id)
	if err != nil {
		return err
	}
	rec, err := decodeRecord(cur.Value)
	if err != nil {
		return err
	}
	rec.Data = json.RawMessage(`{"user":"ana","n":1,"cart":3}`)
	_, err = r.Store.Save(ctx, id, cur.Version, rec.encode(), time.Minute)
	return err
}

func (r *raceRetireStore) Save(ctx context.Context, id string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	if err := r.interfere(ctx, id, value); err != nil {
		return 0, err
	}
	return r.Store.Save(ctx, id, expect, value, ttl)
}

func (r *raceRetireStore) Lock(ctx context.Context, id string, lease time.Duration) (store.Lease, store.Record, error) {
	l, rec, err := r.Store.Lock(ctx, id, lease)
	if err != nil {
		return nil, rec, err
	}
	return raceRetireLease{l, r, id}, rec, nil
}

type raceRetireLease struct {
	store.Lease
	r  *raceRetireStore
	id string
}

func (l raceRetireLease) Unlock(ctx context.Context, mu store.Mutation) (uint64, error) {
	if mu.Kind == store.Put {
		if err := l.r.interfere(ctx, l.id, mu.Value); err != nil {
			return 0, err
		}
	}
	return l.Lease.Unlock(ctx, mu)
}

// The same as TestMergePHPRegenerationKeepsAConcurrentWrite with the other
// request's write landing while the tombstone is being put: it got its
// 200, so its key must reach the new session too. Also when the losing
// tombstone write takes longer than SESSIONGATE_SESSION_LOCK_TIMEOUT: the
// move is tried again (the timeout bounds the retries, from the first
// loss), not given up as busy.
func TestMergePHPRegenerationKeepsAWriteRacingTheTombstone(t *testing.T) {
	for _, tc := range []struct {
		name              string
		slow, lockTimeout time.Duration
	}{{"quick", 0, 2 * time.Second}, {"slower than the lock timeout", 100 * time.Millisecond, 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mem := memory.New(memory.Options{})
			t.Cleanup(func() { mem.Close() })
			m := newMergeManager(t, &raceRetireStore{Store: mem, slow: tc.slow}, tc.lockTimeout)
			x := createSession(t, m, `{"user":"ana","n":1}`)
			a := newTestBridge(t, m, x)
			y := regenerateAs(t, "A", a, x, `{"user":"ana","n":2,"logged":true}`)
			a.sess.Release(ctx)
			if got, want := storedData(t, m, y), `{"user":"ana","n":2,"cart":3,"logged":true}`; got != want {
				t.Fatalf("the new session holds %s, want %s", got, want)
			}
			if rec, _ := mem.Load(ctx, x); !bytes.Contains(rec.Value, []byte(`"retired"`)) {
				t.Fatalf("the old ID holds %s, want its tombstone", rec.Value)
			}
		})
	}
}

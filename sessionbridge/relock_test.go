package sessionbridge

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// heldReleaseStore holds the release of the next lease taken once armed
// until release is closed, so that another request can queue for the lock
// while a relocked write holds it.
type heldReleaseStore struct {
	store.Store
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (h *heldReleaseStore) Lock(ctx context.Context, id string, ttl time.Duration) (store.Lease, store.Record, error) {
	l, rec, err := h.Store.Lock(ctx, id, ttl)
	h.mu.Lock()
	armed := h.armed
	h.armed = false
	h.mu.Unlock()
	if err != nil || !armed {
		return l, rec, err
	}
	return heldLease{l, h}, rec, nil
}

type heldLease struct {
	store.Lease
	h *heldReleaseStore
}

func (l heldLease) Unlock(ctx context.Context, m store.Mutation) (uint64, error) {
	close(l.h.entered)
	<-l.h.release
	return l.Lease.Unlock(ctx, m)
}

// handOverStores are the stores the tests of a write under the lock run
// on: the Redis store hands its lock to a waiter of the same process with
// the record the release leaves, which such a write must reach.
var handOverStores = map[string]func(t *testing.T) store.Store{
	"memory": func(t *testing.T) store.Store {
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { mem.Close() })
		return mem
	},
	"redis": func(t *testing.T) store.Store {
		st, _ := newMiniredisStore(t)
		return st
	},
}

// TestRelockedWriteReachesTheNextLocalHolder: strict mode, PHP's
// session_start() again after session_write_close(). The request's second
// write takes the lock again (saveRelocked) while another request of the
// session waits for it on the same gateway. The Redis store hands the lock
// to that waiter with the record the release leaves, without asking Redis:
// a second write saved beside the lock (compare-and-set) never reached the
// waiter, whose own write then replaced it. The write must reach the
// waiter, and survive its write.
func TestRelockedWriteReachesTheNextLocalHolder(t *testing.T) {
	for name, newStore := range handOverStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			h := &heldReleaseStore{Store: newStore(t), entered: make(chan struct{}), release: make(chan struct{})}
			m := newTestManager(t, LockStrict, h)
			id := createSession(t, m, `{"n":0}`)

			a, err := m.Open(ctx, requestWithCookie(t, m, id), false)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Release(ctx)
			// The first write releases the lock (session_write_close()).
			if _, err := a.Write(ctx, id, json.RawMessage(`{"n":1}`), nil); err != nil {
				t.Fatal(err)
			}
			h.mu.Lock()
			h.armed = true
			h.mu.Unlock()
			aDone := make(chan error, 1)
			go func() {
				_, err := a.Write(ctx, id, json.RawMessage(`{"n":2}`), nil)
				aDone <- err
			}()
			<-h.entered // the second write holds the lock again
			type opened struct {
				s   *Session
				err error
			}
			bOpened := make(chan opened, 1)
			go func() {
				s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
				bOpened <- opened{s, err}
			}()
			// B waits for the lock (polling would not show it: the
			// stores keep their queues to themselves).
			time.Sleep(100 * time.Millisecond)
			close(h.release)
			if err := <-aDone; err != nil {
				t.Fatalf("second write: %v", err)
			}
			b := <-bOpened
			if b.err != nil {
				t.Fatal(b.err)
			}
			given := string(b.s.Data())
			if _, err := b.s.Write(ctx, id, json.RawMessage(`{"b":1,"n":2}`), nil); err != nil {
				t.Fatal(err)
			}
			b.s.Release(ctx)
			if given != `{"n":2}` {
				t.Errorf("the waiting request was given %s after the relocked write of {\"n\":2}", given)
			}
			if got := storedData(t, m, id); got != `{"b":1,"n":2}` {
				t.Errorf("stored at the end: %s, want {\"b\":1,\"n\":2}", got)
			}
		})
	}
}

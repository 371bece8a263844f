package sessionbridge

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// eventCounter is a Metrics that counts events.
type eventCounter struct {
	mu     sync.Mutex
	events map[string]int
}

func (c *eventCounter) SessionEvent(e string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.events == nil {
		c.events = map[string]int{}
	}
	c.events[e]++
}

func (c *eventCounter) LockWait(time.Duration) {}

func (c *eventCounter) count(e string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[e]
}

// failUnlockStore's leases fail every Unlock as Redis going away would.
type failUnlockStore struct{ store.Store }

func (s failUnlockStore) Lock(ctx context.Context, id string, lease time.Duration) (store.Lease, store.Record, error) {
	l, rec, err := s.Store.Lock(ctx, id, lease)
	if err != nil {
		return nil, rec, err
	}
	return failUnlockLease{l}, rec, nil
}

type failUnlockLease struct{ store.Lease }

func (failUnlockLease) Unlock(context.Context, store.Mutation) (uint64, error) {
	return 0, fmt.Errorf("%w: connection reset", store.ErrUnavailable)
}

// One failed Redis operation is one store error: a logout (destroy) in
// strict mode whose unlock fails counted it twice, once where the lease
// is released and once more in destroy.
func TestFailedDestroyIsOneStoreError(t *testing.T) {
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	m := newTestManager(t, LockStrict, mem)
	id := createSession(t, m, `{"n":1}`)
	m.o.Store = failUnlockStore{mem}
	mc := &eventCounter{}
	m.o.Metrics = mc
	s, err := m.Open(context.Background(), requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(context.Background(), id); err == nil {
		t.Fatal("destroy succeeded though the unlock failed")
	}
	s.Release(context.Background())
	if n := mc.count("store_error"); n != 1 {
		t.Fatalf("one failed unlock counted as %d store errors (events %v)", n, mc.events)
	}
}

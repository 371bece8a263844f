package sessionbridge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
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

// waitRecorder is a Metrics that keeps the lock waits and counts events.
type waitRecorder struct {
	eventCounter
	waits []time.Duration
}

func (w *waitRecorder) LockWait(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, d)
}

// A strict-mode write after the request released its lock (PHP's
// session_start() again after session_write_close(), or its last write
// after an early close), and a logout or regeneration then, take the lock
// again and may wait for it like the load did, up to the lock timeout.
// That wait is a lock wait too:
// sessiongate_session_lock_wait_seconds ("timeouts included") left it
// out, so a lock_timeout counted there had no wait in the histogram, and
// a busy session's relock waits, however long, never showed.
func TestRelockWaitIsALockWait(t *testing.T) {
	for _, op := range []string{"write", "destroy"} {
		t.Run(op, func(t *testing.T) {
			m := newTestManager(t, LockStrict, nil)
			m.o.LockTimeout = 200 * time.Millisecond
			id := createSession(t, m, `{"n":1}`)
			mc := &waitRecorder{}
			m.o.Metrics = mc
			ctx := context.Background()
			s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
			if err != nil {
				t.Fatal(err)
			}
			s.Close(ctx, id) // session_write_close(): the lock goes
			other, err := m.Open(ctx, requestWithCookie(t, m, id), false)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Release(ctx)
			if op == "write" {
				if _, err := s.Write(ctx, id, []byte(`{"n":2}`), nil); err == nil {
					t.Fatal("the write got the lock another request holds")
				}
			} else {
				// A logout after session_write_close(): it waits for
				// the lock like PHP's files handler, then deletes.
				s.Destroy(ctx, id)
			}
			s.Release(ctx)
			mc.mu.Lock()
			defer mc.mu.Unlock()
			// The two loads, then the relock that ran out.
			if len(mc.waits) != 3 || mc.waits[2] < m.o.LockTimeout {
				t.Fatalf("lock waits %v (events %v): want the loads' and the relock's, which waited at least %v", mc.waits, mc.events, m.o.LockTimeout)
			}
		})
	}
}

// The warnings about a request that the bridge writes name its path, which
// the client chose and which may be as long as the request line allows
// (1 MiB by default): cut like the access log's, so that each stays one
// line a log pipeline takes whole (Docker cuts at 16 KiB). A client that
// keeps its own session busy had each 503 write a line as long as its path.
func TestRequestWarningsAreBounded(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	var logs strings.Builder
	m.log = slog.New(slog.NewJSONHandler(&logs, nil))
	for _, err := range []error{ErrBusy, ErrUnavailable} {
		logs.Reset()
		r := httptest.NewRequest("GET", "/index.php/"+strings.Repeat("a", 200<<10), nil)
		m.RespondOpenError(httptest.NewRecorder(), r, err)
		if n := len(logs.String()); n == 0 || n > 16<<10 {
			t.Errorf("%v: log of %d bytes", err, n)
		}
	}
}

package sessionbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// testLease is short, but not so short that a loaded machine delays a
// renewal tick past it.
const testLease = 600 * time.Millisecond

// renewStore counts the renewals of its leases and can make them fail.
type renewStore struct {
	store.Store
	renewals atomic.Int64
	mu       sync.Mutex
	fail     []error // returned by the next renewals, in order, instead of renewing
}

func (s *renewStore) Lock(ctx context.Context, id string, lease time.Duration) (store.Lease, store.Record, error) {
	l, rec, err := s.Store.Lock(ctx, id, lease)
	if err != nil {
		return nil, rec, err
	}
	return renewLease{l, s}, rec, nil
}

type renewLease struct {
	store.Lease
	s *renewStore
}

func (l renewLease) Renew(ctx context.Context, lease time.Duration) error {
	l.s.renewals.Add(1)
	l.s.mu.Lock()
	var err error
	if len(l.s.fail) > 0 {
		err, l.s.fail = l.s.fail[0], l.s.fail[1:]
	}
	l.s.mu.Unlock()
	if err != nil {
		return err
	}
	return l.Lease.Renew(ctx, lease)
}

// newRenewManager is a strict manager with a short lock lease on a memory
// store wrapped by renewStore, logging into the returned buffer.
func newRenewManager(t *testing.T) (*Manager, *renewStore, *testlog.Buffer) {
	t.Helper()
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	rs := &renewStore{Store: mem}
	logs := &testlog.Buffer{}
	m, err := New(Options{
		Store:        rs,
		Secrets:      [][]byte{[]byte(testSecret)},
		Cookie:       CookieOptions{Name: "sessionid", MaxAge: time.Hour},
		IdleTimeout:  10 * time.Minute,
		LockMode:     LockStrict,
		LockTimeout:  10 * time.Second,
		LockLease:    testLease,
		StoreTimeout: time.Second,
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, rs, logs
}

type opened struct {
	data string
	err  error
	at   time.Time
}

// openLater opens session id on another goroutine (another request of the
// session) and releases it at once.
func openLater(t *testing.T, m *Manager, id string) <-chan opened {
	got := make(chan opened, 1)
	go func() {
		s, err := m.Open(context.Background(), requestWithCookie(t, m, id), false)
		if err != nil {
			got <- opened{err: err, at: time.Now()}
			return
		}
		got <- opened{data: string(s.Data()), at: time.Now()}
		s.Release(context.Background())
	}()
	return got
}

// A request that keeps its session three times longer than the lock lease
// keeps the lock: the session's next request waits for it and sees its
// write, which lands (it failed with "lock lease lost" when nothing renewed
// the lease of a live request).
func TestLockRenewedWhileRequestRuns(t *testing.T) {
	m, rs, _ := newRenewManager(t)
	id := createSession(t, m, `{"n":1}`)
	ctx := context.Background()
	s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	got := openLater(t, m, id)
	time.Sleep(3 * testLease)
	select {
	case o := <-got:
		t.Fatalf("a second request opened the session while the first held it for %v (lease %v): %s %v", 3*testLease, testLease, o.data, o.err)
	default:
	}
	if _, err := s.Write(ctx, id, json.RawMessage(`{"n":2}`), nil); err != nil {
		t.Fatalf("write after %v under a %v lease: %v", 3*testLease, testLease, err)
	}
	s.Release(ctx)
	o := <-got
	if o.err != nil || o.data != `{"n":2}` {
		t.Fatalf("second request: %s %v, want {\"n\":2}", o.data, o.err)
	}
	if n := rs.renewals.Load(); n < 3 {
		t.Errorf("%d renewals in %v of a %v lease, want at least 3", n, 3*testLease, testLease)
	}
}

// The lock of a new session whose cookie left before its write (see
// TestNewSessionWhoseCookieLeftBeforeItsWriteIsLocked) is renewed too.
func TestAnnouncedLockRenewedWhileRequestRuns(t *testing.T) {
	m, _, _ := newRenewManager(t)
	ctx := context.Background()
	s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	if err := s.Announce(id); err != nil {
		t.Fatal(err)
	}
	s.SetCookie(http.Header{})
	got := openLater(t, m, id)
	time.Sleep(3 * testLease)
	select {
	case o := <-got:
		t.Fatalf("a request with the new session's cookie ran while the page still held it: %s %v", o.data, o.err)
	default:
	}
	if _, err := s.Write(ctx, id, json.RawMessage(`{"csrf":"t0k"}`), nil); err != nil {
		t.Fatal(err)
	}
	s.Release(ctx)
	if o := <-got; o.err != nil || o.data != `{"csrf":"t0k"}` {
		t.Fatalf("second request: %s %v", o.data, o.err)
	}
}

// A request shorter than a third of the lease costs no renewal, and none
// happens once the request released the session.
func TestNoRenewalForShortRequestsNorAfterRelease(t *testing.T) {
	m, rs, _ := newRenewManager(t)
	id := createSession(t, m, `{"n":1}`)
	ctx := context.Background()
	for range 5 {
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		s.Release(ctx)
	}
	time.Sleep(testLease)
	if n := rs.renewals.Load(); n != 0 {
		t.Errorf("%d renewals for requests shorter than a third of the lease", n)
	}
	s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(testLease / 2)
	if err := s.Touch(ctx, id); err != nil { // releases the lock
		t.Fatal(err)
	}
	n := rs.renewals.Load()
	if n < 1 {
		t.Errorf("no renewal for a request held %v", testLease/2)
	}
	time.Sleep(2 * testLease)
	if got := rs.renewals.Load(); got != n {
		t.Errorf("%d renewals after the session was released", got-n)
	}
	s.Release(ctx)
}

// Renewal ends with the request's context (client gone, timeout): the lock
// does not outlive the request by more than a lease.
func TestRenewalStopsWhenRequestContextEnds(t *testing.T) {
	m, rs, _ := newRenewManager(t)
	id := createSession(t, m, `{"n":1}`)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(context.Background())
	time.Sleep(testLease / 2) // one renewal
	cancel()
	start := time.Now()
	o := <-openLater(t, m, id)
	if o.err != nil {
		t.Fatal(o.err)
	}
	if d := o.at.Sub(start); d > 3*testLease {
		t.Errorf("the lock of a request whose context ended was held %v more (lease %v)", d, testLease)
	}
	if n := rs.renewals.Load(); n > 2 {
		t.Errorf("%d renewals for a request that ended after %v", n, testLease/2)
	}
}

// A renewal that finds the lock lost stops renewing and says so; one that
// fails on the backend is tried again at the next tick.
func TestRenewalFailures(t *testing.T) {
	t.Run("lost", func(t *testing.T) {
		m, rs, logs := newRenewManager(t)
		id := createSession(t, m, `{"n":1}`)
		rs.fail = []error{store.ErrLeaseLost}
		ctx := context.Background()
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * testLease)
		if n := rs.renewals.Load(); n != 1 {
			t.Errorf("%d renewals, want 1: renewing must stop once the lock is lost", n)
		}
		if !strings.Contains(logs.String(), "lock") || !strings.Contains(logs.String(), "WARN") {
			t.Errorf("no warning for a lost lock:\n%s", logs.String())
		}
		s.Release(ctx)
	})
	t.Run("transient", func(t *testing.T) {
		m, rs, logs := newRenewManager(t)
		id := createSession(t, m, `{"n":1}`)
		rs.fail = []error{fmt.Errorf("%w: redis renew: i/o timeout", store.ErrUnavailable)}
		ctx := context.Background()
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		// The first renewal fails at lease/3, the next at 2/3 renews in
		// time; the lock then stays held.
		got := openLater(t, m, id)
		time.Sleep(3 * testLease)
		select {
		case o := <-got:
			t.Fatalf("the lock was lost after one failed renewal: %s %v", o.data, o.err)
		default:
		}
		if _, err := s.Write(ctx, id, json.RawMessage(`{"n":2}`), nil); err != nil {
			t.Fatal(err)
		}
		s.Release(ctx)
		if o := <-got; o.err != nil || o.data != `{"n":2}` {
			t.Fatalf("second request: %s %v", o.data, o.err)
		}
		if !strings.Contains(logs.String(), "i/o timeout") {
			t.Errorf("the failed renewal was not logged:\n%s", logs.String())
		}
	})
}

// Renewals leave no goroutine behind: many sessions held past a third of
// the lease (so renewals ran), then released.
func TestRenewalLeavesNoGoroutine(t *testing.T) {
	m, rs, _ := newRenewManager(t)
	ctx := context.Background()
	var ids []string
	for range 20 {
		ids = append(ids, createSession(t, m, `{"n":1}`))
	}
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	var held []*Session
	for _, id := range ids {
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, s)
	}
	time.Sleep(testLease / 2)
	for _, s := range held {
		s.Release(ctx)
	}
	if rs.renewals.Load() < int64(len(ids)) {
		t.Fatalf("%d renewals for %d sessions held %v", rs.renewals.Load(), len(ids), testLease/2)
	}
	if !waitFor(2*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		t.Fatalf("%d goroutines after the sessions were released, %d before", runtime.NumGoroutine(), before)
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

package memory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/storetest"
)

func newStore(t testing.TB) *Store {
	s := New(Options{SweepInterval: 50 * time.Millisecond})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, store.Store) {
		s := newStore(t)
		return s, s
	})
}

func TestSweepFreesExpired(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i := range 100 {
		if _, err := s.Save(ctx, string(rune('a'+i%26))+time.Now().String(), 0, []byte("x"), 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Save(ctx, "kept", 0, []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("sweep left %d records, want 1", s.Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClosed(t *testing.T) {
	s := New(Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	if _, err := s.Load(ctx, "x"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Load after Close: %v", err)
	}
	if _, _, err := s.Lock(ctx, "x", time.Second); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Lock after Close: %v", err)
	}
}

func TestLockRejectsBadLease(t *testing.T) {
	s := newStore(t)
	if _, _, err := s.Lock(context.Background(), "x", 0); err == nil {
		t.Fatal("Lock with zero lease TTL succeeded")
	}
}

// Waiters are served in arrival order.
func TestLockFIFO(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	l, _, err := s.Lock(ctx, "fifo", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 5)
	for i := range 5 {
		go func() {
			l, _, err := s.Lock(ctx, "fifo", time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			_, _ = l.Unlock(ctx, store.Mutation{Kind: store.Keep})
		}()
		// wait until waiter i is queued before starting the next one
		for {
			sh := s.shard("fifo")
			sh.mu.Lock()
			n := len(sh.locks["fifo"].queue)
			sh.mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if got := <-order; got != i {
			t.Fatalf("waiter %d got the lock in position %d", got, i)
		}
	}
}

func TestUnknownMutationRefused(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	l, _, err := s.Lock(ctx, "m", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: 99}); err == nil {
		t.Fatal("unknown mutation kind accepted")
	}
	// Nothing happened: the lease is still held and still usable.
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, _, err := s.Lock(tctx, "m", time.Minute); !errors.Is(err, store.ErrLockTimeout) {
		t.Fatalf("lock after a refused mutation: %v, want ErrLockTimeout", err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatalf("Unlock after a refused mutation: %v", err)
	}
}

func BenchmarkLockUnlock(b *testing.B) { storetest.BenchLockUnlock(b, newStore(b)) }

func BenchmarkHotSession(b *testing.B) { storetest.BenchHotSession(b, newStore(b)) }

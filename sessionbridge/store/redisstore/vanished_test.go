package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// A lock gone from Redis before its lease ended was lost by Redis (a
// failover to a replica that never got it, FLUSHDB): Unlock and Renew say
// so with ErrLockVanished next to ErrLeaseLost, and the manager counts it
// as a store error. A lease that ran out is ErrLeaseLost alone: the
// request outran it, Redis did nothing wrong.
func TestLockVanishedBeforeLeaseEnd(t *testing.T) {
	m := startMiniredis(t)
	s := newTestStore(t, m.Addr())
	ctx := context.Background()
	keys, _ := s.keys("vanish")

	l, _, err := s.Lock(ctx, "vanish", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	m.Del(keys[1])
	if err := l.Renew(ctx, time.Minute); !errors.Is(err, store.ErrLeaseLost) || !errors.Is(err, store.ErrLockVanished) {
		t.Fatalf("Renew of a lock Redis lost: %v, want ErrLeaseLost and ErrLockVanished", err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("x"), TTL: time.Minute}); !errors.Is(err, store.ErrLeaseLost) || !errors.Is(err, store.ErrLockVanished) {
		t.Fatalf("Unlock of a lock Redis lost: %v, want ErrLeaseLost and ErrLockVanished", err)
	}

	l, _, err = s.Lock(ctx, "vanish", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("x"), TTL: time.Minute}); !errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrLockVanished) {
		t.Fatalf("Unlock after the lease ran out: %v, want ErrLeaseLost alone", err)
	}
}

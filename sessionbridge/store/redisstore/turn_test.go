package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// When every waiter of an instance gives up at once (the user closed the
// tab: all its requests are canceled together), the claim to the next turn
// that its contender made is handed back, whichever of them was head last:
// otherwise the other gateways wait on a free lock until the claim lapses.
func TestTurnHandedBackWhenAllLocalWaitersGiveUp(t *testing.T) {
	m := startMiniredis(t)
	a, b := newTestStore(t, m.Addr()), newTestStore(t, m.Addr())
	bg := context.Background()
	for i := range 30 {
		id := fmt.Sprintf("giveup%d", i)
		keys, _ := a.keys(id)
		held, _, err := a.Lock(bg, id, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(bg)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if _, _, err := b.Lock(ctx, id, time.Second); !errors.Is(err, store.ErrLockTimeout) {
					t.Errorf("b.Lock: %v, want ErrLockTimeout", err)
				}
			})
		}
		// b's contender has claimed the next turn and its second request
		// waits behind it.
		for deadline := time.Now().Add(5 * time.Second); ; {
			b.mu.Lock()
			q := b.queues[id]
			n := 0
			if q != nil {
				n = len(q.waiters)
			}
			b.mu.Unlock()
			if n == 1 && m.Exists(keys[2]) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("b never claimed a turn with a waiter queued")
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		wg.Wait()
		// The hand-back runs in the background; the claim itself would
		// live 2 s.
		for deadline := time.Now().Add(500 * time.Millisecond); m.Exists(keys[2]); {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: b gave up but its claim to the next turn stands (PTTL %v): other gateways wait on a free lock until it lapses", i, m.TTL(keys[2]))
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := held.Unlock(bg, store.Mutation{Kind: store.Keep}); err != nil {
			t.Fatal(err)
		}
	}
}

// slowHook delays every command of one client: a gateway a little farther
// from Redis than the others.
type slowHook time.Duration

func (h slowHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h slowHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		time.Sleep(time.Duration(h))
		return next(ctx, cmd)
	}
}
func (h slowHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// With three gateways, the one a few milliseconds farther from Redis is
// not starved by the other two: before, whenever a claimant took the lock
// and announced it, the nearer gateway always won the race for the next
// claim, so the two near gateways passed their later requests turn by turn
// while the far one's request waited seconds or timed out.
func TestThreeGatewaysTakeTurns(t *testing.T) {
	m := startMiniredis(t)
	x, y := newTestStore(t, m.Addr()), newTestStore(t, m.Addr())
	z := openTestStore(t, "redis://"+m.Addr()+"/0", slowHook(3*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const id = "three"
	done := make(chan struct{})
	var wg sync.WaitGroup
	var passed atomic.Int64
	for _, s := range []*Store{x, y} {
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					l, _, err := s.Lock(ctx, id, 5*time.Second)
					if err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond)
					_, _ = l.Unlock(ctx, store.Mutation{Kind: store.Keep})
					passed.Add(1)
				}
			})
		}
	}
	time.Sleep(100 * time.Millisecond)
	zctx, zcancel := context.WithTimeout(ctx, 3*time.Second)
	defer zcancel()
	start := time.Now()
	before := passed.Load()
	l, _, err := z.Lock(zctx, id, 5*time.Second)
	waited, others := time.Since(start), passed.Load()-before
	if err == nil {
		_, _ = l.Unlock(ctx, store.Mutation{Kind: store.Keep})
	}
	close(done)
	wg.Wait()
	if err != nil || waited > time.Second {
		t.Fatalf("the far gateway waited %v (err %v) while the other two passed %d later requests", waited, err, others)
	}
	t.Logf("the far gateway waited %v; %d requests of the others passed meanwhile", waited, others)
}

package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore/redisstoretest"
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
			if localWaiters(b, id) == 1 && m.Exists(keys[2]) {
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

// With three gateways, the one a few milliseconds farther from Redis is
// not starved by the other two: before, whenever a claimant took the lock
// and announced it, the nearer gateway always won the race for the next
// claim, so the two near gateways passed their later requests turn by turn
// while the far one's request waited seconds or timed out.
func TestThreeGatewaysTakeTurns(t *testing.T) {
	m := startMiniredis(t)
	x, y := newTestStore(t, m.Addr()), newTestStore(t, m.Addr())
	z := openTestStore(t, "redis://"+m.Addr()+"/0", redisstoretest.Delay(3*time.Millisecond), Options{})
	redisstoretest.FarInstanceGetsATurn(t, []store.Store{x, y}, z, "three", 100*time.Millisecond)
}

// A claim to the next turn with less than a millisecond left (PTTL 0) is
// tried again as soon as it lapses, not after maxWait: the contender used
// to read 0 as "no time known" and sleep a whole second on a lock that was
// free by then.
func TestTurnAboutToLapseIsTriedAgainAtOnce(t *testing.T) {
	m := miniredis.RunT(t) // its clock moves only when told (FastForward)
	s := newTestStore(t, m.Addr())
	id := "lapsing"
	keys, _ := s.keys(id)
	m.Set(keys[2], "otherinstance 1")
	m.SetTTL(keys[2], 500*time.Microsecond) // PTTL reads 0
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, _, err := s.Lock(ctx, id, time.Second)
		if err == nil {
			_, err = l.Unlock(ctx, store.Mutation{Kind: store.Keep})
		}
		done <- err
	}()
	// The claim keeps the contender off the free lock while it stands.
	select {
	case err := <-done:
		t.Fatalf("took the lock past another instance's claim to the turn (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	m.FastForward(time.Millisecond) // the claim lapses
	lapsed := time.Now()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(lapsed); waited >= maxWait/2 {
		t.Errorf("took the free lock %v after the claim lapsed, want well under maxWait (%v)", waited, maxWait)
	}
}

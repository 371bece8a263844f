package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore/redisstoretest"
)

// Only a gateway's first waiter contends in Redis: the older requests queued
// behind it on that gateway are known to no other. Gateway b queues six
// requests while a holds the session; then a gets a steady stream of newer
// requests. b's holder must hand the lock to its own older waiters rather
// than release it as soon as a's (newer) contender has claimed the next
// turn: before, the gateways alternated two requests each whatever their
// ages (a's contender, woken by b's release, took the free lock before b's
// older next request could claim the turn), and b's last requests timed
// out while a's newer ones passed (README: "Waiters are served in turn
// across gateways").
//
// Counted is the order, not the time: how often a request of a's got the
// lock while an older request of b's was waiting. Served oldest first,
// once at most: a's first holder may hand over to a's next request before
// its unlock reply tells it of b's claim (TestOtherInstanceGetsTheNextTurn).
// Every wait is generous, so a loaded machine only slows the test down.
func TestOlderWaitersQueuedBehindAGatewaysHeadAreNotOvertaken(t *testing.T) {
	for _, real := range []bool{false, true} {
		name := "miniredis"
		if real {
			name = "redis-server"
		}
		t.Run(name, func(t *testing.T) {
			var addr string
			if real {
				addr = runRedisServer(t)
			} else {
				addr = startMiniredis(t).Addr()
			}
			// b is 2 ms farther from Redis than a, so a's contender wins
			// every race for a lock b releases.
			a := newTestStore(t, addr)
			b := openTestStore(t, "redis://"+addr+"/0", redisstoretest.Delay(2*time.Millisecond), Options{Coalesce: true})
			const (
				id    = "oldestfirst"
				hold  = 50 * time.Millisecond
				lease = 30 * time.Second
				bN    = 6
				aN    = 3
			)
			bg := context.Background()
			ctx, cancel := context.WithTimeout(bg, 60*time.Second)
			defer cancel()
			keys, _ := a.keys(id)
			first, _, err := a.Lock(ctx, id, lease)
			if err != nil {
				t.Fatal(err)
			}
			type request struct {
				called, got time.Time
				err         error
			}
			var mu sync.Mutex // guards the requests' got and err
			bReqs := make([]*request, bN)
			var bwg sync.WaitGroup
			for i := range bReqs {
				r := &request{called: time.Now()}
				bReqs[i] = r
				bwg.Go(func() {
					l, _, err := b.Lock(ctx, id, lease)
					mu.Lock()
					r.got, r.err = time.Now(), err
					mu.Unlock()
					if err != nil {
						return
					}
					time.Sleep(hold)
					if _, err := l.Unlock(bg, store.Mutation{Kind: store.Keep}); err != nil {
						t.Errorf("b unlock: %v", err)
					}
				})
				if i == 0 {
					// b's head has claimed the next turn.
					waitFor(t, "b's claim to the next turn", func() bool {
						v, err := a.c.Get(bg, keys[2]).Result()
						return err == nil && strings.HasPrefix(v, b.tokenPrefix+" ")
					})
				} else {
					waitFor(t, fmt.Sprintf("b's request %d queued", i), func() bool { return localWaiters(b, id) == i })
				}
			}
			// a's requests all ask later, by the clock's milliseconds too
			// (the turn order's unit).
			time.Sleep(5 * time.Millisecond)
			stop := make(chan struct{})
			var (
				aGot   int
				passes []string
				awg    sync.WaitGroup
			)
			for range aN {
				awg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						called := time.Now()
						l, _, err := a.Lock(ctx, id, lease)
						if err != nil {
							t.Errorf("a.Lock: %v", err)
							return
						}
						got := time.Now()
						mu.Lock()
						aGot++
						for i, r := range bReqs {
							// b's request i asked earlier and was still waiting.
							if r.called.Before(called) && (r.got.IsZero() || r.got.After(got)) {
								passes = append(passes, fmt.Sprintf("b#%d (waiting %v)", i, got.Sub(r.called).Round(time.Millisecond)))
								break
							}
						}
						mu.Unlock()
						time.Sleep(hold)
						if _, err := l.Unlock(bg, store.Mutation{Kind: store.Keep}); err != nil {
							t.Errorf("a unlock: %v", err)
						}
					}
				})
			}
			waitFor(t, "a's requests queued behind its holder", func() bool { return localWaiters(a, id) == aN })
			if _, err := first.Unlock(bg, store.Mutation{Kind: store.Keep}); err != nil {
				t.Fatal(err)
			}
			bwg.Wait()
			close(stop)
			awg.Wait()
			mu.Lock()
			defer mu.Unlock()
			for i, r := range bReqs {
				if r.err != nil {
					t.Errorf("b's request %d: %v", i, r.err)
				}
			}
			if len(passes) > 1 {
				t.Errorf("a's newer requests got the lock %d times while an older request of b's waited (%s), want once at most: b's holder released the lock to a's newer claim instead of handing it to b's older waiters", len(passes), strings.Join(passes, ", "))
			}
			t.Logf("a's requests got the lock %d times, %d of them before an older request of b's: %v", aGot, len(passes), passes)
		})
	}
}

// A claim to the next turn by a gateway of a release before the claim
// named when its contender asked ("instance" alone) counts as the oldest:
// the holder's gateway stops handing the lock to its own waiters after the
// one hand-over its unlock reply comes too late for.
func TestClaimWithoutSinceStopsHandOvers(t *testing.T) {
	m := startMiniredis(t)
	a := newTestStore(t, m.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const id = "oldclaim"
	keys, _ := a.keys(id)
	l1, _, err := a.Lock(ctx, id, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	local := make(chan store.Lease, 2)
	for i := range 2 {
		go func() {
			l, _, err := a.Lock(ctx, id, 10*time.Second)
			if err != nil && !errors.Is(err, store.ErrLockTimeout) {
				t.Errorf("a.Lock: %v", err)
			}
			local <- l
		}()
		waitFor(t, "local waiter queued", func() bool { return localWaiters(a, id) == i+1 })
	}
	m.Set(keys[2], "oldgateway")
	m.SetTTL(keys[2], 10*time.Second)
	if _, err := l1.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
	l2 := <-local // the hand-over before the reply told of the claim
	if l2 == nil {
		t.Fatal("no hand-over")
	}
	if _, err := l2.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
	// Released for the old gateway: the next local request contends, and
	// the claim keeps it off the free lock.
	select {
	case l := <-local:
		t.Fatalf("the lock was handed over again past another gateway's claim (lease %v)", l != nil)
	case <-time.After(100 * time.Millisecond):
	}
	if m.Exists(keys[1]) {
		t.Fatal("the lock is still held, want it released for the claimant")
	}
	m.Del(keys[2]) // the old gateway's contender gave up
	a.mu.Lock()
	if q := a.queues[id]; q != nil {
		signal(q.notify)
	}
	a.mu.Unlock()
	if l := <-local; l == nil {
		t.Fatal("the last local request never got the lock")
	} else if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

package redisstoretest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// Delay is a go-redis hook that delays every command of one client: a
// gateway a little farther from Redis than the others.
type Delay time.Duration

func (d Delay) DialHook(next redis.DialHook) redis.DialHook { return next }

func (d Delay) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		time.Sleep(time.Duration(d))
		return next(ctx, cmd)
	}
}

func (d Delay) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// FarInstanceGetsATurn keeps session id busy from the near instances (four
// lockers each, 5 ms per hold) and, after settle, has the far instance (one
// whose commands are Delayed) ask for the lock once: it must get it within
// a second, not lose every race for the claim to the next turn to the
// nearer instances and time out.
func FarInstanceGetsATurn(t testing.TB, near []store.Store, far store.Store, id string, settle time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var passed atomic.Int64
	for _, s := range near {
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
	time.Sleep(settle)
	fctx, fcancel := context.WithTimeout(ctx, 3*time.Second)
	defer fcancel()
	start, before := time.Now(), passed.Load()
	l, _, err := far.Lock(fctx, id, 5*time.Second)
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

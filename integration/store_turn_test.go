package integration

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

// delayHook delays every command of one client: a gateway a little farther
// from Redis than the others.
type delayHook time.Duration

func (h delayHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h delayHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		time.Sleep(time.Duration(h))
		return next(ctx, cmd)
	}
}
func (h delayHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// openFarStore is openStore for a gateway whose every command takes d
// longer.
func openFarStore(t *testing.T, url, prefix string, d time.Duration) *redisstore.Store {
	t.Helper()
	c, err := redisstore.OpenClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.OnNewNode(func(n *redis.Client) { n.AddHook(delayHook(d)) })
	} else {
		c.AddHook(delayHook(d))
	}
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = c.Close()
	})
	return s
}

// Three gateways on one hot session: the one a few milliseconds farther
// from Redis gets its turn within a few requests of the others, instead of
// losing every race for the claim to the next turn to the nearer two.
func TestStoreRedisThreeGatewaysTakeTurns(t *testing.T) {
	harness.Require(t, "redis-server", "redis-cli")
	r := harness.StartRedis(t)
	c := harness.StartRedisCluster(t)
	for name, url := range map[string]string{"standalone": r.URL(), "cluster": clusterURL(c)} {
		t.Run(name, func(t *testing.T) {
			x, y := openStore(t, url, "three:"), openStore(t, url, "three:")
			z := openFarStore(t, url, "three:", 3*time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			const id = "hot"
			done := make(chan struct{})
			var wg sync.WaitGroup
			var passed atomic.Int64
			for _, s := range []*redisstore.Store{x, y} {
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
			time.Sleep(200 * time.Millisecond)
			zctx, zcancel := context.WithTimeout(ctx, 3*time.Second)
			defer zcancel()
			start, before := time.Now(), passed.Load()
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
		})
	}
}

// A claim to the next turn left by a gateway that died (or by one running
// the previous release, whose claim is the bare instance) keeps others off a
// free lock for about 2 s at most, and not forever.
func TestStoreRedisDeadGatewayTurnLapses(t *testing.T) {
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	s := openStore(t, r.URL(), "lapse:")
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rc.Close()
	ctx := context.Background()
	for _, claim := range []string{"deadbeefdeadbeef:", "deadbeefdeadbeef: 1"} {
		id := "s" + claim[len(claim)-1:]
		if err := rc.Set(ctx, "lapse:{"+id+"}:turn", claim, 2*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, _, err := s.Lock(lctx, id, time.Second)
		cancel()
		if err != nil {
			t.Fatalf("claim %q: %v", claim, err)
		}
		waited := time.Since(start)
		if waited > 2500*time.Millisecond {
			t.Fatalf("claim %q: waited %v on a free lock", claim, waited)
		}
		t.Logf("claim %q: waited %v", claim, waited)
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
			t.Fatal(err)
		}
	}
}

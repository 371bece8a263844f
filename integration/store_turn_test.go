package integration

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore/redisstoretest"
)

// Three gateways on one hot session: the one a few milliseconds farther
// from Redis gets its turn within a few requests of the others, instead of
// losing every race for the claim to the next turn to the nearer two.
func TestStoreRedisThreeGatewaysTakeTurns(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	r := harness.StartRedis(t)
	c := harness.StartRedisCluster(t)
	for name, url := range map[string]string{"standalone": r.URL(), "cluster": clusterURL(c)} {
		t.Run(name, func(t *testing.T) {
			x, y := openStore(t, url, "three:"), openStore(t, url, "three:")
			z := newStore(t, url, "three:", redisstoretest.Delay(3*time.Millisecond))
			redisstoretest.FarInstanceGetsATurn(t, []store.Store{x, y}, z, "hot", 200*time.Millisecond)
		})
	}
}

// A claim to the next turn left by a gateway that died (or by one running
// the previous release, whose claim is the bare instance) keeps others off a
// free lock for about 2 s at most, and not forever.
func TestStoreRedisDeadGatewayTurnLapses(t *testing.T) {
	t.Parallel()
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
		// The claim lapses after 2 s; the bound leaves a loaded machine
		// 1.5 s for the waiter's next poll and stays clear of the 5 s the
		// lock may wait.
		if waited > 3500*time.Millisecond {
			t.Fatalf("claim %q: waited %v on a free lock", claim, waited)
		}
		t.Logf("claim %q: waited %v", claim, waited)
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
			t.Fatal(err)
		}
	}
}

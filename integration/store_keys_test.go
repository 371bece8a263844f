package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// requireKeysExpire makes the test fail, once it and its gateways are done,
// if r holds a key without an expiry: every key the gateway writes (records,
// locks, turns, tombstones, its probe's) must go away by itself, or Redis
// fills with sessions nobody will ever use again. Register it right after
// starting r: cleanups run last-registered first, so the scan runs after the
// gateways have stopped and before r does.
func requireKeysExpire(t *testing.T, r *harness.Redis) {
	t.Helper()
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: r.Addr})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c.Ping(ctx).Err() != nil {
			return // stopped by the test: nothing left to scan
		}
		if info, _ := c.Info(ctx, "replication").Result(); strings.Contains(info, "role:slave") {
			return // a replica's keys are its master's, scanned there
		}
		iter := c.Scan(ctx, 0, "*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			ttl, err := c.PTTL(ctx, k).Result()
			if err != nil {
				t.Errorf("PTTL %q: %v", k, err)
				return
			}
			if ttl == -1 {
				typ, _ := c.Type(ctx, k).Result()
				t.Errorf("Redis key %q (%s) has no expiry after the test", k, typ)
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("SCAN: %v", err)
		}
	})
}

package integration

import (
	"context"
	"strings"
	"sync"
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

// TestRedisPrefixNamesEveryKeyAndChannel: SESSIONGATE_REDIS_PREFIX is
// "prefix of every Redis key and channel the gateway uses", which is what
// lets several sites share one Redis (and an ACL confine each to its
// prefix). Every key the gateways write, from the start-up probe through
// sessions, locks, a regenerated ID and a logout, and every message they
// publish, is watched on the real server with keyspace notifications and a
// pattern subscription.
func TestRedisPrefixNamesEveryKeyAndChannel(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	red := harness.StartRedis(t)
	requireKeysExpire(t, red)
	if _, err := red.Do("CONFIG", "SET", "notify-keyspace-events", "EA"); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: red.Addr})
	defer c.Close()
	ctx := context.Background()
	ps := c.PSubscribe(ctx, "*")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		keys = map[string]bool{}
		pubs = map[string]bool{}
	)
	go func() {
		for m := range ps.Channel() {
			mu.Lock()
			if strings.HasPrefix(m.Channel, "__keyevent@") {
				keys[m.Payload] = true
			} else {
				pubs[m.Channel] = true
			}
			mu.Unlock()
		}
	}()

	const prefix = "shop1:"
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_REDIS_URL=" + red.URL(), "SESSIONGATE_REDIS_PREFIX=" + prefix}})
	ck := s.newSession(t)
	// A request waiting for another's lock is woken by the unlock
	// message.
	held := make(chan string, 1)
	go func() {
		_, body, _ := s.gws[0].get(t, "/hold.php?ms=700", ck)
		held <- body
	}()
	time.Sleep(200 * time.Millisecond)
	if res, _, _ := s.gws[1].get(t, "/counter.php", ck); res.StatusCode != 200 {
		t.Fatalf("counter.php behind a held lock: %d", res.StatusCode)
	}
	if body := <-held; body != "held" {
		t.Fatalf("hold.php: %q", body)
	}
	_, newID, ck2 := s.gws[0].get(t, "/regenerate.php", ck)
	if newID == "" || ck2 == "" || ck2 == "-" {
		t.Fatalf("regenerate.php: %q, cookie %q", newID, ck2)
	}
	if _, body, _ := s.gws[1].get(t, "/destroy.php", ck2); body != "destroyed" {
		t.Fatalf("destroy.php: %q", body)
	}

	eventually(t, 5*time.Second, "the unlock message and the session's keys seen", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(pubs) > 0 && len(keys) >= 3
	})
	time.Sleep(200 * time.Millisecond) // notifications still on their way
	mu.Lock()
	defer mu.Unlock()
	for k := range keys {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q written without SESSIONGATE_REDIS_PREFIX %q", k, prefix)
		}
	}
	for ch := range pubs {
		if !strings.HasPrefix(ch, prefix) {
			t.Errorf("message published on channel %q, outside SESSIONGATE_REDIS_PREFIX %q", ch, prefix)
		}
	}
}

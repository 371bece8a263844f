package integration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore/redisstoretest"
	"github.com/sessiongate/sessiongate/sessionbridge/store/storetest"
)

var prefixSeq atomic.Uint64

// openStore is newStore without a hook, checked by the start-up probe.
func openStore(t testing.TB, url, prefix string) *redisstore.Store {
	t.Helper()
	s := newStore(t, url, prefix, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	return s
}

// newStore opens a client on url and a store on it with prefix (empty: the
// store's default), both closed by t.Cleanup. hook, if not nil, goes on
// every connection, including those to the nodes a cluster finds later.
func newStore(t testing.TB, url, prefix string, hook redis.Hook) *redisstore.Store {
	t.Helper()
	c, err := redisstore.OpenClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		if cc, ok := c.(*redis.ClusterClient); ok {
			cc.OnNewNode(func(n *redis.Client) { n.AddHook(hook) })
		} else {
			c.AddHook(hook)
		}
	}
	// Coalesce: as the gateway runs on a Redis on loopback (all of these).
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix, Coalesce: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = c.Close()
	})
	return s
}

// pairOn gives each subtest two store instances (two clients, as two
// gateways would have) on one server, under a key prefix of its own.
func pairOn(url string) storetest.NewPair {
	return func(t *testing.T) (store.Store, store.Store) {
		prefix := fmt.Sprintf("it%d:", prefixSeq.Add(1))
		return openStore(t, url, prefix), openStore(t, url, prefix)
	}
}

func clusterURL(c *harness.RedisCluster) string {
	return "redis-cluster://" + strings.Join(c.Addrs, ",")
}

func TestStoreRedisConformance(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	storetest.Run(t, pairOn(r.URL()))
}

func TestStoreRedisSentinelConformance(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	sentinel := harness.StartRedisSentinel(t, r.Addr)
	storetest.Run(t, pairOn("redis-sentinel://"+sentinel+"/0?master=mymaster"))
}

func TestStoreRedisClusterConformance(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	c := harness.StartRedisCluster(t)
	storetest.Run(t, pairOn(clusterURL(c)))
	assertPromptWake(t, openStore(t, clusterURL(c), "wake:"), openStore(t, clusterURL(c), "wake:"))

	// Sessions spread over all masters (no constant hash tag), and each
	// session's record and lock share a node (one slot).
	s := openStore(t, clusterURL(c), "spread:")
	ctx := context.Background()
	var leases []store.Lease
	for i := range 60 {
		id := "s" + strconv.Itoa(i)
		if _, err := s.Save(ctx, id, 0, []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
		l, _, err := s.Lock(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	for _, n := range c.Nodes {
		keys, err := n.Do("KEYS", "spread:*")
		if err != nil {
			t.Fatal(err)
		}
		list := strings.Fields(keys)
		if len(list) == 0 {
			t.Fatalf("node %s holds no session: all on other masters", n.Addr)
		}
		for _, k := range list {
			if strings.HasSuffix(k, ":lock") {
				continue
			}
			if !strings.Contains(keys, k+":lock") {
				t.Fatalf("node %s has %s but not its lock", n.Addr, k)
			}
		}
	}
	for _, l := range leases {
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
			t.Fatal(err)
		}
	}
}

// Redis down: every operation fails fast with ErrUnavailable (no hang); when
// Redis is back, the same store works again by itself, waiters included.
func TestStoreRedisOutage(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	a := openStore(t, r.URL(), "outage:")
	b := openStore(t, r.URL(), "outage:")
	ctx := context.Background()

	// Start the pub/sub subscription before the outage: a waiter.
	l, _, err := a.Lock(ctx, "sub", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, _, err = b.Lock(wctx, "sub", time.Minute)
	cancel()
	if !errors.Is(err, store.ErrLockTimeout) {
		t.Fatalf("waiter: %v", err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}

	r.Stop()
	ops := map[string]func(context.Context) error{
		"load":   func(ctx context.Context) error { _, err := a.Load(ctx, "x"); return err },
		"save":   func(ctx context.Context) error { _, err := a.Save(ctx, "x", 0, []byte("v"), time.Minute); return err },
		"touch":  func(ctx context.Context) error { return a.Touch(ctx, "x", 1, time.Minute) },
		"delete": func(ctx context.Context) error { return a.Delete(ctx, "x") },
		"ping":   func(ctx context.Context) error { return a.Ping(ctx) },
		"lock": func(ctx context.Context) error {
			_, _, err := b.Lock(ctx, "x", time.Second)
			return err
		},
	}
	for name, op := range ops {
		start := time.Now()
		// No deadline of our own: the client's timeouts must bound it.
		err := op(context.Background())
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: err = %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s with Redis down took %v (timeouts are 500ms)", name, d)
		}
	}

	r.Start()
	// Operations recover by themselves (the pool redials).
	saved := func() bool {
		_, err = a.Save(ctx, "back", 0, []byte("v"), time.Minute)
		return err == nil
	}
	if !poll(10*time.Second, saved) {
		t.Fatalf("store did not recover after Redis restart: %v", err)
	}
	// The waiter path too: the subscription came back by itself.
	assertPromptWake(t, a, b)
}

// assertPromptWake: a waiter on instance b is woken by a's unlock notice,
// not by its 1 s re-check. The waiter starts, a unlocks 300 ms later: a
// missed notice would wake it about 700 ms after the unlock; a notice
// arrives in a few milliseconds. 600 ms keeps a margin for a loaded machine
// while still telling the two apart.
func assertPromptWake(t *testing.T, a, b store.Store) {
	t.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("wake-%d", prefixSeq.Add(1))
	l, _, err := a.Lock(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		at  time.Time
		err error
	}
	got := make(chan res, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		l2, _, err := b.Lock(wctx, id, time.Minute)
		at := time.Now()
		if err == nil {
			_, err = l2.Unlock(ctx, store.Mutation{Kind: store.Keep})
		}
		got <- res{at, err}
	}()
	time.Sleep(300 * time.Millisecond)
	released := time.Now()
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("x"), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("waiter: %v", r.err)
	}
	d := r.at.Sub(released)
	t.Logf("waiter woke %v after the unlock", d)
	if d > 600*time.Millisecond {
		t.Fatalf("waiter woke %v after the unlock: the unlock notice did not reach it", d)
	}
}

// Waiting costs no busy polling: while a lock is held for 2 s, eight
// waiters on two store instances send a handful of commands, counted by the
// server itself.
func TestStoreRedisWaitDoesNotPoll(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	waitDoesNotPoll(t, r.URL(), []*harness.Redis{r})
}

// TestStoreRedisClusterWaitDoesNotPoll is TestStoreRedisWaitDoesNotPoll on
// a 3-master cluster (README, Guarantees: "waiting does not poll Redis", for
// standalone and cluster alike), where the store subscribes to the unlock
// channel without waiting for the subscription: commands counted on every
// node.
func TestStoreRedisClusterWaitDoesNotPoll(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	c := harness.StartRedisCluster(t)
	c.WaitOK(t, 20*time.Second)
	waitDoesNotPoll(t, "redis-cluster://"+strings.Join(c.Addrs, ","), c.Nodes)
}

// waitDoesNotPoll holds a lock for 2 s while eight waiters on two stores of
// url wait for it, and fails when the servers (nodes) counted more than a
// handful of commands meanwhile.
func waitDoesNotPoll(t *testing.T, url string, nodes []*harness.Redis) {
	a, b := openStore(t, url, "poll:"), openStore(t, url, "poll:")
	ctx := context.Background()
	l, _, err := a.Lock(ctx, "held", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if _, err := n.Do("CONFIG", "RESETSTAT"); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		for _, s := range []store.Store{a, b} {
			wg.Go(func() {
				if _, _, err := s.Lock(wctx, "held", time.Second); !errors.Is(err, store.ErrLockTimeout) {
					t.Errorf("waiter: %v", err)
				}
			})
		}
	}
	wg.Wait()
	total := 0
	var all strings.Builder
	for _, n := range nodes {
		stats, err := n.Do("INFO", "commandstats")
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString(stats)
		for line := range strings.SplitSeq(stats, "\n") {
			line = strings.TrimSpace(line)
			// The test's own commands and the client's topology upkeep
			// (a cluster's) are no waiting.
			if !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_config") || strings.HasPrefix(line, "cmdstat_info") || strings.HasPrefix(line, "cmdstat_cluster") {
				continue
			}
			_, rest, _ := strings.Cut(line, "calls=")
			n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			total += n
		}
	}
	t.Logf("%d commands during a 2 s wait by 8 waiters:\n%s", total, all.String())
	if total > 30 {
		t.Fatalf("%d commands during a 2 s wait: waiting polls", total)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
}

// A lock whose holder crashed (its gateway is gone: the key just stays until
// its PX) is taken over by another instance when it expires, not earlier.
func TestStoreRedisCrashedGatewayLock(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	s := openStore(t, r.URL(), "crash:")
	// The "crashed gateway": a lock key set by hand, as a dead instance
	// leaves it.
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rc.Close()
	ctx := context.Background()
	// Timed from before the SET: the key expires 700 ms after Redis ran
	// it, so the wait is at least that long from here whatever the test
	// goroutine's delays (timed from after it, a goroutine descheduled for
	// 300 ms looked like a lock taken over early).
	start := time.Now()
	if err := rc.Set(ctx, "crash:{dead}:lock", "someone-else", 700*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	l, _, err := s.Lock(ctx, "dead", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Since(start)
	if waited < 400*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("took over a 700ms lock after %v", waited)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkStoreRedisLockUnlock(b *testing.B) {
	harness.Require(b, "redis-server")
	r := harness.StartRedis(b)
	storetest.BenchLockUnlock(b, openStore(b, r.URL(), "bench:"))
}

// A lock and a Put release on a master with one replica, without and with
// WaitReplicas 1: the price of WAIT per session write (the replica's
// acknowledgement, one more reply in the same round trip).
func BenchmarkStoreRedisLockUnlockReplica(b *testing.B) {
	harness.Require(b, "redis-server")
	master, replica := harness.StartRedis(b), harness.StartRedis(b)
	replicaOf(b, replica, master)
	for _, n := range []int{0, 1} {
		b.Run("WaitReplicas="+strconv.Itoa(n), func(b *testing.B) {
			c, err := redisstore.OpenClient(master.URL())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			s, err := redisstore.New(c, redisstore.Options{Prefix: "benchwait:", WaitReplicas: n, WaitTimeout: 250 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			storetest.BenchLockUnlock(b, s)
		})
	}
}

// The hot session: 32 goroutines on one session through one store instance
// (one gateway). Compare incr/s with PHP's file handler (~3.4k req/s for
// the whole PHP request on this machine).
func BenchmarkStoreRedisHotSession(b *testing.B) {
	harness.Require(b, "redis-server")
	r := harness.StartRedis(b)
	storetest.BenchHotSession(b, openStore(b, r.URL(), "bench:"))
}

// The hot session split over two instances (two gateways on one Redis).
func BenchmarkStoreRedisHotSessionTwoInstances(b *testing.B) {
	harness.Require(b, "redis-server")
	r := harness.StartRedis(b)
	storetest.BenchHotSession(b, twoStores{openStore(b, r.URL(), "bench2:"), openStore(b, r.URL(), "bench2:")})
}

// twoStores alternates Lock between two instances; everything else goes to
// the first.
type twoStores struct{ a, b store.Store }

var flip atomic.Uint64

func (t twoStores) Load(ctx context.Context, id string) (store.Record, error) {
	return t.a.Load(ctx, id)
}
func (t twoStores) Save(ctx context.Context, id string, e uint64, v []byte, ttl time.Duration) (uint64, error) {
	return t.a.Save(ctx, id, e, v, ttl)
}
func (t twoStores) Touch(ctx context.Context, id string, e uint64, ttl time.Duration) error {
	return t.a.Touch(ctx, id, e, ttl)
}
func (t twoStores) Delete(ctx context.Context, id string) error { return t.a.Delete(ctx, id) }
func (t twoStores) Lock(ctx context.Context, id string, lease time.Duration) (store.Lease, store.Record, error) {
	if flip.Add(1)%2 == 0 {
		return t.a.Lock(ctx, id, lease)
	}
	return t.b.Lock(ctx, id, lease)
}
func (t twoStores) Ping(ctx context.Context) error { return t.a.Ping(ctx) }
func (t twoStores) Close() error                   { return nil }

// On a cluster, a script whose reply was lost is not sent again (it may
// have run: a second Save reports a false conflict, a second Lock waits for
// the lock it already holds), while MOVED is still followed.
func TestStoreRedisClusterScriptsNotResent(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	c := harness.StartRedisCluster(t)
	rc, err := redisstore.OpenClient(clusterURL(c))
	if err != nil {
		t.Fatal(err)
	}
	h := &redisstoretest.LostReply{}
	rc.(*redis.ClusterClient).OnNewNode(func(n *redis.Client) { n.AddHook(h) })
	s, err := redisstore.New(rc, redisstore.Options{Prefix: "resend:", Coalesce: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = rc.Close()
	})
	ctx := context.Background()
	const id = "lost"
	v, err := s.Save(ctx, id, 0, []byte("a"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	h.Arm()
	if _, err := s.Save(ctx, id, v, []byte("b"), time.Minute); !errors.Is(err, store.ErrUnavailable) || h.Runs() != 1 {
		t.Fatalf("Save with its reply lost: err = %v after %d script runs, want ErrUnavailable after 1", err, h.Runs())
	}
	rec, err := s.Load(ctx, id)
	if err != nil || string(rec.Value) != "b" {
		t.Fatalf("Load = %q, %v; want the write that was applied", rec.Value, err)
	}

	h.Arm()
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, _, err := s.Lock(lctx, id, 30*time.Second); !errors.Is(err, store.ErrUnavailable) || h.Runs() != 1 {
		t.Fatalf("Lock with its reply lost: err = %v after %d script runs, want ErrUnavailable after 1", err, h.Runs())
	}
	lctx, cancel = context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	l, _, err := s.Lock(lctx, id, 30*time.Second)
	if err != nil {
		t.Fatalf("Lock after the lost reply: %v", err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}

	// Move the session's slot to another master behind the client's back:
	// the scripts follow the MOVED reply.
	m := newSlotMove(t, c, "resend:{"+id+"}")
	if err := m.begin(); err != nil {
		t.Fatal(err)
	}
	if err := m.finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, id, rec.Version, []byte("c"), time.Minute); err != nil {
		t.Fatalf("Save after the slot moved: %v", err)
	}
	l, rec, err = s.Lock(ctx, id, 30*time.Second)
	if err != nil {
		t.Fatalf("Lock after the slot moved: %v", err)
	}
	if string(rec.Value) != "c" {
		t.Fatalf("record = %q", rec.Value)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("d"), TTL: time.Minute}); err != nil {
		t.Fatalf("Unlock after the slot moved: %v", err)
	}
}

// A Redis stall longer than the client's timeout while a holder unlocks: the
// unlock fails (ErrUnavailable, the caller answers 503), and the lock must
// still be freed once Redis answers again, not stay until its lease ends
// (every request of that session would meanwhile wait LOCK_TIMEOUT and get
// 503 busy). The lease here is a minute; the waiter gives up long before.
func TestStoreRedisUnlockDuringStallFreesLockAfterwards(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	a := openStore(t, r.URL(), "stall:")
	b := openStore(t, r.URL(), "stall:")
	ctx := context.Background()
	for _, kind := range []store.MutationKind{store.Put, store.Keep} {
		id := fmt.Sprintf("stall-%d", kind)
		l, _, err := a.Lock(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// Longer than the client's 500 ms timeouts, far shorter than the lease.
		if _, err := r.Do("CLIENT", "PAUSE", "1500", "ALL"); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Unlock(ctx, store.Mutation{Kind: kind, Value: []byte("v"), TTL: time.Minute}); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("unlock during the stall: %v, want ErrUnavailable", err)
		}
		// Redis answers again (a PING waits out the pause).
		if _, err := r.Do("PING"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		l2, _, err := b.Lock(wctx, id, time.Minute)
		cancel()
		if err != nil {
			pttl, _ := r.Do("PTTL", "stall:{"+id+"}:lock")
			t.Fatalf("mutation %d: lock still held after the stall (PTTL %s ms): %v", kind, pttl, err)
		}
		if _, err := l2.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
			t.Fatal(err)
		}
	}
}

// While the session's slot moves between masters (resharding), its record
// may already be on the new node and its lock key not: the lock script is
// then refused with TRYAGAIN without running. Lock must wait that out
// within the caller's deadline, as it waits for a busy lock, not answer
// 503 at once.
func TestStoreRedisClusterLockWaitsOutSlotMigration(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	c := harness.StartRedisCluster(t)
	s := openStore(t, clusterURL(c), "move:")
	ctx := context.Background()
	const id = "moving"
	if _, err := s.Save(ctx, id, 0, []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	m := newSlotMove(t, c, "move:{"+id+"}")
	// Half-way: the record moved, the (absent) lock key's slot still
	// migrating.
	if err := m.begin(); err != nil {
		t.Fatal(err)
	}
	finished := m.finishAfter(t, 500*time.Millisecond)
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l, rec, err := s.Lock(lctx, id, 30*time.Second)
	<-finished
	if err != nil {
		t.Fatalf("Lock during the slot's migration: %v", err)
	}
	if string(rec.Value) != "a" {
		t.Fatalf("record = %q", rec.Value)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("b"), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
}

// TestStoreRedisClusterSaveWaitsOutSlotMigration: a session locked before
// its Cluster slot starts to move is saved while the move is half-way (the
// record already on the new master, the lock still on the old one): the
// save script is refused unrun with TRYAGAIN, and must be tried again
// until the move is through rather than fail the request with 503. Within
// the default SESSIONGATE_REDIS_TIMEOUT (500 ms).
func TestStoreRedisClusterSaveWaitsOutSlotMigration(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	c := harness.StartRedisCluster(t)
	refused := &tryAgainCount{}
	s := newStore(t, clusterURL(c), "save:", refused)
	ctx := context.Background()
	const id = "saving"
	if _, err := s.Save(ctx, id, 0, []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	l, _, err := s.Lock(ctx, id, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	key := "save:{" + id + "}"
	m := newSlotMove(t, c, key)
	if err := m.begin(); err != nil {
		t.Fatal(err)
	}
	// The move finishes once the save has been refused five times, not
	// after a fixed 250 ms, which left the rest of the move and the next
	// try as little as 250 ms of the deadline on a loaded machine. Five
	// is more than one go-redis call's own tries (MaxRedirects 3): the
	// store itself has tried again by then, which is what is under test.
	unlocked := make(chan struct{})
	finished := make(chan struct{})
	begun := time.Now()
	go func() {
		defer close(finished)
	wait:
		for refused.n.Load() < 5 {
			select {
			case <-unlocked:
				break wait
			case <-time.After(time.Millisecond):
			}
		}
		t.Logf("finishing the move %v after it began, %d refusals", time.Since(begun), refused.n.Load())
		if err := m.finish(key + ":lock"); err != nil {
			t.Error(err)
		}
	}()
	uctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = l.Unlock(uctx, store.Mutation{Kind: store.Put, Value: []byte("b"), TTL: time.Minute})
	close(unlocked)
	<-finished
	if err != nil {
		t.Fatalf("save during the slot's migration (refused %d times with TRYAGAIN): %v", refused.n.Load(), err)
	}
	if n := refused.n.Load(); n < 5 {
		t.Fatalf("the save ended after %d TRYAGAIN refusals: the move was not under way", n)
	}
	rec, err := s.Load(ctx, id)
	if err != nil || string(rec.Value) != "b" {
		t.Fatalf("after the move: %q %v", rec.Value, err)
	}
}

// tryAgainCount is a go-redis hook counting the commands a node refused
// with TRYAGAIN (a slot half-way through a move).
type tryAgainCount struct{ n atomic.Int64 }

func (h *tryAgainCount) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *tryAgainCount) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && strings.HasPrefix(err.Error(), "TRYAGAIN") {
			h.n.Add(1)
		}
		return err
	}
}

func (h *tryAgainCount) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// slotMove moves the Cluster slot that holds key from its master to
// another one, in the steps of redis-cli --cluster reshard, behind the
// clients' back.
type slotMove struct {
	slot, key    string
	src, dst     *harness.Redis
	srcID, dstID string
}

func newSlotMove(t *testing.T, c *harness.RedisCluster, key string) *slotMove {
	t.Helper()
	m := &slotMove{key: key}
	var err error
	if m.slot, err = c.Nodes[0].Do("CLUSTER", "KEYSLOT", key); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if cnt, _ := n.Do("CLUSTER", "COUNTKEYSINSLOT", m.slot); cnt != "0" {
			m.src = n
		} else if m.dst == nil {
			m.dst = n
		}
	}
	if m.src == nil || m.dst == nil {
		t.Fatal("session key not found on any node")
	}
	if m.dstID, err = m.dst.Do("CLUSTER", "MYID"); err != nil {
		t.Fatal(err)
	}
	if m.srcID, err = m.src.Do("CLUSTER", "MYID"); err != nil {
		t.Fatal(err)
	}
	return m
}

// begin marks the slot importing and migrating and moves key (only) to the
// new master: the slot is half-way.
func (m *slotMove) begin() error {
	return runSteps(
		redisStep{m.dst, []string{"CLUSTER", "SETSLOT", m.slot, "IMPORTING", m.srcID}},
		redisStep{m.src, []string{"CLUSTER", "SETSLOT", m.slot, "MIGRATING", m.dstID}},
		m.migrate(m.key))
}

// migrate is the step that moves keys from the old master to the new one.
func (m *slotMove) migrate(keys ...string) redisStep {
	host, port, _ := strings.Cut(m.dst.Addr, ":")
	return redisStep{m.src, append([]string{"MIGRATE", host, port, "", "0", "5000", "KEYS"}, keys...)}
}

// finish moves the slot's other keys (rest) to the new master and gives it
// the slot on both sides, as a reshard ends. Keys of the slot that rest
// does not name move too, as redis-cli moves every key of the slot: a
// session's fence (redisstore's lockScript), which a store leaves after a
// lock request whose reply was lost, has a name no test knows.
func (m *slotMove) finish(rest ...string) error {
	var steps []redisStep
	if len(rest) > 0 {
		steps = append(steps, m.migrate(rest...))
	}
	if err := runSteps(steps...); err != nil {
		return err
	}
	left, err := m.src.Do("CLUSTER", "GETKEYSINSLOT", m.slot, "1000")
	if err != nil {
		return err
	}
	steps = nil
	if left != "" {
		steps = append(steps, m.migrate(strings.Split(left, "\n")...))
	}
	return runSteps(append(steps,
		redisStep{m.dst, []string{"CLUSTER", "SETSLOT", m.slot, "NODE", m.dstID}},
		redisStep{m.src, []string{"CLUSTER", "SETSLOT", m.slot, "NODE", m.dstID}})...)
}

// finishAfter finishes the move after d, behind the test's back, and closes
// the returned channel once it is done.
func (m *slotMove) finishAfter(t *testing.T, d time.Duration, rest ...string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(d)
		if err := m.finish(rest...); err != nil {
			t.Error(err)
		}
	}()
	return done
}

// redisStep is one command for one node.
type redisStep struct {
	n    *harness.Redis
	args []string
}

func runSteps(steps ...redisStep) error {
	for _, st := range steps {
		if _, err := st.n.Do(st.args...); err != nil {
			return fmt.Errorf("%v: %w", st.args, err)
		}
	}
	return nil
}

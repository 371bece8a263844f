package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// counterLoad is increments of one session's counter sent by several
// clients at once, half through each gateway, until stopped.
type counterLoad struct {
	mu    sync.Mutex
	codes map[int]int
	byGW  map[*sessionGW]map[int]int
	// seen maps a counter value to when the requests whose 200 showed it
	// were sent: a dead master may have applied a write whose answer
	// reached the client after the kill (seen: 0.2 ms after it).
	seen   map[int][]time.Time
	ok     int
	lastOK time.Time
	// lastOKBy is lastOK for each gateway.
	lastOKBy map[*sessionGW]time.Time
	stop     chan struct{}
	done     sync.WaitGroup
	started  time.Time
}

// startCounterLoad runs clients that increment c's counter until stop, each
// at most maxPerClient times; a refused increment is retried after a pause,
// so the load stays a few hundred requests. It returns once 20 increments
// passed, so that what comes next (before: a failover, a kill) happens
// under load.
func startCounterLoad(c *failoverCounter, clients, maxPerClient int, before string) *counterLoad {
	l := &counterLoad{codes: map[int]int{}, byGW: map[*sessionGW]map[int]int{}, seen: map[int][]time.Time{}, stop: make(chan struct{}), started: time.Now(),
		lastOKBy: map[*sessionGW]time.Time{}}
	for i := range clients {
		gw := c.s.gws[i%2]
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for range maxPerClient {
				select {
				case <-l.stop:
					return
				default:
				}
				sent := time.Now()
				code, body := c.increment(gw)
				l.mu.Lock()
				l.codes[code]++
				if l.byGW[gw] == nil {
					l.byGW[gw] = map[int]int{}
				}
				l.byGW[gw][code]++
				if code == 200 {
					n, err := strconv.Atoi(body)
					if err != nil {
						c.t.Errorf("counter page answered 200 %q", body)
					}
					l.seen[n] = append(l.seen[n], sent)
					l.ok++
					l.lastOK = time.Now()
					l.lastOKBy[gw] = l.lastOK
				}
				l.mu.Unlock()
				if code != 200 {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	if !poll(5*time.Second, func() bool { return l.okCount() >= 20 }) {
		l.finish(c, before, time.Time{})
		c.t.Fatalf("the load made no progress %s", before)
	}
	return l
}

// passedAfter reports whether increments pass after since through every
// gateway of the load, waiting up to d for them. One gateway serving says
// little of the other: go-redis stops dialing a Redis after as many failed
// dials as its pool has connections, and until a probe, once a second,
// dials again, its requests fail at once with the last dial error (to the
// dead master, after a failover), so a gateway may serve a second after
// the other.
func (l *counterLoad) passedAfter(since time.Time, d time.Duration) bool {
	return poll(d, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for gw := range l.byGW {
			if !l.lastOKBy[gw].After(since) {
				return false
			}
		}
		return len(l.byGW) > 0
	})
}

// waitSentinelKnowsReplica waits until the Sentinel sc knows mymaster's
// replica: it refuses SENTINEL FAILOVER, and promotes nobody when the
// master dies, until then (it learns of replicas from the master's INFO,
// every 10 s).
func waitSentinelKnowsReplica(t *testing.T, sc *redis.SentinelClient) {
	t.Helper()
	if !poll(30*time.Second, func() bool {
		r, err := sc.Replicas(context.Background(), "mymaster").Result()
		return err == nil && len(r) > 0
	}) {
		t.Fatal("the Sentinel does not know the replica")
	}
}

func (l *counterLoad) okCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok
}

// finish stops the clients and checks every answer: a 200 shows a counter
// value no other request saw, anything else is a 503; then one more
// increment shows whether every acknowledged increment is in the session.
// An increment sent before lossBefore (the failover) may be lost, though
// acknowledged: the next one then shows its value again; one sent later
// may not, nor any with a zero lossBefore.
func (l *counterLoad) finish(c *failoverCounter, when string, lossBefore time.Time) {
	t := c.t
	t.Helper()
	close(l.stop)
	l.done.Wait()
	for code, k := range l.codes {
		if code != 200 && code != http.StatusServiceUnavailable {
			t.Errorf("%s: %d increments answered %d, want 200 or 503", when, k, code)
		}
	}
	sent := time.Now()
	code, body := c.increment(c.s.gws[0])
	final, _ := strconv.Atoi(body)
	if code != 200 {
		t.Fatalf("%s: the increment after the load: %d %q", when, code, body)
	}
	l.seen[final] = append(l.seen[final], sent)
	var lostAt []string
	for n, at := range l.seen {
		if len(at) < 2 {
			continue
		}
		switch {
		case lossBefore.IsZero():
			t.Errorf("%s: counter value %d shown by %d requests: a lost update", when, n, len(at))
		case len(at) > 2 || at[0].After(lossBefore):
			t.Errorf("%s: counter value %d shown by %d requests, the first sent %v after the failover: a lost update", when, n, len(at), at[0].Sub(lossBefore))
		}
		if lossBefore.IsZero() {
			lostAt = append(lostAt, strconv.Itoa(n))
		} else {
			lostAt = append(lostAt, fmt.Sprintf("%d (%v before)", n, lossBefore.Sub(at[0]).Round(time.Millisecond)))
		}
	}
	sort.Strings(lostAt)
	acked := c.n + l.ok // acknowledged increments before the last one
	lost := acked + 1 - final
	t.Logf("%s: %d requests over %v: %v; %d increments acknowledged, %d lost; values shown twice: %v",
		when, sumCodes(l.codes), time.Since(l.started).Round(100*time.Millisecond), l.codes, acked, lost, lostAt)
	// lost < 0: a 503 whose write Redis applied (its reply was lost), as
	// a timed-out request may have been.
	if lost > len(lostAt) {
		t.Errorf("%s: %d acknowledged increments lost, %d values shown twice", when, lost, len(lostAt))
	}
	c.n = final
}

func sumCodes(m map[int]int) int {
	n := 0
	for _, k := range m {
		n += k
	}
	return n
}

// TestSessionSentinelFailoverUnderLoad: increments of one session sent by
// four clients at once through both gateways while the Sentinel promotes
// the replica (SENTINEL FAILOVER): requests run, queue for the lock on both
// gateways and hand it over while the master changes. Every refusal is a
// 503 with a log line; once the new master takes writes, the session
// serves again at once. Before, the release of the request running at the
// promotion was a lost write: the promoted replica held the session's lock
// with a token whose lease had ended, and every request of the session
// waited for the rest of the lease (60 s) and got 503 after the lock
// timeout. Both gateways are ready afterwards and count the Redis errors
// in their metrics; the stack's requireKeysExpire checks both servers for
// keys without an expiry.
//
// The promoted replica stops replicating at REPLICAOF NO ONE; the Sentinel
// sees the promotion at its next INFO of it (once a second during a
// failover) and only then announces +switch-master, which go-redis follows.
// Until then the old master, which nothing stops, acknowledges the
// gateways' writes, and they are lost (README, Store).
//
// WaitReplicas (SESSIONGATE_REDIS_WAIT_REPLICAS=1): each session write
// waits for the replica (WAIT), so a write the old master takes once its
// replica has left is a 503, not an acknowledged increment: none may be
// lost. The new master has no replica until the old master becomes one
// (demoteOldMaster): writes are 503s until then.
//
// MinReplicasToWrite (the old master refuses writes as soon as its replica
// leaves) loses the writes acknowledged in the instant before the
// promotion, on their way to the replica: the README owns to it, the test
// counts them.
//
// Default settings lose every write of the window (skipped, see there).
func TestSessionSentinelFailoverUnderLoad(t *testing.T) {
	t.Parallel()
	t.Run("WaitReplicas", func(t *testing.T) {
		t.Parallel()
		// WAIT gets half of SESSIONGATE_REDIS_TIMEOUT: at the default
		// 250 ms, a replica in sync took longer to acknowledge the very
		// first write on a loaded 2-CPU machine (503 before any failover).
		sentinelFailoverUnderLoad(t, failoverLoad{env: []string{"SESSIONGATE_REDIS_WAIT_REPLICAS=1", "SESSIONGATE_REDIS_TIMEOUT=2s"}, lossless: true})
	})
	t.Run("MinReplicasToWrite", func(t *testing.T) {
		t.Parallel()
		sentinelFailoverUnderLoad(t, failoverLoad{masterSettings: []string{"min-replicas-to-write", "1", "min-replicas-max-lag", "10"}})
	})
	t.Run("Default", func(t *testing.T) {
		t.Parallel()
		// Measured (server logs, MONITOR, go-redis's log): the window
		// from the replica's REPLICAOF NO ONE to the gateways' switch was
		// 138-259 ms in 3 runs (the Sentinel's INFO poll 59-187 ms, then
		// +switch-master 46-68 ms later, go-redis 2-33 ms after that), and
		// the old master acknowledged the increments of all of it: 187-466
		// lost in 8 runs (209-373 in 4 earlier ones). It is Redis's
		// asynchronous replication, not a gateway bug:
		// SESSIONGATE_REDIS_WAIT_REPLICAS is the remedy (WaitReplicas).
		t.Skip("without SESSIONGATE_REDIS_WAIT_REPLICAS a Sentinel failover under load loses the writes of up to a second (README, Store)")
		// The loss allowed: writes the old master took until the
		// gateways switched.
		sentinelFailoverUnderLoad(t, failoverLoad{slack: time.Second})
	})
}

// failoverLoad is one setup of sentinelFailoverUnderLoad: env for the
// gateways, settings of both Redis servers, and the loss allowed: none
// (lossless), or writes acknowledged up to slack after the Sentinel names
// the new master.
type failoverLoad struct {
	env            []string
	masterSettings []string
	slack          time.Duration
	lossless       bool
}

func sentinelFailoverUnderLoad(t *testing.T, o failoverLoad) {
	c := startSentinelStackEnv(t, o.env, o.masterSettings...)
	// The load starts once the failover can begin at once.
	sc := redis.NewSentinelClient(&redis.Options{Addr: c.s.sentinel})
	defer sc.Close()
	waitSentinelKnowsReplica(t, sc)
	l := startCounterLoad(c, 4, 300, "before the failover")
	c.failover()
	promoted := time.Now()
	// With min-replicas-to-write or WAIT, writes are refused until the
	// old master is a replica of the new one; the load runs until some
	// pass.
	c.demoteOldMaster()
	serving := l.passedAfter(promoted, 30*time.Second)
	if serving {
		time.Sleep(time.Second)
	}
	lossBefore := promoted.Add(o.slack)
	if o.lossless {
		lossBefore = time.Time{}
	}
	l.finish(c, "across the failover", lossBefore)
	if !serving {
		t.Errorf("no increment passed within 30 s of the failover")
	}
	l.checkGateways(t, c.s.gws, true, true)
	c.lockAcrossGateways("after the failover under load")
}

// TestSessionClusterFailoverUnderLoad: TestSessionClusterFailover with
// four clients incrementing the session at once through both gateways
// while the master of its slot hands over to a replica (CLUSTER FAILOVER).
// A manual failover is coordinated, so no acknowledged increment may be
// lost, and no request may wait out the lock timeout.
func TestSessionClusterFailoverUnderLoad(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{cluster: true})
	ctx := context.Background()
	c := &failoverCounter{t: t, s: s, ck: s.newSession(t)}
	c.next(s.gws[0], "before the failover")
	key := "sessiongate:{" + s.gws[0].dump(t, c.ck).ID + "}"
	master, err := s.redis.(*redis.ClusterClient).MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	replica := s.cluster.AddReplica(t, master.Options().Addr)

	l := startCounterLoad(c, 4, 300, "before the failover")
	if _, err := replica.Do("CLUSTER", "FAILOVER"); err != nil {
		l.finish(c, "CLUSTER FAILOVER refused", time.Time{})
		t.Fatal(err)
	}
	promoted := poll(30*time.Second, func() bool {
		role, err := replica.Do("ROLE")
		return err == nil && strings.HasPrefix(role, "master")
	})
	at := l.okCount()
	// Some increments on the new master before the load stops.
	moved := poll(10*time.Second, func() bool { return l.okCount() >= at+20 })
	l.finish(c, "across the failover", time.Time{})
	if !promoted {
		t.Fatal("the replica is not master 30 s after CLUSTER FAILOVER")
	}
	if !moved {
		t.Error("no increments passed after the failover")
	}
	l.checkGateways(t, s.gws, false, false)
	c.lockAcrossGateways("after the failover under load")
}

// TestStoreRedisClusterSlotMovesUnderHeldLock: the session's Cluster slot
// moves to another master (a reshard: MIGRATE, then the slot handed over)
// while one gateway holds the session's lock and requests wait for it on
// both gateways (the other gateway's contender has claimed the next turn).
// The holder renews and writes on the new master; then each waiter gets the
// lock in turn, seeing the writes before it, within the unlock notice's
// wake-up, not at its lock timeout; none is lost.
func TestStoreRedisClusterSlotMovesUnderHeldLock(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	c := harness.StartRedisCluster(t)
	a, b := openStore(t, clusterURL(c), "held:"), openStore(t, clusterURL(c), "held:")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const id = "held"
	if _, err := a.Save(ctx, id, 0, []byte("0"), time.Minute); err != nil {
		t.Fatal(err)
	}
	l, _, err := a.Lock(ctx, id, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		who  string
		val  string
		wait time.Duration
		err  error
	}
	results := make(chan got, 2)
	waiter := func(who string, s store.Store) {
		begin := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		l, rec, err := s.Lock(wctx, id, 30*time.Second)
		if err != nil {
			results <- got{who: who, err: err, wait: time.Since(begin)}
			return
		}
		n, _ := strconv.Atoi(string(rec.Value))
		_, err = l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte(strconv.Itoa(n + 1)), TTL: time.Minute})
		results <- got{who: who, val: string(rec.Value), wait: time.Since(begin), err: err}
	}
	go waiter("the other gateway", b)
	time.Sleep(200 * time.Millisecond) // b contends and claims the next turn
	go waiter("the holder's gateway", a)
	time.Sleep(200 * time.Millisecond)

	key := "held:{" + id + "}"
	m := newSlotMove(t, c, key)
	if err := m.begin(); err != nil {
		t.Fatal(err)
	}
	if err := m.finish(key+":lock", key+":turn"); err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(ctx, 30*time.Second); err != nil {
		t.Fatalf("renewing the lock on the new master: %v", err)
	}
	released := time.Now()
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("1"), TTL: time.Minute}); err != nil {
		t.Fatalf("writing on the new master: %v", err)
	}
	seen := map[string]bool{}
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Errorf("%s: %v after %v", r.who, r.err, r.wait.Round(time.Millisecond))
			continue
		}
		seen[r.val] = true
		t.Logf("%s got the lock %v after the release, saw %s", r.who, time.Since(released).Round(time.Millisecond), r.val)
	}
	if since := time.Since(released); since > 5*time.Second {
		t.Errorf("the waiters got the lock %v after the release", since)
	}
	rec, err := a.Load(ctx, id)
	if err != nil || string(rec.Value) != "3" || !seen["1"] || !seen["2"] {
		t.Errorf("after the move: record %q %v, waiters saw %v; want 3, and 1 and 2", rec.Value, err, seen)
	}
}

// TestSessionSentinelMasterKilledUnderLoad: the master dies (SIGKILL, no
// shutdown: nothing waits for the replica) while four clients increment
// one session through two gateways, and the Sentinel promotes the replica
// (down-after-milliseconds 500). While no master answers, requests get 503
// with a log line; afterwards increments pass again on both gateways within
// a few seconds, with no request waiting out the lock timeout (the unlock
// subscription on the dead master is re-made on the new one). Increments
// the dead master acknowledged and had not replicated may be lost (README,
// Store); none acknowledged after the kill.
func TestSessionSentinelMasterKilledUnderLoad(t *testing.T) {
	t.Parallel()
	c := startSentinelStack(t)
	ctx := context.Background()
	sc := redis.NewSentinelClient(&redis.Options{Addr: c.s.sentinel})
	defer sc.Close()
	if err := sc.Set(ctx, "mymaster", "down-after-milliseconds", "500").Err(); err != nil {
		t.Fatal(err)
	}
	waitSentinelKnowsReplica(t, sc)
	info, err := c.s.red.Do("INFO", "server")
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid <= 0 {
		t.Fatalf("no process_id in INFO server: %q", info)
	}

	l := startCounterLoad(c, 4, 300, "before the kill")
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	promoted := poll(30*time.Second, func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
		return err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) == c.s.replica.Addr
	})
	after := time.Now()
	serving := promoted && l.passedAfter(after, 10*time.Second)
	l.finish(c, "across the kill", killed)
	if !promoted {
		t.Fatal("the Sentinel did not promote the replica within 30 s of the kill")
	}
	t.Logf("promoted %v after the kill", after.Sub(killed).Round(10*time.Millisecond))
	if !serving {
		t.Errorf("no increment passed within 10 s of the promotion")
	}
	l.checkGateways(t, c.s.gws, true, false)
	c.lockAcrossGateways("after the kill")
}

// TestStoreRedisSentinelUnlockNoticeAfterKill: after the master died and
// the Sentinel promoted the replica, a release on one gateway still wakes
// a waiter on the other through the unlock channel (its subscription, made
// on the dead master, is made again on the new one), not at its next
// re-check up to a second later.
func TestStoreRedisSentinelUnlockNoticeAfterKill(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	master, replica := harness.StartRedis(t), harness.StartRedis(t)
	replicaOf(t, replica, master) // before the Sentinel: see startSessionStack
	sentinel := harness.StartRedisSentinel(t, master.Addr)
	ctx := context.Background()
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	defer sc.Close()
	if err := sc.Set(ctx, "mymaster", "down-after-milliseconds", "500").Err(); err != nil {
		t.Fatal(err)
	}
	waitSentinelKnowsReplica(t, sc)
	url := "redis-sentinel://" + sentinel + "/0?master=mymaster"
	a, b := openStore(t, url, "notice:"), openStore(t, url, "notice:")
	const id = "wake"
	// handOver has a hold the lock while b waits, and returns how long b
	// took to get it after a let go.
	handOver := func() time.Duration {
		t.Helper()
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		l, _, err := a.Lock(lctx, id, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan time.Time, 1)
		go func() {
			l2, _, err := b.Lock(lctx, id, 30*time.Second)
			if err != nil {
				t.Error(err)
				got <- time.Time{}
				return
			}
			got <- time.Now()
			_, _ = l2.Unlock(ctx, store.Mutation{Kind: store.Keep})
		}()
		time.Sleep(150 * time.Millisecond) // b tries, finds it held, sleeps
		released := time.Now()
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
			t.Fatal(err)
		}
		return (<-got).Sub(released)
	}
	handOver() // both subscribed, on the first master

	info, err := master.Do("INFO", "server")
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !poll(30*time.Second, func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
		return err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) == replica.Addr
	}) {
		t.Fatal("the Sentinel did not promote the replica")
	}
	// The stores find the new master at their next command.
	if !poll(10*time.Second, func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return a.Ping(pctx) == nil && b.Ping(pctx) == nil
	}) {
		t.Fatal("the stores do not reach the new master")
	}
	time.Sleep(time.Second) // the subscriptions' reconnection
	var waits []time.Duration
	for range 5 {
		waits = append(waits, handOver())
	}
	slices.Sort(waits)
	t.Logf("after the failover a waiter on the other gateway got the lock after %v", waits)
	if waits[2] > 500*time.Millisecond { // a re-check comes 850 ms after the release here
		t.Errorf("the waiter got the lock %v (median) after the release: no unlock notice woke it", waits[2])
	}
}

// checkGateways checks each gateway after a topology change under load: no
// request waited out the lock timeout, every 503 says why in its access
// line, and, when asked, /readyz is back to 200 and the store errors behind
// the 503s are counted in /metrics.
func (l *counterLoad) checkGateways(t *testing.T, gws []*sessionGW, readyz, storeErrors bool) {
	t.Helper()
	for i, gw := range gws {
		logs := gw.Logs.String()
		if n := strings.Count(logs, "lock wait timed out"); n > 0 {
			t.Errorf("gateway %d: %d requests waited for the session lock until the lock timeout", i, n)
		}
		refused := l.byGW[gw][http.StatusServiceUnavailable]
		if n := refusalsExplained(logs); n < refused {
			t.Errorf("gateway %d: %d answers 503, %d access lines of 503 that say why", i, refused, n)
		}
		if readyz {
			if !poll(10*time.Second, func() bool {
				resp, err := http.Get(gw.Admin + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			}) {
				t.Errorf("gateway %d: /readyz not 200 after the failover", i)
			}
		}
		if storeErrors {
			m := metricstest.Scrape(t, gw.Admin+"/metrics")
			if errs := m["sessiongate_session_store_errors_total"]; refused > 0 && errs == 0 {
				t.Errorf("gateway %d: %d answers 503, sessiongate_session_store_errors_total %v", i, refused, errs)
			}
		}
	}
}

// refusalsExplained counts the access-log lines of 503 answers that say
// why: the request line carries the store's or the lock's error.
func refusalsExplained(logs string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		var e struct {
			Msg    string `json:"msg"`
			Status int    `json:"status"`
			Error  string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "request" && e.Status == http.StatusServiceUnavailable && e.Error != "" {
			n++
		}
	}
	return n
}

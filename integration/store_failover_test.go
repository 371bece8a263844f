package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// failoverCounter drives the counter page of one session through the two
// gateways of a stack and checks that its values stay in sequence.
type failoverCounter struct {
	t  *testing.T
	s  *sessionStack
	ck string
	n  int // the last value a 200 showed
}

func (c *failoverCounter) increment(gw *sessionGW) (int, string) {
	c.t.Helper()
	resp, body, _ := gw.get(c.t, "/counter.php", c.ck)
	return resp.StatusCode, body
}

// next increments through gw and requires the next value of the sequence.
func (c *failoverCounter) next(gw *sessionGW, when string) {
	c.t.Helper()
	code, body := c.increment(gw)
	c.expect(code, body, when)
}

func (c *failoverCounter) expect(code int, body, when string) {
	c.t.Helper()
	if code != 200 || body != strconv.Itoa(c.n+1) {
		c.t.Fatalf("%s: counter %d %q, want 200 %d", when, code, body, c.n+1)
	}
	c.n++
}

// startSentinelStack starts the stack, waits for the replica to be in
// sync, applies the masters' settings, and writes a session that reaches
// the replica (waitReplicated) before the failover.
func startSentinelStack(t *testing.T, masterSettings ...string) *failoverCounter {
	return startSentinelStackEnv(t, nil, masterSettings...)
}

// startSentinelStackEnv is startSentinelStack with env for the gateways.
func startSentinelStackEnv(t *testing.T, env []string, masterSettings ...string) *failoverCounter {
	s := startSessionStack(t, stackOpts{sentinel: true, env: env})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := s.red.Do("INFO", "replication")
		if err == nil && strings.Contains(info, "state=online") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica is not in sync with the master: %q %v", info, err)
		}
	}
	for _, addr := range []string{s.red.Addr, s.replica.Addr} {
		for i := 0; i+1 < len(masterSettings); i += 2 {
			c := redis.NewClient(&redis.Options{Addr: addr})
			err := c.ConfigSet(context.Background(), masterSettings[i], masterSettings[i+1]).Err()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	c := &failoverCounter{t: t, s: s, ck: s.newSession(t)}
	for i := range 6 {
		c.next(s.gws[i%2], "before the failover")
	}
	waitReplicated(t, s.red)
	return c
}

// replicaOf makes replica a replica of master and waits until master
// reports it in sync.
func replicaOf(t testing.TB, replica, master *harness.Redis) {
	t.Helper()
	host, port, _ := strings.Cut(master.Addr, ":")
	if _, err := replica.Do("REPLICAOF", host, port); err != nil {
		t.Fatal(err)
	}
	waitInSync(t, master)
}

// waitInSync waits until master reports its replica in sync.
func waitInSync(t testing.TB, master *harness.Redis) {
	t.Helper()
	if !poll(20*time.Second, func() bool {
		info, err := master.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "state=online")
	}) {
		t.Fatal("the replica is not in sync with the master")
	}
}

// waitReplicated waits until master's replica has acknowledged everything
// the master took so far. Not WAIT: it covers the writes of the connection
// that sends it, and this test's connection wrote nothing (the gateways
// did), so it answered at once, and a failover could promote a replica
// that had not yet got the session (TestSessionSentinelFailover/Default
// then read counter 1 after it).
func waitReplicated(t *testing.T, master *harness.Redis) {
	t.Helper()
	field := func(info, name string) (int64, bool) {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				return n, err == nil
			}
		}
		return 0, false
	}
	info, err := master.Do("INFO", "replication")
	want, ok := field(info, "master_repl_offset")
	if err != nil || !ok {
		t.Fatalf("the master's replication offset: %q %v", info, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := master.Do("INFO", "replication")
		// slave0:ip=...,port=...,state=online,offset=N,lag=0
		acked := int64(-1)
		for _, line := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "slave0:"); ok {
				for _, kv := range strings.Split(rest, ",") {
					if v, ok := strings.CutPrefix(kv, "offset="); ok {
						acked, _ = strconv.ParseInt(v, 10, 64)
					}
				}
			}
		}
		if err == nil && acked >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica acknowledged offset %d, want %d: %q %v", acked, want, info, err)
		}
	}
}

// failover has the Sentinel promote the replica and returns once the
// Sentinel names it as the master.
func (c *failoverCounter) failover() {
	t, s := c.t, c.s
	ctx := context.Background()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinel})
	defer sc.Close()
	// The Sentinel learns of the replica from the master's INFO: until
	// then it has none to promote (NOGOODSLAVE).
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := sc.Failover(ctx, "mymaster").Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SENTINEL FAILOVER: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
		if err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) == s.replica.Addr {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Sentinel names %v as the master, want the replica %s (%v)", addr, s.replica.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// demoteOldMaster does what the Sentinel does to the old master once it
// has gone on reporting itself a master for 8 s after the failover (10 s
// in all, measured; a reconfiguration it never hurries, which every test
// waited for): makes it a replica of the promoted one, and closes its
// clients' connections (measured: a client blocked on it was cut at the
// Sentinel's +convert-to-slave), so that a gateway that missed
// +switch-master asks the Sentinel for the master when it reconnects. It
// returns once the old master is a replica in sync.
func (c *failoverCounter) demoteOldMaster() {
	c.t.Helper()
	if err := c.sendDemotion(); err != nil {
		c.t.Fatal(err)
	}
	waitInSync(c.t, c.s.replica)
	if role, err := c.s.red.Do("ROLE"); err != nil || !strings.HasPrefix(role, "slave") {
		c.t.Fatalf("the old master's role is %q (%v) after REPLICAOF", role, err)
	}
}

// sendDemotion is demoteOldMaster's commands, the Sentinel's in the same
// order (REPLICAOF, then the clients closed), without the wait, for a
// caller off the test's goroutine.
func (c *failoverCounter) sendDemotion() error {
	host, port, _ := strings.Cut(c.s.replica.Addr, ":")
	if _, err := c.s.red.Do("REPLICAOF", host, port); err != nil {
		return fmt.Errorf("REPLICAOF on the old master: %w", err)
	}
	for _, kind := range []string{"normal", "pubsub"} {
		if _, err := c.s.red.Do("CLIENT", "KILL", "TYPE", kind); err != nil {
			return fmt.Errorf("CLIENT KILL TYPE %s on the old master: %w", kind, err)
		}
	}
	return nil
}

// lockAcrossGateways: a request waiting for the session's lock on gateway
// 1 runs as soon as hold.php on gateway 0 ends, not at the lock timeout
// (20 s in these stacks).
func (c *failoverCounter) lockAcrossGateways(when string) {
	t, s := c.t, c.s
	started, q := markFile(t)
	held := make(chan int, 1)
	go func() {
		resp, _, _ := s.gws[0].get(t, "/hold.php?ms=1000&started="+q, c.ck)
		held <- resp.StatusCode
	}()
	waitForFile(t, started, "hold.php")
	begin := time.Now()
	code, body := c.increment(s.gws[1])
	waited := time.Since(begin)
	if hc := <-held; hc != 200 {
		t.Fatalf("%s: hold.php: %d", when, hc)
	}
	c.expect(code, body, when+", waiting for the lock")
	if waited > 10*time.Second {
		t.Errorf("%s: the waiting request took %v, for a 1 s hold: it was not woken when the lock was released", when, waited)
	}
}

// TestSessionSentinelFailover: two gateways on redis-sentinel:// keep one
// shared session through a Sentinel failover (SENTINEL FAILOVER: the
// replica is promoted, the old master demoted).
//
// Default settings: each gateway switches to the new master by itself
// (go-redis follows the Sentinel's +switch-master, some 30 ms after the
// promotion here). The session written before the failover (replicated:
// waitReplicated) is there on the new master; increments through both gateways go on
// in sequence from it, none refused; locks work across the gateways. Writes
// made between the promotion and a gateway's switch go to the old master,
// which still takes them, and are lost (README, Store: "Replication is
// asynchronous"); the test makes none.
//
// With min-replicas-to-write 1, as the README advises, the old master
// refuses writes as soon as its replica leaves it, and the new master until
// the old one replicates from it: the test sends increments all along, and
// every 200 is in sequence (none lost), the others are 503s, and they end.
func TestSessionSentinelFailover(t *testing.T) {
	t.Parallel()
	t.Run("Default", func(t *testing.T) {
		t.Parallel()
		c := startSentinelStack(t)
		c.failover()
		// No request until the old master is a replica: from then on a
		// gateway that missed the switch gets READONLY, a 503, instead
		// of writes that vanish; and its connections there are closed,
		// so that it asks the Sentinel again.
		c.demoteOldMaster()
		for i := range 6 {
			c.next(c.s.gws[i%2], "after the failover")
		}
		c.lockAcrossGateways("after the failover")
	})
	t.Run("MinReplicasToWrite", func(t *testing.T) {
		t.Parallel()
		c := startSentinelStack(t, "min-replicas-to-write", "1", "min-replicas-max-lag", "10")
		c.failover()
		// The new master refuses writes until the old one replicates
		// from it: a few increments meet that window first.
		demoted := make(chan struct{})
		t.Cleanup(func() { <-demoted }) // before the servers stop
		go func() {
			defer close(demoted)
			time.Sleep(300 * time.Millisecond)
			if err := c.sendDemotion(); err != nil {
				t.Error(err)
			}
		}()
		refused, since := 0, time.Now()
		for i := 0; i < 2 || refused > 0 && c.n < 8; i++ {
			code, body := c.increment(c.s.gws[i%2])
			if code == 503 {
				refused++
				if time.Since(since) > 60*time.Second {
					t.Fatalf("the gateways still answer 503 %v after the failover (%d so far)", time.Since(since), refused)
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			c.expect(code, body, "during the failover")
		}
		t.Logf("%d increments refused with 503 for %v after the failover; none lost", refused, time.Since(since).Round(100*time.Millisecond))
		for i := range 6 {
			c.next(c.s.gws[i%2], "once the new master has its replica")
		}
		c.lockAcrossGateways("once the new master has its replica")
	})
}

// TestSessionClusterFailover: two gateways on redis-cluster:// keep one
// shared session while the master of its slot hands over to a replica
// (CLUSTER FAILOVER, as an operator does before maintenance), with
// increments running through both gateways all along. A manual failover is
// coordinated (the master stops taking writes until the replica has caught
// up), so every 200 stays in sequence: none lost; go-redis follows the
// MOVED answers to the new master; any refusal meanwhile is a 503, and
// they end. Locks then work across the gateways on the new master.
func TestSessionClusterFailover(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{cluster: true})
	ctx := context.Background()
	c := &failoverCounter{t: t, s: s, ck: s.newSession(t)}
	for i := range 6 {
		c.next(s.gws[i%2], "before the failover")
	}
	key := "sessiongate:{" + s.gws[0].dump(t, c.ck).ID + "}"
	master, err := s.redis.(*redis.ClusterClient).MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	replica := s.cluster.AddReplica(t, master.Options().Addr)

	promoted := make(chan error, 1)
	go func() {
		if _, err := replica.Do("CLUSTER", "FAILOVER"); err != nil {
			promoted <- err
			return
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if role, err := replica.Do("ROLE"); err == nil && strings.HasPrefix(role, "master") {
				promoted <- nil
				return
			}
			if time.Now().After(deadline) {
				promoted <- errors.New("the replica is not master 30 s after CLUSTER FAILOVER")
				return
			}
		}
	}()
	refused, during := 0, 0
	for i, done := 0, false; !done; i++ {
		select {
		case err := <-promoted:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
		}
		code, body := c.increment(s.gws[i%2])
		if code == 503 {
			refused++
			if refused > 300 {
				t.Fatalf("%d increments refused during the failover", refused)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		c.expect(code, body, "during the failover")
		during++
	}
	t.Logf("during the failover: %d increments, %d refused with 503; none lost", during, refused)
	for i := range 6 {
		c.next(s.gws[i%2], "after the failover")
	}
	c.lockAcrossGateways("after the failover")
}

package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// TestStoreRedisClusterShardDown: one master of a Redis Cluster is down
// for good (no replica took over) and the operator runs the cluster with
// cluster-require-full-coverage no, so that the other masters go on
// serving their slots. The down master is the one whose slot holds the
// unlock channel's name, where go-redis subscribes. Sessions on the other
// masters are still served, by a gateway that had not subscribed yet as by
// a new one, and its readiness probe says ready: every gateway is in the
// same position, and a probe failing on all of them would take the site
// down for sessions that work. A session on the down master gets
// ErrUnavailable. Once the cluster itself says it is down (a second master
// down leaves the last in a minority), the probe fails.
func TestStoreRedisClusterShardDown(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	c := harness.StartRedisCluster(t)
	for _, n := range c.Nodes {
		if _, err := n.Do("CONFIG", "SET", "cluster-require-full-coverage", "no"); err != nil {
			t.Fatal(err)
		}
	}
	const prefix = "shard:"
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	defer cc.Close()
	master := func(key string) string {
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return m.Options().Addr
	}
	downAddr := master(prefix + "unlock")
	var down *harness.Redis
	for _, n := range c.Nodes {
		if n.Addr == downAddr {
			down = n
		}
	}
	var live, dead string
	for i := 0; live == "" || dead == ""; i++ {
		id := fmt.Sprintf("s%d", i)
		if master(prefix+"{"+id+"}") == downAddr {
			dead = id
		} else {
			live = id
		}
	}
	a := openStore(t, clusterURL(c), prefix) // started, no session yet
	b := openStore(t, clusterURL(c), prefix)

	down.Stop()
	var others []*harness.Redis
	for _, n := range c.Nodes {
		if n != down {
			others = append(others, n)
		}
	}
	// The others flag it as failed (node timeout 2 s) and still say ok.
	if !poll(15*time.Second, func() bool {
		for _, n := range others {
			nodes, err := n.Do("CLUSTER", "NODES")
			if err != nil || !strings.Contains(nodes, downAddr) || !strings.Contains(nodes, ",fail ") {
				return false
			}
			info, err := n.Do("CLUSTER", "INFO")
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the live masters do not flag the stopped one as failed")
	}

	fresh := newStore(t, clusterURL(c), prefix, nil)
	for name, s := range map[string]store.Store{"a gateway that had not locked yet": a, "a new gateway": fresh} {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := s.Ping(pctx); err != nil {
			t.Errorf("%s: readiness probe with one master down and the cluster serving the others: %v", name, err)
		}
		l, _, err := s.Lock(pctx, live, 10*time.Second)
		if err != nil {
			t.Errorf("%s: lock of a session on a live master: %v", name, err)
			cancel()
			continue
		}
		if _, err := l.Unlock(pctx, store.Mutation{Kind: store.Put, Value: []byte(name), TTL: time.Minute}); err != nil {
			t.Errorf("%s: unlock: %v", name, err)
		}
		cancel()
	}

	// Across gateways: b waits while a holds the session, and gets it
	// once a lets go (no unlock notice reaches b: its re-check does).
	l, _, err := a.Lock(ctx, live, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = l.Unlock(ctx, store.Mutation{Kind: store.Keep})
	}()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if l2, _, err := b.Lock(wctx, live, 10*time.Second); err != nil {
		t.Errorf("a waiting gateway did not get the lock once released: %v", err)
	} else {
		_, _ = l2.Unlock(ctx, store.Mutation{Kind: store.Keep})
	}

	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := a.Lock(dctx, dead, 10*time.Second); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("lock of a session on the down master: %v, want ErrUnavailable", err)
	}

	// A second master down: not flagged yet, it fails the probe at once;
	// then the last master is in a minority and says the cluster is down,
	// and the probe goes on failing.
	others[0].Stop()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.Ping(pctx); err == nil {
		t.Error("the readiness probe passes with a master down that the cluster has not flagged yet")
	}
	if !poll(15*time.Second, func() bool {
		info, _ := others[1].Do("CLUSTER", "INFO")
		return strings.Contains(info, "cluster_state:fail")
	}) {
		t.Fatal("the last master does not say the cluster is down")
	}
	if err := a.Ping(pctx); err == nil {
		t.Error("the readiness probe passes while the cluster says it is down")
	}
}

// TestStoreRedisClusterShardDownWithoutClusterNodes: as
// TestStoreRedisClusterShardDown, for a Redis user with the README's
// minimal Cluster ACL, which has no +cluster|nodes. The probe cannot ask
// CLUSTER NODES which master the cluster flagged as failed; it counts the
// slots instead: every live master's CLUSTER INFO reports as many slots
// on failed masters (cluster_slots_fail) as CLUSTER SLOTS gives the masters
// that do not answer. It failed with any master down, for good, so every
// gateway stayed unready while the cluster served the other sessions.
// A master down that the cluster has not flagged yet still fails it.
func TestStoreRedisClusterShardDownWithoutClusterNodes(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	c := harness.StartRedisCluster(t)
	rules := append(append([]string{}, minimalACL...), "+cluster|info", "+cluster|slots", "+command")
	for _, n := range c.Nodes {
		if _, err := n.Do("CONFIG", "SET", "cluster-require-full-coverage", "no"); err != nil {
			t.Fatal(err)
		}
		aclUser(t, n, "gateway", rules...)
	}
	url := "redis-cluster://gateway:pw-gateway@" + strings.Join(c.Addrs, ",")
	ctx := context.Background()
	down := c.Nodes[0]
	down.Stop()
	others := c.Nodes[1:]
	if !poll(15*time.Second, func() bool {
		for _, n := range others {
			nodes, err := n.Do("CLUSTER", "NODES")
			if err != nil || !strings.Contains(nodes, down.Addr) || !strings.Contains(nodes, ",fail ") {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the live masters do not flag the stopped one as failed")
	}
	s := newStore(t, url, "", nil)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		t.Errorf("readiness probe without +cluster|nodes, one master down and flagged failed: %v", err)
	}

	others[0].Stop()
	if err := s.Ping(pctx); err == nil {
		t.Error("the readiness probe passes with a master down that the cluster has not flagged yet")
	}
}

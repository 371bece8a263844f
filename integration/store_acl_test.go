package integration

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

// minimalACL is the Redis ACL the README ("Redis permissions") documents
// for the default prefix: every command the store runs, on its keys and its
// channel only.
var minimalACL = []string{
	"~sessiongate:*", "&sessiongate:unlock",
	"+ping", "+eval", "+evalsha", "+subscribe", "+unsubscribe",
	"+get", "+set", "+del", "+pttl", "+pexpire", "+persist", "+publish",
	"+hget", "+hmget", "+hset", "+hexists", "+hincrby",
}

func aclUser(t *testing.T, r *harness.Redis, name string, rules ...string) string {
	t.Helper()
	args := append([]string{"ACL", "SETUSER", name, "reset", "on", ">pw-" + name}, rules...)
	if out, err := r.Do(args...); err != nil {
		t.Fatalf("ACL SETUSER %s: %v %s", name, err, out)
	}
	return "redis://" + name + ":pw-" + name + "@" + r.Addr + "/0"
}

// A Redis user that can PING but not run what sessions need must stop the
// gateway at start with the reason, not let it start and answer every
// session request with 503.
func TestStoreRedisPingNamesMissingPermission(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	cases := map[string][]string{
		// Redis 7 gives a new user no channel (acl-pubsub-default
		// resetchannels): the natural "~sessiongate:* +@all" cannot
		// subscribe to the unlock channel.
		"nochannel":   {"~sessiongate:*", "+@all"},
		"noscripts":   {"~sessiongate:*", "&*", "+@read", "+@write", "+@pubsub", "+@connection"},
		"otherkeys":   {"~app:*", "&*", "+@all"},
		"readonly":    {"%R~sessiongate:*", "&*", "+@all"},
		"nopublish":   {"~sessiongate:*", "&*", "+@all", "-publish"},
		"nosubscribe": {"~sessiongate:*", "&*", "+@all", "-subscribe"},
	}
	for name, rules := range cases {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, aclUser(t, r, name, rules...), "", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := s.Ping(ctx)
			if err == nil {
				t.Fatal("Ping passed for a user that cannot run the session commands")
			}
			if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "refuses a command sessions need") || !strings.Contains(err.Error(), "Redis permissions") {
				t.Fatalf("Ping error does not say which permission is missing and where they are listed: %v", err)
			}
			if strings.Contains(err.Error(), "pw-"+name) {
				t.Fatalf("Ping error shows the password: %v", err)
			}
		})
	}
	// The probe leaves no key behind.
	if out, err := r.Do("DBSIZE"); err != nil || out != "0" {
		t.Fatalf("DBSIZE after the probes: %q, %v", out, err)
	}
}

// The permissions the README lists are enough for everything the store
// does: two gateways contending for one session, saves, loads, touches and
// deletes.
func TestStoreRedisMinimalACL(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	url := aclUser(t, r, "gateway", minimalACL...)
	a, b := newStore(t, url, "", nil), newStore(t, url, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []*redisstore.Store{a, b} {
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping with the documented permissions: %v", err)
		}
	}
	l, _, err := a.Lock(ctx, "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(ctx, time.Minute); err != nil {
		t.Fatalf("Renew with the documented permissions: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		l2, rec, err := b.Lock(ctx, "s1", time.Minute)
		if err == nil && string(rec.Value) != "one" {
			err = errors.New("waiter read " + string(rec.Value))
		}
		if err == nil {
			_, err = l2.Unlock(ctx, store.Mutation{Kind: store.Keep, TTL: time.Hour})
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("one"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	rec, err := a.Load(ctx, "s1")
	if err != nil || string(rec.Value) != "one" {
		t.Fatalf("Load: %q, %v", rec.Value, err)
	}
	v, err := a.Save(ctx, "s1", rec.Version, []byte("two"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Touch(ctx, "s1", v, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	l, _, err = a.Lock(ctx, "s2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Delete}); err != nil {
		t.Fatal(err)
	}
}

// The README's permissions plus the three it lists for a Cluster are enough
// on a Cluster too.
func TestStoreRedisClusterMinimalACL(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	c := harness.StartRedisCluster(t)
	c.WaitOK(t, 20*time.Second)
	rules := append(append([]string{}, minimalACL...), "+cluster|info", "+cluster|slots", "+command")
	for _, n := range c.Nodes {
		aclUser(t, n, "gateway", rules...)
	}
	s := newStore(t, "redis-cluster://gateway:pw-gateway@"+strings.Join(c.Addrs, ","), "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with the documented permissions: %v", err)
	}
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} { // several slots, so every master
		l, _, err := s.Lock(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("x"), TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if rec, err := s.Load(ctx, id); err != nil || string(rec.Value) != "x" {
			t.Fatalf("Load %s: %q, %v", id, rec.Value, err)
		}
	}
}

// The ACL line of the README ("Redis permissions"), as an operator copies
// it, works with a URL that names a database other than 0, which the README
// offers for keeping two deployments apart ("or database numbers"): go-redis
// sends SELECT on every new connection then.
func TestStoreRedisReadmeACLWithDatabase(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const lead = "ACL SETUSER sessiongate on >PASSWORD "
	var rules []string
	for line := range strings.SplitSeq(string(readme), "\n") {
		if rest, ok := strings.CutPrefix(line, lead); ok {
			rules = strings.Fields(rest)
		}
	}
	if len(rules) == 0 {
		t.Fatalf("README has no line starting %q", lead)
	}
	r := harness.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Without SELECT the start-up check says where the permissions are listed.
	noSelect := slices.DeleteFunc(slices.Clone(rules), func(r string) bool { return r == "+select" })
	err = newStore(t, strings.TrimSuffix(aclUser(t, r, "noselect", noSelect...), "/0")+"/3", "", nil).Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "'select'") || !strings.Contains(err.Error(), "Redis permissions") {
		t.Errorf("Ping without SELECT and database 3: want the refused command and the README section named, got %v", err)
	}
	url := strings.TrimSuffix(aclUser(t, r, "readme", rules...), "/0") + "/3"
	s := newStore(t, url, "", nil)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with the README's permissions and database 3: %v", err)
	}
	l, _, err := s.Lock(ctx, "s", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("v"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

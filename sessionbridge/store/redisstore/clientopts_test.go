package redisstore

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A request waits for a free pool connection at most one Redis timeout, not
// go-redis's read timeout + 1 s, unless the URL says otherwise.
func TestPoolTimeoutFollowsReadTimeout(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want time.Duration
	}{
		{"redis://h:6379/0", 200 * time.Millisecond},
		{"redis://h:6379/0?pool_timeout=3s", 3 * time.Second},
		{"redis://h:6379/0?read_timeout=50ms", 50 * time.Millisecond},
		{"redis://h:6379/0?read_timeout=-1", 30 * time.Second}, // no read timeout: go-redis's default
	} {
		c, err := OpenClient(tc.url, WithTimeouts(200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.(*redis.Client).Options().PoolTimeout; got != tc.want {
			t.Errorf("%s: PoolTimeout %v, want %v", tc.url, got, tc.want)
		}
		_ = c.Close()
	}
	c, err := OpenClient("redis-cluster://a:7000,b:7001", WithTimeouts(0, 300*time.Millisecond, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.(*redis.ClusterClient).Options().PoolTimeout; got != 300*time.Millisecond {
		t.Errorf("cluster: PoolTimeout %v, want 300ms", got)
	}
}

// go-redis sends no AUTH without a password, so a URL whose user info has
// no ':' (redis://PASSWORD@host, a common slip) logged in as nobody and the
// start-up check said only "NOAUTH Authentication required". It is refused
// with the fix, and the text is not echoed.
func TestUserInfoWithoutColonIsRefused(t *testing.T) {
	for _, u := range []string{
		"redis://s3cretpw@h:6379/0",
		"rediss://s3cretpw@h/0",
		"unix://s3cretpw@/run/redis.sock",
		"redis-sentinel://s3cretpw@s1:26379/0?master=m",
		"redis-cluster://s3cretpw@a:7000,b:7001",
	} {
		c, err := OpenClient(u)
		if err == nil {
			_ = c.Close()
			t.Errorf("%s: accepted; its user info is never sent to Redis", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cretpw") || !strings.Contains(err.Error(), ":PASSWORD@") {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"redis://:pw@h/0", "redis://bob:pw@h/0", "redis://bob:@h/0"} {
		c, err := OpenClient(u)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		_ = c.Close()
	}
}

// The gateway runs on one processor while one is enough (internal/procs),
// and go-redis sized its default pool from GOMAXPROCS when the client was
// made: a gateway started that way kept 10 connections per node for good,
// however many CPUs it later used. The default follows the machine's CPUs.
func TestPoolSizeDoesNotFollowGOMAXPROCSAtStart(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	want := 10 * runtime.NumCPU()
	c, err := OpenClient("redis://h:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.(*redis.Client).Options().PoolSize; got != want {
		t.Errorf("PoolSize %d with GOMAXPROCS=1, want %d (10 per CPU)", got, want)
	}
	c2, err := OpenClient("redis://h:6379/0?pool_size=3")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := c2.(*redis.Client).Options().PoolSize; got != 3 {
		t.Errorf("pool_size=3 in the URL: PoolSize %d", got)
	}
}

package integration

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestStoreRedisMaxClientsNamed: a Redis that has maxclients connections
// answers a new one with "-ERR max number of clients reached" and closes
// it. The store's error (a request's 503 log line, /readyz, the start-up
// check) must say so: it read "broken pipe" or "EOF", as if Redis had
// crashed, with nothing pointing at maxclients.
func TestStoreRedisMaxClientsNamed(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	if _, err := r.Do("CONFIG", "SET", "maxclients", "3"); err != nil {
		t.Fatal(err)
	}
	// Fill the server up: connections that stay open.
	for range 3 {
		c, err := net.Dial("tcp", r.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	time.Sleep(100 * time.Millisecond)
	s := newStore(t, r.URL(), "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Ping(ctx)
	t.Logf("Ping: %v", err)
	if err == nil || !strings.Contains(err.Error(), "max number of clients reached") || !strings.Contains(err.Error(), "maxclients") {
		t.Errorf("Ping with Redis full: %v, want Redis's maxclients named", err)
	}
	_, _, err = s.Lock(ctx, "full", time.Second)
	t.Logf("Lock: %v", err)
	if err == nil || !strings.Contains(err.Error(), "max number of clients reached") {
		t.Errorf("Lock with Redis full: %v, want Redis's maxclients named", err)
	}
	_, err = s.Load(ctx, "full")
	t.Logf("Load: %v", err)
	if err == nil || !strings.Contains(err.Error(), "max number of clients reached") {
		t.Errorf("Load with Redis full: %v, want Redis's maxclients named", err)
	}
}

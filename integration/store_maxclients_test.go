package integration

import (
	"context"
	"io"
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
	// Fill the server up: connections that stay open, each counted once it
	// answered PING. Redis may not have seen the close of CONFIG SET's
	// connection yet: it then refuses one of these, and that slot frees
	// soon after (most likely how the store once got in).
	for filled, tries := 0, 0; filled < 3; tries++ {
		if tries == 100 {
			t.Fatalf("Redis took %d of 3 connections in 100 tries", filled)
		}
		c, err := net.Dial("tcp", r.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		reply := make([]byte, 7)
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatal(err)
		}
		if string(reply) != "+PONG\r\n" {
			c.Close()
			time.Sleep(20 * time.Millisecond)
			continue
		}
		c.SetDeadline(time.Time{})
		t.Cleanup(func() { c.Close() })
		filled++
	}
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

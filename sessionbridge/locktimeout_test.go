package sessionbridge

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

// delayingProxy forwards TCP to addr, holding each chunk the client sends
// for delay: a Redis a few tens of milliseconds away (another zone).
func delayingProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go func() {
				defer u.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						time.Sleep(delay)
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// SESSIONGATE_SESSION_LOCK_TIMEOUT is the longest wait for a session
// another request holds; Redis's round trips get SESSIONGATE_REDIS_TIMEOUT
// on top. Bounded by the lock timeout alone, a 20 ms one (to fail fast on
// busy sessions) with Redis 30 ms away gave every request of a session
// nobody else held 503 "session busy", though Redis answered well within
// its own timeout.
func TestLockTimeoutBelowRedisRoundTripTakesFreeSession(t *testing.T) {
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: delayingProxy(t, mr.Addr(), 30*time.Millisecond),
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	st, err := redisstore.New(c, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := newTestManager(t, LockStrict, st)
	m.o.StoreTimeout = 500 * time.Millisecond
	x := createSession(t, m, `{"user":"ana"}`)
	m.o.LockTimeout = 20 * time.Millisecond
	ctx := context.Background()
	for i := range 3 {
		s, err := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err != nil {
			t.Fatalf("request %d of a session nobody else holds, LOCK_TIMEOUT=20ms, Redis 30 ms away: %v", i, err)
		}
		if s.ID() != x {
			t.Fatalf("request %d: session %q, want %q", i, s.ID(), x)
		}
		s.Release(ctx)
	}
	// A session another request holds still gets 503 "session busy",
	// within the lock timeout and Redis's time.
	holder, err := m.Open(ctx, requestWithCookie(t, m, x), false)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release(ctx)
	start := time.Now()
	if _, err := m.Open(ctx, requestWithCookie(t, m, x), false); !errors.Is(err, ErrBusy) {
		t.Fatalf("a session another request holds: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > m.o.LockTimeout+m.o.StoreTimeout+200*time.Millisecond {
		t.Fatalf("busy after %v, want within the lock timeout and the store's", d)
	}
}

package integration

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

// replyDropper is a TCP proxy in front of a Redis that, once armed, lets
// the next request carrying a script reach Redis, throws Redis's reply
// away and closes the connection: a reply lost after the command ran.
type replyDropper struct {
	addr  string
	armed atomic.Bool
}

func startReplyDropper(t *testing.T, backend string) *replyDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyDropper{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			sn, err := net.Dial("tcp", backend)
			if err != nil {
				cn.Close()
				continue
			}
			var dropping atomic.Bool
			closeBoth := func() { cn.Close(); sn.Close() }
			wg.Add(2)
			go func() { // client to Redis
				defer wg.Done()
				defer closeBoth()
				buf := make([]byte, 64<<10)
				for {
					n, err := cn.Read(buf)
					if n > 0 {
						if bytes.Contains(bytes.ToLower(buf[:n]), []byte("evalsha")) && p.armed.CompareAndSwap(true, false) {
							dropping.Store(true)
						}
						if _, werr := sn.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() { // Redis to client
				defer wg.Done()
				defer closeBoth()
				buf := make([]byte, 64<<10)
				for {
					n, err := sn.Read(buf)
					if n > 0 && dropping.Load() {
						return // the command ran; its reply is lost
					}
					if n > 0 {
						if _, werr := cn.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// TestStoreWaitReplicasLostReplyIsNotResent: with
// SESSIONGATE_REDIS_WAIT_REPLICAS a session write goes out with WAIT behind
// it in one pipeline. With max_retries in the URL, go-redis sent that
// pipeline again after a reply was lost, on a new connection: the script,
// which had run, ran a second time and found its own write (Save said
// "conflict", Unlock "lease lost", both false: the write was applied), and
// WAIT on the new connection counted what that connection wrote, which was
// nothing. The pipeline is sent once: a lost reply is ErrUnavailable (the
// outcome is unknown, as without WAIT), and the script ran exactly once.
func TestStoreWaitReplicasLostReplyIsNotResent(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	master, replica := harness.StartRedis(t), harness.StartRedis(t)
	replicaOf(t, replica, master)
	p := startReplyDropper(t, master.Addr)
	c, err := redisstore.OpenClient("redis://" + p.addr + "/0?max_retries=3&read_timeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := redisstore.New(c, redisstore.Options{WaitReplicas: 1, WaitTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const id = "lost-reply"
	key := "sessiongate:{" + id + "}"
	version := func() uint64 {
		t.Helper()
		v, err := master.Do("HGET", key, "v")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		return n
	}

	v1, err := s.Save(ctx, id, 0, []byte("a"), time.Minute) // loads the script too
	if err != nil {
		t.Fatal(err)
	}
	p.armed.Store(true)
	_, err = s.Save(ctx, id, v1, []byte("b"), time.Minute)
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrConflict) {
		t.Errorf("Save whose reply was lost: %v, want ErrUnavailable (the outcome is unknown), not a conflict", err)
	}
	if v := version(); v != v1+1 {
		t.Errorf("version after the lost Save reply: %d, want %d (the script run once)", v, v1+1)
	}

	// A first Unlock loads its script, so the lost reply below is that
	// of a script that ran, not of a NOSCRIPT.
	for range 2 {
		l, _, err := s.Lock(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("b"), TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	l, rec, err := s.Lock(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p.armed.Store(true)
	_, err = l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("c"), TTL: time.Minute})
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("Unlock whose reply was lost: %v, want ErrUnavailable, not a lost lease", err)
	}
	if v := version(); v != rec.Version+1 {
		t.Errorf("version after the lost Unlock reply: %d, want %d (the script run once)", v, rec.Version+1)
	}
	d, _ := master.Do("HGET", key, "d")
	if d != "c" {
		t.Errorf("data after the lost Unlock reply: %q, want %q", d, "c")
	}
	// The lock is freed in the background (the reply was lost), so the
	// session is not blocked until the lease ends.
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	defer lcancel()
	if l, _, err := s.Lock(lctx, id, time.Minute); err != nil {
		t.Errorf("Lock after the lost Unlock reply: %v", err)
	} else {
		l.Unlock(ctx, store.Mutation{Kind: store.Keep})
	}
}

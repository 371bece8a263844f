package redisstore

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// stallProxy passes connections through to a Redis until stall; from then
// on it drops what clients send, as a stalled Redis answers nothing.
type stallProxy struct {
	ln      net.Listener
	stalled atomic.Bool
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); p.pipe(r, c) }()
			go func() { defer wg.Done(); io.Copy(c, r); c.Close() }()
		}
	}()
	return p
}

// pipe copies what the client sends, unless stalled.
func (p *stallProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// lockCalls counts the lock script calls that reach the client.
type lockCalls struct{ n atomic.Int64 }

func (h *lockCalls) count(cmd redis.Cmder) {
	if slices.Contains(cmd.Args(), any(lockScript.Hash())) {
		h.n.Add(1)
	}
}

func (h *lockCalls) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lockCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *lockCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

// When Redis stops answering, the requests queued here for the session of
// a holder whose release then times out fail with it, without each taking
// the head's place and trying Redis in turn: that took one more timeout
// (and pool wait) per waiter, so the last of a hot session's requests got
// its 503 only after several seconds, or waited out the stall.
func TestStalledRedisFailsTheQueueAtOnce(t *testing.T) {
	for _, coalesce := range []bool{true, false} {
		m := startMiniredis(t)
		p := startStallProxy(t, m.Addr())
		const timeout = 100 * time.Millisecond
		c, err := OpenClient("redis://"+p.ln.Addr().String()+"/0", WithTimeouts(timeout, timeout, timeout))
		if err != nil {
			t.Fatal(err)
		}
		calls := &lockCalls{}
		c.AddHook(calls)
		s, err := New(c, Options{Prefix: "test:", Coalesce: coalesce})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		l, _, err := s.Lock(ctx, "hot", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		const waiters = 5
		errs := make(chan error, waiters)
		for range waiters {
			go func() {
				lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				wl, _, err := s.Lock(lctx, "hot", time.Minute)
				if err == nil {
					// Handed over: the write it came from failed.
					_, err = wl.Unlock(ctx, store.Mutation{Kind: store.Keep})
				}
				errs <- err
			}()
		}
		// All queued behind the holder.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			s.mu.Lock()
			n := len(s.queues["hot"].waiters)
			s.mu.Unlock()
			if n == waiters {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d waiters queued", n, waiters)
			}
		}
		before := calls.n.Load()
		p.stalled.Store(true)
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("coalesce %v: the holder's Unlock with Redis stalled: %v", coalesce, err)
		}
		for range waiters {
			if err := <-errs; !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("coalesce %v: a waiter: %v, want ErrUnavailable", coalesce, err)
			}
		}
		if n := calls.n.Load() - before; n > 0 {
			t.Errorf("coalesce %v: the queued waiters tried the stalled Redis %d times in turn, want none", coalesce, n)
		}
		s.Close()
		c.Close()
	}
}

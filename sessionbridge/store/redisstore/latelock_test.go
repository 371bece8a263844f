package redisstore

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// lateLockHook is a go-redis hook that, once armed, delivers the next lock
// script late: its caller gets the i/o timeout its deadline gives (the
// command was written, no reply came in time), and the command reaches
// Redis only when deliver is called. That is what happens to a command
// whose packet is lost and retransmitted after the client's deadline, or
// one Redis reads after commands of another connection written later:
// Redis orders nothing across connections. With holdRelease it also holds
// the background release of that script's token (an unlock script of the
// token) until openRelease, so the late script can be made to run before
// it.
type lateLockHook struct {
	mu          sync.Mutex
	armed       bool
	holdRelease bool
	token       string // the late script's token
	held        func()

	lockTries atomic.Int32 // lock scripts that got their reply (not the held one)

	heldOK     chan struct{} // closed when the late script is held
	relHeld    chan struct{} // closed when its release reached the hook
	relOpen    chan struct{}
	relDone    chan struct{} // closed when its release got a reply
	relHeldOne sync.Once
	relDoneOne sync.Once
}

func newLateLockHook(holdRelease bool) *lateLockHook {
	return &lateLockHook{holdRelease: holdRelease, heldOK: make(chan struct{}), relHeld: make(chan struct{}),
		relOpen: make(chan struct{}), relDone: make(chan struct{})}
}

func (h *lateLockHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lateLockHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// scriptToken is the first ARGV (the token) of an EVAL[SHA] of script.
func scriptToken(cmd redis.Cmder, script *redis.Script) (string, bool) {
	a := cmd.Args()
	if !strings.HasPrefix(cmd.Name(), "eval") || len(a) < 3 {
		return "", false
	}
	if s, _ := a[1].(string); s != script.Hash() {
		return "", false
	}
	n, err := strconv.Atoi(strings.TrimSpace(toString(a[2])))
	if err != nil || len(a) <= 3+n {
		return "", false
	}
	return toString(a[3+n]), true
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

func (h *lateLockHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if tok, ok := scriptToken(cmd, unlockScript); ok {
			h.mu.Lock()
			ours := tok == h.token
			hold := h.holdRelease && ours
			h.mu.Unlock()
			if hold {
				h.relHeldOne.Do(func() { close(h.relHeld) })
				<-h.relOpen
			}
			err := next(ctx, cmd)
			if ours && err == nil {
				h.relDoneOne.Do(func() { close(h.relDone) })
			}
			return err
		}
		tok, isLock := scriptToken(cmd, lockScript)
		h.mu.Lock()
		hold := h.armed && isLock
		if hold {
			h.armed = false
			h.token = tok
		}
		h.mu.Unlock()
		if !hold {
			err := next(ctx, cmd)
			if isLock {
				h.lockTries.Add(1)
			}
			return err
		}
		late := redis.NewCmd(context.Background(), cmd.Args()...)
		late.SetFirstKeyPos(3)
		h.mu.Lock()
		h.held = func() { _ = next(context.Background(), late) }
		h.mu.Unlock()
		close(h.heldOK)
		if dl, ok := ctx.Deadline(); ok {
			time.Sleep(time.Until(dl))
		}
		err := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
		cmd.SetErr(err)
		return err
	}
}

func (h *lateLockHook) arm() {
	h.mu.Lock()
	h.armed = true
	h.mu.Unlock()
}

func (h *lateLockHook) deliver() {
	h.mu.Lock()
	f := h.held
	h.mu.Unlock()
	f()
}

type lockResult struct {
	l   store.Lease
	err error
}

// lateLockSetup: gateway b holds the session; request X on gateway a
// contends for it (and, with next, request W of a queues behind X); the
// hook is armed and b unlocks, so X's next try is held until X's deadline
// (2 s) ends. It returns once X gave up, with W's outcome (nil channel
// without next). Each step waits for the lock scripts it needs to have
// run, not for a fixed time: with sleeps of 100 and 50 ms and a deadline
// of 400 ms, X on a loaded machine (-race, six packages at a time) gave up
// before its next try and the setup waited for that try for ever.
func lateLockSetup(t *testing.T, a, b *Store, h *lateLockHook, id string, next bool) <-chan lockResult {
	t.Helper()
	ctx := context.Background()
	const leaseTTL = 5 * time.Second
	lb, _, err := b.Lock(ctx, id, leaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	waitTries := func(n int32, what string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); h.lockTries.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d lock scripts answered in 5 s, want %d", what, h.lockTries.Load(), n)
			}
		}
	}
	xctx, xcancel := context.WithTimeout(ctx, 2*time.Second)
	t.Cleanup(xcancel)
	xdone := make(chan error, 1)
	go func() {
		l, _, err := a.Lock(xctx, id, leaseTTL)
		if err == nil {
			_, _ = l.Unlock(ctx, store.Mutation{Kind: store.Keep})
		}
		xdone <- err
	}()
	waitTries(1, "X's first try") // then X waits for the unlock notice
	var wdone chan lockResult
	if next {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		t.Cleanup(wcancel)
		wdone = make(chan lockResult, 1)
		go func() {
			l, _, err := a.Lock(wctx, id, leaseTTL)
			wdone <- lockResult{l, err}
		}()
		waitTries(2, "W's first try")
	}
	h.arm()
	if _, err := lb.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.heldOK: // X's next try is on its way
	case err := <-xdone:
		t.Fatalf("X ended without a next try to hold: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("X made no next try in 10 s")
	}
	if err := <-xdone; !errors.Is(err, store.ErrLockTimeout) {
		t.Fatalf("X: %v", err)
	}
	return wdone
}

func waitClosed(t *testing.T, c <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatal(msg)
	}
}

// checkSessionFree: the session is free; gateway b must get it at once,
// not after a lease some late token holds.
func checkSessionFree(t *testing.T, b *Store, lockKey func() string, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	l, _, err := b.Lock(ctx, id, 3*time.Second)
	if err != nil {
		t.Fatalf("another gateway cannot lock the free session (%v after %v): the lock names %q", err, time.Since(start).Round(time.Millisecond), lockKey())
	}
	_, _ = l.Unlock(context.Background(), store.Mutation{Kind: store.Keep})
}

// A lock request whose caller's deadline ran out while its script was on
// its way must not, once the script reaches Redis, take away the lock the
// next request of the same gateway got meanwhile, nor leave a lock behind
// that nobody releases.
func TestLateLockScriptLeavesNextLocalHolderAlone(t *testing.T) {
	m := startMiniredis(t)
	url := conformanceURL(m)
	h := newLateLockHook(false)
	a := openTestStore(t, url, h, Options{Coalesce: true})
	b := openTestStore(t, url, nil, Options{Coalesce: true})
	ctx := context.Background()
	const id = "late"
	keys, _ := a.keys(id)
	lockKey := func() string { s, _ := m.Get(keys[1]); return s }

	w := <-lateLockSetup(t, a, b, h, id, true)
	if w.err != nil {
		t.Fatalf("W did not get the lock: %v", w.err)
	}
	wtok := w.l.(*lease).token
	waitClosed(t, h.relDone, "the release of X's try never ran")
	h.deliver() // X's script reaches Redis now, while W holds the session
	if cur := lockKey(); cur != wtok {
		t.Errorf("while W holds the session its lock names %q, not W's token %q", cur, wtok)
	}
	if _, err := w.l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("w"), TTL: time.Minute}); err != nil {
		t.Errorf("W's write (well within its lease) refused: %v", err)
	}
	checkSessionFree(t, b, lockKey, id)
}

// The same, with X's script reaching Redis before its release does: W's
// lock, of the same gateway and a later token, is not taken for a dead one
// (lockScript's seq rule alone), and X claims no turn.
func TestLateLockScriptBeforeItsReleaseLeavesNewerLockAlone(t *testing.T) {
	m := startMiniredis(t)
	url := conformanceURL(m)
	h := newLateLockHook(true)
	// Without Coalesce every script is a command of its own, which the
	// hook sees (a batch is a pipeline).
	a := openTestStore(t, url, h, Options{})
	b := openTestStore(t, url, nil, Options{})
	ctx := context.Background()
	const id = "late-first"
	keys, _ := a.keys(id)
	lockKey := func() string { s, _ := m.Get(keys[1]); return s }

	w := <-lateLockSetup(t, a, b, h, id, true)
	if w.err != nil {
		t.Fatalf("W did not get the lock: %v", w.err)
	}
	wtok := w.l.(*lease).token
	waitClosed(t, h.relHeld, "X's try was never released")
	if m.Exists(keys[3]) {
		t.Fatal("a fence before X's release ran")
	}
	turnBefore, _ := m.Get(keys[2])
	h.deliver()
	if cur := lockKey(); cur != wtok {
		t.Errorf("while W holds the session its lock names %q, not W's token %q", cur, wtok)
	}
	if turn, _ := m.Get(keys[2]); turn != turnBefore {
		t.Errorf("X's late script changed the turn claim from %q to %q", turnBefore, turn)
	}
	close(h.relOpen)
	if _, err := w.l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("w"), TTL: time.Minute}); err != nil {
		t.Errorf("W's write (well within its lease) refused: %v", err)
	}
	checkSessionFree(t, b, lockKey, id)
}

// With nobody of its gateway behind it, a request that gave up leaves its
// release: its script, reaching Redis only after that release found
// nothing, must not take the free lock (nobody would release it before
// the lease ends) nor claim the next turn.
func TestLateLockScriptAfterItsReleaseTakesNothing(t *testing.T) {
	m := startMiniredis(t)
	url := conformanceURL(m)
	h := newLateLockHook(false)
	a := openTestStore(t, url, h, Options{Coalesce: true})
	b := openTestStore(t, url, nil, Options{Coalesce: true})
	const id = "late-alone"
	keys, _ := a.keys(id)
	lockKey := func() string { s, _ := m.Get(keys[1]); return s }

	lateLockSetup(t, a, b, h, id, false)
	// The release of X's try found the lock free; the turn X claimed is
	// handed back.
	waitClosed(t, h.relDone, "the release of X's try never ran")
	for deadline := time.Now().Add(5 * time.Second); m.Exists(keys[2]); {
		if time.Now().After(deadline) {
			t.Fatal("X's turn claim stays")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.deliver()
	if m.Exists(keys[1]) || m.Exists(keys[2]) {
		cur, _ := m.Get(keys[2])
		t.Errorf("X's late script took the lock (%q) or claimed a turn (%q)", lockKey(), cur)
	}
	checkSessionFree(t, b, lockKey, id)
}

// lockScript and unlockScript on their own, in every order that matters:
// run against miniredis and, when there is one, redis-server (Lua there is
// Redis's own).
func TestLockScriptSkipsSupersededTry(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		m := startMiniredis(t)
		testSupersededTry(t, "redis://"+m.Addr()+"/0")
	})
	t.Run("redis-server", func(t *testing.T) {
		testSupersededTry(t, "redis://"+runRedisServer(t)+"/0")
	})
}

func testSupersededTry(t *testing.T, url string) {
	s := openTestStore(t, url, nil, Options{})
	c := s.c
	ctx := context.Background()
	inst := s.tokenPrefix
	tok := func(n uint64) string { return inst + strconv.FormatUint(n, 36) }
	lock := func(t *testing.T, keys []string, token string) []any {
		t.Helper()
		res, err := lockScript.Run(ctx, c, keys, token, 60000, inst, 2000, s.channel, "x", time.Now().UnixMilli()).Slice()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	release := func(t *testing.T, keys []string, token string, fence int64) []any {
		t.Helper()
		res, err := unlockScript.Run(ctx, c, keys, token, "k", 0, "", "", s.channel, "x", "", 0, inst, fence).Slice()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	get := func(k string) string { v, _ := c.Get(ctx, k).Result(); return v }
	exists := func(k string) bool { return c.Exists(ctx, k).Val() == 1 }

	t.Run("newer token of this instance holds the lock", func(t *testing.T) {
		keys, _ := s.keys("newer")
		newer := tok(40) // "14": below "z" (35) and "13" (39) as a string
		if err := c.Set(ctx, keys[1], newer, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		for _, older := range []uint64{5, 39, 35} { // "5", "13", "z"
			if res := lock(t, keys, tok(older)); res[0] != int64(0) {
				t.Fatalf("seq %d took the lock of seq 40: %v", older, res)
			}
			if got := get(keys[1]); got != newer {
				t.Fatalf("seq %d: the lock names %q, want %q", older, got, newer)
			}
			if exists(keys[2]) {
				t.Fatalf("seq %d claimed a turn: %q", older, get(keys[2]))
			}
		}
	})
	t.Run("older token of this instance is dead", func(t *testing.T) {
		keys, _ := s.keys("older")
		if err := c.Set(ctx, keys[1], tok(35), time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if res := lock(t, keys, tok(36)); res[0] != int64(1) {
			t.Fatalf("seq 36 did not take the dead lock of seq 35: %v", res)
		}
		if got := get(keys[1]); got != tok(36) {
			t.Fatalf("the lock names %q", got)
		}
	})
	t.Run("another instance's lock", func(t *testing.T) {
		keys, _ := s.keys("other")
		if err := c.Set(ctx, keys[1], "0123456789abcdef:zz", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if res := lock(t, keys, tok(1)); res[0] != int64(0) {
			t.Fatalf("took another instance's lock: %v", res)
		}
		if got := get(keys[2]); !strings.HasPrefix(got, inst+" ") {
			t.Fatalf("a live try found the lock taken and claimed no turn: %q", got)
		}
	})
	t.Run("fence", func(t *testing.T) {
		keys, _ := s.keys("fence")
		// A release that finds the lock not its token's raises the fence.
		if res := release(t, keys, tok(100), 5000); res[0] != int64(-1) {
			t.Fatalf("release: %v", res)
		}
		if got := get(keys[3]); got != strconv.FormatUint(100, 36) {
			t.Fatalf("fence %q after releasing seq 100", got)
		}
		// Never lowered nor shortened.
		if res := release(t, keys, tok(99), 1000); res[0] != int64(-1) {
			t.Fatalf("release: %v", res)
		}
		if got, ttl := get(keys[3]), c.PTTL(ctx, keys[3]).Val(); got != strconv.FormatUint(100, 36) || ttl <= time.Second {
			t.Fatalf("fence %q, PTTL %v after releasing seq 99 for 1 s", got, ttl)
		}
		// A normal unlock (fence 0) leaves it alone.
		if res := release(t, keys, tok(200), 0); res[0] != int64(-1) {
			t.Fatalf("release: %v", res)
		}
		if got := get(keys[3]); got != strconv.FormatUint(100, 36) {
			t.Fatalf("fence %q after an unlock without one", got)
		}
		for _, n := range []uint64{100, 99, 1} {
			if res := lock(t, keys, tok(n)); res[0] != int64(0) {
				t.Fatalf("seq %d took the lock behind fence 100: %v", n, res)
			}
			if exists(keys[1]) || exists(keys[2]) {
				t.Fatalf("seq %d behind fence 100 wrote the lock or a turn", n)
			}
		}
		if res := lock(t, keys, tok(101)); res[0] != int64(1) {
			t.Fatalf("seq 101 did not take the free lock behind fence 100: %v", res)
		}
		// A release that finds its token holding the lock frees it and
		// needs no fence.
		if res := release(t, keys, tok(101), 5000); res[0] != int64(1) || exists(keys[1]) {
			t.Fatalf("release of the holder: %v", res)
		}
		if got := get(keys[3]); got != strconv.FormatUint(100, 36) {
			t.Fatalf("fence %q after releasing the holder", got)
		}
	})
}

// runRedisServer runs redis-server on a free port (skips without it).
func runRedisServer(t *testing.T) string {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
	return ""
}

package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore/redisstoretest"
	"github.com/sessiongate/sessiongate/sessionbridge/store/storetest"
)

// startMiniredis runs a miniredis whose TTLs follow the wall clock, like a
// real server's.
func startMiniredis(t testing.TB) *miniredis.Miniredis {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// newTestStore is a store on addr with Coalesce on, as the gateway runs
// on a Redis on loopback.
func newTestStore(t testing.TB, addr string) *Store {
	return openTestStore(t, "redis://"+addr+"/0", nil, Options{Coalesce: true})
}

// openTestStore opens url as the gateway does, with hook (if not nil) on
// every connection, including those to the nodes a cluster finds later,
// and closes the store with the test. o's Prefix is "test:".
func openTestStore(t testing.TB, url string, hook redis.Hook, o Options) *Store {
	c, err := OpenClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		if cc, ok := c.(*redis.ClusterClient); ok {
			cc.OnNewNode(func(n *redis.Client) { n.AddHook(hook) })
		} else {
			c.AddHook(hook)
		}
	}
	o.Prefix = "test:"
	s, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = c.Close()
	})
	return s
}

func TestConformanceMiniredis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, store.Store) {
		url := conformanceURL(startMiniredis(t))
		return openTestStore(t, url, nil, Options{Coalesce: true}), openTestStore(t, url, nil, Options{Coalesce: true})
	})
}

// Without Coalesce every script goes alone (noRetry).
func TestConformanceMiniredisNoCoalesce(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, store.Store) {
		url := conformanceURL(startMiniredis(t))
		return openTestStore(t, url, nil, Options{}), openTestStore(t, url, nil, Options{})
	})
}

// conformanceURL is m's URL with read and write timeouts of 10 s instead of
// DefaultTimeout's 500 ms: the conformance suite holds the store's
// semantics, not Redis's latency, and miniredis runs the scripts in Lua
// inside the test process. Under -race on a loaded machine a 1 MiB Lock
// (BigValue), and replies to many concurrent writers, took longer than
// 500 ms and failed with i/o timeout.
func conformanceURL(m *miniredis.Miniredis) string {
	return "redis://" + m.Addr() + "/0?read_timeout=10s&write_timeout=10s"
}

func TestKeysAreHashTagged(t *testing.T) {
	m := startMiniredis(t)
	s := newTestStore(t, m.Addr())
	ctx := context.Background()
	if _, err := s.Save(ctx, "abc", 0, []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	l, _, err := s.Lock(ctx, "abc", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	keys := m.Keys()
	want := []string{"test:{abc}", "test:{abc}:lock"}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
	if m.Exists("test:{abc}:lock") {
		t.Fatal("lock key left after Unlock")
	}
}

func TestRejectsBadPrefixAndID(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, p := range []string{"a{b", "x}", "{tag}:"} {
		if _, err := New(c, Options{Prefix: p}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("nil client accepted")
	}
	s, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"", "a}b", "{x"} {
		if _, err := s.Load(ctx, id); err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Load(%q): err = %v, want an invalid-ID error", id, err)
		}
		if _, _, err := s.Lock(ctx, id, time.Second); err == nil {
			t.Errorf("Lock(%q) accepted", id)
		}
	}
}

func TestUnavailableFailsFast(t *testing.T) {
	m := startMiniredis(t)
	s := newTestStore(t, m.Addr())
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	start := time.Now()
	checks := map[string]error{}
	_, checks["load"] = s.Load(ctx, "x")
	_, checks["save"] = s.Save(ctx, "x", 0, []byte("v"), time.Minute)
	checks["touch"] = s.Touch(ctx, "x", 1, time.Minute)
	checks["delete"] = s.Delete(ctx, "x")
	checks["ping"] = s.Ping(ctx)
	_, _, checks["lock"] = s.Lock(ctx, "x", time.Second)
	for op, err := range checks {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis gone: err = %v, want ErrUnavailable", op, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("failing calls took %v", d)
	}
}

// A lost Unlock (Redis down while the holder releases) must not leave local
// waiters queued for ever: they get an error, or the lock handed over while
// the holder's write was in flight, in which case their own Unlock reports
// that the write they built on failed.
func TestUnlockFailurePromotesLocalWaiter(t *testing.T) {
	m := startMiniredis(t)
	s := newTestStore(t, m.Addr())
	ctx := context.Background()
	// The holder's lock cannot be released while Redis fails, so it must
	// expire by itself: a short lease.
	l, _, err := s.Lock(ctx, "w", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		wl, _, err := s.Lock(wctx, "w", time.Second)
		if err == nil {
			_, err = wl.Unlock(wctx, store.Mutation{Kind: store.Put, Value: []byte("y")})
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	m.SetError("LOADING Redis is loading the dataset in memory")
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("x")}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Unlock with Redis failing: %v", err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("waiter: err = %v, want ErrUnavailable", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("local waiter still queued after the holder's Unlock failed")
	}
	m.SetError("")
	// And the session recovers by itself.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, _, err = s.Lock(wctx, "w", time.Second)
	if err != nil {
		t.Fatalf("Lock after recovery: %v", err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
}

// Hand-overs between local waiters are bounded: after maxHandoffs the lock
// is really released so another instance's waiter gets a turn.
func TestHandoffIsBounded(t *testing.T) {
	m := startMiniredis(t)
	a, b := newTestStore(t, m.Addr()), newTestStore(t, m.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const id = "hot"
	var stop sync.WaitGroup
	done := make(chan struct{})
	// Eight local clients keep a's queue non-empty.
	for range 8 {
		stop.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				l, _, err := a.Lock(ctx, id, 5*time.Second)
				if err != nil {
					return
				}
				time.Sleep(time.Millisecond)
				_, _ = l.Unlock(ctx, store.Mutation{Kind: store.Keep})
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	l, _, err := b.Lock(ctx, id, 5*time.Second)
	if err != nil {
		t.Fatalf("other instance starved: %v", err)
	}
	waited := time.Since(start)
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
	close(done)
	stop.Wait()
	if waited > 5*time.Second {
		t.Fatalf("other instance waited %v", waited)
	}
}

// Another instance's waiter gets the next turn once it has found the lock
// taken: the holder's instance stops handing the lock to its own queue, and
// its next local waiter does not win the race for the released lock (before,
// it always did, since it learns of the release first, and the other
// gateway's requests timed out while later local ones passed).
func TestOtherInstanceGetsTheNextTurn(t *testing.T) {
	m := startMiniredis(t)
	a, b := newTestStore(t, m.Addr()), newTestStore(t, m.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const id = "turns"
	l1, _, err := a.Lock(ctx, id, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	other := make(chan store.Lease, 1)
	go func() {
		l, _, err := b.Lock(ctx, id, 10*time.Second)
		if err != nil {
			l = nil // the test already failed, or times out below
		}
		other <- l
	}()
	keys, _ := a.keys(id)
	for !m.Exists(keys[2]) {
		if ctx.Err() != nil {
			t.Fatal("the other instance never claimed a turn")
		}
		time.Sleep(time.Millisecond)
	}
	// Three local clients queue behind l1, in order.
	local := make(chan store.Lease, 3)
	for i := range 3 {
		go func() {
			l, _, err := a.Lock(ctx, id, 10*time.Second)
			if err != nil {
				l = nil
			}
			local <- l
		}()
		for {
			a.mu.Lock()
			n := len(a.queues[id].waiters)
			a.mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	if _, err := l1.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
	// l1's unlock may hand over once (its reply tells of the claim); the
	// holder after it releases the lock, and the other instance gets it.
	held := <-local
	if held == nil {
		t.Fatal("a local client's Lock failed")
	}
	if _, err := held.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-other:
		if l == nil {
			t.Fatal("the other instance's Lock failed")
		}
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
			t.Fatal(err)
		}
	case <-local:
		t.Fatalf("a later local client got the lock before the other instance's waiter")
	case <-ctx.Done():
		t.Fatal("nobody got the lock")
	}
	for range 2 {
		l := <-local
		if l == nil {
			t.Fatal("a local client's Lock failed")
		}
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
			t.Fatal(err)
		}
	}
}

// Waiting does not poll: a waiter on a held lock sends only a few commands
// per second (the re-check cap), not a loop.
func TestWaitDoesNotPoll(t *testing.T) {
	m := startMiniredis(t)
	a, b := newTestStore(t, m.Addr()), newTestStore(t, m.Addr())
	ctx := context.Background()
	l, _, err := a.Lock(ctx, "p", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	before := m.CommandCount()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 { // four waiters, two per instance: only heads contend
		for _, s := range []*Store{a, b} {
			wg.Go(func() {
				if _, _, err := s.Lock(wctx, "p", time.Second); !errors.Is(err, store.ErrLockTimeout) {
					t.Errorf("waiter: %v", err)
				}
			})
		}
	}
	wg.Wait()
	n := m.CommandCount() - before
	// 2 heads x (1 + 2 re-checks) lock attempts + subscriptions + health
	// pings: well under 30. A polling loop would send hundreds.
	if n > 30 {
		t.Fatalf("%d commands during a 2 s wait", n)
	}
	t.Logf("%d commands during a 2 s wait by 8 waiters", n)
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkLockUnlockMiniredis(b *testing.B) {
	m := startMiniredis(b)
	storetest.BenchLockUnlock(b, newTestStore(b, m.Addr()))
}

func BenchmarkHotSessionMiniredis(b *testing.B) {
	m := startMiniredis(b)
	storetest.BenchHotSession(b, newTestStore(b, m.Addr()))
}

// A local hand-over gives the next holder the record as the holder's write
// leaves it, before that write has reached Redis: it must be exactly what
// Redis then holds, version included.
func TestHandOverRecordMatchesRedis(t *testing.T) {
	m := startMiniredis(t)
	s := newTestStore(t, m.Addr())
	ctx := context.Background()
	for _, first := range []bool{true, false} { // absent record, then present
		l, _, err := s.Lock(ctx, "h", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			l   store.Lease
			rec store.Record
			err error
		}
		got := make(chan result, 1)
		go func() {
			wl, rec, err := s.Lock(ctx, "h", 5*time.Second)
			got <- result{wl, rec, err}
		}()
		time.Sleep(50 * time.Millisecond)
		value := []byte(fmt.Sprintf("value first=%v", first))
		ver, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: value, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
		stored, err := s.Load(ctx, "h")
		if err != nil {
			t.Fatal(err)
		}
		if r.rec.Version != ver || stored.Version != ver || string(r.rec.Value) != string(stored.Value) {
			t.Fatalf("handed over %d %q, Unlock said %d, Redis has %d %q", r.rec.Version, r.rec.Value, ver, stored.Version, stored.Value)
		}
		if _, err := r.l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
			t.Fatal(err)
		}
	}
}

// handOverGate is a client hook that holds every hand-over unlock script
// (one with a next token) until open is closed, and reports when an unlock
// script for token watch has completed.
type handOverGate struct {
	entered chan struct{} // closed when a hand-over script reaches the hook
	open    chan struct{}
	once    sync.Once

	mu      sync.Mutex
	watch   string
	watched chan struct{} // closed when an unlock script of watch ran
}

func (g *handOverGate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *handOverGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (g *handOverGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		name := strings.ToLower(fmt.Sprint(args[0]))
		// EVAL[SHA] script 4 KEYS[1..4] ARGV[1..11]: the unlock script.
		if (name != "evalsha" && name != "eval") || len(args) != 18 {
			return next(ctx, cmd)
		}
		token, nextToken := fmt.Sprint(args[7]), fmt.Sprint(args[14])
		if nextToken != "" {
			g.once.Do(func() { close(g.entered) })
			<-g.open
			return next(ctx, cmd)
		}
		err := next(ctx, cmd)
		g.mu.Lock()
		if token == g.watch && cmd.Err() == nil {
			select {
			case <-g.watched:
			default:
				close(g.watched)
			}
		}
		g.mu.Unlock()
		return err
	}
}

// A lease whose Unlock gives up waiting for the previous holder's hand-over
// write must not free the lock before that write has re-keyed it to this
// lease's token: a release that reaches Redis first finds the old token,
// does nothing, and the hand-over then leaves the lock held by a token
// nobody will ever unlock, until the lease ends.
func TestAbandonedHandOverDoesNotStrandLock(t *testing.T) {
	m := startMiniredis(t)
	s, other := newTestStore(t, m.Addr()), newTestStore(t, m.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Loaded up front so every script call is one EVALSHA.
	if err := unlockScript.Load(ctx, s.c).Err(); err != nil {
		t.Fatal(err)
	}
	g := &handOverGate{entered: make(chan struct{}), open: make(chan struct{}), watched: make(chan struct{})}
	s.c.AddHook(g)
	defer func() {
		select {
		case <-g.open:
		default:
			close(g.open)
		}
	}()

	const id = "abandon"
	l1, _, err := s.Lock(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		l   store.Lease
		err error
	}
	granted := make(chan result, 1)
	go func() {
		l, _, err := s.Lock(ctx, id, time.Minute)
		granted <- result{l, err}
	}()
	// Wait until the second caller is queued behind l1.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if localWaiters(s, id) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second Lock never queued")
		}
		time.Sleep(time.Millisecond)
	}

	unlocked := make(chan error, 1)
	go func() {
		_, err := l1.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("x"), TTL: time.Minute})
		unlocked <- err
	}()
	var r result
	select {
	case r = <-granted:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter was not handed the lock")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the hand-over write never started")
	}
	l2 := r.l.(*lease)
	g.mu.Lock()
	g.watch = l2.token
	g.mu.Unlock()

	// The second holder gives up while l1's write is still in flight.
	gone, giveUp := context.WithCancel(ctx)
	giveUp()
	if _, err := l2.Unlock(gone, store.Mutation{Kind: store.Keep}); err == nil {
		t.Fatal("Unlock with an ended context while the previous write is pending succeeded")
	}
	// Let a release of l2's token that does not wait for l1's write reach
	// Redis first. A correct release waits for the write, so nothing comes
	// and the grace period runs out; it only bounds how long we look.
	select {
	case <-g.watched:
	case <-time.After(time.Second):
	}
	close(g.open)
	select {
	case err := <-unlocked:
		if err != nil {
			t.Fatalf("first holder's Unlock: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first holder's Unlock did not return")
	}

	// The session must be free now, not when l2's one-minute lease ends.
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	defer lcancel()
	l3, rec, err := other.Lock(lctx, id, time.Minute)
	if err != nil {
		t.Fatalf("lock stranded after an abandoned hand-over (holder %q, pttl %v): %v",
			m.HGet("test:{"+id+"}:lock", ""), m.TTL("test:{"+id+"}:lock"), err)
	}
	if string(rec.Value) != "x" {
		t.Fatalf("record = %q, want the first holder's write", rec.Value)
	}
	if _, err := l3.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
}

// A script whose reply was lost may have run: the cluster client must not
// send it again (go-redis's cluster loop retries lost connections on its
// own, whatever MaxRetries says). A second run reports a conflict for a
// Save that was applied, and a Lock that waits for its own lock.
// (miniredis answers CLUSTER SLOTS as a one-node cluster.)
func TestClusterScriptsAreNotResent(t *testing.T) {
	m := startMiniredis(t)
	h := &redisstoretest.LostReply{}
	s := openTestStore(t, "redis-cluster://"+m.Addr(), h, Options{Coalesce: true})
	ctx := context.Background()

	h.Arm()
	_, err := s.Save(ctx, "lost", 0, []byte("x"), time.Minute)
	if !errors.Is(err, store.ErrUnavailable) || h.Runs() != 1 {
		t.Fatalf("Save with its reply lost: err = %v after %d script runs, want ErrUnavailable after 1 (the write may have been applied: not a conflict)",
			err, h.Runs())
	}
	if got := m.HGet("test:{lost}", "d"); got != "x" {
		t.Fatalf("record = %q", got)
	}

	h.Arm()
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	start := time.Now()
	_, _, err = s.Lock(lctx, "lost", 30*time.Second)
	if !errors.Is(err, store.ErrUnavailable) || h.Runs() != 1 {
		t.Fatalf("Lock with its reply lost: err = %v after %v and %d script runs, want ErrUnavailable at once",
			err, time.Since(start), h.Runs())
	}
	// The lock the lost reply took is released in the background.
	lctx, cancel = context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	l, rec, err := s.Lock(lctx, "lost", 30*time.Second)
	if err != nil {
		t.Fatalf("Lock after the lost reply: %v", err)
	}
	if string(rec.Value) != "x" {
		t.Fatalf("record under the lock = %q", rec.Value)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
}

// localWaiters is how many local callers wait behind the one holding or
// contending for id's lock.
func localWaiters(s *Store, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[id]; q != nil {
		return len(q.waiters)
	}
	return 0
}

// TestRenewKeepsLocalWaiterQueued: a renewal moves the local view of the
// lease too, so a waiter of the same Store stays queued behind a live
// holder (no "kept a session lock past its lease" take-over) and gets the
// lock by in-process hand-over when the holder unlocks.
func TestRenewKeepsLocalWaiterQueued(t *testing.T) {
	m := startMiniredis(t)
	s := newTestStore(t, m.Addr())
	ctx := context.Background()
	const leaseTTL = 300 * time.Millisecond
	l, _, err := s.Lock(ctx, "renewed", leaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan store.Lease, 1)
	go func() {
		l2, _, err := s.Lock(ctx, "renewed", 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- l2
	}()
	for end := time.Now().Add(4 * leaseTTL); time.Now().Before(end); {
		time.Sleep(leaseTTL / 4)
		if err := l.Renew(ctx, leaseTTL); err != nil {
			t.Fatalf("Renew: %v", err)
		}
	}
	s.mu.Lock()
	took := s.queues["renewed"] == nil || s.queues["renewed"].gen != l.(*lease).gen
	s.mu.Unlock()
	if took {
		t.Fatal("the local waiter took the head role from a holder that renewed its lease")
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("v"), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	l2 := <-got
	if l2 == nil {
		return
	}
	if h := l2.(*lease).handoffs; h != 1 {
		t.Errorf("the waiter got the lock after %d in-process hand-overs, want 1", h)
	}
	if _, err := l2.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
}

// TestQueuesForgottenWhenCallersGiveUp: a session's in-process queue lives
// only while someone holds or wants its lock, so the store's map stays as
// large as the sessions in use, however many waiters give up. 64 callers
// on two stores take turns on six sessions with lock waits of up to 40 ms
// (most time out), some cancelled early, and every lease released with a
// Keep, Put or Delete under a deadline that may cut the write; afterwards
// neither store keeps a queue, a retried release, or a lock in Redis.
func TestQueuesForgottenWhenCallersGiveUp(t *testing.T) {
	m := startMiniredis(t)
	stores := []*Store{newTestStore(t, m.Addr()), newTestStore(t, m.Addr())}
	kinds := []store.MutationKind{store.Keep, store.Put, store.Delete}
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				n := w*31 + i*7 // spread without a shared random source
				s := stores[n%2]
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n%40)*time.Millisecond)
				if n%4 == 0 {
					time.AfterFunc(time.Duration(n%10)*time.Millisecond, cancel)
				}
				l, _, err := s.Lock(ctx, fmt.Sprintf("s%d", n%6), time.Duration(50+n%200)*time.Millisecond)
				cancel()
				if err != nil {
					continue
				}
				time.Sleep(time.Duration(n%5) * time.Millisecond)
				uctx, ucancel := context.WithTimeout(context.Background(), time.Duration(n%20)*time.Millisecond)
				l.Unlock(uctx, store.Mutation{Kind: kinds[n%3], Value: []byte(fmt.Sprint(w, i)), TTL: time.Minute})
				ucancel()
			}
		}()
	}
	wg.Wait()
	var left string
	deadline := time.Now().Add(5 * time.Second)
	for {
		left = ""
		for i, s := range stores {
			s.mu.Lock()
			for id, q := range s.queues {
				left += fmt.Sprintf(" store %d queue %s (holding %v, %d waiters);", i, id, q.holding, len(q.waiters))
			}
			if s.releasing != 0 {
				left += fmt.Sprintf(" store %d: %d releases retrying;", i, s.releasing)
			}
			s.mu.Unlock()
		}
		for _, k := range m.Keys() {
			if strings.HasSuffix(k, ":lock") {
				left += " lock " + k + ";"
			}
		}
		if left == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if left != "" {
		t.Errorf("5 s after every caller returned:%s", left)
	}
}

// TestOwnLostReleaseDoesNotBlock: a failover can lose a release Redis
// acknowledged (replication is asynchronous), and the promoted replica
// then holds the session's lock with the token of a lease this gateway
// already ended. Nobody would release it: every request of the session,
// on every gateway, waited for the rest of the lease (60 s by default) and
// got 503 after SESSIONGATE_SESSION_LOCK_TIMEOUT. The gateway that issued
// the token knows that no lease of its own holds the session while it
// contends, so it takes the lock back at once. Another gateway's token
// still counts as held.
func TestOwnLostReleaseDoesNotBlock(t *testing.T) {
	m := startMiniredis(t)
	s, other := newTestStore(t, m.Addr()), newTestStore(t, m.Addr())
	ctx := context.Background()
	const id = "lostrelease"
	keys, _ := s.keys(id)

	l, _, err := s.Lock(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	stale := l.(*lease).token
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("v1"), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// What the promoted replica holds: the lock of the released lease.
	m.Set(keys[1], stale)
	m.SetTTL(keys[1], time.Minute)

	octx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, _, err := other.Lock(octx, id, time.Minute); !errors.Is(err, store.ErrLockTimeout) {
		t.Fatalf("another gateway took a lock this one's token holds: %v", err)
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	l2, rec, err := s.Lock(lctx, id, time.Minute)
	if err != nil {
		t.Fatalf("the gateway whose released token holds the lock waits for it: %v", err)
	}
	if string(rec.Value) != "v1" {
		t.Errorf("record %q, want v1", rec.Value)
	}
	if _, err := l2.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
		t.Fatal(err)
	}
}

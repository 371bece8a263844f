package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// holdHook holds the first script call whose last argument is hold (sent
// alone, through Process) until release is closed, and records the
// script calls of every pipeline as "name:lastarg".
type holdHook struct {
	hold    string
	held    chan struct{}
	release chan struct{}

	mu    sync.Mutex
	once  bool
	pipes [][]string
	// holdPipes, when set, holds every pipeline until it is closed.
	holdPipes chan struct{}
	pipeHeld  chan struct{}
}

func newHoldHook(hold string) *holdHook {
	return &holdHook{hold: hold, held: make(chan struct{}), release: make(chan struct{}), pipeHeld: make(chan struct{}, 16)}
}

// holdFirst runs the script call the hook holds (its last argument
// h.hold, on key) through sc and returns once it is held on the wire, so
// that calls made next queue behind it; release lets it go on and fails
// the test if it failed.
func (h *holdHook) holdFirst(t *testing.T, sc redis.Scripter, key string) (release func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- incrScript.Run(context.Background(), sc, []string{key}, h.hold).Err() }()
	<-h.held
	return func() {
		t.Helper()
		close(h.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func lastArg(cmd redis.Cmder) string {
	a := cmd.Args()
	return fmt.Sprint(a[len(a)-1])
}

func (h *holdHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *holdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if strings.HasPrefix(cmd.Name(), "eval") && lastArg(cmd) == h.hold {
			h.mu.Lock()
			first := !h.once
			h.once = true
			h.mu.Unlock()
			if first {
				close(h.held)
				<-h.release
			}
		}
		return next(ctx, cmd)
	}
}

func (h *holdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var names []string
		for _, c := range cmds {
			if strings.HasPrefix(c.Name(), "eval") {
				names = append(names, c.Name()+":"+lastArg(c))
			}
		}
		if names == nil {
			return next(ctx, cmds) // a new connection's set-up
		}
		h.mu.Lock()
		h.pipes = append(h.pipes, names)
		hp := h.holdPipes
		h.mu.Unlock()
		if hp != nil {
			h.pipeHeld <- struct{}{}
			<-hp
		}
		return next(ctx, cmds)
	}
}

func (h *holdHook) pipelines() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]string(nil), h.pipes...)
}

// waitQueued waits until n calls wait in b's queue.
func waitQueued(t *testing.T, b *batcher, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		got := len(b.q)
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func newTestCoalescer(t *testing.T, addr string, hook redis.Hook) (*coalescer, redis.UniversalClient) {
	return newTestCoalescerURL(t, "redis://"+addr+"/0", hook)
}

func newTestCoalescerURL(t *testing.T, url string, hook redis.Hook) (*coalescer, redis.UniversalClient) {
	t.Helper()
	c, err := OpenClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		c.AddHook(hook)
	}
	co := newCoalescer(c)
	t.Cleanup(func() {
		co.close()
		_ = c.Close()
	})
	return co, c
}

// incrScript counts its runs in KEYS[1] and returns ARGV[1], so each
// caller can tell its own reply.
var incrScript = redis.NewScript(`redis.call('INCR', KEYS[1]) return ARGV[1]`)

// runConcurrently starts n calls of incrScript through co with arguments
// prefix0..prefix(n-1) and returns a function that waits for them and
// returns their replies and errors.
func runConcurrently(co *coalescer, ctxs []context.Context, key, prefix string) func() ([]string, []error) {
	n := len(ctxs)
	replies := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			replies[i], errs[i] = incrScript.Run(ctxs[i], co, []string{key}, fmt.Sprint(prefix, i)).Text()
		})
	}
	return func() ([]string, []error) {
		wg.Wait()
		return replies, errs
	}
}

// wantOwnReplies waits for the calls runConcurrently started with prefix
// and checks that each got its own reply (the script echoes its last
// argument) and no error.
func wantOwnReplies(t *testing.T, wait func() ([]string, []error), prefix string) {
	t.Helper()
	replies, errs := wait()
	for i := range replies {
		if errs[i] != nil || replies[i] != fmt.Sprint(prefix, i) {
			t.Errorf("call %d: reply %q, error %v", i, replies[i], errs[i])
		}
	}
}

func contexts(n int) []context.Context {
	ctxs := make([]context.Context, n)
	for i := range ctxs {
		ctxs[i] = context.Background()
	}
	return ctxs
}

// Calls that queue while a call is in flight go out together, as one
// pipeline, when it is done, and each caller gets its own reply.
func TestCoalescerBatchesQueuedCalls(t *testing.T) {
	m := startMiniredis(t)
	h := newHoldHook("first")
	co, c := newTestCoalescer(t, m.Addr(), h)
	ctx := context.Background()
	if err := incrScript.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}

	release := h.holdFirst(t, co, "n")
	const n = 8
	wait := runConcurrently(co, contexts(n), "n", "c")
	waitQueued(t, co.one, n)
	release()

	wantOwnReplies(t, wait, "c")
	pipes := h.pipelines()
	if len(pipes) != 1 || len(pipes[0]) != n {
		t.Fatalf("pipelines sent: %v, want one of the %d queued calls", pipes, n)
	}
	if got, _ := m.Get("n"); got != fmt.Sprint(n+1) {
		t.Fatalf("scripts ran %s times, want %d", got, n+1)
	}
}

// Redis without the script (restarted, failed over, SCRIPT FLUSH)
// answers every EVALSHA of a batch with NOSCRIPT; each call then runs its
// script with EVAL, and every caller gets its reply.
func TestCoalescerNoScriptFallsBackToEval(t *testing.T) {
	m := startMiniredis(t)
	h := newHoldHook("first")
	co, _ := newTestCoalescer(t, m.Addr(), h)

	release := h.holdFirst(t, co, "n")
	const n = 6
	wait := runConcurrently(co, contexts(n), "n", "c")
	waitQueued(t, co.one, n)
	release()

	wantOwnReplies(t, wait, "c")
	evalsha := 0
	for _, p := range h.pipelines() {
		for _, name := range p {
			if strings.HasPrefix(name, "evalsha:") {
				evalsha++
			}
		}
	}
	if evalsha != n {
		t.Fatalf("pipelines %v: %d EVALSHA, want the %d queued calls in a batch", h.pipelines(), evalsha, n)
	}
	if got, _ := m.Get("n"); got != fmt.Sprint(n+1) {
		t.Fatalf("scripts ran %s times, want %d (once each)", got, n+1)
	}
}

// cutProxy forwards connections to a Redis server and, once armed, cuts
// the connection that carries marker after passing it on: the commands run
// and their replies are lost, as when the connection dies mid-batch.
type cutProxy struct {
	ln     net.Listener
	target string
	marker []byte

	mu    sync.Mutex
	armed bool
	cut   chan struct{}
}

func startCutProxy(t *testing.T, target, marker string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, marker: []byte(marker), cut: make(chan struct{})}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			cc, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(cc)
		}
	}()
	return p
}

func (p *cutProxy) arm() {
	p.mu.Lock()
	p.armed = true
	p.mu.Unlock()
}

func (p *cutProxy) serve(cc net.Conn) {
	defer cc.Close()
	sc, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer sc.Close()
	go func() { _, _ = io.Copy(cc, sc) }()
	buf := make([]byte, 64<<10)
	for {
		n, err := cc.Read(buf)
		if n > 0 {
			p.mu.Lock()
			cut := p.armed && bytes.Contains(buf[:n], p.marker)
			if cut {
				p.armed = false
			}
			p.mu.Unlock()
			if cut {
				// Close the client side first: the replies must not reach it.
				_ = cc.Close()
				_, _ = sc.Write(buf[:n])
				close(p.cut)
				time.Sleep(100 * time.Millisecond) // let the server run them
				return
			}
			if _, err := sc.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A connection that dies while a batch is in flight fails every call in
// the batch with an error (the store treats it as a lost reply), and no
// call is sent again, even with retries asked for in the URL: a script
// that ran must not run twice.
func TestCoalescerBrokenConnectionFailsWholeBatch(t *testing.T) {
	m := startMiniredis(t)
	p := startCutProxy(t, m.Addr(), "cut-me")
	h := newHoldHook("first")
	co, c := newTestCoalescerURL(t, "redis://"+p.ln.Addr().String()+"/0?max_retries=3", h)
	ctx := context.Background()
	if err := incrScript.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}

	release := h.holdFirst(t, co, "n")
	const n = 5
	wait := runConcurrently(co, contexts(n), "n", "cut-me")
	waitQueued(t, co.one, n)
	p.arm()
	release()

	_, errs := wait()
	for i, err := range errs {
		var refused redis.Error
		if err == nil || errors.As(err, &refused) {
			t.Errorf("call %d in the broken batch: error %v, want a connection error", i, err)
		}
	}
	<-p.cut
	time.Sleep(150 * time.Millisecond)
	got, _ := m.Get("n")
	if got != fmt.Sprint(n+1) {
		t.Fatalf("scripts ran %s times, want %d: each call of the batch once, none sent again", got, n+1)
	}
	// The store goes on with a new connection.
	if err := incrScript.Run(ctx, co, []string{"n"}, "after").Err(); err != nil {
		t.Fatalf("a call after the broken batch: %v", err)
	}
}

// A caller whose context ends while its call is queued returns at once
// with the context's error, and its call is never sent.
func TestCoalescerQueuedCallerGivesUp(t *testing.T) {
	m := startMiniredis(t)
	h := newHoldHook("first")
	co, _ := newTestCoalescer(t, m.Addr(), h)
	ctx := context.Background()

	release := h.holdFirst(t, co, "first")
	gctx, cancel := context.WithCancel(ctx)
	ctxs := []context.Context{gctx, ctx}
	gone := make(chan error, 1)
	go func() { gone <- incrScript.Run(gctx, co, []string{"gone"}, "gone").Err() }()
	waitQueued(t, co.one, 1)
	wait := runConcurrently(co, ctxs[1:], "stays", "stays")
	waitQueued(t, co.one, 2)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up got %v, want context.Canceled", err)
	}
	waitQueued(t, co.one, 1)
	release()
	if _, errs := wait(); errs[0] != nil {
		t.Fatalf("the caller that stayed: %v", errs[0])
	}
	if m.Exists("gone") {
		t.Fatal("the script of a caller that gave up while queued ran")
	}
}

// A caller whose context ends while its batch is in flight returns at
// once; the others of the batch get their replies.
func TestCoalescerCallerInFlightGivesUp(t *testing.T) {
	m := startMiniredis(t)
	h := newHoldHook("first")
	co, c := newTestCoalescer(t, m.Addr(), h)
	ctx := context.Background()
	if err := incrScript.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	holdPipes := make(chan struct{})
	h.mu.Lock()
	h.holdPipes = holdPipes
	h.mu.Unlock()

	release := h.holdFirst(t, co, "n")
	// The caller that gives up has a deadline and the others none, so
	// one of them leads the batch (the leader waits for the batch, as a
	// caller whose command is on the wire does).
	dctx, dcancel := context.WithTimeout(ctx, time.Minute)
	defer dcancel()
	gctx, cancel := context.WithCancel(dctx)
	defer cancel()
	gone := make(chan error, 1)
	go func() { gone <- incrScript.Run(gctx, co, []string{"n"}, "gone").Err() }()
	waitQueued(t, co.one, 1)
	wait := runConcurrently(co, contexts(3), "n", "c")
	waitQueued(t, co.one, 4)
	release()
	<-h.pipeHeld
	cancel()
	select {
	case err := <-gone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the caller that gave up got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the caller that gave up still waits for its batch")
	}
	close(holdPipes)
	wantOwnReplies(t, wait, "c")
	if got, _ := m.Get("n"); got != "5" {
		t.Fatalf("scripts ran %s times, want 5 (the call given up on was in the batch)", got)
	}
}

// A caller chosen to send the next batch that gives up before sending it
// still has it sent, in the background, for the others; Close waits for
// that.
func TestCoalescerLeaderGivesUp(t *testing.T) {
	m := startMiniredis(t)
	co, c := newTestCoalescer(t, m.Addr(), nil)
	ctx := context.Background()
	if err := incrScript.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	b := co.one
	gctx, cancel := context.WithCancel(ctx)
	cancel()
	cmd := func(arg string) *redis.Cmd {
		cmd := redis.NewCmd(ctx, "evalsha", incrScript.Hash(), 1, "n", arg)
		cmd.SetFirstKeyPos(3)
		return cmd
	}
	leader := &call{ctx: gctx, cmd: cmd("leader"), state: callLeads, wake: make(chan bool, 1)}
	other := &call{ctx: ctx, cmd: cmd("other"), state: callTaken, wake: make(chan bool, 1)}
	leader.batch = []*call{leader, other}
	b.busy = true
	if err := b.giveUp(leader).Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("the leader that gave up got %v, want context.Canceled", err)
	}
	select {
	case lead := <-other.wake:
		if lead {
			t.Fatal("the other call was told to lead")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the batch of a leader that gave up was not sent")
	}
	if got, err := other.cmd.Text(); err != nil || got != "other" {
		t.Fatalf("the other call: reply %q, error %v", got, err)
	}
	co.close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.busy {
		t.Fatal("the batcher is still busy after its last batch")
	}
}

// BenchmarkScriptAlone is one script call at a time (a hot session's
// requests): through the coalescer it goes alone, as through noRetry, so
// the two should cost the same.
func BenchmarkScriptAlone(b *testing.B) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	c, err := OpenClient("redis://" + m.Addr() + "/0")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := incrScript.Load(ctx, c).Err(); err != nil {
		b.Fatal(err)
	}
	co := newCoalescer(c)
	for _, bc := range []struct {
		name string
		s    redis.Scripter
	}{{"noRetry", noRetry{c}}, {"coalescer", co}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := incrScript.Run(ctx, bc.s, []string{"n"}, "x").Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// panicHook panics in the first pipeline it sees.
type panicHook struct{ once sync.Once }

func (h *panicHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *panicHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *panicHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if strings.HasPrefix(cmds[0].Name(), "eval") {
			h.once.Do(func() { panic("hook panic") })
		}
		return next(ctx, cmds)
	}
}

// A batch whose sending panics fails every call in it (the panic goes on
// in its sender), and the calls after it are still sent: the queue must
// not stay stuck behind it.
func TestCoalescerPanicFailsBatchAndGoesOn(t *testing.T) {
	m := startMiniredis(t)
	h := newHoldHook("first")
	co, c := newTestCoalescer(t, m.Addr(), nil)
	c.AddHook(h)
	c.AddHook(&panicHook{})
	ctx := context.Background()
	if err := incrScript.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	release := h.holdFirst(t, co, "n")
	const n = 4
	errs := make([]error, n)
	panics := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					panics[i] = true
				}
			}()
			errs[i] = incrScript.Run(ctx, co, []string{"n"}, fmt.Sprint("c", i)).Err()
		})
	}
	waitQueued(t, co.one, n)
	release()
	wg.Wait()
	senders := 0
	for i := range n {
		switch {
		case panics[i]:
			senders++
		case errs[i] == nil || !strings.Contains(errs[i].Error(), "panicked"):
			t.Errorf("call %d of the batch that panicked: error %v", i, errs[i])
		}
	}
	if senders != 1 {
		t.Fatalf("%d callers saw the panic, want its sender only", senders)
	}
	if err := incrScript.Run(ctx, co, []string{"n"}, "after").Err(); err != nil {
		t.Fatalf("a call after the batch that panicked: %v", err)
	}
}

// Without Coalesce a script call does not wait for another in flight: a
// Redis across a network would make it wait a round trip.
func TestStoreWithoutCoalesceSendsAlone(t *testing.T) {
	m := startMiniredis(t)
	h := newHoldHook("first")
	s := openTestStore(t, "redis://"+m.Addr()+"/0", h, Options{})
	ctx := context.Background()
	release := h.holdFirst(t, s.scripts, "n")
	second := make(chan error, 1)
	go func() { second <- incrScript.Run(ctx, s.scripts, []string{"n"}, "second").Err() }()
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a script call waited for another in flight without Coalesce")
	}
	release()
}

func TestOnLoopback(t *testing.T) {
	for url, want := range map[string]bool{
		"redis://127.0.0.1:6379/0":                           true,
		"redis://localhost/0":                                true,
		"redis://[::1]:6380":                                 true,
		"rediss://:pw@127.0.0.2:6380/1":                      true,
		"unix:///run/redis/redis.sock?db=1":                  true,
		"redis-cluster://127.0.0.1:7000,127.0.0.1:7001":      true,
		"redis-cluster://127.0.0.1:7000,10.0.0.2:7001":       false,
		"redis-sentinel://localhost:26379/0?master=mymaster": true,
		"redis-sentinel://10.0.0.1:26379/0?master=mymaster":  false,
		"redis://redis.example.com:6379/0":                   false,
		"redis://10.1.2.3/0":                                 false,
		"nonsense":                                           false,
	} {
		if got := OnLoopback(url); got != want {
			t.Errorf("OnLoopback(%q) = %v, want %v", url, got, want)
		}
	}
}

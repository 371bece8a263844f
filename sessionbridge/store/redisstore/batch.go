package redisstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// coalescer runs the store's scripts (lock, unlock, save, renew) like
// noRetry, but sends the calls of concurrent requests that queue while a
// batch is in flight together, as one pipeline on one connection, when that
// batch is done. Each round trip to Redis costs the gateway a write, a
// failed read, a park and a wake-up, and Redis a read and a write: on the
// sessions bench (32 connections, distinct sessions) coalescing took
// 14-19% off the CPU the gateway and redis-server spend per request
// (docs/design.md). It never waits for more calls to come: a call that
// finds no batch in flight is sent at once, on its caller's goroutine and
// with its caller's context, exactly as noRetry sends it, so a lone request
// (and the one-at-a-time requests of a hot session) pays nothing. A call
// that queues waits for the batch in flight, though: with Redis across a
// network that round trip costs more than the CPU saved, hence
// Options.Coalesce.
//
// No goroutine of its own: the caller of the first call of a batch sends
// it; when the batch is done it hands the calls queued meanwhile to one of
// them, which sends them as the next batch. That one is the call with the
// latest deadline (or none), and the batch runs under that deadline, so no
// caller waits past its own deadline and none has its call cut short by
// another's. A caller whose context ends while it waits returns at once
// with the context's error, as a call cut off by its deadline does today:
// its call is not sent if it was still queued, and its outcome is unknown
// if it was already in a batch (the store then treats it as a lost reply).
//
// A batch is sent once (every call in it is a noRetryCmd, and go-redis
// retries no pipeline holding one that may have run): a broken connection
// fails every call in the batch. Cluster redirections (MOVED, ASK) are
// followed per command by go-redis's cluster pipeline, and a slot being
// migrated is waited out per call as noRetry does. On a Cluster each master
// has its own queue, so a master that stops answering holds up only the
// calls for its own slots.
type coalescer struct {
	c  redis.UniversalClient
	cc *redis.ClusterClient // nil unless c is a cluster client

	mu      sync.Mutex
	one     *batcher            // standalone and Sentinel
	masters map[string]*batcher // cluster: by master address
	// running counts the batches sent on goroutines of their own (their
	// leader gave up, see batcher.wait); Close waits for them.
	running int
	idle    *sync.Cond
}

func newCoalescer(c redis.UniversalClient) *coalescer {
	co := &coalescer{c: c}
	co.idle = sync.NewCond(&co.mu)
	co.cc, _ = c.(*redis.ClusterClient)
	if co.cc == nil {
		co.one = &batcher{co: co}
	} else {
		co.masters = make(map[string]*batcher)
	}
	return co
}

var _ redis.Scripter = (*coalescer)(nil)

func (co *coalescer) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return co.eval(ctx, "eval", script, keys, args)
}

func (co *coalescer) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return co.eval(ctx, "evalsha", sha1, keys, args)
}

// The rest of redis.Scripter, which the store does not call, goes
// straight to the client.

func (co *coalescer) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return co.c.EvalRO(ctx, script, keys, args...)
}

func (co *coalescer) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return co.c.EvalShaRO(ctx, sha1, keys, args...)
}

func (co *coalescer) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return co.c.ScriptExists(ctx, hashes...)
}

func (co *coalescer) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return co.c.ScriptLoad(ctx, script)
}

func (co *coalescer) eval(ctx context.Context, name, script string, keys []string, args []any) *redis.Cmd {
	b := co.batcherFor(ctx, keys)
	if b == nil {
		return noRetry{co.c}.eval(ctx, name, script, keys, args)
	}
	return evalLoop(ctx, name, script, keys, args, b.do)
}

// batcherFor is the queue for a script on keys: on a Cluster, that of the
// master of the first key's slot as the client knows it now (a call that
// meets a redirection is still sent where the redirection says). nil when
// the client does not know the master: the call goes alone, as without
// coalescing, and fails or finds it as it did.
func (co *coalescer) batcherFor(ctx context.Context, keys []string) *batcher {
	if co.cc == nil {
		return co.one
	}
	if len(keys) == 0 {
		return nil
	}
	m, err := co.cc.MasterForKey(ctx, keys[0])
	if err != nil {
		return nil
	}
	addr := m.Options().Addr
	co.mu.Lock()
	defer co.mu.Unlock()
	b := co.masters[addr]
	if b == nil {
		b = &batcher{co: co}
		co.masters[addr] = b
	}
	return b
}

// close waits for the batches sent on goroutines of their own.
func (co *coalescer) close() {
	co.mu.Lock()
	for co.running > 0 {
		co.idle.Wait()
	}
	co.mu.Unlock()
}

// batcher is one queue of calls and at most one batch in flight.
type batcher struct {
	co *coalescer

	mu sync.Mutex
	q  []*call
	// busy: a batch is in flight; its leader sends q when it is done.
	busy bool
}

type callState int

const (
	callQueued callState = iota
	callTaken            // in a batch
	callLeads            // in a batch, which it is to send
)

// call is one script call. state, batch and leader are guarded by the
// batcher's mu.
type call struct {
	ctx   context.Context
	cmd   *redis.Cmd
	state callState
	batch []*call // the batch it leads
	// wake carries one message: true to lead batch, false when cmd has
	// its reply.
	wake chan bool
}

// do sends cmd, alone or in a batch, and returns it with its reply, or a
// new command with the context's error when ctx ended first.
func (b *batcher) do(ctx context.Context, cmd *redis.Cmd) *redis.Cmd {
	c := &call{ctx: ctx, cmd: cmd}
	b.mu.Lock()
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
		b.lead(c, []*call{c})
		return cmd
	}
	c.wake = make(chan bool, 1)
	b.q = append(b.q, c)
	b.mu.Unlock()
	select {
	case lead := <-c.wake:
		if lead {
			b.lead(c, c.batch)
		}
		return cmd
	case <-ctx.Done():
		return b.giveUp(c)
	}
}

// giveUp is do for a caller whose context ended while its call waited.
func (b *batcher) giveUp(c *call) *redis.Cmd {
	b.mu.Lock()
	switch c.state {
	case callQueued:
		// Not sent: nobody else knows of it.
		if i := slices.Index(b.q, c); i >= 0 {
			b.q = slices.Delete(b.q, i, i+1)
		}
	case callLeads:
		// The others in its batch wait for it to be sent.
		b.co.mu.Lock()
		b.co.running++
		b.co.mu.Unlock()
		go func() {
			defer b.co.done()
			b.lead(c, c.batch)
		}()
	case callTaken:
		select {
		case <-c.wake:
			b.mu.Unlock()
			return c.cmd // the reply came as the context ended
		default:
		}
	}
	b.mu.Unlock()
	// A command of its own: the batch may still write c.cmd.
	gone := redis.NewCmd(c.ctx, c.cmd.Args()...)
	gone.SetErr(c.ctx.Err())
	return gone
}

func (co *coalescer) done() {
	co.mu.Lock()
	co.running--
	if co.running == 0 {
		co.idle.Broadcast()
	}
	co.mu.Unlock()
}

// lead sends batch (which self, the caller, leads), hands the calls queued
// meanwhile on to their own leader, and wakes the others of batch. A panic
// in go-redis (or a hook) fails the batch and still hands the queue on:
// left busy, the batcher would never send another call.
func (b *batcher) lead(self *call, batch []*call) {
	defer func() {
		if p := recover(); p != nil {
			for _, c := range batch {
				c.cmd.SetErr(fmt.Errorf("redisstore: sending a script batch panicked: %v", p))
			}
			b.handOff(self, batch)
			panic(p)
		}
	}()
	b.send(self, batch)
	b.handOff(self, batch)
}

// handOff is lead once batch is done.
func (b *batcher) handOff(self *call, batch []*call) {
	b.mu.Lock()
	next := b.q
	b.q = nil
	var leader *call
	if len(next) == 0 {
		b.busy = false
	} else {
		for _, c := range next {
			c.state = callTaken
			if leader == nil || later(c.ctx, leader.ctx) {
				leader = c
			}
		}
		leader.state = callLeads
		leader.batch = next
	}
	b.mu.Unlock()
	if leader != nil {
		leader.wake <- true
	}
	for _, c := range batch {
		if c != self {
			c.wake <- false
		}
	}
}

// later reports whether a's deadline is after b's (none is the latest).
func later(a, b context.Context) bool {
	da, okA := a.Deadline()
	db, okB := b.Deadline()
	if !okB {
		return false
	}
	return !okA || da.After(db)
}

// send runs batch: a lone call as noRetry does, under its caller's
// context; several as one pipeline under the leader's deadline, but not
// its cancellation (a request that ends must not cut the others' calls
// off).
func (b *batcher) send(self *call, batch []*call) {
	if len(batch) == 1 {
		_ = b.co.c.Process(batch[0].ctx, noRetryCmd{batch[0].cmd})
		return
	}
	ctx := context.WithoutCancel(self.ctx)
	if d, ok := self.ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	p := b.co.c.Pipeline()
	for _, c := range batch {
		_ = p.Process(ctx, noRetryCmd{c.cmd})
	}
	_, _ = p.Exec(ctx)
}

// evalLoop runs EVAL or EVALSHA through process, waiting out a Cluster
// slot migration within ctx.
func evalLoop(ctx context.Context, name, script string, keys []string, args []any, process func(context.Context, *redis.Cmd) *redis.Cmd) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, script, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	for {
		cmd := redis.NewCmd(ctx, a...)
		if len(keys) > 0 {
			cmd.SetFirstKeyPos(3)
		}
		cmd = process(ctx, cmd)
		if !slotMoving(cmd.Err()) {
			return cmd
		}
		// The slot is moving between Cluster masters and the keys are on
		// both sides for now: the script did not run. Wait the move out
		// within the caller's deadline (a lock, a save, a release alike)
		// instead of failing the request with 503.
		t := time.NewTimer(slotMoveWait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return cmd
		}
	}
}

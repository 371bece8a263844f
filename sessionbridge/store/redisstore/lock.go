package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// queue is the in-process state of one session's lock on this Store. It
// exists while some local caller holds the lock or wants it. Exactly one of
// them is the head: it holds the Redis lock (holding) or contends for it;
// the others wait in waiters, in arrival order, and never talk to Redis.
// All fields are guarded by Store.mu.
type queue struct {
	waiters []*waiter
	// gen identifies the current head. A lease or contender whose gen is
	// no longer current lost the head role (its lease ran out and the
	// first waiter took over) and must not touch the queue.
	gen     uint64
	holding bool
	// expires is when the holding head's lease runs out, measured from
	// before the Lock request was sent, so it is never later than Redis's.
	expires time.Time
	// notify receives a token when an unlock notice for this session
	// arrives (or after a resubscription); only the contending head reads.
	notify chan struct{}
	// turn is another instance's claim to the next turn as the last
	// hand-over's unlock reply found it: when its contender asked for the
	// lock (unix ms; 1 for a claim that does not say, which counts as
	// oldest), 0 for none. The next unlock hands the lock to the first
	// local waiter only if that waiter asked earlier (turnAllows), and
	// otherwise releases it in Redis for the claimant.
	turn int64
	// holder is the lease of this instance that holds the lock, while
	// holding: a Save of this instance under it updates the record it
	// hands over (savedUnderLock).
	holder *lease
}

type waiterState int

const (
	queued  waiterState = iota
	granted             // lease and rec are set (the holder's write may still be in flight: lease.prev)
	contend             // the waiter is now head and must contend in Redis
	failed              // the head found Redis not answering: err is the waiter's
)

type waiter struct {
	wake     chan struct{} // cap 1: "look at state again"
	state    waiterState
	leaseTTL time.Duration
	since    time.Time // when Lock was called: its age in the turn order
	gen      uint64    // head generation, once promoted
	lease    *lease
	rec      store.Record
	err      error // failed
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Lock implements store.Store.
func (s *Store) Lock(ctx context.Context, id string, leaseTTL time.Duration) (store.Lease, store.Record, error) {
	keys, err := s.keys(id)
	if err != nil {
		return nil, store.Record{}, err
	}
	if leaseTTL <= 0 {
		return nil, store.Record{}, errors.New("redisstore: lock lease TTL must be positive")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, store.Record{}, errClosed
	}
	since := time.Now()
	q := s.queues[id]
	if q == nil {
		q = &queue{gen: 1, notify: make(chan struct{}, 1)}
		s.queues[id] = q
		s.mu.Unlock()
		return s.contend(ctx, id, keys, q, q.gen, leaseTTL, since)
	}
	w := &waiter{wake: make(chan struct{}, 1), leaseTTL: leaseTTL, since: since}
	q.waiters = append(q.waiters, w)
	s.mu.Unlock()
	return s.waitLocal(ctx, id, keys, q, w)
}

// ctxEnded reports whether ctx is over, including the instant its deadline
// passed but Done is not closed yet: with ContextTimeoutEnabled a network
// deadline taken from ctx can fire first, and that is the caller's timeout,
// not Redis failing.
func ctxEnded(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func lockTimeout(ctx context.Context) error {
	if ctx.Err() == nil {
		return fmt.Errorf("%w: %w", store.ErrLockTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("%w: %w", store.ErrLockTimeout, context.Cause(ctx))
}

// waitLocal parks a waiter behind the local head until it is handed the
// lease, promoted to contend in Redis, or gives up. The first waiter also
// watches the holding head's lease: when it runs out (a holder that hangs or
// forgot to unlock) the waiter takes over the head role.
func (s *Store) waitLocal(ctx context.Context, id string, keys []string, q *queue, w *waiter) (store.Lease, store.Record, error) {
	for {
		s.mu.Lock()
		switch w.state {
		case granted:
			s.mu.Unlock()
			return w.lease, w.rec, nil
		case contend:
			gen := w.gen
			s.mu.Unlock()
			return s.contend(ctx, id, keys, q, gen, w.leaseTTL, w.since)
		case failed:
			s.mu.Unlock()
			return nil, store.Record{}, w.err
		}
		var timeout <-chan time.Time
		var timer *time.Timer
		if w.state == queued && len(q.waiters) > 0 && q.waiters[0] == w && q.holding {
			d := time.Until(q.expires)
			if d <= 0 {
				// The holder's lease is over: become head and contend.
				// Redis may still hold the lock a little longer (our
				// clock starts earlier), contend waits for that.
				q.waiters = q.waiters[1:]
				q.gen++
				q.holding = false
				gen := q.gen
				s.mu.Unlock()
				s.log.Warn("a local holder kept a session lock past its lease; the next waiter takes over")
				return s.contend(ctx, id, keys, q, gen, w.leaseTTL, w.since)
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		s.mu.Unlock()
		select {
		case <-w.wake:
		case <-timeout:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() == nil {
			continue
		}
		// Giving up.
		s.mu.Lock()
		if w.state == failed {
			s.mu.Unlock()
			return nil, store.Record{}, w.err
		}
		if w.state == queued {
			first := len(q.waiters) > 0 && q.waiters[0] == w
			removeWaiter(q, w)
			if first && len(q.waiters) > 0 {
				signal(q.waiters[0].wake) // the new first waiter watches the lease
			}
			s.mu.Unlock()
			return nil, store.Record{}, lockTimeout(ctx)
		}
		// Granted or promoted while giving up: the lock, or the head
		// role, is passed on rather than stranded.
		st, gen, l := w.state, w.gen, w.lease
		s.mu.Unlock()
		if st == granted {
			s.releaseAbandoned(ctx, l)
		} else {
			// contend: pass the head role on. The contender that promoted
			// us may have left this instance's claim to the next turn for
			// us to keep; if nobody is left to keep it, hand it back.
			s.giveUpHead(id, keys, q, gen)
		}
		return nil, store.Record{}, lockTimeout(ctx)
	}
}

func removeWaiter(q *queue, w *waiter) {
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return
		}
	}
}

// releaseAbandoned unlocks a lease its caller no longer wants (the caller
// gave up while it was being handed over), detached from the caller's
// ended context.
func (s *Store) releaseAbandoned(ctx context.Context, l *lease) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if _, err := l.Unlock(rctx, store.Mutation{Kind: store.Keep}); err != nil && !errors.Is(err, store.ErrLeaseLost) {
		s.log.Warn("releasing an abandoned session lock failed; it expires with its lease", "error", err)
	}
}

// headDone ends the head role of generation gen: the next local waiter
// becomes head and contends, or the queue is forgotten.
func (s *Store) headDone(id string, q *queue, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.promoteLocked(id, q, gen)
}

// stalled reports whether err is Redis not answering in time (a read or
// write timeout, no free connection in the pool), not an error reply or a
// broken connection: a next call now would wait as long.
func stalled(err error) bool {
	var ne net.Error
	return errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// headFailed ends the head role of generation gen after Redis failed it
// with err. When Redis did not answer in time, the local waiters fail with
// it at once: each taking the head's place in turn would wait as long
// again, and the last of a hot session's requests would get its 503 only
// after as many timeouts as there are requests before it, or wait out the
// whole stall. After any other failure the next waiter tries (headDone).
func (s *Store) headFailed(id string, q *queue, gen uint64, err error) {
	if !stalled(err) {
		s.headDone(id, q, gen)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues[id] != q || q.gen != gen {
		return // a stale head: someone else already leads
	}
	werr := fmt.Errorf("%w: redis lock: not tried, the request before this one in the session's queue found Redis not answering: %w", store.ErrUnavailable, err)
	for _, w := range q.waiters {
		w.state, w.err = failed, werr
		signal(w.wake)
	}
	q.waiters = nil
	q.holding = false
	delete(s.queues, id)
}

func (s *Store) promoteLocked(id string, q *queue, gen uint64) {
	if s.queues[id] != q || q.gen != gen {
		return // a stale head: someone else already leads
	}
	q.holding = false
	if len(q.waiters) == 0 {
		delete(s.queues, id)
		return
	}
	w := q.waiters[0]
	q.waiters = q.waiters[1:]
	q.gen++
	w.gen = q.gen
	w.state = contend
	signal(w.wake)
}

// contend is the head's loop in Redis: try the lock; on failure sleep until
// an unlock notice for this session, the holder's lock TTL, maxWait, or the
// caller's deadline, whichever comes first. since is when the caller asked
// for the lock: an older caller takes the claim to the next turn over from
// a younger one on another instance (lockScript).
func (s *Store) contend(ctx context.Context, id string, keys []string, q *queue, gen uint64, leaseTTL time.Duration, since time.Time) (store.Lease, store.Record, error) {
	if err := s.subscribe(ctx); err != nil {
		if ctxEnded(ctx) {
			s.giveUpHead(id, keys, q, gen)
			return nil, store.Record{}, lockTimeout(ctx)
		}
		s.headFailed(id, q, gen, err)
		return nil, store.Record{}, err
	}
	// Drop a notice meant for an earlier head.
	select {
	case <-q.notify:
	default:
	}
	for {
		if ctx.Err() != nil {
			s.giveUpHead(id, keys, q, gen)
			return nil, store.Record{}, lockTimeout(ctx)
		}
		token := s.newToken()
		start := time.Now()
		res, err := lockScript.Run(ctx, s.scripts, keys, token, ms(leaseTTL), s.tokenPrefix, ms(turnTTL), s.channel, id, since.UnixMilli()).Slice()
		if err != nil {
			// The script may have run and the reply been lost: release
			// the lock if this token holds it.
			if !notSent(err) {
				s.releaseToken(id, keys, token, leaseTTL, nil)
			}
			if ctxEnded(ctx) {
				s.giveUpHead(id, keys, q, gen)
				return nil, store.Record{}, lockTimeout(ctx)
			}
			s.headFailed(id, q, gen, err)
			return nil, store.Record{}, unavailable("lock", err)
		}
		ok, pttl, rec, perr := parseLockReply(res)
		if perr != nil {
			s.releaseToken(id, keys, token, leaseTTL, nil)
			s.headDone(id, q, gen)
			return nil, store.Record{}, perr
		}
		if ok {
			l := &lease{s: s, id: id, keys: keys, token: token, ttl: leaseTTL, q: q, gen: gen, rec: rec, until: start.Add(leaseTTL)}
			s.mu.Lock()
			if s.queues[id] == q && q.gen == gen {
				q.holding = true
				q.holder = l
				q.turn = 0
				q.expires = start.Add(leaseTTL)
				if len(q.waiters) > 0 {
					signal(q.waiters[0].wake) // arm its lease watch
				}
			}
			s.mu.Unlock()
			return l, rec, nil
		}
		wait := maxWait
		if pttl >= 0 && pttl < wait {
			// 0: the key ends within the millisecond, so try again
			// right after it, not after maxWait.
			wait = max(pttl, time.Millisecond)
		}
		timer := time.NewTimer(wait)
		select {
		case <-q.notify:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		if ctx.Err() != nil {
			s.giveUpHead(id, keys, q, gen)
			return nil, store.Record{}, lockTimeout(ctx)
		}
	}
}

// giveUpHead is headDone for a contender whose caller stopped waiting. When
// no local waiter takes over, the instance's claim to the next turn (see
// lockScript) is handed back at once, in the background, rather than left
// to make the other instances wait until it lapses.
func (s *Store) giveUpHead(id string, keys []string, q *queue, gen uint64) {
	s.mu.Lock()
	s.promoteLocked(id, q, gen)
	idle := s.queues[id] == nil
	closed := s.closed
	if idle && !closed {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if !idle || closed {
		return
	}
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := clearTurnScript.Run(ctx, s.scripts, keys[2:3], s.tokenPrefix, s.channel, id).Err(); err != nil {
			s.log.Debug("handing back a session lock turn failed; it lapses by itself", "error", err)
		}
	}()
}

// parseLockReply decodes {1, version, data} or {0, pttl}.
func parseLockReply(res []any) (ok bool, pttl time.Duration, rec store.Record, err error) {
	if len(res) < 2 {
		return false, 0, rec, unavailable("lock", fmt.Errorf("unexpected reply of %d elements", len(res)))
	}
	flag, _ := res[0].(int64)
	if flag == 1 {
		if len(res) < 3 {
			res = append(res, nil)
		}
		rec, err = parseRecord("lock", res[1], res[2])
		return err == nil, 0, rec, err
	}
	n, _ := res[1].(int64)
	return false, time.Duration(n) * time.Millisecond, rec, nil
}

// slotMoveWait is the pause before trying a lock again while the session's
// Cluster slot is being migrated.
const slotMoveWait = 20 * time.Millisecond

// slotMoving reports the replies of Redis Cluster to a command that did not
// run because its slot is being moved: TRYAGAIN (a command on several keys
// found partly on each node), and a MOVED or ASK redirect that go-redis did
// not follow because TRYAGAIN pauses used up its redirects (MaxRedirects)
// within the same call.
func slotMoving(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	return strings.HasPrefix(msg, "TRYAGAIN") || strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")
}

// releaseToken deletes the lock if token holds it, in the background: used
// when a Lock or Unlock reply was lost, or Redis did not answer in time, and
// the lock may or may not be ours. Without it such a lock would block the
// session until its lease ends. A non-nil after is a write in flight that
// may still give the lock to token: the release waits for it to finish
// (bounded by the client's timeouts). lease is the token's lease: until it
// ends (or the store closes) a release that gets no answer is tried again,
// since the failure that got us here (Redis stalled or restarting) usually
// outlasts one attempt; past it the lock has expired by itself. Any reply
// ends it: a release that finds the lock not token's raises the session's
// fence of this instance (unlockScript) so that token's lock script, if it
// reaches Redis only now (Redis orders nothing across connections, and the
// next local contender's script may run first too), does nothing
// (lockScript).
func (s *Store) releaseToken(id string, keys []string, token string, lease time.Duration, after <-chan struct{}) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	// Past maxRetriedReleases (a stall while thousands of requests held or
	// wanted locks) a release is tried once: the goroutines stay bounded.
	retry := s.releasing < maxRetriedReleases
	if retry {
		s.releasing++
	}
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if retry {
			defer func() {
				s.mu.Lock()
				s.releasing--
				s.mu.Unlock()
			}()
		}
		if after != nil {
			<-after
		}
		until := time.Now().Add(lease)
		pause := releaseRetryMin
		for {
			ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
			// A Keep with no TTL changes nothing but the lock. Finding
			// the lock not token's, it leaves a fence behind: token's lock
			// script, if it is still on its way, does nothing once it
			// arrives (lockScript). Without it the script, come late,
			// took the lock for a lease that nobody releases.
			err := unlockScript.Run(ctx, s.scripts, keys, token, "k", 0, "", "", s.channel, id, "", 0, s.tokenPrefix, ms(lease)).Err()
			cancel()
			if err == nil || !retry || !time.Now().Add(pause).Before(until) {
				return
			}
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-s.stop:
				t.Stop()
				return
			}
			pause = min(2*pause, maxWait)
		}
	}()
}

type lease struct {
	s        *Store
	id       string
	keys     []string
	token    string
	ttl      time.Duration // the lease this token was granted
	q        *queue
	gen      uint64
	handoffs int
	done     bool // guarded by s.mu
	// until is when the lease ends by this gateway's clock, measured from
	// before the request that took or renewed it, so never later than
	// Redis's; vanished: Renew found the lock gone before it. Guarded by
	// s.mu.
	until    time.Time
	vanished bool
	// rec is the record as this holder received it: with Keep it is what
	// the next local holder receives, without asking Redis.
	rec store.Record
	// prev is the write of the holder that handed this lease over, still
	// in flight when it did so. This holder's own write waits for it, so a
	// session's writes reach Redis in hand-over order, and fails if it
	// failed (this holder's data was built on it).
	prev *pendingWrite
}

// pendingWrite is one holder's unlock script, in flight while the next local
// holder already runs: the Redis round trip of a write overlaps the next
// request instead of lengthening the session's critical section.
type pendingWrite struct {
	done chan struct{}
	err  error // set before done is closed
}

// Unlock implements store.Lease.
func (l *lease) Unlock(ctx context.Context, m store.Mutation) (uint64, error) {
	s := l.s
	var kind string
	switch m.Kind {
	case store.Keep:
		kind = "k"
	case store.Put:
		kind = "p"
	case store.Delete:
		kind = "d"
	default:
		// Refuse before anything is applied; the lease stays usable so the
		// caller can still release it properly.
		return 0, fmt.Errorf("redisstore: unknown mutation kind %d", m.Kind)
	}
	if perr := l.Settled(ctx); perr != nil {
		// If we stopped waiting, the previous holder's write may still
		// re-key the lock to our token: the release must reach Redis
		// after it, or it finds the previous token, does nothing, and the
		// lock stays ours until the lease ends.
		return 0, l.abandon(perr, l.prev.done)
	}

	// Prepared outside the lock: the next holder's token and, for a Put,
	// the version the script will give a record that does not exist yet.
	nextToken, iv := s.newToken(), initialVersion()
	s.mu.Lock()
	if l.done {
		s.mu.Unlock()
		return 0, store.ErrLeaseLost
	}
	l.done = true
	q := l.q
	head := s.queues[l.id] == q && q.gen == l.gen
	var (
		pw        *pendingWrite
		nextLease time.Duration
	)
	var nextGen uint64
	if head && l.handoffs < maxHandoffs && len(q.waiters) > 0 && turnAllows(q.turn, q.waiters[0].since) && time.Now().Before(q.expires) {
		next := q.waiters[0]
		q.waiters = q.waiters[1:]
		pw, nextLease = &pendingWrite{done: make(chan struct{})}, next.leaseTTL
		rec := l.after(m, iv)
		q.gen++
		nextGen = q.gen
		q.holding = true
		q.expires = time.Now().Add(next.leaseTTL)
		next.gen = q.gen
		next.lease = &lease{s: s, id: l.id, keys: l.keys, token: nextToken, ttl: next.leaseTTL, q: q, gen: q.gen,
			handoffs: l.handoffs + 1, rec: rec, prev: pw, until: q.expires}
		next.rec = rec
		next.state = granted
		q.holder = next.lease
		// The new first waiter is woken (to watch the lease) before the
		// next holder: Go runs the goroutine readied last first and puts
		// the one readied before it at the back of the run queue, and the
		// next holder is the session's critical path.
		if len(q.waiters) > 0 {
			signal(q.waiters[0].wake)
		}
		signal(next.wake)
	}
	s.mu.Unlock()
	if pw != nil {
		// The next holder sends its request to PHP before this write goes
		// to Redis: the write only has to land before that request ends
		// (Settled), and the session's other requests wait for the next
		// holder, not for this one. Sending the write first, the next
		// holder ran only once this goroutine had parked for Redis's
		// reply, 150-320 us after it was readied on the loaded 2-CPU bench
		// machine; yielding here, 2-12 us (runtime traces, hot session,
		// docs/design.md "Measured and left out").
		runtime.Gosched()
	}

	scriptNext := ""
	if pw != nil {
		scriptNext = nextToken
	}
	var (
		cmd  *redis.Cmd
		werr error // the write is not on enough replicas (runWrite)
	)
	if kind == "k" || m.NoWait {
		// A release: a failover that loses it leaves a lock of this
		// gateway's, which it takes back at its next request (lockScript),
		// so it does not wait for replicas; nor does the bookkeeping a
		// NoWait Put carries with it.
		cmd = unlockScript.Run(ctx, s.scripts, l.keys, l.token, kind, ms(m.TTL), m.Value,
			iv, s.channel, l.id, scriptNext, ms(nextLease), s.tokenPrefix, 0)
	} else {
		cmd, werr = s.runWrite(ctx, "unlock", unlockScript, l.keys, l.token, kind, ms(m.TTL), m.Value,
			iv, s.channel, l.id, scriptNext, ms(nextLease), s.tokenPrefix, 0)
	}
	res, err := cmd.Slice()
	var (
		ver  uint64
		lost bool
		turn int64
	)
	if err == nil {
		ver, _, lost, turn, err = parseUnlockReply(res, m)
	} else {
		err = unavailable("unlock", err)
	}
	if pw != nil && err == nil && !lost {
		// Read by the next holder's Unlock, which waits for pw.done
		// (Settled) before it decides whether to hand over again.
		s.mu.Lock()
		if s.queues[l.id] == q && q.gen == nextGen {
			q.turn = turn
		}
		s.mu.Unlock()
	}
	if pw != nil {
		switch {
		case err != nil:
			pw.err = err
		case lost:
			pw.err = store.ErrLeaseLost
		case werr != nil:
			// The next holder's record holds this write: it must not
			// be acknowledged on top of it.
			pw.err = werr
		}
		close(pw.done)
	}
	if pw == nil && head {
		s.headFailed(l.id, q, l.gen, err)
	}

	if err != nil {
		// The script may not have run (the lock is still ours) or may have
		// run with its reply lost (with a hand-over the lock now carries
		// nextToken). Either way nobody will unlock it: free it now rather
		// than block the session until the lease ends.
		s.releaseToken(l.id, l.keys, l.token, l.ttl, nil)
		if pw != nil {
			s.releaseToken(l.id, l.keys, nextToken, nextLease, nil)
		}
		return 0, err
	}
	if lost {
		return 0, l.lostErr(false)
	}
	if werr != nil {
		// The script ran: the lock is released or handed over (that
		// holder gives up, see above), there is nothing to free.
		return 0, werr
	}
	return ver, nil
}

// Settled implements store.Settler; Unlock waits through it too, since
// its write must land after the previous holder's.
func (l *lease) Settled(ctx context.Context) error {
	p := l.prev
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return unavailable("unlock", fmt.Errorf("waiting for the previous write: %w", ctx.Err()))
	}
}

// Renew implements store.Lease: one round trip (renewScript), after the
// previous holder's write when this lease was handed over while it was in
// flight (until that write lands the lock still carries the previous
// holder's token). The local queue's view of the lease moves with it, so
// the first local waiter does not take over from a live holder.
func (l *lease) Renew(ctx context.Context, leaseTTL time.Duration) error {
	s := l.s
	if leaseTTL <= 0 {
		return errors.New("redisstore: lock lease TTL must be positive")
	}
	s.mu.Lock()
	done, closed := l.done, s.closed
	s.mu.Unlock()
	if done {
		return store.ErrLeaseLost
	}
	if closed {
		return errClosed
	}
	if p := l.prev; p != nil {
		select {
		case <-p.done:
			if p.err != nil {
				// This holder's Unlock will apply nothing (see abandon).
				return fmt.Errorf("%w: the previous holder's write failed: %v", store.ErrLeaseLost, p.err)
			}
		case <-ctx.Done():
			return unavailable("renew", fmt.Errorf("waiting for the previous write: %w", ctx.Err()))
		}
	}
	start := time.Now()
	n, err := renewScript.Run(ctx, s.scripts, l.keys[1:2], l.token, ms(leaseTTL)).Int64()
	if err != nil {
		return unavailable("renew", err)
	}
	if n != 1 {
		return l.lostErr(true)
	}
	s.mu.Lock()
	l.until = start.Add(leaseTTL)
	if q := l.q; !l.done && s.queues[l.id] == q && q.gen == l.gen && q.holding {
		// Measured from before the request, so never later than Redis's.
		// A first waiter asleep until the old expiry looks again then.
		q.expires = start.Add(leaseTTL)
	}
	s.mu.Unlock()
	return nil
}

// lostErr is ErrLeaseLost for a lock a script found gone or not this
// lease's. Before the lease's end only Redis can have lost it (a failover
// to a replica that never got it, FLUSHDB, an eviction): nobody takes a
// lock over before it expires. That is a store failure the caller counts,
// not a lease that ran out under a slow request. A renewal that lost the
// race with this lease's own Unlock found it released, not lost.
func (l *lease) lostErr(renew bool) error {
	s := l.s
	s.mu.Lock()
	l.vanished = l.vanished || time.Now().Before(l.until) && !(renew && l.done)
	vanished := l.vanished
	s.mu.Unlock()
	if vanished {
		return fmt.Errorf("%w: %w", store.ErrLeaseLost, store.ErrLockVanished)
	}
	return store.ErrLeaseLost
}

// after is the record as it will be once m is applied, for the next local
// holder: exactly what the unlock script writes when nobody else touched
// the session meanwhile. Only a Save can while the lock is held (it
// ignores locks); one of this instance's on the holder's record is taken
// into l.rec (savedUnderLock), one of another instance's is not seen.
func (l *lease) after(m store.Mutation, initial string) store.Record {
	switch m.Kind {
	case store.Put:
		v := l.rec.Version + 1
		if l.rec.Version == 0 {
			v, _ = strconv.ParseUint(initial, 10, 64)
		}
		return store.Record{Value: append([]byte{}, m.Value...), Version: v}
	case store.Delete:
		return store.Record{}
	default:
		return l.rec
	}
}

// savedUnderLock takes a Save of this instance, made on the record the
// local holder of the session's lock received (expect), into the record
// that holder hands over: without it the next local holder would be given
// the record as it was before the Save, and its write would replace the
// saved one.
func (s *Store) savedUnderLock(id string, expect uint64, value []byte, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[id]
	if q == nil || !q.holding || q.holder == nil {
		return
	}
	if l := q.holder; !l.done && l.gen == q.gen && l.rec.Version == expect {
		l.rec = store.Record{Value: append([]byte{}, value...), Version: version}
	}
}

// abandon ends a lease whose previous holder's write failed or was not
// waited for: nothing of this holder's is applied (its data was built on
// that write), the lock is freed once that write is done, and the local
// queue moves on.
func (l *lease) abandon(cause error, prevDone <-chan struct{}) error {
	s := l.s
	s.mu.Lock()
	if l.done {
		s.mu.Unlock()
		return store.ErrLeaseLost
	}
	l.done = true
	s.mu.Unlock()
	s.headFailed(l.id, l.q, l.gen, cause)
	s.releaseToken(l.id, l.keys, l.token, l.ttl, prevDone)
	if errors.Is(cause, store.ErrLeaseLost) {
		return fmt.Errorf("%w: the previous holder's write was not applied", store.ErrLeaseLost)
	}
	return cause
}

// turnAllows reports whether a local waiter that called Lock at since may
// be handed the lock while another instance's claim to the next turn of
// turn stands (queue.turn): only when there is none, or the waiter asked
// earlier than the claimant. Gateways then serve the session's waiters
// oldest first across gateways, within the one hand-over a holder makes
// before its unlock reply tells it of a new claim, and within the skew of
// their clocks; maxHandoffs still bounds a run of hand-overs, so a gateway
// whose clock runs behind does not keep the lock for ever.
func turnAllows(turn int64, since time.Time) bool {
	return turn == 0 || since.UnixMilli() < turn
}

// parseUnlockReply decodes {-1} (lease lost) or {1, version, data|nil,
// turn}; turn is another instance's claim to the next turn (queue.turn),
// 0 for none. For a hand-over it also builds the next holder's record: Put
// and Delete leave exactly what the mutation wrote; Keep returns the stored
// value.
func parseUnlockReply(res []any, m store.Mutation) (ver uint64, rec store.Record, lost bool, turn int64, err error) {
	if len(res) == 0 {
		return 0, rec, false, 0, unavailable("unlock", errors.New("empty reply"))
	}
	if flag, _ := res[0].(int64); flag != 1 {
		return 0, rec, true, 0, nil
	}
	if len(res) < 2 {
		return 0, rec, false, 0, unavailable("unlock", errors.New("short reply"))
	}
	n, _ := res[1].(int64)
	if n < 0 {
		return 0, rec, false, 0, unavailable("unlock", errors.New("negative version"))
	}
	if len(res) > 3 {
		turn, _ = res[3].(int64)
		turn = max(turn, 0)
	}
	ver = uint64(n)
	switch {
	case ver == 0:
	case m.Kind == store.Put:
		rec = store.Record{Value: append([]byte{}, m.Value...), Version: ver}
	default:
		var d string
		if len(res) > 2 {
			d, _ = res[2].(string)
		}
		rec = store.Record{Value: []byte(d), Version: ver}
	}
	return ver, rec, false, turn, nil
}

// subscribe starts the store's single subscription to the unlock channel
// on first use and waits for Redis to confirm it, so that no notice sent
// after the caller's first lock attempt is missed.
//
// One attempt runs at a time, and callers that arrive meanwhile share its
// outcome. The attempt is bounded by the client's dial and read timeouts,
// not by the caller's context (the whole lock wait, or a client that went
// away): a Redis that stalls before this gateway's first session request
// otherwise held every request for its whole lock wait, each queued behind
// the one subscribing, instead of the 503 within twice
// SESSIONGATE_REDIS_TIMEOUT other commands give.
func (s *Store) subscribe(ctx context.Context) error {
	s.subMu.Lock()
	if s.sub != nil {
		s.subMu.Unlock()
		return nil
	}
	a := s.subTry
	if a == nil {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			// Close has begun (it takes subMu after setting closed), so
			// no attempt may join its WaitGroup.
			s.subMu.Unlock()
			return errClosed
		}
		a = &subAttempt{done: make(chan struct{})}
		s.subTry = a
		s.wg.Add(1)
		// Detached: a caller that goes away must not fail the others.
		base := context.WithoutCancel(ctx)
		var (
			actx   context.Context
			cancel context.CancelFunc
		)
		if d := subscribeTimeout(s.c); d > 0 {
			actx, cancel = context.WithTimeout(base, d)
		} else if dl, ok := ctx.Deadline(); ok {
			// No read timeout (read_timeout=-1): at least not past the
			// deadline of the caller that starts the attempt.
			actx, cancel = context.WithDeadline(base, dl)
		} else {
			actx, cancel = context.WithCancel(base)
		}
		go s.trySubscribe(actx, cancel, a)
	}
	s.subMu.Unlock()
	if _, cluster := s.c.(*redis.ClusterClient); cluster {
		// The subscription is on the master of the channel name's slot,
		// not the session's: with that master down and the cluster
		// serving the others (cluster-require-full-coverage no), waiting
		// for it failed every session's lock. Without it a waiter re-checks
		// every maxWait, and all of them re-check once it is confirmed.
		return nil
	}
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return unavailable("subscribe", context.Cause(ctx))
	}
}

// subAttempt is one subscription attempt that callers of subscribe share.
type subAttempt struct {
	done chan struct{}
	err  error // set before done is closed
}

func (s *Store) trySubscribe(ctx context.Context, cancel context.CancelFunc, a *subAttempt) {
	defer s.wg.Done()
	defer cancel()
	ps := s.c.Subscribe(ctx, s.channel)
	_, err := ps.Receive(ctx)
	if err != nil {
		_ = ps.Close()
		ps, err = nil, unavailable("subscribe", err)
	}
	s.subMu.Lock()
	s.subTry = nil
	if ps != nil {
		s.mu.Lock()
		closed := s.closed
		if !closed {
			// Notices sent before the confirmation were missed by
			// contenders that did not wait for it (cluster).
			for _, q := range s.queues {
				signal(q.notify)
			}
		}
		s.mu.Unlock()
		if closed {
			// Close ran meanwhile and found no subscription to stop.
			_ = ps.Close()
			err = errClosed
		} else {
			s.sub = ps
			ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
			s.wg.Add(1)
			go s.fanOut(ch)
		}
	}
	// Only a cluster's lock goes on without the subscription (subscribe);
	// elsewhere the failure is the caller's error.
	if _, cluster := s.c.(*redis.ClusterClient); cluster {
		if failing := err != nil && err != errClosed; failing != s.subFailing {
			s.subFailing = failing
			if failing {
				s.log.Warn("cannot subscribe to the unlock channel; lock waiters re-check every second until it works", "error", err)
			}
		}
	}
	a.err = err
	close(a.done)
	s.subMu.Unlock()
}

// subscribeTimeout bounds one subscription attempt: a dial and the wait for
// the confirmation, as the client's timeouts bound any other command. 0:
// the client has no read timeout.
func subscribeTimeout(c redis.UniversalClient) time.Duration {
	var dial, read time.Duration
	switch c := c.(type) {
	case *redis.Client:
		dial, read = c.Options().DialTimeout, c.Options().ReadTimeout
	case *redis.ClusterClient:
		dial, read = c.Options().DialTimeout, c.Options().ReadTimeout
	default:
		return 0
	}
	if read <= 0 {
		return 0
	}
	return max(dial, 0) + read
}

// fanOut wakes the contending head of each session named by a notice. A
// *redis.Subscription after the first means go-redis reconnected: notices
// may have been lost meanwhile, so every head re-checks at once.
func (s *Store) fanOut(ch <-chan any) {
	defer s.wg.Done()
	for msg := range ch {
		switch m := msg.(type) {
		case *redis.Message:
			s.mu.Lock()
			if q := s.queues[m.Payload]; q != nil {
				signal(q.notify)
			}
			s.mu.Unlock()
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.mu.Lock()
				for _, q := range s.queues {
					signal(q.notify)
				}
				s.mu.Unlock()
			}
		}
	}
}

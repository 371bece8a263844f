// Package memory is the in-process session store: the embedded default when
// no Redis is configured. It keeps everything in one process, so it is only
// correct for a single gateway instance; it exists so that a small site (and
// the test suite) runs without any external service.
//
// Records expire lazily (an expired record is invisible from the moment its
// TTL ends) and are reclaimed by a periodic sweep, so memory does not grow
// with abandoned sessions. Locks are FIFO: a waiter parks on its own channel
// and the releasing holder hands the lock straight to the first waiter, so
// waiting costs no CPU and 64 waiters do not stampede on every release. A
// holder that never unlocks loses the lock when its lease ends: the first
// waiter's timer fires at that moment and takes it over.
package memory

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// shardCount spreads sessions over independent mutexes so that distinct
// sessions do not contend with each other.
const shardCount = 32

// DefaultSweepInterval is how often expired records are reclaimed when
// Options.SweepInterval is zero.
const DefaultSweepInterval = time.Minute

// Options tune the store. The zero value is ready to use.
type Options struct {
	// SweepInterval is the period of the background sweep that frees
	// expired records (default DefaultSweepInterval). Expiry itself is
	// exact regardless: expired records are never returned.
	SweepInterval time.Duration
}

// Store is an in-memory store.Store. Create it with New; Close stops the
// sweeper.
type Store struct {
	seed    maphash.Seed
	shards  [shardCount]shard
	version atomic.Uint64 // last version handed out, shared by all sessions
	tokens  atomic.Uint64 // lease tokens

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type shard struct {
	mu      sync.Mutex
	records map[string]*record
	locks   map[string]*lockState
	// logins is the LoginRegistry, by user.
	logins map[string]*record
}

type record struct {
	value   []byte
	version uint64
	expires time.Time // zero: never
	// ttl is what the last write or refresh gave it (0: none): a load or
	// lock gives it that much again (use).
	ttl time.Duration
}

func (r *record) expired(now time.Time) bool {
	return !r.expires.IsZero() && !now.Before(r.expires)
}

// lockState exists while a session's lock is held or waited for.
type lockState struct {
	token   uint64 // 0: free
	expires time.Time
	queue   []*waiter // FIFO
}

type waiter struct {
	ready    chan struct{} // closed when the lock was granted to this waiter
	granted  bool
	token    uint64
	leaseTTL time.Duration
}

var _ store.Store = (*Store)(nil)
var _ store.LoginRegistry = (*Store)(nil)

// New returns a running store.
func New(o Options) *Store {
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	s := &Store{seed: maphash.MakeSeed(), stop: make(chan struct{}), done: make(chan struct{})}
	for i := range s.shards {
		s.shards[i].records = make(map[string]*record)
		s.shards[i].locks = make(map[string]*lockState)
		s.shards[i].logins = make(map[string]*record)
	}
	go s.sweepLoop(o.SweepInterval)
	return s
}

var errClosed = fmt.Errorf("%w: memory store closed", store.ErrUnavailable)

func (s *Store) shard(id string) *shard {
	return &s.shards[maphash.String(s.seed, id)%shardCount]
}

// nextVersion returns a version never handed out before by this store, so a
// record deleted and created again cannot come back with a version a
// compare-and-set still holds (no ABA).
func (s *Store) nextVersion() uint64 { return s.version.Add(1) }

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// getLocked returns the live record or nil, dropping an expired one.
func (sh *shard) getLocked(id string, now time.Time) *record {
	r := sh.records[id]
	if r != nil && r.expired(now) {
		delete(sh.records, id)
		return nil
	}
	return r
}

// useLocked is getLocked for a request that uses the record (Load, Lock):
// its use starts now, so a record with less than the TTL its last write or
// refresh gave it left gets that TTL again, never a shorter one (the
// contract in package store).
func (sh *shard) useLocked(id string, now time.Time) *record {
	r := sh.getLocked(id, now)
	if r != nil && r.ttl > 0 && !r.expires.IsZero() && r.expires.Before(now.Add(r.ttl)) {
		r.expires = now.Add(r.ttl)
	}
	return r
}

func (r *record) snapshot() store.Record {
	if r == nil {
		return store.Record{}
	}
	return store.Record{Value: clone(r.value), Version: r.version}
}

// clone copies b so neither the caller nor the store can change the other's
// bytes; it keeps "present but empty" distinct from nil.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// Load implements store.Store.
func (s *Store) Load(_ context.Context, id string) (store.Record, error) {
	if s.closed.Load() {
		return store.Record{}, errClosed
	}
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.useLocked(id, time.Now()).snapshot(), nil
}

// Save implements store.Store.
func (s *Store) Save(_ context.Context, id string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := time.Now()
	r := sh.getLocked(id, now)
	var cur uint64
	if r != nil {
		cur = r.version
	}
	if cur != expect {
		return 0, store.ErrConflict
	}
	return s.putLocked(sh, id, value, ttl, now), nil
}

// SaveNoWait implements store.NoWaitSaver: Save, as this store has no
// replicas to wait for.
func (s *Store) SaveNoWait(ctx context.Context, id string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	return s.Save(ctx, id, expect, value, ttl)
}

func (s *Store) putLocked(sh *shard, id string, value []byte, ttl time.Duration, now time.Time) uint64 {
	v := s.nextVersion()
	sh.records[id] = &record{value: clone(value), version: v, expires: expiry(now, ttl), ttl: max(ttl, 0)}
	return v
}

// Touch implements store.Store.
func (s *Store) Touch(_ context.Context, id string, expect uint64, ttl time.Duration) error {
	if s.closed.Load() {
		return errClosed
	}
	if ttl <= 0 {
		return nil
	}
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := time.Now()
	if r := sh.getLocked(id, now); r != nil && r.version == expect {
		r.expires, r.ttl = now.Add(ttl), ttl
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(_ context.Context, id string) error {
	if s.closed.Load() {
		return errClosed
	}
	sh := s.shard(id)
	sh.mu.Lock()
	delete(sh.records, id)
	sh.mu.Unlock()
	return nil
}

// SetLogins implements store.LoginRegistry.
func (s *Store) SetLogins(_ context.Context, user string, value []byte, ttl time.Duration) error {
	sh, err := s.loginShard(user)
	if err != nil {
		return err
	}
	sh.mu.Lock()
	sh.logins[user] = &record{value: clone(value), expires: expiry(time.Now(), ttl)}
	sh.mu.Unlock()
	return nil
}

// Logins implements store.LoginRegistry.
func (s *Store) Logins(_ context.Context, user string) ([]byte, error) {
	sh, err := s.loginShard(user)
	if err != nil {
		return nil, err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.logins[user]
	if r == nil {
		return nil, nil
	}
	if r.expired(time.Now()) {
		delete(sh.logins, user)
		return nil, nil
	}
	return clone(r.value), nil
}

// KeepLogins implements store.LoginRegistry.
func (s *Store) KeepLogins(_ context.Context, user string, ttl time.Duration) error {
	sh, err := s.loginShard(user)
	if err != nil {
		return err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := time.Now()
	if r := sh.logins[user]; r != nil && !r.expired(now) && ttl > 0 {
		r.expires = expiry(now, ttl)
	}
	return nil
}

// loginShard is the shard that holds user's login record, for an open
// store and a user id the registry takes.
func (s *Store) loginShard(user string) (*shard, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if !store.ValidLoginUser(user) {
		return nil, errBadLoginUser
	}
	return s.shard(user), nil
}

var errBadLoginUser = errors.New("memory store: user id unfit for the login registry")

// Ping implements store.Store.
func (s *Store) Ping(context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// Close stops the sweeper. Later calls fail with store.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
	})
	return nil
}

// Lock implements store.Store.
func (s *Store) Lock(ctx context.Context, id string, leaseTTL time.Duration) (store.Lease, store.Record, error) {
	if leaseTTL <= 0 {
		return nil, store.Record{}, errors.New("memory store: lock lease TTL must be positive")
	}
	if s.closed.Load() {
		return nil, store.Record{}, errClosed
	}
	sh := s.shard(id)
	sh.mu.Lock()
	ls := sh.locks[id]
	if ls == nil {
		ls = &lockState{}
		sh.locks[id] = ls
	}
	s.settleLocked(ls, time.Now())
	if ls.token == 0 { // free and nobody queued
		ls.token = s.tokens.Add(1)
		ls.expires = time.Now().Add(leaseTTL)
		l := &lease{s: s, id: id, token: ls.token}
		rec := sh.useLocked(id, time.Now()).snapshot()
		sh.mu.Unlock()
		return l, rec, nil
	}
	w := &waiter{ready: make(chan struct{}), leaseTTL: leaseTTL}
	ls.queue = append(ls.queue, w)
	for {
		// sh.mu is held here. Sleep until granted, until the holder's lease
		// runs out (then the expiry is settled and the head takes over), or
		// until the caller gives up.
		timer := time.NewTimer(time.Until(ls.expires))
		sh.mu.Unlock()
		select {
		case <-w.ready:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		sh.mu.Lock()
		if !w.granted {
			s.settleLocked(ls, time.Now())
		}
		if w.granted {
			if ctx.Err() != nil {
				// Granted while giving up: pass the lock on rather than
				// leave it held by nobody until the lease ends.
				s.releaseLocked(sh, id, ls)
				sh.mu.Unlock()
				return nil, store.Record{}, fmt.Errorf("%w: %w", store.ErrLockTimeout, ctx.Err())
			}
			l := &lease{s: s, id: id, token: w.token}
			rec := sh.useLocked(id, time.Now()).snapshot()
			sh.mu.Unlock()
			return l, rec, nil
		}
		if ctx.Err() != nil {
			removeWaiter(ls, w)
			sh.mu.Unlock()
			return nil, store.Record{}, fmt.Errorf("%w: %w", store.ErrLockTimeout, ctx.Err())
		}
	}
}

func removeWaiter(ls *lockState, w *waiter) {
	for i, q := range ls.queue {
		if q == w {
			ls.queue = append(ls.queue[:i], ls.queue[i+1:]...)
			return
		}
	}
}

// settleLocked ends an expired lease and grants a free lock to the first
// waiter.
func (s *Store) settleLocked(ls *lockState, now time.Time) {
	if ls.token != 0 && !now.Before(ls.expires) {
		ls.token = 0
	}
	if ls.token == 0 && len(ls.queue) > 0 {
		w := ls.queue[0]
		ls.queue[0] = nil
		ls.queue = ls.queue[1:]
		ls.token = s.tokens.Add(1)
		ls.expires = now.Add(w.leaseTTL)
		w.token = ls.token
		w.granted = true
		close(w.ready)
	}
}

// releaseLocked frees the lock and hands it to the next waiter, or forgets
// the lock state when nobody waits.
func (s *Store) releaseLocked(sh *shard, id string, ls *lockState) {
	ls.token = 0
	s.settleLocked(ls, time.Now())
	if ls.token == 0 && len(ls.queue) == 0 {
		delete(sh.locks, id)
	}
}

type lease struct {
	s     *Store
	id    string
	token uint64
	done  bool // guarded by the shard mutex
}

// Unlock implements store.Lease.
func (l *lease) Unlock(_ context.Context, m store.Mutation) (uint64, error) {
	s := l.s
	if s.closed.Load() {
		return 0, errClosed
	}
	if m.Kind != store.Keep && m.Kind != store.Put && m.Kind != store.Delete {
		// Refused before anything happens; the lease stays usable so the
		// caller can still release it properly.
		return 0, fmt.Errorf("memory store: unknown mutation kind %d", m.Kind)
	}
	sh := s.shard(l.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l.done {
		return 0, store.ErrLeaseLost
	}
	l.done = true
	now := time.Now()
	ls := sh.locks[l.id]
	if ls == nil || ls.token != l.token {
		return 0, store.ErrLeaseLost
	}
	if !now.Before(ls.expires) {
		s.releaseLocked(sh, l.id, ls)
		return 0, store.ErrLeaseLost
	}
	var v uint64
	switch m.Kind {
	case store.Put:
		v = s.putLocked(sh, l.id, m.Value, m.TTL, now)
	case store.Delete:
		delete(sh.records, l.id)
	case store.Keep:
		if r := sh.getLocked(l.id, now); r != nil {
			v = r.version
			if m.TTL > 0 {
				r.expires, r.ttl = now.Add(m.TTL), m.TTL
			}
		}
	}
	s.releaseLocked(sh, l.id, ls)
	return v, nil
}

// Renew implements store.Lease.
func (l *lease) Renew(_ context.Context, leaseTTL time.Duration) error {
	s := l.s
	if leaseTTL <= 0 {
		return errors.New("memory store: lock lease TTL must be positive")
	}
	if s.closed.Load() {
		return errClosed
	}
	sh := s.shard(l.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l.done {
		return store.ErrLeaseLost
	}
	ls := sh.locks[l.id]
	if ls == nil || ls.token != l.token {
		return store.ErrLeaseLost
	}
	now := time.Now()
	if !now.Before(ls.expires) {
		// Expired, not taken yet: it is free from now on, as a waiter
		// would find it (Unlock reports the loss too).
		s.releaseLocked(sh, l.id, ls)
		return store.ErrLeaseLost
	}
	// Waiters sleep until the old expiry, then see this one and sleep on.
	ls.expires = now.Add(leaseTTL)
	return nil
}

func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep(time.Now())
		}
	}
}

// sweep frees expired records and abandoned lock states (a holder that never
// unlocked and nobody waiting). It takes one shard at a time so requests on
// other shards proceed meanwhile.
func (s *Store) sweep(now time.Time) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for id, r := range sh.records {
			if r.expired(now) {
				delete(sh.records, id)
			}
		}
		for user, r := range sh.logins {
			if r.expired(now) {
				delete(sh.logins, user)
			}
		}
		for id, ls := range sh.locks {
			if len(ls.queue) == 0 && (ls.token == 0 || !now.Before(ls.expires)) {
				delete(sh.locks, id)
			}
		}
		sh.mu.Unlock()
	}
}

// Len reports how many records (live or expired but not yet swept) the
// store holds; for tests and metrics.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.records)
		sh.mu.Unlock()
	}
	return n
}

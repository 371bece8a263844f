// Package sessionbridge makes the gateway the single owner of the session:
// it verifies the signed cookie, loads (and in strict mode locks) the
// session before the app runs, hands it to PHP or Django, and persists what
// the app changed on the way out. Apps never talk to Redis themselves, which
// is what makes "no lost update" and "PHP and Django see the same data"
// possible without changing the apps.
package sessionbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/internal/monoclock"
	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// LockMode chooses how concurrent requests of one session are reconciled.
type LockMode string

const (
	// LockStrict serializes the requests of one session across gateways,
	// like PHP's files handler: no lost update, some waiting.
	LockStrict LockMode = "strict"
	// LockMerge never waits: each write is a per-key three-way merge
	// applied by compare-and-set; same-key conflicts are last-writer-wins.
	LockMerge LockMode = "merge"
)

// errDestroyedConcurrently: a merge-mode compare-and-set found the session
// destroyed or retired by another request; the change is dropped.
var errDestroyedConcurrently = errors.New("session was destroyed concurrently; write dropped")

var (
	// ErrBusy: the session lock was not obtained in time (answer 503).
	ErrBusy = errors.New("session busy: lock wait timed out")
	// ErrUnavailable: the store failed (answer 503, keep the cookie).
	ErrUnavailable = errors.New("session store unavailable")
	// ErrUnstorable: the app wrote session data the gateway refuses to
	// store (beyond the conversion limits, a PHP object Django planted):
	// an application error, answer 500. A retry would write the same.
	ErrUnstorable = errors.New("session data refused")
)

// Options configure a Manager. Durations must be positive.
type Options struct {
	Store   store.Store
	Secrets [][]byte // first signs the cookie, all verify
	Cookie  CookieOptions
	// IdleTimeout is the sliding expiry (the store TTL); Cookie.MaxAge is
	// the absolute lifetime.
	IdleTimeout time.Duration
	LockMode    LockMode
	// LockTimeout bounds the wait for a strict lock held by another
	// request; the store's round trips get StoreTimeout on top
	// (lockTimed).
	LockTimeout time.Duration
	// LockLease is how long a lock outlives a crashed gateway. A live
	// request renews its lock every LockLease/3 (see renewal), so it holds
	// the session until it ends however long it runs.
	LockLease time.Duration
	// StoreTimeout bounds each store operation that is not a lock wait.
	StoreTimeout time.Duration
	Logger       *slog.Logger
	Metrics      Metrics
}

// Metrics receives session events; nil fields are fine.
type Metrics interface {
	SessionEvent(event string) // load, load_absent, save, touch, destroy, conflict, lock_timeout, store_error, php_prepend_missing, django_middleware_missing, django_signature_rejected, django_session_too_big, django_login_revoked
	LockWait(d time.Duration)
}

// Manager opens and persists sessions.
type Manager struct {
	o      Options
	cookie *cookieCodec
	log    *slog.Logger
	now    func() time.Time
	// mono is monoclock.Now: dueAgain's clock, which the wall clock's
	// steps do not move.
	mono func() int64
	// dueAgain's clocks for the warnings of django.go.
	djangoUnmarkedWarned  atomic.Int64
	djangoRefusedWarned   atomic.Int64
	djangoRawCookieWarned atomic.Int64
	// logins: the login records of Django's users lately read or written
	// (logins.go).
	logins loginCache
}

// New validates o and checks the keys.
func New(o Options) (*Manager, error) {
	if o.Store == nil {
		return nil, errors.New("sessionbridge: no store")
	}
	if o.LockMode == "" {
		o.LockMode = LockStrict
	}
	if o.LockMode != LockStrict && o.LockMode != LockMerge {
		return nil, fmt.Errorf("sessionbridge: unknown lock mode %q", o.LockMode)
	}
	for name, d := range map[string]time.Duration{"idle timeout": o.IdleTimeout, "lock timeout": o.LockTimeout, "lock lease": o.LockLease, "store timeout": o.StoreTimeout} {
		if d <= 0 {
			return nil, fmt.Errorf("sessionbridge: %s must be positive", name)
		}
	}
	c, err := newCookieCodec(o.Secrets, o.Cookie)
	if err != nil {
		return nil, fmt.Errorf("sessionbridge: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Manager{o: o, cookie: c, log: log, now: time.Now, mono: monoclock.Now}, nil
}

// CookieName is the session cookie's name; proxies use it to keep the
// cookie away from apps that must not see the raw value.
func (m *Manager) CookieName() string { return m.o.Cookie.Name }

func (m *Manager) event(e string) {
	if m.o.Metrics != nil {
		m.o.Metrics.SessionEvent(e)
	}
}

// dueAgain reports whether a warning about how an app is set up (PHP's
// prepend, Django's middleware), last logged at the monoclock reading in
// last, is due again, and then records now: such a warning would otherwise
// come with every request. On the wall clock, a step back silenced it for
// as long as the step.
func (m *Manager) dueAgain(last *atomic.Int64) bool {
	t := m.mono()
	l := last.Load()
	return t-l >= int64(time.Minute) && last.CompareAndSwap(l, t)
}

// Session is one request's hold on a session. Its methods are safe for
// concurrent use: PHP's frames arrive on the goroutine reading the response
// while the cookie is decided on the one writing headers.
type Session struct {
	m     *Manager
	https bool
	// ctx is the request's: the locks it holds are renewed while it lasts.
	ctx context.Context

	mu sync.Mutex
	// cookieID is the verified ID the client presented ("" if none).
	cookieID string
	// id is the session's current ID ("" when there is none yet).
	id string
	// exists: a record for id is in the store (as far as we know).
	exists bool
	rec    record
	// version of rec in the store, the base of the next compare-and-set.
	version uint64
	// stored is the app's view in members: rec.Data as loaded, then what
	// the app last wrote. It is the base of the next merge and the text
	// keepUntouched restores.
	stored []member
	// latest is rec.Data in members when a merge write took in other
	// requests' changes the app never saw (so it differs from stored); nil
	// means the same as stored. It is the start of the next merge.
	latest []member
	// ended is stored as it was when Destroy ended the session: the base
	// of keepUntouched for the session PHP moves its data to
	// (session_regenerate_id(true) destroys before it writes).
	ended []member
	// retiredData is what the store held under the ID a regeneration
	// retires without the request's own lock (Retire without the lock,
	// relockForMove), other requests' changes since this one loaded it
	// included: PHP's write of the new ID merges them in, as if they had
	// run before it (strict mode's order). nil otherwise. A
	// session_regenerate_id(false) without the lock (keepOldLive) sets it
	// too, from the old session it leaves as it is.
	retiredData []member
	// retiredFrom is the record retiredData came from: its app expiry
	// (another request's set_expiry() included) moves along with the data
	// (adoptExpiry in mergeRetired), as for a write merged onto it.
	retiredFrom record
	// movePending: the new session PHP opened was stored empty before its
	// first write (merge mode stores it when its cookie leaves, see
	// SetCookie), so that write, not create, moves the app's data there
	// (session_regenerate_id() whose page's output started before its
	// write; with true, only when the old session was empty, see
	// moveAnnounced):
	// with moveBase, the view it derives from (what stored or ended held
	// then), it gets what create would have done for it.
	movePending bool
	moveBase    []member
	lease       store.Lease
	// loadedFrom is the lease the session was loaded under (strict mode):
	// its record is what the app was given, and it may come from the
	// previous holder's write, still in flight then (see Settled).
	loadedFrom store.Lease
	// renew keeps lease alive while the request runs (nil without lease).
	renew *renewal
	// inUse keeps the record alive while the request runs (see
	// keepInUse); released: Release ran, and stopped it.
	inUse    *time.Timer
	released bool
	// announced is a new ID PHP started but did not write yet: the cookie
	// must go out with the headers, before the write arrives. It is
	// stored at the write, the close or the touch that ends it, even
	// empty (see create).
	announced string
	// announcedLease (strict mode) locks the announced session from the
	// moment its cookie left with the headers until it is stored: the
	// client can use that cookie before the write arrives (the page's
	// output started first), and its requests must wait for the session,
	// as PHP's files handler makes them wait for the file session_start()
	// created and locked.
	announcedLease store.Lease
	announcedRenew *renewal
	destroyed      bool
	// left: the client's cookie moved off the session it came with to a
	// new one that was then destroyed (session_regenerate_id(false), then
	// session_destroy(), as logout pages do). PHP's files handler sends the
	// new ID's cookie, which names nothing: the browser is logged out, and
	// the old session stays stored under the old ID only. Its cookie is
	// deleted here (SetCookie).
	left bool
	// headersSent: SetCookie ran (the headers are leaving), so the
	// cookie can no longer change.
	headersSent bool
	// lateCookie: a session was created after the headers left, so the
	// client can never reference it (logged once).
	lateCookie bool
	// headerCookieID is the ID the client holds once the headers left: the
	// one their cookie named (an announced session not written yet
	// included), else the one it came with.
	headerCookieID string
	// expiry and browserCookie are the app's own expiry for this session
	// (Django's set_expiry), see SetExpiry.
	expiry        time.Duration
	browserCookie bool
	// until is the app's fixed end of the session (unix ms, 0 none), see
	// SetDeadline.
	until int64
	// expirySet: the app changed the expiry in this request, so the cookie
	// must be sent again even if the ID stays.
	expirySet bool
	// retired: the client's cookie names an ID a regeneration retired
	// moments ago (retiredRecord, at most retiredGrace before the request
	// arrived) and no live session: the request was sent before the
	// regenerating one's answer, which gives the browser the new cookie. It gets no session, as without the tombstone, but a
	// session its app starts is neither stored nor given a cookie: that
	// cookie would replace the new one in the browser, logging out a user
	// who just logged in.
	retired       bool
	retiredLogged bool
	// loadedVersion is the version load found; touched: touchLocked ran.
	// Release refreshes the expiry of a session the request neither
	// wrote nor touched.
	loadedVersion uint64
	touched       bool
}

// Open reads the cookie and, if it names a live session, loads it — under
// the session lock in strict mode. A request without a valid cookie costs no
// store access at all. With several verified cookies (see idsFrom) the
// first live session wins; the others cost a lookup each.
func (m *Manager) Open(ctx context.Context, r *http.Request, https bool) (*Session, error) {
	s := &Session{m: m, https: https, ctx: ctx}
	var arrived time.Time
	for _, id := range m.cookie.idsFrom(r) {
		if arrived.IsZero() {
			arrived = m.now() // before any lock wait
		}
		found, err := m.load(ctx, s, id, arrived)
		if err != nil {
			return nil, err
		}
		if found {
			break
		}
	}
	return s, nil
}

// load loads session id into s (locked in strict mode) and reports whether
// it is live; an absent, expired or unreadable one leaves s without a
// session. arrived is when the request came in, before it waited for the
// lock.
func (m *Manager) load(ctx context.Context, s *Session, id string, arrived time.Time) (bool, error) {
	s.cookieID = id
	var rec store.Record
	var err error
	if m.o.LockMode == LockStrict {
		s.lease, rec, err = m.lockTimed(ctx, id)
		s.loadedFrom = s.lease
	} else {
		sctx, cancel := context.WithTimeout(ctx, m.o.StoreTimeout)
		rec, err = m.o.Store.Load(sctx, id)
		cancel()
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			// The client left while waiting: not a busy session.
			return false, ctx.Err()
		case errors.Is(err, store.ErrLockTimeout):
			m.event("lock_timeout")
			return false, ErrBusy
		default:
			m.event("store_error")
			return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if rec.Version == 0 {
		m.event("load_absent")
		s.releaseLease(ctx, store.Mutation{Kind: store.Keep})
		return false, nil
	}
	dec, err := decodeRecord(rec.Value)
	if errors.Is(err, errRetired) {
		// Left alone: it expires by itself (retiredTTL).
		m.event("load_absent")
		s.releaseLease(ctx, store.Mutation{Kind: store.Keep})
		if at, ok := retiredAt(rec.Value); ok && arrived.Sub(time.UnixMilli(at)) > retiredGrace {
			// Not a request of the regeneration's race: the browser
			// never got the new cookie (the login's answer was lost, or
			// the user stopped the page) and still sends the old one. It
			// must be able to start a session again, or it could not even
			// log in again until the tombstone expires.
			m.log.Info("the request's cookie names a session a regeneration retired; the browser never got the new cookie, so a new session may start", "session", shortID(id), "retired_ago", arrived.Sub(time.UnixMilli(at)).Round(time.Second).String())
			return false, nil
		}
		s.retired = true
		return false, nil
	}
	if err == nil && m.expired(dec) {
		err = errors.New("expired")
	}
	var members []member
	if err == nil {
		members, err = objectMembers(dec.Data)
	}
	if err != nil {
		// An unreadable or expired record is no session; drop it so it
		// cannot come back.
		m.log.Warn("session record dropped", "session", shortID(id), "reason", err.Error())
		if s.lease != nil {
			s.releaseLease(ctx, store.Mutation{Kind: store.Delete})
		} else {
			dctx, cancel := context.WithTimeout(ctx, m.o.StoreTimeout)
			_ = m.o.Store.Delete(dctx, id)
			cancel()
		}
		return false, nil
	}
	m.event("load")
	if s.lease != nil {
		s.renew = m.keepAlive(ctx, s.lease, id, false)
	}
	s.id, s.exists, s.rec, s.version, s.stored = id, true, dec, rec.Version, members
	s.loadedVersion = rec.Version
	s.expiry, s.browserCookie = time.Duration(dec.Expiry)*time.Millisecond, dec.Browser
	s.until = dec.Until
	s.retired = false // another of the client's cookies names a live one
	s.mu.Lock()
	s.keepInUse()
	s.mu.Unlock()
	return true, nil
}

// keepInUse keeps the session's record from expiring while the request
// runs: a page that runs longer than the record's TTL (the idle timeout,
// an app's set_expiry) was using it all along. The load gave the record
// its TTL back (the store's rule: a load or lock is a use), but neither
// the lock's renewals nor anything else refreshed it until the request's
// end, so it expired under a long page: a read-only one ended the session
// it used, and a merge-mode write was dropped as if the session had been
// destroyed meanwhile. Every third of the TTL the session's current
// record is loaded again, which gives it that TTL back by the same rule
// (no new store operation: gateways of the release before apply it too);
// a record another request retired gets at most its tombstone's short
// TTL again, once per tick. Release stops it; s.mu must be held.
func (s *Session) keepInUse() {
	if s.inUse != nil || s.released {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(s.inUseEvery(), func() {
		s.mu.Lock()
		id, live := s.id, s.exists && s.inUse == t && s.ctx.Err() == nil
		if live {
			t.Reset(s.inUseEvery())
		}
		s.mu.Unlock()
		if !live {
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.m.o.StoreTimeout)
		defer cancel()
		if _, err := s.m.o.Store.Load(ctx, id); err != nil && ctx.Err() == nil {
			s.m.event("store_error")
			s.m.log.Warn("session expiry not refreshed while the request runs; trying again", "session", shortID(id), "error", err.Error())
		}
	})
	s.inUse = t
}

// inUseEvery is how often keepInUse refreshes the record: a third of its
// TTL, and no more often than every 100 ms; s.mu must be held.
func (s *Session) inUseEvery() time.Duration {
	return max(s.ttl(s.rec.Created)/3, 100*time.Millisecond)
}

func (m *Manager) expired(r record) bool {
	now := m.now()
	if now.Sub(time.UnixMilli(r.Created)) > m.o.Cookie.MaxAge {
		return true
	}
	if r.Until != 0 && !now.Before(time.UnixMilli(r.Until)) {
		return true
	}
	// A request rewrites Seen once it is older than seenRefresh of its
	// gateway's timeout, at most seenRefreshMax, which may be another
	// gateway's during a rolling change of the timeout: Seen lags the
	// last use by up to that much. The grace covers the longest such lag
	// (seenRefreshMax), and a quarter of the timeout where that is more,
	// so only a session unused for this gateway's whole timeout is
	// idle. A timeout of centuries (the largest duration, for sessions
	// that never go idle) would overflow the sum to a negative limit that
	// every session passes: no gap reaches it.
	grace := max(m.o.IdleTimeout/4, seenRefreshMax)
	if m.o.IdleTimeout > math.MaxInt64-grace {
		return false
	}
	return now.Sub(time.UnixMilli(r.Seen)) > m.o.IdleTimeout+grace
}

// seenRefreshMax bounds how stale a used session's Seen gets. During a
// rolling change of SESSIONGATE_SESSION_IDLE_TIMEOUT, gateways with
// different timeouts share the records, and each judges idleness by its
// own: a gateway with a 24 h timeout refreshing every 6 h would leave a
// session used a minute ago looking 3 h idle to one with 2 h, which would
// drop it for every gateway. Refreshed every 5 minutes at most, for one
// write in 5 minutes per session in use, Seen lags a session's last use
// by 5 minutes at most whichever gateway served it, and expired allows
// that lag past every timeout: no gateway takes a session for idle before
// it went unused for that gateway's whole timeout.
const seenRefreshMax = 5 * time.Minute

// seenRefresh is how old Seen may get before a request writes it again.
func seenRefresh(idleTimeout time.Duration) time.Duration {
	return min(idleTimeout/4, seenRefreshMax)
}

// saveNoWait is Store.Save for bookkeeping (store.Mutation.NoWait): the
// store's SaveNoWait, which waits for no replica, where it has one.
func (m *Manager) saveNoWait(ctx context.Context, id string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	if s, ok := m.o.Store.(store.NoWaitSaver); ok {
		return s.SaveNoWait(ctx, id, expect, value, ttl)
	}
	return m.o.Store.Save(ctx, id, expect, value, ttl)
}

// ttl is the store expiry for a session created at created: the idle
// timeout, cut short by the absolute lifetime.
func (m *Manager) ttl(created int64) time.Duration {
	left := time.UnixMilli(created).Add(m.o.Cookie.MaxAge).Sub(m.now())
	if left <= 0 {
		// Lifetime over (it ended while the request ran): expire at once.
		// A TTL <= 0 would mean "never expires" to the store.
		return time.Millisecond
	}
	if left < m.o.IdleTimeout {
		return left
	}
	return m.o.IdleTimeout
}

// ID is the current session ID, "" when there is none.
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Data is the session's shared JSON object ("{}" when there is none).
func (s *Session) Data() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.exists {
		return emptyObject
	}
	return s.rec.Data
}

// storeCtx detaches store writes from the client: once an app has changed
// the session, the change is kept even if the client hangs up.
func (s *Session) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.m.o.StoreTimeout)
}

func (s *Session) releaseLease(ctx context.Context, mu store.Mutation) (uint64, error) {
	if s.lease == nil {
		return 0, nil
	}
	l := s.lease
	s.lease = nil
	s.renew.stop()
	s.renew = nil
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	v, err := l.Unlock(sctx, mu)
	if err != nil {
		s.m.countUnlockError(err)
		return 0, err
	}
	return v, nil
}

// countUnlockError counts a failed Unlock as a store error unless the
// lease simply ran out (its renewal stopped with the client, or failed and
// was counted then): Redis answered, as for the renewal, and an alert on
// Redis errors must not fire whenever clients leave slow pages. A lock the
// store lost before the lease's end (a failover) is counted.
func (m *Manager) countUnlockError(err error) {
	if !errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrLockVanished) {
		m.event("store_error")
	}
}

// Settled returns an error (ErrUnavailable) when the data the app was
// given came from another request's write that then failed: the store
// handed the lock over while that write was on its way, and the data was
// never stored. A response that may show it must then not pass for a
// success; one that writes fails its write anyway, but one that only reads
// (PHP's read_and_close) would show a change the next request does not
// find. It waits for that write's outcome when it is still unknown.
func (s *Session) Settled(ctx context.Context) error {
	s.mu.Lock()
	l, _ := s.loadedFrom.(store.Settler)
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	if err := l.Settled(sctx); err != nil {
		return fmt.Errorf("%w: the session as loaded came from a write that failed: %w", ErrUnavailable, err)
	}
	return nil
}

// Announce records that the app started a new session with id, so the
// cookie can leave with the headers even if the write comes later.
func (s *Session) Announce(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("announce: malformed session id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.id {
		s.announced = id
	}
	return nil
}

// Write persists data (a JSON object) as the session id. An id other than
// the current one is a new session (first write, or regeneration).
// Returns the keys whose concurrent change this write overrode (merge).
func (s *Session) Write(ctx context.Context, id string, data json.RawMessage, sentView []member) ([]string, error) {
	next, err := objectMembers(data)
	if err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	return s.writeMembers(ctx, id, next, sentView)
}

// writeMembers is Write on data already parsed (next is kept, not copied:
// the members are never changed in place).
func (s *Session) writeMembers(ctx context.Context, id string, next, sentView []member) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(ctx, id, next, sentView)
}

// writeLocked is Write on parsed members; s.mu must be held.
func (s *Session) writeLocked(ctx context.Context, id string, next, sentView []member) ([]string, error) {
	if !ValidID(id) {
		return nil, errors.New("write: malformed session id")
	}
	if id != s.id && s.id != "" && s.exists && s.lease == nil {
		// The session moves to a new ID and stays under its own
		// (session_regenerate_id(false)), without this request's lock
		// (merge mode, or strict mode once it released it).
		unlock, err := s.keepOldLive(ctx, sentView != nil)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	return s.writeHeldLocked(ctx, id, next, sentView)
}

// keepOldLive makes sure the session a write to a new ID leaves as it is
// (session_regenerate_id(false)) is still live, when this request holds
// no lock of it: a logout may have deleted it since this request loaded
// it, or another request's regeneration (a login) retired it. Storing
// this request's copy under a new ID would then bring the logged-out data
// back with a new cookie, or replace the other login's cookie in the
// browser: like a write that finds the session gone, it is refused
// (errDestroyedConcurrently, 503: nothing stored, no cookie, and a
// session the request starts next is neither, see retired), as strict
// mode refuses it to a request holding the lock, which finds no session.
// A live one's data, with what other requests stored in it meanwhile,
// moves along (retiredData, when carry: the app moves the data it was
// given), as for session_regenerate_id(true). Strict mode takes the lock
// again for that, as a write would (saveRelocked): unlock releases it
// unless the new session's create did. s.mu is held.
func (s *Session) keepOldLive(ctx context.Context, carry bool) (unlock func(), err error) {
	old := s.id
	unlock = func() {}
	var cur store.Record
	if s.m.o.LockMode == LockStrict {
		l, locked, err := s.lockAgain(ctx, old, "regenerate")
		if err != nil {
			return unlock, err
		}
		s.lease, cur = l, locked
		unlock = func() {
			if _, err := s.releaseLease(ctx, store.Mutation{Kind: store.Keep}); err != nil {
				s.m.log.Warn("session unlock failed", "session", shortID(old), "error", err.Error())
			}
		}
	} else {
		sctx, cancel := s.storeCtx(ctx)
		cur, err = s.m.o.Store.Load(sctx, old)
		cancel()
		if err != nil {
			s.m.event("store_error")
			return unlock, fmt.Errorf("%w: regenerate: %w", ErrUnavailable, err)
		}
	}
	if recordEnded(cur) {
		unlock()
		s.endedConcurrently()
		return func() {}, fmt.Errorf("regenerate: %w", errDestroyedConcurrently)
	}
	dec, derr := decodeRecord(cur.Value)
	if derr != nil {
		return unlock, nil
	}
	if s.lease != nil {
		// The old session's lock is released with the new session's
		// create, which refreshes its TTL by its record's expiry: the
		// one stored now.
		s.rec.Expiry, s.rec.Browser, s.rec.Until = dec.Expiry, dec.Browser, dec.Until
	}
	if carry {
		if theirs, err := objectMembers(dec.Data); err == nil {
			s.retiredData, s.retiredFrom = nonNilMembers(theirs), dec
		}
	}
	return unlock, nil
}

// endedConcurrently records that a regeneration found the session it
// moves ended by another request (errDestroyedConcurrently): this
// request has no session any more, and one it starts next is neither
// stored nor given a cookie (retired). s.mu is held.
func (s *Session) endedConcurrently() {
	s.id, s.exists, s.stored, s.latest, s.rec = "", false, nil, nil, record{}
	s.movePending, s.moveBase = false, nil
	s.retiredData, s.retiredFrom = nil, record{}
	s.retired = true
}

// writeHeldLocked is writeLocked without keepOldLive: for a write to a new
// ID made under the old session's lock, taken by the caller. s.mu is held.
func (s *Session) writeHeldLocked(ctx context.Context, id string, next, sentView []member) ([]string, error) {
	now := ms(s.m.now())
	// A session created empty in this request (create) has no record yet:
	// its first real write creates it.
	if id != s.id || !s.exists && s.version == 0 {
		if sentView != nil {
			// A regeneration: the app moves the data it was given to a
			// new ID, and what it did not change keeps its stored text,
			// as below.
			base := s.stored
			if base == nil {
				base = s.ended
			}
			next = keepUntouched(base, sentView, next)
			if id != s.id {
				merged, conflicts, ok, err := s.mergeRetired(base, next)
				if err != nil {
					return nil, err
				}
				if ok {
					if err := s.create(ctx, id, merged, now); err != nil {
						return nil, err
					}
					if s.id == id && s.exists {
						s.stored, s.latest = next, nonNilMembers(merged)
					}
					for range conflicts {
						s.m.event("conflict")
					}
					return conflicts, nil
				}
			}
		}
		return nil, s.create(ctx, id, next, now)
	}
	if s.movePending {
		return s.moveLocked(ctx, next, sentView, now)
	}
	if sentView != nil {
		next = keepUntouched(s.stored, sentView, next)
	}
	newData := buildObject(next)
	if bytes.Equal(newData, s.rec.Data) {
		return nil, s.touchLocked(ctx)
	}
	rec := s.rec
	rec.Data, rec.Seen = newData, now
	if s.lease != nil {
		v, err := s.releaseLease(ctx, store.Mutation{Kind: store.Put, Value: rec.encode(), TTL: s.ttl(rec.Created)})
		if err != nil {
			return nil, fmt.Errorf("%w: save: %w", ErrUnavailable, err)
		}
		s.rec, s.version, s.stored, s.latest = rec, v, next, nil
		s.m.event("save")
		return nil, nil
	}
	if s.m.o.LockMode == LockStrict {
		return s.saveRelocked(ctx, next, now)
	}
	return s.casLocked(ctx, next, now)
}

// moveLocked is the first write of a new session stored empty before it
// (movePending): what the create branch of writeLocked does for a
// regeneration (members the app did not touch keep their stored text,
// what other requests stored in the retired session moves along), merged
// by compare-and-set with what requests using the new cookie stored in it
// meanwhile. s.mu is held.
func (s *Session) moveLocked(ctx context.Context, next, sentView []member, now int64) ([]string, error) {
	base := s.moveBase
	s.movePending, s.moveBase = false, nil
	if sentView != nil {
		next = keepUntouched(base, sentView, next)
	}
	ours := next
	var conflicts []string
	if sentView != nil {
		merged, c, ok, err := s.mergeRetired(base, next)
		if err != nil {
			return nil, err
		}
		if ok {
			ours, conflicts = merged, c
			for range conflicts {
				s.m.event("conflict")
			}
			// The expiry mergeRetired adopted goes into the record.
			s.rec.Expiry, s.rec.Browser, s.rec.Until = s.expiry.Milliseconds(), s.browserCookie, s.until
		}
	}
	more, err := s.casLocked(ctx, ours, now)
	if err != nil {
		return nil, err
	}
	// The app's view is what it wrote, as after create.
	s.stored, s.latest = next, nil
	if !bytes.Equal(s.rec.Data, buildObject(next)) {
		s.latest = latestMembers(s.rec.Data)
	}
	return append(conflicts, more...), nil
}

// mergeRetired merges into the app's data moving to a new ID (next, derived
// from base) what other requests stored in the session a merge-mode
// regeneration retired after this request loaded it (retiredData, taken
// here), as if they had run before it. ok is false when there is none.
// An error is merged data PHP could not be given (phpReadable). s.mu is
// held.
func (s *Session) mergeRetired(base, next []member) (merged []member, conflicts []string, ok bool, err error) {
	theirs, from := s.retiredData, s.retiredFrom
	if theirs == nil {
		return nil, nil, false, nil
	}
	s.retiredData, s.retiredFrom = nil, record{}
	res := merge3(base, next, theirs)
	if !sameMembers(base, theirs) {
		if err := phpReadable(res.Data); err != nil {
			return nil, nil, false, err
		}
	}
	merged, perr := objectMembers(res.Data)
	if perr != nil {
		return nil, nil, false, nil
	}
	// The expiry of their record goes with their data (a Django
	// set_expiry() keeps it in both): the new session's record, its TTL
	// and its cookie follow it, unless this request set its own.
	s.adoptExpiry(from)
	return merged, res.Conflicts, true, nil
}

// phpReadable refuses merged data PHP could not be given, though each
// side of the merge could: over the codec's limits together (two requests
// each adding a large key), or a lone "__php__" or "__php__b64" key left
// by concurrent deletes of the others, which PHP would read as a tag (an
// error, or its text as the whole session). Stored, every later page of
// the session would fail; refused, the write fails instead (500: the same
// merge again on a retry) and the session stays as the others left it.
func phpReadable(data []byte) error {
	if ms, err := objectMembers(data); err == nil && len(ms) == 1 && (ms[0].Key == "__php__" || ms[0].Key == "__php__b64") {
		return fmt.Errorf("%w: the merge with other requests' changes leaves only the key %q, which PHP would read as a tag", ErrUnstorable, ms[0].Key)
	}
	if _, err := phpserial.EncodeSession(data, phpserial.DefaultLimits()); err != nil {
		return fmt.Errorf("%w: the merge with other requests' changes gives data PHP cannot be given: %w", ErrUnstorable, err)
	}
	return nil
}

// lockTimed takes session id's lock, waiting up to LockTimeout for
// another holder, and counts the wait (Metrics.LockWait). The store's
// round trips get StoreTimeout on top: bounded by LockTimeout alone, a
// LockTimeout below Redis's round trip (a short one, to fail fast on busy
// sessions, with Redis in another zone) cut every lock script short, and
// each request of a session nobody else held got 503 "session busy".
func (m *Manager) lockTimed(ctx context.Context, id string) (store.Lease, store.Record, error) {
	start := m.now()
	// max: a LockTimeout of centuries would overflow the sum.
	lctx, cancel := context.WithTimeout(ctx, max(m.o.LockTimeout+m.o.StoreTimeout, m.o.LockTimeout))
	l, rec, err := m.o.Store.Lock(lctx, id, m.o.LockLease)
	cancel()
	if m.o.Metrics != nil {
		m.o.Metrics.LockWait(m.now().Sub(start))
	}
	return l, rec, err
}

// lockAgain takes session id's lock again in the middle of a request (a
// write or regeneration after the request released it), whether or not
// the client is still there, as a request waits for a session; a failure
// is the request's error for op: ErrBusy after LockTimeout, else
// ErrUnavailable.
func (s *Session) lockAgain(ctx context.Context, id, op string) (store.Lease, store.Record, error) {
	l, rec, err := s.m.lockTimed(context.WithoutCancel(ctx), id)
	switch {
	case errors.Is(err, store.ErrLockTimeout):
		s.m.event("lock_timeout")
		return nil, rec, fmt.Errorf("%w: %s: %w", ErrBusy, op, err)
	case err != nil:
		s.m.event("store_error")
		return nil, rec, fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
	}
	return l, rec, nil
}

// saveRelocked is a strict-mode write made after this request released the
// lock (PHP's session_start() again after session_write_close() or
// read_and_close, or its last write at the end of the request, after the
// one that released it). Another request may hold the session by now, and
// its write under the lock replaces the whole record: a change saved beside
// it by compare-and-set would be lost. So the lock is taken again, as PHP's
// files handler locks its file again at that session_start(), the change is
// merged with what other requests stored meanwhile, and it is written
// through the lock, as the request's first write was: a store may hand the
// lock to a waiter of the same process with the record its holder's
// release leaves (Redis does), so a write beside the lock (Store.Save)
// would not reach that waiter, whose own write would then replace it.
// s.mu is held.
func (s *Session) saveRelocked(ctx context.Context, next []member, now int64) ([]string, error) {
	l, locked, err := s.lockAgain(ctx, s.id, "save")
	if err != nil {
		return nil, err
	}
	s.lease = l
	rec, theirs, err := s.reloaded(locked)
	var res mergeResult
	if err == nil {
		rec, res, err = s.mergeInto(rec, s.stored, next, theirs, now)
	}
	if err != nil {
		if _, uerr := s.releaseLease(ctx, store.Mutation{Kind: store.Keep}); uerr != nil {
			s.m.log.Warn("session unlock failed", "session", shortID(s.id), "error", uerr.Error())
		}
		return nil, err
	}
	v, err := s.releaseLease(ctx, store.Mutation{Kind: store.Put, Value: rec.encode(), TTL: s.ttl(rec.Created)})
	if err != nil {
		return nil, fmt.Errorf("%w: save: %w", ErrUnavailable, err)
	}
	return s.saved(rec, v, next, res), nil
}

// reloaded decodes cur, the record stored now, which other requests may
// have written since this one loaded the session, for a write to merge
// into: its members, and its expiry settled with this request's
// (adoptExpiry). A session destroyed or moved to a new ID meanwhile is
// errDestroyedConcurrently: a write must not resurrect it.
func (s *Session) reloaded(cur store.Record) (record, []member, error) {
	rec, err := decodeRecord(cur.Value)
	if cur.Version == 0 || errors.Is(err, errRetired) {
		s.exists = false
		return record{}, nil, errDestroyedConcurrently
	}
	if err != nil {
		return record{}, nil, fmt.Errorf("reload: %w", err)
	}
	theirs, err := objectMembers(rec.Data)
	if err != nil {
		return record{}, nil, fmt.Errorf("reload: %w", err)
	}
	return s.adoptExpiry(rec), theirs, nil
}

// mergeInto is rec carrying the app's change (next, made on base) merged
// key by key with theirs, the data rec holds: other requests' changes stay
// where the app did not change the same key.
func (s *Session) mergeInto(rec record, base, next, theirs []member, now int64) (record, mergeResult, error) {
	res := merge3(base, next, theirs)
	if !sameMembers(base, theirs) {
		if err := phpReadable(res.Data); err != nil {
			return record{}, mergeResult{}, err
		}
	}
	rec.Data, rec.Seen = res.Data, now
	return rec, res, nil
}

// adoptExpiry settles the expiry of rec, a record another request stored
// since this one loaded the session: this request's own set_expiry()
// wins; otherwise the other request's expiry is kept, and the TTL of this
// write (and the cookie) follow it.
func (s *Session) adoptExpiry(rec record) record {
	if s.expirySet {
		rec.Expiry, rec.Browser, rec.Until = s.expiry.Milliseconds(), s.browserCookie, s.until
	} else {
		s.expiry, s.browserCookie = time.Duration(rec.Expiry)*time.Millisecond, rec.Browser
		s.until = rec.Until
	}
	return rec
}

// saved records a merged write stored as version v: the app's view is
// next, and what the store holds (Session.latest) differs from it by what
// other requests changed.
func (s *Session) saved(rec record, v uint64, next []member, res mergeResult) []string {
	s.rec, s.version = rec, v
	s.stored, s.latest = next, nil
	if !bytes.Equal(res.Data, buildObject(next)) {
		s.latest = latestMembers(res.Data)
	}
	s.m.event("save")
	for range res.Conflicts {
		s.m.event("conflict")
	}
	return res.Conflicts
}

// casLocked writes next over whatever is stored now, merging key by key
// with changes other requests made since this one loaded the session.
func (s *Session) casLocked(ctx context.Context, next []member, now int64) ([]string, error) {
	// The base is what the app's data derives from, not what the store
	// holds now: a second write of the same request (PHP's session_start
	// after session_write_close works on its own copy) must not read the
	// changes its first write merged in as deletions and reverts.
	base := s.stored
	expect := s.version
	theirs := s.stored
	if s.latest != nil {
		theirs = s.latest
	}
	rec := s.rec
	// Every lost compare-and-set means another write landed, so the
	// session as a whole always progresses, but one write can lose many
	// times in a row: with 32 requests of one session at once a fixed
	// count of tries failed (503, change lost) while the others won. So a
	// write keeps trying, with growing random pauses that spread the
	// contenders, for as long as strict mode would wait for a busy
	// session (SESSIONGATE_SESSION_LOCK_TIMEOUT), then gives up as busy.
	// That wait starts at the first loss: the first try is the write
	// itself, which a large session on a loaded Redis may take longer
	// than the timeout to make, and it must still get its retries.
	var deadline time.Time
	backoff := time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt == 1 {
			deadline = s.m.now().Add(s.m.o.LockTimeout)
		}
		if attempt > 0 {
			if !s.m.now().Before(deadline) {
				s.m.event("lock_timeout")
				return nil, fmt.Errorf("%w: save: %d concurrent writes won the compare-and-set over this one", ErrBusy, attempt)
			}
			if attempt > 1 {
				time.Sleep(rand.N(backoff))
				backoff = min(2*backoff, 50*time.Millisecond)
			}
		}
		merged, res, err := s.mergeInto(rec, base, next, theirs, now)
		if err != nil {
			return nil, err
		}
		sctx, cancel := s.storeCtx(ctx)
		v, err := s.m.o.Store.Save(sctx, s.id, expect, merged.encode(), s.ttl(merged.Created))
		cancel()
		if err == nil {
			return s.saved(merged, v, next, res), nil
		}
		if !errors.Is(err, store.ErrConflict) {
			s.m.event("store_error")
			return nil, fmt.Errorf("%w: save: %w", ErrUnavailable, err)
		}
		sctx, cancel = s.storeCtx(ctx)
		cur, err := s.m.o.Store.Load(sctx, s.id)
		cancel()
		if err != nil {
			s.m.event("store_error")
			return nil, fmt.Errorf("%w: reload: %w", ErrUnavailable, err)
		}
		if rec, theirs, err = s.reloaded(cur); err != nil {
			return nil, err
		}
		expect = cur.Version
	}
}

// latestMembers is the members of merged data for Session.latest, which
// must not be nil when they differ from the app's view: nil there means
// "the same as stored", and objectMembers gives nil for {} (a merge that
// left nothing would then turn into the app's view again, and its next
// write would bring back what others deleted).
func latestMembers(data []byte) []member {
	ms, _ := objectMembers(data)
	return nonNilMembers(ms)
}

func nonNilMembers(ms []member) []member {
	if ms == nil {
		return []member{}
	}
	return ms
}

// create stores a brand-new session under id. Empty data creates nothing,
// as in Django, which stores no empty session, unless PHP opened the
// session (announced): PHP's handlers keep a session from its
// session_start() on, and its cookie reaches the browser, empty or not.
// Applications rely on that: Icinga Web 2 keys its login form's CSRF token
// on the ID of a session it leaves empty, which must be the same at the
// form's post.
func (s *Session) create(ctx context.Context, id string, next []member, now int64) error {
	if s.retired {
		// The client's cookie names a session just regenerated: the
		// browser gets the new one from that request, and this one must
		// not replace it (see retired).
		if s.announced == id {
			s.announced = ""
		}
		s.logRetired()
		return nil
	}
	if s.lease != nil {
		// Regeneration without destroy: the old session stays as it is,
		// its own expiry too (Django's set_expiry(), kept in the record):
		// the gateway's idle timeout left its data usable for hours. From
		// the record, as this request may have set another for the new.
		old := time.Duration(s.rec.Expiry) * time.Millisecond
		if _, err := s.releaseLease(ctx, store.Mutation{Kind: store.Keep, TTL: s.m.ttlWith(s.rec.Created, old, s.rec.Until)}); err != nil {
			s.m.log.Warn("session unlock failed", "error", err.Error())
		}
	}
	opened := s.announced == id
	if opened {
		s.announced = ""
	}
	s.latest = nil
	var moveBase []member
	movePending := false
	if opened && len(next) == 0 && s.m.o.LockMode == LockMerge {
		// Its first write moves the app's data here (moveLocked).
		movePending, moveBase = true, s.stored
		if moveBase == nil {
			moveBase = s.ended
		}
	}
	if len(next) == 0 && !opened {
		s.id, s.exists, s.stored, s.version = id, false, nil, 0
		s.rec = record{}
		return nil
	}
	rec := record{Version: recordVersion, Created: now, Seen: now, Data: buildObject(next),
		Expiry: s.expiry.Milliseconds(), Browser: s.browserCookie, Until: s.until}
	var v uint64
	var err error
	sctx, cancel := s.storeCtx(ctx)
	if opened && s.announcedLease != nil {
		// Its cookie is out and the session locked: store and unlock.
		l := s.takeAnnounced()
		v, err = l.Unlock(sctx, store.Mutation{Kind: store.Put, Value: rec.encode(), TTL: s.ttl(now)})
		if errors.Is(err, store.ErrLeaseLost) {
			// The lock ran out under the page (its renewal failed, or
			// the client left and renewal stopped). Only this request
			// knows the new ID to store under it, so the record is
			// created all the same, as it was without a lock.
			v, err = s.m.o.Store.Save(sctx, id, 0, rec.encode(), s.ttl(now))
		}
	} else {
		v, err = s.m.o.Store.Save(sctx, id, 0, rec.encode(), s.ttl(now))
	}
	cancel()
	if errors.Is(err, store.ErrConflict) {
		return errors.New("create: session id already in use")
	}
	if err != nil {
		s.m.event("store_error")
		return fmt.Errorf("%w: create: %w", ErrUnavailable, err)
	}
	s.id, s.exists, s.rec, s.version, s.stored = id, true, rec, v, next
	s.movePending, s.moveBase = movePending, moveBase
	s.keepInUse()
	s.m.event("save")
	if s.headersSent && id != s.headerCookieID && !s.lateCookie {
		s.lateCookie = true
		s.m.log.Warn("session created after the response headers were sent; the client cannot get its cookie", "session", shortID(id))
	}
	return nil
}

// logRetired says once per request why its new session was not kept;
// s.mu must be held.
func (s *Session) logRetired() {
	if s.retiredLogged {
		return
	}
	s.retiredLogged = true
	s.m.log.Info("new session not started: the request's cookie names a session a regeneration (a login, or a logout that renews the ID) retired while the request waited; the browser keeps the new session's cookie", "session", shortID(s.cookieID))
}

// isAnnounced reports whether id is the new session PHP opened and has not
// ended yet (Announce); s.mu must be held.
func (s *Session) isAnnounced(id string) bool {
	return id != "" && id == s.announced
}

// Touch tells the store the session is still in use (PHP's lazy write:
// nothing changed). A new session PHP opened is stored empty.
func (s *Session) Touch(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isAnnounced(id) {
		return s.create(ctx, id, nil, ms(s.m.now()))
	}
	if id != s.id || !s.exists {
		return nil
	}
	return s.touchLocked(ctx)
}

func (s *Session) touchLocked(ctx context.Context) error {
	s.touched = true
	ttl := s.ttl(s.rec.Created)
	now := s.m.now()
	// A new app expiry must reach the record too, not only the TTL.
	refreshSeen := now.Sub(time.UnixMilli(s.rec.Seen)) > seenRefresh(s.m.o.IdleTimeout) || s.expirySet
	if s.lease != nil {
		mu := store.Mutation{Kind: store.Keep, TTL: ttl}
		rec := s.rec
		if refreshSeen {
			rec.Seen = ms(now)
			// The last use alone is bookkeeping, not a change: a request
			// that only read the session does not wait for replicas
			// (SESSIONGATE_REDIS_WAIT_REPLICAS), nor fail while one is
			// away. A new app expiry is a change and waits.
			mu = store.Mutation{Kind: store.Put, Value: rec.encode(), TTL: ttl, NoWait: !s.expirySet}
		}
		v, err := s.releaseLease(ctx, mu)
		if errors.Is(err, store.ErrLeaseLost) {
			// The lock ran out under the request (its renewal failed,
			// or the client left and renewal stopped), or the store
			// lost it (ErrLockVanished, counted by releaseLease). It
			// changed nothing, so nothing is lost: no 503, as for a
			// close (read_and_close) in the same situation. The two
			// causes point the operator at different places.
			if errors.Is(err, store.ErrLockVanished) {
				s.m.log.Warn("session lock vanished from the store before its lease ended (a failover, a flush or an eviction); another request may have used the session meanwhile", "session", shortID(s.id), "error", err.Error())
				return nil
			}
			s.m.log.Warn("session lock lease ran out before the request released it (its renewal failed, or the client left)", "session", shortID(s.id))
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: touch: %w", ErrUnavailable, err)
		}
		if refreshSeen {
			s.rec, s.version = rec, v
		}
		s.m.event("touch")
		return nil
	}
	if s.expirySet {
		// A new app expiry changes the record: merged like a write with
		// what other requests stored meanwhile (casLocked applies it
		// again after each reload), not lost to a bare TTL refresh while
		// the browser's cookie already carries it.
		_, err := s.casLocked(ctx, s.stored, ms(now))
		if errors.Is(err, errDestroyedConcurrently) {
			return nil // nothing left to keep
		}
		return err
	}
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	if refreshSeen {
		rec := s.rec
		rec.Seen = ms(now)
		v, err := s.m.saveNoWait(sctx, s.id, s.version, rec.encode(), ttl)
		if err == nil {
			s.rec, s.version = rec, v
			s.m.event("touch")
			return nil
		}
		if errors.Is(err, store.ErrConflict) {
			// Another request wrote since this one loaded the session
			// (its write refreshed the record and its TTL), or destroyed
			// or retired it: a refresh must not stretch its tombstone
			// or revive it.
			s.m.event("touch")
			return nil
		}
	}
	// Only the version this request knows: never a tombstone or a
	// record another request wrote.
	if err := s.m.o.Store.Touch(sctx, s.id, s.version, ttl); err != nil {
		s.m.event("store_error")
		return fmt.Errorf("%w: touch: %w", ErrUnavailable, err)
	}
	s.m.event("touch")
	return nil
}

// Destroy deletes session id (PHP session_destroy, Django flush): a later
// request with its cookie has no session and may start one.
func (s *Session) Destroy(ctx context.Context, id string) error {
	return s.destroy(ctx, id, false)
}

// Retire is Destroy for a regeneration (PHP session_regenerate_id(true),
// Django cycle_key()): the data moves on under a new ID, and the old ID
// keeps a tombstone for retiredTTL (retiredRecord) instead of nothing, so
// that a request of the same browser still carrying the old cookie does
// not replace the new cookie with one of its own.
func (s *Session) Retire(ctx context.Context, id string) error {
	return s.destroy(ctx, id, true)
}

// retiredGrace is how long after a regeneration a request with the old
// cookie counts as one of its race: sent before the browser got the new
// cookie, which the regenerating page sends within moments (a login
// redirects at once). A request arriving later with the old cookie never
// got the new one and may start a session of its own. Requests that waited
// for the lock arrived before the regeneration and always count. The
// tombstone's time is the regenerating gateway's clock: gateways' clocks
// must agree to well within this.
const retiredGrace = 10 * time.Second

// retiredTTL is how long a tombstone outlives the regeneration: a request
// sent with the old cookie before the browser got the new one arrives
// within moments, and waits for the lock at most LockTimeout (plus
// StoreTimeout, at most a minute, for Redis's answers: lockTimed).
func (m *Manager) retiredTTL() time.Duration {
	// The last max: twice a LockTimeout of centuries overflows to a
	// negative duration, and the tombstone would outlive the
	// regeneration only 2 minutes, not the wait of a request behind it.
	return max(2*time.Minute, 2*m.o.LockTimeout, m.o.LockTimeout)
}

// putRetired replaces session id's record with its tombstone without
// holding its lock (merge mode, or strict mode once the request released
// it): under the lock for a moment, so that the tombstone replaces
// whatever version is stored (merge mode: by compare-and-set). A session
// locked by another request beyond the lock timeout (merge mode: written
// again and again by others for the store timeout) is deleted instead, as
// before tombstones. A session that a logout deleted, or another
// regeneration retired, after this request loaded it is left as it is:
// errDestroyedConcurrently.
// It returns the record the tombstone replaced (zero when deleted).
func (m *Manager) putRetired(ctx context.Context, id string) (store.Record, error) {
	if m.o.LockMode == LockMerge {
		// Merge-mode writes ignore locks: the tombstone goes in by
		// compare-and-set, so that the record returned is exactly the
		// one it replaced (a write landing meanwhile is read again,
		// and moves on with the data, not lost under the tombstone).
		for {
			cur, err := m.o.Store.Load(ctx, id)
			if err != nil {
				return store.Record{}, err
			}
			if recordEnded(cur) {
				// A logout deleted it, or another request's
				// regeneration retired it, after this request loaded
				// it: nothing to retire (a tombstone stays as it is).
				return cur, errDestroyedConcurrently
			}
			_, err = m.o.Store.Save(ctx, id, cur.Version, retiredRecord(ms(m.now())), m.retiredTTL())
			if err == nil {
				return cur, nil
			}
			if !errors.Is(err, store.ErrConflict) {
				return store.Record{}, err
			}
			if ctx.Err() != nil {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.o.StoreTimeout)
				defer cancel()
				return store.Record{}, m.o.Store.Delete(dctx, id)
			}
		}
	}
	return m.replaceLocked(ctx, id, store.Mutation{Kind: store.Put, Value: retiredRecord(ms(m.now())), TTL: m.retiredTTL()}, true)
}

// replaceLocked applies mu (a tombstone, a delete) to session id under its
// lock: strict mode, once the request released it (PHP's session_start()
// again after session_write_close() or read_and_close, then
// session_destroy() or session_regenerate_id(true)). A request holding the
// session stores its whole record when it releases the lock, and would
// bring back a session deleted or retired beside it: the logout or login
// would be undone. PHP's files handler makes that session_start() wait too,
// so the lock is waited for as long as a request waits for a session
// (LockTimeout); a session locked beyond that is deleted all the same. It
// returns the record the lock found (zero when deleted). With live (a
// regeneration's tombstone), a session the lock finds ended (deleted by a
// logout, retired by another regeneration) is left as it is:
// errDestroyedConcurrently, as in merge mode.
func (m *Manager) replaceLocked(ctx context.Context, id string, mu store.Mutation, live bool) (store.Record, error) {
	ctx = context.WithoutCancel(ctx)
	l, rec, err := m.lockTimed(ctx, id)
	sctx, cancel := context.WithTimeout(ctx, m.o.StoreTimeout)
	defer cancel()
	if errors.Is(err, store.ErrLockTimeout) {
		return store.Record{}, m.o.Store.Delete(sctx, id)
	}
	if err != nil {
		return store.Record{}, err
	}
	if live && recordEnded(rec) {
		if _, err := l.Unlock(sctx, store.Mutation{Kind: store.Keep}); err != nil {
			return store.Record{}, err
		}
		return rec, errDestroyedConcurrently
	}
	if _, err := l.Unlock(sctx, mu); err != nil {
		return store.Record{}, err
	}
	return rec, nil
}

func (s *Session) destroy(ctx context.Context, id string, retire bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.destroyLocked(ctx, id, retire)
}

// destroyLocked is destroy with s.mu held.
func (s *Session) destroyLocked(ctx context.Context, id string, retire bool) error {
	if s.isAnnounced(id) {
		// A new session destroyed before its first write (session_start()
		// then session_destroy() on a logout page): nothing is stored, and
		// the client must not get a cookie naming it.
		s.announced = ""
		s.releaseAnnounced(ctx)
	}
	if id != s.id || id == "" {
		return nil // not ours, or nothing stored yet
	}
	var err error
	var replaced []member
	var replacedRec record
	mu := store.Mutation{Kind: store.Delete}
	if retire {
		mu = store.Mutation{Kind: store.Put, Value: retiredRecord(ms(s.m.now())), TTL: s.m.retiredTTL()}
	}
	if s.lease != nil {
		_, err = s.releaseLease(ctx, mu)
	} else if s.exists {
		sctx, cancel := s.storeCtx(ctx)
		if retire {
			var cur store.Record
			cur, err = s.m.putRetired(sctx, id)
			if dec, derr := decodeRecord(cur.Value); err == nil && cur.Version != 0 && derr == nil {
				if theirs, perr := objectMembers(dec.Data); perr == nil {
					replaced, replacedRec = nonNilMembers(theirs), dec
				}
			}
			if errors.Is(err, errDestroyedConcurrently) {
				// A logout deleted the session after this
				// request loaded it, or another request's regeneration
				// (a double-submitted login, two tabs) retired it and
				// moved its data to an ID this one cannot know. Moving
				// this request's copy to a new ID would bring the
				// logged-out data back, or replace the other login's
				// cookie in the browser. Like a write that finds the
				// session gone, its change is refused, and the session
				// it starts next is neither stored nor given a cookie
				// (retired), as for a request holding the lock in
				// strict mode, which would have found no session.
				cancel()
				s.endedConcurrently()
				return fmt.Errorf("regenerate: %w", err)
			}
		} else if s.m.o.LockMode == LockStrict {
			_, err = s.m.replaceLocked(ctx, id, store.Mutation{Kind: store.Delete}, false)
		} else {
			err = s.m.o.Store.Delete(sctx, id)
		}
		cancel()
		if err != nil {
			s.m.event("store_error") // releaseLease counts its own
		}
	}
	if err != nil {
		return fmt.Errorf("%w: destroy: %w", ErrUnavailable, err)
	}
	s.m.event("destroy")
	s.ended, s.retiredData, s.retiredFrom = s.stored, replaced, replacedRec
	s.id, s.exists, s.stored, s.latest, s.rec, s.destroyed = "", false, nil, nil, record{}, true
	s.movePending, s.moveBase = false, nil
	if !retire {
		// The app's own expiry went with the session (Django keeps it in
		// its data as _session_expiry): a session started after a logout
		// in the same request (session_destroy(); session_start()) gets
		// the gateway's policy, not the old session's. A regeneration
		// moves the session on, expiry included (unless PHP cleared the
		// data it belongs to: dropExpiry).
		s.expiry, s.browserCookie, s.until = 0, false, 0
	}
	return nil
}

// moveTo is a regeneration's write (PHP's session_regenerate_id(true),
// Django's cycle_key()): the data moves from old to the new session id,
// and old is retired (its tombstone, as Retire) only once the new session
// is stored. The browser keeps the old cookie when the request fails
// (503), so a store that fails the new session (Redis stalling, timing
// out) must leave it the old session, not a tombstone next to a new ID
// holding nothing. Strict mode stores the new session under the old one's
// lock (taken again if the request released it) and puts the tombstone in
// with the lock's release; merge mode by compare-and-set
// (moveMergeLocked).
func (s *Session) moveTo(ctx context.Context, old, id string, next, sentView []member) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.moveToLocked(ctx, old, id, next, sentView)
}

// Rotate moves the session old to the new ID id with data (a JSON
// object), Django's cycle_key(): Retire and Write, except that a store
// failing the new session leaves the old one (see moveTo). With carry,
// data derives from the session the request loaded (cycle_key(), not a
// flush() and a fresh write): what other requests stored in the old
// session while Django ran moves along, as a PHP regeneration's does
// (merge mode), and members equal to the loaded ones keep their stored
// text. Without it the new session holds data alone.
func (s *Session) Rotate(ctx context.Context, old, id string, data json.RawMessage, carry bool) ([]string, error) {
	next, err := objectMembers(data)
	if err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var view []member
	if carry {
		// Not nil: a view (even empty) is what makes the move merge.
		base := s.stored
		if base == nil {
			base = s.ended
		}
		view = append([]member{}, jsonUnchanged(base, next)...)
	}
	return s.moveToLocked(ctx, old, id, next, view)
}

// jsonUnchanged returns the members of next whose value equals base's
// member of the same key as JSON (jsonEqual), nil when none does: what an
// app that decodes and re-encodes its data (Django) left as it was.
func jsonUnchanged(base, next []member) []member {
	var same []member
	loaded := indexMembers(base)
	for _, m := range next {
		if v, ok := loaded[m.Key]; ok && jsonEqual(v, m.Value) {
			same = append(same, m)
		}
	}
	return same
}

// moveToLocked is moveTo with s.mu held.
func (s *Session) moveToLocked(ctx context.Context, old, id string, next, sentView []member) ([]string, error) {
	if old == s.id && id != old && s.exists && s.lease == nil {
		if s.m.o.LockMode == LockMerge {
			return s.moveMergeLocked(ctx, old, id, next, sentView)
		}
		// Strict mode, the lock released earlier in the request (PHP's
		// session_start() again after session_write_close() or
		// read_and_close): it is taken again, as replaceLocked would for
		// the tombstone, and what other requests stored meanwhile moves
		// along (retiredData), as there.
		if err := s.relockForMove(ctx, old); err != nil {
			return nil, err
		}
	}
	if old != s.id || id == old || s.lease == nil {
		if err := s.destroyLocked(ctx, old, true); err != nil {
			return nil, err
		}
		return s.writeLocked(ctx, id, next, sentView)
	}
	l, r := s.lease, s.renew
	s.lease, s.renew = nil, nil
	stored := s.stored
	conflicts, err := s.writeHeldLocked(ctx, id, next, sentView)
	s.lease, s.renew, s.retiredData, s.retiredFrom = l, r, nil, record{}
	if err != nil {
		return nil, err
	}
	tomb := store.Mutation{Kind: store.Put, Value: retiredRecord(ms(s.m.now())), TTL: s.m.retiredTTL()}
	if _, err := s.releaseLease(ctx, tomb); err != nil {
		// The old ID may still hold its session, which the browser keeps
		// on the 503: the new one, whose cookie it will not get, goes.
		if s.exists {
			s.deleteUnsent(ctx, id)
		}
		s.id, s.exists, s.stored, s.latest, s.rec = "", false, nil, nil, record{}
		return nil, fmt.Errorf("%w: destroy: %w", ErrUnavailable, err)
	}
	s.m.event("destroy")
	s.ended, s.destroyed = stored, true
	return conflicts, nil
}

// deleteUnsent deletes id, the new session of a failed regeneration,
// whose cookie the client will not get; one the store keeps expires
// unused.
func (s *Session) deleteUnsent(ctx context.Context, id string) {
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	if err := s.m.o.Store.Delete(sctx, id); err != nil {
		s.m.log.Warn("new session of a failed regeneration not deleted; it expires unused", "session", shortID(id), "error", err.Error())
	}
}

// relockForMove takes session old's lock again for moveToLocked, waiting
// as a request waits for a session; s.mu is held. A session a logout
// deleted, or another regeneration retired, meanwhile is refused as in
// merge mode (errDestroyedConcurrently, see endedConcurrently): moving
// this request's copy would bring the logged-out data back under a new
// ID, or replace the other login's cookie.
func (s *Session) relockForMove(ctx context.Context, old string) error {
	l, rec, err := s.lockAgain(ctx, old, "regenerate")
	if err != nil {
		return err
	}
	s.lease = l
	s.retiredData, s.retiredFrom = nil, record{}
	if recordEnded(rec) {
		if _, err := s.releaseLease(ctx, store.Mutation{Kind: store.Keep}); err != nil {
			s.m.log.Warn("session unlock failed", "session", shortID(old), "error", err.Error())
		}
		s.endedConcurrently()
		return fmt.Errorf("regenerate: %w", errDestroyedConcurrently)
	}
	if dec, derr := decodeRecord(rec.Value); derr == nil {
		if theirs, err := objectMembers(dec.Data); err == nil {
			s.retiredData, s.retiredFrom = nonNilMembers(theirs), dec
		}
	}
	return nil
}

// moveMergeLocked is moveTo in merge mode, which holds no lock: the new
// session is stored first, merged with what the old ID holds now (other
// requests' changes since this one loaded it move along, see
// retiredData), and the old ID's tombstone then goes in by compare-and-set
// over exactly that version. A write landing on the old ID meanwhile makes
// the new session merge again; a logout or another regeneration of it
// refuses this one (see destroy). A store failing at any step leaves the
// old session as it was. s.mu is held.
func (s *Session) moveMergeLocked(ctx context.Context, old, id string, next, sentView []member) ([]string, error) {
	base := s.stored
	if sentView != nil {
		// Members the app did not touch keep their stored text.
		next = keepUntouched(base, sentView, next)
	}
	stored := false // the new session has a record
	// drop ends a failed move: the new session goes, whose cookie the
	// client will not get; the old one stays as it is.
	drop := func() {
		if stored {
			s.deleteUnsent(ctx, id)
		}
		if s.id == id {
			s.id, s.exists, s.stored, s.latest, s.rec, s.version = "", false, nil, nil, record{}, 0
			s.movePending, s.moveBase = false, nil
		}
	}
	// As casLocked's retries: the wait starts at the first loss.
	var deadline time.Time
	backoff := time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt == 1 {
			deadline = s.m.now().Add(s.m.o.LockTimeout)
		}
		if attempt > 0 {
			if !s.m.now().Before(deadline) {
				drop()
				s.m.event("lock_timeout")
				return nil, fmt.Errorf("%w: regenerate: %d concurrent writes to the old session won over the move", ErrBusy, attempt)
			}
			if attempt > 1 {
				time.Sleep(rand.N(backoff))
				backoff = min(2*backoff, 50*time.Millisecond)
			}
		}
		sctx, cancel := s.storeCtx(ctx)
		cur, err := s.m.o.Store.Load(sctx, old)
		cancel()
		if err != nil {
			drop()
			s.m.event("store_error")
			return nil, fmt.Errorf("%w: regenerate: %w", ErrUnavailable, err)
		}
		dec, derr := decodeRecord(cur.Value)
		if cur.Version == 0 || errors.Is(derr, errRetired) {
			// As destroy's errDestroyedConcurrently.
			drop()
			s.endedConcurrently()
			return nil, fmt.Errorf("regenerate: %w", errDestroyedConcurrently)
		}
		if derr == nil && sentView != nil {
			// Their expiry moves along with their data (see
			// mergeRetired); the app's own set_expiry() wins.
			s.adoptExpiry(dec)
		}
		ours, conflicts := next, []string(nil)
		if theirs, err := objectMembers(dec.Data); derr == nil && err == nil && sentView != nil && !sameMembers(base, theirs) {
			res := merge3(base, next, theirs)
			if err := phpReadable(res.Data); err != nil {
				drop()
				return nil, err
			}
			if ours, err = objectMembers(res.Data); err != nil {
				ours = next
			}
			conflicts = res.Conflicts
		}
		now := ms(s.m.now())
		if !stored {
			if err := s.create(ctx, id, ours, now); err != nil {
				return nil, err
			}
			stored = s.id == id && s.exists
		} else {
			rec := s.rec
			rec.Data, rec.Seen = buildObject(ours), now
			rec.Expiry, rec.Browser, rec.Until = s.expiry.Milliseconds(), s.browserCookie, s.until
			sctx, cancel := s.storeCtx(ctx)
			v, err := s.m.o.Store.Save(sctx, id, s.version, rec.encode(), s.ttl(rec.Created))
			cancel()
			if err != nil {
				drop()
				s.m.event("store_error")
				return nil, fmt.Errorf("%w: regenerate: %w", ErrUnavailable, err)
			}
			s.rec, s.version = rec, v
		}
		sctx, cancel = s.storeCtx(ctx)
		_, err = s.m.o.Store.Save(sctx, old, cur.Version, retiredRecord(now), s.m.retiredTTL())
		cancel()
		if errors.Is(err, store.ErrConflict) {
			continue // another write landed on the old ID: merge it too
		}
		if err != nil {
			drop()
			s.m.event("store_error")
			return nil, fmt.Errorf("%w: destroy: %w", ErrUnavailable, err)
		}
		for range conflicts {
			s.m.event("conflict")
		}
		s.m.event("destroy")
		s.ended, s.destroyed, s.retiredData, s.retiredFrom = base, true, nil, record{}
		if s.id == id && s.exists {
			s.stored, s.latest = next, nonNilMembers(ours)
		}
		return conflicts, nil
	}
}

// moveAnnounced moves the session from old to the new ID PHP opened after
// session_regenerate_id() when the headers leave before PHP wrote it (its
// output started first): the browser gets the new cookie now and keeps
// only that one, so the new session must hold the session from now on,
// whatever becomes of the write (a store failing it can no longer fail the
// response; with retire, session_regenerate_id(true), the old ID is a
// tombstone). It takes the data PHP was given; PHP's write then changes it
// as any write. Strict mode keeps the new session locked until that write,
// as for any new session whose cookie leaves first. want, when set, is the
// new ID. moved is false when there is nothing to move (no such new ID
// opened, no live old session): the caller goes on as before. A failure
// leaves the old session (the response becomes a 503).
func (s *Session) moveAnnounced(ctx context.Context, old, want string, retire bool) (moved bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.announced
	if id == "" || id == old || want != "" && id != want || s.retired || old != s.id || !s.exists {
		return false, nil
	}
	var l store.Lease
	if s.m.o.LockMode == LockStrict {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.m.o.StoreTimeout)
		l, _, err = s.m.o.Store.Lock(lctx, id, s.m.o.LockLease)
		cancel()
		if err != nil {
			s.m.event("store_error")
			return true, fmt.Errorf("%w: lock the new session: %w", ErrUnavailable, err)
		}
	}
	if retire {
		_, err = s.moveToLocked(ctx, old, id, s.stored, nonNilMembers(s.stored))
	} else {
		// The old session stays (session_regenerate_id(false)).
		_, err = s.writeLocked(ctx, id, s.stored, nonNilMembers(s.stored))
	}
	if l != nil {
		if err == nil && s.id == id && s.lease == nil {
			s.lease, s.renew = l, s.m.keepAlive(s.ctx, l, id, false)
		} else {
			sctx, cancel := s.storeCtx(ctx)
			if _, uerr := l.Unlock(sctx, store.Mutation{Kind: store.Keep}); uerr != nil {
				s.m.log.Warn("session unlock failed", "session", shortID(id), "error", uerr.Error())
			}
			cancel()
		}
	}
	return true, err
}

// leave records that the client's cookie no longer names the session it
// came with (left).
func (s *Session) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.left = true
}

// Close ends the app's use of session id without a write (PHP's
// read_and_close or session_abort), and the lock is released. A new
// session PHP opened is stored empty, as PHP's own handlers keep it (see
// create); if the store refuses, it gets no cookie.
func (s *Session) Close(ctx context.Context, id string) {
	s.mu.Lock()
	if s.isAnnounced(id) {
		if err := s.create(ctx, id, nil, ms(s.m.now())); err != nil {
			s.announced = ""
			s.m.log.Warn("new session not stored", "session", shortID(id), "error", err.Error())
		}
	}
	s.mu.Unlock()
	s.Release(ctx)
}

// takeAnnounced hands over the announced session's lock (nil if none),
// its renewal stopped; s.mu must be held.
func (s *Session) takeAnnounced() store.Lease {
	l := s.announcedLease
	s.announcedLease = nil
	s.announcedRenew.stop()
	s.announcedRenew = nil
	return l
}

// releaseAnnounced unlocks the announced session's lock, if taken, without
// storing anything; s.mu must be held.
func (s *Session) releaseAnnounced(ctx context.Context) {
	l := s.takeAnnounced()
	if l == nil {
		return
	}
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	if _, err := l.Unlock(sctx, store.Mutation{Kind: store.Keep}); err != nil {
		s.m.countUnlockError(err)
		s.m.log.Warn("session unlock failed", "error", err.Error())
	}
}

// Release lets other requests of the session run (the end of the request).
func (s *Session) Release(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = true
	if s.inUse != nil {
		s.inUse.Stop()
		s.inUse = nil
	}
	s.releaseAnnounced(ctx)
	if s.exists && (s.lease != nil || s.m.o.LockMode == LockMerge && !s.touched && s.version == s.loadedVersion) {
		// The request used the session, if only to read it (PHP's
		// read_and_close, a page that never started it): the idle
		// timeout slides, the record's last-seen time included
		// (expired), as for a touch. Merge mode holds no lock to release
		// but refreshes only the version it loaded (never a tombstone
		// or another request's record); one that wrote or touched it
		// has done so already.
		if err := s.touchLocked(ctx); err != nil {
			s.m.log.Warn("session expiry not refreshed at the end of the request", "session", shortID(s.id), "error", err.Error())
		}
		return
	}
	if s.lease == nil {
		return
	}
	mu := store.Mutation{Kind: store.Keep}
	if _, err := s.releaseLease(ctx, mu); err != nil {
		s.m.log.Warn("session unlock failed", "session", shortID(s.cookieID), "error", err.Error())
	}
}

// stillStored reports whether session id is still stored live, neither
// destroyed nor retired by a regeneration; true when the store cannot
// say, as before the question was asked.
func (s *Session) stillStored(id string) bool {
	ctx, cancel := s.storeCtx(context.Background())
	defer cancel()
	cur, err := s.m.o.Store.Load(ctx, id)
	return err != nil || !recordEnded(cur)
}

// recordEnded reports whether cur, a session's record as loaded, holds no live
// session: absent (destroyed, expired) or a tombstone (retired by a
// regeneration).
func recordEnded(cur store.Record) bool {
	if cur.Version == 0 {
		return true
	}
	_, err := decodeRecord(cur.Value)
	return errors.Is(err, errRetired)
}

// SetCookie adds the Set-Cookie the response needs, if any, and freezes
// the cookie: it is called when the headers are about to be written.
func (s *Session) SetCookie(h http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headersSent {
		return
	}
	s.headersSent = true
	s.headerCookieID = s.cookieID
	want := ""
	switch {
	case s.announced != "":
		want = s.announced
	case s.exists && !s.left:
		want = s.id
	}
	if s.retired && want != "" {
		// A new session of a request whose cookie a regeneration
		// retired: its cookie would replace the new one (see retired).
		// Its writes store nothing either (create).
		s.logRetired()
		return
	}
	// A new expiry must reach the browser even when the ID is unchanged.
	// So must an app's expiry in seconds on every response: it is an idle
	// timeout, each request slides the store TTL by it (ttl), and a cookie
	// sent only when it was set would end that long after, however active
	// the user is on the pages of the app that did not set it.
	slidingCookie := s.expiry > 0 && !s.browserCookie && s.expiry < s.m.o.Cookie.MaxAge
	expiryChanged := want != "" && (s.expirySet || slidingCookie)
	if want == s.cookieID && !expiryChanged {
		return
	}
	if want == s.cookieID && !s.expirySet && s.lease == nil && !s.stillStored(want) {
		// Only the sliding re-send, of a session this request no longer
		// holds: a login meanwhile (another request's regeneration) may
		// have retired it, and its cookie would replace the login's in
		// the browser, logging the user out.
		return
	}
	if want == "" && !s.destroyed && !s.left {
		return
	}
	ck, err := s.m.cookie.cookie(want, s.https)
	if err != nil {
		s.m.log.Error("session cookie", "error", err.Error())
		return
	}
	s.headerCookieID = want
	if want != "" && want == s.announced {
		// The cookie of a session not stored yet leaves now, and the
		// client may use it before the session's write arrives. Strict
		// mode locks the session until it is stored (a new ID, so the
		// lock is free); merge mode, which never waits, stores it empty
		// now, so that such a request finds it and the page's write
		// merges with what that request changed.
		if s.m.o.LockMode == LockStrict {
			if s.announcedLease == nil {
				lctx, cancel := context.WithTimeout(context.Background(), s.m.o.StoreTimeout)
				l, _, err := s.m.o.Store.Lock(lctx, want, s.m.o.LockLease)
				cancel()
				if err != nil {
					s.m.event("store_error")
					s.m.log.Warn("new session not locked before its cookie left; a request that uses the cookie before the session is written finds no session", "session", shortID(want), "error", err.Error())
				} else {
					s.announcedLease = l
					s.announcedRenew = s.m.keepAlive(s.ctx, l, want, true)
				}
			}
		} else if err := s.create(context.Background(), want, nil, ms(s.m.now())); err != nil {
			s.announced = want // stored at its write, as before
			s.m.log.Warn("new session not stored before its cookie left; a request that uses the cookie before the session is written finds no session", "session", shortID(want), "error", err.Error())
		}
	}
	if want != "" {
		switch {
		case s.browserCookie:
			ck.MaxAge = 0 // no Max-Age: gone when the browser closes
		case s.expiry > 0 && s.expiry < s.m.o.Cookie.MaxAge:
			ck.MaxAge = int((s.expiry + time.Second - 1) / time.Second)
		case s.until != 0:
			// A persistent cookie that ends with the session, as Django
			// sets it for a datetime expiry.
			if left := time.UnixMilli(s.until).Sub(s.m.now()); left < s.m.o.Cookie.MaxAge {
				ck.MaxAge = max(1, int((left+time.Second-1)/time.Second))
			}
		case s.expiry == 0 && s.m.o.Cookie.BrowserSession:
			ck.MaxAge = 0
		}
	}
	// Expires too, as Django's and PHP's cookies have it: a browser that
	// ignores Max-Age (Internet Explorer) would keep the cookie only until
	// it closes, and a deleted one until then.
	switch {
	case ck.MaxAge > 0:
		ck.Expires = s.m.now().Add(time.Duration(ck.MaxAge) * time.Second)
	case ck.MaxAge < 0:
		ck.Expires = time.Unix(0, 0)
	}
	h.Add("Set-Cookie", ck.String())
	if s.m.o.Cookie.Domain != "" && s.cookieID != "" && want != s.cookieID {
		// A host-only cookie of the name, set before
		// SESSIONGATE_SESSION_COOKIE_DOMAIN was, is another cookie to the
		// browser, which keeps both and sends that older one first: the
		// request after a login loaded the session from before it, as
		// long as that one lived. It goes with the old ID.
		if old, err := s.m.cookie.cookie("", s.https); err == nil {
			old.Domain = ""
			old.Expires = time.Unix(0, 0)
			h.Add("Set-Cookie", old.String())
		}
	}
	keepFromSharedCaches(h)
}

// SetExpiry applies an app's own expiry to this request's writes and cookie
// (Django's set_expiry): idle > 0 shortens the store TTL of what this
// request persists and the cookie's Max-Age to idle; browser makes the
// cookie a browser-session cookie. The gateway's limits always win: neither
// can exceed SESSIONGATE_SESSION_IDLE_TIMEOUT or _MAX_AGE. The record keeps
// it, so later requests of any app honour it; call it before Write, Touch
// or Release.
//
// Each call replaces the expiry the session had, as set_expiry does: a
// browser-session cookie followed by set_expiry(300) is a 300 s cookie, and
// idle 0 without browser is the gateway's own policy again
// (set_expiry(None)).
//
// The expiry the session already has is no change: sessiongate_django
// repeats it with every response, also of pages that never use the
// session, and a change would send the cookie again (turning a public page
// private) and, in merge mode, put this request's copy over one another
// request changed meanwhile.
func (s *Session) SetExpiry(idle time.Duration, browser bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idle = max(idle, 0)
	if idle == s.expiry && browser == s.browserCookie && s.until == 0 {
		return
	}
	s.expiry, s.browserCookie, s.until = idle, browser, 0
	s.expirySet = true
	s.rec.Expiry, s.rec.Browser, s.rec.Until = s.expiry.Milliseconds(), s.browserCookie, 0
}

// SetDeadline gives the session a fixed end (Django's set_expiry() with a
// datetime or timedelta): no request, of any app, extends it, and the
// cookie ends then too. The gateway's idle timeout and max age still apply.
// It replaces the expiry the session had, as SetExpiry does, and the same
// deadline again is no change.
func (s *Session) SetDeadline(until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := max(ms(until), 1)
	if u == s.until && s.expiry == 0 && !s.browserCookie {
		return
	}
	s.expiry, s.browserCookie, s.until = 0, false, u
	s.expirySet = true
	s.rec.Expiry, s.rec.Browser, s.rec.Until = 0, false, u
}

// djangoExpiryKey is where Django keeps the expiry it gave the session
// (set_expiry), in the session's data; the gateway keeps the same expiry
// in the record (SetExpiry).
const djangoExpiryKey = "_session_expiry"

// dropExpiry drops the app's expiry (SetExpiry(0, false)) when next, a
// PHP write, drops it along with the data: the session has one, the data
// the app was given held Django's _session_expiry, and next no longer does
// ($_SESSION = [] on a logout, before session_regenerate_id(true) or not).
// Either may be a whole linked PHP session, whose PHP text holds the key.
// The expiry belongs to that data, as after session_destroy();
// session_start() (see destroy), and Django, reading the session, then
// sees none: keeping it would give the next user of the browser the
// previous one's choice. undo puts it back, for a write that failed.
func (s *Session) dropExpiry(next []member) (undo func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := s.stored
	if base == nil {
		base = s.ended
	}
	if s.expiry == 0 && !s.browserCookie && s.until == 0 || !hasPHPKey(base, djangoExpiryKey) || hasPHPKey(next, djangoExpiryKey) {
		return func() {}
	}
	expiry, browser, until, set, rec := s.expiry, s.browserCookie, s.until, s.expirySet, s.rec
	s.expiry, s.browserCookie, s.until, s.expirySet = 0, false, 0, true
	s.rec.Expiry, s.rec.Browser, s.rec.Until = 0, false, 0
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.expiry, s.browserCookie, s.until, s.expirySet = expiry, browser, until, set
		if s.id != "" && s.id == s.cookieID {
			s.rec.Expiry, s.rec.Browser, s.rec.Until = rec.Expiry, rec.Browser, rec.Until
		}
	}
}

func hasMember(ms []member, key string) bool {
	for _, m := range ms {
		if m.Key == key {
			return true
		}
	}
	return false
}

// hasPHPKey reports whether PHP reads key at the top level of ms: a whole
// linked PHP session holds it in its PHP text (phpTopLevel).
func hasPHPKey(ms []member, key string) bool {
	return hasMember(phpTopLevel(ms, key), key)
}

// ttl is the store expiry of this session's next write: the manager's,
// shortened by the app's own expiry (SetExpiry). s.mu must be held.
func (s *Session) ttl(created int64) time.Duration {
	return s.m.ttlWith(created, s.expiry, s.until)
}

// ttlWith is the store TTL of a session created at created (Unix ms)
// with the app's idle expiry (0: the gateway's) and fixed end (Unix ms,
// 0: none).
func (m *Manager) ttlWith(created int64, expiry time.Duration, until int64) time.Duration {
	t := m.ttl(created)
	if expiry > 0 && expiry < t {
		return expiry
	}
	if until != 0 {
		left := time.UnixMilli(until).Sub(m.now())
		if left <= 0 {
			// A TTL <= 0 would mean "never expires" to the store.
			return time.Millisecond
		}
		t = min(t, left)
	}
	return t
}

// WriteReencoded is Write for apps that decode the JSON they were given and
// encode it again (Django): a member whose new value equals the stored one
// as JSON (same structure, member order, strings and numbers; an integer
// never equals a float) keeps the stored text. Re-encoding alone (1.0e+25
// vs 1e+25, "\u00e9" vs "é") is then no change: no needless write in strict
// mode, no false conflict in merge mode, and PHP's exact text survives.
func (s *Session) WriteReencoded(ctx context.Context, id string, data json.RawMessage) ([]string, error) {
	next, err := objectMembers(data)
	if err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var view []member
	if id == s.id {
		view = jsonUnchanged(s.stored, next)
	}
	return s.writeLocked(ctx, id, next, view)
}

// renewal keeps one held lock alive while its request runs: a single timer
// renews the lease every LockLease/3, so the lease only bounds how long a
// crashed gateway's lock blocks a session, and a request shorter than
// LockLease/3 costs no renewal. It ends when the lock is released (stop),
// when the request's context ends (the client left, a timeout: the lease
// then runs out unless the holder releases first, as before), or when a
// renewal finds the lock lost (the final Unlock reports the loss). A
// renewal the store fails is tried again at the next tick.
type renewal struct {
	m   *Manager
	l   store.Lease
	ctx context.Context
	id  string
	// newSession: the lock of a new session whose cookie left before
	// its write (SetCookie); create stores that write all the same.
	newSession bool

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (m *Manager) keepAlive(ctx context.Context, l store.Lease, id string, newSession bool) *renewal {
	if ctx == nil {
		ctx = context.Background()
	}
	r := &renewal{m: m, l: l, ctx: ctx, id: id, newSession: newSession}
	r.mu.Lock()
	r.t = time.AfterFunc(m.o.LockLease/3, r.tick)
	r.mu.Unlock()
	return r
}

func (r *renewal) tick() {
	r.mu.Lock()
	stopped := r.stopped
	r.mu.Unlock()
	if stopped || r.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.m.o.StoreTimeout)
	err := r.l.Renew(ctx, r.m.o.LockLease)
	cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.ctx.Err() != nil {
		return // released meanwhile (a renewal racing Unlock is harmless)
	}
	switch {
	case err == nil:
	case errors.Is(err, store.ErrLeaseLost):
		r.stopped = true
		if r.newSession {
			r.m.log.Warn("new session's lock lost before its first write; another request may use the session meanwhile (the write still stores it)", "session", shortID(r.id), "error", err.Error())
			return
		}
		r.m.log.Warn("session lock lost while the request still runs; another request may use the session meanwhile, and this one's write will fail", "session", shortID(r.id), "error", err.Error())
		return
	default:
		r.m.event("store_error")
		r.m.log.Warn("session lock renewal failed; trying again", "session", shortID(r.id), "error", err.Error())
	}
	r.t.Reset(r.m.o.LockLease / 3)
}

// stop ends the renewals (a renewal in flight completes, harmlessly: the
// store refuses it once the lock is released). nil is a no-op.
func (r *renewal) stop() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.stopped = true
	r.t.Stop()
	r.mu.Unlock()
}

// shortID keeps logs useful without handing out live session IDs.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// jsonEqual reports whether two valid JSON texts hold the same value: same
// structure and member order, equal strings, the same literals, and numbers
// of the same kind (integer or not, as PHP and Python both keep it) with
// the same value. It decides whether an app that re-encoded the session
// changed a member.
func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	for {
		ta, ea := da.Token()
		tb, eb := db.Token()
		if ea == io.EOF || eb == io.EOF {
			return ea == eb
		}
		if ea != nil || eb != nil {
			return false
		}
		switch va := ta.(type) {
		case json.Number:
			vb, ok := tb.(json.Number)
			if !ok || !numbersEqual(string(va), string(vb)) {
				return false
			}
		default:
			if ta != tb {
				return false
			}
		}
	}
}

func numbersEqual(a, b string) bool {
	if a == b {
		return true
	}
	isInt := func(s string) bool { return !strings.ContainsAny(s, ".eE") }
	if isInt(a) != isInt(b) {
		return false
	}
	if isInt(a) {
		x, okx := new(big.Int).SetString(a, 10)
		y, oky := new(big.Int).SetString(b, 10)
		return okx && oky && x.Cmp(y) == 0
	}
	x, errx := strconv.ParseFloat(a, 64)
	y, erry := strconv.ParseFloat(b, 64)
	return errx == nil && erry == nil && x == y && math.Signbit(x) == math.Signbit(y)
}

package sessionbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// Django logs a session out at its next Django page once the hash it
// keeps of the user's password (_auth_user_hash) no longer matches the
// user's: after a password change, every other session of the user, a
// stolen one included, is over. A PHP page cannot compute that hash, so it
// went on naming the user (sessiongate_user_id()) until the session's next
// Django page. sessiongate_django now reports the hashes that are valid
// for a user whenever they may have changed (a login, a password change, a
// user saved), the gateway records them (store.LoginRegistry), and a PHP
// request whose session holds a hash not among them is told so
// (SESSIONGATE_LOGIN_REVOKED); the prepend's helper then names nobody.

// djangoLogin is the part of a session's data that says who logged in
// through Django.
type djangoLogin struct {
	User, Hash string
}

// loginIn returns Django's login among a session's members, if it has
// one with a hash. Another type (a number an app stored there) is no
// Django login. A whole linked PHP session holds the login in its PHP
// text, where PHP still reads it (phpTopLevel).
func loginIn(ms []member) (djangoLogin, bool) {
	var l djangoLogin
	for _, m := range phpTopLevel(ms, "_auth_user_id", "_auth_user_hash") {
		switch m.Key {
		case "_auth_user_id":
			l.User = ""
			_ = json.Unmarshal(m.Value, &l.User)
		case "_auth_user_hash":
			l.Hash = ""
			_ = json.Unmarshal(m.Value, &l.Hash)
		}
	}
	return l, l.User != "" && l.Hash != ""
}

// loginCacheTTL is how long a gateway goes by the logins it read for a
// user before it reads them again: a PHP page of a session logged in
// through Django otherwise waits for one Redis read more (some 50 µs on
// loopback). A password change made through another gateway reaches this
// one's PHP pages that much later; through this one, at once.
const loginCacheTTL = time.Second

// loginCacheMax bounds the users held; past it the cache starts anew.
const loginCacheMax = 10000

// loginCache holds the logins recently read or recorded, by user.
type loginCache struct {
	mu    sync.Mutex
	users map[string]cachedLogins
}

type cachedLogins struct {
	rec  []byte // nil: none recorded
	at   time.Time
	kept bool // its TTL was renewed for a revoked login since it was read
}

func (c *loginCache) get(user string, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.users[user]
	if !ok || now.Sub(e.at) >= loginCacheTTL || now.Before(e.at) {
		return nil, false
	}
	return e.rec, true
}

// keep reports whether user's record is due a renewal of its TTL: once
// per cached read.
func (c *loginCache) keep(user string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.users[user]
	if !ok || e.kept {
		return !ok
	}
	e.kept = true
	c.users[user] = e
	return true
}

func (c *loginCache) put(user string, rec []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users == nil || len(c.users) >= loginCacheMax {
		c.users = make(map[string]cachedLogins)
	}
	c.users[user] = cachedLogins{rec: rec, at: now}
}

// putRead caches rec, a record read from the store by a read that began
// at start, unless the cache took a record since then: one RecordLogins
// wrote (a password change on this gateway while the read's reply was on
// its way), which the read may predate, or another read's, as new. The
// last reply to arrive is not the newest record.
func (c *loginCache) putRead(user string, rec []byte, start time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.users[user]; ok && !e.at.Before(start) {
		return
	}
	if c.users == nil || len(c.users) >= loginCacheMax {
		c.users = make(map[string]cachedLogins)
	}
	c.users[user] = cachedLogins{rec: rec, at: start}
}

// RecordLogins stores hashes as the login hashes valid for user, as long
// as a session can live (loginRecordTTL). A store without a
// store.LoginRegistry records nothing. A client that left does not stop
// it: the password it reports is changed.
func (m *Manager) RecordLogins(ctx context.Context, user string, hashes []string) error {
	reg, ok := m.o.Store.(store.LoginRegistry)
	if !ok {
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.o.StoreTimeout)
	defer cancel()
	rec := []byte(strings.Join(hashes, " "))
	if err := reg.SetLogins(sctx, user, rec, m.loginRecordTTL()); err != nil {
		m.event("store_error")
		return fmt.Errorf("record the valid logins of user %q: %w", user, err)
	}
	m.logins.put(user, rec, m.now())
	return nil
}

// RevokedLogin returns the login hash of the session as Open loaded it
// when Django's login there names a user for whom other hashes were
// recorded since (a password change): "" when the session holds no login,
// nothing was recorded, or the hash is still valid. It reads the members
// Open parsed, not the data again.
func (s *Session) RevokedLogin(ctx context.Context) (string, error) {
	s.mu.Lock()
	stored := s.stored // replaced, never changed in place
	s.mu.Unlock()
	l, ok := loginIn(stored)
	if !ok {
		return "", nil
	}
	return s.m.revokedLogin(ctx, l)
}

// revokedLogin is RevokedLogin for the login l.
func (m *Manager) revokedLogin(ctx context.Context, l djangoLogin) (string, error) {
	reg, ok := m.o.Store.(store.LoginRegistry)
	if !ok || !store.ValidLoginUser(l.User) {
		return "", nil
	}
	start := m.now()
	rec, ok := m.logins.get(l.User, start)
	if !ok {
		sctx, cancel := context.WithTimeout(ctx, m.o.StoreTimeout)
		defer cancel()
		var err error
		if rec, err = reg.Logins(sctx, l.User); err != nil {
			if ctx.Err() != nil {
				// The client left: no failure of the store, as for
				// Open's load.
				return "", ctx.Err()
			}
			m.event("store_error")
			return "", fmt.Errorf("read the valid logins of user %q: %w", l.User, err)
		}
		m.logins.putRead(l.User, rec, start)
	}
	if rec == nil || slices.Contains(strings.Fields(string(rec)), l.Hash) {
		return "", nil
	}
	m.event("django_login_revoked")
	if m.logins.keep(l.User) {
		sctx, cancel := context.WithTimeout(ctx, m.o.StoreTimeout)
		defer cancel()
		if err := reg.KeepLogins(sctx, l.User, m.loginRecordTTL()); err != nil && ctx.Err() == nil {
			// The record still holds for its time; the next revoked
			// login found renews it. A client that left cut the
			// renewal short: no failure of the store.
			m.event("store_error")
			m.log.Warn("cannot renew the record of a user's valid logins", "user", l.User, "error", err.Error())
		}
	}
	return l.Hash, nil
}

// loginRecordTTL is how long a user's record of valid logins lives after
// it was written or last found ending a session's login: as long as a
// session can live (the cookie's Max-Age), and a minute more for the
// second a gateway goes by its cached read. A session's lifetime counts
// from its ID, and a new ID (session_regenerate_id() on a PHP page) keeps
// the data, an ended login included, for another Max-Age: the record must
// outlive every session that holds a login it ends, or that login would
// name the user on PHP pages again. Each PHP page of such a session renews
// it (revokedLogin), and a regeneration happens on one.
func (m *Manager) loginRecordTTL() time.Duration {
	if m.o.Cookie.MaxAge <= 0 {
		return 0
	}
	return m.o.Cookie.MaxAge + time.Minute
}

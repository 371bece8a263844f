package sessionbridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// onlyStore hides a store's optional interfaces (a store without a
// LoginRegistry).
type onlyStore struct{ store.Store }

// TestRevokedLogin: only a session whose top-level Django login names a
// user with recorded hashes that lack its own is revoked; anything else
// (no login, another shape, nothing recorded, a store without a registry)
// is left as it is.
func TestRevokedLogin(t *testing.T) {
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	m := newTestManager(t, LockStrict, mem)
	ctx := context.Background()
	if err := m.RecordLogins(ctx, "7", []string{"new", "fallback"}); err != nil {
		t.Fatal(err)
	}
	if err := m.RecordLogins(ctx, "deleted", nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ data, want string }{
		{`{"_auth_user_id":"deleted","_auth_user_hash":"any"}`, "any"}, // no login valid
		{`{"_auth_user_id":"7","_auth_user_hash":"old","cart":[1]}`, "old"},
		{`{"_auth_user_id":"7","_auth_user_hash":"new"}`, ""},
		{`{"_auth_user_id":"7","_auth_user_hash":"fallback"}`, ""},
		{`{"_auth_user_id":"8","_auth_user_hash":"old"}`, ""},       // nothing recorded for 8
		{`{"_auth_user_id":7,"_auth_user_hash":"old"}`, ""},         // not Django's shape
		{`{"_auth_user_id":"7"}`, ""},                               // no hash
		{`{"x":{"_auth_user_id":"7","_auth_user_hash":"old"}}`, ""}, // nested: no login
		{`{"_auth_user_id":"{7}","_auth_user_hash":"old"}`, ""},     // no registry key
		{`{}`, ""},
	} {
		got, err := revokedIn(t, m, c.data)
		if err != nil || got != c.want {
			t.Errorf("RevokedLogin(%s) = %q, %v; want %q", c.data, got, err, c.want)
		}
	}

	plain := newTestManager(t, LockStrict, onlyStore{mem})
	if err := plain.RecordLogins(ctx, "9", []string{"new"}); err != nil {
		t.Fatalf("RecordLogins without a registry: %v", err)
	}
	if got, err := revokedIn(t, plain, `{"_auth_user_id":"7","_auth_user_hash":"old"}`); got != "" || err != nil {
		t.Errorf("RevokedLogin without a registry: %q, %v", got, err)
	}
}

// TestRevokedLoginCache: a gateway reads a user's logins at most once per
// loginCacheTTL; a password change recorded through it counts at once,
// one recorded through another gateway once the cached read is older than
// that.
func TestRevokedLoginCache(t *testing.T) {
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	reads := &countingLogins{LoginRegistry: mem}
	st := struct {
		store.Store
		store.LoginRegistry
	}{mem, reads}
	here, there := newTestManager(t, LockStrict, st), newTestManager(t, LockStrict, st)
	now := time.Unix(1700000000, 0)
	here.now = func() time.Time { return now }
	ctx := context.Background()
	const session = `{"_auth_user_id":"7","_auth_user_hash":"h1"}`
	if err := here.RecordLogins(ctx, "7", []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if got, _ := revokedIn(t, here, session); got != "" {
			t.Fatalf("a valid login revoked: %q", got)
		}
	}
	if n := reads.n.Load(); n != 0 {
		t.Fatalf("%d reads of logins this gateway had just recorded", n)
	}
	if err := there.RecordLogins(ctx, "7", []string{"h2"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := revokedIn(t, here, session); got != "" {
		t.Fatalf("revoked within the cache's time: %q", got)
	}
	now = now.Add(loginCacheTTL)
	if got, _ := revokedIn(t, here, session); got != "h1" {
		t.Fatalf("after the cache's time: %q, want h1 revoked", got)
	}
	if err := here.RecordLogins(ctx, "7", []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := revokedIn(t, here, session); got != "" {
		t.Fatalf("after this gateway recorded h1 again: %q", got)
	}
	if n := reads.n.Load(); n != 1 {
		t.Fatalf("%d reads of logins, want 1", n)
	}
}

type countingLogins struct {
	store.LoginRegistry
	n atomic.Int64
}

func (c *countingLogins) Logins(ctx context.Context, user string) ([]byte, error) {
	c.n.Add(1)
	return c.LoginRegistry.Logins(ctx, user)
}

// revokedIn is Session.RevokedLogin of a session of m holding data.
func revokedIn(t *testing.T, m *Manager, data string) (string, error) {
	t.Helper()
	ms, err := objectMembers([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return (&Session{m: m, stored: ms}).RevokedLogin(context.Background())
}

// A password change's record of valid logins lived
// SESSIONGATE_SESSION_MAX_AGE from the change, but a session outlives that
// once it gets a new ID (a new ID starts a new absolute lifetime, as PHP
// apps that regenerate on a timer want: CodeIgniter's sessTimeToUpdate).
// The record then expired under a live session that still held the ended
// login, and PHP pages named the user in it again (sessiongate_user_id()),
// while Django never takes it. Each PHP page that finds the login ended
// renews the record, and the regeneration happens on such a page.
func TestRevokedLoginOutlivesARegeneratedSession(t *testing.T) {
	st, mr := newMiniredisStore(t)
	const maxAge = 48 * time.Hour
	m, err := New(Options{
		Store:        st,
		Secrets:      [][]byte{[]byte(testSecret)},
		Cookie:       CookieOptions{Name: "sessionid", MaxAge: maxAge},
		IdleTimeout:  maxAge,
		LockMode:     LockStrict,
		LockTimeout:  2 * time.Second,
		LockLease:    5 * time.Second,
		StoreTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now()
	clock := base
	m.now = func() time.Time { return clock }
	ctx := context.Background()

	const login = `{"_auth_user_id":"7","_auth_user_hash":"h1","cart":[1]}`
	old := createSession(t, m, login)
	// The user changes the password (through Django, on any gateway).
	if err := m.RecordLogins(ctx, "7", []string{"h2"}); err != nil {
		t.Fatal(err)
	}
	revoked := func(id string) string {
		t.Helper()
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release(ctx)
		if s.ID() != id {
			t.Fatalf("session %s not live", shortID(id))
		}
		h, err := s.RevokedLogin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if got := revoked(old); got != "h1" {
		t.Fatalf("right after the change: %q, want h1 revoked", got)
	}
	// 36 h later the PHP app gives the (stolen) session a new ID, data
	// kept, on a page that was told the login ended (php.go asks first).
	clock = base.Add(36 * time.Hour)
	mr.FastForward(36 * time.Hour)
	s, err := m.Open(ctx, requestWithCookie(t, m, old), false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.RevokedLogin(ctx); err != nil || got != "h1" {
		t.Fatalf("the page that regenerates: %q, %v; want h1 revoked", got, err)
	}
	next := NewID()
	if _, err := s.Rotate(ctx, old, next, json.RawMessage(login), true); err != nil {
		t.Fatal(err)
	}
	s.SetCookie(http.Header{})
	s.Release(ctx)
	// 13 h later: the new session is live (created 13 h ago), and so must
	// be the record, past MaxAge from the change.
	clock = base.Add(49 * time.Hour)
	mr.FastForward(13 * time.Hour)
	if got := revoked(next); got != "h1" {
		t.Errorf("the ended login h1 is valid again on PHP pages %v after the password change (its record expired under a live session); RevokedLogin = %q, want h1", 49*time.Hour, got)
	}
}

// TestRevokedLoginOfAWholeLinkedSession: a session PHP linked (the same
// object under two keys, a reference between keys) is stored whole as
// {"__php_session__": "<php text>"}, and PHP still reads Django's login
// from that text (sessiongate_user_id()). The password-change check must
// read it there too, or a stolen session PHP once linked stays logged in
// on every PHP page after the password change.
func TestRevokedLoginOfAWholeLinkedSession(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	ctx := context.Background()
	if err := m.RecordLogins(ctx, "7", []string{"new"}); err != nil {
		t.Fatal(err)
	}
	whole := func(php string) string {
		b, err := json.Marshal(map[string]string{"__php_session__": php})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	b64 := func(php string) string {
		return `{"__php_session__b64":"` + base64.StdEncoding.EncodeToString([]byte(php)) + `"}`
	}
	const obj = `s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:4;`
	for _, c := range []struct{ name, data, want string }{
		{"object under two keys, old hash", whole(`a:4:{s:13:"_auth_user_id";s:1:"7";s:15:"_auth_user_hash";s:3:"old";` + obj + `}`), "old"},
		{"object under two keys, valid hash", whole(`a:4:{s:13:"_auth_user_id";s:1:"7";s:15:"_auth_user_hash";s:3:"new";` + obj + `}`), ""},
		{"login after the linked keys", whole(`a:4:{s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:2;s:13:"_auth_user_id";s:1:"7";s:15:"_auth_user_hash";s:3:"old";}`), "old"},
		// $_SESSION['_auth_user_hash'] = &$_SESSION['h']: PHP reads the
		// string the reference names.
		{"hash by reference", whole(`a:3:{s:1:"h";s:3:"old";s:13:"_auth_user_id";s:1:"7";s:15:"_auth_user_hash";R:2;}`), "old"},
		// A key that is not UTF-8 keeps the session whole, in base64.
		{"base64 whole session", b64("a:3:{s:1:\"\xff\";i:1;s:13:\"_auth_user_id\";s:1:\"7\";s:15:\"_auth_user_hash\";s:3:\"old\";}"), "old"},
		// As in a plain session: Django's login is two strings at the
		// top level.
		{"integer user id", whole(`a:4:{s:13:"_auth_user_id";i:7;s:15:"_auth_user_hash";s:3:"old";` + obj + `}`), ""},
		{"nested login", whole(`a:3:{s:1:"x";a:2:{s:13:"_auth_user_id";s:1:"7";s:15:"_auth_user_hash";s:3:"old";}s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:5;}`), ""},
		{"no hash", whole(`a:3:{s:13:"_auth_user_id";s:1:"7";` + `s:1:"a";O:8:"stdClass":0:{}s:1:"b";r:3;}`), ""},
		{"text PHP cannot read", whole(`a:2:{s:13:"_auth_user_id";s:1:"7";s:15:"_auth_user_hash";s:3:"old"`), ""},
	} {
		if _, err := phpserial.EncodeSession([]byte(c.data), phpserial.Limits{}); (err == nil) != (c.name != "text PHP cannot read") {
			t.Fatalf("%s: PHP given %s: %v", c.name, c.data, err)
		}
		if got, err := revokedIn(t, m, c.data); got != c.want || err != nil {
			t.Errorf("%s: RevokedLogin(%s) = %q, %v; want %q", c.name, c.data, got, err, c.want)
		}
	}
}

// leavingLogins is a memory store whose login read (read) or renewal (keep)
// is where the client leaves: it ends the request's context (leave) and
// fails with its error, as a go-redis call does when the context ends
// mid-call.
type leavingLogins struct {
	*memory.Store
	read, keep bool
	leave      context.CancelFunc
}

func (s *leavingLogins) Logins(ctx context.Context, user string) ([]byte, error) {
	if !s.read {
		return s.Store.Logins(ctx, user)
	}
	s.leave()
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *leavingLogins) KeepLogins(ctx context.Context, user string, ttl time.Duration) error {
	if !s.keep {
		return s.Store.KeepLogins(ctx, user, ttl)
	}
	s.leave()
	<-ctx.Done()
	return ctx.Err()
}

// TestRevokedLoginClientLeftIsNoStoreError: a client that leaves while its
// PHP request reads or renews the user's record of valid logins is no
// failure of the store, as for Open's load: the store_error count
// (sessiongate_session_store_errors_total) and the warnings are for Redis
// failing. Both counted the cancellation, and the PHP bridge warned that
// it could not tell whether the login had ended.
func TestRevokedLoginClientLeftIsNoStoreError(t *testing.T) {
	for _, c := range []struct {
		name       string
		read, keep bool
	}{
		{"read", true, false},
		{"renewal", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.New(memory.Options{})
			t.Cleanup(func() { mem.Close() })
			st := &leavingLogins{Store: mem}
			m := newTestManager(t, LockMerge, st)
			mc := &eventCounter{}
			m.o.Metrics = mc
			logs := captureLog(m)
			if err := m.RecordLogins(context.Background(), "7", []string{"new"}); err != nil {
				t.Fatal(err)
			}
			id := createSession(t, m, `{"_auth_user_id":"7","_auth_user_hash":"old"}`)
			m.logins = loginCache{} // read again, not the record just made
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st.read, st.keep, st.leave = c.read, c.keep, cancel
			var ranPHP bool
			h := m.PHPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ranPHP = true }), PHPOptions{})
			r := requestWithCookie(t, m, id).WithContext(ctx)
			r = r.WithContext(fcgi.WithScript(r.Context(), &fcgi.Script{ScriptName: "/t.php"}))
			h.ServeHTTP(httptest.NewRecorder(), r)
			if !ranPHP || ctx.Err() == nil {
				t.Fatalf("PHP ran %v, client left %v: the client did not leave at the login records", ranPHP, ctx.Err() != nil)
			}
			if n := mc.count("store_error"); n != 0 {
				t.Errorf("the client leaving counted %d store errors (events %v)", n, mc.events)
			}
			if strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("the client leaving was warned of:\n%s", logs.String())
			}
		})
	}
}

// stallLogins holds a Logins read after it got its answer from the store,
// until released: a PHP request's read of the user's record that Redis
// answered before a Django password change was recorded, and whose reply
// is handled after it.
type stallLogins struct {
	store.LoginRegistry
	read, release chan struct{}
}

func (s *stallLogins) Logins(ctx context.Context, user string) ([]byte, error) {
	rec, err := s.LoginRegistry.Logins(ctx, user)
	s.read <- struct{}{}
	<-s.release
	return rec, err
}

// A PHP request's cache miss reads a user's record of valid logins; while
// its reply is on the way, a Django password change on the same gateway
// records the new hash (RecordLogins caches it). The reply, the old record,
// must not replace the new one in the cache: for the cache's second the
// session that just changed its password got SESSIONGATE_LOGIN_REVOKED
// (sessiongate_user_id() named nobody) and the ended login was taken for
// valid.
func TestStaleLoginReadDoesNotOverwriteARecordedChange(t *testing.T) {
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	sl := &stallLogins{LoginRegistry: mem, read: make(chan struct{}), release: make(chan struct{})}
	st := struct {
		store.Store
		store.LoginRegistry
	}{mem, sl}
	m := newTestManager(t, LockStrict, st)
	ctx := context.Background()
	// The record as it stood: the old password's hash. Written to the
	// store directly (another gateway), so this one has no cached read.
	if err := mem.SetLogins(ctx, "7", []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // a PHP page of a session holding the old login
		defer close(done)
		revokedIn(t, m, `{"_auth_user_id":"7","_auth_user_hash":"old"}`)
	}()
	<-sl.read
	// The password change through Django on this gateway, while the
	// PHP request's reply is on its way.
	if err := m.RecordLogins(ctx, "7", []string{"new"}); err != nil {
		t.Fatal(err)
	}
	close(sl.release)
	<-done
	// The session whose password was just changed (Django updated its
	// hash): its login is valid.
	if got, err := revokedIn(t, m, `{"_auth_user_id":"7","_auth_user_hash":"new"}`); got != "" || err != nil {
		t.Errorf("the new, valid login is taken for ended (%q, %v): the stale read overwrote the recorded change in the cache", got, err)
	}
	if got, _ := revokedIn(t, m, `{"_auth_user_id":"7","_auth_user_hash":"old"}`); got != "old" {
		t.Errorf("the login the password change ended is taken for valid (%q)", got)
	}
}

package sessionbridge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// ttlStore records the TTL of every write that reaches the backend, through
// Save, Touch and lease unlocks.
type ttlStore struct {
	store.Store
	mu   sync.Mutex
	ttls []time.Duration
}

func (s *ttlStore) note(d time.Duration) {
	s.mu.Lock()
	s.ttls = append(s.ttls, d)
	s.mu.Unlock()
}

func (s *ttlStore) last(t *testing.T) time.Duration {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ttls) == 0 {
		t.Fatal("no TTL recorded")
	}
	return s.ttls[len(s.ttls)-1]
}

func (s *ttlStore) Save(ctx context.Context, id string, expect uint64, v []byte, ttl time.Duration) (uint64, error) {
	s.note(ttl)
	return s.Store.Save(ctx, id, expect, v, ttl)
}

func (s *ttlStore) Touch(ctx context.Context, id string, expect uint64, ttl time.Duration) error {
	s.note(ttl)
	return s.Store.Touch(ctx, id, expect, ttl)
}

func (s *ttlStore) Lock(ctx context.Context, id string, lease time.Duration) (store.Lease, store.Record, error) {
	l, rec, err := s.Store.Lock(ctx, id, lease)
	if err != nil {
		return nil, rec, err
	}
	return ttlLease{l, s}, rec, nil
}

type ttlLease struct {
	store.Lease
	s *ttlStore
}

func (l ttlLease) Unlock(ctx context.Context, m store.Mutation) (uint64, error) {
	if m.TTL != 0 {
		l.s.note(m.TTL)
	}
	return l.Lease.Unlock(ctx, m)
}

func cookieOf(t *testing.T, h http.Header) *http.Cookie {
	t.Helper()
	cks := (&http.Response{Header: h}).Cookies()
	if len(cks) != 1 {
		t.Fatalf("want one cookie, got %v", h)
	}
	return cks[0]
}

func TestSetExpiryShortensTTLAndCookie(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		mem := memory.New(memory.Options{})
		defer mem.Close()
		ts := &ttlStore{Store: mem}
		m := newTestManager(t, mode, ts)
		id := createSession(t, m, `{"a":1}`)
		if got := ts.last(t); got != 10*time.Minute {
			t.Fatalf("%s: default TTL %v, want the idle timeout", mode, got)
		}

		// set_expiry(300) with a change: TTL and Max-Age 300 s, same ID.
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		s.SetExpiry(300*time.Second, false)
		if _, err := s.WriteReencoded(ctx, id, json.RawMessage(`{"a":2}`)); err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		s.SetCookie(h)
		s.Release(ctx)
		if got := ts.last(t); got != 300*time.Second {
			t.Errorf("%s: TTL %v after set_expiry(300)", mode, got)
		}
		if ck := cookieOf(t, h); ck.MaxAge != 300 {
			t.Errorf("%s: cookie Max-Age %d, want 300", mode, ck.MaxAge)
		}

		// Beyond the gateway's limits: both stay at the limits.
		s, _ = m.Open(ctx, requestWithCookie(t, m, id), false)
		s.SetExpiry(48*time.Hour, false)
		if err := s.Touch(ctx, id); err != nil {
			t.Fatal(err)
		}
		h = http.Header{}
		s.SetCookie(h)
		s.Release(ctx)
		if got := ts.last(t); got != 10*time.Minute {
			t.Errorf("%s: TTL %v exceeds the idle timeout", mode, got)
		}
		if ck := cookieOf(t, h); ck.MaxAge != int(time.Hour/time.Second) {
			t.Errorf("%s: cookie Max-Age %d exceeds the max age", mode, ck.MaxAge)
		}

		// set_expiry(0): a browser-session cookie.
		s, _ = m.Open(ctx, requestWithCookie(t, m, id), false)
		s.SetExpiry(0, true)
		s.Release(ctx)
		h = http.Header{}
		s.SetCookie(h)
		if ck := cookieOf(t, h); ck.MaxAge != 0 || ck.Expires != (time.Time{}) || ck.Value == "" {
			t.Errorf("%s: want a browser-session cookie, got %+v", mode, ck)
		}

		// Without SetExpiry an unchanged session sends no cookie.
		s, _ = m.Open(ctx, requestWithCookie(t, m, id), false)
		s.Release(ctx)
		h = http.Header{}
		s.SetCookie(h)
		if len(h) != 0 {
			t.Errorf("%s: cookie without a change: %v", mode, h)
		}
	}
}

func TestWriteReencodedKeepsStoredText(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		m := newTestManager(t, mode, nil)
		stored := `{"f":1.0e+25,"s":"\u00e9\u003c","tag":{"__php__":"O:3:\"Foo\":0:{}"},"i":1,"z":-0.0}`
		id := createSession(t, m, stored)
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		// What Python's json.dumps makes of it, plus one real change. 1.0 is
		// not 1 (a float is not an integer) and 0.0 is not -0.0.
		conflicts, err := s.WriteReencoded(ctx, id, json.RawMessage(`{"f":1e+25,"s":"é<","tag":{"__php__":"O:3:\"Foo\":0:{}"},"i":1.0,"z":0.0,"new":true}`))
		if err != nil || len(conflicts) != 0 {
			t.Fatalf("%s: %v %v", mode, conflicts, err)
		}
		s.Release(ctx)
		cur, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
		want := `{"f":1.0e+25,"s":"\u00e9\u003c","tag":{"__php__":"O:3:\"Foo\":0:{}"},"i":1.0,"z":0.0,"new":true}`
		if got := string(cur.Data()); got != want {
			t.Errorf("%s:\n got %s\nwant %s", mode, got, want)
		}
		cur.Release(ctx)
	}
}

func TestJSONEqual(t *testing.T) {
	for _, c := range []struct {
		a, b string
		eq   bool
	}{
		{`1`, `1`, true},
		{`1`, `1.0`, false},
		{`1.0`, `1.00`, true},
		{`1.0e+25`, `1e25`, true},
		{`0.1`, `0.10000000000000001`, true}, // same float64
		{`0.0`, `-0.0`, false},
		{`12345678901234567890`, `12345678901234567891`, false},
		{`"é"`, `"\u00e9"`, true},
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`, false}, // order is PHP's array order
		{`{"a":[1,{"x":null}]}`, `{ "a" : [ 1 , { "x" : null } ] }`, true},
		{`[1,2]`, `[1,2,3]`, false},
		{`{"a":true}`, `{"a":false}`, false},
		{`[]`, `{}`, false},
	} {
		if got := jsonEqual([]byte(c.a), []byte(c.b)); got != c.eq {
			t.Errorf("jsonEqual(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

func TestRespondOpenError(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	for _, c := range []struct {
		err    error
		status int
	}{
		{ErrBusy, 503},
		{errors.Join(ErrUnavailable, errors.New("dial tcp: refused")), 503},
		{context.Canceled, 0}, // no answer: the handler aborts
	} {
		w := httptest.NewRecorder()
		aborted := func() (aborted bool) {
			defer func() {
				if p := recover(); p != nil {
					if p != http.ErrAbortHandler {
						panic(p)
					}
					aborted = true
				}
			}()
			m.RespondOpenError(w, httptest.NewRequest("GET", "/admin/", nil), c.err)
			return false
		}()
		if c.status == 0 {
			if !aborted || w.Body.Len() != 0 || len(w.Header()) != 0 {
				t.Errorf("%v: aborted %v, wrote %q %v; want no answer and the handler aborted", c.err, aborted, w.Body.String(), w.Header())
			}
			continue
		}
		if aborted || w.Code != c.status {
			t.Errorf("%v: status %d (aborted %v), want %d", c.err, w.Code, aborted, c.status)
		}
		if w.Header().Get("Retry-After") == "" {
			t.Errorf("%v: no Retry-After", c.err)
		}
	}
}

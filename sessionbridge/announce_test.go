package sessionbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A page that starts a new session and sends its output before the end
// (more than output_buffering, or flush()) hands the browser the cookie of
// a session that is not written yet: the write comes at the end of the
// script. A request the browser makes with that cookie meanwhile (a
// captcha image, an XHR the page's first bytes start) must wait for the
// session in strict mode, as with PHP's files handler (session_start()
// creates and locks the file), and then see what the page stored. Without
// the lock it found no session, started one of its own and replaced the
// browser's cookie, so the page's data (a CSRF token, a captcha answer)
// was lost.
func TestNewSessionWhoseCookieLeftBeforeItsWriteIsLocked(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	if err := s.Announce(id); err != nil { // PHP's session_start()
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetCookie(h) // the page's output starts
	if !strings.HasPrefix(h.Get("Set-Cookie"), "sessionid=") {
		t.Fatalf("no cookie: %v", h)
	}

	type result struct {
		id, data string
		err      error
	}
	got := make(chan result, 1)
	go func() {
		s2, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			got <- result{err: err}
			return
		}
		got <- result{s2.ID(), string(s2.Data()), nil}
		s2.Release(ctx)
	}()
	select {
	case r := <-got:
		t.Fatalf("a request with the new session's cookie ran while the page that opened it still runs: session %q %s %v", r.id, r.data, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	// The script ends: its write arrives after the output.
	if _, err := s.Write(ctx, id, json.RawMessage(`{"csrf":"t0k"}`), nil); err != nil {
		t.Fatal(err)
	}
	s.Release(ctx)
	r := <-got
	if r.err != nil || r.id != id || r.data != `{"csrf":"t0k"}` {
		t.Fatalf("the waiting request got session %q %s (%v), want %s {\"csrf\":\"t0k\"}", r.id, r.data, r.err, id)
	}
}

// The lock of a new session whose cookie left early does not cost it its
// write when its lease ran out under the page (the client left, so the
// lock was no longer renewed; or renewing failed): only this request knows
// the ID, so it stores the session as it did without a lock.
func TestNewSessionWrittenAfterItsLockLeaseIsKept(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	m := newTestManager(t, LockStrict, nil)
	m.o.LockLease = 50 * time.Millisecond
	s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	if err := s.Announce(id); err != nil {
		t.Fatal(err)
	}
	s.SetCookie(http.Header{})
	cancel() // the client leaves; PHP runs on and writes
	time.Sleep(100 * time.Millisecond)
	if _, err := s.Write(ctx, id, json.RawMessage(`{"csrf":"t0k"}`), nil); err != nil {
		t.Fatalf("write after the lease: %v", err)
	}
	s.Release(ctx)
	if got := storedData(t, m, id); got != `{"csrf":"t0k"}` {
		t.Fatalf("stored %s", got)
	}
}

// Merge mode never waits, but a request made with the cookie of a new
// session that left before the session's write must still find that
// session, not start one of its own (whose cookie replaces the page's);
// then its change and the page's both survive, as for any two requests of
// one session.
func TestMergeNewSessionWhoseCookieLeftBeforeItsWriteIsFound(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	if err := s.Announce(id); err != nil {
		t.Fatal(err)
	}
	s.SetCookie(http.Header{})

	s2, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	if s2.ID() != id {
		t.Fatalf("a request with the new session's cookie found session %q, want %s", s2.ID(), id)
	}
	if _, err := s2.Write(ctx, id, json.RawMessage(`{"captcha":"42"}`), nil); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s2.SetCookie(h)
	s2.Release(ctx)
	if len(h.Values("Set-Cookie")) != 0 {
		t.Fatalf("the second request replaced the cookie: %v", h)
	}
	if _, err := s.Write(ctx, id, json.RawMessage(`{"csrf":"t0k"}`), nil); err != nil {
		t.Fatal(err)
	}
	s.Release(ctx)
	if got := storedData(t, m, id); got != `{"captcha":"42","csrf":"t0k"}` {
		t.Fatalf("stored %s", got)
	}
}

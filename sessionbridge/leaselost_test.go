package sessionbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A lock lease that ran out under a request whose client left (the
// renewal stops with the client) is no store failure: Redis answered, and
// the renewal's own "lease lost" is not counted either. store_error (and
// sessiongate_session_store_errors_total, "failed Redis operations") must
// not count it, or an alert on Redis errors fires whenever clients leave
// slow pages.
func TestLeaseLostIsNotAStoreError(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"n":1}`)
	mc := &eventCounter{}
	m.o.Metrics = mc
	m.o.LockLease = 50 * time.Millisecond

	// An unchanged write (a touch) after the lease ran out.
	ctx, cancel := context.WithCancel(context.Background())
	s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	cancel() // the client leaves; the page runs on
	time.Sleep(150 * time.Millisecond)
	if _, err := s.Write(context.Background(), id, json.RawMessage(`{"n":1}`), nil); err != nil {
		t.Fatalf("unchanged write after the lease ran out: %v", err)
	}
	s.Release(context.Background())

	// A request that wrote nothing, released after the lease ran out.
	ctx, cancel = context.WithCancel(context.Background())
	s, err = m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(150 * time.Millisecond)
	s.Release(context.Background())

	if n := mc.count("store_error"); n != 0 {
		t.Fatalf("store_error counted %d times for lock leases that ran out; the store never failed (events %v)", n, mc.events)
	}
}

// The same for the lock of a new session whose cookie left before its
// write (announced): a page that then stores nothing, released after that
// lease ran out under it, had its Unlock's "lease lost" counted as a store
// error. It is still logged, as the held session's is.
func TestAnnouncedLeaseLostIsNotAStoreError(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	mc := &eventCounter{}
	m.o.Metrics = mc
	m.o.LockLease = 50 * time.Millisecond
	logs := captureLog(m)

	ctx, cancel := context.WithCancel(context.Background())
	s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Announce(NewID()); err != nil { // PHP's session_start()
		t.Fatal(err)
	}
	s.SetCookie(http.Header{}) // the page's output starts: the new session is locked
	cancel()                   // the client leaves; the page runs on
	time.Sleep(150 * time.Millisecond)
	s.Release(context.Background()) // and ends without writing

	if n := mc.count("store_error"); n != 0 {
		t.Fatalf("store_error counted %d times for a new session's lock lease that ran out; the store never failed (events %v)", n, mc.events)
	}
	if !strings.Contains(logs.String(), "lease lost") {
		t.Fatalf("the lease that ran out was not logged:\n%s", logs.String())
	}
}

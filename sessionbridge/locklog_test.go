package sessionbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A read-only strict-mode request whose lock Redis lost before its lease
// ended (a failover to a replica that never got it, FLUSHDB, an eviction)
// was logged at its release as a lease that "ran out ... (its renewal
// failed, or the client left)": neither happened (the request is short,
// the client still there), and the operator looked at the request instead
// of at Redis losing locks.
func TestVanishedLockLoggedAsTheStoresLoss(t *testing.T) {
	st, mr := newMiniredisStore(t)
	m := newTestManager(t, LockStrict, st)
	id := createSession(t, m, `{"n":0}`)
	logs := captureLog(m)
	ctx := context.Background()
	s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	// Redis loses the lock (a failover, a flush of the lock, an eviction).
	for _, k := range mr.Keys() {
		if strings.Contains(k, "lock") {
			mr.Del(k)
		}
	}
	s.Release(ctx) // a read-only page: touch at the end
	out := logs.String()
	t.Logf("log:\n%s", out)
	if strings.Contains(out, "its renewal failed, or the client left") || !strings.Contains(out, "session lock vanished from the store before its lease ended") {
		t.Errorf("a lock Redis lost is not logged as the store's loss:\n%s", out)
	}
}

// The renewal of a new session's lock (strict mode, taken when its cookie
// leaves before its write, SetCookie) that found the lock lost logged
// "this one's write will fail"; create stores that write all the same
// (Save), so the operator was told of a lost write that was stored.
func TestLostLockOfNewSessionNotLoggedAsALostWrite(t *testing.T) {
	st, mr := newMiniredisStore(t)
	m, err := New(Options{Store: st, Secrets: [][]byte{[]byte(testSecret)}, Cookie: CookieOptions{Name: "sessionid", MaxAge: time.Hour},
		IdleTimeout: time.Minute, LockTimeout: time.Second, LockLease: 300 * time.Millisecond, StoreTimeout: time.Second, LockMode: LockStrict})
	if err != nil {
		t.Fatal(err)
	}
	logs := captureLog(m)
	ctx := context.Background()
	s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	if err := s.Announce(id); err != nil {
		t.Fatal(err)
	}
	s.SetCookie(http.Header{}) // the cookie leaves: the new session is locked
	for _, k := range mr.Keys() {
		if strings.Contains(k, "lock") {
			mr.Del(k) // Redis loses it (failover, eviction)
		}
	}
	time.Sleep(250 * time.Millisecond) // a renewal tick (LockLease/3)
	if _, err := s.Write(ctx, id, json.RawMessage(`{"user":"ann"}`), nil); err != nil {
		t.Fatalf("write: %v", err)
	}
	s.Release(ctx)
	out := logs.String()
	t.Logf("log:\n%s", out)
	if got := string(storedRecord(t, m, id).Data); got != `{"user":"ann"}` {
		t.Fatalf("stored %s", got)
	}
	if strings.Contains(out, "this one's write will fail") || !strings.Contains(out, "new session's lock lost before its first write") {
		t.Errorf("the log does not say the new session's write still stores it:\n%s", out)
	}
}

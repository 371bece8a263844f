package sessionbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// A session with an app's own idle expiry (Django's set_expiry(n), kept in
// the record) that PHP then regenerates without destroy
// (session_regenerate_id(false): the old session stays) keeps that expiry,
// which only its store TTL enforces (expired() checks the gateway's idle
// timeout). The old session's lock was released with the gateway's TTL,
// so the old ID, with the data from before the login, stayed usable for
// the gateway's whole idle timeout.
func TestRegenerationKeepsTheOldSessionsAppExpiry(t *testing.T) {
	ctx := context.Background()
	const appIdle = 300 * time.Millisecond
	m := newTestManager(t, LockStrict, nil) // idle timeout 10 min
	old := createSession(t, m, `{"a":1}`)
	setAppExpiry(t, m, old, appIdle)

	// Control: unused for longer than the app's expiry, it is gone.
	ctrl := createSession(t, m, `{"c":1}`)
	setAppExpiry(t, m, ctrl, appIdle)

	// PHP: session_start(), session_regenerate_id(false), the new ID's write.
	s, err := m.Open(ctx, requestWithCookie(t, m, old), false)
	if err != nil || s.ID() != old {
		t.Fatalf("open: %v %q", err, s.ID())
	}
	if _, err := s.Write(ctx, NewID(), json.RawMessage(`{"a":1}`), nil); err != nil {
		t.Fatal(err)
	}
	s.SetCookie(http.Header{})
	s.Release(ctx)

	time.Sleep(3 * appIdle)
	if got := storedData(t, m, ctrl); got != `{}` {
		t.Fatalf("control: session unused past its app expiry still loads: %s", got)
	}
	if got := storedData(t, m, old); got != `{}` {
		t.Errorf("the old session of a session_regenerate_id(false), unused for %v with an app idle expiry of %v, still loads %s: its TTL was reset to the gateway's idle timeout", 3*appIdle, appIdle, got)
	}
}

package sessionbridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// A request queued for a session's lock behind a request that writes is
// handed the lock with the data that write makes, while the write is still
// on its way to Redis. Settled tells whether that data was stored: when the
// write failed, the waiter must not show it as if it were (ErrUnavailable:
// the gateway answers 503).
func TestSettledReportsTheFailedWriteALoadCameFrom(t *testing.T) {
	for _, fail := range []bool{false, true} {
		m, mr := newMiniredisManager(t, LockStrict)
		ctx := context.Background()
		x := createSession(t, m, `{"n":1}`)
		a, err := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err != nil {
			t.Fatal(err)
		}
		opened := make(chan *Session, 1)
		go func() {
			b, err := m.Open(ctx, requestWithCookie(t, m, x), false)
			if err != nil {
				t.Error(err)
			}
			opened <- b
		}()
		time.Sleep(100 * time.Millisecond) // b waits for the lock
		if fail {
			mr.SetError("OOM command not allowed when used memory > 'maxmemory'.")
		}
		_, werr := a.Write(ctx, x, json.RawMessage(`{"n":2}`), nil)
		a.Release(ctx)
		mr.SetError("")
		if fail != (werr != nil) {
			t.Fatalf("fail %v: the write: %v", fail, werr)
		}
		b := <-opened
		if b == nil {
			t.Fatal("no session")
		}
		if !strings.Contains(string(b.Data()), `"n":2`) {
			t.Fatalf("fail %v: the waiter was given %s, not the write's record (no hand-over?)", fail, b.Data())
		}
		err = b.Settled(ctx)
		switch {
		case fail && !errors.Is(err, ErrUnavailable):
			t.Errorf("the write the waiter's data came from failed; Settled = %v, want ErrUnavailable", err)
		case !fail && err != nil:
			t.Errorf("the write the waiter's data came from was stored; Settled = %v", err)
		}
		b.Release(ctx)
	}
}

package sessionbridge

import (
	"math"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// An idle timeout of centuries (SESSIONGATE_SESSION_IDLE_TIMEOUT=2562047h,
// the largest duration, for "never idle") is a valid setting: the session
// must still be there on the next request. 1.25 x it overflowed to a
// negative limit, and every session was dropped as expired at once.
func TestIdleTimeoutOfCenturiesKeepsSessions(t *testing.T) {
	for _, idle := range []time.Duration{math.MaxInt64, 2100000 * time.Hour, 876000 * time.Hour} {
		for _, mode := range []LockMode{LockStrict, LockMerge} {
			mem := memory.New(memory.Options{})
			t.Cleanup(func() { mem.Close() })
			m, err := New(Options{
				Store:        mem,
				Secrets:      [][]byte{[]byte(testSecret)},
				Cookie:       CookieOptions{Name: "sessionid", MaxAge: time.Hour},
				IdleTimeout:  idle,
				LockMode:     mode,
				LockTimeout:  2 * time.Second,
				LockLease:    5 * time.Second,
				StoreTimeout: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			id := createSession(t, m, `{"user":"ana"}`)
			if got := storedData(t, m, id); got != `{"user":"ana"}` {
				t.Errorf("idle timeout %v, %s: the next request's session holds %q, want the one just written", idle, mode, got)
			}
		}
	}
}

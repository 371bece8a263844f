package integration

import (
	"strings"
	"testing"
	"time"
)

// TestSessionIdleTimeoutSlidesOnDjangoReads: SESSIONGATE_SESSION_IDLE_TIMEOUT
// is "a session unused this long expires". A PHP page that only reads the
// session (session_start, lazy write) keeps it alive; a Django page that only
// reads it (the admin reading request.user) must too, or an admin browsing
// for a while is logged out although active.
func TestSessionIdleTimeoutSlidesOnDjangoReads(t *testing.T) {
	t.Parallel()
	const idle = 4 * time.Second
	s := startDjangoStack(t, "SESSIONGATE_SESSION_IDLE_TIMEOUT="+idle.String())
	gw := s.gws[0]
	j := jar{}
	adminLogin(t, gw, j)
	// Read-only admin pages, one a second, for twice the idle timeout:
	// each must slide the Redis TTL, which ends the session after 4 s
	// unused.
	deadline := time.Now().Add(2 * idle)
	for time.Now().Before(deadline) {
		res, body := call(t, gw, j, "GET", "/admin/", "")
		if res.StatusCode != 200 || !strings.Contains(body, "Site administration") {
			t.Fatalf("logged out while browsing the admin: %d Location %q", res.StatusCode, res.Header.Get("Location"))
		}
		time.Sleep(time.Second)
	}
}

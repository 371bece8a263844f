package integration

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// TestSessionNewSessionLeaseLostCountedOnce: a new visitor's page sends
// its output, and with it the new session's cookie, before it writes the
// session, so strict mode locks that session meanwhile. Redis stalls
// (CLIENT PAUSE) longer than the lock's lease: each renewal that times out
// is a store error, and the lease runs out. The page then ends the session
// unwritten (a logout page's session_destroy()); the release finds the
// lease gone, which is no new failure of Redis: it was counted a second
// time, as it is not for a session the request loaded
// (TestLeaseLostIsNotAStoreError), so sessiongate_session_store_errors_total
// ("failed Redis operations") overstated every stall.
func TestSessionNewSessionLeaseLostCountedOnce(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK_LEASE=1s", "SESSIONGATE_REDIS_TIMEOUT=200ms"}})
	goFile, q := markFile(t)
	resp, err := sessionClient.Get(s.gws[0].URL + "/new_session_streams.php?destroy=1&go=" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("started\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "started\n" || !hasCookie(resp, "sessionid") {
		t.Fatalf("page: %d %q %v, cookies %v", resp.StatusCode, first, err, resp.Header["Set-Cookie"])
	}
	if err := s.redis.Do(context.Background(), "CLIENT", "PAUSE", 1600, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	// The first renewal after the stall finds the lease gone.
	if _, ok := logLine(s.gws[0].Logs, "new session's lock lost before its first write"); !ok {
		t.Fatalf("the new session's lease did not run out during the stall; log:\n%s", s.gws[0].Logs.String())
	}
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "done" {
		t.Fatalf("page's end: %q %v", rest, err)
	}
	if _, ok := logLine(s.gws[0].Logs, `"path":"/new_session_streams.php"`); !ok {
		t.Fatalf("the page's request was not logged:\n%s", s.gws[0].Logs.String())
	}
	failed := strings.Count(s.gws[0].Logs.String(), "session lock renewal failed")
	if failed == 0 {
		t.Fatalf("no renewal failed during a stall of 1.6 s; log:\n%s", s.gws[0].Logs.String())
	}
	m := metricstest.Scrape(t, s.gws[0].Admin+"/metrics")
	if got := m["sessiongate_session_store_errors_total"]; got != float64(failed) {
		t.Errorf("sessiongate_session_store_errors_total = %v for %d failed renewals and a release that found the lease gone; want %d; log:\n%s", got, failed, failed, s.gws[0].Logs.String())
	}
}

func hasCookie(resp *http.Response, name string) bool {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return true
		}
	}
	return false
}

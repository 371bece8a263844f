package integration

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSessionLockLeaseRenewedWhileRequestRuns: a PHP page that keeps its
// session open three times longer than SESSIONGATE_SESSION_LOCK_LEASE still
// holds the session to its end (the gateway renews the lease of a live
// request; the lease only bounds a crashed gateway's lock): the session's
// other requests, on the same gateway and on another one, wait for it and
// see its write, and the page's write is not refused with 503.
func TestSessionLockLeaseRenewedWhileRequestRuns(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{
		"SESSIONGATE_SESSION_LOCK_LEASE=1s",
		"SESSIONGATE_PHP_TIMEOUT=30s",
	}})
	ck := s.newSession(t)

	type answer struct {
		status int
		body   string
		at     time.Time
	}
	slow := make(chan answer, 1)
	started, q := markFile(t)
	go func() {
		resp, body, _ := s.gws[0].get(t, "/hold.php?ms=3000&started="+q, ck)
		slow <- answer{resp.StatusCode, body, time.Now()}
	}()
	waitForFile(t, started, "hold.php")

	// Two other requests of the session while the page holds it: one on
	// the page's own gateway (a local waiter), one on the other gateway.
	var wg sync.WaitGroup
	others := make([]answer, 2)
	for i, gw := range []*sessionGW{s.gws[0], s.gws[1]} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body, _ := gw.get(t, "/get.php", ck)
			others[i] = answer{resp.StatusCode, body, time.Now()}
		}()
	}
	wg.Wait()
	a := <-slow
	if a.status != 200 || a.body != "held" {
		t.Errorf("the slow page: %d %q, want 200 \"held\" (its lock lease ran out under it?)", a.status, a.body)
	}
	for i, o := range others {
		if o.status != 200 {
			t.Errorf("request %d: %d %s", i, o.status, o.body)
			continue
		}
		if o.at.Before(a.at) {
			t.Errorf("request %d was answered before the slow page ended: it ran concurrently with it on the same session", i)
		}
		if !strings.Contains(o.body, `"held":1`) {
			t.Errorf("request %d does not see the slow page's write: %s", i, o.body)
		}
	}
	// The write landed in the store.
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"held":1`) || !strings.Contains(string(d.Data), `"user":"ana"`) {
		t.Errorf("session after the slow page: %s", d.Data)
	}
}

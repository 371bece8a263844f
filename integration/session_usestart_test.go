package integration

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"
)

// TestSessionRequestOutlastingIdleTimeoutKeepsSession: a request's use of
// its session counts from its start. With SESSIONGATE_SESSION_LOCK=merge
// and a 4 s SESSIONGATE_SESSION_IDLE_TIMEOUT, PHP pages that start 2.5 s
// after the session's last use (it is live) and end after the 4 s, counted
// from that use, ran out keep the session: one that writes keeps its write
// (it was dropped as "destroyed concurrently", the user logged out), one
// that only reads leaves the session in place. Real php-fpm and
// redis-server, standalone and Cluster.
func TestSessionRequestOutlastingIdleTimeoutKeepsSession(t *testing.T) {
	t.Parallel()
	for _, cluster := range []bool{false, true} {
		name := "standalone"
		if cluster {
			name = "cluster"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const idle = 4 * time.Second
			s := startSessionStack(t, stackOpts{cluster: cluster, env: []string{
				"SESSIONGATE_SESSION_LOCK=merge",
				"SESSIONGATE_SESSION_IDLE_TIMEOUT=" + idle.String(),
			}})
			before := time.Now()
			writer, reader := s.newSession(t), s.newSession(t)
			after := time.Now()
			time.Sleep(time.Until(before.Add(idle - 1500*time.Millisecond)))
			read := make(chan [2]any, 1)
			go func() {
				resp, body, _ := s.gws[1].get(t, "/sleep_read.php?ms=2500", reader)
				read <- [2]any{resp.StatusCode, body}
			}()
			release, done := startMergeWait(t, s.gws[0], writer, url.Values{"k": {"cart"}, "v": {"3"}})
			if time.Since(before) >= idle {
				t.Skipf("the page loaded its session %v after its last use, past the idle timeout: too slow a machine for this test", time.Since(before))
			}
			time.Sleep(time.Until(after.Add(idle + time.Second)))
			release()
			if r := <-done; r != [2]string{"200", "ok"} {
				t.Errorf("a page that started within the idle timeout and wrote after it: %v", r)
			}
			if r := <-read; r != [2]any{200, "read ana"} {
				t.Errorf("a read-only page that started within the idle timeout and ended after it: %v", r)
			}
			if got := sessionData(t, s.gws[1], writer); got["user"] != "ana" || got["cart"] != "3" {
				t.Errorf("the writing page's session after it: %v, want its user and its write (cart 3)", got)
			}
			if got := sessionData(t, s.gws[0], reader); got["user"] != "ana" {
				t.Errorf("the reading page's session after it: %v, want its user", got)
			}
		})
	}
}

// sessionData is the session cookie names as get.php shows it, empty when
// there is none (PHP encodes an empty $_SESSION as []).
func sessionData(t *testing.T, gw *sessionGW, cookie string) map[string]any {
	t.Helper()
	d := gw.dump(t, cookie).Data
	got := map[string]any{}
	if string(d) == "[]" {
		return got
	}
	if err := json.Unmarshal(d, &got); err != nil {
		t.Fatalf("get.php data %s: %v", d, err)
	}
	return got
}

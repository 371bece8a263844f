package integration

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestSessionFramesMidScriptCostNoDelayedACK: a page that sends the
// gateway a message in the middle of its run over php-fpm's stderr (a new
// session's open, a login's session_regenerate_id(), a
// session_write_close() before the output) makes php-fpm write twice. On
// TCP, the second write (the response) waited for the gateway's delayed
// ACK of the first, 40 ms on Linux: every first visit and every login took
// 44 ms where a page of an existing session took 2, holding its php-fpm
// worker idle meanwhile. The prepend no longer flushes an open, and the
// gateway acknowledges a stderr write at once (TCP_QUICKACK). Medians of
// 21 requests, against the same page count's median on an existing
// session; the margin (25 ms) is well under the 40 ms timer and well over
// the machine's noise.
func TestSessionFramesMidScriptCostNoDelayedACK(t *testing.T) {
	t.Parallel()
	for _, unix := range []bool{false, true} {
		name := "tcp"
		if unix {
			name = "unix"
		}
		t.Run(name, func(t *testing.T) {
			st := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{Unix: unix, Children: 2}})
			gw := st.gws[0]
			median := func(page string, cookie func() string, next func(set string)) time.Duration {
				var ds []time.Duration
				for range 21 {
					ck := cookie()
					start := time.Now()
					resp, body, set := gw.get(t, page, ck)
					ds = append(ds, time.Since(start))
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("%s: %d %q", page, resp.StatusCode, body)
					}
					next(set)
				}
				slices.Sort(ds)
				return ds[len(ds)/2]
			}
			existing := st.newSession(t)
			same := func() string { return existing }
			ignore := func(string) {}
			base := median("/incr.php?k=n", same, ignore)
			cur := st.newSession(t)
			for _, c := range []struct {
				what, page string
				cookie     func() string
				next       func(string)
			}{
				{"a page that opens a new session", "/incr.php?k=n", func() string { return "" }, ignore},
				{"a login (session_regenerate_id(true))", "/regenerate.php", func() string { return cur }, func(set string) { cur = set }},
				{"a session_write_close() before the output", "/close_then_answer.php", same, ignore},
			} {
				if d := median(c.page, c.cookie, c.next); d > base+25*time.Millisecond {
					t.Errorf("%s: median %v, where a page of an existing session takes %v: a delayed ACK", c.what, d, base)
				} else {
					t.Logf("%s: median %v (existing session %v)", c.what, d, base)
				}
			}
		})
	}
}

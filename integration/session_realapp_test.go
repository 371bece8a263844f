package integration

import (
	"strconv"
	"strings"
	"testing"
)

// TestSessionWriteAfterHeadersLeft: a session change whose stderr frames
// arrive just after the response headers (output a little over PHP's output
// buffer, then a session of a few KiB written at the end, as phpMyAdmin's
// pages do) is saved, and the page is not turned into a 503: the frames
// were sent after the output started, so they are not "cut short" when the
// headers are handled before the last of them arrived.
func TestSessionWriteAfterHeadersLeft(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	const n = 20
	for i := 0; i < n; i++ {
		resp, body, _ := s.gws[i%2].get(t, "/write_after_flush.php", ck)
		if resp.StatusCode != 200 || len(body) != 5000 {
			t.Fatalf("request %d: %d %.100q", i, resp.StatusCode, body)
		}
	}
	d := s.gws[0].dump(t, ck)
	if !strings.Contains(string(d.Data), `"n":`+strconv.Itoa(n)+`,`) {
		t.Fatalf("counter after %d requests: %.200s", n, d.Data)
	}
}

// TestSessionNewSessionWrittenAfterHeaders: a new session the script
// started before its output (so its cookie left with the headers) and first
// wrote after the output began is kept, and the gateway does not log that
// the client cannot get its cookie (phpMyAdmin's login page: a warning on
// every visit that pointed operators at a session problem there was not).
func TestSessionNewSessionWrittenAfterHeaders(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	resp, body, ck := s.gws[0].get(t, "/write_after_flush.php", "")
	if resp.StatusCode != 200 || len(body) != 5000 || ck == "" || ck == "-" {
		t.Fatalf("first visit: %d, %d bytes, cookie %q", resp.StatusCode, len(body), ck)
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"n":1,`) {
		t.Fatalf("session behind the cookie: %.200s", d.Data)
	}
	if logs := s.gws[0].Logs.String(); strings.Contains(logs, "cannot get its cookie") {
		t.Fatalf("the client got its cookie, yet the gateway says otherwise:\n%s", logs)
	}
}

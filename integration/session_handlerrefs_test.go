package integration

import (
	"strings"
	"testing"
)

// TestSessionPHPFormatScriptReadsLinkedValue: a script that reads the
// session in PHP's "php" or "php_binary" format gets a value that links
// inside itself (an object held twice, a PHP reference) as it is, wherever
// its key stands. Those formats number references across the whole
// session, not per key; numbered per key, PHP failed to decode the
// session and destroyed it ("Failed to decode session object"), logging
// the user out of every app.
func TestSessionPHPFormatScriptReadsLinkedValue(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	for _, h := range []string{"php", "php_binary"} {
		t.Run(h, func(t *testing.T) {
			ck := s.newSession(t) // "user" first
			if resp, body, _ := s.gws[0].get(t, "/linked_value.php", ck); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("linked_value: %d %q", resp.StatusCode, body)
			}
			// An integer key: PHP's encoders of these formats skip it, so
			// the script does not see it, and its write keeps it.
			if resp, body, _ := s.gws[0].get(t, "/set.php?k=7&v=%22seven%22", ck); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("set 7: %d %q", resp.StatusCode, body)
			}
			resp, body, set := s.gws[1].get(t, "/handler_php.php?h="+h, ck)
			if want := `{"user":"ana","pair":[{"n":1},{"n":1},"x","x"]}`; resp.StatusCode != 200 || body != want || set != "" {
				t.Fatalf("%s script: %d %q cookie %q, want %s", h, resp.StatusCode, body, set, want)
			}
			d := s.gws[0].dump(t, ck)
			if !strings.Contains(string(d.Data), `"user":"ana"`) || !strings.Contains(string(d.Data), `"visits":1`) || !strings.Contains(string(d.Data), `"7":"seven"`) || d.ID == "" {
				t.Fatalf("session after the %s script: %s %s", h, d.ID, d.Data)
			}
		})
	}
}

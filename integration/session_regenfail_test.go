package integration

import (
	"strings"
	"testing"
)

// A login page's session_regenerate_id(true) whose new session Redis
// refuses to store (here: the gateway's Redis user may only touch the old
// session's keys, standing for a Redis that stalls or times out just
// then) fails with 503, and the browser keeps its old cookie: that cookie's
// session must still be there as it was, not a tombstone next to a new ID
// that holds nothing (the user was logged out and lost the session).
func TestSessionRegenerateTheStoreFailsKeepsTheOldSession(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"strict", "merge"} {
		t.Run(mode, func(t *testing.T) {
			s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=" + mode}})
			ck := s.newSession(t)
			id := s.gws[0].dump(t, ck).ID
			if len(id) != 64 {
				t.Fatalf("session id %q", id)
			}
			if out, err := s.red.Do("ACL", "SETUSER", "default", "resetkeys", "~sessiongate:{"+id+"}*"); err != nil {
				t.Fatalf("ACL SETUSER: %v %s", err, out)
			}
			resp, body, set := s.gws[0].get(t, "/regenerate.php", ck)
			if out, err := s.red.Do("ACL", "SETUSER", "default", "allkeys"); err != nil {
				t.Fatalf("ACL SETUSER: %v %s", err, out)
			}
			if resp.StatusCode != 503 || set != "" {
				t.Fatalf("regeneration whose new session Redis refused: %d %q, cookie %q; want 503 and no cookie", resp.StatusCode, body, set)
			}
			if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"user":"ana"`) || d.ID != id {
				t.Errorf("the old cookie after the failed regeneration: session %s holding %s, want %s holding user ana", shortSID(d.ID), d.Data, shortSID(id))
			}
		})
	}
}

func shortSID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

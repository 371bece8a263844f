package integration

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// A login page's session_regenerate_id(true) whose new session Redis
// refuses to store (here: the gateway's Redis user may only touch the old
// session's keys, standing for a Redis that stalls or times out just
// then) fails with 503, and the browser keeps its old cookie: that cookie's
// session must still be there as it was, not a tombstone next to a new ID
// that holds nothing (the user was logged out and lost the session). The
// same for a page that regenerates twice.
func TestSessionRegenerateTheStoreFailsKeepsTheOldSession(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"strict", "merge", "strict/twice", "merge/twice"} {
		t.Run(mode, func(t *testing.T) {
			lock, twice, _ := strings.Cut(mode, "/")
			s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=" + lock}})
			ck := s.newSession(t)
			id := s.gws[0].dump(t, ck).ID
			if len(id) != 64 {
				t.Fatalf("session id %q", id)
			}
			if out, err := s.red.Do("ACL", "SETUSER", "default", "resetkeys", "~sessiongate:{"+id+"}*"); err != nil {
				t.Fatalf("ACL SETUSER: %v %s", err, out)
			}
			resp, body, set := s.gws[0].get(t, "/regenerate.php?twice="+twice, ck)
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

// A login page whose output (and with it the new session's cookie) left
// between session_regenerate_id(true) and its session write: the browser
// holds only the new cookie from then on, and a store failing the write
// (here: Redis refuses the gateway every key by then, standing for a stall)
// can no longer turn the response into an error. That change is lost, but
// the session must not be: the new cookie must name the old session's
// data, where it named nothing (the old ID a tombstone: logged out).
func TestSessionRegenerateBeforeOutputWriteFailsKeepsTheSession(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"strict", "merge", "strict/keep", "merge/keep"} {
		t.Run(mode, func(t *testing.T) {
			lock, keep, _ := strings.Cut(mode, "/")
			s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=" + lock}})
			ck := s.newSession(t)
			goFile, q := markFile(t)
			req, _ := http.NewRequest("GET", s.gws[0].URL+"/regen_flush.php?keep="+keep+"&go="+q, nil)
			req.Header.Set("Cookie", "sessionid="+ck)
			resp, err := sessionClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			newCk := ""
			for _, c := range resp.Cookies() {
				if c.Name == "sessionid" {
					newCk = c.Value
				}
			}
			br := bufio.NewReader(resp.Body)
			if line, err := br.ReadString('\n'); resp.StatusCode != 200 || newCk == "" || newCk == ck || line != "started\n" {
				t.Fatalf("page: %d cookie %q first line %q %v", resp.StatusCode, newCk, line, err)
			}
			if out, err := s.red.Do("ACL", "SETUSER", "default", "resetkeys"); err != nil {
				t.Fatalf("ACL SETUSER: %v %s", err, out)
			}
			if err := os.WriteFile(goFile, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(br)
			if out, err := s.red.Do("ACL", "SETUSER", "default", "allkeys"); err != nil {
				t.Fatalf("ACL SETUSER: %v %s", err, out)
			}
			if string(rest) != "done" {
				t.Fatalf("page's end: %q", rest)
			}
			if d := s.gws[1].dump(t, newCk); !strings.Contains(string(d.Data), `"user":"ana"`) {
				t.Errorf("the new cookie after the page's write failed: session %s holding %s, want the old session's data (user ana)", shortSID(d.ID), d.Data)
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

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestSessionDestroyUnsavedSessionSetsNoCookie: session_destroy() of a
// session that was started in this request and never saved (a visitor
// without a session on a logout page; a session regenerated and then
// destroyed) must not leave the client holding a cookie for it. Before,
// the gateway still sent the signed cookie it had announced for the new
// ID: a 14-day cookie naming nothing, which made every later request of
// that visitor lock and load in Redis (and wait for it, or get 503 while
// it is down) although it has no session.
func TestSessionDestroyUnsavedSessionSetsNoCookie(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})

	resp, body, set := s.gws[0].get(t, "/destroy.php", "")
	if resp.StatusCode != 200 || body != "destroyed" {
		t.Fatalf("logout without a session: %d %q", resp.StatusCode, body)
	}
	if set != "" {
		t.Fatalf("logout without a session set the session cookie %q (Set-Cookie %q); want none", set, resp.Header.Values("Set-Cookie"))
	}

	// Regenerated, then destroyed: the client's cookie is expired, not
	// replaced by one for the regenerated ID that was never stored.
	ck := s.newSession(t)
	id := s.gws[1].dump(t, ck).ID
	resp, body, set = s.gws[0].get(t, "/destroy.php?regen=1", ck)
	if resp.StatusCode != 200 || body != "destroyed" {
		t.Fatalf("regenerate then destroy: %d %q", resp.StatusCode, body)
	}
	if set != "-" {
		t.Fatalf("regenerate then destroy: session cookie %q (Set-Cookie %q); want it expired", set, resp.Header.Values("Set-Cookie"))
	}
	assertRetired(t, s.redis, id)
}

// TestSessionStrictModeOffAdoptsNoClientID: PHP reads its own session
// cookie (session.use_cookies is on under the gateway), and an application
// that turns session.use_strict_mode off makes PHP take the ID that cookie
// names without asking the handler. A browser still holding a PHPSESSID
// from before the gateway (or from another PHP site on the domain), or one
// an attacker planted, then got an empty session, and every page that
// writes it answered 503 (PHP's own IDs are not the gateway's form), or the
// gateway stored the session under the client's choice of ID. The session
// must stay the one the gateway gave the request.
func TestSessionStrictModeOffAdoptsNoClientID(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	type page struct {
		User   any `json:"user"`
		Visits int `json:"visits"`
	}
	visit := func(cookies string) (page, string) {
		t.Helper()
		resp, body, set := s.gws[0].get(t, "/strict_off.php", "", "Cookie", cookies)
		var p page
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &p) != nil {
			t.Fatalf("Cookie %q: %d %q", cookies, resp.StatusCode, body)
		}
		return p, set
	}
	ck := s.newSession(t)
	id := s.gws[1].dump(t, ck).ID
	chosen := strings.Repeat("c", 64)
	for i, foreign := range []string{"3mfs0o1jbq8vdqfhkrtbt6e2ke", chosen} {
		p, set := visit("sessionid=" + ck + "; PHPSESSID=" + foreign)
		if p.User != "ana" || p.Visits != i+1 || set != "" {
			t.Fatalf("PHPSESSID=%s: the page saw user %v, visits %d (cookie %q); want ana, %d, the session kept", foreign, p.User, p.Visits, set, i+1)
		}
		if d := s.gws[1].dump(t, ck); d.ID != id || !strings.Contains(string(d.Data), fmt.Sprintf(`"visits":%d`, i+1)) {
			t.Fatalf("PHPSESSID=%s: session after the visit: %+v", foreign, d)
		}
	}

	// A visitor without a session, with a planted or someone else's ID:
	// a new session of its own, never stored under that ID.
	for _, foreign := range []string{chosen, id} {
		p, set := visit("PHPSESSID=" + foreign)
		if p.User != nil || p.Visits != 1 || set == "" || set == "-" {
			t.Fatalf("new visitor, PHPSESSID=%s: user %v, visits %d, cookie %q; want a new session of its own", foreign, p.User, p.Visits, set)
		}
		if d := s.gws[1].dump(t, set); d.ID == foreign || d.ID == "" {
			t.Fatalf("new visitor, PHPSESSID=%s: session %+v", foreign, d)
		}
	}
	if n, _ := s.redis.Exists(context.Background(), "sessiongate:{"+chosen+"}").Result(); n != 0 {
		t.Fatal("a session was stored under the ID the client chose")
	}
	if d := s.gws[1].dump(t, ck); d.ID != id || !strings.Contains(string(d.Data), `"visits":2`) {
		t.Fatalf("the session whose ID another client sent changed: %+v", d)
	}
}

// TestSessionPHPCookieUnderGatewayNameKeepsLogin: a PHP application whose
// session.name is the gateway's cookie name ("sessionid", as Django's) and
// that picks its own session ID makes PHP send its own cookie under that
// name. On a response without the gateway's cookie the browser took it in
// place of the signed cookie, and the user was logged out at the next
// page. It is dropped; the manual's logout recipe, which expires the
// cookie, still logs out.
func TestSessionPHPCookieUnderGatewayNameKeepsLogin(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	resp, body, set := s.gws[0].get(t, "/own_name.php?own=1", ck)
	if resp.StatusCode != 200 || body != `{"user":"ana"}` || set != "" {
		t.Fatalf("own ID: %d %q, session cookie %q (Set-Cookie %q); want the user's page and the browser's cookie kept",
			resp.StatusCode, body, set, resp.Header.Values("Set-Cookie"))
	}
	if resp, body, _ := s.gws[1].get(t, "/own_name.php", ck); resp.StatusCode != 200 || body != `{"user":"ana"}` {
		t.Fatalf("next page: %d %q; want still logged in", resp.StatusCode, body)
	}
	resp, _, set = s.gws[0].get(t, "/own_name.php?logout=1", ck)
	if resp.StatusCode != 200 || set != "-" {
		t.Fatalf("logout recipe: %d, session cookie %q (Set-Cookie %q); want it expired", resp.StatusCode, set, resp.Header.Values("Set-Cookie"))
	}
}

package integration

import (
	"strings"
	"testing"
)

// TestSessionCookieVisibleToPHP: once a script started the gateway's
// session, PHP shows it under $_COOKIE[session_name()], as the browser's
// PHPSESSID is behind nginx. Without it, Symfony's
// Request::hasPreviousSession() said "no session" on every request behind
// the gateway (php_bridge storage, the README's advice): its firewall
// (ContextListener) then never loaded the logged-in user from the session,
// so a login lasted one page, and its SessionStrategyListener left the
// session ID unchanged at login (fixation).
func TestSessionCookieVisibleToPHP(t *testing.T) {
	s := startSessionStack(t, stackOpts{})
	resp, body, ck := s.gws[0].get(t, "/prev_cookie.php?new=1", "")
	if resp.StatusCode != 200 || body != `{"previous":false,"n":1}` || ck == "" || ck == "-" {
		t.Fatalf("first visit: %d %s, cookie %q", resp.StatusCode, body, ck)
	}
	for i, v := range []struct{ target, want string }{
		{"/prev_cookie.php", `{"previous":true,"n":2}`},
		{"/prev_cookie.php?name=AppSession", `{"previous":true,"n":3}`},
	} {
		resp, body, _ := s.gws[i%2].get(t, v.target, ck)
		if resp.StatusCode != 200 || body != v.want {
			t.Fatalf("%s with the session's cookie: %d %s, want %s (behind nginx PHP sees the session cookie)", v.target, resp.StatusCode, body, v.want)
		}
		for _, line := range resp.Header.Values("Set-Cookie") {
			if !strings.HasPrefix(line, "sessionid=") {
				t.Fatalf("%s: cookie of PHP's reached the browser: %s", v.target, line)
			}
		}
	}
	// A client's own cookie of that name is left as it came (an
	// application's own handler keeps its session there).
	resp, body, _ = s.gws[0].get(t, "/prev_cookie.php", ck, "Cookie", "PHPSESSID=abc")
	if resp.StatusCode != 200 || body != `{"previous":true,"n":4}` {
		t.Fatalf("with a PHPSESSID of the client's: %d %s", resp.StatusCode, body)
	}
	// No session, no cookie.
	if _, body, set := s.gws[1].get(t, "/prev_cookie.php", ""); body != `{"previous":false,"n":null}` || set != "" {
		t.Fatalf("without a session: %s, cookie %q", body, set)
	}
}

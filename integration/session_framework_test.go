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
	t.Parallel()
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
	// A visitor without a session sees no cookie; the session_start()
	// gives them a new one, as PHP's files handler does.
	if _, body, set := s.gws[1].get(t, "/prev_cookie.php", ""); body != `{"previous":false,"n":null}` || set == "" || set == "-" || set == ck {
		t.Fatalf("without a session: %s, cookie %q", body, set)
	}
}

// TestSessionResumedOnlyWithCookie: code that starts the session only when
// $_COOKIE[session_name()] says the visitor has one (Yii, CakePHP,
// hand-written "if (isset($_COOKIE[...])) session_start();") finds the
// gateway's session there before session_start(), as it finds the
// browser's PHPSESSID behind nginx. Without it such code took every
// visitor for one without a session: logged out on every page.
func TestSessionResumedOnlyWithCookie(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	resp, body, set := s.gws[1].get(t, "/resume_if_cookie.php", ck)
	if resp.StatusCode != 200 || body != `{"has":true,"user":"ana"}` {
		t.Fatalf("with a session: %d %s, want the session resumed (behind nginx the script sees PHPSESSID)", resp.StatusCode, body)
	}
	if len(resp.Header.Values("Set-Cookie")) != 0 || set != "" {
		t.Fatalf("resuming a session sent cookies: %q", resp.Header.Values("Set-Cookie"))
	}
	if _, body, set := s.gws[0].get(t, "/resume_if_cookie.php", ""); body != `{"has":false,"user":null}` || set != "" {
		t.Fatalf("without a session: %s, cookie %q", body, set)
	}

	// An application's own handler under PHP's default cookie name is
	// given an ID of its own and its cookie, never the gateway's ID that
	// now stands where PHP looks for that cookie.
	own := ""
	for i, want := range []string{"n=1 writes=1 regen=-", "n=2 writes=2 regen=-"} {
		var hdr []string
		if own != "" {
			hdr = []string{"Cookie", "PHPSESSID=" + own}
		}
		resp, body, _ := s.gws[i%2].get(t, "/own_handler_procedural.php?op=inc&default_name=1", ck, hdr...)
		for _, c := range resp.Cookies() {
			if c.Name == "PHPSESSID" {
				own = c.Value
			}
		}
		if resp.StatusCode != 200 || body != want || own == "" {
			t.Fatalf("own handler, visit %d: %d %q, want %q; its cookie %q", i+1, resp.StatusCode, body, want, own)
		}
	}
	// The gateway's session is untouched by the application's.
	if _, body, _ := s.gws[0].get(t, "/resume_if_cookie.php", ck); body != `{"has":true,"user":"ana"}` {
		t.Fatalf("the gateway's session after the application's own: %s", body)
	}
}

// TestSessionEmptyButStartedIsKept: a session PHP started is kept, and its
// cookie sent, even while nothing is stored in it, as PHP's files handler
// does. Icinga Web 2 keys its login form's CSRF token on the ID of such a
// session; the gateway used to store nothing and send no cookie, so every
// request got a new ID and no login ever passed ("invalid CSRF token").
func TestSessionEmptyButStartedIsKept(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	for _, mode := range []string{"write", "close", "abort", "php"} {
		target := "/empty_session.php?mode=" + mode
		resp, first, ck := s.gws[0].get(t, target, "")
		if resp.StatusCode != 200 || len(first) != 64 || ck == "" || ck == "-" {
			t.Fatalf("%s, first visit: %d %q, cookie %q; want the new session's cookie", mode, resp.StatusCode, first, ck)
		}
		resp, again, set := s.gws[1].get(t, target, ck)
		if resp.StatusCode != 200 || again != first || set != "" {
			t.Fatalf("%s, with its cookie: %d ID %q, want %q; cookie %q", mode, resp.StatusCode, again, first, set)
		}
	}
	// A page that never starts a session still creates none.
	if _, _, set := s.gws[0].get(t, "/nosession.php", ""); set != "" {
		t.Fatalf("a page without session_start() sent a session cookie %q", set)
	}
}

package integration

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// startReopenWait runs reopen_wait.php (read_and_close, wait, then change
// the session) on gw with params, and returns once it has let its session
// go; release lets it make its change.
func startReopenWait(t *testing.T, gw *sessionGW, ck string, params url.Values) (release func(), done <-chan [2]string) {
	t.Helper()
	return startPaused(t, gw, ck, "reopen_wait.php", "closed", params)
}

// holdWhile starts hold.php (session held 1.5 s, then "held" incremented) on
// gw and returns once it holds the session's lock.
func holdWhile(t *testing.T, gw *sessionGW, ck string) <-chan [2]string {
	t.Helper()
	started, q := markFile(t)
	ch := make(chan [2]string, 1)
	go func() {
		resp, body, _ := gw.get(t, "/hold.php?ms=1500&started="+q, ck)
		ch <- [2]string{strconv.Itoa(resp.StatusCode), body}
	}()
	waitForFile(t, started, "hold.php")
	return ch
}

// TestSessionStrictReopenedWriteNotLost: strict mode. A page lets its
// session go (read_and_close), and while another request of the session
// holds it, starts the session again and stores a key. PHP's files handler
// makes that session_start() wait for the other request, so both changes
// stay. The other request's write, made under the lock, must not drop it.
func TestSessionStrictReopenedWriteNotLost(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	release, done := startReopenWait(t, s.gws[0], ck, url.Values{"k": {"second"}, "v": {"kept"}})
	held := holdWhile(t, s.gws[1], ck)
	release()
	if r := <-done; r != [2]string{"200", "ok"} {
		t.Fatalf("reopen_wait.php: %v", r)
	}
	if r := <-held; r != [2]string{"200", "held"} {
		t.Fatalf("hold.php: %v", r)
	}
	d := string(s.gws[1].dump(t, ck).Data)
	for _, want := range []string{`"user":"ana"`, `"held":1`, `"second":"kept"`} {
		if !strings.Contains(d, want) {
			t.Errorf("session %s lacks %s", d, want)
		}
	}
}

// TestSessionStrictReopenedDestroyStays: strict mode. A page lets its
// session go (read_and_close), and while another request of the session
// holds it, starts the session again and destroys it (a logout). The other
// request's write, made under the lock, must not bring the session back:
// PHP's files handler makes the logout wait for it, then deletes the file.
func TestSessionStrictReopenedDestroyStays(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	release, done := startReopenWait(t, s.gws[0], ck, url.Values{"destroy": {"1"}})
	held := holdWhile(t, s.gws[1], ck)
	release()
	if r := <-done; r != [2]string{"200", "destroyed"} {
		t.Fatalf("reopen_wait.php: %v", r)
	}
	if r := <-held; r != [2]string{"200", "held"} {
		t.Fatalf("hold.php: %v", r)
	}
	if d := s.gws[1].dump(t, ck); string(d.Data) != "[]" && string(d.Data) != "{}" {
		t.Fatalf("logged out, but the old cookie still has its session: %s", d.Data)
	}
}

// TestSessionStrictReopenedRegenerateRetiresOldID: strict mode. A page lets
// its session go (read_and_close), and while another request of the
// session holds it, starts the session again and regenerates its ID (a
// login). The old ID must end as a tombstone, not as the other request's
// session, which it would store under the old ID when it ends.
func TestSessionStrictReopenedRegenerateRetiresOldID(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	old := s.gws[0].dump(t, ck).ID
	release, done := startReopenWait(t, s.gws[0], ck, url.Values{"regen": {"1"}, "k": {"login"}, "v": {"yes"}})
	held := holdWhile(t, s.gws[1], ck)
	release()
	if r := <-done; r != [2]string{"200", "ok"} {
		t.Fatalf("reopen_wait.php: %v", r)
	}
	if r := <-held; r != [2]string{"200", "held"} {
		t.Fatalf("hold.php: %v", r)
	}
	assertRetired(t, s.redis, old)
}

// TestSessionUndecodableForOneAppIsKept: one application keeps an enum in
// the shared session; another one, which does not define it, starts the
// session. PHP fails to decode it there ("Failed to decode session object.
// Session has been destroyed") and destroys it, which behind the gateway is
// the session of every application: the user's login, Django's included,
// would end on every visit to the other application. It stays for the
// application that can read it.
func TestSessionUndecodableForOneAppIsKept(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	if resp, body, _ := s.gws[0].get(t, "/enum_role.php?op=set", ck); resp.StatusCode != 200 || !strings.Contains(body, `"role":"admin"`) {
		t.Fatalf("enum_role.php?op=set: %d %s", resp.StatusCode, body)
	}
	resp, _, set := s.gws[1].get(t, "/counter.php", ck)
	if resp.StatusCode != 200 {
		t.Fatalf("counter.php: %d", resp.StatusCode)
	}
	if set == "-" {
		t.Errorf("the other application's page expired the session cookie")
	}
	if resp, body, _ := s.gws[0].get(t, "/enum_role.php", ck); resp.StatusCode != 200 || body != `{"user":"ana","role":"admin"}` {
		t.Fatalf("the session after a page that could not decode it: %d %s", resp.StatusCode, body)
	}
	fpmLogWhen(t, s.fpm, "the prepend's explanation", func(l string) bool {
		return strings.Contains(l, "sessiongate: PHP could not decode the shared session")
	})
}

// TestSessionNamedIDIsNotTheUsersSession: a script that names a session ID
// the gateway did not mint (session_id($x) before session_start()) gets a
// new, empty session, as PHP's files handler gives it in strict mode and as
// README and the prepend's log line say, also when the visitor has a
// session: not the visitor's own, which an admin page that ends another
// user's session by its ID would then destroy.
func TestSessionNamedIDIsNotTheUsersSession(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	resp, body, _ := s.gws[0].get(t, "/named_id_dump.php?destroy=1", ck)
	if resp.StatusCode != 200 || body != "[]" {
		t.Errorf("named ID: %d %s, want a new, empty session", resp.StatusCode, body)
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"user":"ana"`) {
		t.Errorf("the visitor's own session after a script destroyed the one it named: %s", d.Data)
	}
}

// TestSessionReleasedThenStartedLikeReadAndClose: a page that lets its
// session go with sessiongate_release() before starting it, and starts it
// while another request of the session holds it, behaves as one that let
// it go with read_and_close (the tests above): its change and the other
// request's both stay, its logout stays, its login retires the old ID.
func TestSessionReleasedThenStartedLikeReadAndClose(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	run := func(params url.Values) (string, sessionDump) {
		t.Helper()
		ck := s.newSession(t)
		old := s.gws[0].dump(t, ck).ID
		params.Set("release", "1")
		release, done := startPaused(t, s.gws[0], ck, "reopen_wait.php", "closed", params)
		held := holdWhile(t, s.gws[1], ck)
		release()
		if r := <-done; r[0] != "200" {
			t.Fatalf("reopen_wait.php %v: %v", params, r)
		}
		if r := <-held; r != [2]string{"200", "held"} {
			t.Fatalf("hold.php: %v", r)
		}
		return old, s.gws[1].dump(t, ck)
	}
	_, d := run(url.Values{"k": {"second"}, "v": {"kept"}})
	for _, want := range []string{`"user":"ana"`, `"held":1`, `"second":"kept"`} {
		if !strings.Contains(string(d.Data), want) {
			t.Errorf("session %s lacks %s", d.Data, want)
		}
	}
	if _, d := run(url.Values{"destroy": {"1"}}); string(d.Data) != "[]" && string(d.Data) != "{}" {
		t.Errorf("logged out, but the old cookie still has its session: %s", d.Data)
	}
	old, _ := run(url.Values{"regen": {"1"}, "k": {"login"}, "v": {"yes"}})
	assertRetired(t, s.redis, old)
}

package integration

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A PHP page that stores one object under two keys (shared_object.php)
// makes the session one opaque member, {"__php_session__": "<php text>"}
// (docs/protocol.md, "A whole linked PHP session"). Django's
// _session_expiry is still in that text, where PHP keeps it: the session's
// own expiry (set_expiry(300)) must stay, on that page and every later
// PHP page, not become the gateway's default lifetime.
func TestSessionLinkedKeepsTheAppExpiry(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"strict", "merge"} {
		t.Run(mode, func(t *testing.T) {
			s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=" + mode}})
			ctx := context.Background()
			ck := sessionWithAppExpiry(t, s)
			key := "sessiongate:{" + s.gws[0].dump(t, ck).ID + "}"
			for _, page := range []string{"/shared_object.php", "/get.php", "/set.php?k=n&v=1"} {
				if got := cookieMaxAge(t, s.gws[0], page, ck); got != 300 {
					t.Errorf("%s: cookie Max-Age %d, want the session's own 300", page, got)
				}
				d, err := s.redis.HGet(ctx, key, "d").Result()
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(d, `"__php_session__"`) || !strings.Contains(d, `_session_expiry`) {
					t.Fatalf("%s: the session is not stored whole with _session_expiry: %s", page, d)
				}
				if !strings.Contains(d, `"expiry":300000`) {
					t.Errorf("%s: the record lost the app expiry: %s", page, d)
				}
			}
		})
	}
}

// The password-change check (docs/protocol.md section 5, "Logins") reads
// Django's login in a whole linked session too: PHP reads it there
// (sessiongate_user_id()), so a stolen session that a PHP page linked must
// not stay logged in on PHP pages once the password changed.
func TestSessionLinkedLoginIsRevoked(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ctx := context.Background()
	g := s.gws[0]
	whoami := func(ck string) string {
		t.Helper()
		resp, body, _ := g.get(t, "/whoami.php", ck)
		if resp.StatusCode != 200 {
			t.Fatalf("whoami.php: %d %.200s", resp.StatusCode, body)
		}
		return body
	}
	// The record a password change leaves: only the hash "new" is valid
	// for user 7.
	if err := s.redis.Set(ctx, "sessiongate:login:7", "new", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	ck := s.newSession(t)
	for _, set := range []string{"/set.php?k=_auth_user_id&v=%227%22", "/set.php?k=_auth_user_hash&v=%22old%22"} {
		if resp, body, _ := g.get(t, set, ck); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", set, resp.StatusCode, body)
		}
	}
	if got := whoami(ck); got != "anonymous" {
		t.Fatalf("control: PHP names %q in a plain session whose login a password change ended", got)
	}
	if resp, body, _ := g.get(t, "/shared_object.php", ck); resp.StatusCode != 200 {
		t.Fatalf("shared_object.php: %d %s", resp.StatusCode, body)
	}
	d, err := s.redis.HGet(ctx, "sessiongate:{"+g.dump(t, ck).ID+"}", "d").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d, `"__php_session__"`) || !strings.Contains(d, `_auth_user_hash`) {
		t.Fatalf("the session is not stored whole with the login: %s", d)
	}
	if got := whoami(ck); got != "anonymous" {
		t.Errorf("PHP names %q in a linked session whose login a password change ended, want anonymous", got)
	}
	// The hash valid again (a gateway reads the record at most once a
	// second): the same linked session names the user.
	if err := s.redis.Set(ctx, "sessiongate:login:7", "old", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if got := whoami(ck); got != "user:7" {
		t.Errorf("PHP names %q in the linked session once its hash is valid, want user:7", got)
	}
}

package integration

import (
	"net/url"
	"strings"
	"testing"
)

// passwordChangeEndsOtherSessionsOnPHP (a subtest of TestDjangoSessionAPI,
// on Django 3.2 and 5.2 under gunicorn and 5.2 under ASGI, whose sync
// views run in other threads than the middleware): Django logs a session
// out at its next Django page once the password hash it keeps no longer
// matches the user's; PHP pages, which cannot compute that hash, went on
// naming the user (sessiongate_user_id()) until then. Now the middleware
// reports the hashes Django takes (docs/protocol.md, "Logins") and a PHP
// page of a session a password change ended names nobody, while the
// session that changed the password stays logged in on both sides; so
// does one of a user made inactive (named again once active) or deleted.
func passwordChangeEndsOtherSessionsOnPHP(t *testing.T, gw *sessionGW) {
	php := func(j jar) string {
		t.Helper()
		res, body := call(t, gw, j, "GET", "/whoami.php", "")
		if res.StatusCode != 200 {
			t.Fatalf("whoami.php: %d %.200s", res.StatusCode, body)
		}
		return body
	}
	post := func(j jar, target string, form url.Values) {
		t.Helper()
		_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
		form.Set("csrfmiddlewaretoken", tok)
		if res, body := call(t, gw, j, "POST", target, form.Encode(), "Content-Type", formType); res.StatusCode != 200 {
			t.Fatalf("POST %s: %d %.300s", target, res.StatusCode, body)
		}
	}
	login := func(j jar, pw string) {
		t.Helper()
		post(j, "/accounts/api/login/", url.Values{"username": {"api"}, "password": {pw}})
	}

	mine, stolen, other := jar{}, jar{}, jar{}
	login(mine, "api-password")
	login(stolen, "api-password")
	uid := php(stolen)
	if !strings.HasPrefix(uid, "user:") {
		t.Fatalf("PHP after login: %s", uid)
	}
	// Another user's session is none of this.
	if _, body := call(t, gw, other, "GET", "/accounts/api/login-as/?u=bystander", ""); body == "" {
		t.Fatal("login-as gave no user id")
	}
	bystander := php(other)

	post(mine, "/accounts/api/password/", url.Values{"password": {"new-password"}})
	defer post(mine, "/accounts/api/password/", url.Values{"password": {"api-password"}}) // for the other subtests
	if got := php(stolen); got != "anonymous" {
		t.Fatalf("PHP in the other session after the password change: %s, want anonymous", got)
	}
	if got := php(mine); got != uid {
		t.Fatalf("PHP in the session that changed the password: %s, want %s", got, uid)
	}
	if got := php(other); got != bystander {
		t.Fatalf("PHP in another user's session: %s, want %s", got, bystander)
	}
	// A PHP write does not bring the login back, and the next Django
	// page ends the session, as Django always did.
	call(t, gw, stolen, "GET", "/set.php?k=after-change&v=1", "")
	if got := php(stolen); got != "anonymous" {
		t.Fatalf("PHP after a PHP write in the other session: %s", got)
	}
	if _, body := call(t, gw, stolen, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": null`) {
		t.Fatalf("Django in the other session: %s", body)
	}
	// A new login with the new password is named again.
	login(stolen, "new-password")
	if got := php(stolen); got != uid {
		t.Fatalf("PHP after a login with the new password: %s, want %s", got, uid)
	}
	if got := php(mine); got != uid {
		t.Fatalf("PHP in the first session after the second login: %s, want %s", got, uid)
	}

	// A user made inactive: ModelBackend gives the user back to no
	// session, and PHP names nobody either, until the user is active
	// again, when Django and PHP take the same session again.
	setActive := func(active, want string) {
		t.Helper()
		if _, body := call(t, gw, mine, "GET", "/accounts/api/set-active/?u=bystander&active="+active, ""); body != want {
			t.Fatalf("set-active=%s: %q", active, body)
		}
	}
	setActive("0", "inactive")
	if got := php(other); got != "anonymous" {
		t.Fatalf("PHP in the session of an inactive user: %s, want anonymous", got)
	}
	if _, body := call(t, gw, other, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": null`) {
		t.Fatalf("Django in the session of an inactive user: %s", body)
	}
	setActive("1", "active")
	if got := php(other); got != bystander {
		t.Fatalf("PHP in the session of a user active again: %s, want %s", got, bystander)
	}
	if _, body := call(t, gw, other, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": "bystander"`) {
		t.Fatalf("Django in the session of a user active again: %s", body)
	}

	// A user deleted: Django finds nobody for the user's sessions, and
	// PHP names nobody in them either.
	if _, body := call(t, gw, mine, "GET", "/accounts/api/delete-user/?u=bystander", ""); body != "deleted" {
		t.Fatalf("delete-user: %q", body)
	}
	if got := php(other); got != "anonymous" {
		t.Fatalf("PHP in the session of a deleted user: %s, want anonymous", got)
	}
	if got := php(mine); got != uid {
		t.Fatalf("PHP in the session that deleted another user: %s, want %s", got, uid)
	}
}

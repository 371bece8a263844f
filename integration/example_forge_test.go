package integration

import (
	"strconv"
	"strings"
	"testing"
)

// The example Django project's views that store what the client sends
// (/accounts/counter/?key=, POST /accounts/cart/) must not let a visitor
// write Django's own keys: sessiongate_user_id() in PHP believes
// _auth_user_id, so an anonymous visitor who stores it there is logged in
// as anyone on every PHP page. GET /accounts/counter/?key=_auth_user_id
// needs no CSRF token and made the visitor user 1.
func TestExampleDjangoViewsCannotForgeTheLogin(t *testing.T) {
	t.Parallel()
	s := startDjangoStack(t)
	gw := s.gws[0]

	j := jar{}
	res, body := call(t, gw, j, "GET", "/accounts/counter/?key=_auth_user_id", "")
	if res.StatusCode == 200 || j["sessionid"] != "" {
		if _, who, _ := gw.get(t, "/whoami.php", j["sessionid"]); who != "anonymous" {
			t.Errorf("GET /accounts/counter/?key=_auth_user_id (%d %q): PHP now sees %q, want anonymous", res.StatusCode, body, who)
		}
	}

	j = jar{}
	if res, body := call(t, gw, j, "GET", "/accounts/cart/", ""); res.StatusCode != 200 || j["csrftoken"] == "" {
		t.Fatalf("cart: %d %.200s (cookies %v)", res.StatusCode, body, j)
	}
	res, body = call(t, gw, j, "POST", "/accounts/cart/", `{"_auth_user_id":"`+s.userID+`","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","username":"demo"}`,
		"Content-Type", "application/json", "X-CSRFToken", j["csrftoken"])
	if j["sessionid"] != "" {
		if _, who, _ := gw.get(t, "/whoami.php", j["sessionid"]); who != "anonymous" {
			t.Errorf("POST /accounts/cart/ with _auth_user_id (%d %.200q): PHP now sees %q, want anonymous", res.StatusCode, body, who)
		}
	}
}

// The example's /accounts/counter/ counts on a GET, which needs no CSRF
// token: a link on another site (SameSite=Lax sends the cookie on a
// top-level navigation) can make a visitor's browser request it. With
// ?key= naming the cart (or the user name PHP shows) it replaced that value
// with the number 1, emptying the cart. A counter only counts in a key that
// is absent or already a number.
func TestExampleDjangoCounterLeavesOtherKeysAlone(t *testing.T) {
	t.Parallel()
	s := startDjangoStack(t)
	gw := s.gws[0]

	j := jar{}
	if res, body := call(t, gw, j, "GET", "/accounts/cart/", ""); res.StatusCode != 200 || j["csrftoken"] == "" {
		t.Fatalf("cart: %d %.200s (cookies %v)", res.StatusCode, body, j)
	}
	if res, body := call(t, gw, j, "POST", "/accounts/cart/", `{"add":"apple"}`,
		"Content-Type", "application/json", "X-CSRFToken", j["csrftoken"]); res.StatusCode != 200 {
		t.Fatalf("POST /accounts/cart/: %d %.200s", res.StatusCode, body)
	}
	// The forged navigation: the victim's cookies, no token.
	res, body := call(t, gw, j, "GET", "/accounts/counter/?key=cart", "")
	if res.StatusCode == 200 {
		t.Errorf("GET /accounts/counter/?key=cart over a cart: %d %q, want a refusal", res.StatusCode, body)
	}
	if _, body := call(t, gw, j, "GET", "/accounts/cart/", ""); !strings.Contains(body, `"cart": {"apple": 1}`) {
		t.Errorf("the cart after GET /accounts/counter/?key=cart: %.300s", body)
	}
	// Counting still works, in a new key and in the same key again.
	for want := 1; want <= 2; want++ {
		if res, body := call(t, gw, j, "GET", "/accounts/counter/?key=n", ""); res.StatusCode != 200 || body != strconv.Itoa(want) {
			t.Errorf("GET /accounts/counter/?key=n: %d %q, want %d", res.StatusCode, body, want)
		}
	}
}

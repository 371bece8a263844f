package integration

import (
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

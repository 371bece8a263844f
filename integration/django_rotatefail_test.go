package integration

import (
	"net/url"
	"strings"
	"testing"
)

// Django's login (cycle_key(): a write with X-Sessiongate-Rotate) whose
// new session Redis refuses to store (the gateway's Redis user limited to
// the old session's keys, standing for a Redis that stalls just then): the
// browser gets a 503 and keeps its cookie, whose session must still hold
// what it held, not a tombstone next to a new ID holding nothing.
func TestDjangoLoginTheStoreFailsKeepsTheOldSession(t *testing.T) {
	t.Parallel()
	s := startDjangoStack(t)
	gw := s.gws[0]
	_, body, ck := gw.get(t, "/set.php?k=cart&v=%5B1%5D", "")
	if body != "ok" || ck == "" {
		t.Fatalf("set: %q cookie %q", body, ck)
	}
	id := gw.dump(t, ck).ID
	j := jar{"sessionid": ck}
	res, body := call(t, gw, j, "GET", "/admin/login/?next=/admin/", "")
	m := csrfField.FindStringSubmatch(body)
	if res.StatusCode != 200 || m == nil {
		t.Fatalf("login form: %d, token %v", res.StatusCode, m != nil)
	}
	if out, err := s.red.Do("ACL", "SETUSER", "default", "resetkeys", "~sessiongate:{"+id+"}*"); err != nil {
		t.Fatalf("ACL SETUSER: %v %s", err, out)
	}
	form := url.Values{"csrfmiddlewaretoken": {m[1]}, "username": {"demo"}, "password": {"demo-password"}, "next": {"/admin/"}}
	res, _ = call(t, gw, j, "POST", "/admin/login/?next=/admin/", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if out, err := s.red.Do("ACL", "SETUSER", "default", "allkeys"); err != nil {
		t.Fatalf("ACL SETUSER: %v %s", err, out)
	}
	if res.StatusCode != 503 || j["sessionid"] != ck {
		t.Fatalf("login whose new session Redis refused: %d, cookie %q; want 503 and the old cookie kept", res.StatusCode, j["sessionid"])
	}
	if d := s.gws[1].dump(t, ck); d.ID != id || !strings.Contains(string(d.Data), `"cart":[1]`) {
		t.Errorf("the old cookie after the failed login: session %s holding %s, want %s holding the cart", shortSID(d.ID), d.Data, shortSID(id))
	}
}

package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// A session Django gave its own expiry (set_expiry(300): _session_expiry in
// the data, the expiry in the gateway's record), which a PHP logout then
// clears and moves to a new ID ($_SESSION = []; session_regenerate_id(true))
// instead of destroying it: the expiry belonged to the data cleared, as
// after session_destroy(); session_start(), so the new session must get
// the gateway's own policy, not a 300 s cookie the next user of the browser
// would inherit while Django, reading the session, sees no expiry.
func TestSessionClearedAndRegeneratedDropsTheAppExpiry(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"strict", "merge"} {
		t.Run(mode, func(t *testing.T) {
			s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=" + mode}})
			ctx := context.Background()
			for _, flash := range []string{"", "1"} {
				ck := sessionWithAppExpiry(t, s)
				req, _ := http.NewRequest("GET", s.gws[0].URL+"/clear_regen.php?flash="+flash, nil)
				req.Header.Set("Cookie", "sessionid="+ck)
				resp, err := sessionClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				var newCk *http.Cookie
				for _, c := range resp.Cookies() {
					if c.Name == "sessionid" {
						newCk = c
					}
				}
				if resp.StatusCode != 200 || newCk == nil || newCk.Value == ck {
					t.Fatalf("flash=%q: clear_regen: %d, cookie %v", flash, resp.StatusCode, newCk)
				}
				if newCk.MaxAge == 300 {
					t.Errorf("flash=%q: the cleared session's new cookie has the old session's app expiry (Max-Age 300)", flash)
				}
				nd, err := s.redis.HGet(ctx, "sessiongate:{"+s.gws[0].dump(t, newCk.Value).ID+"}", "d").Result()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(nd, `"expiry"`) {
					t.Errorf("flash=%q: the cleared session's new record keeps the app expiry: %s", flash, nd)
				}
			}
		})
	}
}

// sessionWithAppExpiry returns the cookie of a new session holding what
// Django's set_expiry(300) leaves: _session_expiry in the data and the
// expiry in the gateway's record.
func sessionWithAppExpiry(t *testing.T, s *sessionStack) string {
	t.Helper()
	ck := s.newSession(t)
	if resp, _, _ := s.gws[0].get(t, "/set.php?k=_session_expiry&v=300", ck); resp.StatusCode != 200 {
		t.Fatalf("set: %d", resp.StatusCode)
	}
	ctx := context.Background()
	key := "sessiongate:{" + s.gws[0].dump(t, ck).ID + "}"
	d, err := s.redis.HGet(ctx, key, "d").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.redis.HSet(ctx, key, "d", strings.Replace(d, `,"data":`, `,"expiry":300000,"data":`, 1)).Err(); err != nil {
		t.Fatal(err)
	}
	if got := cookieMaxAge(t, s.gws[0], "/get.php", ck); got != 300 {
		t.Fatalf("the app expiry is not in effect: cookie Max-Age %d, want 300", got)
	}
	return ck
}

// cookieMaxAge is the Max-Age of the session cookie the answer to target
// sets (-1 when it sets none).
func cookieMaxAge(t *testing.T, g *sessionGW, target, cookie string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", g.URL+target, nil)
	req.Header.Set("Cookie", "sessionid="+cookie)
	resp, err := sessionClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "sessionid" {
			return c.MaxAge
		}
	}
	return -1
}

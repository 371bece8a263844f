package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDjangoContribAppsAcrossPHP: Django's contrib apps that keep state in
// the session (CSRF_USE_SESSIONS, messages' SessionStorage, auth's
// password change, a "remember me" expiry) with a PHP page writing the same
// session in between, as a site that mixes both sees it.
func TestDjangoContribAppsAcrossPHP(t *testing.T) {
	t.Parallel()
	s, g := startDjangoAPIStack(t)
	gw := s.gws[0]
	php := func(t *testing.T, j jar, target string) string {
		t.Helper()
		res, body := call(t, gw, j, "GET", target, "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %.200s", target, res.StatusCode, body)
		}
		return body
	}
	login := func(t *testing.T, j jar) {
		t.Helper()
		_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
		php(t, j, "/set.php?k=between&v=1")
		form := url.Values{"csrfmiddlewaretoken": {tok}, "username": {"api"}, "password": {"api-password"}}
		if res, body := call(t, gw, j, "POST", "/accounts/api/login/", form.Encode(), "Content-Type", formType); res.StatusCode != 200 || body != "in" {
			t.Fatalf("login with the token of before the PHP write: %d %.300s", res.StatusCode, body)
		}
	}

	t.Run("CSRF token in the session survives a PHP write", func(t *testing.T) {
		j := jar{}
		login(t, j)
		_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
		php(t, j, "/set.php?k=between2&v=1")
		// A PHP login step that regenerates the ID keeps the token too.
		before := j["sessionid"]
		php(t, j, "/regenerate.php")
		if j["sessionid"] == before {
			t.Fatalf("regenerate.php set no new cookie")
		}
		if res, body := call(t, gw, j, "POST", "/accounts/api/set/", `{"ключ":"значение"}`, "Content-Type", "application/json", "X-CSRFToken", tok); res.StatusCode != 200 {
			t.Fatalf("POST with the token of before the PHP pages: %d %.200s", res.StatusCode, body)
		}
		var data map[string]any
		if d := gw.dump(t, j["sessionid"]); json.Unmarshal(d.Data, &data) != nil || data["between2"] != 1.0 || data["regenerated"] != true || data["ключ"] != "значение" {
			t.Fatalf("PHP sees: %s", d.Data)
		}
	})

	t.Run("keys of any text round-trip through PHP", func(t *testing.T) {
		j := jar{}
		_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
		keys := `{"":1,"\u0000x":2,"\ufeffb":3,"a\u2028b":4,"a|b":5,"7":6,"ключ":7,"x y":8}`
		if res, body := call(t, gw, j, "POST", "/accounts/api/set/", keys, "Content-Type", "application/json", "X-CSRFToken", tok); res.StatusCode != 200 {
			t.Fatalf("set: %d %.200s", res.StatusCode, body)
		}
		php(t, j, "/set.php?k=php&v=9")
		_, body := call(t, gw, j, "GET", "/accounts/api/whoami/", "")
		var got struct {
			Session map[string]any `json:"session"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("whoami: %v: %s", err, body)
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(keys), &want); err != nil {
			t.Fatal(err)
		}
		want["php"] = 9.0
		if fmt.Sprint(got.Session) != fmt.Sprint(want) {
			t.Fatalf("Django after a PHP write: %q, want %q", got.Session, want)
		}
	})

	t.Run("a message survives a PHP page in between", func(t *testing.T) {
		j := jar{}
		if res, _ := call(t, gw, j, "GET", "/accounts/api/message/?text="+url.QueryEscape("saved ✓ «é» \"q\""), ""); res.StatusCode != 302 {
			t.Fatalf("message: %d", res.StatusCode)
		}
		php(t, j, "/set.php?k=between&v=1")
		_, body := call(t, gw, j, "GET", "/accounts/api/messages/", "")
		var got struct{ Messages []string }
		if json.Unmarshal([]byte(body), &got) != nil || len(got.Messages) != 1 || got.Messages[0] != "saved ✓ «é» \"q\"" {
			t.Fatalf("shown: %s", body)
		}
		if _, body := call(t, gw, j, "GET", "/accounts/api/messages/", ""); body != `{"messages": []}` {
			t.Fatalf("shown twice: %s", body)
		}
	})

	t.Run("default message storage, cookie and session", func(t *testing.T) {
		// Small: in Django's messages cookie; large: in the session.
		for _, n := range []int{10, 6000} {
			j := jar{}
			if res, _ := call(t, gw, j, "GET", "/accounts/api/message-fallback/?n="+strconv.Itoa(n), ""); res.StatusCode != 302 {
				t.Fatalf("n=%d: message: %d", n, res.StatusCode)
			}
			if n > 4096 && j["sessionid"] == "" || n < 4096 && j["messages"] == "" {
				t.Fatalf("n=%d: cookies %v", n, j)
			}
			php(t, j, "/set.php?k=between&v=1")
			want := fmt.Sprintf(`{"sizes": [%d]}`, n)
			if _, body := call(t, gw, j, "GET", "/accounts/api/messages-fallback/", ""); body != want {
				t.Fatalf("n=%d: shown: %s", n, body)
			}
			if _, body := call(t, gw, j, "GET", "/accounts/api/messages-fallback/", ""); body != `{"sizes": []}` {
				t.Fatalf("n=%d: shown twice: %s", n, body)
			}
		}
	})

	t.Run("a value JSON cannot hold is a 500, the session intact", func(t *testing.T) {
		for _, kind := range []string{"datetime", "decimal", "bytes"} {
			j := jar{}
			login(t, j)
			if res, _ := call(t, gw, j, "GET", "/accounts/api/pyset/?kind="+kind, ""); res.StatusCode != 500 {
				t.Fatalf("%s: %d, want 500", kind, res.StatusCode)
			}
			if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": "api"`) || strings.Contains(body, `"py"`) {
				t.Fatalf("%s: afterwards: %s", kind, body)
			}
		}
		if !strings.Contains(g.Log(), "not JSON-serializable") {
			t.Errorf("no reason in Django's log")
		}
	})

	t.Run("password change keeps the user logged in on both sides", func(t *testing.T) {
		j := jar{}
		login(t, j)
		uid := php(t, j, "/whoami.php")
		if !strings.HasPrefix(uid, "user:") {
			t.Fatalf("PHP after login: %s", uid)
		}
		_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
		form := url.Values{"csrfmiddlewaretoken": {tok}, "password": {"new-password"}}
		res, body := call(t, gw, j, "POST", "/accounts/api/password/", form.Encode(), "Content-Type", formType)
		// Put the password back for the other subtests.
		defer func() {
			_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
			form := url.Values{"csrfmiddlewaretoken": {tok}, "password": {"api-password"}}
			call(t, gw, j, "POST", "/accounts/api/password/", form.Encode(), "Content-Type", formType)
		}()
		if res.StatusCode != 200 || body != "changed" {
			t.Fatalf("password: %d %.300s", res.StatusCode, body)
		}
		if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": "api"`) {
			t.Fatalf("Django after the change: %s", body)
		}
		if got := php(t, j, "/whoami.php"); got != uid {
			t.Fatalf("PHP after the change: %s, want %s", got, uid)
		}
	})

	t.Run("remember me", func(t *testing.T) {
		for _, c := range []struct {
			keep   string
			maxAge int
			record string // in the gateway's record after a PHP write
		}{{"0", 0, `"browser":true`}, {"1", 1209600, `"expiry":1209600000`}} {
			// After the login, and in the login request before login().
			for _, before := range []bool{false, true} {
				j := jar{}
				var res *http.Response
				if before {
					_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
					form := url.Values{"csrfmiddlewaretoken": {tok}, "username": {"api"}, "password": {"api-password"}, "remember": {c.keep}}
					res, _ = call(t, gw, j, "POST", "/accounts/api/login/", form.Encode(), "Content-Type", formType)
				} else {
					login(t, j)
					res, _ = call(t, gw, j, "GET", "/accounts/api/remember/?keep="+c.keep, "")
				}
				if ck := res.Cookies(); res.StatusCode != 200 || len(ck) != 1 || ck[0].MaxAge != c.maxAge || !expiresWithMaxAge(ck[0]) {
					t.Fatalf("keep=%s before=%v: %d %v", c.keep, before, res.StatusCode, res.Header["Set-Cookie"])
				}
				// A PHP write keeps both the login and the expiry Django chose.
				php(t, j, "/set.php?k=after&v=1")
				if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": "api"`) || !strings.Contains(body, `"after": 1`) {
					t.Fatalf("keep=%s: %s", c.keep, body)
				}
				key := "sessiongate:{" + gw.dump(t, j["sessionid"]).ID + "}"
				rec, _ := s.redis.HGet(context.Background(), key, "d").Result()
				if !strings.Contains(rec, c.record) {
					t.Fatalf("keep=%s: record after a PHP write: %.300s", c.keep, rec)
				}
				// README, "Expiry": a "remember me" cookie lasts two weeks,
				// but the session still ends after the idle timeout unused.
				if ttl, err := s.redis.PTTL(context.Background(), key).Result(); err != nil || ttl <= 0 || ttl > 2*time.Hour {
					t.Fatalf("keep=%s: the session's TTL is %v (%v), want at most the idle timeout (2h)", c.keep, ttl, err)
				}
				// A PHP page that regenerates the ID: the new cookie lasts as
				// long as the one Django set.
				req, _ := http.NewRequest("GET", gw.URL+"/regenerate.php", nil)
				req.Header.Set("Cookie", "sessionid="+j["sessionid"])
				res, err := sessionClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if ck := res.Cookies(); res.StatusCode != 200 || len(ck) != 1 || ck[0].MaxAge != c.maxAge || !expiresWithMaxAge(ck[0]) {
					t.Fatalf("keep=%s before=%v: regenerated by PHP: %d %v", c.keep, before, res.StatusCode, res.Header["Set-Cookie"])
				}
			}
		}
	})
}

// TestDjangoLockWaiterHalfClosedGetsNoAnswer: a Django request from a
// client that half-closes its connection (shutdown(SHUT_WR), still
// reading) while a PHP page holds the session's lock is taken by net/http
// for one that left and logged 499. It got "200 OK" with an empty body
// for a view that never ran; it now gets the connection closed without an
// answer, as on the PHP path.
func TestDjangoLockWaiterHalfClosedGetsNoAnswer(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t)
	gw := s.gws[0]
	j := jar{}
	if res, _ := call(t, gw, j, "GET", "/accounts/api/token/", ""); res.StatusCode != 200 || j["sessionid"] == "" {
		t.Fatalf("session: %d %v", res.StatusCode, j)
	}
	held := make(chan string, 1)
	started, q := markFile(t)
	go func() {
		_, body, _ := gw.get(t, "/hold.php?ms=1500&started="+q, j["sessionid"])
		held <- body
	}()
	waitForFile(t, started, "hold.php")
	halfClosedGetsNoAnswer(t, gw.URL, "/accounts/api/whoami/", j.header())
	if body := <-held; body != "held" {
		t.Errorf("hold.php: %q", body)
	}
	if !poll(5*time.Second, func() bool {
		return strings.Contains(gw.Logs.String(), "/accounts/api/whoami/") && strings.Contains(gw.Logs.String(), "waited for its session's lock")
	}) {
		t.Errorf("the gone client is not logged as 499 waiting for the lock:\n%s", gw.Logs.String())
	}
}

// TestDjangoMessagesMergeWithSlowPHPPage: in merge mode, a PHP page that
// loaded the session while it still held a message, and stores a key of
// its own after Django showed (and so removed) the message, must not bring
// the message back: the user would see it twice.
func TestDjangoMessagesMergeWithSlowPHPPage(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_SESSION_LOCK=merge")
	gw := s.gws[0]
	j := jar{}
	if res, _ := call(t, gw, j, "GET", "/accounts/api/message/?text=once", ""); res.StatusCode != 302 || j["sessionid"] == "" {
		t.Fatalf("message: %d %v", res.StatusCode, j)
	}
	slow := make(chan string, 1)
	started, q := markFile(t)
	go func() {
		_, body, _ := gw.get(t, "/hold.php?ms=800&started="+q, j["sessionid"])
		slow <- body
	}()
	waitForFile(t, started, "hold.php") // it has loaded the session
	if _, body := call(t, gw, j, "GET", "/accounts/api/messages/", ""); body != `{"messages": ["once"]}` {
		t.Fatalf("shown: %s", body)
	}
	if body := <-slow; body != "held" {
		t.Fatalf("hold.php: %q", body)
	}
	if _, body := call(t, gw, j, "GET", "/accounts/api/messages/", ""); body != `{"messages": []}` {
		t.Fatalf("shown again after the PHP page's write: %s", body)
	}
	if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"held": 1`) {
		t.Fatalf("the PHP page's key: %s", body)
	}
}

// TestDjangoLoginMergeWithSlowPHPPage: in merge mode, a PHP page that
// loaded the session before a Django login and writes after it must not
// undo the login: the user and the rotated CSRF token stay (the token from
// before the login is refused). The page's own write is refused with a
// "retry" (as after PHP's session_regenerate_id(); Django's own sessions
// answer SessionInterrupted), or, should the gateway move it along one day,
// lands in the new session.
func TestDjangoLoginMergeWithSlowPHPPage(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_SESSION_LOCK=merge")
	gw := s.gws[0]
	j := jar{}
	_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
	old := j["sessionid"]
	slow := make(chan string, 1)
	started, q := markFile(t)
	go func() {
		_, body, _ := gw.get(t, "/hold.php?ms=800&started="+q, old)
		slow <- body
	}()
	waitForFile(t, started, "hold.php")
	form := url.Values{"csrfmiddlewaretoken": {tok}, "username": {"api"}, "password": {"api-password"}}
	if res, body := call(t, gw, j, "POST", "/accounts/api/login/", form.Encode(), "Content-Type", formType); res.StatusCode != 200 || j["sessionid"] == old {
		t.Fatalf("login: %d %.200s %v", res.StatusCode, body, j)
	}
	held := <-slow
	if held != "held" && !strings.Contains(held, "retry") {
		t.Fatalf("hold.php: %q", held)
	}
	if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": "api"`) || strings.Contains(body, `"held": 1`) != (held == "held") {
		t.Fatalf("after the login and the PHP page (%q): %s", held, body)
	}
	if res, _ := call(t, gw, j, "POST", "/accounts/api/set/", `{"a":1}`, "Content-Type", "application/json", "X-CSRFToken", tok); res.StatusCode != 403 {
		t.Fatalf("POST with the pre-login token: %d", res.StatusCode)
	}
	_, tok = call(t, gw, j, "GET", "/accounts/api/token/", "")
	if res, body := call(t, gw, j, "POST", "/accounts/api/set/", `{"a":1}`, "Content-Type", "application/json", "X-CSRFToken", tok); res.StatusCode != 200 {
		t.Fatalf("POST with the new token: %d %.200s", res.StatusCode, body)
	}
}

// expiresWithMaxAge reports whether a session cookie's Expires goes with
// its Max-Age, as in Django's and PHP's cookies: none for a
// browser-session cookie, else the same moment (within a few seconds).
func expiresWithMaxAge(ck *http.Cookie) bool {
	if ck.MaxAge == 0 {
		return ck.RawExpires == ""
	}
	d := time.Until(ck.Expires) - time.Duration(ck.MaxAge)*time.Second
	return d > -3*time.Second && d < 3*time.Second
}

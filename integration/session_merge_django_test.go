package integration

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestSessionMergePHPAndDjangoLoseNothing: in merge mode, PHP pages and
// Django views of one session, through two gateways, each count in keys of
// their own at the same time: every key ends exact, and no request fails.
func TestSessionMergePHPAndDjangoLoseNothing(t *testing.T) {
	t.Parallel()
	s := startDjangoStack(t, "SESSIONGATE_SESSION_LOCK=merge")
	ck := s.newSession(t)
	const clients, each = 6, 5
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				target := "/incr.php?k=p" + strconv.Itoa(c)
				if c%2 == 1 {
					target = "/accounts/counter/?key=d" + strconv.Itoa(c)
				}
				resp, body, _ := s.gws[(c/2)%2].get(t, target, ck)
				if resp.StatusCode != 200 || body != strconv.Itoa(i) {
					t.Errorf("client %d (%s) count %d: %d %q", c, target, i, resp.StatusCode, body)
				}
			}
		}(c)
	}
	wg.Wait()
	var got map[string]any
	if err := json.Unmarshal(s.gws[0].dump(t, ck).Data, &got); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < clients; c++ {
		k := "p" + strconv.Itoa(c)
		if c%2 == 1 {
			k = "d" + strconv.Itoa(c)
		}
		if v := got[k]; v != float64(each) {
			t.Errorf("key %s = %v, want %d (session %v)", k, v, each, got)
		}
	}
	if got["user"] != "ana" {
		t.Errorf("user lost: %v", got)
	}
}

// TestSessionMergeDjangoLoginKeepsPHPWrite: in merge mode, a PHP page that
// stores a key while a Django login (cycle_key) of the same browser runs is
// answered 200, and its key moves to the session the login starts, as PHP's
// own session_regenerate_id() moves it: strict mode would have run the page
// before the login. It was lost.
func TestSessionMergeDjangoLoginKeepsPHPWrite(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_SESSION_LOCK=merge")
	gw := s.gws[0]
	ck := s.newSession(t)
	type answer struct {
		res *http.Response
		err error
		at  time.Time
	}
	login := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", gw.URL+"/accounts/api/login-as/?u=merger&ms=600", nil)
		req.Header.Set("Cookie", "sessionid="+ck)
		res, err := sessionClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		login <- answer{res, err, time.Now()}
	}()
	// Well inside the login's wait: the gateway loaded the session when the
	// login arrived.
	time.Sleep(150 * time.Millisecond)
	pres, pbody, _ := gw.get(t, "/set.php?k=theme&v=%22dark%22", ck)
	phpDone := time.Now()
	l := <-login
	if l.err != nil || l.res.StatusCode != 200 {
		t.Fatalf("login: %v %v", l.err, l.res)
	}
	if pres.StatusCode != 200 || pbody != "ok" || !phpDone.Before(l.at) {
		t.Fatalf("PHP page during the login: %d %q, done before the login: %v", pres.StatusCode, pbody, phpDone.Before(l.at))
	}
	j := jar{"sessionid": ck}
	j.update(l.res)
	if j["sessionid"] == ck {
		t.Fatal("login did not rotate the session")
	}
	var got map[string]any
	if err := json.Unmarshal(gw.dump(t, j["sessionid"]).Data, &got); err != nil {
		t.Fatal(err)
	}
	if got["theme"] != "dark" || got["user"] != "ana" || got["_auth_user_id"] == nil {
		t.Fatalf("session after the login: %v; want the page's theme kept", got)
	}
}

package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// regenLateScript is a login page that loaded the session before other
// requests of the browser changed or ended it: session_start() (with
// close=1 then session_write_close(), so that strict mode lets the others
// run), a pause until the test says go, session_start() again if it
// closed, session_regenerate_id() (with delete=1: true, the old session
// retired; else false, the old session stays) and a write.
const regenLateScript = `<?php
session_start();
if (!empty($_GET['close'])) {
    session_write_close();
}
touch($_GET['started']);
for ($i = 0; $i < 3000 && !file_exists($_GET['go']); $i++) {
    usleep(10000);
}
if (!empty($_GET['close'])) {
    session_start();
}
session_regenerate_id(!empty($_GET['delete']));
$_SESSION['seen'] = 1;
header('Content-Type: text/plain');
echo "ok";
`

// regenLateResult is the late login page's answer: status, body, and the
// session cookie it set ("" none, "-" its deletion).
type regenLateResult struct{ status, body, cookie string }

// startRegenLate runs regenLateScript with params on gw in the background
// and returns once it loaded the session; it regenerates once release is
// called.
func startRegenLate(t *testing.T, s *sessionStack, gw *sessionGW, ck string, params url.Values) (release func(), done <-chan regenLateResult) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.fpm.DocRoot, "regen_late.php"), []byte(regenLateScript), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := harness.PHPTempDir(t)
	started, goFile := filepath.Join(dir, "started"), filepath.Join(dir, "go")
	params.Set("started", started)
	params.Set("go", goFile)
	ch := make(chan regenLateResult, 1)
	go func() {
		resp, body, set := gw.get(t, "/regen_late.php?"+params.Encode(), ck)
		ch <- regenLateResult{resp.Status, body, set}
	}()
	waitForFile(t, started, "regen_late.php")
	return func() { os.WriteFile(goFile, nil, 0o644) }, ch
}

// redisKeys lists the keys of the stack's Redis, every master of a
// Cluster included.
func redisKeys(t *testing.T, s *sessionStack) []string {
	t.Helper()
	ctx := context.Background()
	if cc, ok := s.redis.(*redis.ClusterClient); ok {
		// ForEachMaster calls fn on every master at once.
		var mu sync.Mutex
		var all []string
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			k, err := c.Keys(ctx, "*").Result()
			mu.Lock()
			all = append(all, k...)
			mu.Unlock()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	keys, err := s.redis.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestSessionRegenerateAfterALogoutStoresNothing: a page (gateway 0)
// loaded the logged-in session; a logout (destroy.php, gateway 1) then
// deletes it and answers with the cookie's deletion. The page then calls
// session_regenerate_id(), with or without true. It must get 503 and store
// nothing (README), in merge mode and in strict mode once the page
// released the session (session_write_close(), session_start() again):
// session_regenerate_id(false) stored the logged-out user's data under a
// new ID and answered 200 with its cookie, logging the browser in again,
// and so did session_regenerate_id(true) in strict mode.
func TestSessionRegenerateAfterALogoutStoresNothing(t *testing.T) {
	t.Parallel()
	sessionBackends(t, func(t *testing.T, o stackOpts) {
		for _, mode := range []string{"merge", "strict"} {
			t.Run(mode, func(t *testing.T) {
				o := o
				o.env = append(append([]string{}, o.env...), "SESSIONGATE_SESSION_LOCK="+mode)
				s := startSessionStack(t, o)
				for _, del := range []string{"", "1"} {
					ck := s.newSession(t)
					cl := ""
					if mode == "strict" {
						cl = "1"
					}
					release, done := startRegenLate(t, s, s.gws[0], ck, url.Values{"delete": {del}, "close": {cl}})
					if resp, body, set := s.gws[1].get(t, "/destroy.php", ck); resp.StatusCode != 200 || set != "-" {
						t.Fatalf("logout: %d %q cookie %q", resp.StatusCode, body, set)
					}
					before := redisKeys(t, s)
					release()
					r := <-done
					if !strings.HasPrefix(r.status, "503") || r.cookie != "" {
						t.Errorf("session_regenerate_id(%v) after the logout: %s %q cookie %q, want 503 and no cookie", del == "1", r.status, r.body, r.cookie)
					}
					if keys := redisKeys(t, s); len(keys) > len(before) {
						t.Errorf("session_regenerate_id(%v) after the logout stored %d keys in Redis: %v", del == "1", len(keys)-len(before), keys)
					}
					if r.cookie != "" && r.cookie != "-" {
						var got map[string]any
						json.Unmarshal(s.gws[1].dump(t, r.cookie).Data, &got)
						if got["user"] == "ana" {
							t.Errorf("the new cookie names a session holding the logged-out user: %v", got)
						}
					}
				}
			})
		}
	})
}

// TestSessionRegenerateAfterAnotherLoginKeepsIts: the same page, but
// another login of the browser (regenerate.php, session_regenerate_id(true)
// on gateway 1) moved the session to a new ID first. The page's
// session_regenerate_id(false) must get 503 and send no cookie, so that
// the browser keeps the other login's: it sent one of its own, naming a
// copy of the session from before that login.
func TestSessionRegenerateAfterAnotherLoginKeepsIts(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"merge", "strict"} {
		t.Run(mode, func(t *testing.T) {
			s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=" + mode}})
			ck := s.newSession(t)
			release, done := startRegenLate(t, s, s.gws[0], ck, url.Values{"close": {"1"}})
			resp, _, login := s.gws[1].get(t, "/regenerate.php", ck)
			if resp.StatusCode != 200 || login == "" || login == "-" || login == ck {
				t.Fatalf("the other login: %d cookie %q", resp.StatusCode, login)
			}
			release()
			r := <-done
			if !strings.HasPrefix(r.status, "503") || r.cookie != "" {
				t.Errorf("session_regenerate_id(false) after another login: %s %q cookie %q, want 503 and no cookie", r.status, r.body, r.cookie)
			}
			if d := s.gws[1].dump(t, login); !strings.Contains(string(d.Data), `"regenerated":true`) {
				t.Errorf("the other login's session holds %s", d.Data)
			}
		})
	}
}

// TestSessionMergeRegenerateKeepOldCarriesAConcurrentWrite: README (merge
// mode): a login with session_regenerate_id() moves to the new session
// what other requests stored in the old one while it ran. Another tab
// stores cart=3 (gateway 1) while the login page (gateway 0) waits; its
// session_regenerate_id(false) left it behind in the old session.
func TestSessionMergeRegenerateKeepOldCarriesAConcurrentWrite(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=merge"}})
	ck := s.newSession(t)
	release, done := startRegenLate(t, s, s.gws[0], ck, url.Values{})
	if resp, body, _ := s.gws[1].get(t, "/set.php?k=cart&v=3", ck); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("other tab: %d %q", resp.StatusCode, body)
	}
	release()
	r := <-done
	if !strings.HasPrefix(r.status, "200") || r.cookie == "" || r.cookie == "-" || r.cookie == ck {
		t.Fatalf("login: %+v", r)
	}
	var got map[string]any
	if err := json.Unmarshal(s.gws[1].dump(t, r.cookie).Data, &got); err != nil {
		t.Fatal(err)
	}
	if got["cart"] != float64(3) || got["user"] != "ana" || got["seen"] != float64(1) {
		t.Errorf("the login's new session holds %v: the other tab's cart did not move along", got)
	}
}

// TestDjangoMergePHPLoginKeepsAConcurrentDjangoExpiry: merge mode, real
// php-fpm and gunicorn+Django: a PHP login page
// (merge_wait.php?regen=1: session_regenerate_id(true)) loaded the
// session; meanwhile a Django view of the same browser unticks "remember
// me" (set_expiry(0): the session ends when the browser closes). The
// login moves the Django change along, its _session_expiry 0 in the data,
// and must move the session's expiry too: its new cookie was a persistent
// one, kept across browser restarts.
func TestDjangoMergePHPLoginKeepsAConcurrentDjangoExpiry(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_SESSION_LOCK=merge")
	gw := s.gws[0]
	ck := s.newSession(t)
	d := harness.PHPTempDir(t)
	started, goFile := filepath.Join(d, "started"), filepath.Join(d, "go")
	q := url.Values{"k": {"logged"}, "v": {"1"}, "regen": {"1"}, "started": {started}, "go": {goFile}}
	ch := make(chan *http.Response, 1)
	go func() {
		res, err := sessionClient.Do(gw.request("GET", "/merge_wait.php?"+q.Encode(), ck))
		if err != nil {
			t.Error(err)
			ch <- nil
			return
		}
		res.Body.Close()
		ch <- res
	}()
	waitForFile(t, started, "merge_wait.php")
	if resp, body, _ := gw.get(t, "/accounts/api/remember/?keep=0", ck); resp.StatusCode != 200 {
		t.Fatalf("remember: %d %q", resp.StatusCode, body)
	}
	os.WriteFile(goFile, nil, 0o644)
	res := <-ch
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("login: %v", res)
	}
	var login string
	for _, c := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "sessionid=") {
			login = c
		}
	}
	newID := strings.TrimPrefix(strings.SplitN(login, ";", 2)[0], "sessionid=")
	if newID == "" || newID == ck {
		t.Fatalf("login's cookie: %q", login)
	}
	if data := string(gw.dump(t, newID).Data); !strings.Contains(data, `"_session_expiry":0`) || !strings.Contains(data, `"logged"`) {
		t.Fatalf("the new session holds %s: Django's change did not move along", data)
	}
	if strings.Contains(login, "Max-Age") || strings.Contains(login, "Expires") {
		t.Errorf("the login's new cookie is persistent (%s) though the session it moved carries Django's browser-close expiry", login)
	}
}

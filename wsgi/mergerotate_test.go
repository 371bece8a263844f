package wsgi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/sessionbridge"
)

// writeBeside stores data as the session of cookie ck the way a PHP page of
// the same browser does while a Django request of it runs (merge mode: no
// lock, a three-way merge).
func (e *env) writeBeside(ck, data string) {
	e.t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: "sessionid", Value: ck})
	ctx := context.Background()
	s, err := e.mgr.Open(ctx, r, false)
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Release(ctx)
	if _, err := s.WriteReencoded(ctx, s.ID(), json.RawMessage(data)); err != nil {
		e.t.Fatalf("write beside: %v", err)
	}
}

// A Django login (cycle_key, X-Sessiongate-Rotate: carry) in merge mode
// while a PHP page of the same browser stores a key: strict mode would run
// that page before the login (its key moves to the new ID) or after it
// (with the old cookie: no session). Merge mode lost it while the page got
// its 200. A rotation after flush() (1) starts from nothing: the page's key,
// the logged-out session's, must not move to the new session.
func TestMergeDjangoRotateKeepsConcurrentWrites(t *testing.T) {
	for _, tc := range []struct {
		rotate string
		moved  bool
	}{{"carry", true}, {"1", false}} {
		t.Run("rotate="+tc.rotate, func(t *testing.T) {
			e := newEnv(t, envOpts{mode: sessionbridge.LockMerge})
			e.respond(answer{op: "write", data: `{"cart":[1],"old":1}`})
			_, _, ck := e.do("GET", "/a/", "", nil)

			inLogin := make(chan struct{})
			finishLogin := make(chan struct{})
			e.app.handle = func(w http.ResponseWriter, r *http.Request, s seen) (answer, bool) {
				if got := r.Header.Get(hdrFeatures); !strings.Contains(got, "rotate-carry") {
					t.Errorf("%s = %q", hdrFeatures, got)
				}
				close(inLogin)
				<-finishLogin
				return answer{op: "write", rotate: tc.rotate, data: `{"cart":[1],"_auth_user_id":"7"}`}, true
			}
			done := make(chan string, 1)
			go func() {
				res, _, set := e.do("POST", "/login/", ck, nil)
				if res.StatusCode != 200 {
					t.Errorf("login: %d", res.StatusCode)
				}
				done <- set
			}()
			<-inLogin
			e.writeBeside(ck, `{"cart":[1],"old":1,"theme":"dark"}`)
			close(finishLogin)
			newCk := <-done
			_, data := e.open(newCk)
			var got map[string]any
			if err := json.Unmarshal([]byte(data), &got); err != nil {
				t.Fatal(err)
			}
			if got["_auth_user_id"] != "7" || got["old"] != nil || (got["theme"] == "dark") != tc.moved {
				t.Fatalf("after the login: %s; want the page's theme moved along: %v", data, tc.moved)
			}
		})
	}
}

// A logout (delete) that lands while a Django login of the same session
// runs, in merge mode: the login's carry must not bring the logged-out data
// back under a new ID; it is refused (503) and sets no cookie, as in strict
// mode, where it would have found no session.
func TestMergeDjangoRotateAfterLogoutIsRefused(t *testing.T) {
	e := newEnv(t, envOpts{mode: sessionbridge.LockMerge})
	e.respond(answer{op: "write", data: `{"cart":[1],"_auth_user_id":"3"}`})
	_, _, ck := e.do("GET", "/a/", "", nil)

	inLogin := make(chan struct{})
	finishLogin := make(chan struct{})
	e.app.handle = func(w http.ResponseWriter, r *http.Request, s seen) (answer, bool) {
		if r.URL.Path == "/logout/" {
			return answer{op: "delete"}, true
		}
		close(inLogin)
		<-finishLogin
		return answer{op: "write", rotate: "carry", data: `{"cart":[1],"_auth_user_id":"7"}`}, true
	}
	type result struct {
		status int
		set    string
	}
	done := make(chan result, 1)
	go func() {
		res, _, set := e.do("POST", "/login/", ck, nil)
		done <- result{res.StatusCode, set}
	}()
	<-inLogin
	if res, _, set := e.do("POST", "/logout/", ck, nil); res.StatusCode != 200 || set != "-" {
		t.Fatalf("logout: %d cookie %q", res.StatusCode, set)
	}
	close(finishLogin)
	l := <-done
	if l.status != http.StatusServiceUnavailable || l.set != "" {
		t.Fatalf("login after the logout: %d cookie %q; want 503 and no cookie", l.status, l.set)
	}
	if id, data := e.open(ck); id != "" {
		t.Fatalf("logged-out session back: %s", data)
	}
}

package wsgi

import (
	"fmt"
	"testing"

	"github.com/sessiongate/sessiongate/sessionbridge"
)

// Django stores a session the view saved (save(), create(), cycle_key())
// even with nothing in it, under a new key, and sets its cookie: apps call
// request.session.save() to give an anonymous visitor a session key. The
// gateway took sessiongate_django's empty write for no session: no cookie,
// and a cycled empty session lost its cookie as if logged out.
func TestDjangoEmptyWriteStoresSession(t *testing.T) {
	for _, mode := range []sessionbridge.LockMode{sessionbridge.LockStrict, sessionbridge.LockMerge} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			e := newEnv(t, envOpts{mode: mode})
			e.respond(answer{op: "write", data: `{}`})
			res, _, ck := e.do("GET", "/a/", "", nil)
			if res.StatusCode != 200 || ck == "" || ck == "-" {
				t.Fatalf("new empty session: %d, cookie %q", res.StatusCode, ck)
			}
			if id, data := e.open(ck); id == "" || data != "{}" {
				t.Fatalf("new empty session stored as %q: %s", id, data)
			}
			for _, rotate := range []string{"carry", "1"} {
				e.respond(answer{op: "write", data: `{"cart":[1]}`})
				_, _, old := e.do("GET", "/a/", "", nil)
				e.respond(answer{op: "write", rotate: rotate, data: `{}`})
				res, _, ck := e.do("GET", "/a/", old, nil)
				if res.StatusCode != 200 || ck == "" || ck == "-" {
					t.Fatalf("rotate=%s of an emptied session: %d, cookie %q", rotate, res.StatusCode, ck)
				}
				if id, data := e.open(ck); id == "" || data != "{}" {
					t.Fatalf("rotate=%s: new session stored as %q: %s", rotate, id, data)
				}
				if id, data := e.open(old); id != "" {
					t.Fatalf("rotate=%s: old session still there: %s", rotate, data)
				}
			}
		})
	}
}

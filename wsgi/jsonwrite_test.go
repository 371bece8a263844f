package wsgi

import (
	"strings"
	"testing"
)

// TestWriteTheStoreCannotHoldIs500: data the JSON codec takes but the
// session store cannot hold (NaN and Infinity, which Python's json.dumps
// writes by default; a JSON array for the session) is refused as Django's
// fault: 500 without Retry-After (a retry writes the same), and before a
// rotation retires the session, which must keep its data and its cookie.
func TestWriteTheStoreCannotHoldIs500(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.respond(answer{op: "write", data: `{"n":1}`})
	_, _, ck := e.do("GET", "/a/", "", nil)
	for _, a := range []answer{
		{op: "write", data: `{"n":1,"f":NaN}`},
		{op: "write", rotate: "1", data: `{"n":1,"f":Infinity,"_auth_user_id":"1"}`},
		{op: "write", rotate: "1", data: `[1]`},
	} {
		e.respond(a)
		res, body, set := e.do("GET", "/a/", ck, nil)
		if res.StatusCode != 500 || set != "" || res.Header.Get("Retry-After") != "" {
			t.Errorf("%s rotate %q: %d %q cookie %q Retry-After %q, want 500, no new cookie and no Retry-After",
				a.data, a.rotate, res.StatusCode, body, set, res.Header.Get("Retry-After"))
		}
		if _, data := e.open(ck); data != `{"n":1}` {
			t.Fatalf("%s rotate %q: the session holds %s afterwards, want its data", a.data, a.rotate, data)
		}
	}
	if !strings.Contains(e.logs.String(), "session data") {
		t.Errorf("no reason logged:\n%s", e.logs.String())
	}
}

package integration

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDjangoPHPValueRoundTrip: values PHP writes (lists and maps, integer
// keys, large integers, floats, -0.0, tags for INF/NAN/objects/invalid
// UTF-8, deep nesting) survive Django's writes unchanged for PHP: a write
// of another key, and one of the member that holds them, which Django
// re-encodes.
func TestDjangoPHPValueRoundTrip(t *testing.T) {
	t.Parallel()
	s, g := startDjangoAPIStack(t)
	gw := s.gws[0]
	ck := s.newSession(t)
	if res, body, _ := gw.get(t, "/types.php?op=set", ck); res.StatusCode != 200 || body != "ok" {
		t.Fatalf("set: %d %s", res.StatusCode, body)
	}
	if _, body, _ := gw.get(t, "/types.php", ck); body != "same" {
		t.Fatalf("PHP alone: %s", body)
	}
	j := jar{"sessionid": ck}
	_, shown := call(t, gw, j, "GET", "/accounts/api/types-show/", "")
	for _, want := range []string{`"list": ["list", "['a', 'b']"]`, `"one": ["dict", "{'1': 'a'}"]`, `"max": ["int", "9223372036854775807"]`, `"f3": ["float", "1.0"]`, `"negzero": ["float", "-0.0"]`} {
		if !strings.Contains(shown, want) {
			t.Errorf("Django does not see %s in %.500s", want, shown)
		}
	}
	for _, op := range []string{"/accounts/api/whoami/", "/accounts/api/types-mutate/"} {
		if res, body := call(t, gw, j, "GET", op, ""); res.StatusCode != 200 {
			t.Fatalf("%s: %d %.300s\n%s", op, res.StatusCode, body, g.Log())
		}
		if _, body, _ := gw.get(t, "/types.php", j["sessionid"]); body != "same" {
			t.Errorf("after %s: %s", op, body)
		}
	}
}

// TestDjangoKeysThatCollideInJSON: a dict whose keys JSON turns into the
// same member name ({1: "a", "1": "b"}) cannot be given to PHP; Django must
// refuse it loudly, as it refuses data nested too deep, instead of storing
// a session that every PHP page then answers with a 500.
func TestDjangoKeysThatCollideInJSON(t *testing.T) {
	t.Parallel()
	s, g := startDjangoAPIStack(t)
	gw := s.gws[0]
	for _, kind := range []string{"dupkeys", "topdupkeys"} {
		ck := s.newSession(t)
		j := jar{"sessionid": ck}
		if res, _ := call(t, gw, j, "GET", "/accounts/api/pyset/?kind="+kind, ""); res.StatusCode != 500 {
			t.Errorf("%s: Django answered %d, want 500", kind, res.StatusCode)
		}
		if res, body, _ := gw.get(t, "/get.php", ck); res.StatusCode != 200 || !strings.Contains(body, `"data":{"user":"ana"}`) {
			t.Errorf("%s: PHP afterwards: %d %s", kind, res.StatusCode, body)
		}
	}
	if !strings.Contains(g.Log(), "same JSON member name") {
		t.Errorf("no reason in Django's log")
	}
}

// TestDjangoUserSeenByPHP: sessiongate_user_id() follows Django's logins
// in one session: a first login, a login as another user, a logout.
func TestDjangoUserSeenByPHP(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t)
	gw := s.gws[0]
	ck := s.newSession(t)
	j := jar{"sessionid": ck}
	for _, u := range []string{"alice", "bob", "bob"} {
		res, pk := call(t, gw, j, "GET", "/accounts/api/login-as/?u="+u, "")
		if res.StatusCode != 200 {
			t.Fatalf("login %s: %d", u, res.StatusCode)
		}
		if _, body, _ := gw.get(t, "/whoami.php", j["sessionid"]); body != "user:"+pk {
			t.Errorf("after login as %s (pk %s): PHP sees %s", u, pk, body)
		}
		if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": "`+u+`"`) {
			t.Errorf("after login as %s: Django sees %s", u, body)
		}
	}
}

// TestDjangoAndPHPWriteAtOnce: PHP and Django change different keys of one
// session at the same time; in strict and in merge mode both changes stay.
func TestDjangoAndPHPWriteAtOnce(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"strict", "merge"} {
		t.Run(mode, func(t *testing.T) {
			s, _ := startDjangoAPIStack(t, "SESSIONGATE_SESSION_LOCK="+mode)
			gw := s.gws[0]
			ck := s.newSession(t)
			for i := range 3 {
				done := make(chan string)
				go func() {
					_, body, _ := gw.get(t, "/merge_set.php?ms=200&k=php"+strconv.Itoa(i)+"&v=p", ck)
					done <- body
				}()
				time.Sleep(50 * time.Millisecond)
				j := jar{"sessionid": ck}
				res, body := call(t, gw, j, "GET", "/accounts/api/slow-set/?ms=200&k=dj"+strconv.Itoa(i)+"&v=d", "")
				if res.StatusCode != 200 {
					t.Fatalf("django: %d %s", res.StatusCode, body)
				}
				if b := <-done; !strings.HasPrefix(b, "ok") {
					t.Fatalf("php: %s", b)
				}
			}
			d := string(gw.dump(t, ck).Data)
			for i := range 3 {
				for _, k := range []string{`"php` + strconv.Itoa(i) + `":"p"`, `"dj` + strconv.Itoa(i) + `":"d"`} {
					if !strings.Contains(d, k) {
						t.Errorf("%s lost: %s", k, d)
					}
				}
			}
		})
	}
}

// TestDjangoWriteOnOpaquePHPSession: PHP data the shared format keeps only
// as one opaque member for the whole session (one object under two keys)
// cannot take Django's keys next to it. A Django write there (its login)
// must be refused with the change lost and said so (500, Django's data is
// at fault), not stored as a session every PHP page then answers with a 500.
func TestDjangoWriteOnOpaquePHPSession(t *testing.T) {
	t.Parallel()
	s, g := startDjangoAPIStack(t)
	gw := s.gws[0]
	ck := s.newSession(t)
	if res, body, _ := gw.get(t, "/shared_object.php", ck); res.StatusCode != 200 || body != "ok" {
		t.Fatalf("PHP set: %d %s", res.StatusCode, body)
	}
	j := jar{"sessionid": ck}
	if res, body := call(t, gw, j, "GET", "/accounts/api/login-as/?u=bob", ""); res.StatusCode != 500 {
		t.Errorf("Django login on an opaque PHP session: %d %.200s, want 500", res.StatusCode, body)
	}
	if res, body, _ := gw.get(t, "/get.php", j["sessionid"]); res.StatusCode != 200 || !strings.Contains(body, `"owner"`) {
		t.Errorf("PHP afterwards: %d %.300s, want its data", res.StatusCode, body)
	}
	// sessiongate_django refuses it before the gateway sees it, saying why.
	if !strings.Contains(g.Log(), `"__php_session__" must be the only key`) {
		t.Errorf("no reason in Django's log:\n%s", g.Log())
	}
}

// TestDjangoUserSeenByPHPNextToAnEnum: sessiongate_user_id() names the
// Django user also on a page that does not define an enum another PHP
// application keeps in the session (PHP cannot build the enum there, so
// unserialize() of the whole session fails): the user is logged in for
// Django and must not be anonymous to PHP.
func TestDjangoUserSeenByPHPNextToAnEnum(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t)
	gw := s.gws[0]
	ck := s.newSession(t)
	j := jar{"sessionid": ck}
	res, pk := call(t, gw, j, "GET", "/accounts/api/login-as/?u=alice", "")
	if res.StatusCode != 200 {
		t.Fatalf("login: %d", res.StatusCode)
	}
	if res, body, _ := gw.get(t, "/enum_role.php?op=set", j["sessionid"]); res.StatusCode != 200 || !strings.Contains(body, `"role":"admin"`) {
		t.Fatalf("enum_role.php?op=set: %d %s", res.StatusCode, body)
	}
	if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": "alice"`) {
		t.Fatalf("Django sees %s", body)
	}
	if _, body, _ := gw.get(t, "/whoami.php", j["sessionid"]); body != "user:"+pk {
		t.Errorf("PHP sees %q, want user:%s", body, pk)
	}
}

// TestDjangoNextToAnEnumUsedTwice: PHP writes one enum case kept under two
// keys as a back-reference (r:) to the first, as it does for any object.
// An enum case has no identity to keep, so that is no link between the
// keys: Django must still see its login and every key, and its writes must
// be stored. The session was kept as one opaque PHP member instead, so
// Django saw an empty session (its user logged out) and every Django write
// was refused with a 500.
func TestDjangoNextToAnEnumUsedTwice(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t)
	gw := s.gws[0]
	j := jar{"sessionid": s.newSession(t)}
	if res, _ := call(t, gw, j, "GET", "/accounts/api/login-as/?u=alice", ""); res.StatusCode != 200 {
		t.Fatalf("login: %d", res.StatusCode)
	}
	if res, body, _ := gw.get(t, "/enum_role.php?op=twice", j["sessionid"]); res.StatusCode != 200 || !strings.Contains(body, `"granted":["admin"]`) {
		t.Fatalf("enum_role.php?op=twice: %d %s", res.StatusCode, body)
	}
	if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": "alice"`) || !strings.Contains(body, `"user": "ana"`) {
		t.Errorf("Django sees %s, want alice logged in and the user key", body)
	}
	if res, body := call(t, gw, j, "GET", "/accounts/api/slow-set/?ms=0&k=dj&v=d", ""); res.StatusCode != 200 {
		t.Errorf("Django write: %d %.200s", res.StatusCode, body)
	}
	if res, body, _ := gw.get(t, "/enum_role.php", j["sessionid"]); res.StatusCode != 200 || !strings.Contains(body, `"role":"admin","granted":["admin"]`) || !strings.Contains(body, `"dj":"d"`) {
		t.Errorf("PHP afterwards: %d %s", res.StatusCode, body)
	}
}

// TestDjangoIntegerBeyondFloatRange: Python's ints have no bound, and an
// integer beyond a float's range (10**400) is JSON that Django's own
// serializer keeps, but PHP could only get it as INF, another value: the
// write is refused (500) and Django's log says why, as for data nested too
// deep; the session keeps what it had. The gateway refused it with only its
// own log naming a number "out of range", while Django's middleware
// believed the change sent, and the contract said such an integer reaches
// PHP as a float.
func TestDjangoIntegerBeyondFloatRange(t *testing.T) {
	t.Parallel()
	s, g := startDjangoAPIStack(t)
	gw := s.gws[0]
	j := jar{"sessionid": s.newSession(t)}
	if res, body := call(t, gw, j, "GET", "/accounts/api/pyset/?kind=hugeint", ""); res.StatusCode != 500 {
		t.Errorf("Django write: %d %.200s, want 500", res.StatusCode, body)
	}
	if res, body, _ := gw.get(t, "/get.php", j["sessionid"]); res.StatusCode != 200 || !strings.Contains(body, `"data":{"user":"ana"}`) {
		t.Errorf("PHP afterwards: %d %s", res.StatusCode, body)
	}
	if !strings.Contains(g.Log(), "integer beyond a float's range") {
		t.Errorf("no reason in Django's log:\n%s", g.Log())
	}
}

// TestDjangoLoneSurrogateStoredAsReplacementCharacter: a JSON API view
// keeps a client's string whose "\ud800" escape Python reads as a lone
// surrogate, which UTF-8 cannot carry. Django's own sessions store it; the
// page must not become a 500 that drops the change, and the gateway and
// PHP get U+FFFD, what Go makes of the escape.
func TestDjangoLoneSurrogateStoredAsReplacementCharacter(t *testing.T) {
	t.Parallel()
	s, g := startDjangoAPIStack(t)
	gw := s.gws[0]
	j := jar{}
	_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
	if res, body := call(t, gw, j, "POST", "/accounts/api/set/", `{"q":"abc\ud800","\udc00":"key"}`, "Content-Type", "application/json", "X-CSRFToken", tok); res.StatusCode != 200 {
		t.Fatalf("Django write: %d %.200s\n%s", res.StatusCode, body, g.Log())
	}
	// get.php's json_encode escapes what PHP was given.
	if d := gw.dump(t, j["sessionid"]); !strings.Contains(string(d.Data), `"q":"abc\ufffd"`) || !strings.Contains(string(d.Data), `"\ufffd":"key"`) {
		t.Errorf("PHP reads: %s", d.Data)
	}
}

// TestDjangoObjectsInsideAValuePHPChanged: a PHP page counts something
// inside a dict Django stored; the rest of the dict must come back to
// Django as Django wrote it. PHP's array model turned every nested {} into
// [] and {"0": ...} into a list, so the view's next
// cart["items"]["sku"] = 1 failed on a list, and a big int became a float.
func TestDjangoObjectsInsideAValuePHPChanged(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"strict", "merge"} {
		t.Run(mode, func(t *testing.T) {
			s, _ := startDjangoAPIStack(t, "SESSIONGATE_SESSION_LOCK="+mode)
			gw := s.gws[0]
			j := jar{"sessionid": s.newSession(t)}
			_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
			cart := `{"items": {}, "by_pos": {"0": "a", "1": "b"}, "big": 18446744073709551616, "f": 1.0, "n": 0}`
			if res, body := call(t, gw, j, "POST", "/accounts/api/set/", `{"cart":`+cart+`}`, "Content-Type", "application/json", "X-CSRFToken", tok); res.StatusCode != 200 {
				t.Fatalf("Django write: %d %.200s", res.StatusCode, body)
			}
			for range 2 {
				if res, body, _ := gw.get(t, "/contract_rt.php?op=incr&k=cart", j["sessionid"]); res.StatusCode != 200 || body != "ok" {
					t.Fatalf("PHP: %d %s", res.StatusCode, body)
				}
			}
			want := `"cart": {"items": {}, "by_pos": {"0": "a", "1": "b"}, "big": 18446744073709551616, "f": 1.0, "n": 2}`
			if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, want) {
				t.Errorf("Django sees %s\nwant %s", body, want)
			}
		})
	}
}

// TestDjangoListEditedByPHPBesideEqualElements: a PHP page edits one
// element of a list Django stored, next to an element equal to it in
// PHP's model. The equal element further on took the edited one's place,
// so Django's {} inside the edited element came back [] (and the
// untouched [] after it came back {}); after an array_shift, a [] took the
// text of an earlier {} PHP had shifted out.
func TestDjangoListEditedByPHPBesideEqualElements(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t)
	gw := s.gws[0]
	for _, c := range []struct{ django, edit, want string }{
		{`[{"a": {}, "n": 1}, {"a": {}, "n": 1}]`, "change", `[{"a": {}, "n": "changed"}, {"a": {}, "n": 1}]`},
		{`[{}, {}]`, "append", `[{"0": "app"}, {}]`},
		{`[1, {}, []]`, "set", `[1, {"zz": 1}, []]`},
		{`[{}, "x", "y", [], true]`, "shift", `["x", "y", [], true]`},
	} {
		j := jar{"sessionid": s.newSession(t)}
		_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
		if res, body := call(t, gw, j, "POST", "/accounts/api/set/", `{"l":`+c.django+`}`, "Content-Type", "application/json", "X-CSRFToken", tok); res.StatusCode != 200 {
			t.Fatalf("Django write: %d %.200s", res.StatusCode, body)
		}
		if res, body, _ := gw.get(t, "/list_edit.php?m="+c.edit, j["sessionid"]); res.StatusCode != 200 || body != "ok" {
			t.Fatalf("PHP %s: %d %s", c.edit, res.StatusCode, body)
		}
		if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"l": `+c.want) {
			t.Errorf("Django wrote %s, PHP's %s: Django sees %s\nwant \"l\": %s", c.django, c.edit, body, c.want)
		}
	}
}

// TestPHPValueThatCannotBeSerialized: a closure or an anonymous class in
// the session makes PHP's serialize() throw when the session is written.
// The page fails (500, PHP's error in the log) and the session keeps what
// it had, for PHP and for Django: nothing half-written, nothing lost.
func TestPHPValueThatCannotBeSerialized(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t)
	gw := s.gws[0]
	j := jar{"sessionid": s.newSession(t)}
	if res, _ := call(t, gw, j, "GET", "/accounts/api/login-as/?u=alice", ""); res.StatusCode != 200 {
		t.Fatalf("login: %d", res.StatusCode)
	}
	for _, what := range []string{"closure", "anon"} {
		if res, _, _ := gw.get(t, "/closure.php?what="+what, j["sessionid"]); res.StatusCode != 500 {
			t.Errorf("%s: %d, want 500", what, res.StatusCode)
		}
		if res, body, _ := gw.get(t, "/get.php", j["sessionid"]); res.StatusCode != 200 || strings.Contains(body, "changed") || !strings.Contains(body, `"user":"ana"`) {
			t.Errorf("%s: PHP afterwards: %d %s", what, res.StatusCode, body)
		}
		if _, body := call(t, gw, j, "GET", "/accounts/api/whoami/", ""); !strings.Contains(body, `"user": "alice"`) {
			t.Errorf("%s: Django afterwards: %s", what, body)
		}
	}
	for _, want := range []string{"Serialization of 'Closure' is not allowed", "Serialization of 'class@anonymous' is not allowed"} {
		if !poll(3*time.Second, func() bool { return strings.Contains(gw.Logs.String(), want) }) {
			t.Errorf("no %q in the gateway's log", want)
		}
	}
}

// TestDjangoReservedSessionShapes: shapes the contract reserves for PHP's
// tags are refused by Django's side with the reason in Django's log, and
// the session keeps what it had. "__php_session__" next to another key and
// a one-member "__php__" object holding no string were refused only by the
// gateway (500, its own log line), Django's log silent; a session whose only
// key is "__php__" was stored, and PHP read that key's text as its whole
// session (here: user "eve" instead of "ana").
func TestDjangoReservedSessionShapes(t *testing.T) {
	t.Parallel()
	s, g := startDjangoAPIStack(t)
	gw := s.gws[0]
	for _, tc := range []struct{ kind, reason string }{
		{"wholenextto", `"__php_session__" must be the only key`},
		{"tagnotstring", `"__php__" must hold a string`},
		{"onlytag", `a session whose only key is "__php__"`},
	} {
		j := jar{"sessionid": s.newSession(t)}
		if res, body := call(t, gw, j, "GET", "/accounts/api/pyset/?kind="+tc.kind, ""); res.StatusCode != 500 {
			t.Errorf("%s: Django write: %d %.200s, want 500", tc.kind, res.StatusCode, body)
		}
		if res, body, _ := gw.get(t, "/get.php", j["sessionid"]); res.StatusCode != 200 || !strings.Contains(body, `"data":{"user":"ana"}`) {
			t.Errorf("%s: PHP afterwards: %d %s", tc.kind, res.StatusCode, body)
		}
		if !strings.Contains(g.Log(), tc.reason) {
			t.Errorf("%s: no %q in Django's log:\n%s", tc.kind, tc.reason, g.Log())
		}
	}
}

// TestDjangoRefusedWriteKeepsTheExpiry: a write the gateway refuses (a PHP
// object the session did not hold, which sessiongate_django cannot tell
// from PHP's own) leaves the session as it was: the set_expiry(60) that
// came with it too, which was stored all the same (the session then
// ended after a minute of quiet).
func TestDjangoRefusedWriteKeepsTheExpiry(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t)
	gw := s.gws[0]
	j := jar{"sessionid": s.newSession(t)}
	// The session's record is the only key of this stack's Redis.
	shortest := func() time.Duration {
		t.Helper()
		keys, err := s.redis.Keys(t.Context(), "*").Result()
		if err != nil || len(keys) == 0 {
			t.Fatalf("keys: %v %v", keys, err)
		}
		least := time.Duration(math.MaxInt64)
		for _, k := range keys {
			least = min(least, s.redis.PTTL(t.Context(), k).Val())
		}
		return least
	}
	if ttl := shortest(); ttl < 10*time.Minute {
		t.Fatalf("TTL before: %v", ttl)
	}
	if res, body := call(t, gw, j, "GET", "/accounts/api/pyset/?kind=planted", ""); res.StatusCode != 500 {
		t.Fatalf("Django write of a planted object: %d %.200s, want 500", res.StatusCode, body)
	}
	if ttl := shortest(); ttl < 10*time.Minute {
		t.Errorf("TTL after the refused write with set_expiry(60): %v, want the session's as before", ttl)
	}
	if res, body, _ := gw.get(t, "/get.php", j["sessionid"]); res.StatusCode != 200 || !strings.Contains(body, `"data":{"user":"ana"}`) {
		t.Errorf("PHP afterwards: %d %s", res.StatusCode, body)
	}
}

package integration

// A differential test of Django's session API: the same views
// (testdata/djdiff), over the same sequence of requests, run with
// sessiongate_django's middleware behind the gateway (Redis) and with
// Django's own SessionMiddleware reached directly, once with the database
// backend (sqlite) and once with the cache backend. What each request saw
// (the session API's return values, the session's contents, keys,
// expiry, modified/accessed) and what the client got (status, the session
// cookie and its attributes, Vary, Cache-Control) is compared; every
// difference is either listed below as a deliberate one, with both sides'
// values, or fails the test, and every listed one must still be seen.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// djStep is one request of a scenario. jar names the client's cookie jar
// ("" = "a"); saveAs first copies the jar's cookies under that name (a
// second tab keeping the cookie it had).
type djStep struct {
	jar    string
	saveAs string
	plant  bool   // send a session cookie no server issued instead of the jar's
	method string // "" = GET
}

type djScenario struct {
	name     string
	settings string // X-Djdiff-Settings: JSON of settings for every step
	steps    []djStep
}

func djSteps(n int) []djStep { return make([]djStep, n) }

var djScenarios = []djScenario{
	{name: "setget", steps: djSteps(4)},
	{name: "clear", steps: djSteps(3)},
	{name: "clearset", steps: djSteps(3)},
	{name: "emptymod", steps: djSteps(3)},
	{name: "flush", steps: djSteps(3)},
	{name: "flushset", steps: djSteps(3)},
	{name: "cycle", steps: []djStep{{}, {saveAs: "old"}, {}, {jar: "old"}}},
	{name: "cyclenew", steps: djSteps(2)},
	{name: "cycleempty", steps: djSteps(3)},
	{name: "readonly", steps: djSteps(2)},
	{name: "untouched", steps: djSteps(2)},
	{name: "save", steps: djSteps(2)},
	{name: "create", steps: []djStep{{}, {saveAs: "old"}, {}, {jar: "old"}}},
	{name: "raise", steps: djSteps(3)},
	{name: "r500", steps: djSteps(3)},
	{name: "r503", steps: djSteps(3)},
	{name: "flush500", steps: djSteps(3)},
	{name: "notmod", steps: djSteps(3)},
	{name: "stream", steps: djSteps(3)},
	{name: "expint", steps: djSteps(2)},
	{name: "expzero", steps: djSteps(2)},
	{name: "exptd", steps: djSteps(2)},
	{name: "expdt", steps: djSteps(2)},
	{name: "expnone", steps: djSteps(4)},
	{name: "exp0then", steps: djSteps(4)},
	{name: "nested", steps: djSteps(3)},
	{name: "saveevery", settings: `{"SESSION_SAVE_EVERY_REQUEST": true}`, steps: djSteps(2)},
	{name: "nestedevery", settings: `{"SESSION_SAVE_EVERY_REQUEST": true}`, steps: djSteps(3)},
	{name: "browser", settings: `{"SESSION_EXPIRE_AT_BROWSER_CLOSE": true}`, steps: djSteps(2)},
	{name: "cookieage", settings: `{"SESSION_COOKIE_AGE": 600}`, steps: djSteps(2)},
	{name: "login", steps: djSteps(5)},
	{name: "loginempty", steps: djSteps(2)},
	{name: "loginother", steps: djSteps(3)},
	{name: "pwchange", steps: []djStep{{}, {jar: "b"}, {}, {}, {jar: "b"}}},
	{name: "csrf", settings: `{"CSRF_USE_SESSIONS": true}`, steps: djSteps(4)},
	{name: "messages", steps: djSteps(3)},
	{name: "testcookie", steps: djSteps(3)},
	{name: "values", steps: djSteps(2)},
	{name: "tuple", steps: djSteps(2)},
	{name: "saveempty", steps: djSteps(2)},
	{name: "createempty", steps: djSteps(2)},
	{name: "loginsame", steps: djSteps(3)},
	{name: "loginexp0", steps: djSteps(2)},
	{name: "browserint", settings: `{"SESSION_EXPIRE_AT_BROWSER_CLOSE": true}`, steps: djSteps(2)},
	{name: "planted", steps: []djStep{{plant: true}, {plant: true}, {}}},
	{name: "exppast", steps: djSteps(3)},
	{name: "expneg", steps: djSteps(3)},
	{name: "expneg1970", steps: djSteps(3)},
	{name: "nan", steps: djSteps(3)},
	{name: "intkeys", steps: djSteps(2)},
	{name: "logoutmsg", steps: djSteps(3)},
	{name: "cycletwice", steps: djSteps(3)},
	{name: "login500", steps: djSteps(3)},
	{name: "big", steps: djSteps(2)},
	{name: "oddkeys", steps: djSteps(2)},
	{name: "vary", steps: djSteps(2)},
	{name: "stalecycle", steps: []djStep{{}, {saveAs: "old"}, {jar: "old"}, {}, {jar: "old"}}},
	{name: "staleflush", steps: []djStep{{}, {saveAs: "old"}, {jar: "old"}, {}, {jar: "old"}}},
	{name: "public", steps: djSteps(3)},
	{name: "csrfcookie", steps: djSteps(2)},
	{name: "exptz", settings: `{"USE_TZ": false}`, steps: djSteps(2)},
	{name: "head", steps: []djStep{{method: "HEAD"}, {}}},
}

// djRule is a deliberate difference that holds wherever its condition
// does: apply turns Django's observation ref into what the gateway's must
// be (got is read only to say whether the gateway set a cookie) and
// reports whether it changed anything. Each must change something in the
// run, or its difference is gone.
type djRule struct {
	name  string
	apply func(ref, got djObs) bool
}

// djGatewayRules are the differences of sessiongate_django behind the
// gateway that hold for every request (README, "Django"; docs/protocol.md).
var djGatewayRules = []djRule{
	{
		// Django saves a modified session and sends its cookie again
		// (a new expires, the same value and Max-Age); the cookie is the
		// gateway's, sent when the ID or the session's expiry changes,
		// and ends SESSIONGATE_SESSION_MAX_AGE after the session began
		// however active it is.
		name: "the same cookie is not sent again",
		apply: func(ref, got djObs) bool {
			if ref["_cookie_again"] == "" {
				return false
			}
			delete(ref, "cookie")
			return true
		},
	},
	{
		// A response that sets the session cookie is never cacheable by
		// a shared cache: Django sends no Cache-Control, the gateway
		// "private" (README, "Sessions").
		name: "a response that sets the cookie is private",
		apply: func(ref, got djObs) bool {
			if got["cookie"] == "" || ref["cache-control"] != "" {
				return false
			}
			ref["cache-control"] = "private"
			return true
		},
	},
	{
		// The ID of a new session (a new visitor's, cycle_key()'s,
		// create()'s) is minted by the gateway when the response passes:
		// session_key is None until then (README, "Django").
		name: "a new session has no key in its first request",
		apply: func(ref, got djObs) bool {
			if ref["state.key"] != `"new"` {
				return false
			}
			ref["state.key"] = `"none"`
			return true
		},
	},
	{
		// The view's request.COOKIES: the gateway keeps its cookie from
		// Django, and for a request with a session sessiongate_django
		// puts a cookie of its own in, which keys Django's cache per
		// session (docs/protocol.md, section 5).
		name: "the view sees sessiongate, not sessionid",
		apply: func(ref, got djObs) bool {
			var names []string
			if json.Unmarshal([]byte(ref["cookies"]), &names) != nil || !slices.Contains(names, "sessionid") {
				return false
			}
			names = slices.DeleteFunc(names, func(n string) bool { return n == "sessionid" })
			if strings.Contains(got["cookies"], `"sessiongate"`) {
				names = append(names, "sessiongate")
				sort.Strings(names)
			}
			ref["cookies"] = djJSON(names)
			return true
		},
	},
	{
		// Django's deletion leaves HttpOnly out; the gateway's keeps the
		// attributes its cookie had.
		name: "the gateway's deleted cookie is HttpOnly",
		apply: func(ref, got djObs) bool {
			if !strings.HasPrefix(ref["cookie"], "deleted Path=/") {
				return false
			}
			ref["cookie"] = strings.Replace(ref["cookie"], "deleted Path=/", "deleted HttpOnly Path=/", 1)
			return true
		},
	},
}

// djDiffGatewayVsDB lists the deliberate differences between Django's db
// backend and sessiongate_django behind the gateway: "scenario:step
// field" -> {db's value, the gateway's}.
// Django's value is the one djGatewayRules made of it.
var djDiffGatewayVsDB = map[string][2]string{
	// The view's session_key right after save(), create() or login()'s
	// cycle_key(): the new ID exists once the response reached the gateway.
	"save:0 r":   {`[false,null]`, `[true,null]`},
	"create:1 r": {`[false,null]`, `[true,null]`},
	"login:1 r":  {`[false,"login"]`, `[true,"login"]`},
	// A second tab still sending the cookie of the session cycle_key()
	// replaced: Django finds no session (is_empty() is False until the
	// view loads it) and deletes the cookie; the gateway gives the
	// retired cookie no session and leaves the browser's cookie alone, so
	// that this tab's answer cannot drop the new session's cookie the
	// other tab just got.
	"cycle:3 cookie":         {"deleted HttpOnly Path=/ expires=past max-age=~0 samesite=lax", "<absent>"},
	"cycle:3 key_start":      {`"key1"`, `"none"`},
	"cycle:3 state.is_empty": {"false", "true"},
	"cycle:3 state.key":      {`"start"`, `"none"`},
	// The same, writing: Django starts a new session for that tab, whose
	// cookie replaces the login's in the browser (one cookie jar for every
	// tab); the gateway starts none and sets no cookie while the old ID is
	// retired (docs/protocol.md, "Tombstones"), so the login stays and
	// that tab's write is dropped. Its middleware still marks the answer
	// private, as for any new session.
	"stalecycle:2 cache-control":  {"", "private"},
	"stalecycle:2 cookie":         {"cookie3 HttpOnly Path=/ expires=future max-age=~1209600 samesite=lax", "<absent>"},
	"stalecycle:2 key_start":      {`"key1"`, `"none"`},
	"stalecycle:4 key_start":      {`"key3"`, `"none"`},
	"stalecycle:4 state.is_empty": {"false", "true"},
	"stalecycle:4 state.items":    {`[["x",1]]`, `[]`},
	"stalecycle:4 state.key":      {`"start"`, `"none"`},
	"stalecycle:4 state.keys":     {`["x"]`, `[]`},
	"stalecycle:4 state.len":      {"1", "0"},
	"staleflush:2 key_start":      {`"key1"`, `"none"`},
	// create() replaces the client's session: Django leaves the old one
	// stored, where the gateway deletes it (a tab holding its cookie has
	// no session), as cycle_key() does in both.
	"create:3 key_start":      {`"key1"`, `"none"`},
	"create:3 state.is_empty": {"false", "true"},
	"create:3 state.items":    {`[["a",1],["b","x"]]`, `[]`},
	"create:3 state.key":      {`"start"`, `"none"`},
	"create:3 state.keys":     {`["a","b"]`, `[]`},
	"create:3 state.len":      {"2", "0"},
	// set_expiry(n) is an idle timeout: Django's cookie and session end n
	// seconds after the last save, the gateway's after the last request
	// that used the session (a PHP page's too), so each such answer
	// carries the cookie again.
	"expint:1 cookie":     {"<absent>", "cookie1 HttpOnly Path=/ expires=future max-age=~300 samesite=lax"},
	"exp0then:3 cookie":   {"<absent>", "cookie1 HttpOnly Path=/ expires=future max-age=~600 samesite=lax"},
	"browserint:1 cookie": {"<absent>", "cookie1 HttpOnly Path=/ expires=future max-age=~300 samesite=lax"},
	// SESSION_COOKIE_AGE is Django's: the gateway's cookie lasts
	// SESSIONGATE_SESSION_MAX_AGE (get_expiry_age() still reports
	// SESSION_COOKIE_AGE, as the view sees no difference).
	"cookieage:0 cookie": {"cookie1 HttpOnly Path=/ expires=future max-age=~600 samesite=lax", "cookie1 HttpOnly Path=/ expires=future max-age=~1209600 samesite=lax"},
	// A cookie no server issued: Django deletes it once the view read the
	// (empty) session; the gateway only ignores it (no session), and its
	// view sees no key, where Django's sees the cookie's value until it
	// loads the session.
	"planted:0 cookie":    {"deleted HttpOnly Path=/ expires=past max-age=~0 samesite=lax", "<absent>"},
	"planted:0 key_start": {`"key1"`, `"none"`},
	"planted:1 key_start": {`"key1"`, `"none"`},
	"planted:2 key_start": {`"key2"`, `"key1"`}, // the same session: Django's names count the planted key
	// A page that sets the cookie is never public (README, "Sessions"):
	// a shared cache would give the cookie, and the session, to everyone.
	"public:0 cache-control": {"public, max-age=60", "max-age=60, private"},
	// A login that then fails (500): cycle_key() deleted the old session
	// in both. Django sends nothing on a 500 and deletes the dead cookie
	// at the next request; the gateway deletes it at once.
	"login500:1 cookie":    {"<absent>", "deleted HttpOnly Path=/ expires=past max-age=~0 samesite=lax"},
	"login500:2 cookie":    {"deleted HttpOnly Path=/ expires=past max-age=~0 samesite=lax", "<absent>"},
	"login500:2 key_start": {`"key1"`, `"none"`},
	// An expiry already past (a negative set_expiry(), a fixed end in the
	// past): Django sends the cookie with a negative
	// Max-Age, the gateway deletes it; either way the browser drops it and
	// the session is over.
	"expneg:1 cookie":     {"cookie1 HttpOnly Path=/ expires=past max-age=~-5 samesite=lax", "deleted HttpOnly Path=/ expires=past max-age=~0 samesite=lax"},
	"expneg1970:1 cookie": {"cookie1 HttpOnly Path=/ expires=past max-age=~-10000000000 samesite=lax", "deleted HttpOnly Path=/ expires=past max-age=~0 samesite=lax"},
	"exppast:1 cookie":    {"cookie1 HttpOnly Path=/ expires=past max-age=~-11 samesite=lax", "deleted HttpOnly Path=/ expires=past max-age=~0 samesite=lax"},
	// NaN and infinities: Django's JSONSerializer writes them (not JSON);
	// the gateway's store holds JSON only and PHP could not read them, so
	// sessiongate_django refuses the write (500, logged) and the session
	// keeps what it had (README, "Django").
	"nan:1 body":        {"<absent>", `"\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Err"`},
	"nan:1 key_start":   {`"key1"`, "<absent>"},
	"nan:1 cookies":     {"[]", "<absent>"},
	"nan:1 r":           {"[null]", "<absent>"},
	"nan:1 status":      {"200", "500"},
	"nan:1 vary":        {"Cookie", ""},
	"nan:2 r":           {`[[["a","int","1"],["f","list","[nan, inf, -inf]"]],null]`, `[[["a","int","1"]],null]`},
	"nan:2 state.items": {`[["a",1],["f",["float:nan","float:inf","float:-inf"]]]`, `[["a",1]]`},
	"nan:2 state.keys":  {`["a","f"]`, `["a"]`},
	"nan:2 state.len":   {"2", "1"},
}

// djDiffCacheVsDB: Django's cache backend against its db backend.
var djDiffCacheVsDB = map[string][2]string{
	// The cache backend pickles the session, the db backend writes JSON.
	"tuple:1 r":             {`[[["t","list","[1, 'two']"]],null]`, `[[["t","tuple","(1, 'two')"]],null]`},
	"intkeys:1 r":           {`[[["1","str","'bool'"],["null","str","'none'"],["nested","dict","{'2': 'int in a dict'}"]],null]`, `[[[1,"str","'bool'"],[null,"str","'none'"],["nested","dict","{2: 'int in a dict'}"]],null]`},
	"intkeys:1 state.items": {`[["1","bool"],["null","none"],["nested",{"2":"int in a dict"}]]`, `[[1,"bool"],[null,"none"],["nested",{"2":"int in a dict"}]]`},
	"intkeys:1 state.keys":  {`["1","null","nested"]`, `[1,null,"nested"]`},
}

// djFixedEnd are the set_expiry(datetime or timedelta) scenarios. Django
// 3.2 (Debian's) keeps the datetime itself in the session, which its
// default JSONSerializer cannot store: the db backend answers 500, and only
// the cache backend (which pickles) keeps it. Django 4.0 keeps an ISO 8601
// string instead, as sessiongate_django does on every version, so these
// compare the gateway with the cache backend and leave db out.
var djFixedEnd = map[string]bool{"exptd": true, "expdt": true, "exppast": true, "exptz": true}

// startDjdiff runs the djdiff project for side and returns the URL its
// scenarios are reached at: gunicorn itself with Django's own sessions
// (side "db" or "cache", DJDIFF_SESSIONS), or a gateway with Redis in front
// of sessiongate_django ("gateway"; "merge" with
// SESSIONGATE_SESSION_LOCK=merge).
func startDjdiff(t *testing.T, rel djangoRelease, side string) string {
	t.Helper()
	sessions, lock := side, "strict"
	if side == "merge" {
		sessions, lock = "gateway", "merge"
	}
	project, err := filepath.Abs("testdata/djdiff")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"DJANGO_SETTINGS_MODULE=djdiff.settings",
		"DJDIFF_SESSIONS=" + sessions,
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
	}
	db, _ := djangoDatabaseOn(t, rel, project, env, []string{"migrate", "--noinput"})
	env = append(env, "DJANGO_DATABASE="+db)
	// One sync thread: ScenarioSettings overrides settings process-wide.
	g := harness.StartGunicorn(t, rel.gunicornOptions("djdiff", harness.GunicornOptions{Dir: project, Env: env, Workers: 1}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn (%s) log:\n%s", side, g.Log())
		}
	})
	if sessions != "gateway" {
		return g.URL()
	}
	red := harness.StartRedis(t)
	cfg, err := config.Load([]string{
		// Never reached: every path here is Django's.
		"SESSIONGATE_PHP_FPM=127.0.0.1:9",
		"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_INDEX=off",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_DJANGO_URL=" + g.URL(),
		"SESSIONGATE_DJANGO_PATHS=/dj/",
		// Its Vary: Accept-Encoding is nginx_django_diff_test.go's
		// subject, not this test's.
		"SESSIONGATE_COMPRESS=off",
		"SESSIONGATE_SESSION_LOCK=" + lock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return startGateways(t, cfg, 1)[0].URL
}

// djObs is one step's observations, field -> normalized value.
type djObs map[string]string

// djNamer names values compared by identity by their first appearance in
// a scenario, per kind: key1, key2, ... ("none" for null).
type djNamer map[string]map[string]string

func (n djNamer) name(ns string, v any) string {
	if v == nil {
		return "none"
	}
	s := fmt.Sprint(v)
	if n[ns] == nil {
		n[ns] = map[string]string{}
	}
	if _, ok := n[ns][s]; !ok {
		n[ns][s] = fmt.Sprintf("%s%d", strings.TrimPrefix(ns, "_"), len(n[ns])+1)
	}
	return n[ns][s]
}

// normalize replaces {"id": v, "ns": k} by v's name and {"~": n} by "~n".
func (n djNamer) normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if ns, ok := x["ns"].(string); ok && len(x) == 2 {
			if id, ok := x["id"]; ok {
				return n.name(ns, id)
			}
		}
		if a, ok := x["~"]; ok && len(x) == 1 {
			return "~" + fmt.Sprint(a)
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = n.normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = n.normalize(e)
		}
		return out
	}
	return v
}

func djJSON(v any) string {
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.Encode(v)
	return strings.TrimSpace(b.String())
}

// djCookie describes a Set-Cookie of the session cookie: its value by
// identity ("deleted" for an empty one), then its attributes in order,
// Max-Age as "~n" and expires as future or past.
// cookieIdentity is what names a session cookie's value: for the
// gateway's signed cookie (securecookie: base64 of "date|value|mac"), the
// value without its signing time, so the same session signed again in
// another second keeps its label (merge and strict mode signed one
// scenario's cookie a second apart and the comparison failed); a Django
// session key as it is.
func cookieIdentity(val string) string {
	b, err := base64.URLEncoding.DecodeString(val)
	if err != nil {
		return val
	}
	// SplitN: the MAC is raw bytes and holds a '|' in about one cookie
	// in eight; split on every '|', such a cookie kept its signing time
	// and changed label when signed again in the next second (a flake).
	if parts := strings.SplitN(string(b), "|", 3); len(parts) == 3 {
		return parts[1]
	}
	return val
}

func djCookie(raw string, names djNamer) (desc string, gone bool) {
	parts := strings.Split(raw, ";")
	_, val, _ := strings.Cut(parts[0], "=")
	val = strings.Trim(strings.TrimSpace(val), `"`)
	var attrs []string
	if val == "" {
		attrs = append(attrs, "deleted")
		gone = true
	} else {
		attrs = append(attrs, names.name("cookie", cookieIdentity(val)))
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		k = strings.ToLower(k)
		switch k {
		case "max-age":
			n, _ := strconv.Atoi(v)
			if n <= 0 {
				gone = true
			}
			attrs = append(attrs, "max-age=~"+strconv.Itoa(n))
		case "expires":
			when, err := http.ParseTime(v)
			switch {
			case err != nil:
				attrs = append(attrs, "expires=bad")
			case when.Before(time.Now()):
				attrs = append(attrs, "expires=past")
				gone = true
			default:
				attrs = append(attrs, "expires=future")
			}
		case "samesite":
			attrs = append(attrs, "samesite="+strings.ToLower(v))
		default:
			attrs = append(attrs, strings.TrimSpace(p))
		}
	}
	sort.Strings(attrs[1:])
	return strings.Join(attrs, " "), gone
}

// runDjScenario runs sc against base and returns each step's observations.
func runDjScenario(t *testing.T, base string, sc djScenario) []djObs {
	t.Helper()
	jars := map[string]map[string]string{}
	names := djNamer{}
	lastCookie := map[string]string{} // jar -> the last session cookie set
	var out []djObs
	for i, st := range sc.steps {
		name := st.jar
		if name == "" {
			name = "a"
		}
		if jars["a"] == nil {
			jars["a"] = map[string]string{}
		}
		if st.saveAs != "" {
			jars[st.saveAs] = clone(jars[name])
		}
		if jars[name] == nil {
			jars[name] = map[string]string{}
		}
		jar := jars[name]
		method := st.method
		if method == "" {
			method = "GET"
		}
		req, _ := http.NewRequest(method, fmt.Sprintf("%s/dj/s/?s=%s&step=%d", base, url.QueryEscape(sc.name), i), nil)
		var parts []string
		for k, v := range jar {
			if st.plant && k == "sessionid" {
				continue
			}
			parts = append(parts, k+"="+v)
		}
		if st.plant {
			parts = append(parts, "sessionid=sgdiffplanted0123456789abcdefghij")
		}
		sort.Strings(parts)
		if len(parts) > 0 {
			req.Header.Set("Cookie", strings.Join(parts, "; "))
		}
		if sc.settings != "" {
			req.Header.Set("X-Djdiff-Settings", sc.settings)
		}
		res, err := sessionClient.Do(req)
		if err != nil {
			t.Fatalf("%s step %d: %v", sc.name, i, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		o := djObs{"status": strconv.Itoa(res.StatusCode)}
		var others []string
		for _, sc := range res.Header.Values("Set-Cookie") {
			cname, _, _ := strings.Cut(sc, "=")
			if cname != "sessionid" {
				others = append(others, cname)
				continue
			}
			desc, gone := djCookie(sc, names)
			o["cookie"] += desc
			if lastCookie[name] == desc {
				// The cookie the client has, sent again (only its
				// expires date, left out of desc, is new).
				o["_cookie_again"] = "yes"
			}
			lastCookie[name] = desc
			if gone {
				delete(jar, cname)
			} else {
				c, _ := http.ParseSetCookie(sc)
				jar[cname] = c.Value
			}
		}
		sort.Strings(others)
		o["other cookies"] = strings.Join(others, ",")
		o["vary"] = strings.Join(res.Header.Values("Vary"), ", ")
		o["cache-control"] = strings.Join(res.Header.Values("Cache-Control"), ", ")
		if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && len(body) > 0 {
			d := json.NewDecoder(strings.NewReader(string(body)))
			d.UseNumber()
			var v map[string]any
			if err := d.Decode(&v); err != nil {
				t.Fatalf("%s step %d: %v: %.300s", sc.name, i, err, body)
			}
			o["r"] = djJSON(names.normalize(v["r"]))
			o["key_start"] = djJSON(names.normalize(v["key_start"]))
			o["cookies"] = djJSON(v["cookies"])
			if s, ok := v["state"].(map[string]any); ok {
				for k, e := range s {
					o["state."+k] = djJSON(names.normalize(e))
				}
			}
		} else {
			o["body"] = fmt.Sprintf("%.60q", body)
		}
		out = append(out, o)
	}
	return out
}

var djApprox = regexp.MustCompile(`~(-?\d+)`)

// djSame compares two observations, numbers written "~n" within 2 of
// each other (the two sides answer at different moments).
func djSame(a, b string) bool {
	if a == b {
		return true
	}
	if djApprox.ReplaceAllString(a, "~") != djApprox.ReplaceAllString(b, "~") {
		return false
	}
	na, nb := djApprox.FindAllStringSubmatch(a, -1), djApprox.FindAllStringSubmatch(b, -1)
	for i := range na {
		x, _ := strconv.Atoi(na[i][1])
		y, _ := strconv.Atoi(nb[i][1])
		if x-y > 2 || y-x > 2 {
			return false
		}
	}
	return true
}

// compareDj checks that side got differs from the reference side of each
// scenario (ref(scenario); "" leaves the scenario out) exactly as want
// lists.
func compareDj(t *testing.T, results map[string]map[string][]djObs, got string, ref func(string) string, rules []djRule, want map[string][2]string) {
	t.Helper()
	seen := map[string]bool{}
	applied := map[string]bool{}
	for _, sc := range djScenarios {
		refName := ref(sc.name)
		if refName == "" {
			continue
		}
		for i := range sc.steps {
			a, b := maps.Clone(results[refName][sc.name][i]), results[got][sc.name][i]
			for _, r := range rules {
				if r.apply(a, b) {
					applied[r.name] = true
				}
			}
			fields := map[string]bool{}
			for k := range a {
				fields[k] = true
			}
			for k := range b {
				fields[k] = true
			}
			for k := range fields {
				if strings.HasPrefix(k, "_") {
					delete(fields, k)
				}
			}
			var keys []string
			for k := range fields {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				av, ok := a[k]
				if !ok {
					av = "<absent>"
				}
				bv, ok := b[k]
				if !ok {
					bv = "<absent>"
				}
				id := fmt.Sprintf("%s:%d %s", sc.name, i, k)
				w, listed := want[id]
				switch {
				case listed:
					seen[id] = true
					if !djSame(w[0], av) || !djSame(w[1], bv) {
						t.Errorf("%s: listed difference changed:\n  %s: %s (listed %s)\n  %s: %s (listed %s)", id, refName, av, w[0], got, bv, w[1])
					}
				case !djSame(av, bv):
					t.Errorf("%s: %s %s, %s %s", id, refName, av, got, bv)
				}
			}
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s: listed difference no longer seen", id)
		}
	}
	for _, r := range rules {
		if !applied[r.name] {
			t.Errorf("rule %q: its difference is no longer seen", r.name)
		}
	}
}

func TestDjangoSessionDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "gunicorn", "django")
	forEachDjango(t, djangoReleases(t), testDjangoSessionDiffOn)
}

// testDjangoSessionDiffOn is TestDjangoSessionDiff on one Django release:
// sessiongate_django against that release's own sessions.
func testDjangoSessionDiffOn(t *testing.T, rel djangoRelease) {
	sides := []string{"gateway", "merge", "db", "cache"}
	results := map[string]map[string][]djObs{}
	for _, side := range sides {
		base := startDjdiff(t, rel, side)
		results[side] = map[string][]djObs{}
		for _, sc := range djScenarios {
			results[side][sc.name] = runDjScenario(t, base, sc)
		}
	}
	compareDj(t, results, "cache", func(sc string) string {
		if djFixedEnd[sc] {
			return ""
		}
		return "db"
	}, nil, djDiffCacheVsDB)
	compareDj(t, results, "gateway", func(sc string) string {
		if djFixedEnd[sc] {
			return "cache"
		}
		return "db"
	}, djGatewayRules, djDiffGatewayVsDB)
	// One request at a time, the lock modes differ in nothing a view or
	// the browser sees.
	compareDj(t, results, "merge", func(string) string { return "gateway" }, nil, nil)
}

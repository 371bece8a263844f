package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/wsgi"
)

// djangoStack is the whole deployment of issue 4: php-fpm, redis-server,
// gunicorn with the example Django project (examples/django) and two
// gateways sending /admin/, /accounts/ and /static/admin/ to Django and the
// rest to PHP, all sharing one session.
type djangoStack struct {
	*sessionStack
	gunicorn *harness.Gunicorn
	userID   string // the demo user's primary key
}

// djangoSite is what a Django stack's gateways and gunicorn run on: php-fpm
// on the session and Django fixtures, Redis, the prepend, and the example
// project migrated, with its demo user. The caller starts gunicorn, with
// env plus the SESSIONGATE_SESSION_KEYS it wants.
type djangoSite struct {
	root, prepend, project string
	fpm                    *harness.PHPFPM
	red                    *harness.Redis
	env                    []string // the project's environment, keys aside
	userID                 string   // the demo user's primary key
}

func startDjangoSite(t *testing.T) *djangoSite {
	t.Helper()
	return startDjangoSiteOn(t, debianDjango)
}

// startDjangoSiteOn is startDjangoSite with rel's Django.
func startDjangoSiteOn(t *testing.T, rel djangoRelease) *djangoSite {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "redis-server", "gunicorn", "django")
	site := &djangoSite{root: fixtureRoot(t, "testdata/session/*.php", "testdata/django/*.php")}
	site.prepend = writePrepend(t)
	site.fpm = harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: site.root, Children: 8})
	site.red = harness.StartRedis(t)
	requireKeysExpire(t, site.red)

	// Each site gets its own copy of one migrated database.
	project, err := filepath.Abs("../examples/django")
	if err != nil {
		t.Fatal(err)
	}
	site.project = project
	site.env = []string{
		"DJANGO_SECRET_KEY=integration-django-secret-key-0123456789",
		"DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost",
	}
	manageEnv := append([]string{"SESSIONGATE_SESSION_KEYS=" + sessionTestKey}, site.env...)
	db, out := djangoDatabaseOn(t, rel, project, manageEnv, []string{"migrate", "--noinput"}, []string{"demo_user"})
	site.env = append(site.env, "DJANGO_DATABASE="+db)
	m := regexp.MustCompile(`\(id (\d+)\)`).FindStringSubmatch(out[1])
	if m == nil {
		t.Fatalf("demo_user: %s", out[1])
	}
	site.userID = m[1]
	return site
}

// gatewayEnv configures a gateway in front of the site and the gunicorn at
// djangoURL, signing with keys; extra comes last.
func (s *djangoSite) gatewayEnv(keys, djangoURL string, extra ...string) []string {
	return append([]string{
		"SESSIONGATE_PHP_FPM=" + s.fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + s.root,
		"SESSIONGATE_SESSION_KEYS=" + keys,
		"SESSIONGATE_REDIS_URL=" + s.red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + s.prepend,
		"SESSIONGATE_DJANGO_URL=" + djangoURL,
		"SESSIONGATE_DJANGO_PATHS=/admin/,/accounts/,/static/admin/",
	}, extra...)
}

func startDjangoStack(t *testing.T, extraEnv ...string) *djangoStack {
	t.Helper()
	return startDjangoStackOn(t, debianDjango, extraEnv...)
}

// startDjangoStackOn is startDjangoStack with rel's Django.
func startDjangoStackOn(t *testing.T, rel djangoRelease, extraEnv ...string) *djangoStack {
	t.Helper()
	site := startDjangoSiteOn(t, rel)
	g := harness.StartGunicorn(t, rel.gunicornOptions("sgdemo", harness.GunicornOptions{
		Dir: site.project, Workers: 2, Threads: 4,
		Env: append([]string{"SESSIONGATE_SESSION_KEYS=" + sessionTestKey}, site.env...),
	}))
	env := site.gatewayEnv(sessionTestKey, g.URL(),
		"SESSIONGATE_PHP_MAX_CONNS=4",
		"SESSIONGATE_PHP_TIMEOUT=20s",
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=20s",
		"SESSIONGATE_DJANGO_TIMEOUT=20s",
	)
	env = append(env, extraEnv...)
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	st := &sessionStack{red: site.red, redis: redis.NewClient(&redis.Options{Addr: site.red.Addr})}
	t.Cleanup(func() { st.redis.Close() })
	st.gws = startGateways(t, cfg, 2)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})
	return &djangoStack{sessionStack: st, gunicorn: g, userID: site.userID}
}

// jar is a browser's cookies for one site, the session cookie included.
type jar map[string]string

func (j jar) header() string {
	var parts []string
	for k, v := range j {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, "; ")
}

func (j jar) update(res *http.Response) {
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(j, c.Name)
		} else {
			j[c.Name] = c.Value
		}
	}
}

// call sends one request through gw with the jar's cookies, updates the
// jar from the response and returns the response and its body.
func call(t *testing.T, gw *sessionGW, j jar, method, target, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, gw.URL+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(j) > 0 {
		req.Header.Set("Cookie", j.header())
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := sessionClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, target, err)
		return &http.Response{Header: http.Header{}}, ""
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Errorf("%s %s body: %v", method, target, err)
	}
	j.update(res)
	return res, string(b)
}

var csrfField = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)

// adminLogin logs the demo user in through Django's admin login form, CSRF
// token and all, like a browser.
func adminLogin(t *testing.T, gw *sessionGW, j jar) {
	t.Helper()
	res, body := call(t, gw, j, "GET", "/admin/login/?next=/admin/", "")
	m := csrfField.FindStringSubmatch(body)
	if res.StatusCode != 200 || m == nil || j["csrftoken"] == "" {
		t.Fatalf("login form: %d, token %v, cookies %v\n%.500s", res.StatusCode, m != nil, j, body)
	}
	form := url.Values{"csrfmiddlewaretoken": {m[1]}, "username": {"demo"}, "password": {"demo-password"}, "next": {"/admin/"}}
	res, body = call(t, gw, j, "POST", "/admin/login/?next=/admin/", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if res.StatusCode != 302 || res.Header.Get("Location") != "/admin/" {
		t.Fatalf("login: %d Location %q\n%.800s", res.StatusCode, res.Header.Get("Location"), body)
	}
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %.300s", err, s)
	}
	return v
}

func TestDjango(t *testing.T) {
	t.Parallel()
	// The first and the last LTS; 4.2 in between is covered by
	// TestDjangoSessionDiff and the package's own tests.
	forEachDjango(t, djangoReleases(t, "3.2", "5.2", "5.2"+uvicornSuffix), testDjangoOn)
}

// testDjangoOn is TestDjango on one Django release.
func testDjangoOn(t *testing.T, rel djangoRelease) {
	s := startDjangoStackOn(t, rel)
	gw0, gw1 := s.gws[0], s.gws[1]

	t.Run("login on Django, seen by PHP, logout", func(t *testing.T) {
		pre := s.newSession(t) // PHP: user=ana, before login
		before := gw0.dump(t, pre)
		j := jar{"sessionid": pre}
		adminLogin(t, gw0, j)
		after := j["sessionid"]
		if after == "" || after == pre {
			t.Fatalf("session cookie not renewed at login: %q", after)
		}
		// PHP, through the other gateway, knows who logged in.
		if _, body, _ := gw1.get(t, "/whoami.php", after); body != "user:"+s.userID {
			t.Fatalf("PHP whoami after Django login: %q", body)
		}
		d := gw1.dump(t, after)
		if d.ID == before.ID || !strings.Contains(string(d.Data), `"user":"ana"`) || !strings.Contains(string(d.Data), `"_auth_user_id":"`+s.userID+`"`) {
			t.Fatalf("session after login: %+v", d)
		}
		// The pre-login ID resolves to nothing (fixation defence).
		if old := gw1.dump(t, pre); old.ID == before.ID || string(old.Data) != "[]" {
			t.Fatalf("pre-login ID still resolves: %+v", old)
		}
		if _, body, _ := gw0.get(t, "/whoami.php", pre); body != "anonymous" {
			t.Fatalf("pre-login cookie: %q", body)
		}
		assertRetired(t, s.redis, before.ID)
		// Django agrees, on the other gateway, and the admin works.
		_, body := call(t, gw1, j, "GET", "/accounts/whoami/", "")
		var who struct {
			SessionKey string `json:"session_key"`
		}
		if err := json.Unmarshal([]byte(body), &who); err != nil || (!strings.Contains(body, `"user": "demo"`) && !strings.Contains(body, `"user":"demo"`)) {
			t.Fatalf("Django whoami: %s", body)
		}
		// Its session_key fits Django's own column (CharField(max_length=40),
		// which apps that record it copy) and is the session's ID.
		if who.SessionKey != d.ID[:40] {
			t.Fatalf("Django's session_key %q, want the first 40 characters of %s", who.SessionKey, d.ID)
		}
		if res, body := call(t, gw1, j, "GET", "/admin/", ""); res.StatusCode != 200 || !strings.Contains(body, "Site administration") {
			t.Fatalf("admin index: %d", res.StatusCode)
		}
		if res, body := call(t, gw0, jar{}, "GET", "/static/admin/css/base.css", ""); res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), "text/css") || len(body) < 1000 {
			t.Fatalf("admin CSS: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
		}

		// Logout with POST (Django 4.1+ refuses GET) and the CSRF token.
		form := url.Values{"csrfmiddlewaretoken": {j["csrftoken"]}}
		res, body := call(t, gw0, j, "POST", "/admin/logout/", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		if res.StatusCode != 200 && res.StatusCode != 302 {
			t.Fatalf("logout: %d %.300s", res.StatusCode, body)
		}
		if _, ok := j["sessionid"]; ok {
			t.Fatalf("session cookie not expired at logout: %v", res.Header["Set-Cookie"])
		}
		if _, body, _ := gw1.get(t, "/whoami.php", after); body != "anonymous" {
			t.Fatalf("PHP whoami after Django logout: %q", body)
		}
		if n, _ := s.redis.Exists(context.Background(), "sessiongate:{"+d.ID+"}").Result(); n != 0 {
			t.Fatal("logged-out session still in Redis")
		}
	})

	t.Run("the gateway's backend check is answered", func(t *testing.T) {
		// SESSIONGATE_DJANGO_CHECK_INTERVAL's OPTIONS * (docs/protocol.md):
		// gunicorn 23 takes the asterisk-form target as 20.1 does, and
		// sessiongate_django answers before any view on every release.
		r := rawDo(s.gunicorn.Addr, "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Sessiongate-Check: 1\r\nConnection: close\r\n\r\n", false)
		if r.status() != 204 || len(r.body) != 0 || r.err != nil {
			t.Fatalf("the check sent straight to gunicorn: %d %q %v, want sessiongate_django's 204", r.status(), r.body, r.err)
		}
	})

	t.Run("cart shared both ways", func(t *testing.T) {
		cart := `{"items":{"apple":2,"pear":1},"note":"José ✓ 日本","price":12.5,"qty":3,"nested":[1,[2,[3,"x"]],{"k":null}],"big":9007199254740993}`
		_, body, ck := gw0.get(t, "/set.php?k=cart&v="+url.QueryEscape(cart), "")
		if body != "ok" || ck == "" {
			t.Fatalf("PHP set cart: %q %q", body, ck)
		}
		if _, body, _ := gw0.get(t, "/set.php?k=floaty&v=1.0", ck); body != "ok" {
			t.Fatal(body)
		}
		if _, body, _ := gw0.get(t, "/object.php?set=1", ck); body != "set" {
			t.Fatalf("object: %q", body)
		}
		j := jar{"sessionid": ck}
		res, body := call(t, gw1, j, "GET", "/accounts/cart/", "")
		if res.StatusCode != 200 {
			t.Fatalf("Django cart: %d %s", res.StatusCode, body)
		}
		got := decodeJSON(t, body).(map[string]any)
		if !reflect.DeepEqual(got["cart"], decodeJSON(t, cart)) {
			t.Fatalf("Django read the cart as %v", got["cart"])
		}
		sess := got["session"].(map[string]any)
		if tag, ok := sess["basket"].(map[string]any); !ok || !strings.HasPrefix(fmt.Sprint(tag["__php__"]), `O:6:"Basket"`) {
			t.Fatalf("PHP object as Django sees it: %v", sess["basket"])
		}

		// Django changes the cart (CSRF token from the GET above).
		newCart := `{"items":{"apple":3,"kiwi":1},"note":"changed by Django: ünïcødé ✓","price":13.75,"qty":4,"nested":[[1,2],{"deep":{"er":[true,false,null]}}],"big":9007199254740993}`
		res, body = call(t, gw0, j, "POST", "/accounts/cart/", `{"cart":`+newCart+`,"from_django":"héllo"}`,
			"Content-Type", "application/json", "X-CSRFToken", j["csrftoken"])
		if res.StatusCode != 200 {
			t.Fatalf("Django POST cart: %d %.300s", res.StatusCode, body)
		}
		if j["sessionid"] != ck {
			t.Fatalf("cookie changed by a plain write")
		}
		d := gw1.dump(t, ck)
		data := decodeJSON(t, string(d.Data)).(map[string]any)
		if !reflect.DeepEqual(data["cart"], decodeJSON(t, newCart)) || data["from_django"] != "héllo" {
			t.Fatalf("PHP sees %s", d.Data)
		}
		// PHP's float survived Django's write as a float (json_encode in
		// get.php would hide it: look at the stored record), the object as
		// the object.
		rec, err := s.redis.HGet(context.Background(), "sessiongate:{"+d.ID+"}", "d").Result()
		if err != nil || !strings.Contains(rec, `"floaty":1.0`) {
			t.Errorf("PHP float lost its type: %v %s", err, rec)
		}
		if _, body, _ := gw0.get(t, "/object.php", ck); body != `Basket:ana:{"apple":2}` {
			t.Fatalf("PHP object after a Django write: %q", body)
		}
	})

	t.Run("PHP and Django increment concurrently", func(t *testing.T) {
		ck := s.newSession(t)
		const each = 15
		targets := []struct {
			gw   *sessionGW
			path string
		}{{gw0, "/counter.php"}, {gw1, "/counter.php"}, {gw0, "/accounts/counter/?key=n"}, {gw1, "/accounts/counter/?key=n"}}
		var wg sync.WaitGroup
		for _, tg := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					res, body, _ := tg.gw.get(t, tg.path, ck)
					if res.StatusCode != 200 {
						t.Errorf("%s: %d %s", tg.path, res.StatusCode, body)
					}
				}
			}()
		}
		wg.Wait()
		want := strconv.Itoa(len(targets)*each + 1)
		if _, body, _ := gw1.get(t, "/counter.php", ck); body != want {
			t.Fatalf("counter = %s, want %s (lost updates)", body, want)
		}
		if _, body, _ := gw0.get(t, "/accounts/counter/?key=n", ck); body != strconv.Itoa(len(targets)*each+2) {
			t.Fatalf("Django counter = %s", body)
		}
	})

	t.Run("a view that raises saves nothing", func(t *testing.T) {
		ck := s.newSession(t)
		res, _, set := gw0.get(t, "/accounts/boom/", ck)
		if res.StatusCode != 500 || set != "" {
			t.Fatalf("boom: %d cookie %q", res.StatusCode, set)
		}
		if d := gw1.dump(t, ck); strings.Contains(string(d.Data), "boom") || !strings.Contains(string(d.Data), `"user":"ana"`) {
			t.Fatalf("session after a 500: %s", d.Data)
		}
		// Without a session: no session is created either.
		if res, _, set := gw1.get(t, "/accounts/boom/", ""); res.StatusCode != 500 || set != "" {
			t.Fatalf("anonymous boom: %d cookie %q", res.StatusCode, set)
		}
		// A logout before the failure stands, as Django's own backends
		// delete the session at flush(): for Django and for PHP.
		before := gw1.dump(t, ck).ID
		res, _, _ = gw0.get(t, "/accounts/boom/?logout=1", ck)
		if line := res.Header.Get("Set-Cookie"); res.StatusCode != 500 || !strings.Contains(line, "Max-Age=0") {
			t.Fatalf("logout then boom: %d cookie %q, want the cookie expired", res.StatusCode, line)
		}
		if d := gw1.dump(t, ck); d.ID == before || strings.Contains(string(d.Data), "ana") {
			t.Fatalf("session after a logout and a 500: %+v", d)
		}
	})

	t.Run("the admin's password change ends the user's other sessions on PHP", func(t *testing.T) {
		// Django's own PasswordChangeView: the session that changed the
		// password stays logged in, every other one is over, on Django
		// pages at their next request and now on PHP pages too.
		mine, other := jar{}, jar{}
		adminLogin(t, gw0, mine)
		adminLogin(t, gw1, other)
		want := "user:" + s.userID
		if _, body := call(t, gw1, other, "GET", "/whoami.php", ""); body != want {
			t.Fatalf("PHP in the other session before the change: %q", body)
		}
		change := func(from, to string) {
			t.Helper()
			res, body := call(t, gw0, mine, "GET", "/admin/password_change/", "")
			m := csrfField.FindStringSubmatch(body)
			if res.StatusCode != 200 || m == nil {
				t.Fatalf("password change form: %d\n%.300s", res.StatusCode, body)
			}
			form := url.Values{"csrfmiddlewaretoken": {m[1]}, "old_password": {from}, "new_password1": {to}, "new_password2": {to}}
			res, body = call(t, gw0, mine, "POST", "/admin/password_change/", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
			if res.StatusCode != 302 || !strings.Contains(res.Header.Get("Location"), "/admin/password_change/done/") {
				t.Fatalf("password change %s: %d Location %q\n%.800s", to, res.StatusCode, res.Header.Get("Location"), body)
			}
		}
		change("demo-password", "changed-demo-password")
		defer change("changed-demo-password", "demo-password") // for the other subtests
		// At once through the gateway that recorded the change; through
		// the other one, which read the user's logins a moment ago, once
		// that read is a second old (docs/protocol.md, "Logins").
		if _, body := call(t, gw0, other, "GET", "/whoami.php", ""); body != "anonymous" {
			t.Fatalf("PHP in the other session after the change: %q, want anonymous", body)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			_, body := call(t, gw1, other, "GET", "/whoami.php", "")
			if body == "anonymous" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("PHP in the other session through the other gateway, 3 s after the change: %q, want anonymous", body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, body := call(t, gw1, mine, "GET", "/whoami.php", ""); body != want {
			t.Fatalf("PHP in the session that changed the password: %q, want %q", body, want)
		}
		if res, _ := call(t, gw1, other, "GET", "/admin/", ""); res.StatusCode != 302 {
			t.Fatalf("the admin in the other session after the change: %d, want 302 to the login", res.StatusCode)
		}
	})

	t.Run("paths are routed as nginx normalises them", func(t *testing.T) {
		// Django's prefix is /accounts/: merged slashes and dot segments
		// decide the upstream, the request goes out as sent.
		for target, django := range map[string]bool{
			"//accounts/whoami/":        true,
			"/x/../accounts/whoami/":    true,
			"/accounts/../whoami.php":   false,
			"/accounts/./../whoami.php": false,
		} {
			res, body, _ := gw0.get(t, target, "")
			if fromDjango := res.Header.Get("Server") == rel.serverHeader(); fromDjango != django {
				t.Errorf("%s: from Django %v, want %v (%d %.80q)", target, fromDjango, django, res.StatusCode, body)
			}
		}
	})

	t.Run("forged headers straight to gunicorn", func(t *testing.T) {
		// A real logged-in session, to be impersonated.
		j := jar{}
		adminLogin(t, gw0, j)
		id := gw0.dump(t, j["sessionid"]).ID
		data := []byte(`{"_auth_user_id":"` + s.userID + `","_auth_user_backend":"django.contrib.auth.backends.ModelBackend"}`)
		now := strconv.FormatInt(time.Now().Unix(), 10)
		nonce := strings.Repeat("ab", 16)
		wrong := wsgi.HeaderKey([]byte("attacker-guess-0123456789abcdef0123456"))
		for name, h := range map[string]map[string]string{
			"wrong key": {
				"X-Sessiongate-Session-Id": id, "X-Sessiongate-Data-Count": "1",
				"X-Sessiongate-Data-0": base64.StdEncoding.EncodeToString(data),
				"X-Sessiongate-Nonce":  nonce, "X-Sessiongate-Timestamp": now,
				"X-Sessiongate-Signature": wsgi.RequestSignature(wrong, nonce, now, id, data),
			},
			// Header bytes over 0x7f reach Django as latin-1 text, which
			// hmac.compare_digest refuses with a TypeError.
			"non-ASCII signature": {
				"X-Sessiongate-Session-Id": id, "X-Sessiongate-Data-Count": "1",
				"X-Sessiongate-Data-0": base64.StdEncoding.EncodeToString(data),
				"X-Sessiongate-Nonce":  nonce, "X-Sessiongate-Timestamp": now,
				"X-Sessiongate-Signature": strings.Repeat("\xe9", 64),
			},
			"no signature, underscores": {
				"X_Sessiongate_Session_Id": id, "X_Sessiongate_Data_Count": "1",
				"X_Sessiongate_Data_0": base64.StdEncoding.EncodeToString(data),
			},
		} {
			for _, path := range []string{"/accounts/whoami/", "/accounts/counter/"} {
				req, _ := http.NewRequest("GET", s.gunicorn.URL()+path, nil)
				req.Host = "127.0.0.1"
				for k, v := range h {
					req.Header[k] = []string{v}
				}
				res, err := sessionClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Fatalf("%s %s: %d %s", name, path, res.StatusCode, body)
				}
				if path == "/accounts/whoami/" && !strings.Contains(string(body), `"user": null`) && !strings.Contains(string(body), `"user":null`) {
					t.Errorf("%s: forged session accepted: %s", name, body)
				}
				for k, v := range res.Header {
					if k == "X-Sessiongate-Django" && len(v) == 1 && strings.HasPrefix(v[0], "refused-") {
						// The middleware's mark (for the gateway's log):
						// it refused the headers.
						continue
					}
					if strings.HasPrefix(strings.ToLower(k), "x-sessiongate") {
						t.Errorf("%s %s: Django answered a forged request with %s: %q", name, path, k, v)
					}
				}
			}
		}
		log := s.gunicorn.Log()
		if !strings.Contains(log, "bad signature") || !strings.Contains(log, "no gateway signature") {
			t.Errorf("refusals not logged by sessiongate_django:\n%s", log)
		}
	})
	// The example project is set up right: none of the above (the admin,
	// its static files, logins, a view's 500) is reported.
	for _, gw := range s.gws {
		if logs := gw.Logs.String(); strings.Contains(logs, djangoMiddlewareMissing) || strings.Contains(logs, djangoSessionRefused) {
			t.Errorf("the example project is reported:\n%s", logs)
		}
	}
}

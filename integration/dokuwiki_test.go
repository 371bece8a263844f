package integration

// Debian 12's DokuWiki behind the gateway with the shared session: its
// login, edit and logout keep their state in the gateway's session (its
// keys sit next to the other applications'), and its stylesheet
// revalidates.

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

const dokuWikiDir = "/usr/share/dokuwiki"

// requireDokuWiki checks that Debian's dokuwiki is installed (in CI a
// missing one fails the test).
func requireDokuWiki(t *testing.T) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "php", "redis-server")
	if _, err := os.Stat(dokuWikiDir + "/doku.php"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Debian's dokuwiki is missing (scripts/deps.sh test installs it): %v", err)
		}
		t.Skipf("dokuwiki not installed: %v", err)
	}
}

// installDokuWiki copies Debian's DokuWiki into a fresh root whose
// inc/preload.php points it at a configuration and data of its own (the
// package's are in /etc/dokuwiki and /var/lib/dokuwiki), with one user,
// admin, whose password is password.
func installDokuWiki(t *testing.T, password string) string {
	t.Helper()
	root, state := t.TempDir(), harness.PHPTempDir(t)
	if out, err := exec.Command("cp", "-a", dokuWikiDir+"/.", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	conf, data := filepath.Join(state, "conf"), filepath.Join(state, "data")
	for _, d := range []string{"pages", "attic", "meta", "media", "media_attic", "media_meta", "cache", "index", "locks", "tmp", "log"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/etc/dokuwiki")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue // the links to the package's users and ACL
		}
		b, err := os.ReadFile(filepath.Join("/etc/dokuwiki", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conf, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := exec.Command("php", "-r", "echo password_hash($argv[1], PASSWORD_BCRYPT);", password).Output()
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, conf, map[string]string{
		"local.php": "<?php\n$conf['title'] = 'Gateway';\n$conf['useacl'] = 1;\n$conf['superuser'] = '@admin';\n" +
			"$conf['savedir'] = '" + data + "';\n$conf['userewrite'] = 2;\n",
		"users.auth.php": "admin:" + string(hash) + ":Admin:admin@example.com:admin,user\n",
		"acl.auth.php":   "*\t@ALL\t1\n*\t@user\t8\n",
	})
	writeTree(t, root, map[string]string{"inc/preload.php": "<?php\ndefine('DOKU_CONF', '" + conf + "/');\n"})
	// DokuWiki's caches count as stale while a file they depend on (its
	// configuration) has the cache's mtime second or a later one
	// (Cache::useCache: cache time <= file time): configuration written in
	// the second the test starts would make its stylesheet's cache, and
	// so its ETag, change between two requests. An installed site's
	// configuration is older.
	past := time.Now().Add(-time.Hour)
	for _, dir := range []string{conf, filepath.Join(root, "inc")} {
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.Chtimes(filepath.Join(dir, f.Name()), past, past); err != nil {
				t.Fatal(err)
			}
		}
	}
	harness.ShareWithPHP(t, state)
	for _, f := range []string{"set.php", "get.php"} {
		b, err := os.ReadFile("testdata/session/" + f)
		if err != nil {
			t.Fatal(err)
		}
		writeTree(t, root, map[string]string{f: string(b)})
	}
	return root
}

// TestDokuWikiWithSharedSession: a visitor with a gateway session logs in
// to DokuWiki, opens the admin page, saves an edit (its nice URLs of the
// "DokuWiki internal" kind, /doku.php/page, which need no rewriting), and
// logs out. DokuWiki's login lives in the gateway's session beside the
// other application's key, and leaves it at the logout. Its stylesheet
// (lib/exe/css.php, gzipped by the gateway) answers a revalidation with 304.
func TestDokuWikiWithSharedSession(t *testing.T) {
	t.Parallel()
	requireDokuWiki(t)
	root := installDokuWiki(t, "gateway-test-password")
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	red := harness.StartRedis(t)
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		// Debian's lib/plugins and lib/tpl lead there.
		"SESSIONGATE_FOLLOW_SYMLINKS=/var/lib/dokuwiki/lib",
		"SESSIONGATE_NO_PHP_PATHS=/bin/",
		"SESSIONGATE_INTERNAL_PATHS=/inc/,/vendor/,/conf/,/data/",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + writePrepend(t),
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=10s",
	})
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateways(t, cfg, 1)[0]
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	fetch := func(method, target string, form url.Values, hdr ...string) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, gw.URL+target, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	page := func(method, target string, form url.Values) string {
		t.Helper()
		res, b := fetch(method, target, form)
		if res.StatusCode != 200 {
			t.Fatalf("%s %s: %d %.300s", method, target, res.StatusCode, b)
		}
		return b
	}
	field := func(p, name string) string {
		t.Helper()
		m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(p)
		if m == nil {
			t.Fatalf("no %s in %.500s", name, p)
		}
		return m[1]
	}
	loggedIn := func(p string) bool { return strings.Contains(p, "do=logout") }

	if b := page("GET", "/set.php?k=user&v=%22ana%22", nil); b != "ok" {
		t.Fatalf("gateway session: %q", b)
	}
	form := page("GET", "/doku.php/start?do=login", nil)
	if p := page("POST", "/doku.php/start", url.Values{"do": {"login"}, "id": {"start"},
		"u": {"admin"}, "p": {"gateway-test-password"}, "sectok": {field(form, "sectok")}}); !loggedIn(p) {
		t.Fatalf("after logging in: %.500s", p)
	}
	if p := page("GET", "/doku.php/start?do=admin", nil); !loggedIn(p) || !strings.Contains(p, "do=admin&amp;page=usermanager") {
		t.Fatalf("admin page: %.500s", p)
	}
	edit := page("GET", "/doku.php/gateway:test?do=edit", nil)
	text := "saved through the gateway " + strconv.FormatInt(time.Now().UnixNano(), 10)
	page("POST", "/doku.php/gateway:test", url.Values{"id": {"gateway:test"}, "sectok": {field(edit, "sectok")},
		"do[save]": {"Save"}, "wikitext": {text}, "summary": {"test"}, "changecheck": {field(edit, "changecheck")},
		"date": {field(edit, "date")}, "prefix": {"."}, "suffix": {""}, "rev": {"0"}})
	if raw := page("GET", "/doku.php/gateway:test?do=export_raw", nil); raw != text {
		t.Fatalf("the saved page: %q, want %q", raw, text)
	}
	d := page("GET", "/get.php", nil)
	if !strings.Contains(d, `"user":"ana"`) || !strings.Contains(d, `"auth":{"user":"admin"`) {
		t.Fatalf("the gateway's session while logged in: %s", d)
	}

	const css = "/lib/exe/css.php?t=dokuwiki&tseed=1"
	// The first request builds DokuWiki's cache and tags its answer with
	// the time it started (http_cached's miss: http_conditionalRequest(time())),
	// the cached copy with the cache file's mtime: a second apart when the
	// build crosses a second. Revalidate the cached copy's tag.
	fetch("GET", css, nil)
	time.Sleep(time.Second) // past the cache's mtime second (Cache::useCache's <=)
	res, b := fetch("GET", css, nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") || len(b) < 1000 {
		t.Fatalf("stylesheet: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(b))
	}
	sent := res.Header
	res, b = fetch("GET", css, nil, "If-None-Match", sent.Get("ETag"), "If-Modified-Since", sent.Get("Last-Modified"))
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("stylesheet revalidated with ETag %s, Last-Modified %s: %d, %d bytes, ETag %s, Last-Modified %s, want 304",
			sent.Get("ETag"), sent.Get("Last-Modified"), res.StatusCode, len(b), res.Header.Get("ETag"), res.Header.Get("Last-Modified"))
	}

	p := page("GET", "/doku.php/start", nil)
	if !loggedIn(p) {
		t.Fatalf("logged out on its own: %.500s", p)
	}
	if p := page("GET", "/doku.php/start?do=logout&sectok="+field(p, "sectok"), nil); loggedIn(p) {
		t.Fatalf("after logging out: %.500s", p)
	}
	if d := page("GET", "/get.php", nil); !strings.Contains(d, `"user":"ana"`) || strings.Contains(d, `"auth":{"user"`) {
		t.Fatalf("the gateway's session after the logout: %s", d)
	}
	if l := fpmLogSettled(fpm); strings.Contains(l, "PHP Warning") || strings.Contains(l, "PHP Fatal") {
		t.Fatalf("php-fpm's log:\n%s", l)
	}
}

//go:build mediawiki

// Not part of make test: Debian's mediawiki package depends on a web server
// (apache2 | httpd), and installing one starts it on port 80 of the machine
// that runs the suite. To run it (as root on Debian 12):
//
//	apt-get install --no-install-recommends mediawiki php8.2-sqlite3
//	go test -tags mediawiki -run TestMediaWiki ./integration/

package integration

// Debian 12's MediaWiki 1.39 behind the gateway, for a visitor who also has
// the gateway's session (a Django login, another PHP application of the
// site). MediaWiki keeps sessions of its own (its SessionManager, in its
// database), so the README tells such applications to let the gateway's
// session go at once; what it tells MediaWiki's users must keep their
// logins working.

import (
	"html"
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

const mediaWikiDir = "/usr/share/mediawiki"

// requireMediaWiki checks that Debian's mediawiki and PHP's SQLite driver
// are installed (in CI a missing one fails the test).
func requireMediaWiki(t *testing.T) {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "php", "redis-server")
	var missing []string
	if _, err := os.Stat(mediaWikiDir + "/maintenance/install.php"); err != nil {
		missing = append(missing, "mediawiki")
	}
	if out, err := exec.Command("php", "-r", "echo extension_loaded('pdo_sqlite') ? 'yes' : 'no';").Output(); err != nil || string(out) != "yes" {
		missing = append(missing, "php8.2-sqlite3")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("Debian's %s missing (scripts/deps.sh test installs them)", strings.Join(missing, " and "))
	}
	t.Skipf("%s not installed", strings.Join(missing, " and "))
}

// readmeMediaWikiSettings returns the lines the README tells MediaWiki's
// users to put at the top of LocalSettings.php.
func readmeMediaWikiSettings(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)at the top of MediaWiki's `LocalSettings.php`:\n\n```php\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README: no LocalSettings.php lines for MediaWiki")
	}
	return string(m[1])
}

// installMediaWiki builds a MediaWiki site the way Debian's
// /var/lib/mediawiki is built (links into /usr/share/mediawiki, the
// settings beside them), installs it on SQLite and returns its root.
// settings go at the top of LocalSettings.php.
func installMediaWiki(t *testing.T, settings string) string {
	t.Helper()
	root, data := t.TempDir(), harness.PHPTempDir(t)
	entries, err := os.ReadDir(mediaWikiDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "LocalSettings.php" {
			continue // Debian's link to /etc/mediawiki: this site has its own
		}
		if err := os.Symlink(filepath.Join(mediaWikiDir, e.Name()), filepath.Join(root, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	conf := t.TempDir()
	cmd := exec.Command("php", root+"/maintenance/install.php", "--dbtype", "sqlite",
		"--dbpath", data, "--dbname", "wiki", "--server", "http://127.0.0.1", "--scriptpath", "",
		"--pass", "gateway-test-password", "--confpath", conf, "--skins", "Vector", "Wiki", "Admin")
	// MediaWiki looks for LocalSettings.php there, not in /etc/mediawiki.
	cmd.Env = append(os.Environ(), "MW_INSTALL_PATH="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install.php: %v\n%s", err, out)
	}
	harness.ShareWithPHP(t, data)
	generated, err := os.ReadFile(filepath.Join(conf, "LocalSettings.php"))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(string(generated), "<?php")
	// Debian's paths are root's: the site's caches go with its data.
	ls := "<?php\n" + settings + body + "\n$wgServer = WebRequest::detectServer();\n" +
		"$wgCacheDirectory = '" + data + "/cache';\n$wgShowExceptionDetails = true;\n"
	if err := os.WriteFile(filepath.Join(root, "LocalSettings.php"), []byte(ls), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"set.php", "get.php"} {
		b, err := os.ReadFile("testdata/session/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestMediaWikiLoginWithGatewaySession: with LocalSettings.php as the
// README says, a visitor with a gateway session logs in to MediaWiki,
// reaches a page that needs the login, saves an edit and logs out, the
// gateway's session left as it was, and so does a visitor without one. MediaWiki adopts a PHP session ID it finds
// set (SessionManager::getGlobalSession(), "If PHP's session_id() has been
// set, returns that session"), so the README's line for applications with
// sessions of their own, alone, hands it the gateway's ID, and its login
// form answers with the visitor still logged out.
func TestMediaWikiLoginWithGatewaySession(t *testing.T) {
	t.Parallel()
	requireMediaWiki(t)
	root := installMediaWiki(t, readmeMediaWikiSettings(t))
	// What nginx sends as fastcgi_param MW_CONFIG_FILE: MediaWiki resolves
	// its links and would look in /usr/share/mediawiki (Debian's link to
	// /etc/mediawiki) otherwise.
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4,
		Env: map[string]string{"MW_CONFIG_FILE": filepath.Join(root, "LocalSettings.php")}})
	red := harness.StartRedis(t)
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_FOLLOW_SYMLINKS=" + mediaWikiDir,
		"SESSIONGATE_NO_PHP_PATHS=/images/,/maintenance/",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + writePrepend(t),
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=10s",
	})
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateways(t, cfg, 1)[0]
	for _, withGatewaySession := range []bool{true, false} {
		t.Run("gateway session "+strconv.FormatBool(withGatewaySession), func(t *testing.T) {
			mediaWikiVisit(t, gw, withGatewaySession)
		})
	}
	if l := fpmLogSettled(fpm); strings.Contains(l, "PHP Warning") || strings.Contains(l, "PHP Fatal") {
		t.Fatalf("php-fpm's log:\n%s", l)
	}
}

// mediaWikiVisit logs in to MediaWiki as Admin, opens a page that needs the
// login, saves an edit and logs out, with a fresh browser that first gets
// the gateway's session when withGatewaySession.
func mediaWikiVisit(t *testing.T, gw *sessionGW, withGatewaySession bool) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	fetch := func(method, target string, form url.Values) string {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, gw.URL+target, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s %s: %d %.300s", method, target, res.StatusCode, b)
		}
		return string(b)
	}
	field := func(page, name string) string {
		t.Helper()
		m := regexp.MustCompile(`name="` + name + `"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="` + name + `"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no %s in the form: %.500s", name, page)
		}
		return html.UnescapeString(m[1] + m[2])
	}
	userName := regexp.MustCompile(`"wgUserName":("[^"]*"|null)`)
	loggedIn := func(page string) string {
		m := userName.FindStringSubmatch(page)
		if m == nil {
			return "?"
		}
		return m[1]
	}

	if withGatewaySession {
		if b := fetch("GET", "/set.php?k=user&v=%22ana%22", nil); b != "ok" {
			t.Fatalf("gateway session: %q", b)
		}
	}
	form := fetch("GET", "/index.php?title=Special:UserLogin", nil)
	page := fetch("POST", "/index.php?title=Special:UserLogin", url.Values{
		"title": {"Special:UserLogin"}, "wpName": {"Admin"}, "wpPassword": {"gateway-test-password"},
		"wpLoginToken": {field(form, "wpLoginToken")}, "authAction": {"login"}, "wploginattempt": {"Log in"},
	})
	if u := loggedIn(page); u != `"Admin"` {
		t.Fatalf("after logging in, MediaWiki's user is %s, want \"Admin\"", u)
	}
	if u := loggedIn(fetch("GET", "/index.php?title=Special:Preferences", nil)); u != `"Admin"` {
		t.Fatalf("Special:Preferences: user %s", u)
	}
	edit := fetch("GET", "/index.php?title=Gateway&action=edit", nil)
	text := "saved through the gateway " + strconv.FormatInt(time.Now().UnixNano(), 10)
	saved := fetch("POST", "/index.php?title=Gateway&action=submit", url.Values{
		"wpTextbox1": {text}, "wpSummary": {"test"}, "wpEditToken": {field(edit, "wpEditToken")},
		"wpStarttime": {field(edit, "wpStarttime")}, "wpEdittime": {field(edit, "wpEdittime")},
		"wpUnicodeCheck": {field(edit, "wpUnicodeCheck")}, "wpUltimateParam": {"1"}, "wpSave": {"Save"},
		"model": {"wikitext"}, "format": {"text/x-wiki"},
	})
	if !strings.Contains(fetch("GET", "/index.php?title=Gateway&action=raw", nil), text) {
		t.Fatalf("the edit was not saved: %.500s", saved)
	}
	tokens := fetch("GET", "/api.php?action=query&meta=tokens&format=json", nil)
	m := regexp.MustCompile(`"csrftoken":"([^"]*)"`).FindStringSubmatch(tokens)
	if m == nil {
		t.Fatalf("api tokens: %s", tokens)
	}
	fetch("POST", "/api.php", url.Values{"action": {"logout"}, "token": {strings.ReplaceAll(m[1], `\\`, `\`)}, "format": {"json"}})
	if u := loggedIn(fetch("GET", "/index.php?title=Main_Page", nil)); u != "null" {
		t.Fatalf("after logging out, MediaWiki's user is %s", u)
	}
	if d := fetch("GET", "/get.php", nil); withGatewaySession && !strings.Contains(d, `"data":{"user":"ana"}`) {
		t.Fatalf("the gateway's session after MediaWiki: %s", d)
	}
}

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestSessionPrependSaveHandlerLocked: a pool that pins session.save_handler
// with php_admin_value (phpredis setups do) makes PHP refuse the prepend's
// session_set_save_handler() without a word. The script then runs on PHP's
// own store with the cookie the prepend turned off: nothing is shared and
// nothing survives the request. The prepend must say so, naming the setting.
func TestSessionPrependSaveHandlerLocked(t *testing.T) {
	t.Parallel()
	logs := counterOnPinnedPool(t, map[string]string{"session.save_handler": "files"})
	if !strings.Contains(logs, "sessiongate: ") || !strings.Contains(logs, "session.save_handler") {
		t.Fatalf("nothing tells the operator that the gateway's session handler could not be installed:\n%s", logs)
	}
}

// TestSessionPrependWithoutGateway: the prepend in the pool, and a request
// that reaches php-fpm without the gateway (a health check, another vhost,
// a direct FastCGI probe). A script without sessions runs as usual and
// logs nothing; one that starts a session runs too (no fatal error), and
// the log says why its session is not kept instead of only PHP's "Failed
// to write session data ... (session.save_path: ...)".
func TestSessionPrependWithoutGateway(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := sessionFixtureRoot(t)
	prepend := writePrepend(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1,
		AdminValues: map[string]string{"auto_prepend_file": prepend}})
	tr := newFCGI(t, fcgi.Options{}, fpm.Addr)

	resp, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/nosession.php", nil, nil))
	if err != nil || resp.StatusCode != 200 || body != "no session here" {
		t.Fatalf("nosession: %v %v %q", err, resp, body)
	}
	if l := fpmLogSettled(fpm); strings.Contains(l, "PHP message") {
		t.Fatalf("a script without sessions logged:\n%s", l)
	}

	resp, body, err = fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/counter.php", nil, nil))
	if err != nil || resp.StatusCode != 200 || body != "1" {
		t.Fatalf("counter: %v %v %q", err, resp, body)
	}
	fpmLogWhen(t, fpm, "it does not say why the session is not kept", func(l string) bool {
		return strings.Contains(l, "sessiongate: ") && strings.Contains(l, "gateway")
	})
}

// TestSessionPrependAppOwnHandler: a legacy script that installs a session
// handler of its own replaces the prepend's and shares nothing, but its
// pages keep working: its session lasts across requests under PHP's own
// cookie, as behind nginx.
func TestSessionPrependAppOwnHandler(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	resp, body, _ := s.gws[0].get(t, "/own_handler.php", "")
	var own *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "PHPSESSID" {
			own = c
		}
	}
	if resp.StatusCode != 200 || body != "1" || own == nil {
		t.Fatalf("first visit: %d %q, Set-Cookie %q", resp.StatusCode, body, resp.Header.Values("Set-Cookie"))
	}
	resp, body, _ = s.gws[0].get(t, "/own_handler.php", "", "Cookie", "PHPSESSID="+own.Value)
	if resp.StatusCode != 200 || body != "2" {
		t.Fatalf("second visit: %d %q (the script's own session was not kept)", resp.StatusCode, body)
	}
}

// TestSessionPrependAppOwnHandlerDestructor: an application with a session
// handler of its own, installed without PHP's shutdown hook, keeps a change
// its objects' destructors make, as behind nginx: PHP writes that session
// after the destructors. The prepend's end-of-request write is for the
// gateway's session only; it closed the application's session before the
// destructors ran, and the change was lost.
func TestSessionPrependAppOwnHandlerDestructor(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	own := ""
	for i := 0; i < 3; i++ {
		var hdr []string
		if own != "" {
			hdr = []string{"Cookie", "PHPSESSID=" + own}
		}
		resp, body, _ := s.gws[0].get(t, "/own_handler_destruct.php", "", hdr...)
		for _, c := range resp.Cookies() {
			if c.Name == "PHPSESSID" {
				own = c.Value
			}
		}
		if resp.StatusCode != 200 || body != fmt.Sprint(i) || own == "" {
			t.Fatalf("visit %d: %d %q, own cookie %q (the destructor's change to the script's own session was lost)", i+1, resp.StatusCode, body, own)
		}
	}
}

// TestSessionPrependAppProceduralHandler: an application that installs its
// own handler with the six callbacks of session_set_save_handler()
// (Roundcube's database handler) gets PHP's own behaviour for the three it
// leaves out, as behind nginx. PHP kept the prepend's create_sid,
// validateId and updateTimestamp for that handler: strict mode then refused
// the application's ID on every request (Roundcube's login failed with
// "Invalid request! No data was saved."), session_regenerate_id() failed,
// an unchanged session never reached the application's write (Roundcube
// keeps its session alive there), and a visitor with a gateway session got
// the gateway's raw ID as the application's own, whose cookie the gateway
// then dropped. The outputs are nginx's for the same visits.
func TestSessionPrependAppProceduralHandler(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	gatewayCookie := s.newSession(t)
	for _, ck := range []string{"", gatewayCookie} {
		own := ""
		for i, v := range []struct{ op, want string }{
			{"inc", "n=1 writes=1 regen=-"},
			{"inc", "n=2 writes=2 regen=-"},
			{"read", "n=2 writes=3 regen=-"},
			{"regen", "n=2 writes=1 regen=ok"},
			{"inc", "n=3 writes=2 regen=ok"},
		} {
			var hdr []string
			if own != "" {
				hdr = []string{"Cookie", "own_proc_sid=" + own}
			}
			resp, body, _ := s.gws[i%2].get(t, "/own_handler_procedural.php?op="+v.op, ck, hdr...)
			for _, c := range resp.Cookies() {
				if c.Name == "own_proc_sid" {
					own = c.Value
				}
			}
			if resp.StatusCode != 200 || body != v.want || own == "" {
				t.Fatalf("gateway session %v, visit %d (%s): %d %q, want %q; own cookie %q",
					ck != "", i+1, v.op, resp.StatusCode, body, v.want, own)
			}
		}
	}
	for _, gw := range s.gws {
		for _, line := range strings.Split(gw.Logs.String(), "\n") {
			if strings.Contains(line, "session") && (strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`)) {
				t.Fatalf("the gateway complains about a session: %s", line)
			}
		}
	}
	if l := fpmLogSettled(s.fpm); strings.Contains(l, "PHP Warning") {
		t.Fatalf("PHP warns:\n%s", l)
	}
}

// TestSessionUserIDUnderAppOwnHandler: sessiongate_user_id() names the
// Django user of the gateway's session also while a session of the
// application's own handler is active (MediaWiki keeps one for every
// visitor who opened its login page), as a single sign-on hook needs. It
// read $_SESSION, the application's own session, and said "anonymous".
func TestSessionUserIDUnderAppOwnHandler(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	_, _, ck := s.gws[0].get(t, "/set.php?k=_auth_user_id&v=7", "")
	if resp, body, _ := s.gws[1].get(t, "/own_handler_whoami.php", ck); resp.StatusCode != 200 || body != "user:7" {
		t.Fatalf("with the application's own session active: %d %q, want user:7", resp.StatusCode, body)
	}
}

// TestSessionCookieParamsAccepted: applications call
// session_set_cookie_params() before session_start() on every request
// (phpMyAdmin, DokuWiki, CodeIgniter). With PHP's session cookie turned off
// PHP 8 refused the call with a warning each time, which phpMyAdmin shows
// in its pages; nginx gives none. The call is accepted, the session is the
// gateway's, and PHP's own cookie with the raw ID never leaves the gateway,
// without a warning in the log either.
func TestSessionCookieParamsAccepted(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := ""
	for i := 1; i <= 2; i++ {
		resp, body, set := s.gws[0].get(t, "/cookie_params.php", ck)
		if set != "" {
			ck = set
		}
		if resp.StatusCode != 200 || body != fmt.Sprint(i) || ck == "" {
			t.Fatalf("visit %d: %d %q, cookie %q", i, resp.StatusCode, body, ck)
		}
		id := s.gws[1].dump(t, ck).ID
		for _, c := range resp.Cookies() {
			if c.Value == id {
				t.Errorf("visit %d: cookie %s carries the raw session ID", i, c.Name)
			}
		}
	}
	logs := s.gws[0].Logs.String()
	if strings.Contains(logs, "cannot be used") || strings.Contains(logs, "raw session ID") {
		t.Errorf("warnings for a script that sets its cookie parameters:\n%s", logs)
	}
}

// TestSessionPrependSettingLocked: a pool that loads the prepend itself
// (php_admin_value[auto_prepend_file], so the gateway sends no PHP_VALUE)
// and pins one of the session settings the gateway relies on with
// php_admin_value (here the session cookie off, which makes PHP warn at
// every session_set_cookie_params()) keeps it without a word from PHP; the
// prepend names the setting, the pool's value and the one it needs. (The
// gateway's PHP_VALUE, when it sends one, overrides the pool's value.)
func TestSessionPrependSettingLocked(t *testing.T) {
	t.Parallel()
	logs := counterOnPinnedPool(t, map[string]string{"session.use_cookies": "0"})
	if !strings.Contains(logs, "sessiongate: php_admin_value") || !strings.Contains(logs, `session.use_cookies (the pool has \"0\", the gateway needs \"1\")`) {
		t.Fatalf("nothing names the pinned setting:\n%s", logs)
	}
	// A pool that pins nothing hears nothing of it.
	if logs := counterOnPinnedPool(t, nil); strings.Contains(logs, "php_admin_value") {
		t.Fatalf("a message without a pinned setting:\n%s", logs)
	}
}

// counterOnPinnedPool runs /counter.php once on a pool that loads the
// prepend itself and pins admin with php_admin_value, and returns the
// gateway's log.
func counterOnPinnedPool(t *testing.T, admin map[string]string) string {
	t.Helper()
	s := startSessionStack(t, stackOpts{prependInPool: true, fpm: harness.PHPFPMOptions{AdminValues: admin}})
	resp, body, _ := s.gws[0].get(t, "/counter.php", "")
	if resp.StatusCode != 200 || body != "1" {
		t.Fatalf("counter: %d %q", resp.StatusCode, body)
	}
	return s.gws[0].Logs.String()
}

// TestSessionCookieSettings: SESSIONGATE_SESSION_COOKIE_SAMESITE=none (a
// shop whose payment provider posts the customer back from its own site)
// and SESSIONGATE_SESSION_EXPIRE_AT_BROWSER_CLOSE (PHP's default
// session.cookie_lifetime=0) shape the cookie a real PHP session gets, and
// the session still resumes with it.
func TestSessionCookieSettings(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{env: []string{
		"SESSIONGATE_SESSION_COOKIE_SAMESITE=none",
		"SESSIONGATE_SESSION_COOKIE_SECURE=on",
		"SESSIONGATE_SESSION_EXPIRE_AT_BROWSER_CLOSE=on",
	}})
	resp, body, ck := s.gws[0].get(t, "/counter.php", "")
	line := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != 200 || body != "1" || ck == "" {
		t.Fatalf("first visit: %d %q, cookie %q", resp.StatusCode, body, line)
	}
	for _, attr := range []string{"SameSite=None", "Secure", "HttpOnly"} {
		if !strings.Contains(line, attr) {
			t.Errorf("cookie %q lacks %s", line, attr)
		}
	}
	if strings.Contains(line, "Max-Age") || strings.Contains(line, "Expires") {
		t.Errorf("cookie %q outlives the browser", line)
	}
	if resp, body, _ := s.gws[1].get(t, "/counter.php", ck); resp.StatusCode != 200 || body != "2" {
		t.Fatalf("second visit through the other gateway: %d %q", resp.StatusCode, body)
	}
}

// TestSessionNamedIDIsLogged: session_id($x) with an ID the gateway did not
// mint gets a new, empty session (strict mode). phpCAS's single logout
// relies on such IDs and silently failed to log anybody out: the operator
// is now told, once per request. A leftover PHPSESSID cookie from before
// the gateway is the same refusal but the client's doing, not the
// script's, and stays quiet.
func TestSessionNamedIDIsLogged(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	if resp, body, _ := s.gws[0].get(t, "/named_id.php", ""); resp.StatusCode != 200 || body != "new" {
		t.Fatalf("named ID: %d %q, want a new session", resp.StatusCode, body)
	}
	logs := s.gws[0].Logs.String()
	if n := strings.Count(logs, "did not mint"); n != 1 {
		t.Fatalf("%d log lines about the named ID, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs, hashHex("ST-1-demo")) {
		t.Errorf("the named ID is in the log:\n%s", logs)
	}

	// A client's own stale PHPSESSID: refused without a word.
	req, _ := http.NewRequest("GET", s.gws[1].URL+"/counter.php", nil)
	req.AddCookie(&http.Cookie{Name: "PHPSESSID", Value: "0123456789abcdefghijklmnop"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("counter with a stale PHPSESSID: %d", resp.StatusCode)
	}
	if logs := s.gws[1].Logs.String(); strings.Contains(logs, "did not mint") {
		t.Errorf("a client's stale PHPSESSID logged as the script's doing:\n%s", logs)
	}
}

// TestSessionRestartAfterDestroyIsQuiet: session_destroy() then
// session_start() (a logout page that keeps a flash message) has PHP take
// the ID from $_COOKIE again, where the prepend put the gateway's ID. That
// ID is the gateway's, not one the script chose with session_id(): the
// named-ID warning must not fire on every logout.
func TestSessionRestartAfterDestroyIsQuiet(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	_, _, ck := s.gws[0].get(t, "/counter.php", "")
	if ck == "" {
		t.Fatal("no session cookie")
	}
	if resp, body, _ := s.gws[0].get(t, "/logout_restart.php", ck); resp.StatusCode != 200 || body != "restarted" {
		t.Fatalf("logout_restart: %d %q", resp.StatusCode, body)
	}
	if logs := s.gws[0].Logs.String(); strings.Contains(logs, "did not mint") {
		t.Errorf("session_start() after session_destroy() logged as an ID the script chose:\n%s", logs)
	}
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestSessionSameSiteNoneAskedFor: a script that asks PHP for SameSite=None
// session cookies (SimpleSAMLphp does, for the identity provider's POST
// back) gets the gateway's cookie, whose SameSite is
// SESSIONGATE_SESSION_COOKIE_SAMESITE. Under the default lax the browser
// leaves the session out of that POST and the script's state is lost
// without a word from the gateway: the prepend names the setting to change.
// Under none it stays quiet.
func TestSessionSameSiteNoneAskedFor(t *testing.T) {
	t.Parallel()
	const hint = "SESSIONGATE_SESSION_COOKIE_SAMESITE=none"
	lax := startSessionStack(t, stackOpts{})
	if resp, body, _ := lax.gws[0].get(t, "/samesite_none.php", ""); resp.StatusCode != 200 || body != "1" {
		t.Fatalf("lax: %d %q", resp.StatusCode, body)
	}
	if logs := lax.gws[0].Logs.String(); strings.Count(logs, hint) != 1 {
		t.Errorf("lax: want one line naming %s:\n%s", hint, logs)
	}
	if _, body, _ := lax.gws[0].get(t, "/counter.php", ""); body != "1" || strings.Count(lax.gws[0].Logs.String(), hint) != 1 {
		t.Errorf("a script that does not ask for SameSite=None logged it too:\n%s", lax.gws[0].Logs.String())
	}

	none := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_COOKIE_SAMESITE=none", "SESSIONGATE_SESSION_COOKIE_SECURE=on"}})
	resp, body, _ := none.gws[0].get(t, "/samesite_none.php", "")
	if resp.StatusCode != 200 || body != "1" || !strings.Contains(resp.Header.Get("Set-Cookie"), "SameSite=None") {
		t.Fatalf("none: %d %q %q", resp.StatusCode, body, resp.Header.Get("Set-Cookie"))
	}
	if logs := none.gws[0].Logs.String(); strings.Contains(logs, hint) {
		t.Errorf("none: the hint although the cookie is SameSite=None:\n%s", logs)
	}
}

// TestSessionPrependPoolWithFastCGILoggingOff: a pool that loads the
// prepend itself (README, "one line of pool configuration") where php.ini
// or the pool turns fastcgi.logging off, as some set it against nginx's
// "FastCGI sent in stderr" lines. error_log() output then never reaches the
// gateway, only php-fpm's log: every change sent on PHP's error stream
// (session_write_close() in the middle of a page, a change after the
// output started) was lost without a word, the page a 200. A change made
// before the output left now rides in a response header, and one PHP can
// no longer send is logged by the gateway, naming the setting.
func TestSessionPrependPoolWithFastCGILoggingOff(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{prependInPool: true, fpm: harness.PHPFPMOptions{Values: map[string]string{"fastcgi.logging": "0"}}})
	ck := s.newSession(t)
	if resp, _, _ := s.gws[0].get(t, "/stderr_off.php?step=close", ck); resp.StatusCode != 200 {
		t.Fatalf("session_write_close() before the output: %d", resp.StatusCode)
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"closed":1`) {
		t.Errorf("the change closed with session_write_close() before the output was lost: %s", d.Data)
	}
	s.gws[0].get(t, "/stderr_off.php?step=late", ck)
	if logs := s.gws[0].Logs.String(); !strings.Contains(logs, "fastcgi.logging") {
		t.Errorf("a change PHP could not send after its output started, and the gateway's log does not name fastcgi.logging:\n%s", logs)
	}

	// The README's remedy: php_admin_value[fastcgi.logging] = 1 in the
	// pool wins over the php_value (php.ini's setting alike).
	s = startSessionStack(t, stackOpts{prependInPool: true, fpm: harness.PHPFPMOptions{
		Values: map[string]string{"fastcgi.logging": "0"}, AdminValues: map[string]string{"fastcgi.logging": "1"}}})
	ck = s.newSession(t)
	s.gws[0].get(t, "/stderr_off.php?step=late", ck)
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"late":1`) {
		t.Errorf("with php_admin_value[fastcgi.logging] = 1, the change after the output was lost: %s", d.Data)
	}
	if logs := s.gws[0].Logs.String(); strings.Contains(logs, "fastcgi.logging") {
		t.Errorf("with php_admin_value[fastcgi.logging] = 1, the gateway still warns:\n%s", logs)
	}
}

// TestSessionPrependUserIniPrepend: a directory whose .user.ini names an
// auto_prepend_file of its own (WordPress's Wordfence firewall puts one
// there) wins over the one the gateway sends in PHP_VALUE: PHP runs that
// file instead of the gateway's prepend, and the pages under it get no
// shared session (README, "Install the PHP side"), which the gateway's log
// now says. A .user.ini naming a file that requires both, the gateway's
// prepend first, shares the session and keeps the other file, quietly.
func TestSessionPrependUserIniPrepend(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	tmp := harness.PHPTempDir(t)
	waf := filepath.Join(tmp, "waf.php")
	both := filepath.Join(tmp, "both.php")
	files := map[string]string{
		waf:  "<?php define('SG_TEST_WAF', 1);\n",
		both: "<?php\nrequire " + strconv.Quote(writePrepend(t)) + ";\nrequire " + strconv.Quote(waf) + ";\n",
	}
	page := "<?php session_start(); $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; echo json_encode(['n' => $_SESSION['n'], 'waf' => defined('SG_TEST_WAF')]);\n"
	for dir, prepend := range map[string]string{"wafonly": waf, "both": both} {
		files[filepath.Join(s.fpm.DocRoot, dir, ".user.ini")] = "auto_prepend_file = " + strconv.Quote(prepend) + "\n"
		files[filepath.Join(s.fpm.DocRoot, dir, "page.php")] = page
	}
	for path, text := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		harness.ShareWithPHP(t, path)
	}
	for i := 1; i <= 2; i++ {
		if _, body, _ := s.gws[i%2].get(t, "/both/page.php", ck); body != `{"n":`+strconv.Itoa(i)+`,"waf":true}` {
			t.Fatalf("under a .user.ini naming both prepends, request %d: %q", i, body)
		}
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"user":"ana"`) || !strings.Contains(string(d.Data), `"n":2`) {
		t.Fatalf("under a .user.ini naming both prepends the session is not shared: %s", d.Data)
	}
	for _, gw := range s.gws {
		if logs := gw.Logs.String(); strings.Contains(logs, prependMissing) {
			t.Fatalf("a missing prepend reported under a .user.ini that requires it:\n%s", logs)
		}
	}
	if _, body, _ := s.gws[0].get(t, "/wafonly/page.php", ck); body != `{"n":1,"waf":true}` {
		t.Fatalf("under a .user.ini prepend: %q", body)
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"n":2`) {
		t.Fatalf("under a .user.ini prepend the page shared the session (README says it does not): %s", d.Data)
	}
	// Nothing told the operator; the gateway now does, naming the file.
	if logs := s.gws[0].Logs.String(); !strings.Contains(logs, prependMissing) || !strings.Contains(logs, ".user.ini") {
		t.Fatalf("a page under a .user.ini prepend ran without the gateway's, and the log does not say so:\n%s", logs)
	}

	// A .user.ini prepend that prints before it requires the gateway's,
	// with PHP's output buffer off: the headers are out before the
	// prepend runs, so it can neither mark the response nor send a
	// cookie, and it says where the output started.
	banner := filepath.Join(tmp, "banner.php")
	for path, text := range map[string]string{
		banner: "<?php echo \"banner\\n\";\nrequire " + strconv.Quote(writePrepend(t)) + ";\n",
		filepath.Join(s.fpm.DocRoot, "printfirst", ".user.ini"): "output_buffering = 0\nauto_prepend_file = " + strconv.Quote(banner) + "\n",
		filepath.Join(s.fpm.DocRoot, "printfirst", "page.php"):  "<?php echo 'page';\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		harness.ShareWithPHP(t, path)
	}
	if _, body, _ := s.gws[1].get(t, "/printfirst/page.php", ck); body != "banner\npage" {
		t.Fatalf("under a .user.ini prepend that prints first: %q", body)
	}
	if logs, ok := textWhen(s.gws[1].Logs.String, func(l string) bool {
		return strings.Contains(l, "output started before the gateway's prepend ran") && strings.Contains(l, "banner.php")
	}); !ok {
		t.Fatalf("output before the prepend, and nothing says where:\n%s", logs)
	}
}

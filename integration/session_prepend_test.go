package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge"
)

// TestSessionPrependSaveHandlerLocked: a pool that pins session.save_handler
// with php_admin_value (phpredis setups do) makes PHP refuse the prepend's
// session_set_save_handler() without a word. The script then runs on PHP's
// own store with the cookie the prepend turned off: nothing is shared and
// nothing survives the request. The prepend must say so, naming the setting.
func TestSessionPrependSaveHandlerLocked(t *testing.T) {
	s := startSessionStack(t, stackOpts{prependInPool: true, fpm: harness.PHPFPMOptions{
		AdminValues: map[string]string{"session.save_handler": "files"},
	}})
	resp, body, _ := s.gws[0].get(t, "/counter.php", "")
	if resp.StatusCode != 200 || body != "1" {
		t.Fatalf("counter: %d %q", resp.StatusCode, body)
	}
	logs := s.gws[0].Logs.String()
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
	harness.Require(t, "php-fpm8.2")
	root := sessionFixtureRoot(t)
	prepend := filepath.Join(t.TempDir(), "sessiongate-prepend.php")
	if err := os.WriteFile(prepend, sessionbridge.PrependPHP, 0o644); err != nil {
		t.Fatal(err)
	}
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1,
		AdminValues: map[string]string{"auto_prepend_file": prepend}})
	tr := newFCGI(t, fcgi.Options{}, fpm.Addr)

	resp, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/nosession.php", nil, nil))
	if err != nil || resp.StatusCode != 200 || body != "no session here" {
		t.Fatalf("nosession: %v %v %q", err, resp, body)
	}
	time.Sleep(200 * time.Millisecond) // php-fpm's master writes its log asynchronously
	if l := fpm.Log(); strings.Contains(l, "PHP message") {
		t.Fatalf("a script without sessions logged:\n%s", l)
	}

	resp, body, err = fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/counter.php", nil, nil))
	if err != nil || resp.StatusCode != 200 || body != "1" {
		t.Fatalf("counter: %v %v %q", err, resp, body)
	}
	time.Sleep(200 * time.Millisecond)
	if l := fpm.Log(); !strings.Contains(l, "sessiongate: ") || !strings.Contains(l, "gateway") {
		t.Fatalf("the log does not say why the session is not kept:\n%s", l)
	}
}

// TestSessionPrependAppOwnHandler: a legacy script that installs a session
// handler of its own replaces the prepend's. Under the gateway PHP's own
// session cookie is off (the gateway's cookie carries the session), so such
// a script's session silently starts afresh on every request: a login that
// never sticks. The prepend must tell the operator, naming both ways out.
func TestSessionPrependAppOwnHandler(t *testing.T) {
	s := startSessionStack(t, stackOpts{})
	resp, body, _ := s.gws[0].get(t, "/own_handler.php", "")
	if resp.StatusCode != 200 || body != "1" {
		t.Fatalf("first visit: %d %q", resp.StatusCode, body)
	}
	logs := s.gws[0].Logs.String()
	if !strings.Contains(logs, "sessiongate: ") || !strings.Contains(logs, "session handler of its own") ||
		!strings.Contains(logs, "session.use_cookies") {
		t.Fatalf("nothing tells the operator that the script's own session handler keeps no session under the gateway:\n%s", logs)
	}

	// The way out the message names: the script's own cookie keeps its
	// own session, and nothing is logged.
	resp, body, _ = s.gws[1].get(t, "/own_handler.php?cookies=1", "")
	var own *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "PHPSESSID" {
			own = c
		}
	}
	if resp.StatusCode != 200 || body != "1" || own == nil {
		t.Fatalf("own cookie, first visit: %d %q, Set-Cookie %q", resp.StatusCode, body, resp.Header.Values("Set-Cookie"))
	}
	resp, body, _ = s.gws[1].get(t, "/own_handler.php?cookies=1", "", "Cookie", "PHPSESSID="+own.Value)
	if resp.StatusCode != 200 || body != "2" {
		t.Fatalf("own cookie, second visit: %d %q (the script's own session was not kept)", resp.StatusCode, body)
	}
	// And a script on the gateway's handler is not taken for one.
	resp, body, _ = s.gws[1].get(t, "/counter.php", "")
	if resp.StatusCode != 200 || body != "1" {
		t.Fatalf("counter: %d %q", resp.StatusCode, body)
	}
	if logs := s.gws[1].Logs.String(); strings.Contains(logs, "of its own") {
		t.Fatalf("warned although the script kept its session or used the gateway's:\n%s", logs)
	}
}

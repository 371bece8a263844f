package integration

import (
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

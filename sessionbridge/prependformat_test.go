package sessionbridge

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestPrependConvertsScriptFormatsAsText runs testdata/prepend_formats.php:
// the prepend's conversion of the shared session (php_serialize) to PHP's
// own "php" and "php_binary" formats and back gives what PHP's own
// encoders give, back-references across keys and inside values
// renumbered, keys the format cannot name hidden and put back, and it
// wakes or puts to sleep no object: before, it built the session's
// objects to convert them, so a script in the "php" format (Symfony sets
// it) ran every __wakeup() twice per session_start() and every __sleep()
// up to three times per request.
func TestPrependConvertsScriptFormatsAsText(t *testing.T) {
	harness.Require(t, "php")
	php, err := exec.LookPath("php")
	if err != nil {
		php = "/usr/bin/php"
	}
	// -n: no php.ini; the sessions it starts are files in sys_temp_dir.
	cmd := exec.Command(php, "-n", "-d", "display_errors=stderr", "-d", "sys_temp_dir="+t.TempDir(), "-d", "session.save_path="+t.TempDir(),
		"testdata/prepend_formats.php", "prepend.php")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "ok ") {
		t.Fatalf("prepend_formats.php: %v\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	t.Logf("%s", out)
}

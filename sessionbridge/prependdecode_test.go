package sessionbridge

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// PHP destroys a session it cannot decode, and the prepend keeps it (it
// is every application's) and says why. It blamed a class the script does
// not define or autoload, also when the enum was defined and a deploy had
// removed one of its cases ("Undefined constant Suit::Spades"), sending
// the operator to check autoloading. It now passes on PHP's own reason.
// Run through PHP's CLI with the gateway's params in the environment, as
// php-fpm would pass them.
func TestPrependDecodeFailureGivesPHPsReason(t *testing.T) {
	harness.Require(t, "php")
	php, err := exec.LookPath("php")
	if err != nil {
		php = "/usr/bin/php"
	}
	prepend, _ := filepath.Abs("prepend.php")
	script := filepath.Join(t.TempDir(), "page.php")
	os.WriteFile(script, []byte(`<?php
ob_start();
require $argv[1];
if (getenv('DEFINE_SUIT')) {
    enum Suit: string { case Hearts = 'H'; }   // defined before session_start()
}
session_start();
`), 0o644)
	run := func(data string, defineSuit bool) string {
		cmd := exec.Command(php, "-n", "-d", "variables_order=EGPCS", "-d", "display_errors=stderr", script, prepend)
		cmd.Env = append(os.Environ(),
			"SESSIONGATE_NONCE="+fmt.Sprintf("%032x", 7),
			"SESSIONGATE_FRAME_KEY="+fmt.Sprintf("%064x", 9),
			"SESSIONGATE_SESSION_ID="+fmt.Sprintf("%064x", 5),
			"SESSIONGATE_DATA_COUNT=1",
			"SESSIONGATE_DATA_0="+base64.StdEncoding.EncodeToString([]byte(data)))
		if defineSuit {
			cmd.Env = append(cmd.Env, "DEFINE_SUIT=1")
		}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	session := `a:2:{s:4:"user";s:3:"ann";s:4:"suit";E:11:"Suit:Spades";}`
	for _, c := range []struct {
		name       string
		defineSuit bool
		reason     string
	}{
		{"the enum defined, its case removed", true, "PHP: session_start(): Undefined constant Suit::Spades"},
		{"the enum not defined", false, "PHP: session_start(): Class 'Suit' not found"},
	} {
		out := run(session, c.defineSuit)
		if !strings.Contains(out, "sessiongate: PHP could not decode the shared session") || !strings.Contains(out, c.reason) {
			t.Errorf("%s: the prepend's line does not give PHP's reason %q:\n%s", c.name, c.reason, out)
		}
	}
}

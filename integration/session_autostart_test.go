package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// autoCountPHP relies on session.auto_start: it never calls
// session_start(), as legacy applications written for php.ini's
// session.auto_start = 1 do not.
const autoCountPHP = `<?php
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
echo session_status(), ':', $_SESSION['n'];
`

// TestSessionAutoStartPoolKeepsChanges: with session.auto_start on in the
// pool (php_value, or php_admin_value with the prepend loaded by the pool
// itself), a script that never calls session_start() has the gateway's
// session and its changes are kept, as PHP's files handler keeps them
// behind nginx; PHP's own session, started before the prepend, leaves no
// file and sends no cookie. The gateway turned session.auto_start off in
// its PHP_VALUE, and every such change was lost without a word.
func TestSessionAutoStartPoolKeepsChanges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts func(savePath string) stackOpts
	}{
		{"php_value", func(savePath string) stackOpts {
			return stackOpts{fpm: harness.PHPFPMOptions{Values: map[string]string{"session.auto_start": "1", "session.save_handler": "files", "session.save_path": savePath}}}
		}},
		{"php_admin_value", func(savePath string) stackOpts {
			return stackOpts{prependInPool: true, fpm: harness.PHPFPMOptions{AdminValues: map[string]string{"session.auto_start": "1"}, Values: map[string]string{"session.save_handler": "files", "session.save_path": savePath}}}
		}},
		// PHP's own start fails (it warns in its log, as without the
		// gateway) after queueing its cookie.
		{"save_path missing", func(savePath string) stackOpts {
			return stackOpts{fpm: harness.PHPFPMOptions{Values: map[string]string{"session.auto_start": "1", "session.save_handler": "files", "session.save_path": filepath.Join(savePath, "missing")}}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			savePath := harness.PHPTempDir(t)
			st := startSessionStack(t, tc.opts(savePath))
			if err := os.WriteFile(filepath.Join(st.fpm.DocRoot, "autocount.php"), []byte(autoCountPHP), 0o644); err != nil {
				t.Fatal(err)
			}
			ck := ""
			for i := 1; i <= 3; i++ {
				resp, body, set := st.gws[i%2].get(t, "/autocount.php", ck)
				if set != "" && set != "-" {
					ck = set
				}
				if want := fmt.Sprintf("2:%d", i); resp.StatusCode != 200 || body != want {
					t.Fatalf("request %d: %d %q, want %q (the session PHP's files handler keeps)\nphp-fpm log:\n%.3000s", i, resp.StatusCode, body, want, fpmLogSettled(st.fpm))
				}
				for _, c := range resp.Header.Values("Set-Cookie") {
					if strings.HasPrefix(c, "PHPSESSID=") {
						t.Errorf("request %d: PHP's own session cookie reached the client: %s", i, c)
					}
				}
			}
			if d := st.gws[0].dump(t, ck); !strings.Contains(string(d.Data), `"n":3`) {
				t.Errorf("stored session %s, want n=3", d.Data)
			}
			if files, _ := os.ReadDir(savePath); len(files) != 0 {
				t.Errorf("PHP's own session left %d files in its save_path (%s...)", len(files), files[0].Name())
			}
			if l := fpmLogSettled(st.fpm); strings.Contains(l, "auto_start") {
				t.Errorf("php-fpm's log speaks of auto_start:\n%.2000s", l)
			}
		})
	}
}

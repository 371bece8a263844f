package integration

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// prependMissing is in the gateway's log line for a PHP response the
// prepend did not mark.
const prependMissing = "without running the gateway's prepend"

// TestSessionPrependMissingIsLogged: deployments where the prepend never
// runs. PHP then keeps its own sessions: users look logged out on the PHP
// side, and nothing was logged anywhere. The gateway now says so, once a
// minute, naming the likely cause and the fix, and counts each such
// response.
func TestSessionPrependMissingIsLogged(t *testing.T) {
	t.Parallel()
	t.Run("pool without the line", func(t *testing.T) {
		t.Parallel()
		s := startSessionStack(t, stackOpts{noPrepend: true, fpm: harness.PHPFPMOptions{Children: 2}})
		for i := 0; i < 3; i++ {
			if resp, _, _ := s.gws[0].get(t, "/counter.php", ""); resp.StatusCode != 200 {
				t.Fatalf("counter: %d", resp.StatusCode)
			}
		}
		logs := s.gws[0].Logs.String()
		if n := strings.Count(logs, prependMissing); n != 1 {
			t.Fatalf("%d lines about the missing prepend after 3 pages, want 1 (once a minute):\n%s", n, logs)
		}
		if !strings.Contains(logs, "php_admin_value[auto_prepend_file]") || !strings.Contains(logs, "SESSIONGATE_PHP_PREPEND") {
			t.Errorf("the line does not name the fix:\n%s", logs)
		}
		m := metricstest.Scrape(t, s.gws[0].Admin+"/metrics")
		if got := m[`sessiongate_session_events_total{event="php_prepend_missing"}`]; got != 3 {
			t.Errorf("php_prepend_missing events %v, want 3", got)
		}
	})
	t.Run("second pool without the line", func(t *testing.T) {
		t.Parallel()
		// Two pools of one site, each loading the prepend itself; the
		// second was set up without the line. Half the pages lose the
		// session: the log names that pool.
		harness.Require(t, "php-fpm8.2")
		root := sessionFixtureRoot(t)
		good := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2,
			AdminValues: map[string]string{"auto_prepend_file": writePrepend(t)}})
		bad := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
		cfg, err := config.Load([]string{
			"SESSIONGATE_PHP_FPM=" + good.Addr + "," + bad.Addr,
			"SESSIONGATE_DOCUMENT_ROOT=" + root,
			"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		gw := startGateways(t, cfg, 1)[0]
		for i := 0; i < 20 && !strings.Contains(gw.Logs.String(), prependMissing); i++ {
			gw.get(t, "/counter.php", "")
		}
		logs := gw.Logs.String()
		if n := strings.Count(logs, prependMissing); n != 1 || !strings.Contains(logs, `"backend":"`+bad.Addr+`"`) {
			t.Fatalf("%d lines about the missing prepend, want 1 naming %s:\n%s", n, bad.Addr, logs)
		}
		if strings.Contains(logs, good.Addr) {
			t.Errorf("the pool that loads the prepend is named:\n%s", logs)
		}
	})
	t.Run("wrong path", func(t *testing.T) {
		t.Parallel()
		const wrong = "/nonexistent/sessiongate-prepend.php"
		s := startSessionStack(t, stackOpts{prependPath: wrong, fpm: harness.PHPFPMOptions{Children: 2}})
		if resp, _, _ := s.gws[0].get(t, "/counter.php", ""); resp.StatusCode != 500 {
			t.Fatalf("counter with a prepend path PHP cannot open: %d, want PHP's 500", resp.StatusCode)
		}
		logs := s.gws[0].Logs.String()
		if !strings.Contains(logs, prependMissing) || !strings.Contains(logs, wrong) || !strings.Contains(logs, "could not open") {
			t.Fatalf("nothing says PHP could not open the prepend at %s:\n%s", wrong, logs)
		}
	})
}

// TestSessionPrependMarkNoFalseAlarm: responses where the prepend ran but
// a naive check would see no mark, and php-fpm's own answers, where no
// script ran at all, are no missing prepend.
func TestSessionPrependMarkNoFalseAlarm(t *testing.T) {
	t.Parallel()
	// A static root that has a script php-fpm's root lacks: php-fpm
	// answers "File not found." (Primary script unknown) itself.
	static := sessionFixtureRoot(t)
	if err := os.WriteFile(filepath.Join(static, "ghost.php"), []byte("<?php echo 1;"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{Children: 2}, env: []string{
		"SESSIONGATE_INTERNAL_PATHS=/internal/",
	}})
	for path, text := range map[string]string{
		"internal/file.txt": "the file",
		// Root's only: php-fpm (as nobody) cannot open it and answers
		// 403 "Access denied." itself.
		"unreadable.php": "<?php echo 1;",
	} {
		p := filepath.Join(s.fpm.DocRoot, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(s.fpm.DocRoot, "unreadable.php"), 0o600); err != nil {
		t.Fatal(err)
	}
	ck := s.newSession(t)
	gw := s.gws[0]
	for _, c := range []struct {
		method, path string
		hdr          []string
		status       int
		body         string
	}{
		{"GET", "/counter.php", nil, 200, "1"},
		{"HEAD", "/counter.php", nil, 200, ""},
		{"GET", "/not_modified.php", []string{"If-None-Match", `"v1"`}, 304, ""},
		{"GET", "/header_remove_all.php", nil, 200, "cleared"},
		{"GET", "/accel_plain.php", nil, 200, "the file"},
		{"GET", "/streamed.php", nil, 200, strings.Repeat("a", 100000) + strings.Repeat("b", 100000)},
		{"GET", "/fatal.php", nil, 500, ""},
		{"GET", "/exit.php", nil, 200, "bye"},
		{"GET", "/nosession.php", nil, 200, "no session here"},
		{"GET", "/unreadable.php", nil, 403, "Access denied.\n"},
	} {
		req, _ := http.NewRequest(c.method, gw.URL+c.path, nil)
		req.Header.Set("Cookie", "sessionid="+ck)
		for i := 0; i+1 < len(c.hdr); i += 2 {
			req.Header.Set(c.hdr[i], c.hdr[i+1])
		}
		resp, err := sessionClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s body: %v", c.method, c.path, err)
		}
		body := string(b)
		if resp.StatusCode != c.status || body != c.body {
			t.Errorf("%s %s: %d %.40q, want %d %.40q", c.method, c.path, resp.StatusCode, body, c.status, c.body)
		}
		for name := range resp.Header {
			if strings.HasPrefix(name, "X-Sessiongate") {
				t.Errorf("%s %s: %s reached the client", c.method, c.path, name)
			}
		}
	}

	// php-fpm's "Primary script unknown": a gateway whose static root has
	// a script the pool's root does not.
	env := []string{"SESSIONGATE_STATIC_ROOT=" + static}
	ghost := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{Children: 2}, env: env})
	if resp, body, _ := ghost.gws[0].get(t, "/ghost.php", ""); resp.StatusCode != 404 || body != "File not found.\n" {
		t.Errorf("ghost: %d %q, want php-fpm's own 404", resp.StatusCode, body)
	}
	// The pool loading the prepend itself marks its responses the same.
	pool := startSessionStack(t, stackOpts{prependInPool: true, fpm: harness.PHPFPMOptions{Children: 2}})
	if resp, body, _ := pool.gws[0].get(t, "/counter.php", ""); resp.StatusCode != 200 || body != "1" {
		t.Errorf("prepend in the pool: %d %q", resp.StatusCode, body)
	}

	for _, g := range []*sessionGW{gw, ghost.gws[0], pool.gws[0]} {
		if logs := g.Logs.String(); strings.Contains(logs, prependMissing) {
			t.Errorf("a missing prepend reported where it ran:\n%s", logs)
		}
		m := metricstest.Scrape(t, g.Admin+"/metrics")
		if got := m[`sessiongate_session_events_total{event="php_prepend_missing"}`]; got != 0 {
			t.Errorf("php_prepend_missing events %v, want 0", got)
		}
	}
}

package integration

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestStartWarnsWhenPHPFPMDoesNotAnswer: a gateway started before php-fpm,
// or pointed at the wrong socket (Debian's is /run/php/php8.2-fpm.sock,
// php-fpm 8.3's another), started without a word and answered every PHP
// page 502, each logged as "fcgi: dial unix:...: no such file or
// directory", which names neither the variable nor what to do. The start
// must say it, naming SESSIONGATE_PHP_FPM; a php-fpm that answers gets no
// such warning.
func TestStartWarnsWhenPHPFPMDoesNotAnswer(t *testing.T) {
	t.Parallel()
	const warning = "php-fpm does not answer at SESSIONGATE_PHP_FPM"
	t.Run("missing socket", func(t *testing.T) {
		t.Parallel()
		sock := "unix:" + filepath.Join(t.TempDir(), "php8.2-fpm.sock")
		gw := startBinary(t, buildGateway(t), []string{
			"SESSIONGATE_PHP_FPM=" + sock,
			"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
			"SESSIONGATE_SESSIONS=off",
		})
		if !poll(10*time.Second, func() bool { return strings.Contains(gw.stderr.String(), warning) }) {
			t.Fatalf("no %q warning 10s after start:\n%s", warning, gw.stderr.String())
		}
		for _, want := range []string{sock, "Start php-fpm"} {
			if !strings.Contains(gw.stderr.String(), want) {
				t.Errorf("the warning does not say %q:\n%s", want, gw.stderr.String())
			}
		}
	})
	t.Run("php-fpm answers", func(t *testing.T) {
		t.Parallel()
		gw, _, _ := startPHPBinary(t)
		res, err := http.Get(gw.URL + "/info.php")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("/info.php: %d", res.StatusCode)
		}
		// The check runs once, just after the start; a second is ample for
		// a php-fpm that has already answered a page.
		time.Sleep(time.Second)
		if strings.Contains(gw.stderr.String(), warning) {
			t.Errorf("warned although php-fpm answers:\n%s", gw.stderr.String())
		}
	})
}

// TestPrimaryScriptUnknownNamesTheDocumentRoot: php-fpm answers "File not
// found." (404) when it cannot open SCRIPT_FILENAME, the first page of a
// set-up whose SESSIONGATE_DOCUMENT_ROOT is the path the gateway sees, not
// the one php-fpm sees (another container, a chroot), or a site the pool's
// user may not read. The log had only php-fpm's "Primary script unknown",
// as nginx's does; it must name the variable and the path php-fpm was given.
func TestPrimaryScriptUnknownNamesTheDocumentRoot(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	elsewhere := t.TempDir() // php-fpm finds no info.php here
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + elsewhere,
		"SESSIONGATE_STATIC_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
	})
	res, err := http.Get(gw.URL + "/info.php")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("/info.php with php-fpm given %s: %d, want php-fpm's 404", elsewhere, res.StatusCode)
	}
	want := []string{"Primary script unknown", "SESSIONGATE_DOCUMENT_ROOT", filepath.Join(elsewhere, "info.php")}
	if !poll(5*time.Second, func() bool {
		for _, w := range want {
			if !strings.Contains(gw.stderr.String(), w) {
				return false
			}
		}
		return true
	}) {
		t.Errorf("the log does not say %q:\n%s", want, gw.stderr.String())
	}
}

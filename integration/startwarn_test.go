package integration

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

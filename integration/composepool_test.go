package integration

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// composePoolValues reads the php_value, php_flag and php_admin_* entries
// of deploy/php-fpm/zz-sessiongate.conf, the pool settings
// docker-compose.yml mounts into the php:8.2-fpm container. The harness
// writes a flag as a php_value, which PHP parses alike.
func composePoolValues(t *testing.T) (values, admin map[string]string) {
	t.Helper()
	b, err := os.ReadFile("../deploy/php-fpm/zz-sessiongate.conf")
	if err != nil {
		t.Fatal(err)
	}
	values, admin = map[string]string{}, map[string]string{}
	re := regexp.MustCompile(`(?m)^(php_value|php_admin_value|php_flag|php_admin_flag)\[([^\]]+)\]\s*=\s*(.*?)\s*$`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		if strings.Contains(m[1], "admin") {
			admin[m[2]] = m[3]
		} else {
			values[m[2]] = m[3]
		}
	}
	return values, admin
}

// TestComposePHPPool: docker-compose.yml's php service is the official
// php:8.2-fpm image, which has no php.ini, so PHP's built-in defaults apply
// unless deploy/php-fpm/zz-sessiongate.conf sets them. With PHP's
// output_buffering=0 every page's output left with its headers at once, so
// the session written when the page ends could no longer ride in a
// response header: it went over FastCGI stderr, through php-fpm's log pipe
// into the container's log (the image turns catch_workers_output on), as
// it does nowhere else. With the pool file's settings on a php-fpm without
// php.ini, the end-of-request write rides in the header as on Debian.
func TestComposePHPPool(t *testing.T) {
	t.Parallel()
	values, admin := composePoolValues(t)
	s := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{NoPHPIni: true, Values: values, AdminValues: admin}})
	ck := s.newSession(t)
	frames := func() int { return strings.Count(fpmLogSettled(s.fpm), "@sg1:") }
	before := frames()
	resp, body, _ := s.gws[0].get(t, "/set.php?k=cart&v=%5B1%2C2%5D", ck)
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("set: %d %q", resp.StatusCode, body)
	}
	if n := frames() - before; n != 0 {
		t.Errorf("end-of-request write sent %d frames through php-fpm's log, want 0 (header channel)", n)
	}
	if d := s.gws[1].dump(t, ck); !strings.Contains(string(d.Data), `"cart":[1,2]`) {
		t.Fatalf("write not saved: %s", d.Data)
	}
}

// TestComposePHPPoolErrors: with PHP's built-in defaults (no php.ini in
// the php:8.2-fpm image) display_errors is on and log_errors off, so a
// PHP error went to the visitor's page (a fatal one with 200 and the
// script's path) and never to FastCGI stderr, where the gateway logs it as
// "php stderr" (README, "From nginx", error_log). With the pool file's
// settings on a php-fpm without php.ini, a fatal error answers 500 without
// its text, and the gateway logs it.
func TestComposePHPPoolErrors(t *testing.T) {
	t.Parallel()
	values, admin := composePoolValues(t)
	s := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{NoPHPIni: true, Values: values, AdminValues: admin}})
	ck := s.newSession(t)
	resp, body, _ := s.gws[0].get(t, "/fatal.php", ck)
	if resp.StatusCode != 500 || strings.Contains(body, "undefined_function_sessiongate") {
		t.Errorf("fatal error: %d %.300q, want 500 without the error's text", resp.StatusCode, body)
	}
	if line := waitForLog(t, s.gws[0].Logs, "undefined_function_sessiongate"); !strings.Contains(line, "php stderr") {
		t.Errorf("the fatal error's log line is not a php stderr record: %s", line)
	}
}

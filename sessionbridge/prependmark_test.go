package sessionbridge

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/fcgi"
)

// servePHP runs one request for /page.php through the PHP handler h.
func servePHP(t *testing.T, h http.Handler) {
	t.Helper()
	r := httptest.NewRequest("GET", "/page.php", nil)
	r = r.WithContext(fcgi.WithScript(r.Context(), &fcgi.Script{ScriptName: "/page.php"}))
	h.ServeHTTP(httptest.NewRecorder(), r)
}

// A PHP response without the prepend's marker means PHP ran without the
// prepend and kept a session of its own, which users see as being logged
// out on the PHP pages and which nothing else logs: the gateway counts
// each one and logs once a minute, naming the cause and the fix for how
// the prepend is installed. php-fpm's own 403 and 404 ran no script.
func TestUnmarkedPHPResponseIsReported(t *testing.T) {
	for _, tc := range []struct {
		name, prepend string
		status        int
		want          []string
	}{
		{"pool without the line", "", 200, []string{"php_admin_value[auto_prepend_file]", "SESSIONGATE_PHP_PREPEND is empty", "php:9000"}},
		{"pool names a file PHP cannot open", "", 500, []string{"could not open", "php_admin_value[auto_prepend_file]"}},
		{"gateway's path PHP cannot open", "/srv/p.php", 500, []string{"could not open the prepend at /srv/p.php"}},
		{"another file wins", "/srv/p.php", 302, []string{".user.ini", "php_admin_value[auto_prepend_file]", "gateway php-prepend"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, LockStrict, nil)
			logs := captureLog(m)
			mc := &eventCounter{}
			m.o.Metrics = mc
			now := time.Unix(1000, 0)
			m.now = func() time.Time { return now }
			m.mono = func() int64 { return now.UnixNano() }
			status, marked := tc.status, false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fcgi.ScriptFrom(r.Context()).OnHeader(fcgi.HeaderInfo{Status: status, Marked: marked, Backend: "php:9000"})
				w.WriteHeader(status)
			})
			h := m.PHPHandler(next, PHPOptions{PrependPath: tc.prepend})
			for range 3 {
				servePHP(t, h)
			}
			if n := strings.Count(logs.String(), "without running the gateway's prepend"); n != 1 {
				t.Fatalf("%d lines for 3 unmarked responses in a minute, want 1:\n%s", n, logs)
			}
			for _, w := range tc.want {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("the line does not say %q:\n%s", w, logs)
				}
			}
			if n := mc.count("php_prepend_missing"); n != 3 {
				t.Errorf("php_prepend_missing counted %d times, want 3", n)
			}
			now = now.Add(time.Minute)
			servePHP(t, h)
			if n := strings.Count(logs.String(), "without running the gateway's prepend"); n != 2 {
				t.Errorf("a minute later: %d lines, want 2", n)
			}

			// Marked responses, and php-fpm's own 403 and 404, say nothing.
			before := logs.Len()
			now = now.Add(time.Hour)
			marked = true
			servePHP(t, h)
			marked = false
			for _, status = range []int{403, 404} {
				servePHP(t, h)
			}
			if logs.Len() != before || mc.count("php_prepend_missing") != 4 {
				t.Errorf("marked or php-fpm's own answers reported:\n%s", logs.String()[before:])
			}
		})
	}
}

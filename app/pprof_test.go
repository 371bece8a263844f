package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The profiler is an operator's tool: absent unless asked for, and then
// only on the admin listener, never on the public one.
func TestPprofOnlyWhenEnabledAndOnlyOnAdmin(t *testing.T) {
	base := []string{
		"SESSIONGATE_PHP_FPM=php:9000",
		"SESSIONGATE_DOCUMENT_ROOT=/var/www/html",
		"SESSIONGATE_STATIC_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSION_KEYS=pprof-test-key-0123456789abcdef0123456789ab",
		"SESSIONGATE_ADMIN_LISTEN=127.0.0.1:0",
	}
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	pub, admin := serveFake(t, base...)
	if code, _ := get(admin.URL + "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("admin /debug/pprof/ without SESSIONGATE_ADMIN_PPROF: status %d, want 404", code)
	}

	pub, admin = serveFake(t, append(base, "SESSIONGATE_ADMIN_PPROF=on")...)
	code, body := get(admin.URL + "/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("admin /debug/pprof/ with SESSIONGATE_ADMIN_PPROF=on: status %d, body %.200q", code, body)
	}
	if code, body := get(admin.URL + "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: status %d, body %.200q", code, body)
	}
	// The public listener routes /debug/pprof/ like any path: to PHP (the
	// fake answers) or a 404, never to the profiler.
	if _, body := get(pub.URL + "/debug/pprof/goroutine?debug=1"); strings.Contains(body, "goroutine profile") {
		t.Errorf("the public listener served the profiler: %.200q", body)
	}
}

package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

// An access log line stays one short JSON object whatever the client sends.
// The request line and headers may hold up to SESSIONGATE_MAX_HEADER_BYTES
// (1 MiB here, up to 64 MiB), and the path, the method and a Basic user name went
// into the line whole: a 200 KB path made a 200 KB line. Docker's json-file
// driver cuts lines at 16 KiB and journald at 48 KiB (LineMax), so such a
// line reached the log pipeline as fragments that are not JSON, where
// README promises one object per line. The values are cut, at a character
// boundary, with "..." to say so.
func TestAccessLogLineIsBounded(t *testing.T) {
	users := basicAuthFile(t)
	e := newEnv(t, func(c *config.Config) {
		c.AccessLog = true
		c.MaxHeaderBytes = 1 << 20
		c.BasicAuthSpecs = []string{"/private/ " + users}
		c.ServerNames = []string{"example.com"}
	})
	long := strings.Repeat("é", 100<<10) // two bytes each: a cut may split one
	var r *http.Request
	check := func(what string) map[string]any {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(e.logs.String()), "\n")
		line := lines[len(lines)-1]
		if len(line) > 16<<10 {
			t.Errorf("%s: log line of %d bytes", what, len(line))
		}
		if !utf8.ValidString(line) || strings.Contains(line, `\ufffd`) {
			t.Errorf("%s: a value was cut inside a character: %.200s", what, line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return m
	}

	e.do(httptest.NewRequest("GET", "/"+long, nil))
	if m := check("long path"); !strings.HasPrefix(m["path"].(string), "/éé") || !strings.HasSuffix(m["path"].(string), "...") {
		t.Errorf("long path logged as %.100q", m["path"])
	}

	e.do(httptest.NewRequest("GET", "/"+strings.Repeat("%01", 50<<10), nil))
	check("long path of control characters") // each escaped into six bytes

	e.do(httptest.NewRequest(strings.Repeat("X", 100<<10), "/style.css", nil))
	check("long method")

	for _, user := range []string{long, strings.Repeat("\x01", 50<<10)} {
		r := httptest.NewRequest("GET", "/private/", nil)
		r.SetBasicAuth(user, "wrong")
		if w := e.do(r); w.Code != 401 {
			t.Fatalf("wrong password: %d", w.Code)
		}
		check("long user name")
	}

	r = httptest.NewRequest("GET", "/style.css", nil)
	r.Host = "a" + strings.Repeat("b", 2000) + ".example.org"
	if w := e.do(r); w.Code != 421 {
		t.Fatalf("foreign host: %d", w.Code)
	}
	if m := check("long host"); len(m["host"].(string)) > 200 {
		t.Errorf("foreign host logged as %.300q", m["host"])
	}

	// Not a host (an HTTP/2 :authority may be anything): named in the
	// error.
	r = httptest.NewRequest("GET", "/style.css", nil)
	r.Host = "a" + strings.Repeat("é", 200) + ".example.org"
	if w := e.do(r); w.Code != 400 {
		t.Fatalf("malformed host: %d", w.Code)
	}
	if m := check("long malformed host"); len(m["error"].(string)) > 300 {
		t.Errorf("malformed host logged as %.400q", m["error"])
	}
}

// SESSIONGATE_LOG_FORMAT=text writes an unprintable character outside
// Unicode's first plane (private use, tags) as \U000f0000: ten bytes, not
// the six the cut counted, so a path of them took 6.8 KB of the line where
// README promises 4 KiB, and a line with a long path, user and
// X-Accel-Redirect went past the 16 KiB Docker keeps as one line.
func TestAccessLogValueBoundedInTextFormat(t *testing.T) {
	cfg, err := config.Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:1", "SESSIONGATE_DOCUMENT_ROOT=/srv/site", "SESSIONGATE_STATIC_ROOT=" + t.TempDir(), "SESSIONGATE_SESSIONS=off"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	s, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)), WithPHPBackend(&fakePHP{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/"+strings.Repeat("%F3%B0%80%80", 2000)+".css", nil))
	line := strings.TrimSpace(logs.String())
	_, path, ok := strings.Cut(line, " path=")
	path, _, _ = strings.Cut(path, " status=")
	if !ok || !strings.HasPrefix(path, `"/\U000f0000`) || !strings.HasSuffix(path, `..."`) {
		t.Fatalf("path not logged as expected: %.300s", line)
	}
	if len(path) > maxLoggedValue+len(`"..."`) {
		t.Errorf("path takes %d bytes of the line, over %d: %.200s", len(path), maxLoggedValue, path)
	}
}

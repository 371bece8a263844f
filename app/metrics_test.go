package app

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
	"github.com/sessiongate/sessiongate/server"
	"github.com/sessiongate/sessiongate/sessionbridge"
)

// prependPHP stands in for php-fpm running the prepend file: it reads the
// session the gateway sent in the FastCGI params and reports changes over
// Script.OnStderr in the prepend's frame format, the way error_log(..., 4)
// reaches the gateway.
type prependPHP struct {
	mu  sync.Mutex
	seq int
}

// sealFrame seals a message the way the prepend does with openssl_encrypt
// (AES-256-GCM under the request's frame key): iv | tag | ciphertext.
func sealFrame(hexKey, plain string) []byte {
	key, _ := hex.DecodeString(hexKey)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil // no key: the gateway rejects the frame, as it should
	}
	gcm, _ := cipher.NewGCM(block)
	iv := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(iv)
	out := gcm.Seal(nil, iv, []byte(plain), nil)
	ct, tag := out[:len(out)-gcm.Overhead()], out[len(out)-gcm.Overhead():]
	return append(append(iv, tag...), ct...)
}

func (p *prependPHP) RoundTrip(r *http.Request) (*http.Response, error) {
	script := fcgi.ScriptFrom(r.Context())
	params := map[string]string{}
	for _, kv := range script.Extra {
		params[kv.Name] = kv.Value
	}
	nonce, id := params["SESSIONGATE_NONCE"], params["SESSIONGATE_SESSION_ID"]
	send := func(op, id, payload string) {
		p.mu.Lock()
		seq := p.seq
		p.seq++
		p.mu.Unlock()
		msg := base64.StdEncoding.EncodeToString(sealFrame(params["SESSIONGATE_FRAME_KEY"], op+"\n"+id+"\n"+payload))
		script.OnStderr([]byte("PHP message: @sg1:" + nonce + ":" + strconv.Itoa(seq) + ":1:" + msg + "#"))
	}
	switch script.ScriptName {
	case "/write.php": // session_start(); $_SESSION['n'] = <new value>;
		if id == "" {
			id = sessionbridge.NewID()
			send("open", id, "")
		}
		p.mu.Lock()
		n := p.seq // a new value each time: an unchanged session is not saved
		p.mu.Unlock()
		send("write", id, `a:1:{s:1:"n";i:`+strconv.Itoa(n)+`;}`)
	case "/destroy.php":
		send("destroy", id, "")
	}
	if script.OnHeader != nil {
		// The prepend marks every response (the transport takes the
		// marker out of the header block).
		script.OnHeader(fcgi.HeaderInfo{Status: 200, Marked: true, Backend: "php:9000"})
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: io.NopCloser(strings.NewReader("php")), ContentLength: 3, Request: r}, nil
}

// The manager takes the gateway's metrics as its event sink.
var _ sessionbridge.Metrics = (*gatewayMetrics)(nil)

func (p *prependPHP) Ping(context.Context) error { return nil }
func (p *prependPHP) Close() error               { return nil }

// Stats is what *fcgi.Transport reports; the server passes it to metrics.
func (p *prependPHP) Stats() []fcgi.BackendStats {
	return []fcgi.BackendStats{{Addr: "php:9000", Open: 3, Idle: 2, Busy: 1, Healthy: true}}
}

// serveFake builds the gateway from env with the fake prepend as its PHP
// backend and serves its public and admin handlers; all stop with the test.
func serveFake(t *testing.T, env ...string) (pub, admin *httptest.Server) {
	t.Helper()
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler), server.WithPHPBackend(&prependPHP{}))
	if err != nil {
		t.Fatal(err)
	}
	pub = httptest.NewServer(a.Server.Handler())
	admin = httptest.NewServer(a.Server.AdminHandler())
	t.Cleanup(func() {
		pub.Close()
		admin.Close()
		a.Close()
	})
	return pub, admin
}

func TestMetricsThroughTheGateway(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"index.php", "write.php", "read.php", "destroy.php", "style.css"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pub, admin := serveFake(t,
		"SESSIONGATE_PHP_FPM=php:9000",
		"SESSIONGATE_DOCUMENT_ROOT=/var/www/html",
		"SESSIONGATE_STATIC_ROOT="+root,
		"SESSIONGATE_SESSION_KEYS=metrics-test-key-0123456789abcdef0123456789",
		"SESSIONGATE_PHP_MAX_CONNS=6",
	)

	get := func(path, cookie string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", pub.URL+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		set := ""
		for _, c := range res.Cookies() {
			if c.Name == "sessionid" {
				set = c.Name + "=" + c.Value
			}
		}
		return res.StatusCode, set
	}

	before := metricstest.Scrape(t, admin.URL+"/metrics")
	for _, ev := range []string{"load", "save", "destroy", "store_error", "lock_timeout"} {
		if v, ok := before[`sessiongate_session_events_total{event="`+ev+`"}`]; !ok || v != 0 {
			t.Errorf("event %s before any request: %v (present %v)", ev, v, ok)
		}
	}

	// Anonymous traffic: static, a 404, PHP without a session.
	for i := 0; i < 3; i++ {
		if code, _ := get("/style.css", ""); code != 200 {
			t.Fatalf("style.css: %d", code)
		}
	}
	if code, _ := get("/missing.php", ""); code != 404 {
		t.Fatalf("missing.php: %d", code)
	}
	if code, _ := get("/read.php", ""); code != 200 {
		t.Fatalf("read.php: %d", code)
	}
	// A session: created, used twice, written again, destroyed.
	code, cookie := get("/write.php", "")
	if code != 200 || cookie == "" {
		t.Fatalf("write.php: %d, cookie %q", code, cookie)
	}
	get("/read.php", cookie)
	get("/read.php", cookie)
	get("/write.php", cookie)
	get("/destroy.php", cookie)
	// Many distinct paths must not make many series.
	for i := 0; i < 40; i++ {
		get(fmt.Sprintf("/nope-%d.php?session=%d", i, i), "")
	}

	got := metricstest.ScrapeWhen(t, admin.URL+"/metrics", `sessiongate_http_requests_total{code="404",upstream="gateway"}`, 41)
	want := map[string]float64{
		`sessiongate_http_requests_total{code="200",upstream="static"}`:              3,
		`sessiongate_http_requests_total{code="404",upstream="gateway"}`:             41,
		`sessiongate_http_requests_total{code="200",upstream="php"}`:                 6,
		`sessiongate_http_request_duration_seconds_count{upstream="php"}`:            6,
		`sessiongate_http_request_duration_seconds_count{upstream="static"}`:         3,
		`sessiongate_http_response_bytes_total{upstream="php"}`:                      18,
		`sessiongate_http_response_bytes_total{upstream="static"}`:                   3,
		`sessiongate_session_events_total{event="save"}`:                             2,
		`sessiongate_session_events_total{event="load"}`:                             4,
		`sessiongate_session_events_total{event="destroy"}`:                          1,
		`sessiongate_session_events_total{event="store_error"}`:                      0,
		`sessiongate_session_events_total{event="lock_timeout"}`:                     0,
		`sessiongate_session_store_errors_total`:                                     0,
		`sessiongate_session_lock_wait_seconds_count`:                                4, // every request with the cookie, strict mode
		`sessiongate_fcgi_connections{backend="php:9000",state="busy"}`:              1,
		`sessiongate_fcgi_connections{backend="php:9000",state="idle"}`:              2,
		`sessiongate_fcgi_waiting_requests{backend="php:9000"}`:                      0,
		`sessiongate_fcgi_backend_healthy{backend="php:9000"}`:                       1,
		`sessiongate_fcgi_max_connections{backend="php:9000"}`:                       6,
		`sessiongate_http_request_duration_seconds_bucket{upstream="php",le="+Inf"}`: 6,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// Bounded labels: the 40 paths, the query strings and the session ID
	// appear nowhere; the request series are the 3 combinations used.
	n := 0
	for k := range got {
		if strings.Contains(k, "nope") || strings.Contains(k, "session=") || strings.Contains(k, strings.TrimPrefix(cookie, "sessionid=")) {
			t.Errorf("unbounded label in %s", k)
		}
		if strings.HasPrefix(k, "sessiongate_http_requests_total{") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d request series, want 3", n)
	}
	// The runtime collectors are there too.
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no go_goroutines")
	}
}

// TestMetricsWithoutSessions: SESSIONGATE_SESSIONS=off still serves the
// request metrics; the session counters stay at zero.
func TestMetricsWithoutSessions(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.php"), []byte("x"), 0o644)
	pub, admin := serveFake(t, "SESSIONGATE_PHP_FPM=php:9000", "SESSIONGATE_DOCUMENT_ROOT="+root, "SESSIONGATE_SESSIONS=off")
	res, err := http.Get(pub.URL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// The count comes after the response has gone out.
	got := metricstest.ScrapeWhen(t, admin.URL+"/metrics", `sessiongate_http_requests_total{code="200",upstream="php"}`, 1)
	if got[`sessiongate_http_requests_total{code="200",upstream="php"}`] != 1 || got[`sessiongate_session_events_total{event="load"}`] != 0 {
		t.Errorf("requests %v, loads %v", got[`sessiongate_http_requests_total{code="200",upstream="php"}`], got[`sessiongate_session_events_total{event="load"}`])
	}
}

// TestMetricsCountDjango: requests mounted on SESSIONGATE_DJANGO_PATHS are
// counted under upstream "django", upstream failures included, with no
// Django-specific code in the metrics.
func TestMetricsCountDjango(t *testing.T) {
	django := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "django")
	}))
	defer django.Close()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.php"), []byte("x"), 0o644)
	for _, tc := range []struct {
		url  string
		code string
	}{{django.URL, "200"}, {"http://127.0.0.1:1", "502"}} {
		pub, admin := serveFake(t,
			"SESSIONGATE_PHP_FPM=php:9000", "SESSIONGATE_DOCUMENT_ROOT="+root,
			"SESSIONGATE_SESSION_KEYS=metrics-test-key-0123456789abcdef0123456789",
			"SESSIONGATE_DJANGO_URL="+tc.url, "SESSIONGATE_DJANGO_PATHS=/admin/")
		for i := 0; i < 2; i++ {
			res, err := http.Get(pub.URL + "/admin/login/")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		name := `sessiongate_http_requests_total{code="` + tc.code + `",upstream="django"}`
		// The counter and the histogram are two observations of the
		// request's end: each is waited for.
		metricstest.ScrapeWhen(t, admin.URL+"/metrics", name, 2)
		got := metricstest.ScrapeWhen(t, admin.URL+"/metrics", `sessiongate_http_request_duration_seconds_count{upstream="django"}`, 2)
		if got[name] != 2 || got[`sessiongate_http_request_duration_seconds_count{upstream="django"}`] != 2 {
			t.Errorf("Django at %s: %s = %v, duration count %v; want 2 and 2", tc.url, name, got[name], got[`sessiongate_http_request_duration_seconds_count{upstream="django"}`])
		}
	}
}

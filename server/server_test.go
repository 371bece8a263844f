package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

func TestClientOf(t *testing.T) {
	trusted := config.Prefixes{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	tests := []struct {
		name    string
		peer    string
		xff     []string
		proto   []string
		tls     bool
		trusted config.Prefixes
		want    string
		https   bool
		via     bool
	}{
		{name: "no trusted proxies", peer: "1.2.3.4:5", xff: []string{"9.9.9.9"}, proto: []string{"https"}, want: "1.2.3.4:5"},
		{name: "untrusted peer ignored", peer: "1.2.3.4:5", xff: []string{"9.9.9.9"}, proto: []string{"https"}, trusted: trusted, want: "1.2.3.4:5"},
		{name: "trusted peer, no header", peer: "10.0.0.1:5", trusted: trusted, want: "10.0.0.1:5", via: true},
		{name: "trusted peer, one hop", peer: "10.0.0.1:5", xff: []string{"9.9.9.9"}, trusted: trusted, want: "9.9.9.9:0", via: true},
		{name: "rightmost untrusted wins over forged left", peer: "10.0.0.1:5", xff: []string{"6.6.6.6, 9.9.9.9"}, trusted: trusted, want: "9.9.9.9:0", via: true},
		{name: "skip trusted hops", peer: "10.0.0.1:5", xff: []string{"6.6.6.6, 9.9.9.9, 10.1.1.1, 10.2.2.2"}, trusted: trusted, want: "9.9.9.9:0", via: true},
		{name: "several header lines", peer: "10.0.0.1:5", xff: []string{"6.6.6.6", "9.9.9.9, 10.1.1.1"}, trusted: trusted, want: "9.9.9.9:0", via: true},
		{name: "all trusted: leftmost", peer: "10.0.0.1:5", xff: []string{"10.3.3.3, 10.2.2.2"}, trusted: trusted, want: "10.3.3.3:0", via: true},
		{name: "garbage stops the walk", peer: "10.0.0.1:5", xff: []string{"9.9.9.9, nonsense, 10.2.2.2"}, trusted: trusted, want: "10.2.2.2:0", via: true},
		{name: "garbage at the right end", peer: "10.0.0.1:5", xff: []string{"9.9.9.9, <script>"}, trusted: trusted, want: "10.0.0.1:5", via: true},
		{name: "ipv6 forms", peer: "[2001:db8::1]:443", xff: []string{"[2001:db9::5]:1234"}, trusted: trusted, want: "[2001:db9::5]:0", via: true},
		{name: "bare ipv6", peer: "10.0.0.1:5", xff: []string{"2001:db9::7"}, trusted: trusted, want: "[2001:db9::7]:0", via: true},
		{name: "ip:port entry", peer: "10.0.0.1:5", xff: []string{"9.9.9.9:4711"}, trusted: trusted, want: "9.9.9.9:0", via: true},
		{name: "mapped peer", peer: "[::ffff:10.0.0.1]:5", xff: []string{"9.9.9.9"}, trusted: trusted, want: "9.9.9.9:0", via: true},
		{name: "zone refused", peer: "10.0.0.1:5", xff: []string{"fe80::1%eth0"}, trusted: trusted, want: "10.0.0.1:5", via: true},
		{name: "empty entries", peer: "10.0.0.1:5", xff: []string{"9.9.9.9,,"}, trusted: trusted, want: "10.0.0.1:5", via: true},
		{name: "empty entry starting a line", peer: "10.0.0.1:5", xff: []string{"9.9.9.9", ", 10.2.2.2"}, trusted: trusted, want: "10.2.2.2:0", via: true},
		{name: "proto https from trusted", peer: "10.0.0.1:5", proto: []string{"https"}, trusted: trusted, want: "10.0.0.1:5", https: true, via: true},
		{name: "proto rightmost value", peer: "10.0.0.1:5", proto: []string{"https, http"}, trusted: trusted, want: "10.0.0.1:5", via: true},
		{name: "proto case", peer: "10.0.0.1:5", proto: []string{"HTTPS"}, trusted: trusted, want: "10.0.0.1:5", https: true, via: true},
		{name: "proto from untrusted ignored", peer: "1.2.3.4:5", proto: []string{"https"}, trusted: trusted, want: "1.2.3.4:5"},
		{name: "tls is https", peer: "1.2.3.4:5", tls: true, trusted: trusted, want: "1.2.3.4:5", https: true},
		// A load balancer that re-encrypts to the gateway's TLS listener
		// says which scheme its client used: http there is not HTTPS.
		{name: "trusted proxy over tls, client used http", peer: "10.0.0.1:5", proto: []string{"http"}, tls: true, trusted: trusted, want: "10.0.0.1:5", via: true},
		{name: "trusted proxy over tls, no proto", peer: "10.0.0.1:5", tls: true, trusted: trusted, want: "10.0.0.1:5", https: true, via: true},
		{name: "untrusted peer over tls says http", peer: "1.2.3.4:5", proto: []string{"http"}, tls: true, trusted: trusted, want: "1.2.3.4:5", https: true},
		{name: "unparsable peer", peer: "@", xff: []string{"9.9.9.9"}, trusted: trusted, want: "@"},
		{name: "link-local peer with its zone", peer: "[fe80::1%eth0]:5", xff: []string{"9.9.9.9"}, trusted: config.Prefixes{netip.MustParsePrefix("fe80::/10")}, want: "9.9.9.9:0", via: true},
		// The zone says which interface, and PHP refuses an address
		// with one (filter_var, inet_pton); nginx's $remote_addr has none.
		{name: "link-local client: its zone goes", peer: "[fe80::1%eth0]:5", want: "[fe80::1]:5"},
		{name: "link-local client of untrusted: its zone goes", peer: "[fe80::1%eth0]:5", xff: []string{"9.9.9.9"}, trusted: trusted, want: "[fe80::1]:5"},
		{name: "link-local trusted proxy, no header: its zone goes", peer: "[fe80::1%eth0]:5", trusted: config.Prefixes{netip.MustParsePrefix("fe80::/10")}, want: "[fe80::1]:5", via: true},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.peer
		if tt.xff != nil {
			r.Header["X-Forwarded-For"] = tt.xff
		}
		if tt.proto != nil {
			r.Header["X-Forwarded-Proto"] = tt.proto
		}
		if tt.tls {
			r.TLS = &tls.ConnectionState{}
		}
		got, https, via := clientOf(r, tt.trusted)
		if got != tt.want || https != tt.https || via != tt.via {
			t.Errorf("%s: clientOf = %q https=%v via=%v, want %q https=%v via=%v", tt.name, got, https, via, tt.want, tt.https, tt.via)
		}
	}
}

// fakePHP stands in for the fcgi transport: it records what the server
// hands over and answers with respond.
type fakePHP struct {
	mu      sync.Mutex
	reqs    []*http.Request
	scripts []fcgi.Script
	pingErr error
	respond func(*http.Request) (*http.Response, error)
}

func (f *fakePHP) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	if s := fcgi.ScriptFrom(r.Context()); s != nil {
		f.scripts = append(f.scripts, *s)
	}
	f.mu.Unlock()
	if f.respond != nil {
		return f.respond(r)
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: io.NopCloser(strings.NewReader("php")), Request: r}, nil
}
func (f *fakePHP) Ping(context.Context) error { return f.pingErr }
func (f *fakePHP) Close() error               { return nil }
func (f *fakePHP) calls() int                 { f.mu.Lock(); defer f.mu.Unlock(); return len(f.reqs) }

type env struct {
	srv  *Server
	php  *fakePHP
	logs *testlog.Buffer
	root string
}

func newEnv(t *testing.T, mod func(*config.Config), opts ...Option) *env {
	t.Helper()
	root := t.TempDir()
	for name, body := range map[string]string{
		"index.php": "<?php", "hello.php": "<?php", "style.css": "body{color:red}", "notes.txt": "<?php echo 1;",
		"blob": "\x00\x01binary", "page.html": "<p>hi</p>", "dir/index.php": "<?php",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:1", "SESSIONGATE_DOCUMENT_ROOT=/srv/site", "SESSIONGATE_STATIC_ROOT=" + root, "SESSIONGATE_SESSIONS=off"})
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(cfg)
	}
	php := &fakePHP{}
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	s, err := New(cfg, logger, append([]Option{WithPHPBackend(php)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &env{srv: s, php: php, logs: logs, root: root}
}

func (e *env) do(r *http.Request) *httptest.ResponseRecorder {
	w, _ := e.serve(r)
	return w
}

// serve is do that also reports whether the handler aborted the response
// (panic(http.ErrAbortHandler)), which net/http recovers, closing the
// connection without sending what was not yet sent. Any other panic goes
// on, as a bug.
func (e *env) serve(r *http.Request) (w *httptest.ResponseRecorder, aborted bool) {
	w = httptest.NewRecorder()
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			aborted = true
		}
	}()
	e.srv.Handler().ServeHTTP(w, r)
	return w, false
}

// runPHP sends GET target and returns the script PHP ran for it; when the
// answer is not a 200 from exactly one PHP run it reports that and returns
// false.
func (e *env) runPHP(t *testing.T, target string) (fcgi.Script, bool) {
	t.Helper()
	before := len(e.php.scripts)
	w := e.do(httptest.NewRequest("GET", target, nil))
	if w.Code != http.StatusOK || len(e.php.scripts) != before+1 {
		t.Errorf("%s: %d %q, want 200 from PHP", target, w.Code, w.Body)
		return fcgi.Script{}, false
	}
	return e.php.scripts[before], true
}

func (e *env) lastLog(t *testing.T) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(e.logs.String()), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("log line %q: %v", lines[len(lines)-1], err)
	}
	return m
}

func TestStatic(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(httptest.NewRequest("GET", "/style.css", nil))
	if w.Code != 200 || w.Body.String() != "body{color:red}" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Fatalf("GET /style.css: %d %q %v", w.Code, w.Body, w.Header())
	}
	etag := w.Header().Get("ETag")
	if !strings.HasPrefix(etag, `"`) || w.Header().Get("Last-Modified") == "" {
		t.Errorf("validators: ETag %q Last-Modified %q", etag, w.Header().Get("Last-Modified"))
	}

	r := httptest.NewRequest("GET", "/style.css", nil)
	r.Header.Set("If-None-Match", etag)
	if w := e.do(r); w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d %q", w.Code, w.Body)
	}
	r = httptest.NewRequest("GET", "/style.css", nil)
	r.Header.Set("If-Modified-Since", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	if w := e.do(r); w.Code != 304 {
		t.Errorf("If-Modified-Since: %d", w.Code)
	}
	r = httptest.NewRequest("GET", "/style.css", nil)
	r.Header.Set("Range", "bytes=5-9")
	if w := e.do(r); w.Code != 206 || w.Body.String() != "color" || w.Header().Get("Content-Range") != "bytes 5-9/15" {
		t.Errorf("Range: %d %q %q", w.Code, w.Body, w.Header().Get("Content-Range"))
	}
	if w := e.do(httptest.NewRequest("HEAD", "/style.css", nil)); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "15" {
		t.Errorf("HEAD: %d %q %v", w.Code, w.Body, w.Header())
	}
	if w := e.do(httptest.NewRequest("POST", "/style.css", strings.NewReader("x"))); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", w.Code, w.Header())
	}
	// Unknown extension: not sniffed.
	if w := e.do(httptest.NewRequest("GET", "/blob", nil)); w.Header().Get("Content-Type") != "application/octet-stream" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("blob: %v", w.Header())
	}
	// A .txt holding PHP code is data.
	if w := e.do(httptest.NewRequest("GET", "/notes.txt", nil)); w.Body.String() != "<?php echo 1;" {
		t.Errorf("notes.txt: %q", w.Body)
	}
	if e.php.calls() != 0 {
		t.Errorf("static requests reached PHP %d times", e.php.calls())
	}
	log := e.lastLog(t)
	if log["upstream"] != "static" || log["msg"] != "request" {
		t.Errorf("log: %v", log)
	}
}

// TestStaticLikeNginx: what a site that drops nginx sees on its static
// files, where the gateway used to differ.
func TestStaticLikeNginx(t *testing.T) {
	e := newEnv(t, nil)
	etag := e.do(httptest.NewRequest("GET", "/style.css", nil)).Header().Get("ETag")
	tests := []struct {
		name   string
		path   string
		header []string
		code   int
		body   string
		ctype  string
	}{
		// Resuming a download with the validator the server gave (browsers
		// send the ETag in If-Range): the rest, not the whole file again.
		{"If-Range with our ETag", "/style.css", []string{"Range", "bytes=5-9", "If-Range", etag}, 206, "color", ""},
		{"If-Range with another ETag", "/style.css", []string{"Range", "bytes=5-9", "If-Range", `"other"`}, 200, "body{color:red}", ""},
		{"If-Match with our ETag", "/style.css", []string{"If-Match", etag}, 200, "body{color:red}", ""},
		// A range unit is case-insensitive, and one the server does not
		// know is ignored (RFC 9110 14.2), as nginx does.
		{"range unit case", "/style.css", []string{"Range", "Bytes=5-9"}, 206, "color", ""},
		{"unknown range unit", "/style.css", []string{"Range", "items=0-1"}, 200, "body{color:red}", ""},
		// A suffix of zero bytes selects nothing (RFC 9110 14.1.1): 416
		// like nginx, not an empty 206 with an impossible Content-Range;
		// next to a satisfiable range it is left out.
		{"zero suffix", "/style.css", []string{"Range", "bytes=-0"}, 416, "invalid range: failed to overlap\n", ""},
		{"zero suffix and a range", "/style.css", []string{"Range", "bytes=-0, 5-9"}, 206, "color", ""},
		// A Range that does not parse (or whose last byte precedes its
		// first) gets 416 too, and it says how long the file is, as for
		// one past the end (RFC 9110 15.5.17), as nginx does.
		{"range not a number", "/style.css", []string{"Range", "bytes=abc"}, 416, "invalid range\n", ""},
		{"range ending before it starts", "/style.css", []string{"Range", "bytes=9-5"}, 416, "invalid range\n", ""},
		{"range without positions", "/style.css", []string{"Range", "bytes=-"}, 416, "invalid range\n", ""},
		{"a bad range among good ones", "/style.css", []string{"Range", "bytes=0-1,x"}, 416, "invalid range\n", ""},
		// No charset the gateway cannot know: a file's own <meta charset>
		// or @charset decides, as behind nginx.
		{"html type", "/page.html", nil, 200, "<p>hi</p>", "text/html"},
		{"css type", "/style.css", nil, 200, "body{color:red}", "text/css"},
		{"txt type", "/notes.txt", nil, 200, "<?php echo 1;", "text/plain"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.path, nil)
		for i := 0; i+1 < len(tt.header); i += 2 {
			r.Header.Set(tt.header[i], tt.header[i+1])
		}
		w := e.do(r)
		if w.Code != tt.code || w.Body.String() != tt.body || (tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype) {
			t.Errorf("%s: %d %q %q, want %d %q %q", tt.name, w.Code, w.Body, w.Header().Get("Content-Type"), tt.code, tt.body, tt.ctype)
		}
		if w.Code == http.StatusRequestedRangeNotSatisfiable && w.Header().Get("Content-Range") != "bytes */15" {
			t.Errorf("%s: Content-Range %q, want bytes */15", tt.name, w.Header().Get("Content-Range"))
		}
	}
}

// rawGet sends GET target on a connection of its own, so that the test
// decides when (and whether) the response is read; the connection is closed
// at the end of the test if the test did not close it.
func rawGet(t *testing.T, srv *httptest.Server, target string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStaticClientGoneIs499: a client that leaves in the middle of a
// static download is logged (and observed) as 499, not as a 200.
func TestStaticClientGoneIs499(t *testing.T) {
	var o observations
	e := newEnv(t, nil, WithObserver(o.observe))
	// Far more than the socket buffers hold, so the server is still
	// sending when the client goes.
	if err := os.WriteFile(filepath.Join(e.root, "big.bin"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(e.root, "big.bin"), 64<<20); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	c := rawGet(t, srv, "/big.bin")
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	c.Close() // unread data: the kernel resets the connection
	var got []observed
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = o.all(); len(got) > 0 {
			break
		}
	}
	if len(got) != 1 || got[0].upstream != "static" || got[0].status != 499 {
		t.Errorf("observations %+v, want one static 499", got)
	}
	if log := e.lastLog(t); log["status"] != float64(499) || log["upstream"] != "static" {
		t.Errorf("log: %v", log)
	}
}

// TestFinalStatusClientGone: a write the client's connection refused is a
// client that left (499), even before net/http has cancelled the request's
// context; other write errors keep the status.
func TestFinalStatusClientGone(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, 499},
		{"reset during sendfile", &net.OpError{Op: "readfrom", Net: "tcp", Err: os.NewSyscallError("sendfile", syscall.ECONNRESET)}, 499},
		{"body not allowed", http.ErrBodyNotAllowed, 200},
		{"write timeout", &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}, 200},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil) // context still live
		rec := &recorder{status: 200, writeErr: tt.err}
		if got := finalStatus(r, &RequestInfo{}, rec, false); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}

	// Nothing written: 499 when the client left meanwhile (a session lock
	// wait it gave up on), net/http's 200 when it is still there, and a
	// layer's own status wins.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		ri   RequestInfo
		want int
	}{
		{"nothing written, client gone", gone, RequestInfo{}, 499},
		{"nothing written, client there", context.Background(), RequestInfo{}, 200},
		{"nothing written, status set by a layer", gone, RequestInfo{Status: 503}, 503},
	} {
		r := httptest.NewRequest("GET", "/", nil).WithContext(tt.ctx)
		if got := finalStatus(r, &tt.ri, &recorder{}, false); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPHPRequest(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.0/8")}
	})
	r := httptest.NewRequest("GET", "/hello.php/extra/p?a=1;b=%zz&c", nil)
	r.RemoteAddr = "192.0.2.7:4242"
	r.Header.Set("X-Forwarded-For", "6.6.6.6")
	r.Header.Set("X-Forwarded-Proto", "https")
	w := e.do(r)
	if w.Code != 200 || w.Body.String() != "php" {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
	got := e.php.scripts[0]
	want := fcgi.Script{DocumentRoot: "/srv/site", ScriptName: "/hello.php", PathInfo: "/extra/p",
		RequestURI: "/hello.php/extra/p?a=1;b=%zz&c", DocumentURI: "/hello.php/extra/p", RemoteAddr: "192.0.2.7:4242"}
	if got.DocumentRoot != want.DocumentRoot || got.ScriptName != want.ScriptName || got.PathInfo != want.PathInfo ||
		got.RequestURI != want.RequestURI || got.DocumentURI != want.DocumentURI || got.RemoteAddr != want.RemoteAddr || got.HTTPS {
		t.Errorf("script = %+v\nwant %+v", got, want)
	}
	out := e.php.reqs[0]
	if out.URL.RawQuery != "a=1;b=%zz&c" {
		t.Errorf("query = %q", out.URL.RawQuery)
	}
	// The transport drops the client's own forwarding headers (fcgi tests
	// the params); the server tells it the client is not a trusted proxy.
	if got.ForwardedTrusted {
		t.Errorf("untrusted client: ForwardedTrusted set")
	}
	if _, ok := out.Header["User-Agent"]; ok {
		t.Errorf("request without User-Agent reached PHP with one: %q", out.Header["User-Agent"])
	}

	// Through a trusted proxy: client address and scheme from the headers,
	// and the headers themselves pass.
	r = httptest.NewRequest("GET", "/blog/post?x=1", nil)
	r.RemoteAddr = "10.0.0.2:999"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.9")
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("User-Agent", "ua")
	e.do(r)
	got = e.php.scripts[1]
	if got.ScriptName != "/index.php" || got.PathInfo != "" || got.RequestURI != "/blog/post?x=1" || got.RemoteAddr != "198.51.100.9:0" || !got.HTTPS || got.DocumentURI != "/index.php" {
		t.Errorf("front controller script = %+v", got)
	}
	if !got.ForwardedTrusted {
		t.Errorf("trusted proxy: ForwardedTrusted not set")
	}
	if out := e.php.reqs[1]; out.Header.Get("X-Forwarded-For") != "6.6.6.6, 198.51.100.9" || out.Header.Get("User-Agent") != "ua" {
		t.Errorf("trusted headers: %v", out.Header)
	}
	log := e.lastLog(t)
	if log["remote"] != "198.51.100.9:0" || log["upstream"] != "php" || log["status"] != float64(200) || log["bytes"] != float64(3) {
		t.Errorf("log: %v", log)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, nil)
	for path, code := range map[string]int{
		"/missing.php": 404, "/.env": 404, "/%2e%2e/etc/passwd": 400, "/a%0ab": 400, "/dir": 301,
	} {
		if w := e.do(httptest.NewRequest("GET", path, nil)); w.Code != code {
			t.Errorf("%s: %d, want %d", path, w.Code, code)
		}
	}
	r := httptest.NewRequest("GET", "/dir?x=1", nil)
	if w := e.do(r); w.Header().Get("Location") != "/dir/?x=1" {
		t.Errorf("redirect Location %q", w.Header().Get("Location"))
	}
	if e.php.calls() != 0 {
		t.Errorf("refused requests reached PHP")
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxBody = 10 })
	r := httptest.NewRequest("POST", "/hello.php", strings.NewReader(strings.Repeat("x", 11)))
	w := e.do(r)
	if w.Code != 413 || e.php.calls() != 0 {
		t.Errorf("over limit: %d, php calls %d", w.Code, e.php.calls())
	}
	r = httptest.NewRequest("POST", "/hello.php", strings.NewReader(strings.Repeat("x", 10)))
	if w := e.do(r); w.Code != 200 {
		t.Errorf("at limit: %d", w.Code)
	}
}

func TestUpstreamErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return nil, &fcgi.Error{Status: 504, Op: "read response header", Backend: "127.0.0.1:1", Err: errors.New("i/o timeout")}
	}
	w := e.do(httptest.NewRequest("GET", "/hello.php", nil))
	if w.Code != 504 {
		t.Errorf("timeout: %d", w.Code)
	}
	log := e.lastLog(t)
	if log["status"] != float64(504) || !strings.Contains(log["error"].(string), "i/o timeout") {
		t.Errorf("log: %v", log)
	}

	// The client left: nothing written, the response aborted rather than
	// left to net/http's 200, 499 logged.
	ctx, cancel := context.WithCancel(context.Background())
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		cancel()
		return nil, context.Canceled
	}
	w, aborted := e.serve(httptest.NewRequest("GET", "/hello.php", nil).WithContext(ctx))
	if w.Body.Len() != 0 || !aborted {
		t.Errorf("wrote %q to a client that left (aborted %v)", w.Body, aborted)
	}
	if log := e.lastLog(t); log["status"] != float64(499) {
		t.Errorf("log: %v", log)
	}

	// A body cut short after the header: logged with the error, never a
	// clean line.
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		body := io.MultiReader(strings.NewReader("partial"), errReader{&fcgi.Error{Status: 502, Op: "read response body", Err: io.ErrUnexpectedEOF}})
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(body), Request: r}, nil
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/hello.php")
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	if err == nil {
		t.Error("a cut PHP body reached the client as a complete response")
	}
	// The log line is written as the server's handler unwinds, maybe after
	// the client saw the cut.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if log = e.lastLog(t); log["aborted"] == true {
			break
		}
	}
	if log["status"] != float64(502) || log["aborted"] != true || !strings.Contains(log["error"].(string), "unexpected EOF") {
		t.Errorf("log: %v", log)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestAccessLogOff(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.AccessLog = false })
	e.do(httptest.NewRequest("GET", "/style.css", nil))
	if e.logs.String() != "" {
		t.Errorf("access log off, but: %s", e.logs)
	}
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return nil, &fcgi.Error{Status: 502, Op: "dial", Err: errors.New("connection refused")}
	}
	e.do(httptest.NewRequest("GET", "/hello.php", nil))
	// A backend failure: an error (TestBackendFailureLoggedAtError).
	if log := e.lastLog(t); log["level"] != "ERROR" || log["status"] != float64(502) {
		t.Errorf("failed request not logged once at error: %v", log)
	}
}

// SESSIONGATE_LOG_LEVEL=warn keeps warnings and errors. A request that
// failed (a 502 because php-fpm is down) is one of them whether the access
// log is on or off: turning the access log on must not hide it.
func TestFailedRequestLoggedAtWarnWithAccessLogOn(t *testing.T) {
	e := newEnv(t, nil)
	if !e.srv.cfg.AccessLog {
		t.Fatal("the access log is on by default")
	}
	e.srv.log = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.do(httptest.NewRequest("GET", "/style.css", nil))
	if e.logs.String() != "" {
		t.Errorf("a served request logged at warn: %s", e.logs)
	}
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return nil, &fcgi.Error{Status: 502, Op: "dial", Err: errors.New("connection refused")}
	}
	e.do(httptest.NewRequest("GET", "/hello.php", nil))
	if e.logs.String() == "" {
		t.Fatal("a 502 left no log line with SESSIONGATE_LOG_LEVEL=warn and the access log on")
	}
	if log := e.lastLog(t); log["level"] != "ERROR" || log["status"] != float64(502) {
		t.Errorf("backend failure not logged at error: %v", log)
	}
}

// SESSIONGATE_LOG_LEVEL=error keeps what nginx's error_log keeps at that
// level: a backend that could not be reached (502) or did not answer in
// time (504). Logged at warn, a php-fpm that was down left no line at
// all. A client that left (499) stays a warning, as do the gateway's own
// refusals.
func TestBackendFailureLoggedAtError(t *testing.T) {
	for _, c := range []struct {
		err   *fcgi.Error
		level string
	}{
		{&fcgi.Error{Status: 502, Op: "dial", Err: errors.New("connection refused")}, "ERROR"},
		{&fcgi.Error{Status: 504, Op: "read", Err: errors.New("timeout")}, "ERROR"},
	} {
		e := newEnv(t, nil)
		e.srv.log = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelError}))
		e.php.respond = func(r *http.Request) (*http.Response, error) { return nil, c.err }
		e.do(httptest.NewRequest("GET", "/hello.php", nil))
		if e.logs.String() == "" {
			t.Errorf("%d: no line with SESSIONGATE_LOG_LEVEL=error", c.err.Status)
			continue
		}
		if log := e.lastLog(t); log["level"] != c.level || log["status"] != float64(c.err.Status) {
			t.Errorf("%d logged as %v", c.err.Status, log)
		}
	}
	e := newEnv(t, func(c *config.Config) { c.RateLimitSpecs = []string{"/hello.php 1r/m"} })
	e.srv.log = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelError}))
	for range 3 {
		e.do(httptest.NewRequest("GET", "/hello.php", nil))
	}
	if e.logs.String() != "" {
		t.Errorf("the gateway's own refusals (429) logged at error: %s", e.logs)
	}
}

func TestWrapAndMounts(t *testing.T) {
	var seen []string
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := fcgi.ScriptFrom(r.Context())
			seen = append(seen, "wrap:"+s.ScriptName+":"+Info(r.Context()).RemoteAddr)
			s.Extra = append(s.Extra, fcgi.Param{Name: "SESSIONGATE_X", Value: "1"})
			next.ServeHTTP(w, r)
		})
	}
	mountH := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = append(seen, name+":"+r.URL.Path)
			io.WriteString(w, name)
		})
	}
	e := newEnv(t, nil, WithWrapPHP(wrap),
		WithMount("django", []string{"/admin/", "/accounts/"}, mountH("django")),
		WithMount("other", []string{"/admin/special/"}, mountH("other")))
	r := httptest.NewRequest("GET", "/hello.php", nil)
	r.RemoteAddr = "192.0.2.1:1"
	e.do(r)
	e.do(httptest.NewRequest("GET", "/admin/login/", nil))
	e.do(httptest.NewRequest("GET", "/admin/special/x", nil))
	if log := e.lastLog(t); log["upstream"] != "other" {
		t.Errorf("log upstream: %v", log["upstream"])
	}
	e.do(httptest.NewRequest("GET", "/style.css", nil))
	want := []string{"wrap:/hello.php:192.0.2.1:1", "django:/admin/login/", "other:/admin/special/x"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("seen %v, want %v", seen, want)
	}
	if len(e.php.scripts) != 1 || len(e.php.scripts[0].Extra) != 1 {
		t.Errorf("wrapper's params did not reach the transport: %+v", e.php.scripts)
	}
}

// Mounts are chosen on the path as nginx normalises it for its locations
// (duplicate slashes merged, dot segments resolved), so "//admin/" cannot
// reach PHP's /admin/ and "/admin/../x.php" cannot reach Django. The
// request itself goes out unchanged, as with nginx's proxy_pass without a
// URI.
func TestMountsMatchTheNormalisedPath(t *testing.T) {
	var seen []string
	e := newEnv(t, nil, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, "django:"+r.URL.Path)
	})))
	for _, target := range []string{"//admin/", "/./admin/login/", "/x/../admin/", "/admin/../hello.php", "/admin//"} {
		e.do(httptest.NewRequest("GET", target, nil))
	}
	want := []string{"django://admin/", "django:/./admin/login/", "django:/x/../admin/", "django:/admin//"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("to Django: %v, want %v", seen, want)
	}
	if len(e.php.scripts) != 1 || e.php.scripts[0].ScriptName != "/hello.php" {
		t.Errorf("to PHP: %+v, want /hello.php", e.php.scripts)
	}
}

// A NUL byte in the path (%00) gets 400 before a mount, as nginx refuses
// it in any URI and the PHP side refuses control characters: it reached
// Django, whose file-serving views take the path to the file system.
func TestMountRefusesNUL(t *testing.T) {
	var seen []string
	e := newEnv(t, nil, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path)
	})))
	for _, target := range []string{"/admin/a%00b", "/admin/%00", "/admin/x?q=%00"} {
		w := e.do(httptest.NewRequest("GET", target, nil))
		want := http.StatusBadRequest
		if strings.Contains(target, "?") {
			want = http.StatusOK // the query is the app's to read
		}
		if w.Code != want {
			t.Errorf("%s: %d, want %d", target, w.Code, want)
		}
	}
	if len(seen) != 1 || seen[0] != "/admin/x" {
		t.Errorf("reached Django: %q, want only /admin/x", seen)
	}
}

// A mounted prefix requested without its trailing slash ("/admin" for
// "/admin/") is redirected to it, as nginx does for a proxy_pass location
// ending in a slash: people type example.com/admin, and the PHP front
// controller (whose 404 they would get) knows nothing of Django's admin.
func TestMountWithoutSlashRedirects(t *testing.T) {
	var seen []string
	e := newEnv(t, nil, WithMount("django", []string{"/admin/", "/static/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path)
	})))
	for target, loc := range map[string]string{
		"/admin":               "/admin/",
		"/admin?next=/x":       "/admin/?next=/x",
		"//admin":              "/admin/",
		"/x/../static/admin":   "/static/admin/",
		"/static/admin?v=1&w=": "/static/admin/?v=1&w=",
	} {
		w := e.do(httptest.NewRequest("GET", target, nil))
		if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != loc {
			t.Errorf("%s: %d Location %q, want 301 to %q", target, w.Code, w.Header().Get("Location"), loc)
		}
	}
	if len(seen) != 0 || len(e.php.scripts) != 0 {
		t.Errorf("redirects reached an upstream: Django %v, PHP %+v", seen, e.php.scripts)
	}
	// Not a prefix without its slash: PHP as before.
	e.do(httptest.NewRequest("GET", "/administrator", nil))
	if len(e.php.scripts) != 1 || e.php.scripts[0].ScriptName != "/index.php" {
		t.Errorf("/administrator: %+v, want the front controller", e.php.scripts)
	}
}

func TestAdmin(t *testing.T) {
	var storeErr error
	e := newEnv(t, nil, WithReadyCheck("session store", func(context.Context) error { return storeErr }))
	h := e.srv.AdminHandler()
	get := func(p string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		return w
	}
	if w := get("/healthz"); w.Code != 200 {
		t.Errorf("healthz %d", w.Code)
	}
	if w := get("/readyz"); w.Code != 200 {
		t.Errorf("readyz %d %s", w.Code, w.Body)
	}
	e.php.pingErr = errors.New("dial tcp 127.0.0.1:1: connection refused")
	if w := get("/readyz"); w.Code != 503 || !strings.Contains(w.Body.String(), "php-fpm: dial tcp") {
		t.Errorf("readyz with php-fpm down: %d %s", w.Code, w.Body)
	}
	e.php.pingErr = nil
	// A check whose error names it already is not named twice.
	storeErr = errors.New("session store: unavailable: ping: connection refused")
	if w := get("/readyz"); w.Code != 503 || strings.Count(w.Body.String(), "session store") != 1 {
		t.Errorf("readyz with the store down: %d %s", w.Code, w.Body)
	}
	storeErr = nil
	e.srv.Drain()
	if w := get("/readyz"); w.Code != 503 || !strings.Contains(w.Body.String(), "shutting down") {
		t.Errorf("readyz while draining: %d %s", w.Code, w.Body)
	}
	if w := get("/healthz"); w.Code != 200 {
		t.Errorf("healthz while draining %d", w.Code)
	}
}

func TestChunkedRequestClosesConnection(t *testing.T) {
	e := newEnv(t, nil)
	r := httptest.NewRequest("POST", "/hello.php", strings.NewReader("abc"))
	r.TransferEncoding = []string{"chunked"}
	r.ContentLength = -1
	if w := e.do(r); w.Header().Get("Connection") != "close" {
		t.Errorf("chunked request: Connection %q", w.Header().Get("Connection"))
	}
}

// TestContentTypeWithoutHostTable: the common web types do not depend on
// the host's /etc/mime.types (absent from scratch images), and the host's
// table still answers the rest, without a charset.
func TestContentTypeWithoutHostTable(t *testing.T) {
	none := func(string) string { return "" }
	host := func(ext string) string {
		if ext == ".webm" {
			return "audio/webm"
		}
		if ext == ".md" {
			return "text/markdown; charset=utf-8"
		}
		return ""
	}
	for _, tt := range []struct {
		ext    string
		byHost func(string) string
		want   string
	}{
		{".txt", none, "text/plain"},
		{".ico", none, "image/x-icon"},
		{".woff2", none, "font/woff2"},
		{".CSS", none, "text/css"},
		{".js", none, "text/javascript"},
		{".webm", host, "video/webm"},
		{".md", host, "text/markdown"},
		{".md", none, "application/octet-stream"},
		{"", none, "application/octet-stream"},
	} {
		if got := contentType(tt.ext, tt.byHost); got != tt.want {
			t.Errorf("contentType(%q) = %q, want %q", tt.ext, got, tt.want)
		}
	}
}

// TestContentTypeNginxBeforeHost: an extension nginx's mime.types names
// gets nginx's type whatever the host's /etc/mime.types says. Debian's
// table (here the values it gives) made HLS segments (.ts) text, which
// browsers display and the gateway gzipped, and .svgz a type no browser
// renders; other hosts disagree again.
func TestContentTypeNginxBeforeHost(t *testing.T) {
	debian := map[string]string{
		".ts": "text/vnd.trolltech.linguist", ".svgz": "image/svg+xml-compressed", ".m3u8": "audio/x-mpegurl",
		".jar": "application/x-java-archive", ".rar": "application/vnd.rar", ".deb": "application/vnd.debian.binary-package",
		".xhtml": "application/xhtml+xml", ".md": "text/markdown",
	}
	host := func(ext string) string { return debian[ext] }
	for ext, want := range map[string]string{
		".ts": "video/mp2t", ".svgz": "image/svg+xml", ".m3u8": "application/vnd.apple.mpegurl",
		".jar": "application/java-archive", ".rar": "application/x-rar-compressed", ".deb": "application/octet-stream",
		".xhtml": "application/xhtml+xml", ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		".md": "text/markdown",
	} {
		if got := contentType(ext, host); got != want {
			t.Errorf("contentType(%q) = %q, want nginx's %q", ext, got, want)
		}
	}
}

// TestContentTypeHostNeverADocument: the host's table never gives a type
// a browser renders as a document, where scripts run: HTML, XHTML, and
// XML (text/xml, application/xml, text/xsl, any +xml type), in which
// elements of the XHTML namespace run scripts too. Debian's table names
// about a hundred extensions nginx does not know with such types (.xht,
// .rdf, .xsl, .smil, .wsdl, .xul...): an upload an app let through
// because its blacklist stops .html and .svg went out as
// application/xhtml+xml and ran its scripts on the site's origin, where
// nginx sends it as application/octet-stream, a download.
func TestContentTypeHostNeverADocument(t *testing.T) {
	debian := map[string]string{
		".xht": "application/xhtml+xml", ".rdf": "application/rdf+xml", ".xsl": "application/xslt+xml",
		".smil": "application/smil+xml", ".phtml": "text/html", ".xsd": "text/xml", ".plist": "application/xml",
		".xss": "text/xsl", ".flac": "audio/flac", ".md": "text/markdown; charset=utf-8",
	}
	host := func(ext string) string { return debian[ext] }
	for ext, want := range map[string]string{
		".xht": "application/octet-stream", ".rdf": "application/octet-stream", ".xsl": "application/octet-stream",
		".smil": "application/octet-stream", ".phtml": "application/octet-stream", ".xsd": "application/octet-stream",
		".plist": "application/octet-stream", ".xss": "application/octet-stream", ".XHT": "application/octet-stream",
		".flac": "audio/flac", ".md": "text/markdown",
	} {
		if got := contentType(ext, host); got != want {
			t.Errorf("contentType(%q) = %q, want %q", ext, got, want)
		}
	}
}

// TestPHPRequestURIAbsoluteForm: a request line in absolute form ("GET
// http://host/path?q HTTP/1.1", which HTTP/1.1 servers must accept) gives
// PHP the path and query as sent in REQUEST_URI, like nginx's
// $request_uri, not the whole URL: front controllers route on it.
func TestPHPRequestURIAbsoluteForm(t *testing.T) {
	e := newEnv(t, nil)
	for target, want := range map[string]string{
		"http://evil.example/hello.php/x%2Fy?a=1&b=%zz": "/hello.php/x%2Fy?a=1&b=%zz",
		"https://evil.example:8443/blog/post?x=1":       "/blog/post?x=1",
		"http://[2001:db8::1]:80/hello.php":             "/hello.php",
		"/hello.php?a=1":                                "/hello.php?a=1",
	} {
		s, ok := e.runPHP(t, target)
		if !ok {
			continue
		}
		if got := s.RequestURI; got != want {
			t.Errorf("%s: REQUEST_URI %q, want %q", target, got, want)
		}
	}
}

// TestCrossSiteTracing: TRACE echoes the request back, cookies included, so
// a script that can send TRACE reads HttpOnly cookies (cross-site tracing).
// nginx refuses the method with 405 before any location runs; so does the
// gateway, on every path: PHP, static files and mounted upstreams.
func TestCrossSiteTracing(t *testing.T) {
	mounted := 0
	e := newEnv(t, nil, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	for _, path := range []string{"/hello.php", "/style.css", "/admin/login/", "/nowhere"} {
		r := httptest.NewRequest("TRACE", path, nil)
		r.Header.Set("Cookie", "sessionid=secret")
		w := e.do(r)
		if w.Code != http.StatusMethodNotAllowed || strings.Contains(w.Body.String(), "secret") {
			t.Errorf("TRACE %s: %d %q, want 405 without the request echoed", path, w.Code, w.Body.String())
		}
		if log := e.lastLog(t); log["status"] != float64(405) || log["method"] != "TRACE" {
			t.Errorf("TRACE %s: access log %v", path, log)
		}
	}
	if e.php.calls() != 0 || mounted != 0 {
		t.Errorf("TRACE reached an upstream: php %d, mount %d", e.php.calls(), mounted)
	}
}

// TestConnectRefused: CONNECT asks for a tunnel, which a web server in
// front of PHP and Django does not give; nginx answers 405 before any
// location runs. It reached PHP's front controller and Django as a method
// neither expects.
func TestConnectRefused(t *testing.T) {
	mounted := 0
	e := newEnv(t, nil, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	for _, target := range []string{"example.com:443", "/hello.php", "/admin/login/"} {
		w := e.do(httptest.NewRequest("CONNECT", target, nil))
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("CONNECT %s: %d, want 405", target, w.Code)
		}
		if log := e.lastLog(t); log["status"] != float64(405) || log["method"] != "CONNECT" {
			t.Errorf("CONNECT %s: access log %v", target, log)
		}
	}
	if e.php.calls() != 0 || mounted != 0 {
		t.Errorf("CONNECT reached an upstream: php %d, mount %d", e.php.calls(), mounted)
	}
}

// TestTooManyHeaderFields: php-fpm's cost per request grows faster than the
// number of params it parses (a 640 KB request of 50,000 small headers kept
// a worker busy 0.4 s here, well within SESSIONGATE_MAX_HEADER_BYTES). Like
// Apache's LimitRequestFields and gunicorn's limit_request_fields, more than
// maxHeaderFields header lines get 431 before any upstream runs.
func TestTooManyHeaderFields(t *testing.T) {
	e := newEnv(t, nil)
	req := func(n int) *http.Request {
		r := httptest.NewRequest("GET", "/hello.php", nil)
		for i := range n {
			r.Header.Add("X-Field", strconv.Itoa(i))
		}
		return r
	}
	if w := e.do(req(maxHeaderFields)); w.Code != http.StatusOK {
		t.Fatalf("%d header lines: %d, want 200", maxHeaderFields, w.Code)
	}
	if w := e.do(req(maxHeaderFields + 1)); w.Code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("%d header lines: %d, want 431", maxHeaderFields+1, w.Code)
	}
	if log := e.lastLog(t); log["status"] != float64(431) {
		t.Errorf("access log %v", log)
	}
	if e.php.calls() != 1 {
		t.Errorf("php calls %d, want 1 (the refused request must not run)", e.php.calls())
	}
}

// TestShutdownCutIsNot499: a request still running when
// SESSIONGATE_SHUTDOWN_TIMEOUT ran out is cut by the gateway (its context
// canceled with ErrShutdownCut), not by its client: the access log and the
// metrics say 503 and why, whatever the upstream made of the cancellation.
func TestShutdownCutIsNot499(t *testing.T) {
	e := newEnv(t, nil)
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, &fcgi.Error{Status: fcgi.StatusClientClosedRequest, Op: "read response header", Err: r.Context().Err()}
	}
	base, cut := context.WithCancelCause(context.Background())
	r := httptest.NewRequest("GET", "/hello.php", nil).WithContext(base)
	go func() {
		time.Sleep(50 * time.Millisecond)
		cut(ErrShutdownCut)
	}()
	e.do(r)
	log := e.lastLog(t)
	if log["status"] != float64(503) || !strings.Contains(fmt.Sprint(log["error"]), "shutdown") {
		t.Errorf("access log %v, want 503 saying the shutdown cut it", log)
	}
}

// TestRefusalsKeepHTTP2Connection: over HTTP/2, the answers that close an
// HTTP/1 connection (413 for a body over SESSIONGATE_MAX_BODY, from the
// gateway or the PHP side, 431 for too many header lines) leave the
// connection open. HTTP/2 frames each request, so no unread body or header
// can be taken for the next request; net/http's HTTP/2 server takes a
// Connection: close header as a GOAWAY, which ends the client's
// connection for every request after the refused one.
func TestRefusalsKeepHTTP2Connection(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxBody = 10 })
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("X-Too-Large") != "" {
			return nil, &fcgi.Error{Status: http.StatusRequestEntityTooLarge, Op: "read request body", Err: errors.New("too large")}
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}
	// Over HTTP/1 they still close it: the unread body or header lines
	// must not be read as the next request.
	over := httptest.NewRequest("POST", "/hello.php", strings.NewReader(strings.Repeat("x", 11)))
	if w := e.do(over); w.Code != 413 || w.Header().Get("Connection") != "close" {
		t.Errorf("HTTP/1 413: %d Connection %q", w.Code, w.Header().Get("Connection"))
	}
	tooMany := httptest.NewRequest("GET", "/hello.php", nil)
	for i := range maxHeaderFields + 1 {
		tooMany.Header.Add("X-Field", strconv.Itoa(i))
	}
	if w := e.do(tooMany); w.Code != 431 || w.Header().Get("Connection") != "close" {
		t.Errorf("HTTP/1 431: %d Connection %q", w.Code, w.Header().Get("Connection"))
	}

	ts := httptest.NewUnstartedServer(e.srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	client := ts.Client()
	do := func(method string, body io.Reader, hdr http.Header) (int, bool) {
		t.Helper()
		var reused bool
		req, _ := http.NewRequest(method, ts.URL+"/hello.php", body)
		for k, v := range hdr {
			req.Header[k] = v
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 {
			t.Fatalf("%s over %s, want HTTP/2", method, res.Proto)
		}
		return res.StatusCode, reused
	}
	do("GET", nil, nil)
	many := http.Header{}
	for i := range maxHeaderFields + 1 {
		many.Add("X-Field", strconv.Itoa(i))
	}
	for _, c := range []struct {
		name   string
		method string
		body   io.Reader
		hdr    http.Header
		want   int
	}{
		{"Content-Length over the limit", "POST", strings.NewReader(strings.Repeat("x", 11)), nil, 413},
		{"PHP side's 413", "POST", strings.NewReader("x"), http.Header{"X-Too-Large": {"1"}}, 413},
		{"too many header lines", "GET", nil, many, 431},
	} {
		if st, _ := do(c.method, c.body, c.hdr); st != c.want {
			t.Errorf("%s: %d, want %d", c.name, st, c.want)
		}
		// The GOAWAY, if any, reaches the client just after the answer.
		time.Sleep(50 * time.Millisecond)
		if _, reused := do("GET", nil, nil); !reused {
			t.Errorf("%s: the HTTP/2 connection was closed (GOAWAY)", c.name)
			do("GET", nil, nil)
		}
	}
}

// TestBodyOverTheLimitIsTheGatewaysWhateverItsFraming: a body over
// SESSIONGATE_MAX_BODY is logged and counted under upstream "gateway",
// whether its Content-Length is refused before routing or a chunked body
// passes the limit on its way to PHP (the FastCGI transport's 413), which
// was logged under "php" though PHP never answered.
func TestBodyOverTheLimitIsTheGatewaysWhateverItsFraming(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxBody = 10 })
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		if _, err := io.ReadAll(r.Body); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, &fcgi.Error{Status: http.StatusRequestEntityTooLarge, Op: "read request body", Err: err}
			}
			return nil, err
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}
	for _, chunked := range []bool{false, true} {
		r := httptest.NewRequest("POST", "/hello.php", strings.NewReader(strings.Repeat("x", 11)))
		if chunked {
			r.ContentLength = -1
			r.Body = io.NopCloser(r.Body)
		}
		if w := e.do(r); w.Code != 413 {
			t.Fatalf("chunked %v: %d, want 413", chunked, w.Code)
		}
		if log := e.lastLog(t); log["upstream"] != "gateway" || log["status"] != float64(413) {
			t.Errorf("chunked %v: access log upstream %v status %v, want gateway 413", chunked, log["upstream"], log["status"])
		}
	}
	if w := e.do(httptest.NewRequest("POST", "/hello.php", strings.NewReader("x"))); w.Code != 200 {
		t.Fatalf("a body within the limit: %d", w.Code)
	}
	if log := e.lastLog(t); log["upstream"] != "php" {
		t.Errorf("a body within the limit: access log upstream %v, want php", log["upstream"])
	}
}

// TestIfModifiedSinceAsNginxReadsIt: dates with old Internet Explorer's
// "; length=N" or "UTC" for "GMT" are read, as nginx reads them, so the
// client gets 304 rather than the whole file again; a date in another zone
// or no date at all is still ignored.
func TestIfModifiedSinceAsNginxReadsIt(t *testing.T) {
	e := newEnv(t, nil)
	later := time.Now().Add(time.Hour).UTC()
	fixdate := later.Format(http.TimeFormat)
	for value, want := range map[string]int{
		fixdate + "; length=15":                        304,
		strings.TrimSuffix(fixdate, "GMT") + "UTC":     304,
		strings.TrimSuffix(fixdate, "GMT") + "UTC;x=1": 304,
		later.Format(time.RFC850) + "; length=15":      304,
		strings.TrimSuffix(fixdate, "GMT") + "+0100":   200,
		"garbage; length=15":                           200,
	} {
		r := httptest.NewRequest("GET", "/style.css", nil)
		r.Header.Set("If-Modified-Since", value)
		if w := e.do(r); w.Code != want {
			t.Errorf("If-Modified-Since: %s: %d, want %d", value, w.Code, want)
		}
	}
}

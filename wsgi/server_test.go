package wsgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/server"
)

// noPHP is a PHP backend that must never be used.
type noPHP struct{}

func (noPHP) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("no PHP here") }
func (noPHP) Ping(context.Context) error                      { return nil }
func (noPHP) Close() error                                    { return nil }

// behindServer mounts e's proxy on /admin/ and /accounts/ of a
// server.Server, as app.Build does, configured with env on top of the
// essentials, and serves it; the access log goes to logs.
func behindServer(t *testing.T, e *env, logs io.Writer, env ...string) *httptest.Server {
	t.Helper()
	cfg, err := config.Load(append([]string{
		"SESSIONGATE_PHP_FPM=127.0.0.1:9",
		"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSION_KEYS=" + testSecret,
	}, env...))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.NewJSONHandler(logs, nil)), server.WithPHPBackend(noPHP{}),
		server.WithMount("django", []string{"/admin/", "/accounts/"}, e.proxy))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	front := httptest.NewServer(srv.Handler())
	t.Cleanup(front.Close)
	return front
}

// TestBehindServer mounts the proxy in server.Server, as app.Build does: the
// client address and scheme come from the trusted-proxy processing, and the
// access log carries the upstream error once.
func TestBehindServer(t *testing.T) {
	e := newEnv(t, envOpts{})
	logs := &testlog.Buffer{}
	front := behindServer(t, e, logs, "SESSIONGATE_TRUSTED_PROXIES=127.0.0.1", "SESSIONGATE_MAX_BODY=1k")

	req, _ := http.NewRequest("GET", front.URL+"/admin/", nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Host = "www.example.org"
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	s := e.app.seen()
	if got := s.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "203.0.113.9" {
		t.Errorf("X-Forwarded-For %q, want the client the trusted proxy saw", got)
	}
	if s.Header.Get("X-Forwarded-Proto") != "https" || s.Host != "www.example.org" || s.Header.Get("X-Forwarded-Host") != "www.example.org" {
		t.Errorf("proto %q host %q fwd host %q", s.Header.Get("X-Forwarded-Proto"), s.Host, s.Header.Get("X-Forwarded-Host"))
	}

	// A chunked body over SESSIONGATE_MAX_BODY is refused with 413 as soon
	// as it passes the limit, though Django already had the headers.
	big := strings.Repeat("x", 4096)
	req, _ = http.NewRequest("POST", front.URL+"/accounts/upload/", io.NopCloser(strings.NewReader(big)))
	req.ContentLength = -1 // chunked: the limit is met while streaming
	res, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over MAX_BODY: %d, want 413", res.StatusCode)
	}
	// The gateway's refusal, as a Content-Length over the limit is (it
	// was logged under "django", which never answered).
	var upload string
	for deadline := time.Now().Add(5 * time.Second); upload == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `"path":"/accounts/upload/"`) {
				upload = l
			}
		}
	}
	if !strings.Contains(upload, `"status":413`) || !strings.Contains(upload, `"upstream":"gateway"`) {
		t.Errorf("access log of the chunked body over MAX_BODY: %s", upload)
	}

	// The upstream error is in the access log line, once.
	// (under the app's lock: the upload's handler may still be running)
	e.app.mu.Lock()
	e.app.handle = func(w http.ResponseWriter, r *http.Request, s seen) (answer, bool) { panic(http.ErrAbortHandler) }
	e.app.mu.Unlock()
	res, err = noRedirect.Get(front.URL + "/accounts/x/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 502 {
		t.Fatalf("status %d", res.StatusCode)
	}
	// The access line is written once the response is out: the client
	// may have it first.
	var lines int
	for deadline := time.Now().Add(5 * time.Second); lines == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `"path":"/accounts/x/"`) {
				lines++
				if !strings.Contains(l, `"status":502`) || !strings.Contains(l, `"upstream":"django"`) || !strings.Contains(l, `"error"`) {
					t.Errorf("log line: %s", l)
				}
			}
		}
	}
	if lines != 1 || strings.Contains(e.logs.String(), "django upstream error") {
		t.Errorf("%d access log lines; proxy log: %s", lines, e.logs.String())
	}
}

// TestForwardedFamilyOnlyFromTrustedProxy: the X-Forwarded-* headers the
// gateway does not set itself (Port, Prefix, Ssl, ...) and Forwarded reach
// Django only from a trusted proxy, as on the PHP side: Django reads
// X-Forwarded-Port with USE_X_FORWARDED_PORT, and apps read the others to
// build URLs or find the client (a trusted proxy's Forwarded was dropped
// with the client's, which ReverseProxy removes before Rewrite).
func TestForwardedFamilyOnlyFromTrustedProxy(t *testing.T) {
	e := newEnv(t, envOpts{})
	frontFor := func(trusted string) *httptest.Server {
		return behindServer(t, e, io.Discard, "SESSIONGATE_TRUSTED_PROXIES="+trusted)
	}
	client := map[string]string{"X-Forwarded-Port": "4444", "X-Forwarded-Prefix": "//evil.example", "X-Forwarded-Ssl": "on", "X-Forwarded-Server": "evil.example",
		"Forwarded": "for=203.0.113.9;proto=https;host=www.example.com", "X-Real-Ip": "203.0.113.9"}
	// The server's instructions to an app (proxyheader.SendfileControl,
	// URLOverride) never come from a client, trusted proxy or not.
	never := map[string]string{"X-Sendfile-Type": "X-Sendfile", "X-Accel-Mapping": "/srv/=/other/", "X-Original-Url": "/admin/x", "X-Rewrite-Url": "/admin/x"}
	for _, c := range []struct {
		name, trusted string
		kept          bool
	}{
		{"direct client", "10.9.9.9/32", false},
		{"trusted proxy", "127.0.0.1", true},
	} {
		req, _ := http.NewRequest("GET", frontFor(c.trusted).URL+"/admin/", nil)
		for k, v := range client {
			req.Header.Set(k, v)
		}
		for k, v := range never {
			req.Header.Set(k, v)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		s := e.app.seen()
		for k, v := range client {
			if got := s.Header.Get(k); (got == v) != c.kept {
				t.Errorf("%s: %s reached Django as %q (want it there: %v)", c.name, k, got, c.kept)
			}
		}
		for k := range never {
			if got, ok := s.Header[k]; ok {
				t.Errorf("%s: %s reached Django as %q", c.name, k, got)
			}
		}
		if s.Header.Get("X-Forwarded-For") != "127.0.0.1" || s.Header.Get("X-Forwarded-Proto") != "http" {
			t.Errorf("%s: the gateway's own X-Forwarded-For %q / -Proto %q", c.name, s.Header.Get("X-Forwarded-For"), s.Header.Get("X-Forwarded-Proto"))
		}
	}
}

// TestNoHostGetsTheServerName: with SESSIONGATE_SERVER_NAMES, a request
// without Host (HTTP/1.0) reaches Django under the first name, the one PHP
// gets in SERVER_NAME, not the gateway's own address: Django would refuse
// that (DisallowedHost, mailed to ADMINS) or build links with it.
func TestNoHostGetsTheServerName(t *testing.T) {
	e := newEnv(t, envOpts{})
	front := behindServer(t, e, io.Discard, "SESSIONGATE_SERVER_NAMES=shop.example.com,*.example.com")
	getWithoutHost(t, front.Listener.Addr().String())
	if s := e.app.seen(); s.Host != "shop.example.com" || s.Header.Get("X-Forwarded-Host") != "shop.example.com" {
		t.Errorf("Django got Host %q, X-Forwarded-Host %q; want shop.example.com", s.Host, s.Header.Get("X-Forwarded-Host"))
	}
}

// TestHiddenHeadersOnInformationalResponses: SESSIONGATE_HIDE_HEADERS
// also keeps X-Powered-By out of a 103 Early Hints Django passes on and out
// of a protocol switch (101), which ReverseProxy writes on the hijacked
// connection past the server's writer.
func TestHiddenHeadersOnInformationalResponses(t *testing.T) {
	addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
		req := readRequest(t, br)
		if req == nil {
			return
		}
		if req.Header.Get("Upgrade") == "echo" {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nX-Powered-By: Daphne\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\nX-Powered-By: Django\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nX-Powered-By: Django\r\nContent-Length: 2\r\n\r\nok")
	})
	e := newEnv(t, envOpts{backends: func(http.Handler) []string { return []string{"http://" + addr} }})
	front := behindServer(t, e, io.Discard, "SESSIONGATE_HIDE_HEADERS=X-Powered-By")

	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, fmt.Sprintf("%d %q %q", code, h.Get("Link"), h.Get("X-Powered-By")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", front.URL+"/admin/", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(hints) != 1 || hints[0] != `103 "</app.css>; rel=preload" ""` || res.Header.Get("X-Powered-By") != "" {
		t.Errorf("1xx %q, final X-Powered-By %q", hints, res.Header.Get("X-Powered-By"))
	}

	c, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /admin/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	up, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || up.StatusCode != http.StatusSwitchingProtocols || up.Header.Get("X-Powered-By") != "" {
		t.Errorf("upgrade: %v, X-Powered-By %q", err, up.Header.Get("X-Powered-By"))
	}
}

// TestNoH2CUpgradeToDjango: a client's "Upgrade: h2c" is not passed on.
// A backend that takes it (hypercorn, any h2c server) answers 101, and the
// connection becomes a tunnel on which the client sends further requests
// straight to it, past the gateway's SESSIONGATE_RESTRICTED_PATHS,
// SESSIONGATE_BASIC_AUTH and rate limits (h2c smuggling). HTTP2-Settings
// is a connection header (RFC 7540 section 3.2.1): an h2c upgrade never
// crosses a proxy. The backend here serves HTTP/1.1 after its 101, where a
// real one speaks HTTP/2: what it reads on the tunnel is unfiltered all the
// same. The request is answered as the plain GET it also is.
func TestNoH2CUpgradeToDjango(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
		for {
			req := readRequest(t, br)
			if req == nil {
				return
			}
			mu.Lock()
			seen = append(seen, req.URL.Path+" upgrade="+req.Header.Get("Upgrade"))
			mu.Unlock()
			if strings.EqualFold(req.Header.Get("Upgrade"), "h2c") {
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
				continue // the tunnel: whatever comes next is served
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	e := newEnv(t, envOpts{backends: func(http.Handler) []string { return []string{"http://" + addr} }})
	front := behindServer(t, e, io.Discard, "SESSIONGATE_RESTRICTED_PATHS=/admin/secret/ 10.0.0.0/8")

	c, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /admin/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode == http.StatusSwitchingProtocols {
		t.Errorf("h2c upgrade answered 101: the connection is a tunnel to Django")
	}
	// The next request on the connection: through the gateway, refused;
	// through a tunnel, at Django.
	io.WriteString(c, "GET /admin/secret/ HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("/admin/secret/ after the upgrade: %d, want the gateway's 403", res.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if strings.HasPrefix(s, "/admin/secret/") || strings.Contains(s, "h2c") {
			t.Errorf("Django got %q (all: %q)", s, seen)
		}
	}
}

// TestTrustedProxyForwardedHost: behind a trusted proxy that sends its own
// Host (nginx's proxy_pass sends the upstream's name), Django's
// X-Forwarded-Host is the host the client asked for, the proxy's
// X-Forwarded-Host or Forwarded host=, as the canonical-name redirect reads
// it: with USE_X_FORWARDED_HOST, get_host() and build_absolute_uri() named
// the proxy's upstream instead (links, redirects, DisallowedHost).
func TestTrustedProxyForwardedHost(t *testing.T) {
	e := newEnv(t, envOpts{})
	front := behindServer(t, e, io.Discard, "SESSIONGATE_TRUSTED_PROXIES=127.0.0.1")
	for _, c := range []struct {
		name string
		hdr  map[string]string
		want string
	}{
		{"X-Forwarded-Host", map[string]string{"X-Forwarded-Host": "www.example.com"}, "www.example.com"},
		{"two proxies", map[string]string{"X-Forwarded-Host": "www.example.com, lb.internal", "X-Forwarded-For": "203.0.113.9, 127.0.0.1"}, "www.example.com"},
		// A proxy that appends (Apache's mod_proxy) passes its client's
		// own entry on in front of its own: not the one to take.
		{"client's before the proxy's", map[string]string{"X-Forwarded-Host": "evil.example, www.example.com", "X-Forwarded-For": "203.0.113.9"}, "www.example.com"},
		{"client's Forwarded before the proxy's", map[string]string{"Forwarded": "host=evil.example, for=203.0.113.9;host=www.example.com"}, "www.example.com"},
		{"Forwarded", map[string]string{"Forwarded": `for=203.0.113.9;host="www.example.com:8443"`}, "www.example.com:8443"},
		{"none", nil, "gw.internal:8080"},
	} {
		req, _ := http.NewRequest("GET", front.URL+"/admin/", nil)
		req.Host = "gw.internal:8080"
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		s := e.app.seen()
		if got := s.Header.Values("X-Forwarded-Host"); len(got) != 1 || got[0] != c.want || s.Host != "gw.internal:8080" {
			t.Errorf("%s: Django got X-Forwarded-Host %q, Host %q; want %q, Host as sent", c.name, got, s.Host, c.want)
		}
	}
}

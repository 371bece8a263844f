package fcgi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// decodeStream decodes a PARAMS record stream produced by paramEncoder,
// checking that records are well-formed and the stream is terminated.
func decodeStream(t *testing.T, b []byte) []Param {
	t.Helper()
	var out []Param
	for {
		if len(b) < headerLen {
			t.Fatalf("params stream not terminated by an empty record")
		}
		h, err := parseRawHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.typ != typeParams {
			t.Fatalf("record type %d in params stream", h.typ)
		}
		content := b[headerLen : headerLen+h.contentLen]
		b = b[headerLen+h.contentLen+h.padding:]
		if h.contentLen == 0 {
			if len(b) != 0 {
				t.Fatalf("%d bytes after the empty PARAMS record", len(b))
			}
			return out
		}
		pairs, err := decodePairs(content)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pairs...)
	}
}

func parseRawHeader(b []byte) (recordHeader, error) {
	if b[0] != 1 || b[3] != 1 {
		return recordHeader{}, errors.New("bad header")
	}
	return recordHeader{typ: b[1], contentLen: int(b[4])<<8 | int(b[5]), padding: int(b[6])}, nil
}

func encode(t *testing.T, req *http.Request, s *Script, bodyLen int64) (map[string]string, []string) {
	t.Helper()
	e := newParamEncoder(nil)
	var dropped []string
	if err := encodeParams(&e, req, s, bodyLen, func(n string) { dropped = append(dropped, n) }); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range decodeStream(t, e.finish()) {
		if _, dup := m[p.Name]; dup {
			t.Errorf("param %s sent twice", p.Name)
		}
		m[p.Name] = p.Value
	}
	return m, dropped
}

func TestParams(t *testing.T) {
	local := &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 8080}
	tests := []struct {
		name    string
		req     func() *http.Request
		script  Script
		bodyLen int64
		want    map[string]string
		dropped []string
	}{
		{
			name: "GET with headers, path info, extra",
			req: func() *http.Request {
				r := httptest.NewRequest("GET", "http://example.com:8080/index.php/extra?a=1&b=2", nil)
				r.Header = http.Header{
					"X-Foo":      {"foo"},
					"X_foo":      {"underscore aliasing X-Foo"},
					"Proxy":      {"http://evil:3128"},
					"X-Multi":    {"a", "b"},
					"Cookie":     {"a=1", "b=2"},
					"Accept":     {"text/html"},
					"X.Dot":      {"dot"},
					"User-Agent": {"test/1"},
				}
				return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local)))
			},
			script: Script{
				DocumentRoot: "/srv/www/",
				ScriptName:   "/index.php",
				PathInfo:     "/extra",
				RequestURI:   "/index.php/extra?a=1&b=2",
				RemoteAddr:   "192.0.2.7:54321",
				Extra: []Param{
					{"SESSIONGATE_SID", "abc"},
					{"SCRIPT_FILENAME", "/etc/passwd"},
					{"HTTP_X_SESSION", "forged"},
					{"REMOTE_ADDR", "127.0.0.1"},
					{"PHP_VALUE", "session.save_handler=files"},
				},
			},
			bodyLen: -1,
			want: map[string]string{
				"QUERY_STRING":      "a=1&b=2",
				"REQUEST_METHOD":    "GET",
				"CONTENT_TYPE":      "",
				"CONTENT_LENGTH":    "",
				"SCRIPT_NAME":       "/index.php",
				"REQUEST_URI":       "/index.php/extra?a=1&b=2",
				"DOCUMENT_URI":      "/index.php/extra",
				"DOCUMENT_ROOT":     "/srv/www",
				"SERVER_PROTOCOL":   "HTTP/1.1",
				"REQUEST_SCHEME":    "http",
				"GATEWAY_INTERFACE": "CGI/1.1",
				"SERVER_SOFTWARE":   "sessiongate (nginx-compatible)",
				"REMOTE_ADDR":       "192.0.2.7",
				"REMOTE_PORT":       "54321",
				"SERVER_ADDR":       "10.0.0.5",
				"SERVER_PORT":       "8080",
				"SERVER_NAME":       "example.com",
				"REDIRECT_STATUS":   "200",
				"SCRIPT_FILENAME":   "/srv/www/index.php",
				"PATH_INFO":         "/extra",
				"PATH_TRANSLATED":   "/srv/www/extra",
				"HTTP_HOST":         "example.com:8080",
				"HTTP_X_FOO":        "foo",
				"HTTP_X_MULTI":      "a, b",
				"HTTP_COOKIE":       "a=1; b=2",
				"HTTP_ACCEPT":       "text/html",
				"HTTP_USER_AGENT":   "test/1",
				"SESSIONGATE_SID":   "abc",
				"PHP_VALUE":         "session.save_handler=files",
			},
			dropped: []string{"SCRIPT_FILENAME", "HTTP_X_SESSION", "REMOTE_ADDR"},
		},
		{
			name: "HTTPS POST with body, no path info, no local addr",
			req: func() *http.Request {
				r := httptest.NewRequest("POST", "https://shop.example/cart.php", strings.NewReader("x=1"))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("Content-Length", "3")
				r.Proto = "HTTP/2.0"
				r.RequestURI = ""
				return r
			},
			script: Script{
				DocumentRoot: "/srv/www",
				ScriptName:   "/cart.php",
				HTTPS:        true,
				RemoteAddr:   "[2001:db8::1]:443",
			},
			bodyLen: 3,
			want: map[string]string{
				"QUERY_STRING":      "",
				"REQUEST_METHOD":    "POST",
				"CONTENT_TYPE":      "application/x-www-form-urlencoded",
				"CONTENT_LENGTH":    "3",
				"SCRIPT_NAME":       "/cart.php",
				"REQUEST_URI":       "/cart.php",
				"DOCUMENT_URI":      "/cart.php",
				"DOCUMENT_ROOT":     "/srv/www",
				"SERVER_PROTOCOL":   "HTTP/2.0",
				"REQUEST_SCHEME":    "https",
				"HTTPS":             "on",
				"GATEWAY_INTERFACE": "CGI/1.1",
				"SERVER_SOFTWARE":   "sessiongate (nginx-compatible)",
				"REMOTE_ADDR":       "2001:db8::1",
				"REMOTE_PORT":       "443",
				"SERVER_ADDR":       "",
				"SERVER_PORT":       "443",
				"SERVER_NAME":       "shop.example",
				"REDIRECT_STATUS":   "200",
				"SCRIPT_FILENAME":   "/srv/www/cart.php",
				"HTTP_HOST":         "shop.example",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, dropped := encode(t, tc.req(), &tc.script, tc.bodyLen)
			if !maps.Equal(got, tc.want) {
				for k, v := range tc.want {
					if g, ok := got[k]; !ok || g != v {
						t.Errorf("%s = %q (present %v), want %q", k, g, ok, v)
					}
				}
				for k, v := range got {
					if _, ok := tc.want[k]; !ok {
						t.Errorf("unexpected param %s = %q", k, v)
					}
				}
			}
			if strings.Join(dropped, ",") != strings.Join(tc.dropped, ",") {
				t.Errorf("dropped Extra = %v, want %v", dropped, tc.dropped)
			}
		})
	}
}

// SCRIPT_FILENAME and PATH_TRANSLATED join the root and the URL path with
// one slash, whatever slashes SESSIONGATE_DOCUMENT_ROOT ends with: a root
// of "/" (a container whose site is the whole filesystem view) must not
// give PHP "//index.php", which $_SERVER consumers compare and log.
func TestFilenamesJoinRootWithOneSlash(t *testing.T) {
	for _, root := range []string{"/", "/srv/www", "/srv/www/", "/srv/www//"} {
		req := httptest.NewRequest("GET", "http://shop.example/index.php/a/b", nil)
		s := &Script{DocumentRoot: root, ScriptName: "/index.php", PathInfo: "/a/b"}
		m, _ := encode(t, req, s, -1)
		base := strings.TrimRight(root, "/")
		if m["SCRIPT_FILENAME"] != base+"/index.php" || m["PATH_TRANSLATED"] != base+"/a/b" {
			t.Errorf("root %q: SCRIPT_FILENAME %q PATH_TRANSLATED %q, want %q and %q",
				root, m["SCRIPT_FILENAME"], m["PATH_TRANSLATED"], base+"/index.php", base+"/a/b")
		}
	}
}

// Every header spelling that is not letters/digits/'-' is refused, so two
// headers can never land on the same HTTP_* name.
func TestForwardableHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Session": true, "X_Session": false, "x_session": false, "Proxy": false, "proxy": false,
		"X.Session": false, "Content-Type": false, "Content-Length": false, "Host": false,
		"Authorization": true, "X-1": true, "": false, "X Session": false,
	} {
		if got := forwardableHeader(name); got != want {
			t.Errorf("forwardableHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

// Connection-level headers never become params, whatever the client's
// Connection header lists; forwarding headers only from a trusted proxy.
func TestHopByHopAndForwardingHeaders(t *testing.T) {
	req := httptest.NewRequest("GET", "http://shop.example/index.php", nil)
	for k, v := range map[string]string{
		"Connection": "keep-alive, X-Hop", "Keep-Alive": "timeout=5", "Te": "trailers",
		"Upgrade": "h2c", "Proxy-Authorization": "Basic eA==", "X-Hop": "hop",
		"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
		"Forwarded": "for=6.6.6.6", "X-Custom": "kept",
	} {
		req.Header.Set(k, v)
	}
	direct := *testScript
	m, _ := encode(t, req, &direct, -1)
	for _, p := range []string{"HTTP_CONNECTION", "HTTP_KEEP_ALIVE", "HTTP_TE", "HTTP_UPGRADE",
		"HTTP_PROXY_AUTHORIZATION", "HTTP_X_HOP", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
		"HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED"} {
		if v, ok := m[p]; ok {
			t.Errorf("direct client: %s=%q sent", p, v)
		}
	}
	if m["HTTP_X_CUSTOM"] != "kept" {
		t.Errorf("HTTP_X_CUSTOM = %q", m["HTTP_X_CUSTOM"])
	}
	viaProxy := *testScript
	viaProxy.ForwardedTrusted = true
	m, _ = encode(t, req, &viaProxy, -1)
	if m["HTTP_X_FORWARDED_FOR"] != "6.6.6.6" || m["HTTP_FORWARDED"] != "for=6.6.6.6" || m["HTTP_X_FORWARDED_PROTO"] != "https" {
		t.Errorf("trusted proxy: forwarding headers not sent: %v", m)
	}
	if _, ok := m["HTTP_CONNECTION"]; ok {
		t.Errorf("trusted proxy: HTTP_CONNECTION sent")
	}
}

// Pairs pack into records but never straddle two; 6 MB of params travel in
// many records; a pair over one record is refused, never split.
func TestParamRecords(t *testing.T) {
	e := newParamEncoder(nil)
	big := strings.Repeat("v", 60000)
	want := map[string]string{}
	for i := 0; i < 100; i++ {
		name := "P" + strings.Repeat("x", i%7) + string(rune('A'+i%26)) + string(rune('a'+i/26))
		if err := e.add(name, big); err != nil {
			t.Fatal(err)
		}
		want[name] = big
	}
	stream := e.finish()
	got := map[string]string{}
	for _, p := range decodeStream(t, stream) {
		got[p.Name] = p.Value
	}
	if !maps.Equal(got, want) {
		t.Fatalf("decoded %d params, want %d", len(got), len(want))
	}

	// The largest pair that fits one record, and one byte more.
	e = newParamEncoder(nil)
	fits := strings.Repeat("v", maxContent-1-4-len("N"))
	if err := e.add("N", fits); err != nil {
		t.Fatalf("pair of exactly %d bytes: %v", maxContent, err)
	}
	err := e.add("N", fits+"v")
	var pe *errPairTooLarge
	if !errors.As(err, &pe) {
		t.Fatalf("oversized pair: err = %v, want errPairTooLarge", err)
	}

	// An oversized request header is the client's fault: 431.
	req := newReq(nil, "GET", "/", nil, nil)
	req.Header.Set("X-Big", strings.Repeat("h", 70000))
	e = newParamEncoder(nil)
	err = encodeParams(&e, req, testScript, -1, nil)
	if got := StatusOf(paramError(err)); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized header: status %d (%v), want 431", got, err)
	}
}

func TestEncodeHeaderBytes(t *testing.T) {
	e := newParamEncoder(nil)
	if err := e.addHeader("x-forwarded-for", []string{"a", "b"}, ", "); err != nil {
		t.Fatal(err)
	}
	got := decodeStream(t, e.finish())
	if len(got) != 1 || got[0] != (Param{"HTTP_X_FORWARDED_FOR", "a, b"}) {
		t.Fatalf("got %v", got)
	}
	if !bytes.Contains(e.buf, []byte("HTTP_X_FORWARDED_FOR")) {
		t.Fatal("name not upper-cased in place")
	}
}

// SERVER_NAME is a host a script can put in a URL: RFC 3875 4.1.14 spells
// an IPv6 literal with its brackets ("[::1]", as Apache sends it and as
// nginx's $host keeps it); "http://::1:8080/" is no URL. A request without
// Host (HTTP/1.0) still names the server: the address it reached, since the
// gateway has no server_name of its own.
func TestParamsServerName(t *testing.T) {
	for _, c := range []struct {
		host  string
		local net.Addr
		want  string
	}{
		{host: "[::1]:8080", want: "[::1]"},
		{host: "[2001:db8::1]", want: "[2001:db8::1]"},
		{host: "Example.COM:8443", want: "Example.COM"},
		{host: "192.0.2.1:80", want: "192.0.2.1"},
		{host: "", local: &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 8080}, want: "10.0.0.5"},
		{host: "", local: &net.TCPAddr{IP: net.ParseIP("2001:db8::5"), Port: 8080}, want: "[2001:db8::5]"},
	} {
		r := httptest.NewRequest("GET", "/index.php", nil)
		r.Host = c.host
		if c.local != nil {
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, c.local))
		}
		m, _ := encode(t, r, testScript, -1)
		if m["SERVER_NAME"] != c.want {
			t.Errorf("Host %q: SERVER_NAME = %q, want %q", c.host, m["SERVER_NAME"], c.want)
		}
		if v, ok := m["HTTP_HOST"]; c.host == "" && ok {
			t.Errorf("no Host: HTTP_HOST = %q sent", v)
		}
	}
	// A configured name (SESSIONGATE_SERVER_NAMES) wins over the Host and
	// the address, as nginx's server_name does; HTTP_HOST stays as sent.
	for _, c := range []struct{ host, name string }{
		{"Shop.Example.com:8443", "shop.example.com"},
		{"", "shop.example.com"},
		{"[2001:db8::1]:8080", "[2001:db8::1]"},
	} {
		r := httptest.NewRequest("GET", "/index.php", nil)
		r.Host = c.host
		s := *testScript
		s.ServerName = c.name
		m, _ := encode(t, r, &s, -1)
		if m["SERVER_NAME"] != c.name || m["HTTP_HOST"] != c.host {
			t.Errorf("Host %q, ServerName %q: SERVER_NAME %q, HTTP_HOST %q", c.host, c.name, m["SERVER_NAME"], m["HTTP_HOST"])
		}
	}
}

// Script.ForwardedTrusted promises that a client's own Forwarded,
// X-Forwarded-* and X-Real-IP headers never reach PHP: frameworks told to trust their
// proxy (Laravel's TrustProxies '*', Symfony's trusted_proxies) read
// X-Forwarded-Port and X-Forwarded-Prefix too, and would build URLs (a
// password reset link, a redirect) from a client's forgery.
func TestForwardedFamilyOnlyFromTrustedProxy(t *testing.T) {
	req := httptest.NewRequest("GET", "http://shop.example/index.php", nil)
	hdrs := map[string]string{
		"X-Forwarded-Port": "4444", "X-Forwarded-Prefix": "//evil.example", "X-Forwarded-Ssl": "on",
		"X-Forwarded-Server": "evil.example", "x-forwarded-scheme": "https",
		"X-Real-Ip": "203.0.113.9",
	}
	for k, v := range hdrs {
		req.Header.Set(k, v)
	}
	direct := *testScript
	m, _ := encode(t, req, &direct, -1)
	for k := range m {
		if strings.HasPrefix(k, "HTTP_X_FORWARDED_") || k == "HTTP_X_REAL_IP" {
			t.Errorf("direct client: %s=%q sent", k, m[k])
		}
	}
	viaProxy := *testScript
	viaProxy.ForwardedTrusted = true
	m, _ = encode(t, req, &viaProxy, -1)
	if m["HTTP_X_FORWARDED_PORT"] != "4444" || m["HTTP_X_FORWARDED_PREFIX"] != "//evil.example" || m["HTTP_X_FORWARDED_SCHEME"] != "https" || m["HTTP_X_REAL_IP"] != "203.0.113.9" {
		t.Errorf("trusted proxy: its X-Forwarded-* and X-Real-IP headers not sent: %v", m)
	}
}

// TestLongConnectionHeaderIsCheap: every header used to be compared with
// every token of the Connection header, so one Connection line of half a
// million tokens (990 KB, under SESSIONGATE_MAX_HEADER_BYTES) next to 98
// other headers cost 0.4 s of CPU per request before PHP saw it. The cost
// must not grow with the number of other headers: 97 of them against one
// (the fastest of three tries each, so a busy machine slows both alike).
// Compared with each other, not with a fixed time, since -race and a
// loaded CI machine stretch both; the quadratic code took 27 times
// as long with 97.
func TestLongConnectionHeaderIsCheap(t *testing.T) {
	build := func(others int) *http.Request {
		req := newReq(nil, "GET", "/", nil, nil)
		req.Header.Set("Connection", strings.Repeat("a,", 990<<10/2)+"X-Hop")
		req.Header.Set("X-Hop", "1")
		for i := range others {
			req.Header.Set(fmt.Sprintf("X-H%d", i), "v")
		}
		return req
	}
	fastest := func(req *http.Request) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 3 {
			e := newParamEncoder(nil)
			start := time.Now()
			if err := encodeParams(&e, req, testScript, -1, nil); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	req := build(97)
	one, many := fastest(build(1)), fastest(req)
	if many > 10*one {
		t.Errorf("params with a %d-byte Connection header: %v with 97 other headers, %v with one: the cost grows with the headers", len(req.Header.Get("Connection")), many, one)
	}
	e := newParamEncoder(nil)
	if err := encodeParams(&e, req, testScript, -1, nil); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range decodeStream(t, e.finish()) {
		m[p.Name] = p.Value
	}
	if _, ok := m["HTTP_X_HOP"]; ok || m["HTTP_X_H5"] != "v" {
		t.Errorf("X-Hop named by Connection sent: %q; X-H5 %q", m["HTTP_X_HOP"], m["HTTP_X_H5"])
	}
}

// TestSendfileControlNeverFromClients: X-Sendfile-Type and X-Accel-Mapping
// are the server's to give (the pool's env[]); a client's copy, in any
// spelling and even through a trusted proxy, would make Symfony's
// BinaryFileResponse send back the file's path on disk (X-Sendfile) or
// point its X-Accel-Redirect at another internal directory.
func TestSendfileControlNeverFromClients(t *testing.T) {
	req := httptest.NewRequest("GET", "http://shop.example/report.php", nil)
	req.Header["x-sendfile-type"] = []string{"X-Sendfile"}
	req.Header.Set("X-Accel-Mapping", "/srv/private/=/other/")
	req.Header.Set("X-Sendfile-Kept", "1")
	for _, trusted := range []bool{false, true} {
		s := *testScript
		s.ForwardedTrusted = trusted
		m, _ := encode(t, req, &s, -1)
		if v, ok := m["HTTP_X_SENDFILE_TYPE"]; ok {
			t.Errorf("trusted=%v: HTTP_X_SENDFILE_TYPE=%q sent", trusted, v)
		}
		if v, ok := m["HTTP_X_ACCEL_MAPPING"]; ok {
			t.Errorf("trusted=%v: HTTP_X_ACCEL_MAPPING=%q sent", trusted, v)
		}
		if m["HTTP_X_SENDFILE_KEPT"] != "1" {
			t.Errorf("trusted=%v: other headers lost: %v", trusted, m)
		}
	}
}

// REMOTE_USER is the user the gateway checked, and only that: a client's
// own Authorization header or a Remote-User header never sets it (nginx's
// $remote_user takes the name from any Authorization header).
func TestParamsRemoteUser(t *testing.T) {
	r := httptest.NewRequest("GET", "/index.php", nil)
	r.SetBasicAuth("mallory", "x")
	r.Header.Set("Remote-User", "admin")
	m, _ := encode(t, r, testScript, -1)
	if v, ok := m["REMOTE_USER"]; ok {
		t.Errorf("unchecked REMOTE_USER %q sent", v)
	}
	s := *testScript
	s.RemoteUser = "bo"
	s.Extra = []Param{{Name: "REMOTE_USER", Value: "admin"}}
	if m, _ = encode(t, r, &s, -1); m["REMOTE_USER"] != "bo" {
		t.Errorf("REMOTE_USER = %q, want bo", m["REMOTE_USER"])
	}
}

// TestOversizedClientValuesAre431: a request header too large for one
// FastCGI record is the client's fault (431) whatever param carries it:
// Content-Type travels as CONTENT_TYPE and Host as SERVER_NAME, ahead of
// HTTP_HOST. Both were answered 500, the status of a gateway bug.
func TestOversizedClientValuesAre431(t *testing.T) {
	big := strings.Repeat("h", 70000)
	for name, set := range map[string]func(*http.Request){
		"Content-Type": func(r *http.Request) { r.Header.Set("Content-Type", "text/plain; x="+big) },
		"Host":         func(r *http.Request) { r.Host = big + ".example" },
	} {
		req := newReq(nil, "GET", "/", nil, nil)
		set(req)
		e := newParamEncoder(nil)
		err := encodeParams(&e, req, testScript, -1, nil)
		if got := StatusOf(paramError(err)); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("oversized %s: status %d (%v), want 431", name, got, err)
		}
	}
}

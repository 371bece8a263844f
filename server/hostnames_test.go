package server

import (
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// TestServerNames: with SESSIONGATE_SERVER_NAMES a request for another
// Host is refused before PHP or a mount sees it (a forged Host must not
// reach an app that builds links from it), and PHP's SERVER_NAME is the
// listed name the request is for.
func TestServerNames(t *testing.T) {
	mounted := 0
	e := newEnv(t, func(c *config.Config) {
		c.ServerNames = []string{"Shop.example.com", "*.cdn.example.com", "203.0.113.5", "2001:db8::1"}
	}, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	for _, tc := range []struct {
		host, serverName string
	}{
		{"shop.example.com", "shop.example.com"},
		{"SHOP.example.com:8443", "shop.example.com"},
		{"shop.example.com.", "shop.example.com"},
		{"img.cdn.example.com", "img.cdn.example.com"},
		{"a.b.cdn.example.com:80", "a.b.cdn.example.com"},
		{"203.0.113.5:8080", "203.0.113.5"},
		{"[2001:db8::1]:8080", "[2001:db8::1]"},
		// HTTP/1.0 without Host names no other site.
		{"", "shop.example.com"},
	} {
		r := httptest.NewRequest("GET", "/hello.php", nil)
		r.Host = tc.host
		if tc.host == "" {
			r.Proto, r.ProtoMinor = "HTTP/1.0", 0
		}
		before := e.php.calls()
		w := e.do(r)
		if w.Code != 200 || e.php.calls() != before+1 {
			t.Errorf("Host %q: %d, want 200 from PHP", tc.host, w.Code)
			continue
		}
		if got := e.php.scripts[len(e.php.scripts)-1].ServerName; got != tc.serverName {
			t.Errorf("Host %q: SERVER_NAME %q, want %q", tc.host, got, tc.serverName)
		}
	}
	for _, host := range []string{
		"evil.example", "shop.example.com.evil.example", "cdn.example.com", "xcdn.example.com",
		"example.com", "203.0.113.6", "[2001:db8::2]", "shop.example.com:80:80",
		// Not a host at all (net/http refuses it on HTTP/1; an HTTP/2
		// Host field may carry it): 400.
		"shop.example.com@evil.example",
	} {
		want := http.StatusMisdirectedRequest
		if strings.Contains(host, "@") {
			want = http.StatusBadRequest
		}
		for _, target := range []string{"/hello.php", "/style.css", "/admin/", "/nothing"} {
			r := httptest.NewRequest("GET", target, nil)
			r.Host = host
			before := e.php.calls()
			if w := e.do(r); w.Code != want || e.php.calls() != before || mounted != 0 {
				t.Errorf("Host %q %s: %d, PHP ran %d, Django %d; want %d and neither", host, target, w.Code, e.php.calls()-before, mounted, want)
			}
		}
	}
}

// TestServerNamesOff: without the list every Host is served and PHP builds
// SERVER_NAME from it, as before.
func TestServerNamesOff(t *testing.T) {
	e := newEnv(t, nil)
	r := httptest.NewRequest("GET", "/hello.php", nil)
	r.Host = "anything.example:81"
	if w := e.do(r); w.Code != 200 || e.php.scripts[0].ServerName != "" {
		t.Errorf("%d, Script.ServerName %q", w.Code, e.php.scripts[0].ServerName)
	}
}

// From a trusted proxy, the hosts it forwards must be listed too:
// Laravel's and Symfony's trusted-proxy settings build links from
// X-Forwarded-Host (and Forwarded: host=). A direct client's copies never
// reach PHP, so they change nothing.
func TestServerNamesForwardedHosts(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.ServerNames = []string{"shop.example.com", "2001:0DB8::0001"}
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.1/32")}
	})
	for _, tc := range []struct {
		remote, host string
		hdr          []string
		want         int
	}{
		{"10.0.0.1:1", "shop.example.com", []string{"X-Forwarded-Host", "shop.example.com"}, 200},
		{"10.0.0.1:1", "shop.example.com", []string{"X-Forwarded-Host", "evil.example"}, 421},
		{"10.0.0.1:1", "shop.example.com", []string{"X-Forwarded-Host", "shop.example.com, evil.example"}, 421},
		{"10.0.0.1:1", "shop.example.com", []string{"Forwarded", `for=192.0.2.1;host="evil.example";proto=https`}, 421},
		{"10.0.0.1:1", "shop.example.com", []string{"Forwarded", `for=192.0.2.1;Host=shop.example.com`}, 200},
		{"192.0.2.9:1", "shop.example.com", []string{"X-Forwarded-Host", "evil.example"}, 200},
		// One spelling of each IPv6 address.
		{"192.0.2.9:1", "[2001:db8::1]:8080", nil, 200},
		{"192.0.2.9:1", "[2001:DB8:0:0::1]", nil, 200},
		{"192.0.2.9:1", "[2001:db8::2]", nil, 421},
	} {
		r := httptest.NewRequest("GET", "/hello.php", nil)
		r.RemoteAddr, r.Host = tc.remote, tc.host
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			r.Header.Set(tc.hdr[i], tc.hdr[i+1])
		}
		if w := e.do(r); w.Code != tc.want {
			t.Errorf("%s %s %v: %d, want %d", tc.remote, tc.host, tc.hdr, w.Code, tc.want)
		}
	}
	// A refusal's log line names the Host.
	r := httptest.NewRequest("GET", "/hello.php", nil)
	r.Host = "203.0.113.80"
	e.do(r)
	if log := e.lastLog(t); log["status"] != float64(421) || log["host"] != "203.0.113.80" {
		t.Errorf("log %v, want the refused host", log)
	}
}

// TestCanonicalName: requests for the site's other host names move to
// SESSIONGATE_CANONICAL_NAME with their path, query, scheme and port,
// before PHP or a mount runs; the canonical name, listed IP addresses and
// a request without Host are served.
func TestCanonicalName(t *testing.T) {
	mounted := 0
	e := newEnv(t, func(c *config.Config) {
		c.ServerNames = []string{"www.example.com", "example.com", "*.example.com", "203.0.113.5"}
		c.CanonicalName = "example.com"
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.1/32")}
	}, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mounted++ })))
	for _, tc := range []struct {
		method, host, target string
		hdr                  []string
		status               int
		location             string
	}{
		{"GET", "www.example.com", "/shop/?p=2&q=a%20b", nil, 301, "http://example.com/shop/?p=2&q=a%20b"},
		{"HEAD", "WWW.example.com.", "/", nil, 301, "http://example.com/"},
		{"GET", "www.example.com:8443", "/hello.php", nil, 301, "http://example.com:8443/hello.php"},
		{"GET", "shop.example.com", "/admin/", nil, 301, "http://example.com/admin/"},
		{"POST", "www.example.com", "/wp-login.php", nil, 308, "http://example.com/wp-login.php"},
		// Raw bytes a URL may not hold are escaped, as on the port-80
		// redirect listener.
		{"GET", "www.example.com", "/a\"b", nil, 301, "http://example.com/a%22b"},
		// HTTPS through a trusted proxy keeps https.
		{"GET", "www.example.com", "/x", []string{"X-Forwarded-Proto", "https"}, 301, "https://example.com/x"},
		{"GET", "example.com", "/hello.php", nil, 200, ""},
		{"GET", "example.com:8443", "/style.css", nil, 200, ""},
		{"GET", "203.0.113.5", "/hello.php", nil, 200, ""},
		{"GET", "", "/hello.php", nil, 200, ""},
		{"GET", "evil.example", "/hello.php", nil, 421, ""},
	} {
		r := rawRequest(t, tc.method+" "+tc.target+" HTTP/1.1\r\nHost: "+tc.host+"\r\nContent-Length: 0\r\n\r\n")
		if tc.host == "" {
			r = rawRequest(t, tc.method+" "+tc.target+" HTTP/1.0\r\n\r\n")
		}
		if tc.hdr != nil {
			r.RemoteAddr = "10.0.0.1:1"
			r.Header.Set(tc.hdr[0], tc.hdr[1])
		}
		before, mountedBefore := e.php.calls(), mounted
		w := e.do(r)
		if w.Code != tc.status || w.Header().Get("Location") != tc.location {
			t.Errorf("%s %s %s: %d %q, want %d %q", tc.method, tc.host, tc.target, w.Code, w.Header().Get("Location"), tc.status, tc.location)
		}
		if tc.status != 200 && (e.php.calls() != before || mounted != mountedBefore) {
			t.Errorf("%s %s %s: PHP or Django ran for a redirect", tc.method, tc.host, tc.target)
		}
		if tc.status == 200 && tc.target == "/hello.php" {
			want := tc.host
			if want == "" {
				want = "example.com"
			}
			if got := e.php.scripts[len(e.php.scripts)-1].ServerName; got != want {
				t.Errorf("Host %q: SERVER_NAME %q, want %q", tc.host, got, want)
			}
		}
	}
}

// On the port-80 listener, another name goes to the canonical one over
// HTTPS in one hop; ACME challenges for it are still answered.
func TestRedirectToCanonicalName(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Listen = ":443"
		c.ServerNames = []string{"example.com", "www.example.com"}
		c.CanonicalName = "example.com"
	})
	checkRedirects(t, e, []redirectCase{
		{"www.example.com", "/a?b", 301, "https://example.com/a?b"},
		{"example.com", "/a?b", 301, "https://example.com/a?b"},
		{"www.example.com", "/.well-known/acme-challenge/tok-1", 200, ""},
	})
}

// Behind a trusted proxy that sends its own Host (nginx's proxy_pass sends
// the upstream's name), the host the client asked for is the proxy's
// X-Forwarded-Host: the canonical name is served, not redirected to itself
// with the proxy's port, and www is redirected even when the proxy's Host
// is the canonical name.
func TestCanonicalNameBehindHostRewritingProxy(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.ServerNames = []string{"example.com", "www.example.com", "app"}
		c.CanonicalName = "example.com"
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("10.0.0.1/32")}
	})
	for _, tc := range []struct {
		name, req string
		status    int
		location  string
	}{
		{"client on canonical, proxy Host app",
			"GET /style.css HTTP/1.1\r\nHost: app\r\nX-Forwarded-Host: example.com\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", 200, ""},
		{"client on canonical, proxy Host app:8080",
			"GET /style.css HTTP/1.1\r\nHost: app:8080\r\nX-Forwarded-Host: example.com\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", 200, ""},
		{"client on www, proxy Host = canonical",
			"GET /x HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Host: www.example.com\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", 301, "https://example.com/x"},
		{"client on www:8443 through Forwarded",
			"GET /x HTTP/1.1\r\nHost: app\r\nForwarded: for=198.51.100.1;host=\"www.example.com:8443\"\r\nX-Forwarded-Proto: https\r\n\r\n", 301, "https://example.com:8443/x"},
		{"proxy without X-Forwarded-Host, Host app",
			"GET /style.css HTTP/1.1\r\nHost: app:8080\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", 200, ""},
	} {
		r := rawRequest(t, tc.req)
		r.RemoteAddr = "10.0.0.1:40000"
		w := e.do(r)
		if w.Code != tc.status || w.Header().Get("Location") != tc.location {
			t.Errorf("%s: %d %q, want %d %q", tc.name, w.Code, w.Header().Get("Location"), tc.status, tc.location)
		}
	}
}

// A service calling the site by a container name, or a health check on
// localhost, both listed, is served: names without a dot are not public.
func TestCanonicalNameLeavesInternalNames(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.ServerNames = []string{"example.com", "www.example.com", "app", "localhost"}
		c.CanonicalName = "example.com"
	})
	for _, host := range []string{"app:8080", "localhost:8080", "localhost"} {
		w := e.do(rawRequest(t, "GET /hello.php HTTP/1.1\r\nHost: "+host+"\r\n\r\n"))
		if w.Code != 200 {
			t.Errorf("Host %s: %d %q, want 200", host, w.Code, w.Header().Get("Location"))
		}
	}
}

// Over HTTP/2 a redirected POST does not close the connection (GOAWAY),
// which would end every other stream on it.
func TestCanonicalNameHTTP2PostKeepsConnection(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.ServerNames = []string{"example.com", "www.example.com"}
		c.CanonicalName = "example.com"
	})
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	client := ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	_, port, _ := strings.Cut(ts.Listener.Addr().String(), ":")
	do := func(method, host string) (int, bool, string) {
		var reused bool
		req, _ := http.NewRequest(method, ts.URL+"/style.css", strings.NewReader("a=b"))
		req.Host = host + ":" + port
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, reused, res.Proto
	}
	do("GET", "example.com")
	if st, _, proto := do("POST", "www.example.com"); st != 308 || proto != "HTTP/2.0" {
		t.Fatalf("POST www: %d %s", st, proto)
	}
	if _, reused, _ := do("GET", "example.com"); !reused {
		t.Errorf("the HTTP/2 connection was closed (GOAWAY) after a redirected POST")
	}
}

// The port-80 listener sends a request without Host (HTTP/1.0) to the
// canonical name, under which it would be served.
func TestRedirectToCanonicalNameWithoutHost(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Listen = ":443"
		c.ServerNames = []string{"example.com", "www.example.com"}
		c.CanonicalName = "example.com"
	})
	w := e.redirect(rawRequest(t, "GET /a?b HTTP/1.0\r\n\r\n"))
	if w.Code != 301 || w.Header().Get("Location") != "https://example.com/a?b" {
		t.Errorf("HTTP/1.0 without Host: %d %q, want 301 https://example.com/a?b", w.Code, w.Header().Get("Location"))
	}
}

// A request that names no host, or names one with userinfo in front of
// it, gets 400 on port 80 as on the public listener (hostFieldError), not
// a redirect to the canonical name: a proxy in front that reads
// "evil.example@example.com" as evil.example would have its visitors
// sent to the site.
func TestRedirectToCanonicalNameRefusesWhatNamesNoHost(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Listen = ":443"
		c.ServerNames = []string{"example.com", "www.example.com"}
		c.CanonicalName = "example.com"
	})
	for _, req := range []string{
		"GET /a HTTP/1.1\r\nHost:\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: :80\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: www..example.com\r\n\r\n",
		"GET http://evil.example@www.example.com/a HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
	} {
		w := e.redirect(rawRequest(t, req))
		if w.Code != 400 || w.Header().Get("Location") != "" {
			t.Errorf("%q: %d %q, want 400", req, w.Code, w.Header().Get("Location"))
		}
		if log := e.lastLog(t); log["error"] == nil {
			t.Errorf("%q: the access line names no error: %v", req, log)
		}
	}
}

// Over HTTP/1, a redirected request whose body the gateway does not read
// closes its connection: the body must not be read as the next request.
func TestCanonicalNameClosesAfterUnreadBody(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.ServerNames = []string{"example.com", "www.example.com"}
		c.CanonicalName = "example.com"
	})
	for _, req := range []string{
		"POST /x HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 3\r\n\r\nabc",
		"POST /x HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	} {
		w := e.do(rawRequest(t, req))
		if w.Code != 308 || w.Header().Get("Connection") != "close" {
			t.Errorf("%q: %d %v, want 308 and Connection: close", req, w.Code, w.Header())
		}
	}
	if w := e.do(rawRequest(t, "GET /x HTTP/1.1\r\nHost: www.example.com\r\n\r\n")); w.Header().Get("Connection") != "" {
		t.Errorf("a GET without a body: Connection %q", w.Header().Get("Connection"))
	}
}

// TestEmptyHostRefused: net/http refuses an HTTP/1.1 request without a Host
// field but passes one whose Host is empty ("Host:", or "Host: :8080" with
// a port and no host), and the gateway served it: PHP got no HTTP_HOST and
// the server's address as SERVER_NAME, which apps then put in the links
// they build. nginx answers 400 ("client sent invalid host header"), as
// RFC 9110 section 4.2.1 wants an http URI with an empty host rejected.
// HTTP/1.0 without Host, which names no host at all, is still served;
// HTTP/2 without :authority nor Host is refused too.
func TestEmptyHostRefused(t *testing.T) {
	for _, names := range [][]string{nil, {"shop.example"}} {
		e := newEnv(t, func(c *config.Config) { c.ServerNames = names })
		for req, want := range map[string]int{
			"GET /hello.php HTTP/1.1\r\nHost:\r\n\r\n":                    400,
			"GET /hello.php HTTP/1.1\r\nHost: \r\n\r\n":                   400,
			"GET /hello.php HTTP/1.1\r\nHost: :8080\r\n\r\n":              400,
			"GET /hello.php HTTP/1.0\r\nHost: :8080\r\n\r\n":              400,
			"GET /nothing HTTP/1.1\r\nHost:\r\n\r\n":                      400,
			"GET /style.css HTTP/1.1\r\nHost:\r\n\r\n":                    400,
			"GET /hello.php HTTP/1.0\r\n\r\n":                             200,
			"GET /hello.php HTTP/1.1\r\nHost: shop.example\r\n\r\n":       200,
			"GET http://shop.example/hello.php HTTP/1.1\r\nHost:\r\n\r\n": 200,
		} {
			before := e.php.calls()
			w := e.do(rawRequest(t, req))
			if w.Code != want || (e.php.calls() > before) != (want == 200) {
				t.Errorf("server names %v, %q: %d, PHP ran %d; want %d", names, req, w.Code, e.php.calls()-before, want)
			}
		}
	}
}

// TestHostWithEmptyLabelRefused: a Host with an empty label between two
// dots ("shop..example") names no host, and nginx answers 400 ("client
// sent invalid host header"); without SESSIONGATE_SERVER_NAMES the gateway
// served it, PHP getting it as HTTP_HOST and SERVER_NAME (with the list it
// was 421, a host the site does not have, rather than no host at all).
func TestHostWithEmptyLabelRefused(t *testing.T) {
	for _, names := range [][]string{nil, {"*.example.com"}} {
		e := newEnv(t, func(c *config.Config) { c.ServerNames = names })
		for host, want := range map[string]int{
			"a..example.com":       400,
			"a.example.com..":      400,
			"a..example.com:8080":  400,
			"a.example.com":        200,
			"a.example.com.":       200,
			"a.example.com.:8080":  200,
			"[2001:db8::1]":        0, // 200 without names, 421 with them
			"[2001:db8::1]:8080":   0,
			"192.0.2.1..":          400,
			"..":                   400,
			"b.a..example.com:443": 400,
		} {
			r := httptest.NewRequest("GET", "/hello.php", nil)
			r.Host = host
			if want == 0 {
				want = 200
				if names != nil {
					want = http.StatusMisdirectedRequest
				}
			}
			before := e.php.calls()
			w := e.do(r)
			if w.Code != want || (e.php.calls() > before) != (want == 200) {
				t.Errorf("server names %v, Host %q: %d, PHP ran %d; want %d", names, host, w.Code, e.php.calls()-before, want)
			}
		}
	}
}

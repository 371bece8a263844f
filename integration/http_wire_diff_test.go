package integration

// A differential test of the Django path's HTTP client against odd and
// broken HTTP upstreams: a scripted fake server (harness.FakeHTTP) answers
// each case with a given byte sequence, and what an HTTP client gets
// through Debian 12's nginx (proxy_pass, with a keep-alive upstream and
// without) is compared with what it gets through the gateway. It reuses
// the FastCGI comparison's client side (wireSend, wireOutcome).

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

func httpWireCases() []wireCase {
	b := func(s string) []byte { return []byte(s) }
	const ct = "Content-Type: text/plain\r\n"
	return []wireCase{
		{name: "ok", raw: b(httpOK("ok"))},
		{name: "chunked", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")},
		{name: "cllarger", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 10\r\n\r\nshort"), closeAfter: true},
		{name: "clsmaller", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 3\r\n\r\nlonger")},
		{name: "cltwodiff", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 5\r\nContent-Length: 3\r\n\r\nhello")},
		{name: "cltwosame", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello")},
		{name: "clcomma", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 5, 5\r\n\r\nhello")},
		{name: "clneg", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Content-Length: -1\r\n\r\nhello"), closeAfter: true},
		{name: "teandcl", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n")},
		{name: "badchunk", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")},
		{name: "badchunklate", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"), later: b("zz\r\nhello\r\n0\r\n\r\n"), laterDelay: 200 * time.Millisecond},
		{name: "nolastchunk", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"), closeAfter: true},
		{name: "trailers", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Transfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")},
		{name: "s100", raw: b("HTTP/1.1 100 Continue\r\n\r\n" + httpOK("ok"))},
		{name: "s103", raw: b("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + httpOK("ok"))},
		{name: "several1xx", raw: b("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + httpOK("ok"))},
		{name: "s101", raw: b("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), closeAfter: true},
		{name: "s204body", raw: b("HTTP/1.1 204 No Content\r\n\r\nbody")},
		{name: "s304body", raw: b("HTTP/1.1 304 Not Modified\r\n\r\nbody")},
		{name: "s204cl", raw: b("HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nbody")},
		{name: "head", raw: b(httpOK("headbody")), method: "HEAD"},
		{name: "http10", raw: b("HTTP/1.0 200 OK\r\n" + ct + "Content-Length: 2\r\n\r\nok")},
		{name: "http10ka", raw: b("HTTP/1.0 200 OK\r\n" + ct + "Connection: keep-alive\r\nContent-Length: 2\r\n\r\nok")},
		{name: "http10eof", raw: b("HTTP/1.0 200 OK\r\n" + ct + "\r\nuntil close"), closeAfter: true},
		{name: "http11eof", raw: b("HTTP/1.1 200 OK\r\n" + ct + "\r\nuntil close"), closeAfter: true},
		{name: "closemore", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Connection: close\r\nContent-Length: 2\r\n\r\nok" + httpOK("STALE"))},
		{name: "afterend", raw: b(httpOK("first") + httpOK("STALE"))},
		{name: "afterendlater", raw: b(httpOK("first")), later: b(httpOK("STALE")), laterDelay: 20 * time.Millisecond, pause: 500 * time.Millisecond},
		{name: "afterendlatergarbage", raw: b(httpOK("first")), later: b("garbage"), laterDelay: 20 * time.Millisecond, pause: 500 * time.Millisecond},
		{name: "noreason", raw: b("HTTP/1.1 200\r\n" + ct + "Content-Length: 1\r\n\r\nx")},
		{name: "oddreason", raw: b("HTTP/1.1 404 Gone Fishing\r\n" + ct + "Content-Length: 1\r\n\r\nx")},
		{name: "s099", raw: b("HTTP/1.1 099 Odd\r\nContent-Length: 1\r\n\r\nx")},
		{name: "s600", raw: b("HTTP/1.1 600 Odd\r\nContent-Length: 1\r\n\r\nx")},
		{name: "s999", raw: b("HTTP/1.1 999 Odd\r\nContent-Length: 1\r\n\r\nx")},
		{name: "nocolon", raw: b("HTTP/1.1 200 OK\r\nX-A 1\r\nContent-Length: 1\r\n\r\nx")},
		{name: "fold", raw: b("HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 1\r\n\r\nx")},
		{name: "spacecolon", raw: b("HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 1\r\n\r\nx")},
		{name: "hugeheader", raw: b("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("h", 100<<10) + "\r\nContent-Length: 1\r\n\r\nx")},
		{name: "hopbyhop", raw: b("HTTP/1.1 200 OK\r\nConnection: X-Foo\r\nX-Foo: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: close\r\nX-A: 1\r\nContent-Length: 1\r\n\r\nx")},
		{name: "closeinheader", raw: b("HTTP/1.1 200 OK\r\nContent-Ty"), closeAfter: true},
		{name: "closeafterheader", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 5\r\n\r\n"), closeAfter: true},
		{name: "closemidchunk", raw: b("HTTP/1.1 200 OK\r\n" + ct + "Transfer-Encoding: chunked\r\n\r\n5\r\nhel"), closeAfter: true},
		{name: "closeempty", raw: nil, closeAfter: true},
		{name: "garbage", raw: b("garbage\r\n\r\n"), closeAfter: true},
		{name: "lf", raw: b("HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 1\n\nx")},
		{name: "post", raw: b(httpOK("got it")), method: "POST"},
		// Answered before the body is read, then closed (earlyCase).
		{name: "early413", raw: b("HTTP/1.1 413 Request Entity Too Large\r\n" + ct + "Content-Length: 3\r\n\r\nbig"), method: "POST"},
		{name: "early200", raw: b(httpOK("early")), method: "POST"},
	}
}

// httpWireExpected are the differences from nginx, as wireExpected's.
func httpWireExpected() map[string]wireDiff {
	const ok = `next=200 "ok" slow=false`
	const e502 = `502 cut=false ` + ok
	d := map[string]wireDiff{}
	both := func(name, nginx, gateway, why string) {
		d["keep/"+name] = wireDiff{nginx, gateway, why}
		d["once/"+name] = wireDiff{nginx, gateway, why}
	}
	both("cltwodiff", `200 [Content-Type=text/plain] body="hel" cut=false `+ok, e502,
		"two Content-Length lines that disagree: nginx takes the last and cuts the body there; the gateway answers 502, as RFC 9112 section 6.3 asks of a proxy (an invalid length is an unrecoverable error)")
	both("clcomma", `200 [Content-Type=text/plain] body="" cut=true next=closed slow=false`, e502,
		"Content-Length: 5, 5: nginx sends the header and cuts the body; the gateway answers 502 (RFC 9112 section 6.3)")
	both("clneg", `200 [Content-Type=text/plain] body="hello" cut=false `+ok, e502,
		"Content-Length: -1: nginx ignores it and passes the body up to the close; the gateway answers 502 (RFC 9112 section 6.3)")
	both("badchunk", "no response; next=(unexpected EOF)", `200 [Content-Type=text/plain] body="" cut=true next=closed slow=false`,
		"a chunk size that is not hex right after the header: nginx drops the client connection without a byte; the gateway has sent the header of the chunked answer and cuts it (logged)")
	both("s100", "no response; next=(unexpected EOF)", `200 [Content-Type=text/plain] body="ok" cut=false `+ok,
		"a 100 Continue before the answer: nginx 1.22 takes it for the final answer and drops the client without a byte; the gateway reads past it (its own server answered the client's Expect)")
	both("s103", "no response; next=(unexpected EOF)", `200 [:1xx=103 Content-Type=text/plain] body="ok" cut=false `+ok,
		"a 103 Early Hints before the answer: nginx 1.22 drops the client without a byte; the gateway passes the 103 on, then the answer")
	both("several1xx", "no response; next=(unexpected EOF)", `200 [:1xx=102|103 Content-Type=text/plain] body="ok" cut=false `+ok,
		"100, 102 and 103 before the answer: as s100 and s103")
	both("s101", `101 [Upgrade=websocket] body="" cut=false next=closed slow=false`, e502,
		"a 101 to a request that asked for no upgrade: nginx switches the connection over; the gateway answers 502 (net/http's ReverseProxy: a backend may switch only to the protocol asked for)")
	both("s099", `99 [] body="x" cut=false `+ok, e502,
		"a status below 100: nginx passes it on; the gateway answers 502 (net/http's server cannot send it)")
	both("fold", e502, `200 [X-A=1 2] body="x" cut=false `+ok,
		"an obs-fold line: nginx answers 502; the gateway joins it to the header before with one space, as RFC 9112 section 5.2 lets a proxy do")
	both("spacecolon", e502, `200 [X-A=1] body="x" cut=false `+ok,
		"whitespace before a header's colon: nginx answers 502; the gateway removes it, as RFC 9112 section 5.1 asks of a proxy")
	both("hugeheader", e502, `200 [X-Big=hhhhhhhhhhhhhhhhhhhh...(102400 bytes)] body="x" cut=false `+ok,
		"a 100 KiB header line: nginx's proxy_buffer_size (4 KiB) refuses it; the gateway takes response headers up to 10 MiB (Django's session may ride in them)")
	both("hopbyhop", `200 [Proxy-Connection=close X-A=1 X-Foo=1] body="x" cut=false `+ok, `200 [X-A=1] body="x" cut=false `+ok,
		"connection-specific headers (those Connection names, Proxy-Connection): nginx passes them on; the gateway drops them (RFC 9110 section 7.6.1)")
	both("garbage", `no response; next=(malformed HTTP response "garbage")`, e502,
		"an answer that is not HTTP: nginx passes the bytes on as an HTTP/0.9 answer, which the client cannot read; the gateway answers 502")
	return d
}

// TestHTTPWireDiffNginx: every case to nginx with a keep-alive upstream,
// to nginx without, and to the gateway's Django path; what the client sees
// must be the same, apart from the differences httpWireExpected lists with
// their reasons, each of which must still be seen.
func TestHTTPWireDiffNginx(t *testing.T) {
	t.Parallel()
	harness.Require(t, "nginx")
	cases := httpWireCases()
	byName := map[string]wireCase{}
	for _, c := range cases {
		byName[c.name] = c
	}
	script := func(r *http.Request) harness.FakeHTTPAnswer {
		name := r.URL.Query().Get("case")
		c, ok := byName[name]
		if !ok {
			return harness.FakeHTTPAnswer{Raw: []byte("HTTP/1.1 500 No Case\r\nContent-Length: 0\r\n\r\n")}
		}
		return harness.FakeHTTPAnswer{Raw: c.raw, Close: c.closeAfter, Later: c.later, LaterDelay: c.laterDelay, Early: strings.HasPrefix(name, "early")}
	}
	fkKeep := harness.StartFakeHTTP(t, script)
	fkOnce := harness.StartFakeHTTP(t, script)
	fkGW := harness.StartFakeHTTP(t, script)
	// nginx waits out proxy_read_timeout on the cases it cannot finish
	// (a 1xx it takes for the answer, Content-Length: 5, 5): at 5 s they
	// were 40 of the test's 46 s, and the outcome is the same at 1 s.
	ng := harness.StartNginx(t, 2, func(addrs []string) string {
		return fmt.Sprintf(`
    upstream keep { server %s; keepalive 2; }
    server { listen %s; location / { proxy_pass http://keep; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_read_timeout 1s; } }
    server { listen %s; location / { proxy_pass http://%s; proxy_read_timeout 1s; } }
`, fkKeep.Addr, addrs[0], addrs[1], fkOnce.Addr)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
		}
	})
	root := t.TempDir()
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=127.0.0.1:9",
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_DJANGO_URL=http://" + fkGW.Addr,
		"SESSIONGATE_DJANGO_PATHS=/index.php",
		"SESSIONGATE_DJANGO_TIMEOUT=5s",
	})
	gwAddr := strings.TrimPrefix(gw.URL, "http://")

	expected := httpWireExpected()
	seen := map[string]bool{}
	for _, c := range cases {
		out := map[string]wireOutcome{"keep": httpWireSend(t, ng.Addrs[0], c), "once": httpWireSend(t, ng.Addrs[1], c)}
		mark := len(gw.stderr.String())
		g := httpWireSend(t, gwAddr, c)
		t.Logf("%s: gateway %s", c.name, g)
		judgeWire(t, c.name, out, g, expected, seen)
		if g.status == 502 || g.status == 504 || g.status == 0 || g.cut {
			// A 502 or a cut answer is logged with its error.
			line, ok := wireLogLine(gw, mark, g.port, func(line string) bool { return strings.Contains(line, `"error":`) })
			if !ok {
				t.Errorf("%s: the gateway's answer (%s) is logged as %s; want the error", c.name, g, line)
			}
		}
	}
	wireAllSeen(t, expected, seen)
	if strings.Contains(gw.stderr.String(), "panic serving") {
		t.Errorf("the gateway panicked:\n%s", gw.stderr.String())
	}
}

// postBody is what the client sends with a POST case: more than the
// sockets between take at once, so an answer before it is read is early.
var postBody = strings.Repeat("p", 200<<10)

// httpWireSend is wireSend for an HTTP upstream: informational answers
// (1xx) before the final one are read past and listed as a ":1xx" header,
// and a POST case sends postBody.
func httpWireSend(t *testing.T, addr string, c wireCase) wireOutcome {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(6 * time.Second))
	method := c.method
	if method == "" {
		method = "GET"
	}
	var o wireOutcome
	_, o.port, _ = net.SplitHostPort(conn.LocalAddr().String())
	br := bufio.NewReader(conn)
	head := fmt.Sprintf("%s /index.php?case=%s HTTP/1.1\r\nHost: shop.example\r\n", method, c.name)
	if method == "POST" {
		go func() {
			fmt.Fprintf(conn, "%sContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s", head, len(postBody), postBody)
		}()
	} else {
		fmt.Fprintf(conn, "%s\r\n", head)
	}
	var info []string
	var res *http.Response
	for {
		res, err = http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			o.next = "(" + err.Error() + ")"
			return o
		}
		if res.StatusCode < 100 || res.StatusCode > 199 || res.StatusCode == 101 {
			break
		}
		info = append(info, strconv.Itoa(res.StatusCode))
	}
	if info != nil {
		o.header = map[string][]string{":1xx": info}
	}
	return wireFinish(conn, br, res, c.pause, o)
}

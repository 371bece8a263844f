package integration

// A differential test of the FastCGI client against odd and broken FastCGI
// servers: a scripted fake server (harness.FakeFCGI) answers each case with
// a given byte sequence, and what an HTTP client gets through Debian 12's
// nginx (fastcgi_pass, with a keep-alive upstream and without) is compared
// with what it gets through the gateway.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

func fcgiOut(s string) []byte  { return harness.FCGIRecord(6, []byte(s), 0) }
func fcgiErr(s string) []byte  { return harness.FCGIRecord(7, []byte(s), 0) }
func fcgiDone() []byte         { return cat(fcgiOut(""), harness.FCGIEnd(0, 0, 0)) }
func cat(bs ...[]byte) []byte  { return slices.Concat(bs...) }
func clean(resp string) []byte { return cat(fcgiOut(resp), fcgiDone()) }

// wireCase is one answer of the fake server: raw as it is, then the
// connection closed when closeAfter. method is the client's (GET if empty).
type wireCase struct {
	name       string
	raw        []byte
	closeAfter bool
	method     string
	// later is sent laterDelay after raw.
	later      []byte
	laterDelay time.Duration
	// pause is how long the client waits before its next request.
	pause time.Duration
	// dribble: raw is sent a few bytes at a time.
	dribble bool
}

// tiny splits s into STDOUT records of n bytes.
func tiny(s string, n int) []byte {
	var b []byte
	for len(s) > 0 {
		k := min(n, len(s))
		b = append(b, fcgiOut(s[:k])...)
		s = s[k:]
	}
	return b
}

func wireCases() []wireCase {
	okHead := "Content-Type: text/plain\r\n\r\n"
	var padded []byte
	for p := range 256 {
		padded = append(padded, harness.FCGIRecord(6, []byte{'a' + byte(p%26)}, p)...)
	}
	padHead := harness.FCGIRecord(6, []byte(okHead), 255)
	longValue := strings.Repeat("v", 100<<10)
	cases := []wireCase{
		{name: "ok", raw: clean(okHead + "ok")},
		{name: "split", raw: cat(fcgiOut("Content-Ty"), fcgiOut("pe: text/pl"), fcgiOut("ain\r\nX-A: 1\r"), fcgiOut("\n\r"), fcgiOut("\nbo"), fcgiOut("dy"), fcgiDone())},
		{name: "lf", raw: clean("Content-Type: text/plain\nX-A: 1\n\nbody")},
		{name: "mixedeol", raw: clean("Content-Type: text/plain\r\nX-A: 1\n\r\nbody")},
		{name: "emptystdout", raw: cat(fcgiOut(""), fcgiOut("Content-Type: text/plain\r\n"), fcgiOut(""), fcgiOut("\r\nab"), fcgiOut(""), fcgiOut("cd"), fcgiDone())},
		{name: "padding", raw: cat(padHead, padded, harness.FCGIRecord(6, nil, 255), harness.FCGIEnd(0, 0, 255))},
		{name: "stderr", raw: cat(fcgiErr("before"), fcgiOut("Content-Type: text/plain\r\n"), fcgiErr("among"), fcgiOut("\r\nab"), fcgiErr("body"), fcgiOut("cd"), fcgiOut(""), fcgiErr("after"), harness.FCGIEnd(0, 0, 0))},
		{name: "tiny", raw: cat(tiny(okHead+strings.Repeat("0123456789", 500), 1), fcgiDone())},
		{name: "otherid", raw: cat(harness.FCGIRecordID(6, 2, []byte("X-Other: 1\r\n"), 0), clean(okHead+"ok"))},
		{name: "otheridafter", raw: cat(fcgiOut(okHead+"ok"), harness.FCGIRecordID(6, 2, []byte("x"), 0), fcgiDone())},
		{name: "unknowntype", raw: cat(harness.FCGIRecord(42, []byte("xyz"), 0), clean(okHead+"ok"))},
		{name: "unknowntypebody", raw: cat(fcgiOut(okHead+"ok"), harness.FCGIRecord(42, []byte("xyz"), 0), fcgiDone())},
		{name: "getvalues", raw: cat(harness.FCGIRecordID(10, 0, []byte{14, 1, 'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_', 'C', 'O', 'N', 'N', 'S', '0'}, 0), clean(okHead+"ok"))},
		{name: "appstatus", raw: cat(fcgiOut(okHead+"ok"), fcgiOut(""), harness.FCGIEnd(255, 0, 0))},
		{name: "cantmpx", raw: cat(fcgiOut(okHead+"ok"), fcgiOut(""), harness.FCGIEnd(0, 1, 0))},
		{name: "overloaded", raw: cat(fcgiOut(okHead+"ok"), fcgiOut(""), harness.FCGIEnd(0, 2, 0))},
		{name: "unknownrole", raw: cat(fcgiOut(okHead+"ok"), fcgiOut(""), harness.FCGIEnd(0, 3, 0))},
		{name: "overloadednoout", raw: harness.FCGIEnd(0, 2, 0)},
		{name: "noout", raw: cat(fcgiOut(""), harness.FCGIEnd(0, 0, 0))},
		{name: "onlyend", raw: harness.FCGIEnd(0, 0, 0)},
		{name: "closeinheader", raw: fcgiOut("Content-Type: text/pl"), closeAfter: true},
		{name: "closeafterheader", raw: fcgiOut(okHead), closeAfter: true},
		{name: "closemidbody", raw: fcgiOut(okHead + "partial"), closeAfter: true},
		{name: "closemidrecordheader", raw: cat(fcgiOut(okHead+"partial"), []byte{1, 6, 0}), closeAfter: true},
		{name: "closemidcontent", raw: cat(fcgiOut(okHead+"partial"), []byte{1, 6, 0, 1, 0, 10, 0, 0, 'a', 'b'}), closeAfter: true},
		{name: "closemidpadding", raw: cat(fcgiOut(okHead+"partial"), []byte{1, 6, 0, 1, 0, 2, 6, 0, 'a', 'b', 0, 0}), closeAfter: true},
		{name: "closemidend", raw: cat(fcgiOut(okHead+"whole"), fcgiOut(""), []byte{1, 3, 0, 1, 0, 8, 0, 0, 0, 0}), closeAfter: true},
		{name: "closebeforeend", raw: cat(fcgiOut(okHead+"whole"), fcgiOut("")), closeAfter: true},
		{name: "closelength", raw: fcgiOut("Content-Length: 5\r\n\r\nwhole"), closeAfter: true},
		{name: "afterend", raw: cat(clean(okHead+"first"), clean(okHead+"STALE"))},
		// Sent while the connection is idle: the next request must not
		// read it as its answer. (Bytes that arrive once the next request
		// is on its way cannot be told from its answer, by nginx either:
		// the request id is 1 on every request.)
		{name: "afterendlater", raw: clean(okHead + "first"), later: clean(okHead + "STALE"), laterDelay: 20 * time.Millisecond, pause: 500 * time.Millisecond},
		{name: "afterendlatergarbage", raw: clean(okHead + "first"), later: []byte("garbage"), laterDelay: 20 * time.Millisecond, pause: 500 * time.Millisecond},
		{name: "emptystdoutbody", raw: cat(fcgiOut(okHead+"ab"), fcgiOut(""), fcgiOut("cd"), fcgiDone())},
		{name: "emptystdouthead", raw: cat(fcgiOut("Content-Type: text/plain\r\n"), fcgiOut(""), fcgiOut("\r\nab"), fcgiDone())},
		{name: "afterendgarbage", raw: cat(clean(okHead+"first"), []byte("garbage"))},
		{name: "version", raw: cat([]byte{2, 6, 0, 1, 0, 4, 0, 0}, []byte("X: 1"), clean(okHead+"ok"))},
		{name: "versionbody", raw: cat(fcgiOut(okHead+"ok"), []byte{0, 6, 0, 1, 0, 1, 0, 0, 'x'}, fcgiDone())},
		{name: "status200", raw: clean("Status: 200\r\n\r\nx")},
		{name: "status404", raw: clean("Status: 404 Not Found\r\n\r\nx")},
		{name: "status2sp", raw: clean("Status:  301\r\nLocation: /a\r\n\r\nx")},
		{name: "statusabc", raw: clean("Status: abc\r\n\r\nx")},
		{name: "status99", raw: clean("Status: 99\r\n\r\nx")},
		{name: "status1000", raw: clean("Status: 1000\r\n\r\nx")},
		{name: "status2", raw: clean("Status: 404\r\nStatus: 500\r\n\r\nx")},
		{name: "statuscustom", raw: clean("Status: 299 Fine\r\n\r\nx")},
		{name: "locabs", raw: clean("Location: http://example.com/x\r\n\r\n")},
		{name: "locrel", raw: clean("Location: /path\r\n\r\n")},
		{name: "locempty", raw: clean("Location:\r\n\r\n")},
		{name: "locstatus", raw: clean("Status: 301\r\nLocation: /path\r\n\r\n")},
		{name: "locstatus200", raw: clean("Status: 200\r\nLocation: /path\r\n\r\nbody")},
		{name: "nocolon", raw: clean("X-A 1\r\n\r\nx")},
		{name: "spacecolon", raw: clean("X-A : 1\r\n\r\nx")},
		{name: "fold", raw: clean("X-A: 1\r\n 2\r\n\r\nx")},
		{name: "longheader", raw: cat(tiny("X-Long: "+longValue+"\r\n\r\nx", 65535), fcgiDone())},
		{name: "noblank", raw: clean("Content-Type: text/plain\r\nX-A: 1\r\n")},
		{name: "noblankbody", raw: clean("Content-Type: text/plain\r\nX-A: 1")},
		{name: "cllarger", raw: clean("Content-Length: 10\r\n\r\nshort")},
		{name: "clsmaller", raw: clean("Content-Length: 3\r\n\r\nlonger")},
		{name: "te", raw: clean("Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")},
		{name: "teandcl", raw: clean("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n")},
		{name: "hopbyhop", raw: clean("Connection: close\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nProxy-Connection: close\r\nX-A: 1\r\n\r\nx")},
		{name: "head", raw: clean(okHead + "headbody"), method: "HEAD"},
		{name: "headcl", raw: clean("Content-Length: 8\r\n\r\nheadbody"), method: "HEAD"},
		{name: "s204", raw: clean("Status: 204\r\n\r\nbody")},
		{name: "s304", raw: clean("Status: 304\r\n\r\nbody")},
		{name: "repeated", raw: clean("X-A: 1\r\nSet-Cookie: a=1\r\nX-A: 2\r\nSet-Cookie: b=2\r\nX-A: 3\r\n\r\nx")},
		{name: "emptyname", raw: clean(": v\r\n\r\nx")},
		{name: "s204cl", raw: clean("Status: 204\r\nContent-Length: 4\r\n\r\nbody")},
		{name: "s304cl", raw: clean("Status: 304\r\nContent-Length: 4\r\n\r\n")},
		{name: "s205", raw: clean("Status: 205\r\n\r\nbody")},
		{name: "status103", raw: clean("Status: 103\r\nLink: </a.css>\r\n\r\nx")},
		{name: "statusreason", raw: clean("Status: 404 Gone Fishing\r\n\r\nx")},
		{name: "noemptystdout", raw: cat(fcgiOut(okHead+"ok"), harness.FCGIEnd(0, 0, 0))},
		{name: "hugeheader", raw: cat(tiny(strings.Repeat("X-Big: "+strings.Repeat("h", 1000)+"\r\n", 9<<10)+"\r\nx", 65535), fcgiDone())},
		// A fault 200 ms after the header and the start of the body.
		{name: "otheridlate", raw: fcgiOut(okHead + "ok"), later: cat(harness.FCGIRecordID(6, 2, []byte("x"), 0), fcgiDone()), laterDelay: 200 * time.Millisecond},
		{name: "unknowntypelate", raw: fcgiOut(okHead + "ok"), later: cat(harness.FCGIRecord(42, []byte("xyz"), 0), fcgiDone()), laterDelay: 200 * time.Millisecond},
		{name: "versionlate", raw: fcgiOut(okHead + "ok"), later: cat([]byte{0, 6, 0, 1, 0, 1, 0, 0, 'x'}, fcgiDone()), laterDelay: 200 * time.Millisecond},
		{name: "cantmpxlate", raw: fcgiOut(okHead + "ok"), later: cat(fcgiOut(""), harness.FCGIEnd(0, 1, 0)), laterDelay: 200 * time.Millisecond},
		{name: "badname", raw: clean("X(A): v\r\n\r\nx")},
		{name: "splitlf", raw: cat(fcgiOut("X-A: 1\n"), fcgiOut("\n"), fcgiOut("body"), fcgiDone())},
		{name: "clcomma", raw: clean("Content-Length: 5, 5\r\n\r\nhello")},
		{name: "clneg", raw: clean("Content-Length: -1\r\n\r\nhello")},
		{name: "cltwosame", raw: clean("Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello")},
		{name: "cltwodiff", raw: clean("Content-Length: 5\r\nContent-Length: 3\r\n\r\nhello")},
		{name: "ctrl", raw: clean("X-A: a\x01b\r\n\r\nx")},
		{name: "statuslower", raw: clean("status: 404\r\n\r\nx")},
		{name: "statusnospace", raw: clean("Status:404\r\n\r\nx")},
		{name: "stderronly", raw: cat(fcgiErr("only stderr"), fcgiOut(""), harness.FCGIEnd(0, 0, 0))},
		{name: "bigstderr", raw: cat(harness.FCGIRecord(7, bytes.Repeat([]byte("e"), 65535), 0), harness.FCGIRecord(7, bytes.Repeat([]byte("e"), 65535), 0), clean(okHead+"ok"))},
		{name: "bigbody", raw: cat(fcgiOut(okHead), tiny(strings.Repeat("b", 300<<10), 65535), fcgiDone())},
	}
	for _, c := range dribbled {
		dc := cases[slices.IndexFunc(cases, func(x wireCase) bool { return x.name == c })]
		dc.name += "dribble"
		dc.dribble = true
		cases = append(cases, dc)
	}
	return cases
}

// dribbled are the cases also sent a few bytes per write.
// (Not those whose outcome hangs on whether the gateway has read the
// fault by the time it answers: the "late" cases send it 200 ms on.)
var dribbled = []string{"ok", "split", "lf", "emptystdoutbody", "stderr", "otherid", "noout",
	"closemidbody", "closemidpadding", "closelength", "noblank", "splitlf"}

// wireOutcome is what an HTTP client saw for one case, and then for an
// ordinary request on the same connection.
type wireOutcome struct {
	status int
	header map[string][]string // without Date, Server and the framing
	body   string
	cut    bool   // the body ended before its framing said
	next   string // what the next request on the connection got
	slow   bool   // the body took more than 2 s
	port   string // the client's port, which the access log names
}

// String renders o for comparison: a front's own error answer (5xx) by its
// status alone, since nginx's HTML page and the gateway's line of text
// differ on purpose, and without the headers the gateway adds to answers
// of its own or of a compressible type (Vary, X-Content-Type-Options: the
// README's gzip and error page rows).
func (o wireOutcome) String() string {
	if o.status == 0 {
		return "no response; next=" + o.next
	}
	if o.status >= 500 {
		return fmt.Sprintf("%d cut=%v next=%s slow=%v", o.status, o.cut, o.next, o.slow)
	}
	keys := make([]string, 0, len(o.header))
	for k := range o.header {
		if k != "Vary" && k != "X-Content-Type-Options" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var h []string
	for _, k := range keys {
		v := strings.Join(o.header[k], "|")
		if len(v) > 40 {
			v = fmt.Sprintf("%.20s...(%d bytes)", v, len(v))
		}
		h = append(h, k+"="+v)
	}
	body := o.body
	if len(body) > 40 {
		body = fmt.Sprintf("%.20s...(%d bytes)", body, len(body))
	}
	return fmt.Sprintf("%d [%s] body=%q cut=%v next=%s slow=%v", o.status, strings.Join(h, " "), body, o.cut, o.next, o.slow)
}

// wireSend sends the case's request to addr, reads the response, then
// sends an ordinary request on the same connection.
func wireSend(t *testing.T, addr string, c wireCase) wireOutcome {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Past 2 s an answer counts as slow; nginx leaves one waiting for
	// good (keep/cllarger).
	conn.SetDeadline(time.Now().Add(6 * time.Second))
	method := c.method
	if method == "" {
		method = "GET"
	}
	var o wireOutcome
	_, o.port, _ = net.SplitHostPort(conn.LocalAddr().String())
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "%s /index.php?case=%s HTTP/1.1\r\nHost: shop.example\r\n\r\n", method, c.name)
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		o.next = "(" + err.Error() + ")"
		return o
	}
	return wireFinish(conn, br, res, c.pause, o)
}

// wireFinish fills o from the final answer res read off conn: its status,
// headers (less those every server sets its own way), body, whether it was
// cut or slow; then sends an ordinary request on the same connection and
// notes what it got. A 101 leaves the connection to another protocol.
func wireFinish(conn net.Conn, br *bufio.Reader, res *http.Response, pause time.Duration, o wireOutcome) wireOutcome {
	o.status = res.StatusCode
	if o.header == nil {
		o.header = map[string][]string{}
	}
	for k, v := range res.Header {
		switch k {
		case "Date", "Server", "Connection", "Keep-Alive", "Content-Length":
			continue
		}
		o.header[k] = v
	}
	start := time.Now()
	b, err := io.ReadAll(res.Body)
	o.slow = time.Since(start) > 2*time.Second
	o.body = string(b)
	o.cut = err != nil
	if o.cut || res.Close || res.StatusCode == 101 {
		o.next = "closed"
		return o
	}
	time.Sleep(pause)
	fmt.Fprintf(conn, "GET /index.php?case=ok HTTP/1.1\r\nHost: shop.example\r\n\r\n")
	res2, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		o.next = "closed"
		return o
	}
	b2, err := io.ReadAll(res2.Body)
	switch {
	case err != nil:
		o.next = fmt.Sprintf("%d %q cut", res2.StatusCode, b2)
	case res2.StatusCode >= 500:
		o.next = strconv.Itoa(res2.StatusCode)
	default:
		o.next = fmt.Sprintf("%d %q", res2.StatusCode, b2)
	}
	return o
}

// judgeWire compares the gateway's outcome g of case name with each nginx
// set-up's in out: the same, or a difference expected lists with both
// sides exactly (noted in seen). A listed difference that no longer shows
// fails too, so the list cannot drift either way.
func judgeWire(t *testing.T, name string, out map[string]wireOutcome, g wireOutcome, expected map[string]wireDiff, seen map[string]bool) {
	t.Helper()
	for _, v := range []string{"keep", "once"} {
		n, key := out[v].String(), v+"/"+name
		want, listed := expected[key]
		switch {
		case n == g.String() && listed:
			t.Errorf("%s: listed as a difference, but both now give %s", key, n)
		case n == g.String():
		case !listed:
			t.Errorf("%s: unlisted difference\n    nginx   %s\n    gateway %s", key, n, g)
		case want.nginx != n || want.gateway != g.String():
			t.Errorf("%s: the listed difference changed\n    nginx   %s\n      want  %s\n    gateway %s\n      want  %s", key, n, want.nginx, g, want.gateway)
		default:
			seen[key] = true
		}
	}
}

// wireAllSeen fails for each listed difference no case showed.
func wireAllSeen(t *testing.T, expected map[string]wireDiff, seen map[string]bool) {
	t.Helper()
	for key := range expected {
		if !seen[key] {
			t.Errorf("%s: listed difference not seen", key)
		}
	}
}

// wireLogLine waits for the gateway's access line of the client port
// since its log was mark bytes long to satisfy good, and returns it: the
// first line of that port since the case began (a port may come again
// over the run; the next request's line follows), written as the handler
// unwinds, maybe after the client saw the answer.
func wireLogLine(gw *gwProc, mark int, port string, good func(line string) bool) (string, bool) {
	remote := `"remote":"127.0.0.1:` + port + `"`
	var line string
	_, ok := textWhen(gw.stderr.String, func(text string) bool {
		line = ""
		for l := range strings.SplitSeq(text[mark:], "\n") {
			// Not a "php stderr" line, which names the client too.
			if strings.Contains(l, remote) && strings.Contains(l, `"msg":"request"`) {
				line = l
				break
			}
		}
		return good(line)
	})
	return line, ok
}

// wireExpected are the differences from nginx, each with both sides as
// String renders them, keyed by "keep/CASE" (nginx with fastcgi_keep_conn
// and a keep-alive upstream) or "once/CASE" (nginx without).
type wireDiff struct{ nginx, gateway, why string }

func wireExpected() map[string]wireDiff {
	const ok = `next=200 "ok" slow=false`
	const e502 = `502 cut=false next=200 "ok" slow=false`
	d := map[string]wireDiff{}
	both := func(name, nginx, gateway, why string) {
		d["keep/"+name] = wireDiff{nginx, gateway, why}
		d["once/"+name] = wireDiff{nginx, gateway, why}
	}
	both("emptystdout", e502, `200 [Content-Type=text/plain] body="abcd" cut=false `+ok,
		"an empty STDOUT record before the header's end: nginx takes it for the end of the output (502, \"upstream prematurely closed FastCGI stdout\"); the gateway skips empty STDOUT records, as it does once the header is in, where nginx skips them too (emptystdoutbody)")
	both("emptystdouthead", e502, `200 [Content-Type=text/plain] body="ab" cut=false `+ok, "as emptystdout")
	for _, name := range []string{"otheridafter", "unknowntypebody", "versionbody"} {
		both(name, "no response; next=(unexpected EOF)", e502,
			"an invalid record after a whole header, in the same read: nginx drops the client connection without a byte; the gateway, which takes the records already received before it answers, answers 502")
	}
	both("badname", `no response; next=(malformed MIME header line: "X(A): v")`, e502,
		"a header name with characters a field name may not have: nginx passes the line on, and the client cannot read the answer; the gateway answers 502")
	for _, name := range []string{"cantmpx", "overloaded", "unknownrole"} {
		both(name, `200 [Content-Type=text/plain] body="ok" cut=false `+ok, e502,
			"END_REQUEST says the server rejected the request (FCGI_CANT_MPX_CONN, FCGI_OVERLOADED, FCGI_UNKNOWN_ROLE): nginx ignores protocolStatus and passes what came as a whole answer; the gateway answers 502 and logs the status")
	}
	both("status1000", "no response; next=(malformed HTTP status code \"1000\")", e502,
		"nginx sends \"HTTP/1.1 1000\", which no client can read; the gateway takes three digits from 200 only")
	both("status2", `404 [] body="x" cut=false `+ok, e502,
		"two Status lines: nginx takes the first; the gateway refuses the ambiguous header block (parseCGIHeader)")
	both("fold", e502, `200 [X-A=1 2] body="x" cut=false `+ok,
		"an obs-fold line: nginx answers 502; the gateway joins it to the header before with one space, as RFC 9112 section 5.2 lets a proxy do")
	both("longheader", e502, `200 [X-Long=vvvvvvvvvvvvvvvvvvvv...(102400 bytes)] body="x" cut=false `+ok,
		"a 100 KiB header line: nginx's fastcgi_buffer_size (4 KiB) refuses it; the gateway takes header blocks up to 8 MiB, as PHP apps send such lines (field notes: 300 KB through php-fpm)")
	both("teandcl", `200 [] body="5\r\n" cut=false `+ok, `200 [] body="5\r\nhello\r\n0\r\n\r\n" cut=false `+ok,
		"Transfer-Encoding and Content-Length from the app: nginx keeps the Content-Length and cuts the body there; the gateway, as RFC 9112 section 6.3 has a Transfer-Encoding override a Content-Length, drops the length and sends the body whole")
	both("hopbyhop", `200 [Proxy-Connection=close Upgrade=h2c X-A=1] body="x" cut=false `+ok, `200 [X-A=1] body="x" cut=false `+ok,
		"connection-specific headers from the app: nginx passes Upgrade and Proxy-Connection on; the gateway drops them (RFC 9110 section 7.6.1)")
	d["keep/cllarger"] = wireDiff{`200 [] body="short" cut=true next=closed slow=true`, `200 [] body="short" cut=true next=closed slow=false`,
		"a body shorter than the app's Content-Length: nginx with a keep-alive upstream leaves the client waiting for the rest until a timeout; the gateway closes the connection at once"}
	// Without FCGI_KEEP_CONN the server's close is the end of the
	// response to nginx: an answer cut short there is passed on as whole.
	// The gateway always asks to keep the connection, and a close before
	// END_REQUEST is a cut.
	for name, g := range map[string]string{
		"closemidbody": `"partial"`, "closemidrecordheader": `"partial"`, "closemidcontent": `"partialab"`,
		"closemidpadding": `"partialab"`, "closemidend": `"whole"`, "closebeforeend": `"whole"`,
		"closeafterheader": `""`,
	} {
		d["once/"+name] = wireDiff{`200 [Content-Type=text/plain] body=` + g + ` cut=false ` + ok, `200 [Content-Type=text/plain] body=` + g + ` cut=true next=closed slow=false`,
			"nginx without fastcgi_keep_conn takes the server's close for the end of the answer and passes a cut one as whole; the gateway never does"}
	}
	d["keep/closelength"] = wireDiff{`200 [] body="whole" cut=false next=closed slow=false`, `200 [] body="whole" cut=false ` + ok,
		"a close without END_REQUEST once the app's Content-Length is sent: both pass the whole answer on; nginx then closes the client connection, the gateway keeps it, the answer being whole and framed"}
	both("cltwodiff", `200 [] body="hel" cut=false `+ok, `200 [] body="hello" cut=false `+ok,
		"two Content-Length lines that disagree: nginx takes the last and cuts the body there; the gateway drops both (logged) and sends the body as it came, ended by the FastCGI records")
	both("ctrl", `no response; next=(malformed MIME header line: "X-A: a\x01b")`, `200 [X-A=a b] body="x" cut=false `+ok,
		"a control character in a header value: nginx passes it on, and the client cannot read the answer; the gateway turns it into a space (headerValue)")
	// Sent a few bytes at a time, as themselves, except where the header
	// went out before the fault arrived: the gateway then cuts the answer
	// it began, as it does for any failure after the header.
	for _, name := range dribbled {
		for _, v := range []string{"keep/", "once/"} {
			if e, ok := d[v+name]; ok {
				d[v+name+"dribble"] = e
			}
		}
	}
	both("s205", `205 [] body="body" cut=false `+ok, `205 [] body="" cut=false `+ok,
		"a 205 with a body: nginx passes the body; the gateway drops it, as RFC 9110 section 15.3.6 asks (README, the 205 row)")
	both("status103", `103 [Link=</a.css>] body="" cut=false next=closed slow=false`, e502,
		"Status: 103 as the final status: nginx sends it, and a client takes it for an informational answer and waits for another; the gateway takes codes from 200 only (parseStatus)")
	for _, name := range []string{"otheridlate", "unknowntypelate", "versionlate"} {
		both(name, "no response; next=(unexpected EOF)", `200 [Content-Type=text/plain] body="ok" cut=true next=closed slow=false`,
			"an invalid record once the header and the start of the body are in: nginx drops the client connection without a byte; the gateway has sent what came and cuts the answer")
	}
	both("cantmpxlate", `200 [Content-Type=text/plain] body="ok" cut=false `+ok, `200 [Content-Type=text/plain] body="ok" cut=true next=closed slow=false`,
		"as cantmpx, once the header and the start of the body are out: the gateway cuts the answer")
	return d
}

// TestFCGIWireDiffNginx: every case to nginx with a keep-alive upstream,
// to nginx without, and to the gateway; what the client sees must be the
// same, apart from the differences wireExpected lists with their reasons,
// each of which must still be seen. For every answer the gateway makes a
// 502 or cuts, its access log line gives the error; it never panics, and
// once the cases are done no FastCGI connection is busy and no goroutine
// is left over.
func TestFCGIWireDiffNginx(t *testing.T) {
	t.Parallel()
	harness.Require(t, "nginx")
	cases := wireCases()
	byName := map[string]wireCase{}
	for _, c := range cases {
		byName[c.name] = c
	}
	script := func(p map[string]string) harness.FakeFCGIAnswer {
		name := strings.TrimPrefix(p["QUERY_STRING"], "case=")
		c, ok := byName[name]
		if !ok {
			return harness.FakeFCGIAnswer{Raw: clean("Status: 500\r\n\r\nno case " + name)}
		}
		return harness.FakeFCGIAnswer{Raw: c.raw, Close: c.closeAfter, Later: c.later, LaterDelay: c.laterDelay, Dribble: c.dribble}
	}
	// One fake server per front: the connections each holds are its own.
	fkKeep := harness.StartFakeFCGI(t, script)
	fkOnce := harness.StartFakeFCGI(t, script)
	fkGW := harness.StartFakeFCGI(t, script)
	root := t.TempDir()
	writeTree(t, root, map[string]string{"index.php": "<?php // answered by the fake FastCGI server\n"})
	ng := harness.StartNginx(t, 2, func(addrs []string) string {
		loc := func(pass string) string {
			return fmt.Sprintf(`
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root/index.php;
            fastcgi_read_timeout 5s;
            %s
        }`, pass)
		}
		return fmt.Sprintf(`
    upstream keep { server %s; keepalive 2; }
    server { listen %s; root %s; %s }
    server { listen %s; root %s; %s }
`, fkKeep.Addr, addrs[0], root, loc("fastcgi_keep_conn on; fastcgi_pass keep;"),
			addrs[1], root, loc("fastcgi_pass "+fkOnce.Addr+";"))
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.Log())
		}
	})
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fkGW.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_PHP_MAX_CONNS=1",
		"SESSIONGATE_PHP_TIMEOUT=5s",
		"SESSIONGATE_ADMIN_PPROF=on",
	})
	gwAddr := strings.TrimPrefix(gw.URL, "http://")
	_, gwPort, _ := net.SplitHostPort(gwAddr)
	if o := wireSend(t, gwAddr, byName["ok"]); o.status != 200 {
		t.Fatalf("ok: %s", o)
	}
	var base gwHeld
	eventually(t, 10*time.Second, "the gateway to close the first client connection", func() bool {
		base = heldBy(t, gw, gwPort)
		return base.clients == 0
	})

	expected := wireExpected()
	seen := map[string]bool{}
	for _, c := range cases {
		out := map[string]wireOutcome{"keep": wireSend(t, ng.Addrs[0], c), "once": wireSend(t, ng.Addrs[1], c)}
		mark := len(gw.stderr.String())
		g := wireSend(t, gwAddr, c)
		judgeWire(t, c.name, out, g, expected, seen)
		if g.status >= 500 || g.status == 0 || g.cut {
			// A cut answer is logged with the status sent, or with 502
			// when php-fpm's side failed.
			line, ok := wireLogLine(gw, mark, g.port, func(line string) bool {
				return strings.Contains(line, `"error":`) && (g.status == 200 || strings.Contains(line, `"status":502`))
			})
			if !ok {
				t.Errorf("%s: the gateway's answer (%s) is logged as %s; want 502 with the error", c.name, g, line)
			}
		}
	}
	wireAllSeen(t, expected, seen)

	var held gwHeld
	if !poll(10*time.Second, func() bool {
		held = heldBy(t, gw, gwPort)
		// Two goroutines of slack: one comes and goes in the idle
		// gateway; a leak per broken case would be dozens.
		return held.busy == 0 && held.waiting == 0 && held.clients == 0 && held.goroutines <= base.goroutines+2
	}) {
		res, err := http.Get(gw.Admin + "/debug/pprof/goroutine?debug=1")
		var prof []byte
		if err == nil {
			prof, _ = io.ReadAll(res.Body)
			res.Body.Close()
		}
		t.Errorf("after the cases: %v busy FastCGI connections, %v waiting, %d client connections, %d goroutines (%d before):\n%s",
			held.busy, held.waiting, held.clients, held.goroutines, base.goroutines, prof)
	}
	// Every 502 logged (an answer, or a cut one) is counted.
	logged := 0
	for l := range strings.SplitSeq(gw.stderr.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"status":502`) {
			logged++
		}
	}
	m := metricstest.Scrape(t, gw.Admin+"/metrics")
	if n := m[`sessiongate_http_requests_total{code="502",upstream="php"}`]; n == 0 || n != float64(logged) {
		t.Errorf("%v 502s counted, %d logged", n, logged)
	}
	if strings.Contains(gw.stderr.String(), "panic") {
		t.Errorf("the gateway panicked:\n%s", gw.stderr.String())
	}
}

// TestPHPKilledAfterWholeContentLengthIsSentWhole: a download script whose
// worker dies once it has sent its Content-Length and every byte of it (a
// crash in a shutdown function, the OOM killer at the end of the request)
// gave the client a whole file behind nginx, but through the gateway the
// download lost its last buffered bytes, and a small answer came as no
// answer at all. Real php-fpm, its worker killed with SIGKILL after flush().
func TestPHPKilledAfterWholeContentLengthIsSentWhole(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"get.php": `<?php $n = (int)$_GET['n']; header('Content-Length: ' . $n); echo str_repeat('d', $n); while (ob_get_level()) { ob_end_flush(); } flush(); posix_kill(getmypid(), 9);`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, nil)
	// Not gzipped: the gateway's compression would take the length away.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	// Sizes the gateway's socket takes whole before the kill: of a larger
	// answer, what php-fpm's kernel still held is lost with the reset the
	// kill sends (a cut, rightly).
	for _, n := range []int{40 << 10, 10} {
		res, err := client.Get(fmt.Sprintf("%s/get.php?n=%d", g.URL, n))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || err != nil || len(b) != n || strings.Trim(string(b), "d") != "" {
			t.Errorf("n=%d: %d, %d bytes, %v; want 200 with the %d bytes whole", n, res.StatusCode, len(b), err, n)
		}
	}
	if _, ok := textWhen(g.Logs.String, func(text string) bool {
		return strings.Count(text, `"status":200`) == 2 && strings.Count(text, "PHP failed after its whole answer was sent") == 2
	}); !ok {
		t.Errorf("want two 200s logged with the failure named:\n%s", g.Logs.String())
	}
}

// TestPHPClientLeavesAfterWholeContentLength: a script that answers with
// its Content-Length and then works on (the answer-early pattern of
// scripts without fastcgi_finish_request), whose client reads the whole
// answer and closes its connection. The client got every byte, and nginx
// logs the 200 it sent; the gateway logged 499, a client that left before
// its answer was complete. It logs the 200, saying that PHP had not ended.
func TestPHPClientLeavesAfterWholeContentLength(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"early.php": `<?php header('Content-Length: 5'); header('Connection: close'); echo 'early'; while (ob_get_level()) { ob_end_flush(); } flush(); sleep(2);`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	g := startGWOn(t, fpm, root, nil)
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /early.php HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	c.Close()
	if res.StatusCode != 200 || string(b) != "early" || err != nil {
		t.Fatalf("%d %q %v; want 200 \"early\" whole", res.StatusCode, b, err)
	}
	line, ok := logLine(g.Logs, `"path":"/early.php"`)
	if !ok || !strings.Contains(line, `"status":200`) || !strings.Contains(line, "client left after its whole answer") {
		t.Errorf("the log line of the answer the client had whole: %s\nwant status 200 and PHP's end missed named", line)
	}
}

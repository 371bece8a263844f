package integration

// HTTP/1.x request framing and methods compared with nginx 1.22 in front
// of the same php-fpm and gunicorn: the shapes where the gateway differed.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHTTP1RealBinary: the shapes that depend on the binary's own
// http.Server, against a real php-fpm.
func TestHTTP1RealBinary(t *testing.T) {
	t.Parallel()
	gw, addr, root := startPHPBinary(t)
	t.Run("SmugglingPastTheChunkedClose", func(t *testing.T) { smugglingPastTheChunkedClose(t, gw, addr, root) })
	t.Run("RefusalsLogged", func(t *testing.T) { refusalsLogged(t, gw, addr) })
	t.Run("FoldedHeaderLines", func(t *testing.T) { foldedHeaderLines(t, gw, addr, root) })
	t.Run("HTTP10TransferEncoding", func(t *testing.T) { http10TransferEncoding(t, gw, addr) })
}

// http10TransferEncoding: net/http ignores a Transfer-Encoding on HTTP/1.0
// and frames the body by its Content-Length, or as none, and hides the
// header. PHP got the chunk-size line "3\r\n" as the body of a request
// whose client sent "abc" chunked, or an empty body; RFC 9112 section 6.1
// calls such framing faulty, and nginx answers 400. So does the gateway
// now, closing the connection, and neither app runs.
func http10TransferEncoding(t *testing.T, gw *gwProc, addr string) {
	for _, tc := range []struct{ name, req string }{
		{"TE and CL", "POST /echo.php HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"CL and TE, keep-alive", "POST /echo.php HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"TE only", "POST /echo.php HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"TE gzip", "POST /echo.php HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc"},
	} {
		before := len(gw.stderr.String())
		resp, closed := raw(t, addr, tc.req)
		if !strings.HasPrefix(resp, "HTTP/1.0 400 ") && !strings.HasPrefix(resp, "HTTP/1.1 400 ") || strings.Contains(resp, "len=") || !closed {
			t.Errorf("%s: connection closed %v, want 400 and a close, PHP not run:\n%s", tc.name, closed, resp)
		}
		since := func() string { return gw.stderr.String()[before:] }
		if log, ok := textWhen(since, func(log string) bool { return strings.Contains(log, `"status":400`) }); !ok {
			t.Errorf("%s: the 400 is not in the log:\n%s", tc.name, log)
		}
	}
	// Without Transfer-Encoding, HTTP/1.0 bodies are served.
	resp, _ := raw(t, addr, "POST /echo.php HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	if !strings.HasPrefix(resp, "HTTP/1.0 200 ") || !strings.Contains(resp, "len=3") {
		t.Errorf("HTTP/1.0 POST: %q", resp)
	}
}

// foldedHeaderLines: a header line starting with a space or tab continues
// the line before it (obs-fold, RFC 9112 section 5.2). net/http joined
// such lines silently, so "X-A: y" followed by " Content-Length: 58" was
// one header X-A with no body length: a proxy in front that took the
// second line for a header of its own sent 58 bytes of body, which the
// gateway ran as a request of their own (here smuggled.php). nginx answers
// 400 to any folded line, and so does the gateway now, closing the
// connection; the same bytes in a body are only a body.
func foldedHeaderLines(t *testing.T, gw *gwProc, addr, root string) {
	marker := filepath.Join(root, "smuggled.ran")
	smuggled := "GET /smuggled.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	for _, tc := range []struct{ name, req string }{
		{"folded into X-A", "POST /echo.php HTTP/1.1\r\nHost: x\r\nX-A: y\r\n Content-Length: 58\r\n\r\n" + smuggled},
		{"tab-folded into X-A", "POST /echo.php HTTP/1.1\r\nHost: x\r\nX-A: y\r\n\tContent-Length: 58\r\n\r\n" + smuggled},
		{"Content-Length value folded", "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 3\r\n\r\nabc" + smuggled},
		{"Transfer-Encoding value folded", "POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"second request folded", "GET /echo.php HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo.php HTTP/1.1\r\nHost: x\r\nX-A: y\r\n Content-Length: 58\r\n\r\n" + smuggled},
	} {
		os.Remove(marker)
		before := len(gw.stderr.String())
		resp, closed := raw(t, addr, tc.req)
		if strings.Contains(resp, "SMUGGLED") {
			t.Errorf("%s: smuggled request answered:\n%s", tc.name, resp)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("%s: smuggled request ran in PHP", tc.name)
		}
		if i := strings.LastIndex(resp, "HTTP/1.1 "); i < 0 || statusOf(resp[i:]) != 400 || !closed {
			t.Errorf("%s: connection closed %v, want it closed after a 400:\n%s", tc.name, closed, resp)
		}
		since := func() string { return gw.stderr.String()[before:] }
		if log, ok := textWhen(since, func(log string) bool { return strings.Contains(log, `"status":400`) }); !ok {
			t.Errorf("%s: the 400 is not in the log:\n%s", tc.name, log)
		}
	}

	// A head whose framing the gateway's raw scanner cannot follow but
	// net/http takes (a Content-Length padded past what the scanner
	// keeps of a line; a line of bare CRs after a POST, which net/http
	// skips) ended the search for folds on the connection: the folded
	// request after it ran the request in its body. The connection now
	// closes after such a head's answer.
	folded := "POST /echo.php HTTP/1.1\r\nHost: x\r\nX-A: y\r\n Content-Length: 58\r\n\r\n" + smuggled
	for _, tc := range []struct{ name, req string }{
		{"after a padded Content-Length", "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: " + strings.Repeat("0", 150) + "3\r\n\r\nabc" + folded},
		{"after CRs between requests", "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\r\nGET /echo.php HTTP/1.1\r\nHost: x\r\n\r\n" + folded},
	} {
		os.Remove(marker)
		resp, closed := raw(t, addr, tc.req)
		if strings.Contains(resp, "SMUGGLED") {
			t.Errorf("%s: smuggled request answered:\n%s", tc.name, resp)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("%s: smuggled request ran in PHP", tc.name)
		}
		if !strings.HasPrefix(resp, "HTTP/1.1 200 ") || !strings.Contains(resp, "len=3") || !closed {
			t.Errorf("%s: connection closed %v, want the first request served:\n%s", tc.name, closed, resp)
		}
	}

	// The same bytes inside a body are the body's, and the connection
	// goes on.
	body := "a\r\n b\r\n\tc\r\n\r\n d"
	resp, closed := raw(t, addr, "POST /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body+
		"GET /echo.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if n := strings.Count(resp, "HTTP/1.1 200 "); n != 2 || !closed || !strings.Contains(resp, "len="+strconv.Itoa(len(body))) {
		t.Errorf("a body with lines starting with a space: %d answers:\n%s", n, resp)
	}
}

// refusalsLogged: a request net/http refuses before the handler runs
// (headers over SESSIONGATE_MAX_HEADER_BYTES: 431) answered with nothing in
// the log; nginx logs its 400 "Request Header Or Cookie Too Large".
func refusalsLogged(t *testing.T, gw *gwProc, addr string) {
	before := len(gw.stderr.String())
	resp, _ := raw(t, addr, "GET /index.php HTTP/1.1\r\nHost: x\r\nCookie: a="+strings.Repeat("b", 9<<10)+"\r\n\r\n")
	if statusOf(resp) != 431 {
		t.Fatalf("headers over the limit: %.80q, want 431", resp)
	}
	since := func() string { return gw.stderr.String()[before:] }
	if log, ok := textWhen(since, func(log string) bool { return strings.Contains(log, `"status":431`) }); !ok {
		t.Fatalf("the 431 is not in the log:\n%s", log)
	}

	// Sent in one go after a request the gateway answers (pipelined), a
	// request net/http refuses is read from its buffer: it got its 501
	// but no log line and no count.
	before = len(gw.stderr.String())
	resp, _ = raw(t, addr, "GET /index.php HTTP/1.1\r\nHost: x\r\n\r\nPOST /index.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
	if i := strings.LastIndex(resp, "HTTP/1.1 "); i < 0 || statusOf(resp[i:]) != 501 {
		t.Fatalf("pipelined request with an unknown Transfer-Encoding: %q, want 501 last", resp)
	}
	if log, ok := textWhen(since, func(log string) bool { return strings.Contains(log, `"status":501`) }); !ok {
		t.Errorf("the pipelined 501 is not in the log:\n%s", log)
	}
}

// smugglingPastTheChunkedClose: the gateway never reads another request
// from a connection whose request was framed differently from what a proxy
// in front may have assumed (TestRequestSmuggling_CLTE). Two shapes got
// around that, and the request after the body ran in PHP:
//   - "OPTIONS *", which net/http answered itself (200, no log line) without
//     the gateway's handler ever seeing the chunked body; nginx answers it
//     400.
//   - HTTP/1.0 with Transfer-Encoding: net/http ignores (and hides) the
//     header on HTTP/1.0 and frames by Content-Length, on a kept-alive
//     connection. RFC 9112 section 6.1 says to close the connection after
//     such a message; nginx answers 400.
//   - A request the gateway refuses before its framing checks (TRACE, too
//     many header lines): the 405 kept the connection.
//
// The real binary, because the first shape depends on its http.Server.
func smugglingPastTheChunkedClose(t *testing.T, gw *gwProc, addr, root string) {
	marker := filepath.Join(root, "smuggled.ran")
	smuggled := "GET /smuggled.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	// The smuggled request as one chunk: a front that honours the chunked
	// encoding sees a body, a back end framing by Content-Length a request.
	chunk := "3a\r\n" + smuggled + "\r\n0\r\n\r\n"

	for _, tc := range []struct{ name, req string }{
		{"OPTIONS * CL.TE", "OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"OPTIONS * chunked", "OPTIONS * HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + smuggled},
		{"HTTP/1.0 TE.CL", "POST /echo.php HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk},
		{"HTTP/1.0 TE only", "GET /echo.php HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk},
		{"OPTIONS * HTTP/1.0 TE.CL", "OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk},
		// Refused before the framing checks ran.
		{"TRACE CL.TE", "TRACE /echo.php HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TRACE HTTP/1.0 TE.CL", "TRACE /echo.php HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk},
	} {
		os.Remove(marker)
		resp, closed := raw(t, addr, tc.req)
		if strings.Contains(resp, "SMUGGLED") {
			t.Errorf("%s: smuggled request answered:\n%s", tc.name, resp)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("%s: smuggled request ran in PHP", tc.name)
		}
		if n := strings.Count(resp, "HTTP/1."); n != 1 || !closed {
			t.Errorf("%s: %d responses, connection closed %v; want one response and a close:\n%s", tc.name, n, closed, resp)
		}
	}

	// OPTIONS * is refused like nginx does, and logged like any request.
	resp, _ := raw(t, addr, "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if code := statusOf(resp); code != 400 {
		t.Errorf("OPTIONS *: %d, want 400 like nginx:\n%s", code, resp)
	}
	if _, ok := logLine(gw.stderr, `"path":"*"`); !ok {
		t.Errorf("OPTIONS * not in the access log:\n%s", gw.stderr.String())
	}

	// HTTP/1.0 without Transfer-Encoding is still answered, keep-alive or not.
	resp, _ = raw(t, addr, "POST /echo.php HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc")
	if !strings.HasPrefix(resp, "HTTP/1.0 200 ") || !strings.Contains(resp, "len=3") {
		t.Errorf("HTTP/1.0 keep-alive POST: %q", resp)
	}
}

// TestMethodCase: methods are case-sensitive (RFC 9110 section 9.1), and
// nginx refuses a method with lowercase letters (400). gunicorn upper-cases
// the method instead, so "trace" reached Django as TRACE, which the gateway
// promises never reaches it (TestCrossSiteTracing), and "head" was a HEAD
// to Django but not to the gateway; PHP got "get" as REQUEST_METHOD. Such
// requests now get 400 on every path; methods in capitals, known or not,
// reach PHP and Django intact.
func TestMethodCase(t *testing.T) {
	t.Parallel()
	addr := startEchoStack(t)
	for _, target := range []string{"/dj/x", "/info.php", "/no/such/page", "/style.css"} {
		for _, m := range []string{"trace", "get", "head", "Post", "pRoPfInD"} {
			resp, _ := raw(t, addr, m+" "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if code := statusOf(resp); code != 400 {
				t.Errorf("%s %s: %d, want 400 like nginx:\n%.300s", m, target, code, resp)
			}
			if strings.Contains(resp, "REQUEST_METHOD") {
				t.Errorf("%s %s reached the app:\n%.300s", m, target, resp)
			}
		}
	}
	for _, m := range []string{"PROPFIND", "PURGE", "M-SEARCH", "OPTIONS"} {
		for _, target := range []string{"/dj/x", "/info.php"} {
			if got := rawJSON(t, addr, m+" "+target+" HTTP/1.1", "Host: x")["REQUEST_METHOD"]; got != m {
				t.Errorf("%s %s: REQUEST_METHOD %q", m, target, got)
			}
		}
	}
}

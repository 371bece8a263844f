package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/internal/testnet"
)

// The scanner finds the request whose head has a folded line, whatever
// the read sizes, and never takes a body's lines for a head's.
func TestFoldScanner(t *testing.T) {
	get := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	body := "a\r\n b\r\n\tc\r\n\r\n d\n e"
	post := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\n\r\n" + body
	for _, tc := range []struct {
		name   string
		stream string
		want   int64
	}{
		{"none", get + get, 0},
		{"space", "GET / HTTP/1.1\r\nHost: x\r\nX-A: y\r\n Content-Length: 5\r\n\r\nhello", 1},
		{"tab", "GET / HTTP/1.1\r\nX-A: y\r\n\tz\r\n\r\n", 1},
		{"bare LF", "GET / HTTP/1.1\nX-A: y\n z\n\n", 1},
		{"third request", get + post + "GET / HTTP/1.1\r\nX-A: y\r\n z\r\n\r\n", 3},
		{"body lines", post + post + get, 0},
		{"padded Content-Length", "POST / HTTP/1.1\r\nContent-Length:  \t19 \r\n\r\n" + body + get, 0},
		{"same Content-Length twice", "POST / HTTP/1.1\r\nContent-Length: 19\r\nContent-Length: 19\r\n\r\n" + body + get, 0},
		{"Content-Length folded", "POST / HTTP/1.1\r\nContent-Length:\r\n 19\r\n\r\n" + body, 1},
		{"empty lines before a request", get + "\r\n" + get + "\r\nGET / HTTP/1.1\r\nX: y\r\n z\r\n\r\n", 3},
		{"long lines", "GET /" + strings.Repeat("a", 300) + " HTTP/1.1\r\nX-Long: " + strings.Repeat("b", 300) + "\r\n\r\n" + post + "GET / HTTP/1.1\r\nX: y\r\n z\r\n\r\n", 3},
		// The scanner stops where it cannot follow: after a chunked body
		// the gateway closes the connection; a Content-Length net/http
		// refuses closes it too.
		{"after a chunked body", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n a\r\n \r\n0\r\n\r\n" + get, 0},
		{"after two Content-Length", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n \r\n \r\n", 0},
		{"folded head with a chunked body", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX: y\r\n z\r\n\r\n0\r\n\r\n", 1},
	} {
		for _, step := range []int{1, 2, 7, len(tc.stream)} {
			s := newFoldScanner()
			for p := tc.stream; len(p) > 0; {
				n := min(step, len(p))
				s.scan([]byte(p[:n]))
				p = p[n:]
			}
			if got := s.folded.Load(); got != tc.want {
				t.Errorf("%s, read %d bytes at a time: folded at request %d, want %d", tc.name, step, got, tc.want)
			}
		}
	}
}

// A request with a folded header line, and any after it on its connection,
// is refused with 400, logged and counted, and the connection closed; the
// handler never sees it.
func TestFoldedRequestRefused(t *testing.T) {
	logs := &testlog.Buffer{}
	var handled atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "served "+r.URL.Path)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var counted atomic.Int64
	go srv.Serve(logRefusals(srv, ln, "gateway", slog.New(slog.NewJSONHandler(logs, nil)), func(_ string, status int) {
		if status == 400 {
			counted.Add(1)
		}
	}, nil))
	t.Cleanup(func() { srv.Close() })

	resp := testnet.Exchange(t, ln.Addr().String(), "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /folded HTTP/1.1\r\nHost: x\r\nX-A: y\r\n Content-Length: 37\r\n\r\n"+
		"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	if !strings.Contains(resp, "served /first") || strings.Contains(resp, "/smuggled") || strings.Contains(resp, "/folded") ||
		!strings.Contains(resp, "HTTP/1.1 400 ") || strings.Count(resp, "HTTP/1.1 ") != 2 {
		t.Errorf("got %q, want /first served, then 400 and the connection closed", resp)
	}
	if n := handled.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	if log := logs.String(); strings.Count(log, `"status":400`) != 1 || !strings.Contains(log, `"path":"/folded"`) || !strings.Contains(log, "obs-fold") {
		t.Errorf("log %q, want one 400 line for /folded", log)
	}
	if n := counted.Load(); n != 1 {
		t.Errorf("counted %d refusals, want 1", n)
	}
}

// The scanner says at which request it stopped following the connection,
// wherever net/http may go on: a Content-Length padded past maxScanLine,
// a line of bare CRs after a POST (net/http skips up to four CR or LF
// bytes there), a chunked body.
func TestFoldScannerStops(t *testing.T) {
	get := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	post := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	for _, tc := range []struct {
		name   string
		stream string
		want   int64
	}{
		{"followed", get + post + "\r\n" + get, 0},
		{"padded Content-Length", get + "POST / HTTP/1.1\r\nContent-Length: " + strings.Repeat("0", 150) + "3\r\n\r\nabc" + get, 2},
		{"CRs after a POST", post + "\r\r\n" + get + get, 2},
		{"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get, 1},
	} {
		for _, step := range []int{1, 3, len(tc.stream)} {
			s := newFoldScanner()
			for p := tc.stream; len(p) > 0; {
				n := min(step, len(p))
				s.scan([]byte(p[:n]))
				p = p[n:]
			}
			if got := s.stopped.Load(); got != tc.want {
				t.Errorf("%s, read %d bytes at a time: stopped at request %d, want %d", tc.name, step, got, tc.want)
			}
		}
	}
}

// After a request whose head the scanner could not follow, the connection
// closes: a folded request after it was served, and the request in its
// body with it.
func TestUnfollowedHeadClosesConnection(t *testing.T) {
	var handled atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "served "+r.URL.Path)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(logRefusals(srv, ln, "gateway", nil, nil, nil))
	t.Cleanup(func() { srv.Close() })

	folded := "POST /folded HTTP/1.1\r\nHost: x\r\nX-A: y\r\n Content-Length: 37\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, first := range []string{
		"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: " + strings.Repeat("0", 150) + "3\r\n\r\nabc",
		"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\r\nGET /first HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		handled.Store(0)
		resp := testnet.Exchange(t, ln.Addr().String(), first+folded)
		if !strings.Contains(resp, "served /first") || strings.Contains(resp, "/smuggled") || strings.Contains(resp, "/folded") ||
			!strings.Contains(resp, "Connection: close") {
			t.Errorf("got %q, want /first served and the connection closed", resp)
		}
		if n := handled.Load(); n > 2 {
			t.Errorf("handler ran %d times, want the first requests only", n)
		}
	}
}

// An HTTP/1.0 request with a Transfer-Encoding, which net/http frames by
// its Content-Length (or as bodiless) and hides the header of, is refused
// with 400, logged and counted, and the connection closed; the handler
// never sees it. HTTP/1.1 with one, and HTTP/1.0 without, are served.
func TestHTTP10TransferEncodingRefused(t *testing.T) {
	logs := &testlog.Buffer{}
	var bodies []string
	var mu sync.Mutex
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.URL.Path+" "+string(b))
		mu.Unlock()
		io.WriteString(w, "served "+r.URL.Path)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var counted atomic.Int64
	go srv.Serve(logRefusals(srv, ln, "gateway", slog.New(slog.NewJSONHandler(logs, nil)), func(_ string, status int) {
		if status == 400 {
			counted.Add(1)
		}
	}, nil))
	t.Cleanup(func() { srv.Close() })

	for _, req := range []string{
		"POST /te HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /te HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /first HTTP/1.0\r\nConnection: keep-alive\r\n\r\nPOST /te HTTP/1.0\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
	} {
		resp := testnet.Exchange(t, ln.Addr().String(), req)
		if !strings.Contains(resp, "HTTP/1.0 400 ") || strings.Contains(resp, "served /te") {
			t.Errorf("%q: got %q, want 400", req, resp)
		}
	}
	mu.Lock()
	if strings.Join(bodies, "|") != "/first " {
		t.Errorf("handler ran for %q, want /first only", bodies)
	}
	bodies = nil
	mu.Unlock()
	if log := logs.String(); strings.Count(log, `"status":400`) != 3 || !strings.Contains(log, `"path":"/te"`) || !strings.Contains(log, "Transfer-Encoding") {
		t.Errorf("log %q, want three 400 lines for /te", log)
	}
	if n := counted.Load(); n != 3 {
		t.Errorf("counted %d refusals, want 3", n)
	}

	for _, req := range []string{
		"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /plain HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
	} {
		if resp := testnet.Exchange(t, ln.Addr().String(), req); !strings.Contains(resp, " 200 OK") || !strings.Contains(resp, "served /") {
			t.Errorf("%q: got %q, want it served", req, resp)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(bodies, "|") != "/chunked abc|/plain abc" {
		t.Errorf("handler got %q", bodies)
	}
}

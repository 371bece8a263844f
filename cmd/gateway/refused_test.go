package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/internal/testnet"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

// Requests net/http refuses before any handler runs (request line and
// headers over SESSIONGATE_MAX_HEADER_BYTES: 431; malformed framing: 400;
// an unsupported Transfer-Encoding: 501; an unknown Expect: 417) never
// reached the access log: a client told 431 left no trace for the
// operator, where nginx logs its 400 and 414. Each now logs one "request"
// line with the status; requests the handler answers log nothing extra.
func TestRefusedRequestsAreLogged(t *testing.T) {
	logs := &testlog.Buffer{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "HTTP/1.1 400 looks like a status line")
		}),
		MaxHeaderBytes: serverMaxHeaderBytes(8 << 10),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var counted []string
	var countMu sync.Mutex
	count := func(upstream string, status int) {
		countMu.Lock()
		counted = append(counted, upstream+" "+strconv.Itoa(status))
		countMu.Unlock()
	}
	countedSince := func(n int) []string {
		countMu.Lock()
		defer countMu.Unlock()
		return slices.Clone(counted[n:])
	}
	go srv.Serve(logRefusals(srv, ln, "redirect", slog.New(slog.NewJSONHandler(logs, nil)), count, nil))
	t.Cleanup(func() { srv.Close() })

	send := func(req string) string {
		t.Helper()
		return testnet.Exchange(t, ln.Addr().String(), req)
	}
	for _, tc := range []struct {
		name, req string
		status    string
	}{
		{"headers too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 9<<10) + "\r\n\r\n", "431"},
		// The request line alone past the limit: its target is too
		// long, as nginx says (net/http: 431).
		{"request line too long", "GET /?" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "414"},
		{"request line too long, after a served request", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /?" + strings.Repeat("a", 16<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "414"},
		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", "400"},
		{"transfer-encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "501"},
		{"expect", "POST / HTTP/1.1\r\nHost: x\r\nExpect: x\r\nContent-Length: 1\r\n\r\na", "417"},
		{"after a served request", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", "431"},
		// Sent with the request before, so net/http reads it from its
		// buffer, not the connection: no StateActive for it, and it went
		// unlogged and uncounted.
		{"pipelined after a served request", "GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "501"},
	} {
		before, countedBefore := len(logs.String()), len(countedSince(0))
		resp := send(tc.req)
		if !strings.Contains(resp, "HTTP/1.1 "+tc.status+" ") {
			t.Fatalf("%s: got %q, want %s", tc.name, resp, tc.status)
		}
		line := logs.String()[before:]
		if strings.Count(line, `"msg":"request"`) != 1 || !strings.Contains(line, `"status":`+tc.status) ||
			!strings.Contains(line, `"upstream":"redirect"`) || !strings.Contains(line, `"remote":"127.0.0.1:`) {
			t.Errorf("%s: log %q, want one request line with status %s", tc.name, line, tc.status)
		}
		if got := countedSince(countedBefore); !slices.Equal(got, []string{"redirect " + tc.status}) {
			t.Errorf("%s: counted %v, want [%s]", tc.name, got, tc.status)
		}
	}
	before, countedBefore := len(logs.String()), len(countedSince(0))
	if resp := send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 200 ") {
		t.Fatalf("served request: %.60q", resp)
	}
	if s := logs.String()[before:]; s != "" {
		t.Errorf("a request the handler answered logged %q", s)
	}
	if got := countedSince(countedBefore); len(got) != 0 {
		t.Errorf("a request the handler answered was counted as refused: %v", got)
	}
}

// Request headers not whole within SESSIONGATE_READ_HEADER_TIMEOUT (a
// slowloris client, or a slow link) are logged 408, as nginx logs them.
// net/http answered 400 Bad Request when the head stopped in its request
// line or a field name (logged "refused by net/http: Bad Request", which
// named neither the timeout nor a request that was only slow), and closed
// without a word or a log line when it stopped in a field value. Now the
// answer is 408 or none (nginx: none), never 400. On a kept-alive
// connection too, after a served request. A malformed request is still a
// 400.
func TestHeaderTimeoutIs408(t *testing.T) {
	logs := &testlog.Buffer{}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := make(chan int, 10)
	go srv.Serve(logRefusals(srv, ln, "gateway", slog.New(slog.NewJSONHandler(logs, nil)), func(_ string, status int) { counted <- status }, nil))
	t.Cleanup(func() { srv.Close() })
	for _, tc := range []struct {
		name, req, status, answer string
		// together: the second head is sent with the first request
		// (pipelined), so net/http has it in its buffer when the first
		// response ends, and reads the connection only for the rest.
		together bool
	}{
		{"cut in a field value", "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a", "408", "", false},
		{"cut in a field name", "GET / HTTP/1.1\r\nHost: x\r\nX-Sl", "408", "408", false},
		{"cut in the request line", "GET /index.p", "408", "408", false},
		{"after a served request", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX-Sl", "408", "408", false},
		{"after a served request, in a value", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX-Slow: a", "408", "", false},
		{"pipelined after a served request, in a value", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX-Slow: a", "408", "", true},
		{"pipelined after a served request, in a name", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX-Sl", "408", "408", true},
		{"pipelined after a served request, in its request line", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /index.p", "408", "408", true},
		{"malformed", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", "400", "400", false},
		// net/http ends its read for a client leaving, during the
		// first request, with a deadline in the past: a timeout, but
		// not the next head's.
		{"malformed after a served request", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", "400", "400", false},
	} {
		before := len(logs.String())
		var resp string
		if second, ok := strings.CutPrefix(tc.req, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); ok && !tc.together {
			// The second head comes once the first is answered.
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			r := bufio.NewReader(c)
			if res, err := http.ReadResponse(r, nil); err != nil || res.StatusCode != 404 {
				t.Fatalf("%s: the first request: %v %v", tc.name, res, err)
			} else {
				io.Copy(io.Discard, res.Body)
			}
			io.WriteString(c, second)
			b, _ := io.ReadAll(r)
			c.Close()
			resp = string(b)
		} else {
			resp = testnet.Exchange(t, ln.Addr().String(), tc.req)
		}
		if tc.together {
			first, rest, ok := strings.Cut(resp, "404 page not found\n")
			if !ok || !strings.HasPrefix(first, "HTTP/1.1 404 ") {
				t.Errorf("%s: the first request got %q", tc.name, resp)
			}
			resp = rest
		}
		if tc.answer == "" && resp != "" || tc.answer != "" && (!strings.HasPrefix(resp, "HTTP/1.1 "+tc.answer+" ") || !strings.Contains(resp, "Connection: close")) {
			t.Errorf("%s: got %q, want %q and a close", tc.name, resp, tc.answer)
		}
		var line string
		for deadline := time.Now().Add(5 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			line = logs.String()[before:]
		}
		if !strings.Contains(line, `"status":`+tc.status) || (tc.status == "408") != strings.Contains(line, "SESSIONGATE_READ_HEADER_TIMEOUT") {
			t.Errorf("%s: logged %s", tc.name, line)
		}
		select {
		case got := <-counted:
			if strconv.Itoa(got) != tc.status {
				// Seen once in CI (an extra 400 counted before a
				// pipelined head's 408): the lines say whose it was.
				t.Errorf("%s: counted %d; logged since the case began:\n%s", tc.name, got, logs.String()[before:])
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: not counted", tc.name)
		}
	}
	// A connection that sends nothing, and one kept alive past its idle
	// time, are closed without a line, as by nginx.
	before := len(logs.String())
	if resp := testnet.Exchange(t, ln.Addr().String(), ""); resp != "" {
		t.Errorf("a silent connection got %q", resp)
	}
	if resp := testnet.Exchange(t, ln.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 404 ") || strings.Count(resp, "HTTP/1.1") != 1 {
		t.Errorf("a kept-alive connection left idle got %q", resp)
	}
	time.Sleep(100 * time.Millisecond)
	if got := logs.String()[before:]; got != "" {
		t.Errorf("logged for a silent and an idle connection: %s", got)
	}
}

// With the access log off (no logger) refusals are still counted for the
// metrics, and nothing is logged.
func TestRefusedRequestsCountedWithoutAccessLog(t *testing.T) {
	srv := &http.Server{Handler: http.NotFoundHandler(), MaxHeaderBytes: serverMaxHeaderBytes(8 << 10)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go srv.Serve(logRefusals(srv, ln, "gateway", nil, func(_ string, status int) { got <- status }, nil))
	t.Cleanup(func() { srv.Close() })
	resp := testnet.Exchange(t, ln.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 9<<10)+"\r\n\r\n")
	if !strings.Contains(resp, "HTTP/1.1 431 ") {
		t.Fatalf("got %.60q, want 431", resp)
	}
	if status := <-got; status != 431 {
		t.Errorf("counted %d, want 431", status)
	}
}

// The wrapped connection keeps what net/http looks for on a *net.TCPConn:
// io.ReaderFrom (sendfile for static files) and CloseWrite (the half-close
// before dropping a connection whose body was not read).
func TestRefusalConnKeepsTCPFeatures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wl := logRefusals(&http.Server{Handler: http.NotFoundHandler()}, ln, "gateway", slog.New(slog.DiscardHandler), nil, nil)
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			io.ReadAll(c)
		}
	}()
	c, err := wl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(io.ReaderFrom); !ok {
		t.Error("accepted connection is no io.ReaderFrom: static files lose sendfile")
	}
	if _, ok := c.(interface{ CloseWrite() error }); !ok {
		t.Error("accepted connection has no CloseWrite")
	}
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hello")
	f.Seek(0, 0)
	if n, err := c.(io.ReaderFrom).ReadFrom(f); n != 5 || err != nil {
		t.Errorf("ReadFrom = %d, %v", n, err)
	}
}

// Over TLS, net/http writes its refusals on the *tls.Conn it would make
// itself, unseen: they were neither logged nor counted. The listener does
// the handshakes now and wraps each HTTP/1.x connection, which keeps
// Request.TLS; HTTP/2 is served as before, a plain-HTTP request to the
// port still gets net/http's 400 and its handshake error is logged, and a
// slow handshake holds up no other client.
func TestRefusedRequestsOverTLSAreLogged(t *testing.T) {
	cert, key := testtls.Pair(t)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	logs, errLogs := &testlog.Buffer{}, &testlog.Buffer{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s tls=%v", r.Proto, r.TLS != nil)
		}),
		MaxHeaderBytes:    serverMaxHeaderBytes(8 << 10),
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2", "http/1.1"}},
		ErrorLog:          log.New(errLogs, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var counted, counted400 atomic.Int64
	go srv.Serve(logRefusals(srv, ln, "gateway", slog.New(slog.NewJSONHandler(logs, nil)), func(_ string, status int) {
		switch status {
		case 431:
			counted.Add(1)
		case 400:
			counted400.Add(1)
		}
	}, srv.TLSConfig.Clone()))
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	// A client that opens a connection and sends nothing: its handshake
	// must not keep the others waiting.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 9<<10)+"\r\n\r\n")
	resp, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(resp), "HTTP/1.1 431 ") {
		t.Fatalf("over TLS: got %.60q, want 431", resp)
	}
	if line := logs.String(); !strings.Contains(line, `"status":431`) || counted.Load() != 1 {
		t.Errorf("the 431 over TLS: log %q, counted %d", line, counted.Load())
	}

	for _, h2 := range []bool{false, true} {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}}
		if !h2 {
			client.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		res, err := client.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		want := "HTTP/1.1 tls=true"
		if h2 {
			want = "HTTP/2.0 tls=true"
		}
		if string(b) != want {
			t.Errorf("got %q, want %q", b, want)
		}
		client.CloseIdleConnections()
	}

	resp2 := testnet.Exchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// net/http logs the handshake error after it has closed the
	// connection with its 400: the client may have read it all first.
	logged := false
	for deadline := time.Now().Add(5 * time.Second); !logged && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		logged = strings.Contains(errLogs.String(), "TLS handshake error")
	}
	if !strings.HasPrefix(resp2, "HTTP/1.0 400 Bad Request") || !logged {
		t.Errorf("plain HTTP to the TLS port: got %.80q, error log %q", resp2, errLogs.String())
	}
	// That 400 is in the access log and the metrics, as nginx logs its
	// 400 for "The plain HTTP request was sent to HTTPS port"; before, it
	// left no trace there.
	if line := logs.String(); !strings.Contains(line, `"status":400`) || !strings.Contains(line, "plain-HTTP request on the HTTPS port") || counted400.Load() != 1 {
		t.Errorf("the 400 for plain HTTP to the TLS port: log %q, counted %d", line, counted400.Load())
	}
}

// A static file over HTTPS/1.1 goes out through ResponseWriter.ReadFrom,
// in 64 KiB calls (server's sendfileChunk). net/http hands each call to
// the connection's own ReadFrom when it has one: over TLS, where there is
// no sendfile, refusalConn's io.Copy then allocated a 32 KiB buffer per
// call, half a megabyte of garbage per megabyte sent, where net/http
// copies through a pooled buffer (24 KiB per 1 MiB file at the gateway
// binary before the listener wrapped TLS connections, 544 KiB after; here
// 15 KiB per 4 MiB response against 2 MiB).
func TestTLSStaticCopyAllocatesNoBufferPerChunk(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled buffers: allocations are no measure")
	}
	cert, key := testtls.Pair(t)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	const size, chunk = 4 << 20, 64 << 10
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			rf := w.(io.ReaderFrom)
			for off := 0; off < size; off += chunk {
				if _, err := rf.ReadFrom(&zeros{chunk}); err != nil {
					return
				}
			}
		}),
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2", "http/1.1"}},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(logRefusals(srv, ln, "gateway", nil, nil, srv.TLSConfig.Clone()))
	t.Cleanup(func() { srv.Close() })
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	get := func() {
		res, err := client.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if n != size || res.ProtoMajor != 1 || res.TLS == nil {
			t.Fatalf("got %d bytes over %s", n, res.Proto)
		}
	}
	get()
	const runs = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		get()
	}
	runtime.ReadMemStats(&after)
	perResponse := (after.TotalAlloc - before.TotalAlloc) / runs
	t.Logf("%d KiB allocated per 4 MiB response", perResponse>>10)
	if perResponse > 1<<20 {
		t.Errorf("%d KiB allocated per 4 MiB response, want well under the 2 MiB of a 32 KiB buffer per 64 KiB chunk", perResponse>>10)
	}
}

// zeros reads as n zero bytes, as a file would (no WriterTo), allocating
// nothing.
type zeros struct{ n int }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), z.n)]
	clear(p)
	z.n -= len(p)
	return len(p), nil
}

// Plain HTTP on the TLS port was answered 400 and logged only when its
// first five bytes were one of crypto/tls's "GET /", "HEAD ", "POST ",
// "PUT /", "OPTIO": a DELETE, a PATCH, a request in absolute form ("GET
// http://...") or one whose request line came in pieces got the
// connection closed without a word and left no access-log line, where
// nginx answers 400 ("The plain HTTP request was sent to HTTPS port") and
// logs it. Any method token and a space now get the 400, the log line and
// the count; bytes that are no request line are still just closed.
func TestPlainHTTPOnTLSPortAnyMethod(t *testing.T) {
	cert, key := testtls.Pair(t)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	srv := &http.Server{
		Handler:           http.NotFoundHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := make(chan int, 10)
	go srv.Serve(logRefusals(srv, ln, "gateway", slog.New(slog.NewJSONHandler(logs, nil)), func(_ string, status int) { counted <- status }, srv.TLSConfig.Clone()))
	t.Cleanup(func() { srv.Close() })
	for _, tc := range []struct {
		name   string
		parts  []string
		answer bool
	}{
		{"GET", []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n"}, true},
		{"DELETE", []string{"DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n"}, true},
		{"PATCH", []string{"PATCH /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"}, true},
		{"absolute form", []string{"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"}, true},
		{"PROPFIND", []string{"PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n"}, true},
		{"method in pieces", []string{"PROPFI", "ND / HTTP/1.1\r\nHost: x\r\n\r\n"}, true},
		{"garbage", []string{"\x00\x01\x02\x03\xff\xfe garbage\r\n\r\n"}, false},
		{"no space", []string{"DELETE\r\n\r\n"}, false},
	} {
		before := len(logs.String())
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		for i, p := range tc.parts {
			if i > 0 {
				time.Sleep(50 * time.Millisecond)
			}
			io.WriteString(c, p)
		}
		b, _ := io.ReadAll(c)
		c.Close()
		if got := strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request"); got != tc.answer {
			t.Errorf("%s: got %q, want a 400: %v", tc.name, b, tc.answer)
		}
		if !tc.answer {
			continue
		}
		var line string
		for deadline := time.Now().Add(5 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			line = logs.String()[before:]
		}
		if !strings.Contains(line, `"status":400`) || !strings.Contains(line, "plain-HTTP request on the HTTPS port") {
			t.Errorf("%s: logged %q", tc.name, line)
		}
		select {
		case got := <-counted:
			if got != 400 {
				t.Errorf("%s: counted %d", tc.name, got)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: not counted", tc.name)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if len(counted) != 0 {
		t.Errorf("more counted than answered: %d", len(counted))
	}
}

package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/internal/testnet"
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
	go srv.Serve(logRefusals(srv, ln, "redirect", slog.New(slog.NewJSONHandler(logs, nil)), count))
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

// With the access log off (no logger) refusals are still counted for the
// metrics, and nothing is logged.
func TestRefusedRequestsCountedWithoutAccessLog(t *testing.T) {
	srv := &http.Server{Handler: http.NotFoundHandler(), MaxHeaderBytes: serverMaxHeaderBytes(8 << 10)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go srv.Serve(logRefusals(srv, ln, "gateway", nil, func(_ string, status int) { got <- status }))
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
	wl := logRefusals(&http.Server{Handler: http.NotFoundHandler()}, ln, "gateway", slog.New(slog.DiscardHandler), nil)
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

package server

import (
	"bufio"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// onlyReader hides a reader's WriteTo, so that io.Copy hands it to the
// response writer's ReadFrom, as it does a file limited to its length.
type onlyReader struct{ io.Reader }

// rawExchange sends req to h behind the access log's writer and returns
// the response as read, its body read whole.
func rawExchange(t *testing.T, e *env, h http.HandlerFunc, req string) (*http.Response, string) {
	t.Helper()
	ts := httptest.NewServer(e.srv.logRequestsOut(h, nil))
	defer ts.Close()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// TestRecorderReadFromSmallBodyKeepsLength: a short body of unknown
// length sent through ReadFrom (io.Copy from a reader) gets the
// Content-Length net/http gives it, as through Write: the recorder
// flushed it before the handler returned, so it went out chunked, and to
// an HTTP/1.0 client without a length, ending its keep-alive connection.
func TestRecorderReadFromSmallBodyKeepsLength(t *testing.T) {
	e := newEnv(t, nil)
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.Copy(w, onlyReader{strings.NewReader("hello")})
	}
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
	} {
		res, body := rawExchange(t, e, h, req)
		if res.ContentLength != 5 || res.TransferEncoding != nil || res.Close || body != "hello" {
			t.Errorf("%q: length %d, %v, close %v, body %q; want Content-Length: 5, kept alive", strings.SplitN(req, "\r\n", 2)[0],
				res.ContentLength, res.TransferEncoding, res.Close, body)
		}
	}
}

// TestRecorderHijackAfterHeaderLogged: a handler that took the connection
// over after writing a status (its header then goes out first, as
// net/http flushes it on Hijack) left the recorder's final flush to a
// hijacked response: net/http's buffer is gone by then, the flush panicked
// in the access log's deferred function, and the request got no access
// line, nor its observers a count.
func TestRecorderHijackAfterHeaderLogged(t *testing.T) {
	e := newEnv(t, nil)
	h := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "x")
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		brw.WriteString("0\r\n\r\n")
		brw.Flush()
		c.Close()
	}
	ts := httptest.NewServer(e.srv.logRequestsOut(http.HandlerFunc(h), nil))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	defer ts.Close()
	res, err := http.Get(ts.URL + "/hijacked")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(res.Body)
	res.Body.Close()
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(e.logs.String(), `"path":"/hijacked"`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no access line for the hijacked request; log: %s", e.logs.String())
		}
	}
}

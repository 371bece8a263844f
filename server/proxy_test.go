package server

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/internal/testh2"
)

// TestPHPNoBodyStatus: PHP output after a 204 or 304 status (whitespace
// after a closing ?>, a template rendered anyway) is dropped, as nginx
// does, instead of aborting the response the client should get.
func TestPHPNoBodyStatus(t *testing.T) {
	for _, code := range []int{http.StatusNoContent, http.StatusNotModified} {
		e := newEnv(t, nil)
		e.php.respond = func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: code, Header: http.Header{"Etag": {`"x"`}}, Body: io.NopCloser(strings.NewReader("\n\n")), ContentLength: 2, Request: r}, nil
		}
		srv := httptest.NewServer(e.srv.Handler())
		res, err := http.Get(srv.URL + "/hello.php")
		if err != nil {
			t.Errorf("%d with a PHP body: %v", code, err)
		} else {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != code || res.Header.Get("Etag") != `"x"` {
				t.Errorf("%d with a PHP body: got %d %v", code, res.StatusCode, res.Header)
			}
		}
		srv.Close()
	}
}

// TestPHPResetContentHasNoBody: a 205 must not carry content (RFC 9110
// section 15.3.6), but net/http lets a handler write one, so PHP's output
// after http_response_code(205) reached the client, with PHP's own
// Content-Length or chunked. It is dropped as for 204 and 304, and the
// response says Content-Length: 0, the framing the RFC names for it.
func TestPHPResetContentHasNoBody(t *testing.T) {
	for _, length := range []int64{-1, 11} {
		e := newEnv(t, nil)
		e.php.respond = func(r *http.Request) (*http.Response, error) {
			h := http.Header{"Content-Type": {"text/html"}}
			if length >= 0 {
				h.Set("Content-Length", "11")
			}
			return &http.Response{StatusCode: http.StatusResetContent, Header: h, Body: io.NopCloser(strings.NewReader("BODY-OF-205")), ContentLength: length, Request: r}, nil
		}
		srv := httptest.NewServer(e.srv.Handler())
		res, err := http.Get(srv.URL + "/hello.php")
		if err != nil {
			t.Fatalf("length %d: %v", length, err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusResetContent || len(b) != 0 || res.ContentLength != 0 || res.Header.Get("Content-Length") != "0" {
			t.Errorf("length %d: %d, body %q (%v), Content-Length %q", length, res.StatusCode, b, err, res.Header.Get("Content-Length"))
		}
		srv.Close()
	}
}

// TestPHPWithoutContentTypeNotSniffed: a PHP response without a
// Content-Type (header_remove('Content-Type'), default_mimetype "") goes
// out without one, as nginx passes it. net/http's server sniffed one from
// the first bytes instead ("text/html; charset=utf-8" for markup), a type
// neither PHP nor nginx gave: with X-Content-Type-Options: nosniff (a
// header sites add to every response) a browser then renders as HTML what
// behind nginx it would not, and the asserted charset overrides the
// page's own. Static files are never sniffed either (serveStatic).
func TestPHPWithoutContentTypeNotSniffed(t *testing.T) {
	for _, accept := range []string{"", "gzip"} {
		e := newEnv(t, nil)
		e.php.respond = func(r *http.Request) (*http.Response, error) {
			body := "<html><script>alert(1)</script></html>" + strings.Repeat(" ", 300)
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
		}
		srv := httptest.NewServer(e.srv.Handler())
		req, _ := http.NewRequest("GET", srv.URL+"/hello.php", nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "" || !strings.HasPrefix(string(b), "<html>") {
			t.Errorf("Accept-Encoding %q: %d Content-Type %q body %.20q, want 200, no Content-Type, the body as PHP sent it", accept, res.StatusCode, res.Header.Get("Content-Type"), b)
		}
		srv.Close()
	}
}

// TestMountWithoutContentTypeNotSniffed: the same for a mounted upstream
// (Django behind httputil.ReverseProxy, which copies no Content-Type when
// the app sent none): no type is invented for it.
func TestMountWithoutContentTypeNotSniffed(t *testing.T) {
	e := newEnv(t, nil, WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><script>alert(1)</script></html>")
	})))
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/admin/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "" || !strings.HasPrefix(string(b), "<html>") {
		t.Errorf("%d Content-Type %q body %.20q, want 200, no Content-Type, the body as the app sent it", res.StatusCode, res.Header.Get("Content-Type"), b)
	}
}

// heldBody is a PHP response body that gives its first part, then waits
// until the client has read it (read is closed) or 5 s have passed before
// it gives the rest; released says which came first.
type heldBody struct {
	first, rest string
	read        chan struct{}
	released    chan bool
	step        int
}

func (b *heldBody) Read(p []byte) (int, error) {
	b.step++
	switch b.step {
	case 1:
		return copy(p, b.first), nil
	case 2:
		select {
		case <-b.read:
			b.released <- true
		case <-time.After(5 * time.Second):
			b.released <- false
		}
		if b.rest != "" {
			return copy(p, b.rest), nil
		}
	}
	return 0, io.EOF
}

func (b *heldBody) Close() error { return nil }

// TestPHPFlushWithContentLength: what PHP flushes reaches the client while
// the script goes on, when PHP declared a Content-Length too: the idiom
// that answers at once and then keeps working (header('Content-Length:
// ...'); echo $page; flush(); then the mails, the cache warming), and a
// download that flushes its progress. The gateway flushed only responses
// without a length, so the client got nothing of those until the script
// ended (its last 4 KiB stuck in net/http's buffer, all of it when
// compressed), where nginx sends it as it comes.
func TestPHPFlushWithContentLength(t *testing.T) {
	page := strings.Repeat("<p>row</p>\n", 100)
	for _, c := range []struct {
		name        string
		first, rest string
		gzip        bool
	}{
		{"the whole answer, then work", page, "", false},
		{"the whole answer, compressed, then work", page, "", true},
		{"a part, then the rest", page[:500], page[500:], false},
		{"a part compressed, then the rest", page[:500], page[500:], true},
	} {
		e := newEnv(t, nil)
		body := &heldBody{first: c.first, rest: c.rest, read: make(chan struct{}), released: make(chan bool, 1)}
		e.php.respond = func(r *http.Request) (*http.Response, error) {
			n := len(c.first) + len(c.rest)
			h := http.Header{"Content-Type": {"text/html"}, "Content-Length": {strconv.Itoa(n)}}
			return &http.Response{StatusCode: 200, Header: h, Body: body, ContentLength: int64(n), Request: r}, nil
		}
		srv := httptest.NewServer(e.srv.Handler())
		req, _ := http.NewRequest("GET", srv.URL+"/hello.php", nil)
		if c.gzip {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var r io.Reader = res.Body
		if c.gzip {
			if res.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("%s: not compressed: %v", c.name, res.Header)
			}
			if r, err = gzip.NewReader(res.Body); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		first := make([]byte, len(c.first))
		if _, err := io.ReadFull(r, first); err != nil || string(first) != c.first {
			t.Fatalf("%s: first part %q, %v", c.name, first, err)
		}
		close(body.read)
		rest, err := io.ReadAll(r)
		res.Body.Close()
		if err != nil || string(rest) != c.rest {
			t.Errorf("%s: the rest %q, %v", c.name, rest, err)
		}
		if !<-body.released {
			t.Errorf("%s: the first part reached the client only once PHP had ended", c.name)
		}
		srv.Close()
	}
}

// TestPHPClientThatLeftGetsNoAnswer: a request the gateway takes for one
// whose client left (499) gets no answer. net/http sent 200 with an empty
// body for the handler that wrote nothing, and a client that only
// half-closed its connection (its request sent, still reading: net/http
// cancels the request on that end of input) read that 200 as the page of
// a script that never ran. Over HTTP/1.1 the connection closes with
// nothing on it, as from nginx; over HTTP/2 the stream is reset. The
// access log and the observers see the 499 once.
func TestPHPClientThatLeftGetsNoAnswer(t *testing.T) {
	var o observations
	e := newEnv(t, nil, WithObserver(o.observe))
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return nil, &fcgi.Error{Status: fcgi.StatusClientClosedRequest, Op: "read response header", Err: context.Canceled}
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /hello.php HTTP/1.1\r\nHost: example.com\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c)
	if len(answer) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("half-closed client: got %q (%v), want the connection closed without an answer", answer, err)
	}
	var got []observed
	for deadline := time.Now().Add(5 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got = o.all()
	}
	time.Sleep(50 * time.Millisecond) // a second observation would come now
	if got = o.all(); len(got) != 1 || got[0].status != fcgi.StatusClientClosedRequest {
		t.Errorf("observations %+v, want one 499", got)
	}
	if log := e.lastLog(t); log["status"] != float64(fcgi.StatusClientClosedRequest) || !strings.Contains(fmt.Sprint(log["error"]), "canceled") {
		t.Errorf("access log %v, want 499 with its reason", log)
	}

	// Over HTTP/2 a client that half-closes has sent END_STREAM, an
	// ordinary request; a 499 there is a stream the client reset, or one
	// PHP's side took for it: either way the stream is reset, not answered.
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return nil, &fcgi.Error{Status: fcgi.StatusClientClosedRequest, Op: "read response header", Err: context.Canceled}
	}
	ts := startH2(t, e.srv.Handler())
	res := testh2.Do(t, ts.Listener.Addr().String(), []testh2.Field{
		{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/hello.php"}}, nil)
	if !res.Reset || res.Status != 0 {
		t.Errorf("HTTP/2: status %d, reset %v; want the stream reset without an answer", res.Status, res.Reset)
	}
}

package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/fcgi"
)

type observed struct {
	upstream string
	status   int
	bytes    int64
	d        time.Duration
}

type observations struct {
	mu  sync.Mutex
	got []observed
}

func (o *observations) observe(ri *RequestInfo, status int, bytes int64, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observed{ri.Upstream, status, bytes, d})
}

func (o *observations) all() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observed(nil), o.got...)
}

// TestObserverSeesEveryRequestOnce drives each kind of outcome through the
// server and checks that every observer sees each request exactly once,
// with the status the access log shows, also with the access log off.
func TestObserverSeesEveryRequestOnce(t *testing.T) {
	for _, accessLog := range []bool{true, false} {
		var a, b observations
		e := newEnv(t, func(c *config.Config) { c.AccessLog = accessLog },
			WithObserver(a.observe), WithObserver(nil), WithObserver(b.observe),
			WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusTeapot)
				io.WriteString(w, "tea")
			})))

		e.do(httptest.NewRequest("GET", "/style.css", nil))
		e.do(httptest.NewRequest("GET", "/hello.php", nil))
		e.do(httptest.NewRequest("GET", "/admin/x", nil))
		e.do(httptest.NewRequest("GET", "/missing.php", nil))
		e.php.respond = func(r *http.Request) (*http.Response, error) {
			return nil, &fcgi.Error{Status: 502, Op: "dial", Err: errors.New("connection refused")}
		}
		e.do(httptest.NewRequest("GET", "/hello.php", nil))
		ctx, cancel := context.WithCancel(context.Background())
		e.php.respond = func(r *http.Request) (*http.Response, error) {
			cancel()
			return nil, context.Canceled
		}
		e.do(httptest.NewRequest("GET", "/hello.php", nil).WithContext(ctx))

		want := []observed{
			{"static", 200, int64(len("body{color:red}")), 0},
			{"php", 200, 3, 0},
			{"django", 418, 3, 0},
			{"gateway", 404, int64(len("Not Found\n")), 0},
			{"php", 502, -1, 0}, // body text is the proxy's business
			{"php", 499, 0, 0},
		}
		for name, o := range map[string]*observations{"first": &a, "second": &b} {
			got := o.all()
			if len(got) != len(want) {
				t.Fatalf("access log %v, %s observer: %d observations, want %d: %+v", accessLog, name, len(got), len(want), got)
			}
			for i, w := range want {
				g := got[i]
				if g.upstream != w.upstream || g.status != w.status || (w.bytes >= 0 && g.bytes != w.bytes) || g.d <= 0 {
					t.Errorf("access log %v, %s observer, request %d: %+v, want %+v (and a positive duration)", accessLog, name, i, g, w)
				}
			}
		}
	}
}

// TestObserverOnAbortedStream: a streamed body cut after the header makes
// ReverseProxy panic with ErrAbortHandler; the request is still observed,
// once, with the upstream error's status.
func TestObserverOnAbortedStream(t *testing.T) {
	var o observations
	e := newEnv(t, nil, WithObserver(o.observe))
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		body := io.MultiReader(strings.NewReader("partial"), errReader{&fcgi.Error{Status: 502, Op: "read response body", Err: io.ErrUnexpectedEOF}})
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(body), Request: r}, nil
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	if res, err := http.Get(srv.URL + "/hello.php"); err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	var got []observed
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got = o.all(); len(got) > 0 {
			break
		}
	}
	time.Sleep(20 * time.Millisecond) // a second observation would show now
	got = o.all()
	if len(got) != 1 || got[0].upstream != "php" || got[0].status != 502 || got[0].bytes != int64(len("partial")) {
		t.Errorf("observations %+v, want one php 502 with 7 bytes", got)
	}
}

type statsPHP struct {
	fakePHP
	stats []fcgi.BackendStats
}

func (s *statsPHP) Stats() []fcgi.BackendStats { return s.stats }

func TestPHPStats(t *testing.T) {
	e := newEnv(t, nil)
	if st := e.srv.PHPStats(); st != nil {
		t.Errorf("a backend without Stats reported %+v", st)
	}
	cfg, err := config.Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:1", "SESSIONGATE_DOCUMENT_ROOT=/srv/site", "SESSIONGATE_STATIC_ROOT=" + e.root, "SESSIONGATE_SESSIONS=off"})
	if err != nil {
		t.Fatal(err)
	}
	want := []fcgi.BackendStats{{Addr: "a:9000", Open: 3, Idle: 1, Busy: 2, Waiting: 4, Healthy: true}}
	s, err := New(cfg, nil, WithPHPBackend(&statsPHP{stats: want}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.PHPStats(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("PHPStats = %+v, want %+v", got, want)
	}

	// The real transport reports its configured backends.
	s2, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.PHPStats(); len(got) != 1 || got[0].Addr != "127.0.0.1:1" {
		t.Errorf("transport PHPStats = %+v", got)
	}
}

// stallAfterBody yields text, then, at its next read (the proxy has written
// text by then), signals written and blocks until the request's context
// ends, failing with its error: PHP still working when its client leaves.
type stallAfterBody struct {
	r       *http.Request
	text    string
	sent    bool
	written chan struct{}
}

func (b *stallAfterBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, b.text), nil
	}
	close(b.written)
	<-b.r.Context().Done()
	return 0, b.r.Context().Err()
}

// TestHeldBodyDroppedOnAbortIsNotCounted: a PHP page that printed a little
// (under 2 KiB, HTTP/1.1, no Content-Length: the gateway holds it to send
// it with a Content-Length) and whose client left before it finished never
// sends those bytes: the abort drops them. The access log and the
// observers (sessiongate_http_response_bytes_total) counted them as
// written to the client all the same.
func TestHeldBodyDroppedOnAbortIsNotCounted(t *testing.T) {
	var o observations
	e := newEnv(t, nil, WithObserver(o.observe))
	written := make(chan struct{})
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		body := &stallAfterBody{r: r, text: strings.Repeat("x", 1000), written: written}
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(body), Request: r}, nil
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /hello.php HTTP/1.1\r\nHost: x\r\n\r\n")
	<-written
	c.Close() // the client leaves
	var got []observed
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got = o.all(); len(got) > 0 {
			break
		}
	}
	if len(got) != 1 || got[0].status != StatusClientClosedRequest || got[0].bytes != 0 {
		t.Fatalf("observations %+v, want one 499 with no bytes written", got)
	}
	if log := e.lastLog(t); log["status"] != float64(StatusClientClosedRequest) || log["bytes"] != float64(0) {
		t.Errorf("access log %v, want 499 with no bytes written", log)
	}
}

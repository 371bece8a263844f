package sessionbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/server"
)

// A PHP response aborted mid-body (the client gone, a worker killed while
// it streamed: the proxy panics with http.ErrAbortHandler) still ends the
// bridge: a session message PHP was sending when it broke off is reported
// as a change not saved, as for a response that ends. The bridge's end ran
// only after the handler returned, so the operator was told nothing of the
// lost change.
func TestAbortedPHPResponseReportsCutMessage(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	logs := captureLog(m)
	id := createSession(t, m, `{"k":"A"}`)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := fcgi.ScriptFrom(r.Context())
		nonce := ""
		for _, p := range s.Extra {
			if p.Name == "SESSIONGATE_NONCE" {
				nonce = p.Value
			}
		}
		w.Write([]byte("first part of the page"))
		// PHP's end-of-request write after its output, cut after its
		// first chunk.
		s.OnStderr([]byte(fmt.Sprintf("PHP message: @sg1:%s:0:0:QUJDREVG#", nonce)))
		panic(http.ErrAbortHandler)
	})
	h := m.PHPHandler(next, PHPOptions{})
	r := requestWithCookie(t, m, id)
	r = r.WithContext(fcgi.WithScript(r.Context(), &fcgi.Script{ScriptName: "/t.php"}))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("panic %v, want http.ErrAbortHandler passed on", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	if !strings.Contains(logs.String(), "PHP session message cut short; change not saved") {
		t.Errorf("the change cut short with the response is not reported:\n%s", logs.String())
	}
}

// neverRunPHP is a PHP backend that fails the test if a request reaches it.
type neverRunPHP struct{ t *testing.T }

func (p neverRunPHP) RoundTrip(r *http.Request) (*http.Response, error) {
	p.t.Error("PHP ran for a request whose client left before its session was opened")
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("page")), Request: r}, nil
}
func (neverRunPHP) Ping(context.Context) error { return nil }
func (neverRunPHP) Close() error               { return nil }

// A client that sends its request and half-closes its connection
// (shutdown(SHUT_WR), still reading), while another request holds its
// session's lock, is taken by net/http for one that left: the lock wait
// ends with the request's context and the request is logged 499. It got
// "200 OK" with an empty body for a script that never ran; it now gets the
// connection closed without an answer, as for a 499 from PHP itself.
func TestClientLeftDuringLockWaitGetsNoAnswer(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hello.php"), []byte("<?php"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"SESSIONGATE_PHP_FPM=127.0.0.1:1", "SESSIONGATE_DOCUMENT_ROOT=/srv/site", "SESSIONGATE_STATIC_ROOT=" + root, "SESSIONGATE_SESSIONS=off"})
	if err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, LockStrict, nil)
	m.o.LockTimeout = 10 * time.Second
	id := createSession(t, m, `{"k":"A"}`)
	holder, err := m.Open(context.Background(), requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release(context.Background())

	type observed struct {
		status int
		err    error
	}
	seen := make(chan observed, 4)
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler), server.WithPHPBackend(neverRunPHP{t}),
		server.WithWrapPHP(func(h http.Handler) http.Handler { return m.PHPHandler(h, PHPOptions{}) }),
		server.WithObserver(func(ri *server.RequestInfo, status int, bytes int64, d time.Duration) {
			seen <- observed{status, ri.Err}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	ck, err := m.cookie.cookie(id, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /hello.php HTTP/1.1\r\nHost: x\r\nCookie: "+ck.String()+"\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, err := io.ReadAll(c)
	if len(answer) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("half-closed client waiting for its session's lock: got %q (%v), want the connection closed without an answer", answer, err)
	}
	select {
	case o := <-seen:
		if o.status != server.StatusClientClosedRequest || o.err == nil || !strings.Contains(o.err.Error(), "waited for its session's lock") {
			t.Errorf("observed %d (%v), want 499 naming the lock wait", o.status, o.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request not observed")
	}
	select {
	case o := <-seen:
		t.Errorf("observed a second time: %+v", o)
	case <-time.After(50 * time.Millisecond):
	}
}

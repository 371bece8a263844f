package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// endless is a PHP response body that never ends; closed reports when the
// proxy gave it up (what frees the php-fpm connection).
type endless struct{ closed chan struct{} }

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func (e endless) Close() error {
	select {
	case <-e.closed:
	default:
		close(e.closed)
	}
	return nil
}

// TestStalledClientReleasesUpstream: a client that keeps its connection
// open but stops reading must not hold the php-fpm connection (a worker)
// for ever. With SESSIONGATE_WRITE_TIMEOUT 0 (no bound on the whole
// response) a write that makes no progress for sendTimeout ends the
// response, like nginx's send_timeout.
func TestStalledClientReleasesUpstream(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.sendTimeout = 200 * time.Millisecond
	body := endless{closed: make(chan struct{})}
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, ContentLength: -1, Request: r}, nil
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	rawGet(t, srv, "/hello.php")
	// The client reads nothing and stays connected.
	select {
	case <-body.closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream response is still held for a client that stopped reading")
	}
}

// TestSendTimeoutIsPerWrite: the bound is on each write's progress, not on
// the whole response: a slow but live download outlasts it many times,
// the end of a chunked body written after a long silence still goes out,
// and a later request on the kept-alive connection is not hit by an old
// deadline.
func TestSendTimeoutIsPerWrite(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.sendTimeout = 300 * time.Millisecond
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			if r.URL.Query().Get("tail") != "" {
				// One piece, then a long silence before the end.
				pw.Write([]byte("a"))
				time.Sleep(time.Second)
				pw.Close()
				return
			}
			for i := 0; i < 10; i++ {
				time.Sleep(100 * time.Millisecond)
				pw.Write([]byte("chunk\n"))
			}
			pw.Close()
		}()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: pr, ContentLength: -1, Request: r}, nil
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(srv.URL + "/hello.php")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || len(b) != 60 {
		t.Fatalf("slow stream: %d bytes, %v", len(b), err)
	}
	time.Sleep(time.Second) // idle on the kept-alive connection, past the bound
	res, err = client.Get(srv.URL + "/hello.php?tail=1")
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || string(b) != "a" {
		t.Fatalf("end of a stream after a silence: %q, %v", b, err)
	}
	res, err = client.Get(srv.URL + "/style.css")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "body{color:red}" {
		t.Fatalf("static after idle: %d %q", res.StatusCode, b)
	}
}

// TestStalledStaticDownloadIsCut: a static file sent to a client that
// stopped reading ends after the send timeout, like nginx's send_timeout,
// instead of holding a connection, a goroutine and an open file for ever; a
// slow but live download of the same file, and a range of it, still arrive
// whole (the timeout bounds each sendfile chunk's progress, not the file).
func TestStalledStaticDownloadIsCut(t *testing.T) {
	e := newEnv(t, nil)
	// 2 s, and the live download pauses 300 ms: each write has at least
	// 1.5 s (three quarters of the timeout), and a reader paused 400 ms
	// with a 1 s timeout was cut on a loaded machine, its goroutine not
	// run again within the 350 ms left.
	e.srv.sendTimeout = 2 * time.Second
	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(e.root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()

	c := rawGet(t, srv, "/big.bin")
	// Reads nothing (socket buffers hold far less than 32 MiB) until the
	// access line says the download ended.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(e.logs.String(), `"path":"/big.bin"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a client that stopped reading for 30 s was not cut (send timeout 2 s): no access line\n%s", e.logs.String())
		}
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := io.Copy(io.Discard, c)
	if n >= int64(len(big)) {
		t.Fatalf("a client that stopped reading still got all %d bytes: the send timeout did not cut it", n)
	}

	// Slow but live: 32 MiB with a 300 ms pause after every 2 MiB, 4.8 s
	// in all, longer than two send timeouts.
	res, err := http.Get(srv.URL + "/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, len(big))
	buf := make([]byte, 1<<20)
	for {
		m, err := res.Body.Read(buf)
		got = append(got, buf[:m]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("slow download cut after %d bytes: %v", len(got), err)
		}
		if len(got)%(2<<20) < m {
			time.Sleep(300 * time.Millisecond)
		}
	}
	res.Body.Close()
	if !bytes.Equal(got, big) {
		t.Fatalf("slow download: %d bytes, want %d", len(got), len(big))
	}

	req, _ := http.NewRequest("GET", srv.URL+"/big.bin", nil)
	req.Header.Set("Range", "bytes=100000-300000")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 206 || !bytes.Equal(part, big[100000:300001]) {
		t.Fatalf("range: %d, %d bytes", res.StatusCode, len(part))
	}
}

// TestStalledClientIsNotAClientThatLeft: a response the send timeout cut
// (the client stayed connected but stopped reading) keeps the status it
// went out with and says why, at warn, whether it came from PHP, through
// buffered writes, or from a static file, through sendfile. A failed
// buffered write makes net/http cancel the request's context, so the PHP
// response was logged and counted as 499 "the client left", which the
// client had not; the static one said "i/o timeout" at info, invisible
// with the access log off.
func TestStalledClientIsNotAClientThatLeft(t *testing.T) {
	e, st := newStalledEnv(t)
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	for i, target := range []string{"/hello.php", "/big.bin"} {
		c := rawGet(t, srv, target)
		// Reads nothing until the request ends: the send timeout cuts it.
		// A fixed 3 s left a loaded machine's handler too little time to
		// fill the socket buffers and wait out the timeout; the client's
		// read then took the rest and nothing was cut.
		st.waitFor(i+1, 30*time.Second)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
		st.check(t, e, target, i, "")
	}
}

// TestStalledHTTP2ClientIsNotAClientThatLeft: over HTTP/2 too, a response
// the send timeout cut (the client keeps the connection but stops reading,
// so the stream's flow-control window stays full) keeps its status and
// says why, at warn. net/http resets a timed-out stream and the handler's
// write fails with "stream closed", the error a client's own RST_STREAM
// gives, and the request's context ends, so the cut was logged and counted
// as 499 "the client left".
func TestStalledHTTP2ClientIsNotAClientThatLeft(t *testing.T) {
	e, st := newStalledEnv(t)
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	client := ts.Client()
	for i, target := range []string{"/hello.php", "/big.bin"} {
		res, err := client.Get(ts.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		if res.ProtoMajor != 2 {
			t.Fatalf("%s over %s, want HTTP/2", target, res.Proto)
		}
		// Reads nothing: the stream's window (4 MiB) fills, the server's
		// writes block, the send timeout cuts them.
		st.waitFor(i+1, 30*time.Second)
		res.Body.Close()
		st.check(t, e, target, i, " over HTTP/2")
	}
}

// stalled observes the statuses of an env whose responses are large
// enough for a client that stops reading to be cut by the send timeout
// (newStalledEnv).
type stalled struct {
	mu  sync.Mutex
	got []int
}

// newStalledEnv is an env with a 1 s send timeout, a 32 MiB static file
// big.bin and a 32 MiB PHP answer at /hello.php, whose observed statuses
// st records.
func newStalledEnv(t *testing.T) (*env, *stalled) {
	st := &stalled{}
	e := newEnv(t, nil, WithObserver(func(_ *RequestInfo, status int, _ int64, _ time.Duration) {
		st.mu.Lock()
		st.got = append(st.got, status)
		st.mu.Unlock()
	}))
	e.srv.sendTimeout = time.Second
	if err := os.WriteFile(filepath.Join(e.root, "big.bin"), make([]byte, 32<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: -1,
			Body: io.NopCloser(bytes.NewReader(make([]byte, 32<<20))), Request: r}, nil
	}
	return e, st
}

// waitFor waits until n requests were observed, or for at most limit.
func (st *stalled) waitFor(n int, limit time.Duration) {
	for deadline := time.Now().Add(limit); ; time.Sleep(10 * time.Millisecond) {
		st.mu.Lock()
		seen := len(st.got)
		st.mu.Unlock()
		if seen >= n || time.Now().After(deadline) {
			return
		}
	}
}

// check wants request i, for target, cut by the send timeout and logged
// and observed with its status 200 and a warning naming the timeout, not
// as a client that left.
func (st *stalled) check(t *testing.T, e *env, target string, i int, over string) {
	t.Helper()
	line := e.lastLog(t)
	errText, _ := line["error"].(string)
	if line["path"] != target || line["status"] != float64(200) || line["level"] != "WARN" ||
		!strings.Contains(errText, "timeout") || strings.Contains(errText, "client left") {
		t.Errorf("%s cut by the send timeout%s logged as %v; want status 200, a warning naming the timeout", target, over, line)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.got) != i+1 || st.got[i] != 200 {
		t.Errorf("%s: observed %v, want 200", target, st.got)
	}
}

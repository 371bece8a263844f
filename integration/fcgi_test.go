package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// PHP fixtures, written into each test's document root.
var fcgiFixtures = map[string]string{
	"hello.php":     `<?php echo "Hello, world!";`,
	"server.php":    `<?php header('Content-Type: application/json'); echo json_encode($_SERVER);`,
	"bigheader.php": `<?php header('X-Big: ' . str_repeat('h', 256 * 1024)); echo "ok";`,
	"flush.php":     `<?php echo 'a'; flush(); sleep(2); echo 'b';`,
	"stderr.php":    `<?php for ($i = 1; $i <= 5; $i++) { error_log("line $i", 4); echo "o$i"; flush(); } echo "done";`,
	"stderr_n.php":  `<?php error_log(str_repeat("x", (int)$_GET["n"]), 4); flush(); echo "ok";`,
	"die.php":       `<?php echo str_repeat('x', 1000); flush(); usleep(100000); posix_kill(getmypid(), 9); sleep(5); echo "never";`,
	"body.php": `<?php $b = file_get_contents('php://input');
header('Content-Type: application/json');
echo json_encode(['len' => strlen($b), 'md5' => md5($b), 'cl' => $_SERVER['CONTENT_LENGTH'] ?? null]);`,
	"slow.php":     `<?php sleep(3); echo "late";`,
	"status.php":   `<?php http_response_code(404); echo "missing";`,
	"redirect.php": `<?php header('Location: /elsewhere'); `,
	"count.php":    `<?php echo getmypid();`,
}

// fcgiStartFPM writes the fixtures and starts php-fpm on them.
func fcgiStartFPM(t *testing.T, o harness.PHPFPMOptions) *harness.PHPFPM {
	t.Helper()
	harness.Require(t, "php-fpm8.2")
	if o.DocRoot == "" {
		o.DocRoot = t.TempDir()
		for name, src := range fcgiFixtures {
			if err := os.WriteFile(filepath.Join(o.DocRoot, name), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return harness.StartPHPFPM(t, o)
}

func newFCGI(t *testing.T, o fcgi.Options, addr string) *fcgi.Transport {
	t.Helper()
	o.Backends = []string{addr}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(fcgiLogWriter{t}, nil))
	}
	tr, err := fcgi.NewTransport(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

type fcgiLogWriter struct{ t *testing.T }

func (w fcgiLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// fcgiReq builds a request for script under fpm's document root.
func fcgiReq(ctx context.Context, fpm *harness.PHPFPM, method, target string, body io.Reader, mod func(*fcgi.Script)) *http.Request {
	if ctx == nil {
		ctx = context.Background()
	}
	r := httptest.NewRequest(method, target, body)
	path := r.URL.Path
	s := &fcgi.Script{
		DocumentRoot: fpm.DocRoot,
		ScriptName:   path,
		RequestURI:   r.URL.RequestURI(),
		RemoteAddr:   "198.51.100.9:40000",
	}
	if mod != nil {
		mod(s)
	}
	return r.WithContext(fcgi.WithScript(ctx, s))
}

func fcgiDo(t *testing.T, tr *fcgi.Transport, req *http.Request) (*http.Response, string, error) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// fcgiProxy fronts tr with httputil.ReverseProxy as the server package
// does (Rewrite, FlushInterval -1), routing every path to that script.
func fcgiProxy(t *testing.T, tr *fcgi.Transport, fpm *harness.PHPFPM) *httptest.Server {
	t.Helper()
	p := &httputil.ReverseProxy{
		Transport:     tr,
		FlushInterval: -1,
		Rewrite:       func(*httputil.ProxyRequest) {},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(fcgi.StatusOf(err))
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &fcgi.Script{DocumentRoot: fpm.DocRoot, ScriptName: r.URL.Path, RequestURI: r.RequestURI, RemoteAddr: r.RemoteAddr}
		p.ServeHTTP(w, r.WithContext(fcgi.WithScript(r.Context(), s)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFCGIHello(t *testing.T) {
	t.Parallel()
	for _, unix := range []bool{false, true} {
		// Subtest names end up in php-fpm.conf paths, where php-fpm's ini
		// parser refuses '='.
		name := "tcp"
		if unix {
			name = "unix"
		}
		t.Run(name, func(t *testing.T) {
			fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Unix: unix, Children: 2})
			tr := newFCGI(t, fcgi.Options{}, fpm.Addr)
			for i := 0; i < 20; i++ {
				resp, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil))
				if err != nil || resp.StatusCode != 200 || body != "Hello, world!" {
					t.Fatalf("request %d: %v %v %q", i, err, resp, body)
				}
			}
			if st := tr.Stats()[0]; st.Open != 1 {
				t.Fatalf("20 sequential requests used %d connections, want 1 kept alive", st.Open)
			}
			resp, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/status.php", nil, nil))
			if err != nil || resp.StatusCode != 404 || body != "missing" || resp.Header.Get("Status") != "" {
				t.Fatalf("status.php: %v %v %q %v", err, resp.StatusCode, body, resp.Header)
			}
			resp, _, err = fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/redirect.php", nil, nil))
			if err != nil || resp.StatusCode != 302 || resp.Header.Get("Location") != "/elsewhere" {
				t.Fatalf("redirect.php: %v %v", err, resp)
			}
			// php-fpm's own "Primary script unknown" answer.
			resp, _, err = fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/nothere.php", nil, nil))
			if err != nil || resp.StatusCode != 404 {
				t.Fatalf("missing script: %v %v", err, resp)
			}
			if err := tr.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The params PHP sees are exactly what nginx's fastcgi_params would give,
// without the headers that must never reach PHP.
func TestFCGIParamsSeenByPHP(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1})
	tr := newFCGI(t, fcgi.Options{}, fpm.Addr)
	req := fcgiReq(nil, fpm, "POST", "http://shop.example:8443/server.php/extra/path?q=1&r=%20", strings.NewReader("a=b"), func(s *fcgi.Script) {
		s.ScriptName = "/server.php"
		s.PathInfo = "/extra/path"
		s.HTTPS = true
		s.Extra = []fcgi.Param{{Name: "SESSIONGATE_TEST", Value: "yes"}, {Name: "REMOTE_ADDR", Value: "6.6.6.6"}}
	})
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Session", "real")
	req.Header["X_session"] = []string{"aliased"}
	req.Header.Set("Proxy", "http://evil.example:3128")
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	_, body, err := fcgiDo(t, tr, req)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	want := map[string]string{
		"QUERY_STRING":      "q=1&r=%20",
		"REQUEST_METHOD":    "POST",
		"CONTENT_TYPE":      "application/x-www-form-urlencoded",
		"CONTENT_LENGTH":    "3",
		"SCRIPT_NAME":       "/server.php",
		"REQUEST_URI":       "/server.php/extra/path?q=1&r=%20",
		"DOCUMENT_URI":      "/server.php/extra/path",
		"DOCUMENT_ROOT":     fpm.DocRoot,
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REQUEST_SCHEME":    "https",
		"HTTPS":             "on",
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_SOFTWARE":   "sessiongate (nginx-compatible)",
		"REMOTE_ADDR":       "198.51.100.9",
		"REMOTE_PORT":       "40000",
		"SERVER_PORT":       "8443",
		"SERVER_NAME":       "shop.example",
		"REDIRECT_STATUS":   "200",
		"SCRIPT_FILENAME":   fpm.DocRoot + "/server.php",
		"PATH_INFO":         "/extra/path",
		"PATH_TRANSLATED":   fpm.DocRoot + "/extra/path",
		"HTTP_HOST":         "shop.example:8443",
		"HTTP_X_SESSION":    "real",
		"HTTP_COOKIE":       "a=1; b=2",
		"HTTP_X_MULTI":      "1, 2",
		"SESSIONGATE_TEST":  "yes",
	}
	for k, v := range want {
		if g, _ := got[k].(string); g != v {
			t.Errorf("$_SERVER[%s] = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"HTTP_PROXY", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"} {
		if v, ok := got[k]; ok {
			t.Errorf("$_SERVER[%s] = %q must not be set", k, v)
		}
	}
}

func TestFCGIHugeResponseHeader(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1})
	tr := newFCGI(t, fcgi.Options{}, fpm.Addr)
	resp, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/bigheader.php", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Header.Get("X-Big")) != 256<<10 || body != "ok" {
		t.Fatalf("header of %d bytes, body %q", len(resp.Header.Get("X-Big")), body)
	}
}

// The first byte of `echo 'a'; flush(); sleep(2);` reaches an HTTP client
// through ReverseProxy long before the script ends. Debian's php.ini sets
// output_buffering=4096, which holds 'a' in PHP itself (nginx would not
// stream it either), so the pool turns it off.
func TestFCGIFlushStreaming(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1, AdminValues: map[string]string{"output_buffering": "0"}})
	tr := newFCGI(t, fcgi.Options{}, fpm.Addr)
	srv := fcgiProxy(t, tr, fpm)
	start := time.Now()
	resp, err := http.Get(srv.URL + "/flush.php")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, b); err != nil || b[0] != 'a' {
		t.Fatalf("first byte %q %v", b, err)
	}
	firstAt := time.Since(start)
	rest, err := io.ReadAll(resp.Body)
	total := time.Since(start)
	if err != nil || string(rest) != "b" {
		t.Fatalf("rest %q %v after %v", rest, err, total)
	}
	// PHP sleeps 2 s between the two bytes: streamed, the first arrives
	// about 2 s before the end; buffered, with it (on any machine's speed).
	if total-firstAt < time.Second {
		t.Fatalf("first byte after %v, whole body after %v: not streamed", firstAt, total)
	}
}

// error_log($m, 4) arrives as FCGI_STDERR, in order, at the hook.
func TestFCGIStderrToHook(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1})
	tr := newFCGI(t, fcgi.Options{}, fpm.Addr)
	var msgs []string
	req := fcgiReq(nil, fpm, "GET", "/stderr.php", nil, func(s *fcgi.Script) {
		s.OnStderr = func(m []byte) []byte {
			// php-fpm 8.2 sends one record per error_log() call; every
			// message after the first of a request starts with "; ".
			line := strings.TrimPrefix(string(m), "; ")
			msgs = append(msgs, strings.TrimPrefix(line, "PHP message: "))
			return nil
		}
	})
	_, body, err := fcgiDo(t, tr, req)
	if err != nil || body != "o1o2o3o4o5done" {
		t.Fatalf("%v %q", err, body)
	}
	if got := strings.Join(msgs, ","); got != "line 1,line 2,line 3,line 4,line 5" {
		t.Fatalf("stderr %q", got)
	}
}

// TestFCGIStderrLogLimit: what bounds one error_log() message on
// FCGI_STDERR in php-fpm 8.2 (docs/protocol.md, the prepend's CHUNK). php-fpm
// formats the message in a buffer of the global log_limit that also holds
// its level prefix ("NOTICE: "), "PHP message: " and a newline, and passes
// what fits to FastCGI: the longest message that arrives whole is
// log_limit - 22 bytes. The prepend's frames (at most about 845 bytes) fit
// the default of 1024, and a log_limit of 512 cuts them.
func TestFCGIStderrLogLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ logLimit, whole int }{{0, 1024 - 22}, {512, 512 - 22}} {
		fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1, LogLimit: c.logLimit})
		tr := newFCGI(t, fcgi.Options{}, fpm.Addr)
		for _, n := range []int{845, c.whole, c.whole + 1} {
			var got string
			req := fcgiReq(nil, fpm, "GET", "/stderr_n.php?n="+strconv.Itoa(n), nil, func(s *fcgi.Script) {
				s.OnStderr = func(m []byte) []byte {
					got += string(m)
					return nil
				}
			})
			if _, body, err := fcgiDo(t, tr, req); err != nil || body != "ok" {
				t.Fatalf("log_limit %d, %d bytes: %v %q", c.logLimit, n, err, body)
			}
			msg := strings.TrimPrefix(got, "PHP message: ")
			if wantWhole := n <= c.whole; (msg == strings.Repeat("x", n)) != wantWhole {
				t.Errorf("log_limit %d: a %d-byte message arrived as %d bytes (whole: want %v)", c.logLimit, n, len(msg), wantWhole)
			}
		}
	}
}

// A worker killed mid-response: reading the body fails (never a clean EOF),
// and a client behind ReverseProxy sees an aborted response.
func TestFCGIWorkerKilledMidResponse(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 2, AdminValues: map[string]string{"output_buffering": "0"}})
	tr := newFCGI(t, fcgi.Options{}, fpm.Addr)
	resp, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/die.php", nil, nil))
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("body read ended cleanly (%d bytes) although the worker died", len(body))
	}
	if resp.StatusCode != 200 || len(body) != 1000 || fcgi.StatusOf(err) != 502 {
		t.Fatalf("status %d, %d bytes, err %v", resp.StatusCode, len(body), err)
	}

	srv := fcgiProxy(t, tr, fpm)
	cresp, err := http.Get(srv.URL + "/die.php")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(cresp.Body)
	cresp.Body.Close()
	if err == nil {
		t.Fatal("client got a clean response from a killed worker")
	}
	// And the pool recovers.
	if _, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil)); err != nil || body != "Hello, world!" {
		t.Fatalf("after the kill: %v %q", err, body)
	}
}

// pm.max_requests=3 recycles a worker every third request and closes its
// kept-alive connection: every request must still succeed, and the pool
// never opens more connections than its cap.
func TestFCGIMaxRequestsRecycling(t *testing.T) {
	t.Parallel()
	const maxConns = 2
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: maxConns, MaxRequests: 3})
	tr := newFCGI(t, fcgi.Options{MaxConnsPerBackend: maxConns}, fpm.Addr)
	var peak atomic.Int64
	stop := make(chan struct{})
	var mon sync.WaitGroup
	mon.Add(1)
	go func() {
		defer mon.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if o := int64(tr.Stats()[0].Open); o > peak.Load() {
				peak.Store(o)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	pids := map[string]bool{}
	for i := 0; i < 30; i++ {
		method, body := "GET", io.Reader(nil)
		if i%2 == 1 {
			method, body = "POST", strings.NewReader("k=v")
		}
		_, got, err := fcgiDo(t, tr, fcgiReq(nil, fpm, method, "/count.php", body, nil))
		if err != nil {
			t.Fatalf("sequential request %d: %v", i, err)
		}
		pids[got] = true
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, _, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "POST", "/count.php", strings.NewReader("x=1"), nil)); err != nil {
					t.Errorf("concurrent request: %v", err)
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	mon.Wait()
	if p := peak.Load(); p > maxConns {
		t.Fatalf("peak of %d open connections, cap %d", p, maxConns)
	}
	if len(pids) < 5 {
		t.Fatalf("30 requests were served by only %d workers: max_requests not in effect?", len(pids))
	}
}

// php-fpm restarted under load: nothing hangs, failures are few and only
// around the restart, and service resumes. Not parallel: a load test.
func TestFCGIRestartUnderLoad(t *testing.T) {
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 4})
	tr := newFCGI(t, fcgi.Options{MaxConnsPerBackend: 4, DialTimeout: time.Second, ReadTimeout: 5 * time.Second}, fpm.Addr)
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, body, err := fcgiDo(t, tr, fcgiReq(ctx, fpm, "GET", "/hello.php", nil, nil))
				cancel()
				if err == nil && body == "Hello, world!" {
					ok.Add(1)
				} else {
					if s := fcgi.StatusOf(err); s != 502 && err != nil {
						t.Errorf("failure with status %d: %v", s, err)
					}
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	before := ok.Load()
	fpm.Restart()
	time.Sleep(time.Second)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("load goroutines hung after the restart")
	}
	t.Logf("restart under load: %d ok (%d before the restart), %d failed", ok.Load(), before, failed.Load())
	if ok.Load() <= before {
		t.Fatal("no request succeeded after the restart")
	}
	// Failures only while the master was down: bounded by the retry pause.
	if failed.Load() > ok.Load() {
		t.Fatalf("%d failures for %d successes", failed.Load(), ok.Load())
	}
	for i := 0; i < 10; i++ {
		if _, _, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil)); err != nil {
			t.Fatalf("after restart, request %d: %v", i, err)
		}
	}
	if st := tr.Stats()[0]; st.Open > 4 {
		t.Fatalf("%+v", st)
	}
}

type fcgiChunked struct{ r io.Reader }

func (c fcgiChunked) Read(p []byte) (int, error) { return c.r.Read(p) }

// A fcgiChunked upload reaches PHP whole with an exact CONTENT_LENGTH; over
// MaxBody it is refused with 413 before PHP runs.
func TestFCGIChunkedBody(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1})
	tr := newFCGI(t, fcgi.Options{MaxBody: 1 << 20, TempDir: t.TempDir()}, fpm.Addr)
	for _, size := range []int{10, 200 << 10, 1 << 20} {
		payload := bytes.Repeat([]byte("sessiongate!"), size/12+1)[:size]
		req := fcgiReq(nil, fpm, "POST", "/body.php", fcgiChunked{bytes.NewReader(payload)}, nil)
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/octet-stream")
		_, body, err := fcgiDo(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Len int
			MD5 string
			CL  string
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		sum := md5.Sum(payload)
		if got.Len != size || got.MD5 != hex.EncodeToString(sum[:]) || got.CL != fmt.Sprint(size) {
			t.Fatalf("size %d: PHP saw %+v", size, got)
		}
	}
	req := fcgiReq(nil, fpm, "POST", "/body.php", fcgiChunked{bytes.NewReader(make([]byte, 1<<20+1))}, nil)
	req.ContentLength = -1
	if _, err := tr.RoundTrip(req); fcgi.StatusOf(err) != 413 {
		t.Fatalf("over MaxBody: %v (status %d), want 413", err, fcgi.StatusOf(err))
	}
	// Through the proxy, a real fcgiChunked HTTP request.
	srv := fcgiProxy(t, tr, fpm)
	payload := strings.Repeat("z", 100<<10)
	hreq, _ := http.NewRequest("POST", srv.URL+"/body.php", fcgiChunked{strings.NewReader(payload)})
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if !strings.Contains(string(b), fmt.Sprintf(`"len":%d`, len(payload))) {
		t.Fatalf("fcgiChunked through the proxy: %s", b)
	}
}

// A chunked body of exactly 64 KiB (the in-memory buffer) reaches PHP
// without a temp file: it must pass even when the temp directory is gone.
// One byte more needs the file and fails with 500 naming the directory.
func TestFCGIChunkedBodyAtMemoryLimit(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1})
	missing := filepath.Join(t.TempDir(), "missing")
	tr := newFCGI(t, fcgi.Options{MaxBody: 1 << 20, TempDir: missing}, fpm.Addr)
	const size = 64 << 10
	payload := bytes.Repeat([]byte("sessiongate!"), size/12+1)[:size]
	req := fcgiReq(nil, fpm, "POST", "/body.php", fcgiChunked{bytes.NewReader(payload)}, nil)
	req.ContentLength = -1
	_, body, err := fcgiDo(t, tr, req)
	if err != nil {
		t.Fatalf("%d-byte chunked body: %v (status %d)", size, err, fcgi.StatusOf(err))
	}
	sum := md5.Sum(payload)
	if want := fmt.Sprintf(`{"len":%d,"md5":"%s","cl":"%d"}`, size, hex.EncodeToString(sum[:]), size); body != want {
		t.Fatalf("PHP saw %s, want %s", body, want)
	}
	req = fcgiReq(nil, fpm, "POST", "/body.php", fcgiChunked{bytes.NewReader(append(payload, 'x'))}, nil)
	req.ContentLength = -1
	if _, err := tr.RoundTrip(req); fcgi.StatusOf(err) != 500 || !strings.Contains(err.Error(), missing) {
		t.Fatalf("%d bytes, no temp dir: %v (status %d), want 500 naming %s", size+1, err, fcgi.StatusOf(err), missing)
	}
}

func TestFCGIBackendDown(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1})
	tr := newFCGI(t, fcgi.Options{}, fpm.Addr)
	if _, _, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil)); err != nil {
		t.Fatal(err)
	}
	fpm.Stop()
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, _, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil))
		if fcgi.StatusOf(err) != 502 || time.Since(start) > time.Second {
			t.Fatalf("php-fpm down: %v (status %d) after %v, want a quick 502", err, fcgi.StatusOf(err), time.Since(start))
		}
	}
	time.Sleep(1100 * time.Millisecond) // past Ping's "recent success" window
	if err := tr.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded with php-fpm down")
	}
	fpm.Start()
	if _, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil)); err != nil || body != "Hello, world!" {
		t.Fatalf("after start: %v %q", err, body)
	}
}

// TestFCGIBackendBackAfterOutage: of two php-fpm backends, one is down long
// enough for its back-off to grow (8 s under load: 0.5, 1, 2, 4, 8 s); once
// it is started again it serves within about a second (the probe), not at
// the end of its back-off. Requests meanwhile all succeed on the other.
func TestFCGIBackendBackAfterOutage(t *testing.T) {
	t.Parallel()
	a := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 2})
	b := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 2, DocRoot: a.DocRoot})
	tr, err := fcgi.NewTransport(fcgi.Options{
		Backends:    []string{a.Addr, b.Addr},
		DialTimeout: time.Second,
		Logger:      slog.New(slog.NewTextHandler(fcgiLogWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	// servedBy runs count.php once and tells whether b's worker answered.
	servedBy := func() (onB bool) {
		_, pid, err := fcgiDo(t, tr, fcgiReq(nil, a, "GET", "/count.php", nil, nil))
		if err != nil {
			t.Fatalf("request failed while one backend is up: %v", err)
		}
		n, err := strconv.Atoi(pid)
		if err != nil {
			t.Fatalf("count.php answered %q", pid)
		}
		return slices.Contains(b.Workers(), n)
	}
	b.Stop()
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); {
		servedBy()
		time.Sleep(20 * time.Millisecond)
	}
	// Its back-off may have just run out: a request marks it down again,
	// for longer.
	if !poll(2*time.Second, func() bool { servedBy(); return !tr.Stats()[1].Healthy }) {
		t.Fatal("the stopped backend is not in back-off")
	}
	b.Start()
	started := time.Now()
	if !poll(3*time.Second, servedBy) {
		t.Fatalf("the restarted backend got no request within %v", time.Since(started))
	}
	t.Logf("restarted backend served after %v", time.Since(started).Round(time.Millisecond))
}

func TestFCGISlowScriptTimesOut(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1})
	tr := newFCGI(t, fcgi.Options{ReadTimeout: 500 * time.Millisecond}, fpm.Addr)
	start := time.Now()
	_, _, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/slow.php", nil, nil))
	if fcgi.StatusOf(err) != 504 || time.Since(start) > 2*time.Second {
		t.Fatalf("slow script: %v (status %d) after %v, want 504", err, fcgi.StatusOf(err), time.Since(start))
	}
}

// BenchmarkFCGIHelloPHP measures RoundTrip against real php-fpm (pm=static,
// 4 children) for hello.php, keep-alive pool of 4.
func BenchmarkFCGIHelloPHP(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.php"), []byte(fcgiFixtures["hello.php"]), 0o644); err != nil {
		b.Fatal(err)
	}
	fpm := harness.StartPHPFPM(b, harness.PHPFPMOptions{DocRoot: dir, Children: 4})
	tr, err := fcgi.NewTransport(fcgi.Options{Backends: []string{fpm.Addr}, MaxConnsPerBackend: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	s := &fcgi.Script{DocumentRoot: dir, ScriptName: "/hello.php", RemoteAddr: "127.0.0.1:1"}
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/hello.php", nil)
		req = req.WithContext(fcgi.WithScript(context.Background(), s))
		for pb.Next() {
			resp, err := tr.RoundTrip(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// A POST whose worker request_terminate_timeout kills before any output
// (the common case: PHP's output buffer holds it) looks, on a kept-alive
// connection, like a connection php-fpm had closed while idle. It must not
// be sent again: the script already ran once, and charging twice is worse
// than the 502. A GET may be, as nginx and net/http do.
func TestFCGIPostKilledBeforeOutputRunsOnce(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1, RequestTerminateTimeout: time.Second})
	runs := filepath.Join(harness.PHPTempDir(t), "runs")
	script := fmt.Sprintf(`<?php file_put_contents(%q, "x", FILE_APPEND); sleep(30); echo "charged";`, runs)
	if err := os.WriteFile(filepath.Join(fpm.DocRoot, "charge.php"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := newFCGI(t, fcgi.Options{MaxConnsPerBackend: 1}, fpm.Addr)
	// A kept-alive connection for the POST to reuse.
	if _, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil)); err != nil || body != "Hello, world!" {
		t.Fatalf("warm-up: %v %q", err, body)
	}
	_, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "POST", "/charge.php", strings.NewReader("amount=100"), nil))
	if fcgi.StatusOf(err) != 502 {
		t.Fatalf("killed POST: %v (status %d) %q, want 502", err, fcgi.StatusOf(err), body)
	}
	if n, _ := os.ReadFile(runs); len(n) != 1 {
		t.Fatalf("the POST's script ran %d times, want once", len(n))
	}
	// The pool recovers.
	if _, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "POST", "/hello.php", strings.NewReader("k=v"), nil)); err != nil || body != "Hello, world!" {
		t.Fatalf("after the kill: %v %q", err, body)
	}
}

// The same with a PATCH whose large body the script never reads (PHP reads
// a body ahead of the script only for a POST with a Content-Type): the
// worker killed while the body is still being sent resets the kept-alive
// connection mid-write. The script had run; it must not run again.
func TestFCGIPatchKilledWhileSendingBodyRunsOnce(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1, RequestTerminateTimeout: time.Second})
	runs := filepath.Join(harness.PHPTempDir(t), "runs")
	script := fmt.Sprintf(`<?php file_put_contents(%q, "x", FILE_APPEND); sleep(30); echo "charged";`, runs)
	if err := os.WriteFile(filepath.Join(fpm.DocRoot, "charge.php"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := newFCGI(t, fcgi.Options{MaxConnsPerBackend: 1, MaxBody: 64 << 20, BufferBodies: true}, fpm.Addr)
	if _, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil)); err != nil || body != "Hello, world!" {
		t.Fatalf("warm-up: %v %q", err, body)
	}
	big := strings.Repeat("z", 32<<20) // far more than the socket buffers hold
	_, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "PATCH", "/charge.php", strings.NewReader(big), nil))
	if fcgi.StatusOf(err) != 502 {
		t.Fatalf("killed PATCH: %v (status %d) %q, want 502", err, fcgi.StatusOf(err), body)
	}
	if n, _ := os.ReadFile(runs); len(n) != 1 {
		t.Fatalf("the PATCH's script ran %d times, want once", len(n))
	}
	if _, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil)); err != nil || body != "Hello, world!" {
		t.Fatalf("after the kill: %v %q", err, body)
	}
}

// A PUT may be sent again when its kept-alive connection fails before any
// answer (running it twice does no harm by HTTP's definition). Not once
// its script began answering: here it logs a line (a STDERR record, as a
// session frame is), flushes it, and its worker is killed while the large
// body it never reads is still being sent. It had run; it used to run a
// second time.
func TestFCGIPutKilledAfterItsFirstWordsRunsOnce(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1, RequestTerminateTimeout: time.Second})
	runs := filepath.Join(harness.PHPTempDir(t), "runs")
	script := fmt.Sprintf(`<?php file_put_contents(%q, "x", FILE_APPEND); error_log("upload started"); flush(); sleep(30); echo "stored";`, runs)
	if err := os.WriteFile(filepath.Join(fpm.DocRoot, "store.php"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	var logged atomic.Int32
	tr := newFCGI(t, fcgi.Options{MaxConnsPerBackend: 1, MaxBody: 64 << 20, BufferBodies: true}, fpm.Addr)
	if _, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil)); err != nil || body != "Hello, world!" {
		t.Fatalf("warm-up: %v %q", err, body)
	}
	req := fcgiReq(nil, fpm, "PUT", "/store.php", strings.NewReader(strings.Repeat("z", 32<<20)), func(s *fcgi.Script) {
		s.OnStderr = func(msg []byte) []byte {
			if strings.Contains(string(msg), "upload started") {
				logged.Add(1)
			}
			return msg
		}
	})
	_, body, err := fcgiDo(t, tr, req)
	if fcgi.StatusOf(err) != 502 {
		t.Fatalf("killed PUT: %v (status %d) %q, want 502", err, fcgi.StatusOf(err), body)
	}
	if n, _ := os.ReadFile(runs); len(n) != 1 || logged.Load() != 1 {
		t.Fatalf("the PUT's script ran %d times (its line reached the gateway %d times), want once", len(n), logged.Load())
	}
	if _, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil)); err != nil || body != "Hello, world!" {
		t.Fatalf("after the kill: %v %q", err, body)
	}
}

// A PUT whose script answers before it reads the body, with more than a
// unix socket's buffers hold (a page rendered whatever the upload): the
// answer is read while the body is still being sent. Sending the whole body
// first left php-fpm and the gateway each waiting for the other to read,
// until the write timeout (504).
func TestFCGIAnswerBeforeBodyIsRead(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1, Unix: true})
	script := `<?php http_response_code(403); echo str_repeat('x', 1 << 20); echo strlen(file_get_contents('php://input'));`
	if err := os.WriteFile(filepath.Join(fpm.DocRoot, "early.php"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := newFCGI(t, fcgi.Options{MaxConnsPerBackend: 1, MaxBody: 8 << 20, BufferBodies: true, WriteTimeout: 5 * time.Second}, fpm.Addr)
	for i := 0; i < 2; i++ {
		resp, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "PUT", "/early.php", strings.NewReader(strings.Repeat("z", 1<<20)), nil))
		if err != nil || resp.StatusCode != 403 || body != strings.Repeat("x", 1<<20)+"1048576" {
			t.Fatalf("request %d: %v (status %d), %d bytes", i, err, fcgi.StatusOf(err), len(body))
		}
	}
}

// The same through the gateway's HTTP server with its defaults
// (SESSIONGATE_REQUEST_BUFFERING=off): a body of known length over 64 KiB
// streams from the client to PHP, and the script answers before it reads
// it. The body goes on being sent while the answer is relayed, as nginx
// does; it used to be sent whole first, and php-fpm and the gateway each
// waited for the other until the write timeout (504, PHP's answer lost).
// The session change the script makes once it has the body is kept, and
// the connection is closed after the answer (its header went out before
// the body was in).
func TestFCGIStreamedBodyAnswerFirstThroughGateway(t *testing.T) {
	t.Parallel()
	st := startSessionStack(t, stackOpts{
		fpm: harness.PHPFPMOptions{Unix: true, Children: 2},
		env: []string{"SESSIONGATE_REQUEST_BUFFERING=off", "SESSIONGATE_MAX_BODY=8m", "SESSIONGATE_PHP_WRITE_TIMEOUT=5s"},
	})
	script := `<?php session_start(); http_response_code(403); header('Content-Type: text/plain');
echo str_repeat('x', 1 << 20); $b = file_get_contents('php://input');
$_SESSION['early'] = strlen($b); echo strlen($b), ' ', md5($b);`
	if err := os.WriteFile(filepath.Join(st.fpm.DocRoot, "early.php"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cookie := st.newSession(t)
	g := st.gws[0]
	// 1 MiB: more than the socket buffers hold. 300 KiB: more too, but
	// what is left of it when the response header goes out is less than
	// net/http reads then (256 KiB), and would be taken from PHP.
	for _, size := range []int{1 << 20, 300 << 10, 1 << 20} {
		payload := strings.Repeat("z", size)
		sum := md5.Sum([]byte(payload))
		want := strings.Repeat("x", 1<<20) + strconv.Itoa(size) + " " + hex.EncodeToString(sum[:])
		c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			// The client sends while it reads, as browsers and curl do.
			fmt.Fprintf(c, "PUT /early.php HTTP/1.1\r\nHost: x\r\nCookie: sessionid=%s\r\nContent-Length: %d\r\n\r\n", cookie, size)
			io.WriteString(c, payload)
		}()
		start := time.Now()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatalf("%d bytes: %v", size, err)
		}
		body, err := io.ReadAll(resp.Body)
		c.Close()
		if err != nil || resp.StatusCode != 403 || string(body) != want {
			t.Fatalf("%d bytes: %v, status %d after %v, %d bytes %q...; want the 403 whole", size, err, resp.StatusCode, time.Since(start), len(body), body[:min(len(body), 40)])
		}
		if size == 1<<20 && !resp.Close {
			t.Errorf("%d bytes: connection kept after a response that began before the body was in", size)
		}
		if d := g.dump(t, cookie); !strings.Contains(string(d.Data), fmt.Sprintf(`"early":%d`, size)) {
			t.Errorf("%d bytes: session change made after the body was read lost: %s", size, d.Data)
		}
	}

	// A script that ends without reading the body, while the client still
	// sends it: the answer is the client's whole. php-fpm ends the request
	// only once PHP has read the rest of the body (it does so at shutdown),
	// so the answer ends as the body does: 1.3 s of sending here, 2.3 s
	// seen on a loaded machine. The bound stays under the 5 s write
	// timeout set above, so that an answer that came only after a timeout
	// fails.
	if err := os.WriteFile(filepath.Join(st.fpm.DocRoot, "ignore.php"), []byte(`<?php echo "ignored";`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	const size = 4 << 20
	fmt.Fprintf(c, "PUT /ignore.php HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	sent := make(chan struct{})
	go func() { // slowly, so that most of it is still to come
		defer close(sent)
		chunk := strings.Repeat("z", 16<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(body) != "ignored" || time.Since(start) > 4*time.Second {
		t.Fatalf("%v, status %d after %v: %q; want 200 ignored as the body ends, within 4 s", err, resp.StatusCode, time.Since(start), body)
	}
	c.Close()
	<-sent

	// A client that leaves halfway through its body once the answer began:
	// the request ends (499), PHP's worker and the session are freed.
	c2, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c2.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c2, "PUT /early.php?gone HTTP/1.1\r\nHost: x\r\nCookie: sessionid=%s\r\nContent-Length: %d\r\n\r\n", cookie, 4<<20)
	go io.WriteString(c2, strings.Repeat("z", 1<<20))
	resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("leaving client: %v %v", err, resp)
	}
	c2.Close()
	start = time.Now()
	if d := g.dump(t, cookie); !strings.Contains(string(d.Data), `"early":1048576`) || time.Since(start) > 5*time.Second {
		t.Errorf("after a client left mid-body: session %s after %v", d.Data, time.Since(start))
	}
	waitForLog := time.Now().Add(5 * time.Second)
	for !strings.Contains(g.Logs.String(), `"path":"/early.php","status":499`) {
		if time.Now().After(waitForLog) {
			t.Fatalf("no 499 logged for the client that left:\n%s", g.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// More connections than php-fpm workers (SESSIONGATE_PHP_MAX_CONNS above
// pm.max_children: Debian's stock pool has 5 workers, the default is 8).
// Each worker stays with a kept-alive connection, so a new connection can
// sit unaccepted in php-fpm's listen queue while the others idle in the
// pool; its request waited for the read timeout and got 504. Finished
// connections are now closed while a new one waits for its answer, which
// frees a worker for it.
func TestFCGIMoreConnectionsThanWorkers(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 2})
	if err := os.WriteFile(filepath.Join(fpm.DocRoot, "nap.php"), []byte(`<?php usleep(200000); echo "ok";`), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := newFCGI(t, fcgi.Options{MaxConnsPerBackend: 4, ReadTimeout: 15 * time.Second}, fpm.Addr)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				_, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/nap.php", nil, nil))
				if err != nil || body != "ok" {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%v %q", err, body))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of 20 requests failed with 2 workers and 4 connections: %v", len(failures), failures)
	}
}

// TestFCGIIdleConnectionFreesWorker: two gateways on a php-fpm pool with a
// single worker (more connections than pm.max_children, against the
// README's advice). The first one's kept-alive connection, left idle, pins
// the worker; the second one's request waits in php-fpm's listen queue and
// is served once the first closes that connection after its IdleTimeout,
// instead of failing with 504 at its read timeout.
func TestFCGIIdleConnectionFreesWorker(t *testing.T) {
	t.Parallel()
	fpm := fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1})
	first := newFCGI(t, fcgi.Options{IdleTimeout: 500 * time.Millisecond}, fpm.Addr)
	second := newFCGI(t, fcgi.Options{ReadTimeout: 5 * time.Second}, fpm.Addr)
	for i, tr := range []*fcgi.Transport{first, second} {
		resp, body, err := fcgiDo(t, tr, fcgiReq(nil, fpm, "GET", "/hello.php", nil, nil))
		if err != nil || resp.StatusCode != 200 || body != "Hello, world!" {
			t.Fatalf("gateway %d: %v %v %q", i+1, err, resp, body)
		}
	}
	if st := first.Stats()[0]; st.Open != 0 {
		t.Fatalf("the first gateway still holds %d connections", st.Open)
	}
}

// A script whose header and first flushed piece fill php-fpm's 8 KiB
// output buffer exactly (a header of nearly 8 KiB, a short "loading" or
// an event stream's first event) sends one full-size record, then nothing
// until it goes on, or only a STDERR record (an error_log() and a flush();
// the session bridge's message when an event stream closes its session
// before it waits). That record is all PHP flushed: the answer begins with it, and
// does not wait for the next output, which here comes only once the
// client has seen the first. Also when the script then reads a large PUT
// body, whose write by the gateway ends during that short wait (its end
// used to stretch the wait to the read timeout). Over TCP and a unix
// socket.
func TestFCGIFullRecordFlushIsNotHeldBack(t *testing.T) {
	t.Parallel()
	for _, unix := range []bool{false, true} {
		name := map[bool]string{false: "tcp", true: "unix"}[unix] // no "=": the name is in php-fpm.conf's paths
		t.Run(name, func(t *testing.T) {
			fcgiFullRecordFlush(t, fcgiStartFPM(t, harness.PHPFPMOptions{Children: 1, Unix: unix,
				AdminValues: map[string]string{"output_buffering": "0", "expose_php": "0"}}))
		})
	}
}

func fcgiFullRecordFlush(t *testing.T, fpm *harness.PHPFPM) {
	dir := harness.PHPTempDir(t)
	// php-fpm writes each header line and the blank line into its buffer
	// (8192 bytes, 8 of them the record header): X-Pad makes the header
	// block plus the 100-byte body fill it.
	script := `<?php
header('Content-Type: text/event-stream');
$body = str_repeat('b', 100);
$n = 2 + strlen('X-Pad: ') + 2;
foreach (headers_list() as $h) { $n += strlen($h) + 2; }
header('X-Pad: ' . str_repeat('p', 8184 - strlen($body) - $n));
echo $body;
flush();
if (isset($_GET['log'])) { error_log('closing the session before the wait', 4); flush(); }
if (isset($_GET['read'])) { file_get_contents('php://input'); }
$signal = $_GET['signal'];
for ($i = 0; $i < 100 && !file_exists($signal); $i++) { usleep(50000); }
echo file_exists($signal) ? 'seen' : 'not seen';`
	if err := os.WriteFile(filepath.Join(fpm.DocRoot, "fullrecord.php"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := newFCGI(t, fcgi.Options{MaxBody: 64 << 20, BufferBodies: true}, fpm.Addr)
	for i, query := range []string{"", "&log=1", "&read=1"} {
		signal := filepath.Join(dir, fmt.Sprint("seen", i))
		method, body := "GET", io.Reader(nil)
		if query == "&read=1" {
			method, body = "PUT", strings.NewReader(strings.Repeat("z", 8<<20)) // more than the socket buffers hold
		}
		resp, err := tr.RoundTrip(fcgiReq(nil, fpm, method, "/fullrecord.php?signal="+signal+query, body, nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(signal, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(b), strings.Repeat("b", 100)+"seen"; got != want {
			t.Errorf("%q: body %q, want %q: the answer waited for the script's next output", query, got, want)
		}
	}
}

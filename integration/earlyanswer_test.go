package integration

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/server"
)

// TestEarlyAnswerWhileUploadPauses: a script that answers in full without
// reading its body (fastcgi_finish_request(), which Symfony's
// Response::send() calls on php-fpm, ends the answer before PHP reads what
// is left of the body), while the client's upload, streamed to php-fpm
// (SESSIONGATE_REQUEST_BUFFERING=off), has paused: the client
// must get the whole answer at once, on a connection the gateway then
// closes. Clients pause uploads, or stop them once an answer begins (curl
// does on a status of 300 or more); the gateway held the answer until the
// client sent more of the body, or until the read timeout.
func TestEarlyAnswerWhileUploadPauses(t *testing.T) {
	t.Parallel()
	g := startGW(t, streamBodies)
	for name, src := range map[string]string{
		// Symfony's Response::send() ends every request so on php-fpm:
		// php-fpm then answers at once, where the end of a script
		// first reads what is left of the body.
		"ignore.php": `<?php echo "ignored"; fastcgi_finish_request();`,
		"refuse.php": `<?php http_response_code(401); echo "no"; fastcgi_finish_request(); sleep(1);`,
		// An answer larger than php-fpm's buffer goes out before the
		// script ends, its header first.
		"flushed.php": `<?php http_response_code(403); echo str_repeat("x", 100000); fastcgi_finish_request();`,
	} {
		if err := os.WriteFile(filepath.Join(g.Root, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/ignore.php", "ignored", 200},
		{"/refuse.php", "no", 401},
		{"/flushed.php", strings.Repeat("x", 100000), 403},
	} {
		c, err := net.Dial("tcp", g.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		// 100 KiB of 900 KiB, then the client waits.
		fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", tc.path, 900<<10)
		io.WriteString(c, strings.Repeat("z", 100<<10))
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Errorf("%s: no answer while the upload pauses (%v after %v)", tc.path, err, time.Since(start).Round(time.Millisecond))
			continue
		}
		body, err := io.ReadAll(resp.Body)
		c.Close()
		if err != nil || resp.StatusCode != tc.status || string(body) != tc.body || !resp.Close {
			t.Errorf("%s: %d, %d bytes %q..., close=%v, err %v after %v; want %d and %d bytes whole, then the connection closed",
				tc.path, resp.StatusCode, len(body), body[:min(len(body), 20)], resp.Close, err, time.Since(start).Round(time.Millisecond), tc.status, len(tc.body))
		}
	}
	// php-fpm and the gateway still serve.
	if res, _ := g.get(t, "/info.php"); res.StatusCode != 200 {
		t.Fatalf("after: %d", res.StatusCode)
	}
}

// TestEarlyAnswerWhileUploadPausesHTTP2: the same over HTTP/2, whose
// request bodies stream to php-fpm as well: the answer must not wait for
// more of the body, and the connection stays open for other requests.
func TestEarlyAnswerWhileUploadPausesHTTP2(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	cfg, err := config.Load([]string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_SESSIONS=off", "SESSIONGATE_REQUEST_BUFFERING=off"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(func() { ts.Close(); s.Close() })
	if err := os.WriteFile(filepath.Join(root, "refuse.php"), []byte(`<?php http_response_code(401); echo "no"; fastcgi_finish_request();`), 0o644); err != nil {
		t.Fatal(err)
	}
	client := ts.Client()
	client.Timeout = 3 * time.Second
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { pw.Write([]byte(strings.Repeat("z", 100<<10))) }() // then nothing more
	req, _ := http.NewRequest("PUT", ts.URL+"/refuse.php", pr)
	req.ContentLength = 900 << 10
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer while the upload pauses (%v after %v)", err, time.Since(start).Round(time.Millisecond))
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 401 || string(body) != "no" || res.ProtoMajor != 2 {
		t.Fatalf("%s %d %q, err %v after %v; want HTTP/2 401 \"no\"", res.Proto, res.StatusCode, body, err, time.Since(start).Round(time.Millisecond))
	}
	// The connection serves on.
	res, err = client.Get(ts.URL + "/info.php")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("after: %v %v", res, err)
	}
	res.Body.Close()
}

// TestWorkerDeathWhileUploadPauses: a php-fpm worker that dies (killed,
// request_terminate_timeout, a crash) while the client's streamed upload
// has paused gets its 502 at once, not when the client sends more of the
// body: the gateway waited for its body write, blocked on the client,
// before it answered.
func TestWorkerDeathWhileUploadPauses(t *testing.T) {
	t.Parallel()
	g := startGW(t, streamBodies)
	if err := os.WriteFile(filepath.Join(g.Root, "wait.php"), []byte(`<?php sleep(30); echo "late";`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "PUT /wait.php HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 900<<10)
	io.WriteString(c, strings.Repeat("z", 100<<10))
	time.Sleep(500 * time.Millisecond) // the script runs
	g.FPM.KillWorkers()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a request whose worker died while the upload pauses (%v after %v)", err, time.Since(start).Round(time.Millisecond))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !resp.Close {
		t.Errorf("%d close=%v, want 502 and the connection closed", resp.StatusCode, resp.Close)
	}
}

// streamBodies sets SESSIONGATE_REQUEST_BUFFERING=off: bodies over 64 KiB
// stream to php-fpm as they arrive.
func streamBodies(c *config.Config) { c.RequestBuffering = false }

package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestClientGoneMidUploadRunsNoPHP: a client that goes away halfway through
// a form post (a dropped connection, a closed tab) must not have the form
// handled. php-fpm takes the end of its FastCGI connection for the end of
// the body, and PHP reads no further than it is given: a body streamed to
// it as it arrives (SESSIONGATE_REQUEST_BUFFERING=off) ran the script on
// the first half, so a CMS saved the article cut in the middle. With the
// default, as with nginx's, PHP gets only bodies that arrived whole.
func TestClientGoneMidUploadRunsNoPHP(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	dir := harness.PHPTempDir(t)
	ran := filepath.Join(dir, "ran")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"form.php": fmt.Sprintf(`<?php file_put_contents(%q, strlen($_POST['a'] ?? '') . "\n", FILE_APPEND); echo 'saved';`, ran),
		"ping.php": `<?php echo 'pong';`,
	})
	// One worker: the ping after the abort is answered only once the form
	// post, had PHP been given it, has run.
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	g := startGWOn(t, fpm, root, func(c *config.Config) { c.MaxBody = 8 << 20 })

	const size = 900 << 10
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /form.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\na=", size+2)
	if _, err := c.Write([]byte(strings.Repeat("x", size/2))); err != nil {
		t.Fatal(err)
	}
	c.Close()

	if res, body := g.get(t, "/ping.php"); res.StatusCode != 200 || body != "pong" {
		t.Fatalf("ping: %d %q", res.StatusCode, body)
	}
	if b, err := os.ReadFile(ran); err == nil {
		t.Fatalf("PHP handled the form cut short (a of %s bytes, sent %d of %d)", strings.TrimSpace(string(b)), size/2, size)
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	// The whole form still goes through.
	res, err := http.Post(g.URL+"/form.php", "application/x-www-form-urlencoded", strings.NewReader("a="+strings.Repeat("y", size)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "saved" {
		t.Fatalf("whole form: %d %q", res.StatusCode, body)
	}
	if b, _ := os.ReadFile(ran); strings.TrimSpace(string(b)) != fmt.Sprint(size) {
		t.Fatalf("whole form: PHP saw a of %q bytes, want %d", b, size)
	}
}

// TestChunkedUploadCutShortIsLoggedAsSuch: a chunked body whose connection
// ends inside it is a body cut short of its framing (400, as nginx logs
// it; TestShortBodyLogged400), and the access log says so, with the body
// read as the error. net/http's chunked reader then says io.ErrUnexpectedEOF,
// which the gateway took for the end of a short body: it went on with the
// part that came, dialed php-fpm with the request already cancelled, and
// logged "fcgi: dial ...: operation was canceled", sending an operator
// after php-fpm for clients that abandoned uploads.
func TestChunkedUploadCutShortIsLoggedAsSuch(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	dir := harness.PHPTempDir(t)
	ran := filepath.Join(dir, "ran")
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"form.php": fmt.Sprintf(`<?php file_put_contents(%q, strlen(file_get_contents('php://input')) . "\n", FILE_APPEND); echo 'saved';`, ran),
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
	})
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /form.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n%s", strings.Repeat("x", 100))
	c.Close()

	line, ok := logLine(gw.stderr, `"path":"/form.php"`)
	if !ok {
		t.Fatalf("no access log line for the upload cut short:\n%s", gw.stderr.String())
	}
	if !strings.Contains(line, `"status":400`) || !strings.Contains(line, "read request body") || strings.Contains(line, "dial") {
		t.Errorf("upload cut short logged as %s; want 400 with the body read as the error", line)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("PHP ran on the upload cut short")
	}
}

// TestHalfClosedClientGetsNoAnswer: a client that sends its request and
// half-closes its connection (shutdown(SHUT_WR), still reading) is taken by
// net/http for one that left: the request is cancelled and logged 499. It
// got "200 OK" with an empty body for a page that never ran; it now gets
// the connection closed without an answer, as nginx sends it nothing.
func TestHalfClosedClientGetsNoAnswer(t *testing.T) {
	gw, addr, root := startPHPBinary(t)
	if err := os.WriteFile(filepath.Join(root, "slow.php"), []byte(`<?php usleep(300000); echo "done";`), 0o644); err != nil {
		t.Fatal(err)
	}
	halfClosedGetsNoAnswer(t, addr, "/slow.php", "")
	var line string
	for deadline := time.Now().Add(5 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(gw.stderr.String(), "\n") {
			if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, "/slow.php") {
				line = l
			}
		}
	}
	if !strings.Contains(line, `"status":499`) || !strings.Contains(line, `"error":`) {
		t.Errorf("access log %q, want 499 with its reason", line)
	}
}

// halfClosedGetsNoAnswer sends a GET of target to addr, half-closes the
// connection (shutdown(SHUT_WR), still reading) and fails the test unless
// the connection ends without an answer.
func halfClosedGetsNoAnswer(t *testing.T, addr, target, cookie string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n"
	if cookie != "" {
		req += "Cookie: " + cookie + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c)
	if len(answer) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("half-closed client of %s: got %q (%v), want the connection closed without an answer", target, answer, err)
	}
}

// TestShortBodyLogged400: a request body that ends short of its framing
// (the client closed its side before the Content-Length, or inside a
// chunk) is logged 400, the client's fault, as by nginx, with buffering on
// and off, read into memory, spooled or streamed; a client that only
// half-closed, still reading, gets that 400. net/http cancels the
// request's context as the read fails on the connection's end, and the
// failure was taken for a client that left: logged 499, and the client
// still reading got "200 OK" with an empty body for its failed upload.
func TestShortBodyLogged400(t *testing.T) {
	for _, buffering := range []string{"on", "off"} {
		gw, addr, root := startPHPBinary(t, "SESSIONGATE_REQUEST_BUFFERING="+buffering)
		if err := os.WriteFile(filepath.Join(root, "upload.php"), []byte(`<?php echo strlen(file_get_contents("php://input"));`), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, head, body string
			halfClose        bool
		}{
			{"in memory, half-close", "Content-Length: 1000", strings.Repeat("x", 500), true},
			{"large, half-close", "Content-Length: 200000", strings.Repeat("x", 100000), true},
			{"large, close", "Content-Length: 200000", strings.Repeat("x", 100000), false},
			{"chunked, half-close", "Transfer-Encoding: chunked", "5\r\nhello\r\n", true},
		} {
			name := "buffering " + buffering + ", " + tc.name
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			before := len(gw.stderr.String())
			fmt.Fprintf(c, "POST /upload.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n%s\r\n\r\n%s", tc.head, tc.body)
			var answer []byte
			if tc.halfClose {
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				answer, _ = io.ReadAll(c)
			}
			c.Close()
			text, ok := textWhen(gw.stderr.String, func(s string) bool { return strings.Contains(s[before:], `"path":"/upload.php"`) })
			if !ok {
				t.Fatalf("%s: no access log line:\n%s", name, text)
			}
			var line string
			for _, l := range strings.Split(text[before:], "\n") {
				if strings.Contains(l, `"path":"/upload.php"`) {
					line = l
				}
			}
			if !strings.Contains(line, `"status":400`) {
				t.Errorf("%s: a body cut short of its framing logged %.300s, want status 400", name, line)
			}
			if tc.halfClose && !strings.HasPrefix(string(answer), "HTTP/1.1 400 ") {
				t.Errorf("%s: the client still reading got %.40q, want a 400", name, answer)
			}
		}
	}
}

package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestIdleTimeoutZeroTurnsKeepAliveOff: SESSIONGATE_IDLE_TIMEOUT=0 means
// what nginx's keepalive_timeout 0 means, keep-alive off: every response,
// static or PHP, says Connection: close and the gateway closes the
// connection. It meant SESSIONGATE_READ_TIMEOUT's 60 s, so an operator who
// copied nginx's 0 to turn keep-alive off kept idle connections open a
// minute instead, without a word.
func TestIdleTimeoutZeroTurnsKeepAliveOff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	bin := buildGateway(t)
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	p := startBinary(t, bin, []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_IDLE_TIMEOUT=0",
	})
	addr := strings.TrimPrefix(p.URL, "http://")
	for _, path := range []string{"/style.css", "/info.php"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path)
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !res.Close {
			t.Errorf("%s: %d, Connection %q; want 200 and close", path, res.StatusCode, res.Header.Get("Connection"))
		}
		// The gateway closes its end: the next read ends (EOF) well
		// before the 10 s deadline, where a kept-alive one would wait.
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%s: after the response read %d bytes, %v; want EOF", path, n, err)
		}
	}
}

// TestIdleTimeoutZeroClosesHTTP2AfterItsStream: SESSIONGATE_IDLE_TIMEOUT=0
// is keep-alive off over HTTP/2 as well: the connection closes after its
// last open stream, so a second request opens a new one.
func TestIdleTimeoutZeroClosesHTTP2AfterItsStream(t *testing.T) {
	t.Parallel()
	_, addr := startH2Binary(t, "SESSIONGATE_IDLE_TIMEOUT=0")
	client := h2Client()
	for i, path := range []string{"/style.css", "/info.php", "/style.css"} {
		var reused bool
		req, err := http.NewRequest("GET", "https://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused },
		}))
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.ProtoMajor != 2 {
			t.Fatalf("%s: %d over %s", path, res.StatusCode, res.Proto)
		}
		if i > 0 && reused {
			t.Errorf("request %d (%s) reused the HTTP/2 connection of the one before, with keep-alive off", i, path)
		}
	}
}

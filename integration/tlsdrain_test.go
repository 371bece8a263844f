package integration

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestTLSDrainClosesStalledHandshakes: at SIGTERM the gateway stops
// accepting, but the TLS handshakes it had started went on until their
// timeout (SESSIONGATE_READ_HEADER_TIMEOUT, 10 s) or until the process
// exited at the end of the drain: clients that had connected but not yet
// finished their handshake (a slow network, a scanner, a slowloris) kept
// their sockets for the whole drain, and a handshake that finished meanwhile
// was then closed unanswered. They are now cut at once, while the request
// in flight on a connection net/http already had is answered.
func TestTLSDrainClosesStalledHandshakes(t *testing.T) {
	t.Parallel()
	p, addr := startH2Site(t, map[string]string{
		"wait.php": `<?php touch($_GET['started']); usleep(4000000); echo 'waited';`,
	}, "SESSIONGATE_SESSIONS=off")
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	started, q := markFile(t)
	inFlight := make(chan string, 1)
	go func() {
		res, err := client.Get("https://" + addr + "/wait.php?started=" + q)
		if err != nil {
			inFlight <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		inFlight <- res.Status + " " + string(b)
	}()
	const stalled = 5
	var conns []net.Conn
	for range stalled {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitForFile(t, started, "wait.php")
	time.Sleep(200 * time.Millisecond) // the stalled connections are accepted

	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		c.SetReadDeadline(sent.Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("stalled handshake %d still open 2 s after SIGTERM, while the drain waits for wait.php", i)
		}
	}
	if got := <-inFlight; got != "200 OK waited" {
		t.Errorf("request in flight at SIGTERM got %q, want 200 OK waited", got)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("gateway exited with %d after SIGTERM, want 0; log:\n%s", code, p.stderr.String())
	}
}

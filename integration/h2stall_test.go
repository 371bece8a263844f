package integration

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testh2"
)

// TestH2ClientThatNeverReadsIsClosed: an HTTP/2 client asks for big
// responses and then never reads its socket (a TCP zero window, not an
// HTTP/2 flow-control one). SESSIONGATE_SEND_TIMEOUT cut each stream (a
// per-stream write deadline), but net/http's HTTP/2 writer stayed blocked
// in the connection's Write, which had no deadline: the streams' resets
// and the idle timer's GOAWAY were never written, and the connection (its
// descriptor, goroutines, buffers, every stream's handler) stayed for
// good. Over HTTP/1.1 the same client is closed at SEND_TIMEOUT.
func TestH2ClientThatNeverReadsIsClosed(t *testing.T) {
	t.Parallel()
	p, addr := startH2Binary(t, "SESSIONGATE_SEND_TIMEOUT=1s", "SESSIONGATE_IDLE_TIMEOUT=2s")
	raw := stallH2(t, addr, "/big.bin", 8)
	_, port, _ := net.SplitHostPort(addr)
	gwPort, _ := strconv.Atoi(port)
	clientPort := raw.LocalAddr().(*net.TCPAddr).Port
	if !harness.HoldsConnection(p.cmd.Process.Pid, gwPort, clientPort) {
		t.Fatal("control: the gateway does not hold the connection at first")
	}
	// SEND_TIMEOUT (1 s), then the connection's write timeout (the same),
	// with room to spare.
	if !poll(8*time.Second, func() bool {
		return strings.Count(p.stderr.String(), `"path":"/big.bin"`) > 0 && !harness.HoldsConnection(p.cmd.Process.Pid, gwPort, clientPort)
	}) {
		t.Errorf("8 s later, with SESSIONGATE_SEND_TIMEOUT=1s: %d of the 8 responses cut (logged), the connection held: %v",
			strings.Count(p.stderr.String(), `"path":"/big.bin"`), harness.HoldsConnection(p.cmd.Process.Pid, gwPort, clientPort))
	}
}

// stallH2 opens an HTTP/2 connection that asks for path on streams
// 1, 3, ... (n of them) and never reads its socket.
func stallH2(t *testing.T, addr, path string, n int) net.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.(*net.TCPConn).SetReadBuffer(4 << 10)
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	settings := binary.BigEndian.AppendUint16(nil, 0x4)
	settings = binary.BigEndian.AppendUint32(settings, 16<<20)
	out := append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), testh2.Frame(testh2.TypeSettings, 0, 0, settings)...)
	out = append(out, testh2.Frame(testh2.TypeWindowUpdate, 0, 0, binary.BigEndian.AppendUint32(nil, 64<<20))...)
	for i := 0; i < n; i++ {
		out = append(out, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndStream|testh2.FlagEndHeaders, uint32(2*i+1), testh2.Get(path))...)
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestH2StalledClientFreesPHPWorkers: with
// SESSIONGATE_RESPONSE_BUFFERING=off, SESSIONGATE_WRITE_TIMEOUT frees the
// worker of a client that stops reading (README). One HTTP/2 client that
// asked for two big PHP pages and stopped reading its socket held both
// php-fpm workers (Children: 2) for good, WRITE_TIMEOUT=2s and
// SEND_TIMEOUT=1s notwithstanding: the site's PHP was down for everyone
// while that one connection stayed open.
func TestH2StalledClientFreesPHPWorkers(t *testing.T) {
	t.Parallel()
	p, addr := startH2Site(t, map[string]string{
		"huge.php": `<?php $b = str_repeat("x", 65536); for ($i = 0; $i < 128; $i++) { echo $b; flush(); }`,
	}, "SESSIONGATE_SESSIONS=off", "SESSIONGATE_RESPONSE_BUFFERING=off", "SESSIONGATE_WRITE_TIMEOUT=2s",
		"SESSIONGATE_SEND_TIMEOUT=1s", "SESSIONGATE_PHP_TIMEOUT=5s")
	stallH2(t, addr, "/huge.php", 2)
	time.Sleep(6 * time.Second) // WRITE_TIMEOUT 2 s, three times over
	start := time.Now()
	res, err := h2Client().Get("https://" + addr + "/info.php")
	status := 0
	if err == nil {
		status = res.StatusCode
		res.Body.Close()
	}
	if status != 200 || time.Since(start) > 3*time.Second {
		t.Errorf("a page from another client, 6 s after the stalled one with WRITE_TIMEOUT=2s: status %d, err %v, after %v; huge.php log lines: %d",
			status, err, time.Since(start).Round(time.Millisecond), strings.Count(p.stderr.String(), `"path":"/huge.php"`))
	}
}

// TestH2ConnWithoutStreamsClosedWithKeepAliveOff: with
// SESSIONGATE_IDLE_TIMEOUT=0 (keep-alive off), net/http gives its HTTP/2
// server the idle timeout of Server.IdleTimeout, else ReadTimeout, both 0
// on the public listener: no idle timer at all. A client that completed
// the handshake and the preface and opened no stream was never closed,
// where an HTTP/1.1 connection that sends nothing is closed at
// SESSIONGATE_READ_HEADER_TIMEOUT: each held a descriptor and goroutines
// for good.
func TestH2ConnWithoutStreamsClosedWithKeepAliveOff(t *testing.T) {
	t.Parallel()
	_, addr := startH2Binary(t, "SESSIONGATE_IDLE_TIMEOUT=0", "SESSIONGATE_READ_HEADER_TIMEOUT=1s")

	// Control: HTTP/1.1 over TLS, nothing sent, is closed within ~1 s.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	io.ReadAll(c)
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("control: an idle HTTP/1.1 connection stayed open %v", d)
	}

	h2 := testh2.Dial(t, addr)
	if !h2.WaitClosed(6 * time.Second) {
		t.Errorf("an HTTP/2 connection with no stream is still open after 6 s (READ_HEADER_TIMEOUT 1s, IDLE_TIMEOUT 0); seen %+v", h2.Seen())
	}
}

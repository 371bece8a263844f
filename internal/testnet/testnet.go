// Package testnet holds the socket set-ups the fcgi, wsgi, server and
// integration tests share: an upstream whose listen queue is full (unix or
// TCP), a client that sends a request as raw bytes (a body that stalls)
// and reads what comes back, and one that sends a whole large body before
// it reads.
package testnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FullUnixListener returns the path of a unix socket whose listen queue is
// full, like a php-fpm or gunicorn with every worker busy and its backlog
// reached: a connect to it fails at once with EAGAIN.
func FullUnixListener(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "full.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			if !errors.Is(err, syscall.EAGAIN) {
				t.Fatalf("filling the listen queue: %v", err)
			}
			return path
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Fatal("the listen queue never filled")
		}
	}
}

// FullTCPListener returns the address of a loopback TCP listener whose
// listen queue is full: the kernel drops further SYNs, so a connect waits
// (a php-fpm or gunicorn with every worker busy and its backlog reached, or
// a host that is down behind a firewall that drops packets).
func FullTCPListener(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break // the queue is full: SYNs are dropped
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Fatal("the listen queue never filled")
		}
	}
	return addr
}

// Exchange sends request, verbatim, on a fresh TCP connection to addr and
// returns everything the server sends until it closes the connection or
// 5 s pass.
func Exchange(t testing.TB, addr, request string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, request)
	got, _ := io.ReadAll(c)
	return string(got)
}

// SendBodyBeforeReading sends head, then size bytes of body (in 64 KiB
// chunks and a last chunk when chunked), all before it reads anything, as
// a client that does not watch for an early answer does (a browser's form
// upload, most HTTP libraries), and returns the status of the answer it
// then reads: 0 and the error that stopped it when none came (a reset
// while it wrote).
func SendBodyBeforeReading(addr, head string, size int, chunked bool) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		return 0, fmt.Errorf("writing the head: %w", err)
	}
	piece := []byte(strings.Repeat("b", 64<<10))
	for sent := 0; sent < size; sent += len(piece) {
		var err error
		if chunked {
			_, err = fmt.Fprintf(c, "%x\r\n%s\r\n", len(piece), piece)
		} else {
			_, err = c.Write(piece)
		}
		if err != nil {
			return 0, fmt.Errorf("writing the body after %d bytes: %w", sent, err)
		}
	}
	if chunked {
		if _, err := io.WriteString(c, "0\r\n\r\n"); err != nil {
			return 0, fmt.Errorf("writing the last chunk: %w", err)
		}
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// SmallBuffer is the kernel buffer size, each way, of a socket that
// SmallBuffers sets up. Left to the kernel, loopback buffers autotune to
// megabytes (tcp_rmem's maximum is 32 MiB on Debian 12), so a test proving
// that a reader which stops reading holds its writer up had to send 64
// MiB: tens of seconds under the race detector.
const SmallBuffer = 32 << 10

// SmallBuffers sets SmallBuffer as c's send and receive buffers, which
// also turns their autotuning off. Its signature is net.Dialer's and
// net.ListenConfig's Control: connections a listener accepts inherit its
// buffers, and a dialled one gets them before the window is agreed.
func SmallBuffers(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, SmallBuffer); serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, SmallBuffer)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// SmallBufferConn applies SmallBuffers to a connection already made, for
// one dialled by the code under test.
func SmallBufferConn(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("testnet: %T has no socket", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return SmallBuffers("", "", rc)
}

// SmallBufferListener listens on a loopback port; what it accepts has
// SmallBuffers. It closes when the test ends.
func SmallBufferListener(t testing.TB) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: SmallBuffers}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// SmallBufferClient is an HTTP client whose connections have SmallBuffers.
// Its idle connections close when the test ends.
func SmallBufferClient(t testing.TB) *http.Client {
	d := &net.Dialer{Control: SmallBuffers}
	tr := &http.Transport{DialContext: d.DialContext, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Package testnet holds the socket set-ups the fcgi and wsgi tests share:
// an upstream whose listen queue is full, and a client that sends a request
// as raw bytes (a body that stalls) and reads what comes back.
package testnet

import (
	"errors"
	"io"
	"net"
	"path/filepath"
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

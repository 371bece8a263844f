package main

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testtls"
)

// listenTLSForTest is a tlsListener on a loopback port with a test
// certificate and the given handshake timeout, and the raw listener under it.
func listenTLSForTest(t *testing.T, handshakeTimeout time.Duration) (net.Listener, *tlsListener) {
	t.Helper()
	cert, key := testtls.Pair(t)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return raw, newTLSListener(raw, &tls.Config{Certificates: []tls.Certificate{pair}}, handshakeTimeout, func(c *tls.Conn) net.Conn { return c }, nil)
}

// A closed tlsListener accepts nothing more, and the connections whose
// handshake was still running are closed, not left to a goroutine
// waiting for an Accept that never comes.
func TestTLSListenerClose(t *testing.T) {
	raw, l := listenTLSForTest(t, 5*time.Second)

	// One connection handed over, then one whose handshake completes
	// after the close.
	done := make(chan error, 1)
	go func() {
		c, err := tls.Dial("tcp", raw.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	late, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	time.Sleep(50 * time.Millisecond) // accepted by the listener's loop
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	tc := tls.Client(late, &tls.Config{InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return // closed during the handshake: as good
	}
	_, err = tc.Read(make([]byte, 1))
	if ne := net.Error(nil); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the connection that came after the close stayed open: %v", err)
	}
}

// Close cuts the handshakes still running: a client that connected and
// sent nothing is not left open until the handshake timeout.
func TestTLSListenerCloseCutsStalledHandshakes(t *testing.T) {
	raw, l := listenTLSForTest(t, time.Minute)
	stalled, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	time.Sleep(50 * time.Millisecond) // accepted, its handshake waiting
	l.Close()
	stalled.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = stalled.Read(make([]byte, 1))
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Error("a stalled handshake stayed open after Close")
	}
}

//go:build linux || darwin

package connpeek

import (
	"net"
	"testing"
	"time"
)

func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// settle gives loopback time to deliver what the peer did.
func settle() { time.Sleep(50 * time.Millisecond) }

func TestAlive(t *testing.T) {
	c, _ := pair(t)
	if !Alive(c) {
		t.Fatal("an open, quiet connection is not alive")
	}
	// An expired deadline from an earlier exchange must not make it look dead.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if !Alive(c) {
		t.Fatal("an expired read deadline made an open connection look dead")
	}

	c2, s2 := pair(t)
	s2.Close()
	settle()
	if Alive(c2) {
		t.Fatal("a connection the peer closed is alive")
	}

	c3, s3 := pair(t)
	s3.Write([]byte("unasked"))
	settle()
	if Alive(c3) {
		t.Fatal("a connection with bytes nobody asked for is alive")
	}
}

package harness

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// A dead address refuses connects, and nobody can listen on it while the
// test runs, SO_REUSEADDR (which Go's listeners set) or not.
func TestDeadAddrRefusesAndStaysDead(t *testing.T) {
	addr := DeadAddr(t)
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("another listener took the dead address %s", addr)
	}
}

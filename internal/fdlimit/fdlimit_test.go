package fdlimit

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestReached(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}, true},
		{fmt.Errorf("dial: %w", syscall.ENFILE), true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false},
		{nil, false},
	} {
		if got := Reached(c.err); got != c.want {
			t.Errorf("Reached(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

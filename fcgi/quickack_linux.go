package fcgi

import (
	"net"
	"syscall"
)

// ackNow makes the kernel acknowledge what c received at once rather than
// after its delayed-ACK timer (40 ms). php-fpm sends a script's stderr in
// the middle of its run (flush() after the prepend's session frames, PHP's
// warnings) as a write of its own; with that write unacknowledged, Nagle's
// algorithm holds php-fpm's next small write (the response, the end of the
// request) until the ACK comes, so the page waited the whole timer.
// TCP_QUICKACK is not sticky: set after the read, it sends the ACK due.
func ackNow(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return // a unix socket has no delayed ACK
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

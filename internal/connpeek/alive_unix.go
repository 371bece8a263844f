//go:build linux || darwin

package connpeek

import (
	"net"
	"syscall"
	"time"
)

// Alive reports whether an idle kept-alive connection can still carry a
// request: backends close them (php-fpm when a worker is recycled by
// pm.max_requests or restarted, gunicorn after its keep-alive timeout). A
// non-blocking MSG_PEEK sees that FIN (or RST, or stray bytes) before we
// write, so the common stale case never reaches a retry. One recvfrom per
// reuse.
func Alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// A read deadline left over from the last request may have expired
	// while the connection sat idle; RawConn.Read would then fail before
	// calling us.
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	alive := true
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK || rerr == syscall.EINTR:
			// nothing to read: the connection is open and quiet
		default:
			// n == 0: FIN; n > 0: bytes nobody asked for; rerr: RST etc.
			_ = n
			alive = false
		}
		return true
	})
	return err == nil && alive
}

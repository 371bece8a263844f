package connpeek

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ClosedBeforeItRead reports a TCP connection whose peer ended it (the
// caller read its FIN) and then reset it: a peer that closes its socket
// answers any data that arrives afterwards with a reset, so a request
// written after the close, which the caller sees fail with an end of
// stream, is one the peer never read. A peer that read the request and
// then closed sends no reset. The reset takes a round trip to come; it is
// looked for again after wait.
func ClosedBeforeItRead(nc net.Conn, wait time.Duration) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	reset := func() bool {
		var state uint8
		err := rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				state = info.State
			}
		})
		// CLOSE_WAIT after the FIN alone; CLOSE once a reset came.
		return err == nil && state == unix.BPF_TCP_CLOSE
	}
	if reset() {
		return true
	}
	time.Sleep(wait)
	return reset()
}

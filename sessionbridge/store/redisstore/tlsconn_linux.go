package redisstore

import "golang.org/x/sys/unix"

// peerClosed reports whether the TCP connection of socket fd is no longer
// established: the server sent FIN (CLOSE_WAIT) or RST (CLOSE). The state,
// not a peek at the data: TLS records (the server's close_notify) may wait
// in front of the end of the stream.
func peerClosed(fd uintptr) bool {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return false // unknown: used as it is, as before
	}
	return info.State != unix.BPF_TCP_ESTABLISHED // 1, the kernel's TCP_ESTABLISHED
}

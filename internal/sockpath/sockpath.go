// Package sockpath bounds unix socket paths, which the PHP, Django and
// Redis addresses may all be.
package sockpath

import (
	"fmt"
	"syscall"
)

// Max is the longest path a unix socket address holds: the path and its
// terminating NUL must fit in sockaddr_un's sun_path (108 bytes on Linux).
const Max = len(syscall.RawSockaddrUnix{}.Path) - 1

// Check says why p can never be connected to, or returns nil. A longer path
// only fails at dial time with "invalid argument", on every request, so
// configuration refuses it at start, as nginx refuses "too long path in the
// unix domain socket".
func Check(p string) error {
	if len(p) <= Max {
		return nil
	}
	return fmt.Errorf("the socket path is too long: %d bytes, and a unix socket address holds at most %d; use a shorter path (a short symlink to the socket's directory works)", len(p), Max)
}

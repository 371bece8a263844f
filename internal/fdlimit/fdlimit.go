// Package fdlimit tells the gateway's own want of file descriptors from an
// upstream's failure: a connection to php-fpm or Django that cannot be
// opened for lack of a descriptor is no backend's fault, so it is answered
// 500 (as nginx answers when its socket() fails) and no backend is marked
// down for it.
package fdlimit

import (
	"errors"
	"syscall"
)

// Reached reports whether err is the process (EMFILE) or the system
// (ENFILE) having no file descriptor left.
func Reached(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

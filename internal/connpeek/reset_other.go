//go:build !linux

package connpeek

import (
	"net"
	"time"
)

// ClosedBeforeItRead cannot read a connection's TCP state here: no request
// is proven unread by it.
func ClosedBeforeItRead(net.Conn, time.Duration) bool { return false }

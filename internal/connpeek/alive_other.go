//go:build !(linux || darwin)

package connpeek

import "net"

// Alive cannot peek portably here; a stale connection is then caught by the
// callers' retry rule (EOF before any response byte on a reused connection).
func Alive(net.Conn) bool { return true }

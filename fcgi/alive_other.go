//go:build !(linux || darwin)

package fcgi

import "net"

// connAlive cannot peek portably here; a stale connection is then caught by
// the retry rule (EOF before any response byte on a reused connection).
func connAlive(net.Conn) bool { return true }

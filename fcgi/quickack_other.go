//go:build !linux

package fcgi

import "net"

// ackNow acknowledges at once on Linux (quickack_linux.go); elsewhere the
// kernel's delayed ACK stays.
func ackNow(net.Conn) {}

package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"
)

// tlsDialer dials as go-redis does for a TLS config (a TCP dial, then the
// handshake, within timeout; TCP keep-alives as go-redis sets them), and
// returns a connection go-redis can check for a closed peer (checkedTLS).
func tlsDialer(timeout time.Duration, cfg *tls.Config) func(context.Context, string, string) (net.Conn, error) {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{
			Timeout:         timeout,
			KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3},
		},
		Config: cfg,
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return checkedTLS{c.(*tls.Conn)}, nil
	}
}

// checkedTLS is a TLS connection that lets go-redis's pool see that the
// server closed it. The pool checks a connection's socket before reusing
// it, but skips connections that are not a syscall.Conn, as *tls.Conn is
// not: a connection Redis had closed (its idle timeout, a restart, a proxy
// cutting idle connections) was used anyway, the command failed with EOF,
// and scripts are not sent again (noRetry), so the first session request
// after an idle spell got 503.
type checkedTLS struct{ *tls.Conn }

// SyscallConn is go-redis's check: it fails when the server has closed the
// connection (the pool then drops it and dials another), and otherwise
// gives a socket go-redis does not look at. Its own look (a peek at the
// socket) cannot tell a closed TLS connection from an open one: Redis sends
// an encrypted close_notify before closing, and in TLS 1.3 that record
// looks like any other (a session ticket, a key update); go-redis then
// calls such a connection unhealthy, or with RESP3 reads the TLS stream to
// peek at it and waits for ever.
func (c checkedTLS) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.NetConn().(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			closed := false
			if err := rc.Control(func(fd uintptr) { closed = peerClosed(fd) }); err != nil || closed {
				return nil, errPeerClosed
			}
		}
	}
	return unchecked{}, nil
}

var errPeerClosed = errors.New("redisstore: the server closed the connection")

// unchecked is a RawConn go-redis's check finds nothing wrong with: its
// Read never runs the check's function (nor does anything else).
type unchecked struct{}

func (unchecked) Read(func(uintptr) bool) error  { return nil }
func (unchecked) Write(func(uintptr) bool) error { return errUnchecked }
func (unchecked) Control(func(uintptr)) error    { return errUnchecked }

var errUnchecked = errors.New("redisstore: no access to a TLS connection's socket")

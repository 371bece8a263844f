package redisstore

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// maxClientsReply is what Redis writes to a connection it accepts past
// maxclients, before closing it.
const maxClientsText = "-ERR max number of clients reached"

var maxClientsReply = []byte(maxClientsText)

// plainDialer dials as go-redis's own dialer does without TLS (its dial
// timeout and TCP keep-alives).
func plainDialer(timeout time.Duration) func(context.Context, string, string) (net.Conn, error) {
	d := &net.Dialer{
		Timeout:         timeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3},
	}
	return d.DialContext
}

// noticeFull wraps dial's connections in fullConn.
func noticeFull(dial func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &fullConn{Conn: c}, nil
	}
}

// fullConn names maxclients in the errors of a connection Redis refused for
// it. Redis accepts such a connection, writes "-ERR max number of clients
// reached" and closes it; go-redis reads that line as the reply to its
// HELLO, takes the server for one without HELLO, and goes on to a write
// that fails with "broken pipe" (or a read that ends in EOF): every
// request got 503 for what read as Redis crashing, with nothing pointing at
// maxclients.
type fullConn struct {
	net.Conn
	read atomic.Bool // the first read is done
	full atomic.Bool // the server's first words were maxClientsReply
}

func (c *fullConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.read.Load() && (n > 0 || err != nil) {
		c.read.Store(true)
		if bytes.HasPrefix(b[:n], maxClientsReply) {
			c.full.Store(true)
		}
	}
	if err != nil && c.full.Load() {
		err = maxClientsError{err: err}
	}
	return n, err
}

func (c *fullConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		if !c.read.Load() {
			c.probe()
		}
		if c.full.Load() {
			err = maxClientsError{err: err}
		}
	}
	return n, err
}

// probeWait bounds probe's read: the refusal, if any, is already there.
const probeWait = 10 * time.Millisecond

// probe reads what the server said before a first write failed: Redis
// closes a refused connection at once, and the client's first write then
// often fails with "connection reset" before anything was read, though the
// refusal waits in the socket. The connection is done for: what probe
// reads is no longer needed.
func (c *fullConn) probe() {
	_ = c.Conn.SetReadDeadline(time.Now().Add(probeWait))
	var b [len(maxClientsText)]byte
	n, _ := io.ReadFull(c.Conn, b[:])
	c.read.Store(true)
	if bytes.Equal(b[:n], maxClientsReply) {
		c.full.Store(true)
	}
}

// SyscallConn is the wrapped connection's, for go-redis's check of a pooled
// connection's socket (see checkedTLS); a connection without one is not
// checked, as before.
func (c *fullConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return unchecked{}, nil
}

// maxClientsError is a refused connection's error. go-redis hands the
// caller the error of a failed connection set-up unwrapped once (its own
// wrapping gone), so the error unwraps first to a copy of itself (inner)
// and only then to the network error.
type maxClientsError struct {
	err   error
	inner bool
}

func (e maxClientsError) Error() string {
	return "Redis refused the connection: it has maxclients connections already (\"max number of clients reached\"; raise its maxclients, or give the gateways a smaller pool_size in the Redis URL): " + e.err.Error()
}

func (e maxClientsError) Unwrap() error {
	if !e.inner {
		return maxClientsError{e.err, true}
	}
	return e.err
}

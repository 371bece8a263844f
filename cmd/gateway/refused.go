package main

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/sessiongate/sessiongate/server"
)

// logRefusals makes the requests net/http answers itself, before any
// handler runs, show in the access log (logger; nil: not logged) and in
// the request metrics (count; nil: not counted): a request line and headers over
// SESSIONGATE_MAX_HEADER_BYTES (431), malformed framing or a missing Host
// (400), an unsupported Transfer-Encoding (501), an unknown Expect (417).
// net/http writes those answers straight to the connection and logs
// nothing, so a client told 431 left no trace, where nginx logs its 400s
// and 414s. Each gets one "request" line with the status, the listener's
// upstream ("gateway" for the public one, "redirect" for the port-80 one,
// as its other answers) and the peer address (the request was not read, so
// there is no method, path or forwarded address).
//
// It also refuses, with 400 and a close, a request whose head has a
// folded header line (foldScanner), and an HTTP/1.0 request with a
// Transfer-Encoding, as nginx does, and closes the connection after a
// request whose head the scanner could not follow.
//
// It sets srv.Handler, srv.ConnState and srv.ConnContext (keeping those
// already set) and returns the listener to serve. With tlsConfig (the
// public listener over SESSIONGATE_TLS_CERT) that listener does the TLS
// handshakes (tlsListener), so that it sees HTTP/1.x over TLS as well,
// where net/http would write to a *tls.Conn of its own; HTTP/2 has no such
// answers to see. srv must then be served with Serve, not ServeTLS.
func logRefusals(srv *http.Server, ln net.Listener, upstream string, logger *slog.Logger, count func(upstream string, status int), tlsConfig *tls.Config) net.Listener {
	next, state, connCtx := srv.Handler, srv.ConnState, srv.ConnContext
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(refusalConnKey{}).(*refusalConn); ok {
			c.handled.Store(true)
			c.served++
			if c.folds.foldedBy(c.served) {
				c.refuse(w, r, "folded header line", "a header line starts with a space or tab (obs-fold), which proxies in front may read differently")
				return
			}
			if !r.ProtoAtLeast(1, 1) && c.folds.transferEncodedAt(c.served) {
				// net/http ignores and hides a Transfer-Encoding on
				// HTTP/1.0 and frames the body by Content-Length:
				// the app got the chunk framing, or no body, of what
				// the client sent chunked.
				c.refuse(w, r, "Transfer-Encoding in an HTTP 1.0 request", "Transfer-Encoding on HTTP/1.0, whose framing RFC 9112 section 6.1 calls faulty")
				return
			}
			if c.folds.stoppedBy(c.served) {
				// The requests after this one would go unchecked
				// for folded lines: none is read.
				w.Header().Set("Connection", "close")
			}
		}
		next.ServeHTTP(w, r)
	})
	srv.ConnState = func(nc net.Conn, st http.ConnState) {
		if c, ok := refusalConnOf(nc); ok && (st == http.StateActive || st == http.StateIdle) {
			// net/http has read a request (or failed to), or sent the
			// last response whole: whatever it writes before the handler
			// runs is its own answer. Active alone misses a request that
			// came with the one before (pipelined): net/http reads it
			// from its buffer, and says Active only when it reads the
			// connection.
			c.handled.Store(false)
			if st == http.StateIdle {
				// net/http ends its read for a client leaving,
				// once a handler is done, with a deadline in the
				// past: that timeout was no head's.
				c.readSinceIdle.Store(0)
				c.timedOut.Store(false)
			}
		}
		if c, ok := refusalConnOf(nc); ok && st == http.StateClosed {
			c.closedMidHead()
		}
		if state != nil {
			state(nc, st)
		}
	}
	srv.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if connCtx != nil {
			ctx = connCtx(ctx, nc)
		}
		if c, ok := refusalConnOf(nc); ok {
			ctx = context.WithValue(ctx, refusalConnKey{}, c)
		}
		return ctx
	}
	rl := refusalListener{ln, upstream, logger, count}
	if tlsConfig == nil {
		return rl
	}
	return newTLSListener(ln, tlsConfig, tlsHandshakeTimeout(srv), func(tc *tls.Conn) net.Conn {
		rc := rl.newConn(tc)
		return tlsRefusalConn{rc, rc}
	}, rl.plainHTTP)
}

// plainHTTP logs and counts the 400 net/http answers a plain-HTTP request
// on the TLS port with (tlsListener): a health check or a link with
// http:// and the HTTPS port, which nginx logs as a 400 ("The plain HTTP
// request was sent to HTTPS port"), left no trace.
func (l refusalListener) plainHTTP(c net.Conn) {
	logRefused(l.log, l.count, l.upstream, c.RemoteAddr(), http.StatusBadRequest, "refused: a plain-HTTP request on the HTTPS port")
}

// refusalConnOf returns the refusalConn nc is, plain or over TLS.
func refusalConnOf(nc net.Conn) (*refusalConn, bool) {
	switch c := nc.(type) {
	case *refusalConn:
		return c, true
	case tlsRefusalConn:
		return c.rc, true
	}
	return nil, false
}

// tlsRefusalConn is a refusalConn over a *tls.Conn: its ConnectionState
// is what net/http gives the requests as Request.TLS (HTTPS to the
// gateway, PHP and Django). It is no io.ReaderFrom, as *tls.Conn is none:
// net/http would hand it each 64 KiB a static file goes out in, and
// refusalConn's io.Copy allocate a 32 KiB buffer for each, where net/http
// copies through a pooled one (and a failed write cancels the request).
type tlsRefusalConn struct {
	net.Conn // rc, for its Read and Write
	rc       *refusalConn
}

func (c tlsRefusalConn) ConnectionState() tls.ConnectionState {
	return c.rc.Conn.(*tls.Conn).ConnectionState()
}

// CloseWrite keeps net/http's half-close (refusalConn.CloseWrite).
func (c tlsRefusalConn) CloseWrite() error { return c.rc.CloseWrite() }

type refusalConnKey struct{}

type refusalListener struct {
	net.Listener
	upstream string
	log      *slog.Logger
	count    func(upstream string, status int)
}

func (l refusalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.newConn(c), nil
}

func (l refusalListener) newConn(c net.Conn) *refusalConn {
	rc := &refusalConn{Conn: c, upstream: l.upstream, log: l.log, count: l.count, folds: newFoldScanner()}
	rc.handled.Store(true) // nothing read yet
	return rc
}

// refusalConn is a client connection that logs the answers net/http writes
// on it while no handler has run for the current request.
type refusalConn struct {
	net.Conn
	upstream string
	log      *slog.Logger
	count    func(upstream string, status int)
	handled  atomic.Bool
	folds    *foldScanner
	// served counts the requests handed to the handler, one at a time.
	served int64
	// readSinceIdle counts the bytes read since the connection's last
	// response ended (StateIdle), or since it opened; timedOut is set when
	// a read hit its deadline since then.
	readSinceIdle atomic.Int64
	timedOut      atomic.Bool
}

func (c *refusalConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.folds.scan(p[:n])
	c.readSinceIdle.Add(int64(n))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.timedOut.Store(true)
	}
	return n, err
}

// headTimedOut reports whether the request whose head net/http is reading
// ran out of SESSIONGATE_READ_HEADER_TIMEOUT (a slowloris client, or one
// on a slow link): net/http then answers 400 Bad Request when the head
// stopped in its request line or a field name, and closes without a word
// elsewhere; nginx logs 408 for both. HTTP/2 reads frames, not heads.
func (c *refusalConn) headTimedOut() bool {
	if !c.timedOut.Load() || c.handled.Load() {
		return false
	}
	if tc, ok := c.Conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
		return false
	}
	return true
}

// headTimeoutError is the log's error for a request head not whole in time.
const headTimeoutError = "request headers not complete within SESSIONGATE_READ_HEADER_TIMEOUT"

// closedMidHead logs the 408 of a connection net/http closed without an
// answer because the head it was reading timed out. Nothing read since the
// last response is an idle connection, unless the head came with the
// request before (pipelined) and net/http waited for its rest.
func (c *refusalConn) closedMidHead() {
	if c.readSinceIdle.Load() == 0 && !c.folds.midHead() || !c.headTimedOut() {
		return
	}
	c.handled.Store(true)
	c.logRefusal(http.StatusRequestTimeout, headTimeoutError)
}

// logRefusal logs and counts an answer of status given before any
// handler ran.
func (c *refusalConn) logRefusal(status int, why string) {
	logRefused(c.log, c.count, c.upstream, c.RemoteAddr(), status, why)
}

// logRefused logs (on log, when not nil) and counts (with count, when not
// nil) an answer of status the client from remote got before any handler
// ran, as the access log would have it.
func logRefused(log *slog.Logger, count func(upstream string, status int), upstream string, remote net.Addr, status int, why string) {
	if count != nil {
		count(upstream, status)
	}
	if log != nil {
		log.LogAttrs(context.Background(), slog.LevelInfo, "request",
			slog.Int("status", status),
			slog.String("upstream", upstream),
			slog.String("remote", remote.String()),
			slog.String("error", why))
	}
}

// refuse answers a request whose head had a folded header line, or that
// came after one on its connection, or an HTTP/1.0 request with a
// Transfer-Encoding: 400, like nginx, and the connection closed, as where
// the request ends is in doubt. what goes to the client, why to the log.
func (c *refusalConn) refuse(w http.ResponseWriter, r *http.Request, what, why string) {
	const status = http.StatusBadRequest
	w.Header().Set("Connection", "close")
	http.Error(w, "400 Bad Request: "+what, status)
	if c.count != nil {
		c.count(c.upstream, status)
	}
	if c.log != nil {
		c.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", server.LogValue(r.Method)),
			slog.String("path", server.LogValue(r.URL.Path)),
			slog.Int("status", status),
			slog.String("upstream", c.upstream),
			slog.String("remote", c.RemoteAddr().String()),
			slog.String("error", "refused: "+why))
	}
}

func (c *refusalConn) Write(p []byte) (int, error) {
	if !c.handled.Load() {
		timedOut := c.headTimedOut()
		c.handled.Store(true) // one line per refused request
		if status, reason, ok := parseStatusLine(p); ok {
			var instead int
			var why, answer string
			switch {
			case timedOut && status == http.StatusBadRequest:
				// The request was slow, not malformed.
				instead, why, answer = http.StatusRequestTimeout, headTimeoutError, headTimeoutAnswer
			case status == http.StatusRequestHeaderFieldsTooLarge && c.folds.inRequestLine():
				// Its target alone is too long: nginx's 414, where
				// net/http counts the line with the headers.
				instead, why, answer = http.StatusRequestURITooLong, "request line over SESSIONGATE_MAX_HEADER_BYTES", uriTooLongAnswer
			}
			if instead != 0 {
				c.logRefusal(instead, why)
				if _, err := io.WriteString(c.Conn, answer); err != nil {
					return 0, err
				}
				return len(p), nil
			}
			c.logRefusal(status, "refused by net/http: "+reason)
		}
	}
	return c.Conn.Write(p)
}

// headTimeoutAnswer replaces net/http's 400 for a head that timed out,
// uriTooLongAnswer its 431 for a request line over the limit.
const (
	headTimeoutAnswer = "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n408 Request Timeout"
	uriTooLongAnswer  = "HTTP/1.1 414 URI Too Long\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n414 URI Too Long"
)

// ReadFrom keeps sendfile and splice for static files: net/http uses them
// only when the connection itself is an io.ReaderFrom. What goes this way
// is a handler's response body, never net/http's own answer.
func (c *refusalConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite keeps net/http's half-close before it drops a connection
// whose request it did not read whole (the client then reads the answer
// instead of a reset).
func (c *refusalConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// parseStatusLine reads "HTTP/1.x NNN reason\r\n" at the start of p.
func parseStatusLine(p []byte) (status int, reason string, ok bool) {
	const prefix = "HTTP/1.x NNN "
	if len(p) < len(prefix) || string(p[:7]) != "HTTP/1." || p[8] != ' ' || p[12] != ' ' {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(p[9:12]))
	if err != nil {
		return 0, "", false
	}
	rest := p[13:]
	for i, b := range rest {
		if b == '\r' || b == '\n' {
			rest = rest[:i]
			break
		}
	}
	return status, string(rest), true
}

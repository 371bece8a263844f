package main

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// tlsListener does the TLS handshakes of a listener itself, so that the
// HTTP/1.x connections it hands to net/http can be wrapped (logRefusals):
// on a *tls.Conn net/http writes its own refusals (431, 400, 501) where
// nothing sees them. An HTTP/2 connection goes out as the *tls.Conn it is,
// as net/http serves HTTP/2 only on one; an HTTP/1.x one goes through
// wrap, which must keep its ConnectionState (Request.TLS). A handshake
// that failed goes out unwrapped too: net/http's own handshake call then
// returns the same error, which it logs, and it answers a plain-HTTP
// request with its 400, as on a listener of its own. That 400 is written
// where logRefusals cannot see it: plainHTTP (nil: none) is called with
// the connection first, for the access log and the metrics.
//
// Handshakes run on goroutines of their own, so that a slow client holds
// up no other; each has timeout (net/http's TLS handshake timeout).
// Close cuts those still running (handshaking): net/http does not know
// their connections yet, so its Shutdown would leave them open for the
// whole drain, up to that timeout.
type tlsListener struct {
	net.Listener
	config    *tls.Config
	timeout   time.Duration
	wrap      func(*tls.Conn) net.Conn
	plainHTTP func(net.Conn)

	conns     chan net.Conn
	errs      chan error
	done      chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	handshaking map[net.Conn]struct{} // nil once closed
}

func newTLSListener(ln net.Listener, config *tls.Config, timeout time.Duration, wrap func(*tls.Conn) net.Conn, plainHTTP func(net.Conn)) *tlsListener {
	l := &tlsListener{Listener: ln, config: config, timeout: timeout, wrap: wrap, plainHTTP: plainHTTP,
		conns: make(chan net.Conn), errs: make(chan error), done: make(chan struct{}),
		handshaking: make(map[net.Conn]struct{})}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			// net/http decides: it retries after a temporary error
			// (EMFILE) and stops serving after another.
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	l.mu.Lock()
	if l.handshaking == nil {
		l.mu.Unlock()
		raw.Close()
		return
	}
	l.handshaking[raw] = struct{}{}
	l.mu.Unlock()
	tc := tls.Server(raw, l.config)
	if l.timeout > 0 {
		raw.SetDeadline(time.Now().Add(l.timeout))
	}
	var c net.Conn = tc
	err := tc.Handshake()
	l.mu.Lock()
	delete(l.handshaking, raw)
	l.mu.Unlock()
	if err == nil {
		raw.SetDeadline(time.Time{})
		if tc.ConnectionState().NegotiatedProtocol != "h2" {
			c = l.wrap(tc)
		}
	} else if l.plainHTTP != nil && plainHTTPHandshake(err) {
		l.plainHTTP(raw)
	}
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// plainHTTPHandshake reports whether a handshake failed on what net/http
// answers with its 400 "Client sent an HTTP request to an HTTPS server":
// a first record that starts as an HTTP request line does.
func plainHTTPHandshake(err error) bool {
	var re tls.RecordHeaderError
	if !errors.As(err, &re) || re.Conn == nil {
		return false
	}
	switch string(re.RecordHeader[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the connections still in their
// handshake; one whose handshake ended but that Accept has not returned
// yet is closed too. Connections Accept returned are net/http's.
func (l *tlsListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.mu.Lock()
		for c := range l.handshaking {
			c.Close()
		}
		l.handshaking = nil
		l.mu.Unlock()
	})
	return l.Listener.Close()
}

// tlsHandshakeTimeout is how long net/http gives a TLS handshake on srv:
// the shortest of its read header, read and write timeouts that is set.
func tlsHandshakeTimeout(srv *http.Server) time.Duration {
	var d time.Duration
	for _, v := range []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout} {
		if v > 0 && (d == 0 || v < d) {
			d = v
		}
	}
	return d
}

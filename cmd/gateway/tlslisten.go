package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
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
// the connection first, for the access log and the metrics. Plain HTTP
// that net/http does not recognise (a DELETE, a PATCH, the absolute form)
// gets the same 400 from here, and is not handed on.
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
	first := &firstBytesConn{Conn: raw}
	tc := tls.Server(first, l.config)
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
	} else if _, plain := notTLS(err); l.plainHTTP != nil && plain && first.requestLine(l.timeout > 0) {
		// net/http would close it without a word: answered here as
		// net/http answers the requests it recognises. Not handed on,
		// so net/http does not log it as a failed handshake too.
		io.WriteString(raw, plainHTTPAnswer)
		raw.Close()
		l.plainHTTP(raw)
		return
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
	header, ok := notTLS(err)
	if !ok {
		return false
	}
	switch string(header[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// plainHTTPAnswer is net/http's answer to plain HTTP on a TLS port.
const plainHTTPAnswer = "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

// notTLS reports whether a handshake failed on a first record that is no
// TLS record at all, and the five bytes crypto/tls read as its header.
func notTLS(err error) (header [5]byte, ok bool) {
	var re tls.RecordHeaderError
	if !errors.As(err, &re) || re.Conn == nil {
		return header, false
	}
	return re.RecordHeader, true
}

// maxMethodLen bounds the method token firstBytesConn looks for: the
// longest registered method (BASELINE-CONTROL) has 16 bytes.
const maxMethodLen = 20

// firstBytesConn keeps the first bytes read from a connection, for
// requestLine: crypto/tls reads more than the five bytes of a record
// header it reports, into a buffer of its own.
type firstBytesConn struct {
	net.Conn
	head []byte
}

func (c *firstBytesConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if room := maxMethodLen + 1 - len(c.head); room > 0 {
		c.head = append(c.head, p[:min(n, room)]...)
	}
	return n, err
}

// requestLine reports whether the connection starts as an HTTP request
// line, a method token and a space, as "DELETE /", "PATCH " or "GET
// http://" do, which net/http closes without an answer (it knows only
// the five-byte starts of plainHTTPHandshake) where nginx answers 400.
// With more (the connection has a deadline) it reads on while the token
// is incomplete, for a request line that came in pieces.
func (c *firstBytesConn) requestLine(more bool) bool {
	for {
		for i, b := range c.head {
			if b == ' ' {
				return i > 0
			}
			if !isTokenByte(b) {
				return false
			}
		}
		if len(c.head) > maxMethodLen || !more {
			return false
		}
		var buf [maxMethodLen + 1]byte
		if _, err := c.Read(buf[:]); err != nil {
			return false
		}
	}
}

// isTokenByte reports whether b may be in an HTTP token (RFC 9110
// section 5.6.2), as a method is.
func isTokenByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
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

package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/internal/proxyheader"
)

// phpProxy sends a routed request to php-fpm through the FastCGI
// RoundTripper and copies the answer to the client.
//
// It is not an httputil.ReverseProxy, unlike the Django path, because
// FastCGI is not HTTP: the transport builds CGI params straight from the
// client's request and drops hop-by-hop headers both ways itself (and
// untrusted forwarding headers, fcgi.Script.ForwardedTrusted), so the
// outbound clone, header rewriting and hop-by-hop passes ReverseProxy makes
// on every request have nothing to do here. On a hello-world page they cost
// about 13% of the gateway's CPU per request (about 10 of 75 µs,
// bench/run.sh).
type phpProxy struct{ s *Server }

func (p phpProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sb, streamed := r.Body.(*streamedBody)
	if streamed {
		// The transport sends the body as it comes from the client while
		// it reads PHP's answer, which may begin first (a script that
		// answers before it reads php://input). HTTP/1.1 net/http would
		// consume the rest of the body when the response header goes
		// out, and PHP, waiting for it, would never finish.
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex()
		sb.rc = rc
	}
	res, err := p.s.php.RoundTrip(r)
	if err != nil {
		if streamed {
			sb.closeIfUnread(w, r)
		}
		p.s.phpError(w, r, err)
		return
	}
	defer res.Body.Close()
	h := w.Header()
	for k, v := range res.Header {
		h[k] = v
	}
	if streamed {
		sb.closeIfUnread(w, r)
	}
	// 204 and 304 carry no body (net/http refuses to write one): whatever
	// PHP printed anyway is read and dropped, as nginx does, rather than
	// aborting the response. A 205 must not carry one either (RFC 9110
	// section 15.3.6), but net/http would send it, and so does nginx: it
	// is dropped too, and Content-Length: 0 is the framing the RFC asks
	// of a 205 (PHP's own length would promise bytes that never come).
	noBody := res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified ||
		res.StatusCode == http.StatusResetContent
	if res.StatusCode == http.StatusResetContent {
		h.Set("Content-Length", "0")
	}
	w.WriteHeader(res.StatusCode)

	// A response the transport received whole has its length: it goes out
	// in one write when the handler returns. One still coming (PHP's
	// flush(), long polling, server-sent events) is flushed after every
	// piece, as PHP sent it, also when PHP declared its length: a script
	// that answers with a Content-Length, flushes and goes on working
	// (mails, cache warming after the page) kept its client waiting for
	// the end of that work.
	var flusher http.Flusher
	_, declared := res.Header["Content-Length"]
	if !noBody && (res.ContentLength < 0 || declared && !fcgi.Whole(res)) {
		flusher, _ = w.(http.Flusher)
	}
	// PHP's own Content-Length (header('Content-Length: ...')) is what goes
	// to the client, so its output is cut there: net/http refuses a write
	// that would pass it, which would abort the whole response (a download
	// script's newline after "?>" cost the client the file). The excess is
	// read and dropped, as nginx does.
	left := int64(-1)
	if _, accel := res.Header[proxyheader.AccelRedirect]; accel {
		// The length is the file's (WooCommerce declares it on an empty
		// body): the body is dropped, the file sent instead (accel.go).
	} else if cl := res.Header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			left = n
		}
	}
	excess := false
	bp := copyBuffers.Get()
	defer copyBuffers.Put(bp)
	ri := Info(r.Context())
	for {
		n, rerr := res.Body.Read(*bp)
		if left >= 0 && int64(n) > left {
			excess = true
			n = int(left)
		}
		if left >= 0 {
			left -= int64(n)
		}
		if n > 0 && !noBody {
			if _, werr := w.Write((*bp)[:n]); werr != nil {
				// The client is gone; the deferred Close frees the php-fpm
				// connection (php-fpm sees the abort).
				panic(http.ErrAbortHandler)
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			if ri != nil && ri.Err == nil {
				switch {
				case excess:
					ri.Err = errMoreThanContentLength
				case left > 0 && !noBody && r.Method != http.MethodHead:
					// net/http closes the connection after a response
					// shorter than its Content-Length; the log says why.
					ri.Err = errLessThanContentLength
				}
			}
			return
		}
		if rerr != nil && (left == 0 || noBody || r.Method == http.MethodHead) {
			// PHP failed once the client had all its answer would hold:
			// every byte of its Content-Length (a worker killed in a
			// shutdown function, after a download), or a response that
			// carries no body. Aborting would cut what is whole (net/http
			// drops what it still buffers); nginx sends it too. A client
			// that closed its connection then had its whole answer, and
			// is logged with it, as nginx logs it: a 499 would count the
			// answer-early pattern of scripts without
			// fastcgi_finish_request as clients that gave up.
			if ri != nil && ri.Err == nil {
				if fcgi.StatusOf(rerr) == StatusClientClosedRequest {
					ri.Err = fmt.Errorf("client left after its whole answer, before PHP ended: %w", rerr)
				} else {
					ri.Err = fmt.Errorf("PHP failed after its whole answer was sent: %w", rerr)
				}
			}
			return
		}
		if rerr != nil {
			// Cut short (a worker killed mid-response, a timeout): the
			// client must see an aborted response, never a clean but
			// truncated 200.
			if ri != nil && ri.Err == nil {
				ri.Err = rerr
				if st := fcgi.StatusOf(rerr); st != 0 {
					ri.Status = st
				}
			}
			panic(http.ErrAbortHandler)
		}
	}
}

// streamedBody is a request body of known length that is not read ahead
// (fcgi.Transport.ReadBody left it): it goes to php-fpm as it arrives,
// full duplex with PHP's answer (phpProxy).
type streamedBody struct {
	io.ReadCloser
	eof atomic.Bool // read to its end
	// rc is the response's controller, set before the body is read.
	rc *http.ResponseController
	// stopped: StopReading moved the read deadline.
	stopped atomic.Bool
}

func (b *streamedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// Close leaves the body to net/http, which closes it after the handler:
// what is left of it (PHP answered without reading it whole) is then
// discarded, or the connection closed, once the response is out, rather
// than by the transport before the response goes.
func (b *streamedBody) Close() error { return nil }

// StopReading ends a read waiting for the client's next bytes, for the
// transport once PHP has answered in full without taking the whole body
// (fcgi.BodyReadStopper): the connection's read deadline is moved to now.
// That connection is closed after the response (closeIfUnread).
func (b *streamedBody) StopReading() {
	if b.rc != nil && !b.eof.Load() {
		// Before the deadline: a read that reaches the end meanwhile
		// may have started net/http's background read, which the
		// deadline fails, cancelling the connection's context; such a
		// connection must not serve another request.
		b.stopped.Store(true)
		b.rc.SetReadDeadline(time.Now())
	}
}

// closeIfUnread asks net/http to close the connection after the response
// when its header goes out before the body was read whole. In full duplex
// net/http no longer reads what is left of the body at that point, and
// what it reads after the handler may fail (the read timeout) without
// closing the connection: the rest of the body would then be read as the
// next request. Not over HTTP/2, which frames each request (closeAfter).
func (b *streamedBody) closeIfUnread(w http.ResponseWriter, r *http.Request) {
	if !b.eof.Load() || b.stopped.Load() {
		closeAfter(w, r)
	}
}

var (
	errMoreThanContentLength = errors.New("PHP sent more output than its Content-Length; the excess was dropped")
	errLessThanContentLength = errors.New("PHP sent less output than its Content-Length; response cut short")
)

// phpError answers for a failed upstream request with the status the fcgi
// error carries (502, 504, 413, ...). The error is logged once, in the
// access log line. A client that left (499) gets no answer: the handler
// aborts (http.ErrAbortHandler), which closes the connection (HTTP/1.x)
// or resets the stream (HTTP/2), as nginx sends nothing there. Returning
// without a write would have net/http send 200 with an empty body, which
// a client that only half-closed its connection, its request sent and
// still reading (net/http takes that end of input for a client that
// left), read as the page of a request that never ran.
func (s *Server) phpError(w http.ResponseWriter, r *http.Request, err error) {
	status := fcgi.StatusOf(err)
	if status == 0 {
		status = http.StatusBadGateway
	}
	if ri := Info(r.Context()); ri != nil {
		ri.Err = err
		switch status {
		case StatusClientClosedRequest:
			ri.Status = status
		case http.StatusRequestEntityTooLarge:
			ri.Upstream = BodyLimitUpstream
		}
	}
	if status == StatusClientClosedRequest {
		panic(http.ErrAbortHandler)
	}
	if status == http.StatusRequestEntityTooLarge {
		closeAfter(w, r)
	}
	s.fail(w, r, status)
}

// BodyLimitUpstream is the upstream a body refused for SESSIONGATE_MAX_BODY
// is logged and counted under: the gateway's, as a Content-Length over
// the limit is refused before routing, whatever the body's framing (a
// chunked body is found too large only as it is read, on its way to PHP
// or Django, neither of which answered).
const BodyLimitUpstream = "gateway"

// copyBuffers recycles the 32 KiB buffers response bodies are copied
// through, on the PHP path and (CopyBuffers) the Django path.
var copyBuffers = &bufferPool{}

// CopyBuffers lends the same buffers to an httputil.ReverseProxy.
var CopyBuffers httputil.BufferPool = reverseProxyBuffers{}

type reverseProxyBuffers struct{}

func (reverseProxyBuffers) Get() []byte  { return *copyBuffers.Get() }
func (reverseProxyBuffers) Put(b []byte) { copyBuffers.Put(&b) }

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() *[]byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return v
	}
	buf := make([]byte, 32<<10)
	return &buf
}

func (b *bufferPool) Put(buf *[]byte) { b.p.Put(buf) }

package wsgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sessiongate/sessiongate/internal/connpeek"
	"github.com/sessiongate/sessiongate/server"
)

// h1Transport is the Django upstream's RoundTripper: HTTP/1.1 over kept-alive
// connections, the request written and the response read on the caller's
// goroutine. net/http.Transport runs a reader and a writer goroutine per
// connection and hands every request and response between them; on a host
// whose CPUs gunicorn also needs, those wake-ups were about a fifth of the
// gateway's CPU per Django request (measured with the same ReverseProxy:
// 541-561 µs with net/http.Transport, 376-463 µs with this). The HTTP itself
// stays net/http's: Request.Write serializes, ReadResponse parses (chunked
// bodies, trailers, Connection: close, HTTP/1.0 answers).
type h1Transport struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// readTimeout bounds the wait for the response headers once the
	// request is written, then each wait for more of the body (h1Body),
	// and each wait for the backend to take more of the request
	// (h1Conn.Write); a timeout is a net.Error with Timeout().
	readTimeout    time.Duration
	idleTimeout    time.Duration
	maxIdlePerHost int
	maxHeaderBytes int64
	// maxRequestsPerConn closes a connection after that many requests
	// (0: never), like nginx's upstream keepalive_requests (1000). gunicorn
	// workers share one listening socket and keep the connections they
	// accepted: kept forever, an uneven first split (23 of 32 connections
	// on one of two workers, measured) lasts as long as the gateway runs.
	// Reconnecting now and then lets the worker with time to accept take
	// the new connection.
	maxRequestsPerConn int
	// clean1xx, when set, cleans the headers of a 1xx informational
	// response before the trace hook hands them on: ReverseProxy sends
	// them to the client as they come, without ModifyResponse.
	clean1xx func(http.Header)
	// resign, when set, signs a request's session headers again before
	// it is sent again on a new connection (Proxy.resign).
	resign func(out *http.Request)

	// reapEvery is how often idle connections are checked while there
	// are any: those the backend closed, or idle past idleTimeout, are
	// closed on our side too instead of lingering in CLOSE_WAIT.
	reapEvery time.Duration

	// log, when set, says when a backend is found to close its
	// connections after every answer (closesEach).
	log *slog.Logger

	mu         sync.Mutex
	idle       map[string][]*h1Conn // by host:port, most recently used last
	reaping    bool                 // a reap is scheduled
	closesEach map[string]bool      // closesEach's doc comment says why
}

// closesEach holds, by host:port, the backends seen to close a connection
// after its first answer without saying so: uWSGI's HTTP socket answers
// HTTP/1.1 with no `Connection: close` and closes at once. A request that
// takes such a connection before the close arrives fails on it; one that
// may go out again (a GET, or one provably unread: errUnread) does so on
// a new connection, but a POST over unreadResendMax got 502 though Django
// never saw it (200 of 1800 POSTs of 6000 bytes from six clients). Once a
// kept-alive connection was found closed after one exchange, such requests
// take new connections only, as they would behind a backend that says it
// closes. Requests that may be sent again still take kept-alive
// connections, so a backend that keeps them (a gunicorn that closed one
// at its --keep-alive, or put in uWSGI's place) is seen at the first
// second exchange on one, which ends it. Until then it costs a connect
// per POST.

// maxResponseHeaderBytes bounds Django's response headers, which carry
// the session it writes back; net/http.Transport's default.
const maxResponseHeaderBytes = 10 << 20

// max1xx bounds informational responses before the final one, as
// net/http.Transport does.
const max1xx = 5

// errRetryable marks a failure on a reused connection before any byte of a
// response arrived: the backend closed the idle connection as we sent.
var errRetryable = errors.New("kept-alive connection closed by the backend")

// errNoAnswer marks a backend that closed or reset a new connection
// before any byte of its answer (a worker killed mid-request, a crashed
// gunicorn): the balancer may give a safe request to another backend, as
// nginx's proxy_next_upstream error does. A timeout is not one: a slow
// view would then hold two backends for it.
var errNoAnswer = errors.New("django backend closed the connection without answering")

// errUnread marks a request the backend provably never read, which may
// go out again whatever its method: a POST Django never saw. A socket
// closed with unread data in it answers with a reset, not an end of
// stream; so a reset that came before any byte of an answer, to a
// request written whole in one piece no larger than any server takes in
// its first read (unreadResendMax), means the request was still unread
// when the backend closed. So does an end of stream followed by a reset:
// the backend had closed before the request arrived, and its kernel
// refused it. That is how gunicorn's exiting worker (--max-requests, a
// reload) leaves the kept-alive connections it stopped reading, and, from
// gunicorn 22, the new ones it accepted but had not read: the POSTs that
// met them got 502, as behind nginx (10 of 118 in the recycling
// comparison), though Django never ran them. A worker killed while it ran
// a request had read it, and closes with an end of stream and no reset:
// that one is not sent again. A request of which not one byte could be
// written (the backend had closed or reset the connection first) is
// unread too.
var errUnread = errors.New("django backend reset the connection with the request unread")

// unreadResendMax bounds the requests errUnread may mark: one write of
// at most this many bytes is taken whole by a server's first read
// (uWSGI's default --buffer-size, the smallest: gunicorn reads 8 KiB,
// uvicorn and waitress more), so a reset proves it unread rather than
// read in part, its body left unread by a view that ran.
const unreadResendMax = uwsgiBufferSize

// neverRead reports a request that failed with err, with no byte of an
// answer, that the backend provably never read (errUnread). werr is why
// it could not be written whole. A request of at most unreadResendMax
// bytes that may go out again went in one write: its head and its body,
// read ahead, wait in the connection's 8 KiB buffer (headWithBody).
func neverRead(c *h1Conn, werr, err error) bool {
	switch {
	case werr != nil:
		return c.written == 0
	case c.written > unreadResendMax:
		return false
	case errors.Is(err, syscall.ECONNRESET):
		return true
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// The backend had closed the connection (a FIN) as the request
		// went out: then its reset to the request proves it unread.
		return connpeek.ClosedBeforeItRead(c.nc, resetWait)
	}
	return false
}

// resetWait is how long a reset to a request written after the backend's
// close may take to come: loopback and unix sockets have it at once; this
// covers a round trip on a LAN.
const resetWait = 5 * time.Millisecond

// errSilent marks a backend that sent not one byte of an answer within
// the read timeout: stopped (SIGSTOP), every worker stuck, or one slow
// view. Unless it answered other requests meanwhile (one slow view), the
// balancer marks it down, as nginx's max_fails counts a timeout, but does
// not send the request on: that would take twice the timeout.
var errSilent = errors.New("django backend sent no answer in time")

type h1Conn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	// requests is how many complete exchanges the connection carried.
	requests int
	// read counts response bytes read since the request was written, so
	// a failure can tell "nothing came back" from a response cut short;
	// written counts the request's bytes that went out.
	read, written int64
	// While limiting (the response headers are being read), at most left
	// more bytes may be read.
	limiting bool
	left     int64
	// The request being written: writes to the backend must make
	// progress within writeTimeout (Write), unless ctx ended.
	ctx          context.Context
	writeTimeout time.Duration
	// wDeadline is the write deadline last set.
	wDeadline time.Time
	// werr is why the last write to the backend failed: Request.Write
	// reports a failure inside its body copy as a body read error that
	// hides it (a write timeout would not be one).
	werr error
}

// Write sends p to the backend. Like nginx's proxy_send_timeout, the
// timeout bounds each wait for the backend to take more of the request (a
// worker that stops reading an upload), not the whole request; the
// deadline moves only when it would leave a wait less than the timeout,
// as h1Body's does.
func (c *h1Conn) Write(p []byte) (int, error) {
	moveDeadline(c.ctx, c.nc, &c.wDeadline, c.writeTimeout, true)
	n, err := c.nc.Write(p)
	c.written += int64(n)
	if err != nil {
		c.werr = err
	}
	return n, err
}

func (c *h1Conn) Read(p []byte) (int, error) {
	if c.limiting {
		if c.left <= 0 {
			return 0, errHeadersTooLarge
		}
		if int64(len(p)) > c.left {
			p = p[:c.left]
		}
	}
	n, err := c.nc.Read(p)
	c.read += int64(n)
	c.left -= int64(n)
	return n, err
}

// earlyAnswerWait is how long an answer is looked for once the request
// could not be written whole: it was sent before the write failed, so this
// covers only a round trip to a backend on another host.
const earlyAnswerWait = 250 * time.Millisecond

var errHeadersTooLarge = errors.New("django response headers too large")

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		// Every request peeks at the idle connection it takes (a system
		// call, about 0.3 µs): besides a close, the peek sees bytes the
		// backend sent after a whole answer while the connection sat
		// idle (a second response, a proxy's late error page), which
		// would otherwise be read as this request's answer: one user's
		// page handed to another. A retry goes on a new connection, not
		// on another idle one: a gunicorn worker that is exiting
		// (--max-requests, a reload, a restart) stops reading its
		// kept-alive connections but leaves them open until it exits, so
		// a peek finds them alive and the retry failed like the first try
		// (502 for a request Django never saw). A new connection goes to
		// a worker that accepts.
		var c *h1Conn
		var reused bool
		var err error
		if attempt > 0 {
			c, err = t.dialConn(ctx, req.URL.Host)
		} else {
			c, reused, err = t.getConn(ctx, req.URL.Host, !replayable(req))
		}
		if err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			// The client left while the connection was found (an
			// HTTP/2 stream reset right after its HEADERS): once
			// written, the request would run in Django for nobody,
			// whatever the deadline the cancel sets. Closed rather
			// than put back, which would renew its idle time.
			c.nc.Close()
			return nil, fmt.Errorf("django request: %w", context.Cause(ctx))
		}
		res, err := t.exchange(ctx, c, req, reused)
		if err == nil {
			return res, nil
		}
		if errors.Is(err, errRetryable) {
			t.closedAfter(req.URL.Host, c)
		}
		// Like net/http.Transport: a request the backend never answered on a
		// connection it had closed while idle is sent again on a new one, if
		// sending it twice is harmless and its body can be sent again.
		if attempt == 0 && errors.Is(err, errRetryable) && ctx.Err() == nil && resendable(req, err) {
			if req.GetBody != nil {
				body, gerr := req.GetBody()
				if gerr != nil {
					return nil, gerr
				}
				req = req.Clone(ctx)
				req.Body = body
			}
			if t.resign != nil {
				req = req.WithContext(ctx) // a copy whose Header may change
				t.resign(req)
			}
			continue
		}
		return nil, err
	}
}

// replayable reports a request that may be sent twice: one of RFC 9110's
// idempotent methods (section 9.2.2), or one with an idempotency key. PUT
// and DELETE are among them, as for nginx (which sends anything but POST,
// PATCH and LOCK again): left out, as net/http.Transport leaves them, a
// Django API's update or delete that met a gunicorn worker exiting
// (--max-requests, a reload) got a 502 that nginx did not give.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
	default:
		if req.Header.Get("Idempotency-Key") == "" && req.Header.Get("X-Idempotency-Key") == "" {
			return false
		}
	}
	return rewindable(req)
}

// resendable reports a request that failed with err and may go out
// again: replayable, or provably unread by the backend (errUnread).
func resendable(req *http.Request, err error) bool {
	return replayable(req) || errors.Is(err, errUnread) && rewindable(req)
}

// rewindable reports a request whose body can be sent again.
func rewindable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// getConn returns an idle connection to addr that is still open and holds
// no bytes nobody asked for, or a new one. reused reports a kept-alive
// connection. With once (a request that must not be sent twice), an idle
// connection is taken only while it is younger than unsafeReuseIdle.
func (t *h1Transport) getConn(ctx context.Context, addr string, once bool) (c *h1Conn, reused bool, err error) {
	now := time.Now()
	for {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c = list[len(list)-1]
		if once && (now.Sub(c.lastUsed) >= unsafeReuseIdle || t.closesEach[addr]) {
			// The newest idle connection is too old for a request
			// that must not be sent twice, and so are the others,
			// or the backend closes every connection after one
			// answer: they stay for those that may be sent twice.
			t.mu.Unlock()
			break
		}
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if t.stillUsable(c, now) {
			return c, true, nil
		}
		if now.Sub(c.lastUsed) < t.idleTimeout {
			t.closedAfter(addr, c)
		}
		c.nc.Close()
	}
	c, err = t.dialConn(ctx, addr)
	return c, false, err
}

// dialConn opens a new connection to addr.
func (t *h1Transport) dialConn(ctx context.Context, addr string) (*h1Conn, error) {
	nc, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{nc: nc}
	c.br = bufio.NewReaderSize(c, 16<<10)
	c.bw = bufio.NewWriterSize(c, 8<<10)
	return c, nil
}

// headSlack is room, beyond the request head server.HeadSize counts, for
// what Request.Write adds (User-Agent, Content-Length, Transfer-Encoding)
// when a head too large for the connection's writer gets a writer of its
// own. A head larger than the buffer went out in pieces of its size, and
// uvicorn's h11 parser refuses a head over 16 KiB that one read did not
// bring whole ("Receive buffer too long", 400): written at once, a head
// of up to 64 KiB almost always reaches a loopback backend in one read.
// Measured through the gateway under uvicorn's worker: in 8 KiB pieces,
// 5 of 30 pages failed at 24 KiB of session and 10-13 of 30 from 48 to
// 80 KiB; in one write, 1 of 300 at 32 KiB and none of 300 at 48 KiB.
const headSlack = 1 << 10

// unsafeReuseIdle is how long a kept-alive connection may have been idle
// and still carry a request that must not be sent twice (a POST). gunicorn
// closes an idle connection after its --keep-alive, 2 s by default; a
// close that crosses such a request on the wire loses it (502, and no
// retry, though Django never saw it), and the liveness peek cannot see a
// close that has not happened yet. Below that timeout by a margin, the
// close cannot come: such a request takes a new connection instead, one
// connect on a quiet backend.
const unsafeReuseIdle = time.Second

// stillUsable reports whether an idle connection may carry a request: not
// idle past idleTimeout, not closed by the backend meanwhile, and without
// bytes it sent since its last answer.
func (t *h1Transport) stillUsable(c *h1Conn, now time.Time) bool {
	return now.Sub(c.lastUsed) < t.idleTimeout && connpeek.Alive(c.nc)
}

func (t *h1Transport) putConn(addr string, c *h1Conn) {
	c.requests++
	if t.maxRequestsPerConn > 0 && c.requests >= t.maxRequestsPerConn {
		c.nc.Close()
		return
	}
	c.lastUsed = time.Now()
	t.mu.Lock()
	if c.requests > 1 && len(t.closesEach) > 0 {
		// A connection that carried two exchanges: the backend keeps
		// them.
		delete(t.closesEach, addr)
	}
	if t.idle == nil {
		t.idle = map[string][]*h1Conn{}
	}
	list := t.idle[addr]
	if len(list) < t.maxIdlePerHost {
		t.idle[addr] = append(list, c)
		c = nil
		if !t.reaping && t.reapEvery > 0 {
			t.reaping = true
			time.AfterFunc(t.reapEvery, t.reap)
		}
	}
	t.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// reap closes the idle connections the backend closed or that sat idle past
// idleTimeout, and runs again while idle connections remain.
func (t *h1Transport) reap() {
	now := time.Now()
	var dead []*h1Conn
	t.mu.Lock()
	left := 0
	for addr, list := range t.idle {
		keep := list[:0]
		for _, c := range list {
			if t.stillUsable(c, now) {
				keep = append(keep, c)
			} else {
				if now.Sub(c.lastUsed) < t.idleTimeout {
					t.closedAfterLocked(addr, c)
				}
				dead = append(dead, c)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = keep
		}
		left += len(keep)
	}
	t.reaping = left > 0
	if t.reaping {
		time.AfterFunc(t.reapEvery, t.reap)
	}
	t.mu.Unlock()
	for _, c := range dead {
		c.nc.Close()
	}
}

// CloseIdleConnections closes the kept-alive connections (at shutdown).
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
}

// closedAfter notes that the backend at addr closed c, a kept-alive
// connection, while it was idle or as a request went out on it.
func (t *h1Transport) closedAfter(addr string, c *h1Conn) {
	t.mu.Lock()
	t.closedAfterLocked(addr, c)
	t.mu.Unlock()
}

func (t *h1Transport) closedAfterLocked(addr string, c *h1Conn) {
	if c.requests != 1 || t.closesEach[addr] {
		return
	}
	if t.closesEach == nil {
		t.closesEach = map[string]bool{}
	}
	t.closesEach[addr] = true
	if t.log != nil {
		t.log.Debug("django backend closed a kept-alive connection after one answer: requests that must not be sent twice go on new connections until it keeps one",
			"backend", addr)
	}
}

// exchange sends req on c and reads the response headers. The body it
// returns gives the connection back to the pool once read to its end.
func (t *h1Transport) exchange(ctx context.Context, c *h1Conn, req *http.Request, reused bool) (*http.Response, error) {
	// A client that leaves (or the request's deadline) unblocks whatever
	// read or write is in progress, here or in the body.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(brokenDeadline) })
	// werr is why the request could not be written whole.
	var werr error
	fail := func(err error) (*http.Response, error) {
		stop()
		err = failure(ctx, c, reused, werr, err)
		if werr != nil {
			resetOnClose(c.nc)
		}
		c.nc.Close()
		return nil, err
	}
	c.read, c.written = 0, 0
	c.ctx, c.writeTimeout, c.werr = ctx, t.readTimeout, nil
	var body *clientBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &clientBody{rc: req.Body}
		req = req.WithContext(ctx) // a copy, so the caller's Body stays
		req.Body = body
	}
	bw := c.bw
	if _, n := server.HeadSize(req.Method, req.URL.RequestURI(), req.Host, req.Header); n > int64(bw.Size()) {
		bw = bufio.NewWriterSize(c, int(n)+headSlack)
	}
	var w io.Writer = bw
	if req.GetBody != nil {
		w = headWithBody{bw}
	}
	werr = req.Write(w)
	if werr == nil {
		werr = bw.Flush()
	}
	if werr != nil && c.werr != nil {
		werr = c.werr
	}
	if werr != nil && body != nil && body.err != nil {
		// The client's body failed (too large, cut short, too slow): the
		// backend is still waiting for the rest, there is no answer to
		// wait for.
		return fail(clientBodyErr(body.err))
	}
	// A backend may answer before it read the whole body (413, an early
	// 400), or the whole head (gunicorn's 400 to a request line over its
	// limit_request_line), and stop reading: what it said is worth more
	// than our write error, so look for it. It came before the write gave
	// up (a timeout: the backend took nothing for the whole of it), so it
	// is here or on its way: waiting a whole read timeout more for it made
	// a stalled upload take twice SESSIONGATE_DJANGO_TIMEOUT.
	var headerDeadline time.Time
	if wait := t.readTimeout; wait > 0 {
		if werr != nil {
			wait = min(wait, earlyAnswerWait)
		}
		headerDeadline = time.Now().Add(wait)
		setReadDeadline(ctx, c.nc, headerDeadline)
	}
	c.limiting, c.left = true, t.maxHeaderBytes
	var res *http.Response
	for n1xx := 0; ; n1xx++ {
		var err error
		res, err = http.ReadResponse(c.br, req)
		if err != nil {
			if werr != nil {
				return fail(werr)
			}
			return fail(err)
		}
		code := res.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			break
		}
		if n1xx >= max1xx {
			return fail(errors.New("too many 1xx informational responses from django"))
		}
		if code == http.StatusContinue {
			// The body went out with the headers, and the gateway's
			// server answered the client's Expect itself.
			continue
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if t.clean1xx != nil {
				t.clean1xx(res.Header)
			}
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(res.Header)); err != nil {
				return fail(err)
			}
		}
	}
	c.limiting = false
	if err := trimFieldNames(res.Header); err != nil {
		res.Body.Close()
		return fail(err)
	}
	if res.StatusCode < 100 {
		// "099" parses as 99, which net/http's server refuses to send
		// (WriteHeader panics, and the client lost its connection
		// without an answer): a bad answer, 502. nginx passes it on.
		res.Body.Close()
		return fail(fmt.Errorf("django answered with status %03d, below 100", res.StatusCode))
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Only the switch the request asked for: a view can answer any
		// request 101 (HttpResponse(status=101)), and ReverseProxy would
		// join the client's connection to gunicorn's when neither names a
		// protocol, a tunnel past the gateway's routing, restricted paths
		// and rate limits for whatever the client sends next; a 101 to
		// another protocol it refuses (502) without closing the body.
		if want, got := upgradeOf(req.Header), upgradeOf(res.Header); want == "" || !strings.EqualFold(want, got) {
			res.Body.Close()
			return fail(fmt.Errorf("django switched protocols (101) to %q where the request asked for %q", got, want))
		}
		// An upgraded connection (WebSocket) may be quiet for as long
		// as its peers like, both ways.
		c.nc.SetWriteDeadline(time.Time{})
		setReadDeadline(ctx, c.nc, time.Time{})
		if ctx.Err() != nil {
			c.nc.SetDeadline(brokenDeadline)
		}
		// The connection now belongs to the upgraded protocol:
		// ReverseProxy copies both ways through the body.
		res.Body = &upgraded{c: c, stop: stop}
		return res, nil
	}
	// A response to HEAD has no body, but gunicorn sends the one Django
	// wrote anyway (it leaves HEAD to the app): left on the connection,
	// those bytes would be read as the start of the next response (a 502
	// for whoever came next). The connection is closed instead, as it is
	// when bytes nobody asked for are already buffered.
	// Nor after an HTTP/1.0 answer: net/http drops a Transfer-Encoding
	// there and frames it by its Content-Length, and RFC 9112 section 6.1
	// has the connection closed after such faulty framing, whose rest may
	// still be on it.
	reusable := werr == nil && !res.Close && !req.Close && req.Method != http.MethodHead && res.ProtoAtLeast(1, 1)
	if (res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified) &&
		res.Header.Get("Content-Length") != "0" {
		// The same for a 204 or 304: gunicorn writes whatever body Django
		// gave it (JsonResponse({}, status=204)) after the headers, in a
		// write of its own that may arrive after we looked, and keeps the
		// connection. Only a declared empty body leaves it clean.
		reusable = false
	}
	if res.Body == http.NoBody {
		t.release(req.URL.Host, c, reusable && c.br.Buffered() == 0, stop)
		return res, nil
	}
	// The header deadline still runs, so the body's first read moves it
	// unless it leaves that read the whole timeout (h1Body.Read). Taken as
	// set when the headers arrived, a view that used most of the timeout
	// before them left its body only the rest, however steadily the body
	// then came.
	res.Body = &h1Body{rc: res.Body, t: t, c: c, addr: req.URL.Host, reusable: reusable, stop: stop, ctx: ctx, deadline: headerDeadline}
	return res, nil
}

// trimFieldNames moves the fields whose name has whitespace before the
// colon ("X-A : 1", which ReadResponse keeps as "X-A ") to the name without
// it, as RFC 9112 section 5.1 asks of a proxy: net/http's server leaves a
// name with a space out of the answer without a word, so a WSGI server
// that passed such a line on lost the field (a Set-Cookie among them). A
// field that frames the message (Content-Length, Transfer-Encoding,
// Connection) is an error instead, as nginx takes it: ReadResponse framed
// the answer without it, so the answer and its fields would disagree (two
// Content-Lengths to the client; a body read to a close that never
// comes; chunk framing passed on as content).
func trimFieldNames(h http.Header) error {
	for k, v := range h {
		name := strings.TrimRight(k, " \t")
		if name == k {
			continue
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		switch name {
		case "Content-Length", "Transfer-Encoding", "Connection":
			return fmt.Errorf("django's answer has whitespace before the colon of %s, a field that frames it", name)
		}
		delete(h, k)
		h[name] = append(h[name], v...)
	}
	return nil
}

// upgradeOf is the protocol h's Upgrade field names when its Connection
// field lists upgrade, as ReverseProxy reads a switch, or "".
func upgradeOf(h http.Header) string {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

// resetOnClose makes closing nc reset the connection (TCP's RST) instead
// of ending it cleanly, for a request not sent whole: the client left
// mid-upload, or the backend stopped taking the body. gunicorn reads a
// body up to its Content-Length and takes a clean end before it for the
// end of the body, so Django ran the view on the part it got (a file saved
// cut short), as behind nginx with proxy_request_buffering off; a reset
// fails gunicorn's read, and Django raises UnreadablePostError instead. A
// unix socket has no reset: there the view still gets the part.
func resetOnClose(nc net.Conn) {
	if tc, ok := nc.(interface{ SetLinger(sec int) error }); ok {
		tc.SetLinger(0)
	}
}

// brokenDeadline is the deadline that unblocks a connection's reads and
// writes when the request's context ends.
var brokenDeadline = time.Unix(1, 0)

// setReadDeadline sets d on nc unless ctx has ended. The context's
// AfterFunc breaks the deadlines once, and may already have run: a new
// deadline set after it would let the read wait for the backend (up to the
// response header timeout, holding a strict session lock) for a client that
// has left.
func setReadDeadline(ctx context.Context, nc net.Conn, d time.Time) {
	nc.SetReadDeadline(d)
	if ctx.Err() != nil {
		nc.SetReadDeadline(brokenDeadline)
	}
}

// moveDeadline moves nc's read deadline (or write deadline) so that d
// bounds each wait for the backend rather than the whole transfer.
// deadline is the one last set. It moves only when it would leave the wait
// about to start less than d, and then a quarter of d further, so a
// transfer in many small pieces does not reset a timer each time: each
// wait gets at least d and at most a quarter more. Once ctx has ended, its
// AfterFunc may have broken the deadlines already: they stay broken.
// d <= 0: no timeout.
func moveDeadline(ctx context.Context, nc net.Conn, deadline *time.Time, d time.Duration, write bool) {
	if d <= 0 {
		return
	}
	now := time.Now()
	if deadline.Sub(now) >= d {
		return
	}
	*deadline = now.Add(d + d/4)
	set := nc.SetReadDeadline
	if write {
		set = nc.SetWriteDeadline
	}
	set(*deadline)
	if ctx != nil && ctx.Err() != nil {
		set(brokenDeadline)
	}
}

// failure tells why an exchange on c failed with err (werr: why the
// request could not be written whole), for the retry rules and statusOf.
// It runs before c is closed: neverRead looks at the socket.
func failure(ctx context.Context, c *h1Conn, reused bool, werr, err error) error {
	var cb *errClientBody
	switch {
	case errors.As(err, &cb):
		// The client's body failed, not the backend; statusOf tells a
		// read timeout (408) from the client leaving.
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("django request: %w", context.Cause(ctx))
	case c.read > 0:
		return err
	case isTimeout(err):
		return fmt.Errorf("%w: %w", errSilent, err)
	}
	kind := errNoAnswer
	if reused {
		kind = errRetryable
	}
	if neverRead(c, werr, err) {
		return fmt.Errorf("%w: %w: %w", kind, errUnread, err)
	}
	return fmt.Errorf("%w: %w", kind, err)
}

// headWithBody carries a request whose body was read ahead (GetBody set:
// in memory or in a temp file, never waiting for the client). Request.Write
// flushes a *bufio.Writer between the head and any body it does not know
// to be in memory, and the wrappers around a read-ahead body hide that it
// is: a form POST went out in two writes, one system call more, and a
// reset that came between them hid that the backend had read none of it
// (errUnread). Behind this type the head waits in the buffer for the body.
type headWithBody struct{ *bufio.Writer }

// clientBody remembers why reading the client's request body failed, to
// tell it from a failure to write to the backend.
type clientBody struct {
	rc  io.ReadCloser
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *clientBody) Close() error { return b.rc.Close() }

// isTimeout reports a deadline that ran out. EAGAIN calls itself a timeout
// too, but from a connect it means a unix socket's listen queue is full
// and was refused at once (nginx answers that 502).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, syscall.EAGAIN)
}

// h1Body returns the connection to the pool when the body was read to its
// end and closes it when the body is closed early.
type h1Body struct {
	rc       io.ReadCloser
	t        *h1Transport
	c        *h1Conn
	addr     string
	reusable bool
	stop     func() bool
	ctx      context.Context
	// deadline is the read deadline last set.
	deadline time.Time
	mu       sync.Mutex // serializes Read and the end of Close
	done     bool
	eof      bool // done because the body ended, not because it was closed
	// cmu orders Close's cut against the end of the body: cut is set when
	// Close broke the deadline of a connection still carrying the body,
	// ended once finish decided the connection's fate (a connection gone
	// back to the pool must not have its deadline broken). cut is also
	// read without cmu by Read, whose moveDeadline may otherwise undo
	// Close's broken deadline.
	cmu   sync.Mutex
	cut   atomic.Bool
	ended bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		if b.eof {
			return 0, io.EOF
		}
		return 0, errBodyClosed
	}
	// Like nginx's proxy_read_timeout, the read timeout bounds each wait
	// for more of the body, not only the headers: a stalled body ends
	// with a timeout instead of holding the request for ever.
	moveDeadline(b.ctx, b.c.nc, &b.deadline, b.t.readTimeout, false)
	if b.cut.Load() {
		// Close broke the deadline while this Read moved it.
		b.c.nc.SetReadDeadline(brokenDeadline)
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		b.finish(b.reusable && b.c.br.Buffered() == 0)
	}
	return n, err
}

var errBodyClosed = errors.New("django response body read after close")

// Close may run while a Read waits for Django (ReadAhead's goroutine):
// breaking the read deadline first ends that wait, which would otherwise
// hold Close, the handler and the connection until Django's next bytes or
// the read timeout, for a client whose write already failed.
func (b *h1Body) Close() error {
	b.cmu.Lock()
	if !b.ended {
		b.cut.Store(true)
		b.c.nc.SetReadDeadline(brokenDeadline)
	}
	b.cmu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *h1Body) finish(keep bool) {
	b.cmu.Lock()
	keep = keep && !b.cut.Load()
	b.ended = true
	b.cmu.Unlock()
	b.done = true
	b.t.release(b.addr, b.c, keep, b.stop)
}

// release ends a request on c: back to the pool when keep, unless the
// request's context already ended and broke the connection's deadlines.
func (t *h1Transport) release(addr string, c *h1Conn, keep bool, stop func() bool) {
	c.ctx = nil // an idle connection must not keep the request alive
	if stop() && keep {
		c.nc.SetReadDeadline(time.Time{}) // what is left of the body's
		t.putConn(addr, c)
		return
	}
	c.nc.Close()
}

// upgraded is the body of a 101 response: the raw connection, starting
// with what the response reader already buffered.
type upgraded struct {
	c    *h1Conn
	stop func() bool
	once sync.Once
}

func (u *upgraded) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u *upgraded) Close() error {
	u.once.Do(func() { u.stop() })
	return u.c.nc.Close()
}

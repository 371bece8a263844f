package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/bodyread"
	"github.com/sessiongate/sessiongate/internal/logtext"
)

// StatusClientClosedRequest is nginx's 499, logged (never sent) when the
// client went away before the response was complete.
const StatusClientClosedRequest = 499

// RequestInfo is what the layers of one request tell the access log, and
// what they learn about the client. The server creates it before anything
// else runs; wrappers (the session bridge, the Django upstream) read the
// client fields and may set Upstream and Err. It belongs to the request's
// goroutine: do not touch it from elsewhere.
type RequestInfo struct {
	// RemoteAddr is the client address ("ip:port") after trusted-proxy
	// processing; HTTPS says whether the client used TLS (directly or as
	// reported by a trusted proxy).
	RemoteAddr string
	HTTPS      bool
	// ViaProxy is true when the request came through a trusted proxy, whose
	// forwarding headers may then be passed on.
	ViaProxy bool
	// Upstream names who produced the response: "static", "php", "django",
	// "redirect" for every answer of the plain-HTTP redirect listener, or
	// "gateway" for answers the gateway gives itself (404, 413, ...).
	Upstream string
	// ServerName is the SESSIONGATE_SERVER_NAMES name the request is for,
	// or "" when that list is empty.
	ServerName string
	// RemoteUser is the user SESSIONGATE_BASIC_AUTH let in, or "".
	RemoteUser string
	// InternalRedirect is the X-Accel-Redirect the app answered with, if
	// any: the response is that file's.
	InternalRedirect string
	// Unsaved, set by a wrapper around an app (the session bridge), is
	// the error the app's response must become because a change the app
	// made was lost after its headers were handled: too late for a page,
	// not for the file of an X-Accel-Redirect, which has not gone out.
	Unsaved *UnsavedAnswer
	// script is the URL path of the script routing ran (or the static
	// index it served for a directory), and frontRoute the path after the
	// front controller (SESSIONGATE_INDEX) that it routes on, for
	// SESSIONGATE_RESPONSE_HEADERS (outheaders.go).
	script, frontRoute string
	// rateCounted are the SESSIONGATE_RATE_LIMITS rules that counted
	// this request, for its URL, script, PATH_INFO and the routes in its
	// query (queryReadings; ratelimit.go), each as sent and folded.
	rateCounted []*rateRule
	// restrictedRule is 1 + the index of the SESSIONGATE_RESTRICTED_PATHS
	// entry for the URL, 0 for none (restricted.go).
	restrictedRule int
	// srv answers the gateway's own errors with SESSIONGATE_ERROR_PAGES
	// (WriteError).
	srv *Server
	// Err is the upstream or I/O error that spoiled the request, if any.
	Err error
	// Status, when set, overrides the written status in the log: 499 when
	// the client left, the upstream error's status when a streamed body was
	// cut after the header went out.
	Status int
}

type infoKey struct{}

// Info returns the RequestInfo of a request handled by Server, or nil.
func Info(ctx context.Context) *RequestInfo {
	ri, _ := ctx.Value(infoKey{}).(*RequestInfo)
	return ri
}

// sendfileChunk is how much of a static file one sendfile call may send
// before the write deadline moves: a download must go on at about 1 KiB/s
// (64 KiB per three quarters of SESSIONGATE_SEND_TIMEOUT's default 60 s),
// not finish within one.
const sendfileChunk = 64 << 10

// writeDeadliner is net/http's ResponseWriter, which the recorder wraps
// directly.
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// recorder captures status and size for the access log. It keeps the
// optional interfaces that matter: Flush (streamed PHP output, through
// http.ResponseController via Unwrap) and ReadFrom (sendfile for static
// files).
type recorder struct {
	http.ResponseWriter
	status int
	// bytes is the body bytes handed to the client's connection: held
	// ones once released, never those of a held response dropped.
	bytes    int64
	writeErr error
	// sendTimeout, when set, gives each write (and the final flush after
	// the handler) that long to go out.
	sendTimeout time.Duration
	// deadlineSetAt is when the write deadline was last moved (zero: it
	// is not set).
	deadlineSetAt time.Time
	// writeTimeout (SESSIONGATE_WRITE_TIMEOUT) bounds the response from
	// when it starts: the deadline is set once, as its header goes out.
	// http.Server.WriteTimeout runs from the end of the request headers,
	// so the app's time counted too: a page PHP took longer than it to
	// make reached the client as an empty reply, logged as sent.
	writeTimeout    time.Duration
	responseStarted bool
	// flushed: the handler flushed the response; declaredLength: its
	// header had a Content-Length as it went out (it is not held).
	flushed, declaredLength bool
	// http1 and head describe the request, for holding (mayHold).
	http1, head bool
	// holding: the header has not gone to net/http yet, nor the body so
	// far, held (of at most holdLimit bytes, nil for none yet): the
	// response may still be whole, to go out with its Content-Length at
	// the end (finalFlush). clen holds that value.
	holding bool
	held    *[]byte
	clen    [1]string
	// hijacked: the handler took the connection over (Hijack); nothing
	// of the response is net/http's to write any more.
	hijacked bool
	// out edits the headers as they go out (nil: left as they are), for
	// the request ri describes, to path, over HTTPS or not.
	out           *outHeaders
	ri            *RequestInfo
	path, rawPath string
	https         bool
}

// headerGoesOut is called once, just before the response's header is
// written (explicitly or by the first write of the body).
func (w *recorder) headerGoesOut() {
	w.responseStarts()
	_, w.declaredLength = w.ResponseWriter.Header()["Content-Length"]
	if w.out != nil {
		w.out.apply(w.ResponseWriter.Header(), w.ri, w.path, w.rawPath, w.https)
	}
}

// responseStarts sets writeTimeout's deadline, once per response. A
// connection handed over by a protocol switch (101) is no response of
// the server's any more.
func (w *recorder) responseStarts() {
	if w.writeTimeout == 0 || w.responseStarted || w.status == http.StatusSwitchingProtocols {
		return
	}
	w.responseStarted = true
	if wd, ok := w.ResponseWriter.(writeDeadliner); ok {
		wd.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
}

// setWriteDeadline moves the connection's write deadline: sendTimeout from
// now, or none (zero d). A deadline set less than a quarter of sendTimeout
// ago is left as it is: each write still gets at least three quarters of
// it (45 s of no progress), and a response of many small writes or the
// final flush of a small one does not pay for moving a timer each time.
func (w *recorder) setWriteDeadline(d time.Duration) {
	if w.sendTimeout == 0 {
		return
	}
	wd, ok := w.ResponseWriter.(writeDeadliner)
	if !ok {
		return
	}
	if d == 0 {
		w.deadlineSetAt = time.Time{}
		wd.SetWriteDeadline(time.Time{})
		return
	}
	now := time.Now()
	if !w.deadlineSetAt.IsZero() && now.Sub(w.deadlineSetAt) < w.sendTimeout/4 {
		return
	}
	w.deadlineSetAt = now
	wd.SetWriteDeadline(now.Add(d))
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		w.headerGoesOut()
		if w.holding = w.mayHold(); w.holding {
			return
		}
	} else if w.holding {
		return // superfluous, as net/http ignores it; or a 1xx too late
	} else if code < 200 && w.out != nil {
		// An informational response (103 Early Hints, passed on from
		// Django) carries the headers set so far: none of the hidden ones
		// either.
		w.out.hideFrom(w.ResponseWriter.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.headerGoesOut()
		w.holding = w.mayHold()
	}
	if w.holding {
		if w.held == nil && len(p) <= holdLimit {
			w.held = heldBodies.Get().(*[]byte)
		}
		if w.held != nil && len(*w.held)+len(p) <= holdLimit {
			// Counted once written (release): a response aborted
			// while held never sends them.
			*w.held = append(*w.held, p...)
			return len(p), nil
		}
		if err := w.release(); err != nil {
			return 0, err
		}
	}
	w.setWriteDeadline(w.sendTimeout)
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
	return n, err
}

func (w *recorder) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.headerGoesOut()
		w.holding = w.mayHold()
	}
	if w.holding {
		// A body of unknown length goes through Write, held as there:
		// handed on, a short one would stay in net/http's buffer for
		// finalFlush to flush without the Content-Length net/http gives
		// it at the end (chunked, or no keep-alive over HTTP/1.0).
		// net/http copies such a body through its Write as well, but
		// over HTTP/1.0, where it would use sendfile.
		bp := copyBuffers.Get()
		defer copyBuffers.Put(bp)
		return io.CopyBuffer(struct{ io.Writer }{w}, r, *bp)
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, r) // through Write: counted, deadlines
	}
	n, err := w.readFromInChunks(rf, r)
	w.bytes += n
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
	return n, err
}

// readFromInChunks sends r (a static file, maybe limited to a range, as
// http.ServeContent passes it) with sendfile, sendfileChunk at a time, each
// with the send timeout. One call for the whole file would give all of it
// one deadline.
func (w *recorder) readFromInChunks(rf io.ReaderFrom, r io.Reader) (int64, error) {
	if w.sendTimeout == 0 {
		return rf.ReadFrom(r)
	}
	// sendfile sees through one *io.LimitedReader to the file, not two.
	left := int64(-1)
	if lr, ok := r.(*io.LimitedReader); ok {
		r, left = lr.R, lr.N
		defer func() { lr.N = left }()
	}
	var total int64
	for left != 0 {
		size := int64(sendfileChunk)
		if left > 0 && left < size {
			size = left
		}
		w.setWriteDeadline(w.sendTimeout)
		n, err := rf.ReadFrom(&io.LimitedReader{R: r, N: size})
		total += n
		if left > 0 {
			left -= n
		}
		if err != nil || n < size {
			return total, err
		}
	}
	return total, nil
}

func (w *recorder) Flush() { w.FlushError() }

// FlushError is Flush that keeps its error for the log: http.Flusher drops
// it, and a flush the write deadline ended would otherwise be logged as
// the client leaving (net/http cancels the request's context after it, so
// the next read from PHP fails with "context canceled").
func (w *recorder) FlushError() error {
	w.flushed = true
	w.setWriteDeadline(w.sendTimeout)
	if err := w.release(); err != nil {
		return err
	}
	var err error
	switch f := w.ResponseWriter.(type) {
	case interface{ FlushError() error }:
		err = f.FlushError()
	case http.Flusher:
		f.Flush()
	}
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
	return err
}

// learnStreamEnd finds out, for an HTTP/2 request whose context ended
// while nothing was being written (the handler waited for PHP, or its
// flush failed unseen), whether the stream's write deadline ended it.
// net/http enforces that deadline by resetting the stream and cancelling
// the context, as when the client resets it; only the stream's error,
// which a flush of the closed stream returns at once, tells the two apart.
// Not at shutdown: that cancels the context of a stream still open.
func (w *recorder) learnStreamEnd(r *http.Request) {
	if w.writeErr != nil || r.ProtoMajor != 2 || r.Context().Err() == nil || shutdownCut(r) != nil {
		return
	}
	f, ok := w.ResponseWriter.(interface{ FlushError() error })
	if !ok {
		return
	}
	// net/http cancels the context a moment before it marks the stream
	// closed with its cause (closeStream: cancelCtx, then cw.Close), and a
	// flush in between reports nothing, so the deadline's cut passed for a
	// client that left (failed once in CI under -race). The stream's end
	// follows the context's at once; ask again for a while.
	for range 100 {
		if err := f.FlushError(); err != nil {
			if writeTimedOut(err) {
				w.writeErr = err
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// holdLimit is the most of a body net/http holds over HTTP/1.x before its
// header goes out (its bufferBeforeChunkingSize): a response that ends
// within it, unflushed, gets a Content-Length from net/http; a longer one
// goes out chunked.
const holdLimit = 2 << 10

// lengthTexts are the Content-Length values of held responses, 0 to
// holdLimit, made once: net/http writes its own without allocating, and
// strconv.Itoa allocates past 99, on the gateway's hottest path.
var lengthTexts = sync.OnceValue(func() []string {
	t := make([]string, holdLimit+1)
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
})

// heldBodies are the buffers of held responses (recorder.held).
var heldBodies = sync.Pool{New: func() any { b := make([]byte, 0, holdLimit); return &b }}

// mayHold reports whether the response whose header is going out may be
// held (recorder.holding): over HTTP/1.x, one whose framing net/http
// would choose at its end, from its length. Not one with a Content-Length
// or a Transfer-Encoding of its own, trailers (chunked), or no body
// (204, 304).
func (w *recorder) mayHold() bool {
	if !w.http1 || w.declaredLength || w.status == http.StatusNoContent || w.status == http.StatusNotModified {
		return false
	}
	h := w.ResponseWriter.Header()
	return len(h["Transfer-Encoding"]) == 0 && len(h["Trailer"]) == 0
}

// release hands a held response to net/http as it is: it is not whole
// (a flush, past holdLimit, sendfile), and net/http chooses its framing
// (chunked) as it would have.
func (w *recorder) release() error {
	if !w.holding {
		return nil
	}
	w.holding = false
	w.ResponseWriter.WriteHeader(w.status)
	if w.held == nil {
		return nil
	}
	var err error
	if len(*w.held) > 0 {
		w.setWriteDeadline(w.sendTimeout)
		var n int
		n, err = w.ResponseWriter.Write(*w.held)
		w.bytes += int64(n)
		if err != nil && w.writeErr == nil {
			w.writeErr = err
		}
	}
	w.dropHeld()
	return err
}

// dropHeld returns the buffer of held bytes (after they went out, or for
// a response that was aborted).
func (w *recorder) dropHeld() {
	if w.held != nil {
		*w.held = (*w.held)[:0]
		heldBodies.Put(w.held)
		w.held = nil
	}
}

// finalFlush sends, over HTTP/1.x, what net/http still buffers of the
// response, so that a failure shows in the access line: net/http writes
// it after the handler has returned, once the line is written, and its
// error reaches no one, so a response the write deadline cut there (a
// client that stopped reading, SESSIONGATE_WRITE_TIMEOUT passed while the
// app finished) was logged as 200 with every byte. A response still held
// is whole: it gets the Content-Length net/http would give it (its length,
// even 0; for HEAD only when the app wrote the body), then goes out the
// same way. HTTP/2 has learnStreamEnd.
func (w *recorder) finalFlush(r *http.Request) {
	if r.ProtoMajor != 1 || w.status == 0 || w.status == http.StatusSwitchingProtocols || w.hijacked || w.writeErr != nil {
		return
	}
	if w.holding {
		n := 0
		if w.held != nil {
			n = len(*w.held)
		}
		if h := w.ResponseWriter.Header(); (!w.head || n > 0) && !trailerKeys(h) {
			w.clen[0] = lengthTexts()[n]
			h["Content-Length"] = w.clen[:]
		}
		if w.release() != nil {
			return
		}
	}
	w.FlushError()
}

// sendBeforeAbort sends, over HTTP/1.x, what net/http buffers of a
// response the PHP or Django proxy aborts (panic value v) because its
// upstream broke off or stalled mid-body: net/http drops it with the
// panic. A short response, or one whose first part came before the
// stall, then reached the client as an empty reply, which a browser takes
// for a kept-alive connection closed under it and sends the request again
// (the app ran twice). Now the header and the part go out, then the cut,
// as from nginx; the client sees a response shorter than its length, or
// a chunked body without its end. Not for a client that left, nor after a
// failed write.
func (w *recorder) sendBeforeAbort(r *http.Request, v any) {
	if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
		return
	}
	if r.ProtoMajor != 1 || w.status == 0 || w.status == http.StatusSwitchingProtocols || w.hijacked || w.writeErr != nil || r.Context().Err() != nil {
		return
	}
	w.FlushError()
}

// trailerKeys reports whether h has trailers set by http.TrailerPrefix
// keys, which make net/http send the body chunked.
func trailerKeys(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection over, for a protocol switch (a WebSocket the
// Django proxy passes on): httputil.ReverseProxy writes the 101 on the
// hijacked connection, past this writer, so the log would show the 200
// net/http never sent. A successful hijack with no status written is that
// switch.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if err := w.release(); err != nil {
		return nil, nil, err
	}
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		// A status written before stays the one logged: net/http sent
		// its header on Hijack.
		w.hijacked = true
		if w.status == 0 {
			w.status = http.StatusSwitchingProtocols
		}
	}
	return c, brw, err
}

// logRequests wraps next with the per-request bookkeeping: RequestInfo,
// client address, the access log line (or, with the access log off, a
// warning for failed requests only, so an upstream error is logged exactly
// once either way), and the observers (WithObserver), which see every
// request exactly once with the same status as the log.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return s.logRequestsOut(next, s.out)
}

// servedPath is the path routing serves for r: its URL path cut at a raw
// "#" of the request target, never at an escaped %23, which is part of
// the path (front does the same: withoutFragment), "/" for an empty one,
// then config.CleanPath. "OPTIONS *" asks about the whole server: it is
// "/" too, so that the site's lines of SESSIONGATE_RESPONSE_HEADERS reach
// its 400, as nginx's add_header ... always does.
func servedPath(r *http.Request) string {
	p := withoutFragment(r).URL.Path
	if p == "" || p == "*" {
		p = "/"
	}
	return config.CleanPath(p)
}

// logRequestsOut is logRequests with out applied to the response headers
// (nil: none).
func (s *Server) logRequestsOut(next http.Handler, out *outHeaders) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &RequestInfo{Upstream: "gateway", srv: s}
		ri.RemoteAddr, ri.HTTPS, ri.ViaProxy = clientOf(r, s.cfg.TrustedProxies)
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		// net/http clears the write deadline after each response and on
		// Hijack: nothing is left over for the next request.
		rec := &recorder{ResponseWriter: w, sendTimeout: s.sendTimeout, writeTimeout: s.cfg.WriteTimeout, out: out, ri: ri, https: ri.HTTPS,
			http1: r.ProtoMajor == 1, head: r.Method == http.MethodHead}
		if out != nil && len(out.added) > 0 {
			rec.path, rec.rawPath = servedPath(r), withoutFragment(r).URL.Path
		}
		// As net/http gave it: the layers below may put another in r
		// (a body read ahead), and overlongBody must read this one.
		body := r.Body
		var cb *clientBody
		if r.ProtoMajor == 1 && body != nil && body != http.NoBody {
			cb = &clientBody{ReadCloser: body, limit: int64(s.cfg.MaxBody)}
			r.Body = cb
		}

		defer func() {
			// net/http writes what is still buffered (the end of a
			// chunked body) after the handler, however long ago its last
			// write was; and the whole of a response the handler never
			// wrote to.
			rec.setWriteDeadline(rec.sendTimeout)
			rec.responseStarts()
			v := recover()
			if err, ok := v.(error); ok && ri.Err == nil && !errors.Is(err, http.ErrAbortHandler) {
				ri.Err = err
			}
			if v == nil {
				rec.finalFlush(r)
			} else {
				rec.sendBeforeAbort(r, v)
				rec.dropHeld()
			}
			rec.learnStreamEnd(r)
			switch {
			case writeTimedOut(rec.writeErr) && (ri.Err == nil || errors.Is(ri.Err, context.Canceled)):
				// The deadline also ended the request's context: a read
				// from the upstream that failed after it failed because
				// of it, not because the client left.
				ri.Err = fmt.Errorf("response cut: a write to the client timed out, it stopped reading or SESSIONGATE_WRITE_TIMEOUT passed (%w)", rec.writeErr)
				if ri.Status == StatusClientClosedRequest {
					ri.Status = 0
				}
			case v != nil && ri.Err == nil && clientLeft(r, rec):
				// The write to the client failed before the upstream
				// read noticed: the same 499 as when it noticed first.
				ri.Err = errors.New("response not finished: the client left")
			case v != nil && ri.Err == nil:
				// The PHP and Django proxies panic with ErrAbortHandler
				// when a streamed body cannot be finished: the client
				// sees a cut connection.
				ri.Err = errors.New("response aborted")
			}
			status := finalStatus(r, ri, rec, v != nil)
			if status == StatusClientClosedRequest {
				if err := overlongBody(rec, r, body); err != nil {
					ri.Err, ri.Status, status = fmt.Errorf("read request body: %w", err), http.StatusBadRequest, http.StatusBadRequest
				}
			}
			if err := shutdownCut(r); err != nil {
				ri.Err = err
			}
			d := time.Since(start)
			s.logLine(r, ri, rec, status, d, v != nil)
			for _, obs := range s.observers {
				obs(ri, status, rec.bytes, d)
			}
			if v != nil {
				panic(v)
			}
			if cb != nil {
				s.lingerAfter(rec, r, cb, status)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// ErrShutdownCut is the cause the gateway cancels its requests' base
// context with when SESSIONGATE_SHUTDOWN_TIMEOUT runs out: those requests
// are logged and counted as 503 with this error, not as clients that left
// (499), which they did not.
var ErrShutdownCut = errors.New("cut at shutdown: SESSIONGATE_SHUTDOWN_TIMEOUT passed")

// shutdownCut returns ErrShutdownCut when it ended r's context. The cause is
// looked up only for a context that ended, not on every request.
func shutdownCut(r *http.Request) error {
	if r.Context().Err() == nil {
		return nil
	}
	if cause := context.Cause(r.Context()); errors.Is(cause, ErrShutdownCut) {
		return cause
	}
	return nil
}

// overlongBody returns net/http's error for an HTTP/2 request body that ran
// past its content-length, when that ended the request: net/http resets
// the stream, which cancels the request's context, and when the extra
// DATA came after the handler had read the declared bytes (while PHP or
// Django ran), no read saw the error, and the request passed for one the
// client left (499), where the client broke its framing (400). The error
// waits in the body: a read deadline in the past ends a body that has
// none yet (the client did leave), so the reads here never wait. body is
// r's body as net/http gave it.
func overlongBody(w http.ResponseWriter, r *http.Request, body io.Reader) error {
	if r.ProtoMajor != 2 || r.ContentLength < 0 || body == nil || body == http.NoBody || shutdownCut(r) != nil {
		return nil
	}
	if http.NewResponseController(w).SetReadDeadline(time.Now().Add(-time.Second)) != nil {
		return nil
	}
	// What the handler left unread comes first: up to net/http's window
	// for a stream (1 MiB), which a body it accepted cannot pass.
	buf := make([]byte, 32<<10)
	for range 64 {
		if _, err := body.Read(buf); err != nil {
			if bodyread.Overlong(err) {
				return err
			}
			return nil
		}
	}
	return nil
}

// finalStatus is the status a request ended with, as the access log and the
// observers report it: what was written (200 when nothing was), unless a
// layer said otherwise (RequestInfo.Status), 499 when the client left
// before the response was complete, and 503 when the shutdown deadline cut
// it (ErrShutdownCut).
func finalStatus(r *http.Request, ri *RequestInfo, rec *recorder, aborted bool) int {
	if shutdownCut(r) != nil {
		return http.StatusServiceUnavailable
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	if ri.Status != 0 {
		status = ri.Status
	}
	if aborted && rec.status == 0 && ri.Status == 0 {
		// A panic before any response (a bug): the client gets a closed
		// connection, not the 200 net/http sends for a handler that
		// wrote nothing.
		status = http.StatusInternalServerError
	}
	if (rec.writeErr != nil || aborted) && clientLeft(r, rec) {
		status = StatusClientClosedRequest
	}
	// Nothing answered because the client left first (it gave up while
	// its request waited for the session lock): not the 200 net/http would
	// send to nobody.
	if rec.status == 0 && ri.Status == 0 && r.Context().Err() != nil {
		status = StatusClientClosedRequest
	}
	return status
}

// clientLeft reports whether the client is gone: its request's context
// ended, or a write to it found the connection closed (connGone). A write
// that timed out is not a client that left but one the send timeout cut
// (it stopped reading), though net/http cancels the request's context
// after any failed write.
func clientLeft(r *http.Request, rec *recorder) bool {
	if writeTimedOut(rec.writeErr) {
		return false
	}
	return r.Context().Err() != nil || connGone(rec.writeErr)
}

// writeTimedOut reports a write to the client that the connection's write
// deadline ended (sendTimeout, or SESSIONGATE_WRITE_TIMEOUT).
func writeTimedOut(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// connGone reports whether a write to the client failed because the client
// closed or reset the connection. net/http cancels the request's context
// when a buffered write fails, but not when sendfile does (static files go
// out through ReadFrom, straight to the socket); then only its background
// read notices, usually after the handler has returned.
func connGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

func (s *Server) logLine(r *http.Request, ri *RequestInfo, rec *recorder, status int, d time.Duration, aborted bool) {
	failed := ri.Err != nil || aborted || status == StatusClientClosedRequest || writeTimedOut(rec.writeErr)
	if !s.cfg.AccessLog && !failed {
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String("method", logtext.Clip(r.Method, maxLoggedMethod)),
		slog.String("path", logtext.Clip(r.URL.Path, maxLoggedValue)),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("upstream", ri.Upstream),
		slog.String("remote", ri.RemoteAddr),
	)
	if status == http.StatusMisdirectedRequest {
		// Which name was refused (SESSIONGATE_SERVER_NAMES): a probe by
		// IP, a caller using a container's name, an attacker's.
		attrs = append(attrs, slog.String("host", logtext.Clip(r.Host, 100)))
	}
	if ri.InternalRedirect != "" {
		attrs = append(attrs, slog.String("internal_redirect", logtext.Clip(ri.InternalRedirect, maxLoggedValue)))
	}
	if ri.RemoteUser != "" {
		attrs = append(attrs, slog.String("user", logtext.Clip(ri.RemoteUser, maxLoggedValue)))
	}
	if aborted {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	if ri.Err != nil {
		attrs = append(attrs, slog.String("error", logtext.Clip(ri.Err.Error(), maxLoggedValue)))
	} else if rec.writeErr != nil && status != StatusClientClosedRequest {
		attrs = append(attrs, slog.String("error", logtext.Clip(rec.writeErr.Error(), maxLoggedValue)))
	}
	// A failed request is a warning with the access log on as well as off:
	// at SESSIONGATE_LOG_LEVEL=warn it must still be seen. A backend that
	// could not be reached or did not answer in time is an error, as
	// nginx's error_log has "connect() failed" and "upstream timed out":
	// at SESSIONGATE_LOG_LEVEL=error a php-fpm that was down left no line.
	level := slog.LevelInfo
	switch {
	case ri.Err != nil && (status == http.StatusBadGateway || status == http.StatusGatewayTimeout):
		level = slog.LevelError
	case failed:
		level = slog.LevelWarn
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// Bounds of what one access log line holds of a value the client chose
// (the request line and headers may take SESSIONGATE_MAX_HEADER_BYTES, up
// to 64 MiB), counted as written, escapes included: a line stays well under
// what log pipelines take as one line (Docker's json-file driver cuts at
// 16 KiB, journald at 48 KiB), so it reaches them as one JSON object, not
// as fragments. Real paths are far shorter; the method is a short token.
const (
	maxLoggedValue  = logtext.MaxValue
	maxLoggedMethod = 64
)

// LogValue is s as a log line may hold it when the client chose it (a
// path): cut like the access log's values (logtext.Clip), so that a line
// other packages write about a request stays one line too.
func LogValue(s string) string { return logtext.Clip(s, maxLoggedValue) }

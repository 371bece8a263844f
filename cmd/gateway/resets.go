package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// rapidResetLimit is how many of its streams an HTTP/2 client may reset
// (or leave otherwise) before their handler answered, beyond the ones it
// let end, before the gateway closes its connection.
const rapidResetLimit = 100

// resetsForgiven is how many of those resets a second are forgotten: a
// person's aborted fetches (a search box that cancels the previous query
// at each key) come slower, an attack's by the thousand.
const resetsForgiven = 10

// resetClock is time.Now; tests replace it.
var resetClock = time.Now

// resetCounter counts, for one client connection, the requests whose
// context ended before their handler did (over HTTP/2: streams the client
// reset) and the ones that ended normally.
type resetCounter struct {
	nc           net.Conn
	reset, ended atomic.Int64
	closed       atomic.Bool

	mu     sync.Mutex
	recent float64   // resets not yet forgotten (resetsForgiven a second)
	last   time.Time // of the last reset
}

// recentResets counts one more reset at now and returns the resets not
// yet forgotten.
func (rc *resetCounter) recentResets(now time.Time) float64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.last.IsZero() {
		rc.recent = max(0, rc.recent-now.Sub(rc.last).Seconds()*resetsForgiven)
	}
	rc.last = now
	rc.recent++
	return rc.recent
}

type resetCounterKey struct{}

// limitResets closes an HTTP/2 connection once its client has reset more
// than rapidResetLimit streams before they were answered, beyond
// resetsForgiven a second, and more than it let end: the rapid reset of
// CVE-2023-44487. net/http runs a handler for each new stream and closes
// the connection only when handlers pile up (more than 4 x 250 waiting);
// the gateway's handlers for reset streams end at once (the FastCGI
// request is not sent, or its connection kept until php-fpm answers), so
// the connection lived on however many streams its client opened and
// reset, each costing a handler, an access log line and, for a stream
// reset once PHP had it, a script run. A browser resets some streams
// (navigations, cancelled fetches): far fewer than it lets end, or slowly
// enough to be forgiven, though a page open for hours may abort thousands.
// A stream reset once its answer began is not counted: a browser cancels
// those by the hundred (downloads left by a navigation, a video player's
// range requests), and the server had done its work.
//
// It sets srv.Handler and srv.ConnContext, keeping those already set.
func limitResets(srv *http.Server, logger *slog.Logger) {
	next, connCtx := srv.Handler, srv.ConnContext
	srv.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if connCtx != nil {
			ctx = connCtx(ctx, nc)
		}
		return context.WithValue(ctx, resetCounterKey{}, &resetCounter{nc: nc})
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, ok := r.Context().Value(resetCounterKey{}).(*resetCounter)
		if !ok || r.ProtoMajor != 2 {
			next.ServeHTTP(w, r)
			return
		}
		aw := &answerWriter{ResponseWriter: w, ctx: r.Context()}
		// Deferred: the handler of a stream its client reset aborts
		// (http.ErrAbortHandler, no answer to send), and that stream
		// counts all the more.
		defer rc.count(r, aw, logger)
		next.ServeHTTP(aw, r)
	})
}

// count notes how the stream of r ended, and closes the connection once
// its client reset too many before their answer began.
func (rc *resetCounter) count(r *http.Request, aw *answerWriter, logger *slog.Logger) {
	if r.Context().Err() == nil {
		rc.ended.Add(1)
		return
	}
	if aw.began.Load() {
		// Reset once its answer was on its way: a download cancelled
		// by a navigation, a video player's range request dropped when
		// it seeks or has buffered enough. The server did its work;
		// the attack resets before.
		return
	}
	reset := rc.reset.Add(1)
	if ended := rc.ended.Load(); rc.recentResets(resetClock()) > rapidResetLimit && reset > ended && rc.closed.CompareAndSwap(false, true) {
		logger.Warn("closing an HTTP/2 connection whose client reset more streams than it let end (rapid reset, CVE-2023-44487)",
			"remote", r.RemoteAddr, "reset", reset, "ended", ended)
		rc.nc.Close()
	}
}

// answerWriter notes whether the handler began its answer (a final status,
// body bytes or a flush) before the request's context ended. It passes on
// every method of net/http's HTTP/2 response writer, which the layers below
// ask for by type (the access log's write deadlines and FlushError).
type answerWriter struct {
	http.ResponseWriter
	ctx   context.Context
	began atomic.Bool
}

func (w *answerWriter) begin() {
	if !w.began.Load() && w.ctx.Err() == nil {
		w.began.Store(true)
	}
}

func (w *answerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *answerWriter) WriteHeader(code int) {
	if code >= 200 {
		w.begin()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *answerWriter) Write(p []byte) (int, error) {
	w.begin()
	return w.ResponseWriter.Write(p)
}

func (w *answerWriter) WriteString(s string) (int, error) {
	w.begin()
	if sw, ok := w.ResponseWriter.(interface{ WriteString(string) (int, error) }); ok {
		return sw.WriteString(s)
	}
	return w.ResponseWriter.Write([]byte(s))
}

func (w *answerWriter) Flush() {
	w.FlushError()
}

func (w *answerWriter) FlushError() error {
	w.begin()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *answerWriter) SetReadDeadline(t time.Time) error {
	return http.NewResponseController(w.ResponseWriter).SetReadDeadline(t)
}

func (w *answerWriter) SetWriteDeadline(t time.Time) error {
	return http.NewResponseController(w.ResponseWriter).SetWriteDeadline(t)
}

func (w *answerWriter) EnableFullDuplex() error {
	return http.NewResponseController(w.ResponseWriter).EnableFullDuplex()
}

func (w *answerWriter) Push(target string, opts *http.PushOptions) error {
	if p, ok := w.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

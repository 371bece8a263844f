package server

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// A client that sends a large body whole before it reads an answer (a
// browser's form upload, most HTTP libraries) is still writing when the
// gateway refuses the body (413 over SESSIONGATE_MAX_BODY) or answers
// without reading it (403, 429, a redirect). net/http then closes the
// connection with the rest of the body unread, the kernel answers that
// unread data with a reset, and the reset makes the client's kernel drop
// the answer it had not read yet: the user sees "connection reset" where
// the gateway said 413. nginx reads and drops what still comes before it
// closes (lingering_close), and so does the gateway, for as long as
// nginx's defaults allow: lingerTime in all, lingerTimeout of silence.
const (
	lingerTime    = 30 * time.Second
	lingerTimeout = 5 * time.Second
)

// clientBody is an HTTP/1 request body as net/http gave it, with what was
// read of it counted, so that the gateway can tell, after the answer,
// whether the client may still be sending.
type clientBody struct {
	io.ReadCloser
	// limit is SESSIONGATE_MAX_BODY (0: none).
	limit int64
	read  atomic.Int64
	// ended: a read saw the end, or the body was closed below the limit.
	ended atomic.Bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read.Add(int64(n))
	if err == io.EOF {
		b.ended.Store(true)
	}
	return n, err
}

// Close leaves a body read past the limit open: http.MaxBytesReader closes
// the body under it once over the limit, and net/http's Close of a body
// with much left stops reading it for good, which would leave nothing to
// drain the rest with (lingerAfter). net/http closes it after the handler
// anyway.
func (b *clientBody) Close() error {
	if b.limit > 0 && b.read.Load() > b.limit {
		return nil
	}
	b.ended.Store(true)
	return b.ReadCloser.Close()
}

// lingerAfter reads and drops what the client still sends of body once
// its answer has gone out, so that closing the connection after it does
// not reset the answer away. Only when the connection may close with body
// unread: over HTTP/1, with a response whose end the client can tell
// without the connection closing (a length, or no body), since a chunked
// one ends only after this; not for a client that left or a write to it
// that failed, nor for a connection the handler took over (Hijack); not
// while the gateway shuts down. A body read whole, or drained by net/http
// for keep-alive, returns at once. A client
// that asked for 100 Continue and got the answer instead is read from as
// well, as nginx does (net/http sends no 100 once a final status went
// out): it may send the body all the same, and one that gives up closes
// the connection, which ends this at once.
func (s *Server) lingerAfter(rec *recorder, r *http.Request, body *clientBody, status int) {
	if status == StatusClientClosedRequest || rec.hijacked || rec.writeErr != nil {
		return
	}
	// A body that stopped coming (408) is not waited for again.
	if body.ended.Load() || status == http.StatusRequestTimeout || !answerFramed(rec.Header(), r.Method, status) {
		return
	}
	rc := http.NewResponseController(rec)
	// Past a wrapper that moves the read deadline itself before each read
	// (cmd/gateway's SESSIONGATE_READ_TIMEOUT per read): through it, a
	// client gone silent was waited for that long, not lingerTimeout.
	src := body.ReadCloser
	var movers []deadlineMover
	for {
		if m, ok := src.(deadlineMover); ok {
			movers = append(movers, m)
		}
		u, ok := src.(interface{ Unwrap() io.ReadCloser })
		if !ok {
			break
		}
		src = u.Unwrap()
	}
	end := time.Now().Add(s.lingerTime)
	bp := copyBuffers.Get()
	defer copyBuffers.Put(bp)
	for !s.draining.Load() {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		if rc.SetReadDeadline(now.Add(min(end.Sub(now), s.lingerTimeout))) != nil {
			return
		}
		if _, err := src.Read(*bp); err != nil {
			if err == io.EOF {
				return // the body ended: the connection may stay
			}
			break
		}
	}
	// Given up on a client gone silent, past its time, or for a shutdown:
	// net/http reads what is left of the body (up to 256 KiB) before it
	// closes the connection, and must find the deadline past, not moved
	// ahead by a wrapper, or a silent client would hold the connection
	// (and a shutdown's wait) for SESSIONGATE_READ_TIMEOUT more.
	for _, m := range movers {
		m.StopMovingDeadline()
	}
	_ = rc.SetReadDeadline(time.Now())
}

// deadlineMover is a request body wrapper that moves the connection's
// read deadline itself (cmd/gateway's per-read SESSIONGATE_READ_TIMEOUT);
// StopMovingDeadline makes it leave the deadline alone from then on.
type deadlineMover interface {
	StopMovingDeadline()
}

// answerFramed reports whether a response's end shows without the
// connection closing: it has no body, or a Content-Length.
func answerFramed(h http.Header, method string, status int) bool {
	if method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified || status < 200 {
		return true
	}
	_, ok := h["Content-Length"]
	return ok
}

package main

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// bodyReadTimeout bounds each read of a request body by d
// (SESSIONGATE_READ_TIMEOUT) instead of the whole request, like nginx's
// client_body_timeout, which bounds the time between two reads: with
// http.Server.ReadTimeout an upload over a slow link that kept making
// progress was cut with 408 once the request had taken d, where nginx
// takes it whole. A client that stalls still gets 408 after d without a
// byte. The headers stay bounded by ReadHeaderTimeout.
func bodyReadTimeout(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		// Also bounds a body the handler never reads, which net/http
		// reads (up to 256 KiB) to keep the connection.
		_ = rc.SetReadDeadline(time.Now().Add(d))
		body := &deadlineBody{ReadCloser: r.Body, rc: rc, d: d}
		r.Body = body
		next.ServeHTTP(w, r)
		if !body.ended.Load() {
			// For what net/http reads of the body after the handler:
			// the last read's deadline may be long past.
			_ = rc.SetReadDeadline(time.Now().Add(d))
		}
	})
}

// deadlineBody moves the read deadline d ahead of each read, until the
// body ends. From then on net/http reads the connection to notice a client
// that leaves (with no deadline): one set then would cancel the request of
// a handler still working after d, as if the client had left.
type deadlineBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	d     time.Duration
	ended atomic.Bool
}

// Unwrap gives the body without the deadline moves: the server's linger
// after an answer given with the body unread sets deadlines of its own.
func (b *deadlineBody) Unwrap() io.ReadCloser { return b.ReadCloser }

// StopMovingDeadline is called by the server's linger once it gave up on
// the rest of the body: the deadline it leaves past must stay past for
// what net/http reads after the handler, or a client gone silent after
// its answer would hold the connection for d more.
func (b *deadlineBody) StopMovingDeadline() { b.ended.Store(true) }

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.ended.Load() {
		return b.ReadCloser.Read(p)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.ended.Store(true)
	}
	return n, err
}

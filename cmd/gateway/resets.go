package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
)

// rapidResetLimit is how many of its streams an HTTP/2 client may reset
// (or leave otherwise) before their handler ended, beyond the ones it let
// end, before the gateway closes its connection.
const rapidResetLimit = 100

// resetCounter counts, for one client connection, the requests whose
// context ended before their handler did (over HTTP/2: streams the client
// reset) and the ones that ended normally.
type resetCounter struct {
	nc           net.Conn
	reset, ended atomic.Int64
	closed       atomic.Bool
}

type resetCounterKey struct{}

// limitResets closes an HTTP/2 connection once its client has reset more
// than rapidResetLimit streams before they ended and more than it let end:
// the rapid reset of CVE-2023-44487. net/http runs a handler for each new
// stream and closes the connection only when handlers pile up (more than
// 4 x 250 waiting); the gateway's handlers for reset streams end at once
// (the FastCGI request is not sent, or its connection kept until php-fpm
// answers), so the connection lived on however many streams its client
// opened and reset, each costing a handler, an access log line and, for a
// stream reset once PHP had it, a script run. A browser resets some streams
// (navigations, cancelled fetches), far fewer than it lets end.
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
		next.ServeHTTP(w, r)
		rc, ok := r.Context().Value(resetCounterKey{}).(*resetCounter)
		if !ok || r.ProtoMajor != 2 {
			return
		}
		if r.Context().Err() == nil {
			rc.ended.Add(1)
			return
		}
		reset := rc.reset.Add(1)
		if ended := rc.ended.Load(); reset > rapidResetLimit && reset > ended && rc.closed.CompareAndSwap(false, true) {
			logger.Warn("closing an HTTP/2 connection whose client reset more streams than it let end (rapid reset, CVE-2023-44487)",
				"remote", r.RemoteAddr, "reset", reset, "ended", ended)
			rc.nc.Close()
		}
	})
}

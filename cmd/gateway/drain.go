package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/server"
)

// cutHandlerGrace is how long, after SESSIONGATE_SHUTDOWN_TIMEOUT has run
// out and the remaining connections were closed, the handlers of those
// requests get to finish before the process closes the session store.
// Closing a connection does not stop its handler: it sees its request's
// context end and still releases what it holds (a session lock in Redis,
// bounded by SESSIONGATE_REDIS_TIMEOUT). A store closed under it would
// leave that lock in place until its lease ran out.
const cutHandlerGrace = 5 * time.Second

// inflight counts the public listener's running handlers and holds the
// base context of their requests (http.Server.BaseContext), which drain
// cancels with server.ErrShutdownCut when the deadline passes: the access
// log and the metrics then tell those requests from clients that left.
type inflight struct {
	n    atomic.Int64
	base context.Context
	cut  context.CancelCauseFunc
	// cutEnded counts the handlers that ended after the cut: requests the
	// shutdown cut short.
	cutEnded atomic.Int64
}

func newInflight() *inflight {
	f := &inflight{}
	f.base, f.cut = context.WithCancelCause(context.Background())
	return f
}

func (f *inflight) baseContext(net.Listener) context.Context { return f.base }

func (f *inflight) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		defer func() {
			// Before n goes down: once wait sees none running, the
			// count is final.
			if f.base.Err() != nil {
				f.cutEnded.Add(1)
			}
			f.n.Add(-1)
		}()
		h.ServeHTTP(w, r)
	})
}

// wait returns once no handler runs or d has passed, with how many still
// run.
func (f *inflight) wait(d time.Duration) int64 {
	deadline := time.Now().Add(d)
	for f.n.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return f.n.Load()
}

// drain stops public the graceful way: in-flight requests may finish
// within timeout. Past it the remaining connections are closed and their
// handlers get grace to let go of what they hold. It reports whether every
// request finished within timeout: connections that never sent one (a
// browser's preconnect), which http.Server.Shutdown waits for until they
// are 5 s old, are closed at the deadline without making the stop unclean.
func drain(public *http.Server, running *inflight, timeout, grace time.Duration, logger *slog.Logger) bool {
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := public.Shutdown(ctx)
	if err == nil {
		// Shutdown neither waits for nor closes the connections handlers
		// took over (a protocol switch proxied to Django, a WebSocket):
		// their handlers are in-flight requests all the same.
		n := running.wait(time.Until(deadline))
		if n == 0 {
			return true
		}
		err = fmt.Errorf("%d requests on connections taken over by a protocol switch still running", n)
	}
	if running.n.Load() > 0 {
		logger.Error("shutdown deadline passed: closing remaining connections", "error", err)
	} else {
		logger.Info("shutdown deadline passed: closing connections that have not sent a request", "error", err)
	}
	running.cut(server.ErrShutdownCut) // before Close, so that this is the cause they see
	public.Close()
	if n := running.wait(grace); n > 0 {
		logger.Error("requests still running after their connections were closed; the session locks they hold expire with their lease",
			"requests", n, "grace", grace.String())
		return false
	}
	return running.cutEnded.Load() == 0
}

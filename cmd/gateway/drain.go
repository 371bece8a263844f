package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/server"
)

// cutHandlerGrace is how long, after SESSIONGATE_SHUTDOWN_TIMEOUT has run
// out and the remaining connections were closed, the handlers of those
// requests get to finish before the process closes the session store.
// Closing a connection does not stop its handler: it sees its request's
// context end and still releases what it holds (a session lock in Redis).
// A store closed under it would leave that lock in place until its lease
// ran out. A handler may be in a Redis operation when it is cut, then
// writes and unlocks, each bounded by SESSIONGATE_REDIS_TIMEOUT (up to 1m):
// a fixed 5 s let a Redis slower than that but within its timeout keep
// the lock. It is a bound, not a wait: the process goes as soon as the
// handlers are done.
func cutHandlerGrace(cfg *config.Config) time.Duration {
	grace := 5 * time.Second
	if cfg.Session.Enabled {
		grace = max(grace, 3*cfg.Session.RedisTimeout)
	}
	return grace
}

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

// wait returns once no handler runs or ctx has ended, with how many still
// run.
func (f *inflight) wait(ctx context.Context) int64 {
	for f.n.Load() > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	return f.n.Load()
}

// drain stops public the graceful way: in-flight requests may finish
// within timeout. Past it the remaining connections are closed and their
// handlers get grace to let go of what they hold. hurry (nil: never) ends
// the wait for the requests early, as the deadline does (a second stop
// signal): they are cut, and their handlers still get grace. It
// reports whether every request finished: connections that never sent one
// (a browser's preconnect), which http.Server.Shutdown waits for until
// they are 5 s old, are closed at the deadline without making the stop
// unclean.
func drain(public *http.Server, running *inflight, timeout, grace time.Duration, hurry <-chan struct{}, logger *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hurried := make(chan struct{})
	go func() {
		select {
		case <-hurry:
			close(hurried)
			cancel()
		case <-ctx.Done():
		}
	}()
	err := public.Shutdown(ctx)
	if err == nil {
		// Shutdown neither waits for nor closes the connections handlers
		// took over (a protocol switch proxied to Django, a WebSocket):
		// their handlers are in-flight requests all the same.
		n := running.wait(ctx)
		if n == 0 {
			return true
		}
		err = fmt.Errorf("%d requests on connections taken over by a protocol switch still running", n)
	}
	why := "shutdown deadline passed"
	var cause error = server.ErrShutdownCut
	select {
	case <-hurried:
		why = "second signal: not waiting for the drain"
		cause = hurriedCut{}
	default:
	}
	if running.n.Load() > 0 {
		logger.Error(why+": closing remaining connections", "error", err)
	} else {
		logger.Info(why+": closing connections that have not sent a request", "error", err)
	}
	running.cut(cause) // before Close, so that this is the cause they see
	public.Close()
	gctx, gcancel := context.WithTimeout(context.Background(), grace)
	defer gcancel()
	if n := running.wait(gctx); n > 0 {
		logger.Error("requests still running after their connections were closed; the session locks they hold expire with their lease",
			"requests", n, "grace", grace.String())
		return false
	}
	return running.cutEnded.Load() == 0
}

// hurriedCut is the cause of the requests cut by a second signal: an
// ErrShutdownCut (503 in the access log), which says why.
type hurriedCut struct{}

func (hurriedCut) Error() string {
	return "cut at shutdown: a second SIGTERM, SIGINT or SIGQUIT ended the drain"
}

func (hurriedCut) Is(target error) bool { return target == server.ErrShutdownCut }

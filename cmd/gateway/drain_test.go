package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/server"
)

// A request still running when SESSIONGATE_SHUTDOWN_TIMEOUT runs out has
// its connection closed; drain must not return (after which the process
// closes the session store and exits) before its handler has let go of
// what it holds. The handler here stands for one releasing a session lock
// after its context ended.
func TestDrainWaitsForHandlersOfClosedConnections(t *testing.T) {
	var released atomic.Bool
	public, running := serveOneRequest(t, func(r *http.Request) {
		<-r.Context().Done()
		time.Sleep(300 * time.Millisecond) // the release, a Redis round trip
		released.Store(true)
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if drain(public, running, 50*time.Millisecond, 10*time.Second, nil, logger) {
		t.Fatal("drain reported a clean stop with a request cut at the deadline")
	}
	if !released.Load() {
		t.Fatal("drain returned while the handler of a closed connection was still releasing what it holds")
	}
}

// A request cut at the deadline sees server.ErrShutdownCut as its
// context's cause, so it is logged as the gateway's doing (503), not as a
// client that left (499).
func TestDrainCutsWithShutdownCause(t *testing.T) {
	cause := make(chan error, 1)
	public, running := serveOneRequest(t, func(r *http.Request) {
		<-r.Context().Done()
		cause <- context.Cause(r.Context())
	})
	drain(public, running, 50*time.Millisecond, time.Second, nil, slog.New(slog.DiscardHandler))
	if err := <-cause; !errors.Is(err, server.ErrShutdownCut) {
		t.Fatalf("cause %v, want server.ErrShutdownCut", err)
	}
}

// A handler that never returns costs the shutdown no more than the grace.
func TestDrainGraceIsBounded(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	public, running := serveOneRequest(t, func(*http.Request) { <-block })
	done := make(chan bool)
	go func() {
		done <- drain(public, running, 50*time.Millisecond, 200*time.Millisecond, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	select {
	case clean := <-done:
		if clean {
			t.Fatal("clean stop reported")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("drain waits for a handler that never returns")
	}
}

// serveOneRequest serves handle, counted like the gateway's public
// handlers, on a loopback listener, and returns once one request is in it.
func serveOneRequest(t *testing.T, handle func(*http.Request)) (*http.Server, *inflight) {
	t.Helper()
	started := make(chan struct{})
	running := newInflight()
	public := &http.Server{BaseContext: running.baseContext, Handler: running.track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		handle(r.WithContext(context.WithValue(r.Context(), hijackerKey{}, w)))
	}))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go public.Serve(ln)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			res.Body.Close()
		}
	}()
	<-started
	return public, running
}

// serveOneHijacked is serveOneRequest for a handler that takes over its
// connection, as the Django proxy does for a protocol switch (WebSocket):
// http.Server.Shutdown neither waits for nor closes such connections.
func serveOneHijacked(t *testing.T, handle func(*http.Request)) (*http.Server, *inflight) {
	t.Helper()
	return serveOneRequest(t, func(r *http.Request) {
		w := r.Context().Value(hijackerKey{}).(http.ResponseWriter)
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		handle(r)
	})
}

type hijackerKey struct{}

// A protocol switch still running at SIGTERM is an in-flight request too:
// drain gives it SESSIONGATE_SHUTDOWN_TIMEOUT like any other, instead of
// returning at once (after which the process exits under it).
func TestDrainWaitsForHijackedConnections(t *testing.T) {
	var finished atomic.Bool
	public, running := serveOneHijacked(t, func(r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
	})
	if !drain(public, running, 10*time.Second, time.Second, nil, slog.New(slog.DiscardHandler)) {
		t.Error("not a clean stop")
	}
	if !finished.Load() {
		t.Fatal("drain returned while a hijacked connection's handler still ran")
	}
}

// One that outlives the timeout is cut like the others: its context ends
// with server.ErrShutdownCut (the Django proxy then closes both sides).
func TestDrainCutsHijackedConnections(t *testing.T) {
	cause := make(chan error, 1)
	public, running := serveOneHijacked(t, func(r *http.Request) {
		<-r.Context().Done()
		cause <- context.Cause(r.Context())
	})
	done := make(chan bool, 1)
	go func() {
		done <- drain(public, running, 100*time.Millisecond, time.Second, nil, slog.New(slog.DiscardHandler))
	}()
	select {
	case err := <-cause:
		if !errors.Is(err, server.ErrShutdownCut) {
			t.Fatalf("cause %v, want server.ErrShutdownCut", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a hijacked connection's handler was never told of the shutdown")
	}
	if <-done {
		t.Error("clean stop reported with a request cut")
	}
}

// A connection that never sent a request (a browser's preconnect, a TLS
// handshake not finished) keeps http.Server.Shutdown waiting until it is 5
// s old. With a SESSIONGATE_SHUTDOWN_TIMEOUT shorter than that, drain
// closes it at the deadline: no request was cut, so the stop is clean
// (exit status 0), not a failure.
func TestDrainIdleNewConnectionIsClean(t *testing.T) {
	running := newInflight()
	public := &http.Server{BaseContext: running.baseContext, Handler: running.track(http.NotFoundHandler())}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go public.Serve(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Served: the server has the connection (in StateNew) once it answers
	// a request on another one.
	res, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if !drain(public, running, 200*time.Millisecond, time.Second, nil, slog.New(slog.DiscardHandler)) {
		t.Fatal("drain reported requests cut, with none in flight (a connection that sent nothing)")
	}
}

// hurry (a second SIGTERM) cuts the requests at once, long before the
// timeout, with the shutdown's cause, and still waits for their handlers.
func TestDrainHurryCutsAtOnce(t *testing.T) {
	var released atomic.Bool
	cause := make(chan error, 1)
	public, running := serveOneRequest(t, func(r *http.Request) {
		<-r.Context().Done()
		cause <- context.Cause(r.Context())
		time.Sleep(100 * time.Millisecond) // the lock's release
		released.Store(true)
	})
	hurry := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(hurry) })
	start := time.Now()
	if drain(public, running, time.Minute, 10*time.Second, hurry, slog.New(slog.DiscardHandler)) {
		t.Error("clean stop reported with a request cut")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("drain took %v after hurry", d)
	}
	if !released.Load() {
		t.Error("drain returned before the cut handler released what it holds")
	}
	if err := <-cause; !errors.Is(err, server.ErrShutdownCut) {
		t.Errorf("cause %v, want server.ErrShutdownCut", err)
	}
}

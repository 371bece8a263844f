package harness

import (
	"sync"
	"testing"
	"time"
)

// server is what the harness's php-fpm, redis-server and gunicorn share: at
// most one process at a time, started, stopped and restarted under one
// lock, so a test may stop a server from another goroutine while others use
// it. Each embeds it and sets launch.
type server struct {
	t  testing.TB
	mu sync.Mutex
	p  *proc
	// launch starts the process and waits until it serves; when it fails it
	// has stopped what it started. Called with mu held.
	launch func() (*proc, error)
}

// Start starts the server again after Stop, on the same address and
// configuration. It is a no-op while the server runs.
func (s *server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("harness: %v", err)
	}
}

func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil && !s.p.exited() {
		return nil
	}
	p, err := s.launch()
	if err != nil {
		return err
	}
	s.p = p
	return nil
}

// Stop terminates the server and its children (SIGTERM, then SIGKILL after
// 5 s) and waits for them. Safe to call twice and from any goroutine.
func (s *server) Stop() { s.stop(5 * time.Second) }

// discard kills the server and its children at once (SIGKILL) and waits
// for them: the t.Cleanup of a server whose test is over, where a graceful
// stop would only cost time and CPU. A Python server that forked its
// workers from a master that imported the app (gunicorn --preload) spends
// half a second of CPU per worker on a graceful exit, copying the pages
// the interpreter's teardown touches.
func (s *server) discard() { s.stop(0) }

// stop is Stop and discard: proc.stop with grace under the server's lock.
func (s *server) stop(grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		s.p.stop(grace)
	}
}

// Restart is Stop then Start: same address, new processes.
func (s *server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

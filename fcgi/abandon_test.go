package fcgi

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A request whose client left (an HTTP/2 stream reset, a closed tab)
// after it reached php-fpm still occupies its worker: php-fpm notices the
// closed connection only when the script writes, or runs it from its
// listen queue as if nothing happened. Its slot is held until the answer
// begins, so MaxConnsPerBackend still bounds what php-fpm runs for the
// gateway, while RoundTrip returns at once. Before, the slot was freed at
// the cancel: clients that each reset a request once it was sent (CVE-2023-44487's
// rapid reset) had the gateway dial a new connection per reset, and
// php-fpm ran the script for each of them, minutes of work for nobody,
// while legitimate requests queued behind.
func TestAbandonedRequestKeepsItsSlot(t *testing.T) {
	var running, maxRunning atomic.Int64
	// The script runs until the test has abandoned its requests.
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		n := running.Add(1)
		select {
		case started <- struct{}{}:
		default:
		}
		for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		running.Add(-1)
		respond(c, "Content-Type: text/plain\r\n", "late")
		return true
	})
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: 1}, srv.Addr())
	sent := make(chan struct{}, 1)
	tr.sentHook = func() {
		select {
		case sent <- struct{}{}:
		default:
		}
	}

	for i := range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		if i == 0 {
			// The first leaves once php-fpm runs it, the others while
			// they wait for its slot.
			go func() { <-sent; <-started; cancel() }()
		} else {
			time.AfterFunc(30*time.Millisecond, cancel)
		}
		_, err := tr.RoundTrip(newReq(ctx, "GET", "/", nil, nil))
		if StatusOf(err) != StatusClientClosedRequest {
			t.Fatalf("request %d, abandoned: %v (status %d), want 499", i, err, StatusOf(err))
		}
		if i == 0 && running.Load() != 1 {
			t.Fatal("RoundTrip returned only once php-fpm had answered the abandoned request")
		}
	}
	close(release)
	if got := maxRunning.Load(); got != 1 {
		t.Errorf("php-fpm ran %d requests at once with MaxConnsPerBackend 1", got)
	}
	if got := len(srv.Requests()); got != 1 {
		t.Errorf("php-fpm got %d requests: the ones abandoned while the first held the slot should never reach it", got)
	}
	waitFor(t, "the slot freed once php-fpm answered", func() bool { return tr.Stats()[0].Open == 0 })
	if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || body != "late" {
		t.Fatalf("a request after: %q %v", body, err)
	}
}

// An abandoned request whose php-fpm never answers (a script hung with no
// request_terminate_timeout, a worker that never took the connection)
// frees its slot once ReadTimeout has passed, as the request would have
// with its client still there: the slot is not lost, and the busy count
// comes back to 0.
func TestAbandonedRequestFreesItsSlotAtTheReadTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		<-release
		return false
	})
	const readTimeout = time.Second
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: 1, ReadTimeout: readTimeout}, srv.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	tr.sentHook = cancel // php-fpm has the request whole
	start := time.Now()
	if _, err := tr.RoundTrip(newReq(ctx, "GET", "/", nil, nil)); StatusOf(err) != StatusClientClosedRequest {
		t.Fatalf("abandoned: %v (status %d), want 499", err, StatusOf(err))
	}
	// On a starved machine the read timeout may be over by now, and the
	// slot rightly free.
	if st, took := tr.Stats()[0], time.Since(start); st.Busy != 1 && took < readTimeout {
		t.Errorf("%v after the request began, right after the abandon: %+v, want its connection busy until php-fpm answers", took, st)
	}
	waitFor(t, "the slot freed at the read timeout", func() bool { st := tr.Stats()[0]; return st.Open == 0 && st.Busy == 0 })
	if took := time.Since(start); took < readTimeout {
		t.Errorf("the slot was freed after %v, before the read timeout", took)
	}
}

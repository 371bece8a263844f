package sessionbridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

type openResult struct {
	s   *Session
	err error
}

// openAsync opens session id in another request, which waits for its lock.
func openAsync(t *testing.T, m *Manager, id string) <-chan openResult {
	ch := make(chan openResult, 1)
	r := requestWithCookie(t, m, id)
	go func() {
		s, err := m.Open(context.Background(), r, false)
		ch <- openResult{s, err}
	}()
	return ch
}

// TestHoldWriteKeepsStrictLockUntilPHPEnds: PHP's write at the prepend's
// last shutdown function (write-hold) is stored at once, before the
// response headers leave, but keeps the session's lock: an object
// destructor may still change the session, and PHP's files handler keeps
// its lock until its final write. Another request of the session gets
// the session only with that final change in it, and nothing is merged.
func TestHoldWriteKeepsStrictLockUntilPHPEnds(t *testing.T) {
	for name, newStore := range handOverStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m := newTestManager(t, LockStrict, newStore(t))
			logs := captureLog(m)
			id := createSession(t, m, `{"n":0}`)
			b := newTestBridge(t, m, id)
			b.h.lateWriter(b.path) // a script seen changing its session after its shutdown write
			if err := b.apply(message{Op: opWriteHold, ID: id, Payload: []byte(`a:1:{s:1:"n";i:1;}`)}); err != nil {
				t.Fatal(err)
			}
			if got := string(storedRecord(t, m, id).Data); got != `{"n":1}` {
				t.Fatalf("after write-hold the store holds %s, want {\"n\":1}", got)
			}
			other := openAsync(t, m, id)
			select {
			case r := <-other:
				t.Fatalf("another request got the session while PHP may still change it (err %v)", r.err)
			case <-time.After(200 * time.Millisecond):
			}
			// A destructor's change: PHP's final write, over stderr.
			if err := b.apply(message{Op: "write", ID: id, Payload: []byte(`a:2:{s:1:"n";i:1;s:1:"d";i:1;}`)}); err != nil {
				t.Fatal(err)
			}
			r := <-other
			if r.err != nil {
				t.Fatal(r.err)
			}
			if got := string(r.s.Data()); got != `{"n":1,"d":1}` {
				t.Errorf("the next request was given %s, want {\"n\":1,\"d\":1}", got)
			}
			if _, err := r.s.Write(ctx, id, []byte(`{"n":2,"d":1}`), nil); err != nil {
				t.Fatal(err)
			}
			r.s.Release(ctx)
			if got := string(storedRecord(t, m, id).Data); got != `{"n":2,"d":1}` {
				t.Errorf("stored at the end %s, want {\"n\":2,\"d\":1}", got)
			}
			if strings.Contains(logs.String(), "overrode") {
				t.Errorf("a strict-mode request merged:\n%s", logs)
			}
		})
	}
}

// TestHoldTouchKeepsStrictLockUntilRelease: an unchanged session at the
// prepend's last shutdown function (touch-hold), then no change after it:
// the lock goes when the request releases it (PHP ended, headers out).
func TestHoldTouchKeepsStrictLockUntilRelease(t *testing.T) {
	for name, newStore := range handOverStores {
		t.Run(name, func(t *testing.T) {
			m := newTestManager(t, LockStrict, newStore(t))
			id := createSession(t, m, `{"n":0}`)
			b := newTestBridge(t, m, id)
			b.h.lateWriter(b.path) // a script seen changing its session after its shutdown write
			b.phpEnded = true      // releaseOnceBoth waits for the headers only
			if err := b.apply(message{Op: opTouchHold, ID: id}); err != nil {
				t.Fatal(err)
			}
			other := openAsync(t, m, id)
			select {
			case r := <-other:
				t.Fatalf("touch-hold let the lock go (err %v)", r.err)
			case <-time.After(200 * time.Millisecond):
			}
			b.headersHandled()
			r := <-other
			if r.err != nil {
				t.Fatal(r.err)
			}
			r.s.Release(context.Background())
		})
	}
}

// TestHoldWriteFailureIsReported: a write-hold the store fails is the
// request's failure (a 503 before the headers leave), as a write's is.
func TestHoldWriteFailureIsReported(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"n":0}`)
	b := newTestBridge(t, m, id)
	m.o.Store.Close()
	err := b.apply(message{Op: opWriteHold, ID: id, Payload: []byte(`a:1:{s:1:"n";i:1;}`)})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write-hold on a closed store: %v, want ErrUnavailable", err)
	}
}

// TestHoldInMergeModeIsAWrite: merge mode holds no lock; write-hold and
// touch-hold are its write and touch.
func TestHoldInMergeModeIsAWrite(t *testing.T) {
	m := newTestManager(t, LockMerge, nil)
	id := createSession(t, m, `{"n":0}`)
	b := newTestBridge(t, m, id)
	if err := b.apply(message{Op: opWriteHold, ID: id, Payload: []byte(`a:1:{s:1:"n";i:1;}`)}); err != nil {
		t.Fatal(err)
	}
	if got := string(storedRecord(t, m, id).Data); got != `{"n":1}` {
		t.Fatalf("stored %s", got)
	}
	if err := b.apply(message{Op: opTouchHold, ID: id}); err != nil {
		t.Fatal(err)
	}
}

// TestPHPFeaturesParamNamesHold: the prepend sends the hold messages only
// to a gateway that names them (an older one refuses an unknown message),
// and the gateway names them when the request holds the session's lock.
func TestPHPFeaturesParamNamesHold(t *testing.T) {
	for _, c := range []struct {
		mode    LockMode
		session bool
		want    string
	}{
		{LockStrict, true, "hold"},
		{LockStrict, false, ""},
		{LockMerge, true, ""},
	} {
		m := newTestManager(t, c.mode, nil)
		id := ""
		if c.session {
			id = createSession(t, m, `{"n":0}`)
		}
		got := ""
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, p := range fcgi.ScriptFrom(r.Context()).Extra {
				if p.Name == "SESSIONGATE_FEATURES" {
					got = p.Value
				}
			}
		})
		r := requestWithCookie(t, m, id)
		r = r.WithContext(fcgi.WithScript(r.Context(), &fcgi.Script{ScriptName: "/t.php"}))
		m.PHPHandler(next, PHPOptions{}).ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("%s, session %v: SESSIONGATE_FEATURES %q, want %q", c.mode, c.session, got, c.want)
		}
	}
}

// TestHoldWriteReachesTheNextLocalHolder: a write-hold and no change after
// it; the lock goes with the request's release, and a request of the same
// gateway waiting for it is handed the record the write-hold stored (the
// Redis store hands its lock over locally with the record the release
// leaves, not the one it was taken with).
func TestHoldWriteReachesTheNextLocalHolder(t *testing.T) {
	for name, newStore := range handOverStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m := newTestManager(t, LockStrict, newStore(t))
			id := createSession(t, m, `{"n":0}`)
			b := newTestBridge(t, m, id)
			if err := b.apply(message{Op: opWriteHold, ID: id, Payload: []byte(`a:1:{s:1:"n";i:1;}`)}); err != nil {
				t.Fatal(err)
			}
			other := openAsync(t, m, id)
			time.Sleep(100 * time.Millisecond) // queued for the lock
			b.sess.Release(ctx)
			r := <-other
			if r.err != nil {
				t.Fatal(r.err)
			}
			if got := string(r.s.Data()); got != `{"n":1}` {
				t.Errorf("the next request was given %s, want {\"n\":1}", got)
			}
			if _, err := r.s.Write(ctx, id, []byte(`{"n":2}`), nil); err != nil {
				t.Fatal(err)
			}
			r.s.Release(ctx)
			if got := string(storedRecord(t, m, id).Data); got != `{"n":2}` {
				t.Errorf("stored at the end %s, want {\"n\":2}", got)
			}
		})
	}
}

// vanishingStore hands out leases whose lock Redis lost (a failover to a
// replica that never got it), once armed.
type vanishingStore struct {
	store.Store
	armed bool
}

func (v *vanishingStore) Lock(ctx context.Context, id string, ttl time.Duration) (store.Lease, store.Record, error) {
	l, rec, err := v.Store.Lock(ctx, id, ttl)
	if err != nil || !v.armed {
		return l, rec, err
	}
	return vanishedLease{l}, rec, nil
}

type vanishedLease struct{ store.Lease }

var errVanished = fmt.Errorf("%w: %w", store.ErrLeaseLost, store.ErrLockVanished)

func (l vanishedLease) Renew(context.Context, time.Duration) error { return errVanished }

func (l vanishedLease) Unlock(ctx context.Context, m store.Mutation) (uint64, error) {
	l.Lease.Unlock(ctx, store.Mutation{Kind: store.Keep})
	return 0, errVanished
}

// TestHoldWriteUnderALostLockIsRefused: the store's Save ignores locks, so
// a write-hold must make sure the lock is still the request's first: a
// write under a lock Redis lost is refused (503), as the write and release
// in one step refuses it, and nothing is stored.
func TestHoldWriteUnderALostLockIsRefused(t *testing.T) {
	vs := &vanishingStore{Store: memory.New(memory.Options{})}
	t.Cleanup(func() { vs.Store.Close() })
	m := newTestManager(t, LockStrict, vs)
	id := createSession(t, m, `{"n":0}`)
	vs.armed = true
	b := newTestBridge(t, m, id)
	err := b.apply(message{Op: opWriteHold, ID: id, Payload: []byte(`a:1:{s:1:"n";i:1;}`)})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, store.ErrLockVanished) {
		t.Fatalf("write-hold under a lost lock: %v, want ErrUnavailable (lock vanished)", err)
	}
	if got := string(storedRecord(t, m, id).Data); got != `{"n":0}` {
		t.Errorf("stored %s under a lost lock, want {\"n\":0}", got)
	}
}

// A script not seen changing its session after the prepend's shutdown
// write lets the lock go at that write (a busy session's other requests
// need not wait for PHP's shutdown); one that then sends a late change is
// learnt, and from its next request on the write keeps the lock.
func TestHoldLearnsTheScriptsThatChangeLate(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, memory.New(memory.Options{}))
	id := createSession(t, m, `{"n":0}`)
	b := newTestBridge(t, m, id)
	b.path = "/cart.php"
	if err := b.apply(message{Op: opWriteHold, ID: id, Payload: []byte(`a:1:{s:1:"n";i:1;}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-openAsync(t, m, id):
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.s.Release(ctx)
	case <-time.After(2 * time.Second):
		t.Fatal("a script never seen changing late kept the lock past its shutdown write")
	}
	if b.h.holdsFor("/cart.php") {
		t.Fatal("learnt before any late change")
	}
	if err := b.apply(message{Op: "write", ID: id, Payload: []byte(`a:2:{s:1:"n";i:1;s:1:"d";i:1;}`)}); err != nil {
		t.Fatal(err)
	}
	if !b.h.holdsFor("/cart.php") || b.h.holdsFor("/other.php") {
		t.Fatalf("after a late change: holds /cart.php %v, /other.php %v; want true, false", b.h.holdsFor("/cart.php"), b.h.holdsFor("/other.php"))
	}
}

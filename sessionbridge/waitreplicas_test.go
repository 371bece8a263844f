package sessionbridge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

// newWaitingManagers opens two managers in mode over one miniredis, one
// whose store waits for a replica after each write
// (SESSIONGATE_REDIS_WAIT_REPLICAS=1) and one that does not. miniredis has
// no replica, so every WAIT answers 0 at once: the waiting store is a
// master whose replica is away. waits counts the WAITs the waiting store
// sent.
func newWaitingManagers(t *testing.T, mode LockMode) (plain, waiting *Manager, waits *atomic.Int64) {
	t.Helper()
	mr := miniredis.RunT(t)
	waits = new(atomic.Int64)
	open := func(replicas int) *Manager {
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { c.Close() })
		if replicas > 0 {
			c.AddHook(waitCounter{waits})
		}
		st, err := redisstore.New(c, redisstore.Options{WaitReplicas: replicas, WaitTimeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		m := newTestManager(t, mode, st)
		m.o.IdleTimeout = 2 * time.Hour
		return m
	}
	return open(0), open(1), waits
}

// waitCounter is a go-redis hook counting the WAIT commands sent (alone or
// in a pipeline).
type waitCounter struct{ n *atomic.Int64 }

func (waitCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (w waitCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		w.count(cmd)
		return next(ctx, cmd)
	}
}

func (w waitCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			w.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (w waitCounter) count(cmd redis.Cmder) {
	if strings.EqualFold(cmd.Name(), "wait") {
		w.n.Add(1)
	}
}

// TestReadOnlyRequestDoesNotWaitForReplicas: with
// SESSIONGATE_REDIS_WAIT_REPLICAS only a change of the session waits for
// the replicas (README "Store"). A request that only reads its session
// rewrites the record when its last-use time is due (seenRefresh): that is
// bookkeeping, and while a replica is away it must not fail the request,
// which would answer a read-only PHP page or Django view 503. Both lock
// modes (the strict release's Put, the merge mode's Save), both ends of a
// read-only request (PHP's lazy write and Django's touch, and the release
// of one that never wrote, PHP's read_and_close). None sends a WAIT (a
// merge-mode refresh that waited in vain fell back to a TTL refresh, after
// the whole wait). A change still waits.
func TestReadOnlyRequestDoesNotWaitForReplicas(t *testing.T) {
	for name, mode := range map[string]LockMode{"strict": LockStrict, "merge": LockMerge} {
		t.Run(name, func(t *testing.T) {
			plain, waiting, waits := newWaitingManagers(t, mode)
			id := createSession(t, plain, `{"user":"ana"}`)
			ctx := context.Background()
			clock := time.Now()
			waiting.now = func() time.Time { return clock }
			for _, end := range []string{"touch", "release"} {
				// Beyond seenRefresh: the request writes the last use.
				clock = clock.Add(10 * time.Minute)
				s, err := waiting.Open(ctx, requestWithCookie(t, waiting, id), false)
				if err != nil || s.ID() != id {
					t.Fatalf("%s: open: %v %q", end, err, s.ID())
				}
				if end == "touch" {
					if err := s.Touch(ctx, id); err != nil {
						t.Errorf("a request that only read its session failed its touch for want of a replica: %v", err)
					}
				}
				s.Release(ctx)
				rec := storedRecord(t, plain, id)
				if rec.Seen != ms(clock) {
					t.Errorf("%s: the last use stored is %v, want the request's %v", end, time.UnixMilli(rec.Seen), clock)
				}
				if n := waits.Swap(0); n != 0 {
					t.Errorf("%s: a request that only read its session sent %d WAIT", end, n)
				}
			}

			s, err := waiting.Open(ctx, requestWithCookie(t, waiting, id), false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(ctx, id, []byte(`{"user":"bea"}`), nil); !errors.Is(err, ErrUnavailable) || waits.Load() == 0 {
				t.Errorf("a change while the replica is away: %v after %d WAIT, want ErrUnavailable after a WAIT", err, waits.Load())
			}
			s.Release(ctx)
		})
	}
}

// TestReadOnlyPHPPageWhileAReplicaIsAway: the same through the PHP bridge,
// a page that only read its session (the prepend's "touch") once its last
// use is due to be written: 200, not "session could not be saved" (503).
func TestReadOnlyPHPPageWhileAReplicaIsAway(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	plain, waiting, _ := newWaitingManagers(t, LockStrict)
	id := createSession(t, plain, `{"user":"ana"}`)
	later := time.Now().Add(10 * time.Minute)
	waiting.now = func() time.Time { return later }

	b := newFramingBridge(t, waiting, id, nonce)
	b.onStderr([]byte(phpFrames(nonce, 0, "touch", id, "", 800)))
	rec := httptest.NewRecorder()
	w := &bridgeWriter{ResponseWriter: rec, req: httptest.NewRequest("GET", "/", nil), b: b}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("hello ana"))
	if rec.Code != http.StatusOK || rec.Body.String() != "hello ana" {
		t.Errorf("a PHP page that only read its session got %d %q while a replica is away", rec.Code, rec.Body.String())
	}
	b.sess.Release(context.Background())
	b.finish()
}

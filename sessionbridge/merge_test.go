package sessionbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// TestMergeSecondWriteKeepsChangesMergedIntoTheFirst: a request that writes
// twice (PHP session_start after session_write_close works on its own copy)
// must not undo, in its second write, what other requests stored before its
// first write and that the first write merged in.
func TestMergeSecondWriteKeepsChangesMergedIntoTheFirst(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	id := createSession(t, m, `{"mine":0,"gone":1,"x":1}`)
	slow, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	// Another request adds a key, deletes one and changes one.
	other, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	if _, err := other.Write(ctx, id, json.RawMessage(`{"mine":0,"x":2,"added":true}`), nil); err != nil {
		t.Fatal(err)
	}
	// The slow request writes its own key twice, from its own copy.
	if _, err := slow.Write(ctx, id, json.RawMessage(`{"mine":1,"gone":1,"x":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Write(ctx, id, json.RawMessage(`{"mine":2,"gone":1,"x":1}`), nil); err != nil {
		t.Fatal(err)
	}
	s3, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	if got, want := string(s3.Data()), `{"mine":2,"x":2,"added":true}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// TestMergeManyConcurrentWritersLoseNothing: 32 requests of one session, each
// setting its own key at the same moment, all succeed and all keys survive.
func TestMergeManyConcurrentWritersLoseNothing(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	id := createSession(t, m, `{"start":1}`)
	const n = 32
	sessions := make([]*Session, n)
	for i := range sessions {
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		sessions[i] = s
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.Write(ctx, id, json.RawMessage(fmt.Sprintf(`{"start":1,"k%d":%d}`, i, i)), nil)
			if err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	got, err := objectMembers(s.Data())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n+1 {
		t.Fatalf("%d keys, want %d: %s", len(got), n+1, s.Data())
	}
}

// racingStore lets another writer change the session (key "other") just
// before each of the first n compare-and-sets, so each of them loses.
// The first of them takes slow as well, as a large write does on a loaded
// Redis.
type racingStore struct {
	store.Store
	mu    sync.Mutex
	n     int
	races int
	slow  time.Duration
}

func (r *racingStore) Save(ctx context.Context, id string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	r.mu.Lock()
	if expect != 0 && r.races < r.n {
		if r.races == 0 {
			time.Sleep(r.slow)
		}
		r.races++
		cur, err := r.Store.Load(ctx, id)
		if err != nil {
			r.mu.Unlock()
			return 0, err
		}
		rec, _ := decodeRecord(cur.Value)
		rec.Data = json.RawMessage(fmt.Sprintf(`{"mine":0,"other":%d}`, r.races))
		if _, err := r.Store.Save(ctx, id, cur.Version, rec.encode(), ttl); err != nil {
			r.mu.Unlock()
			return 0, err
		}
	}
	r.mu.Unlock()
	return r.Store.Save(ctx, id, expect, value, ttl)
}

func newMergeManager(t *testing.T, st store.Store, lockTimeout time.Duration) *Manager {
	t.Helper()
	m, err := New(Options{
		Store:        st,
		Secrets:      [][]byte{[]byte(testSecret)},
		Cookie:       CookieOptions{Name: "sessionid", MaxAge: time.Hour},
		IdleTimeout:  10 * time.Minute,
		LockMode:     LockMerge,
		LockTimeout:  lockTimeout,
		LockLease:    5 * time.Second,
		StoreTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// racingWrite writes {"mine":1,"other":0} over the session
// {"mine":0,"other":0} while n other writes land before its
// compare-and-sets (racingStore), the first of them taking slow, and
// returns the write's error and what the session holds after it, read
// with the races over.
func racingWrite(t *testing.T, lockTimeout time.Duration, n int, slow time.Duration) (string, error) {
	t.Helper()
	ctx := context.Background()
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	rs := &racingStore{Store: mem}
	m := newMergeManager(t, rs, lockTimeout)
	id := createSession(t, m, `{"mine":0,"other":0}`)
	s, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	rs.mu.Lock()
	rs.n, rs.slow = n, slow
	rs.mu.Unlock()
	_, err := s.Write(ctx, id, json.RawMessage(`{"mine":1,"other":0}`), nil)
	rs.mu.Lock()
	rs.n = 0
	rs.mu.Unlock()
	after, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	return string(after.Data()), err
}

// TestMergeWriteOutlastsManyLostCompareAndSets: a write that loses its
// compare-and-set 40 times in a row (40 other writes landed first) still
// succeeds and keeps the others' change.
func TestMergeWriteOutlastsManyLostCompareAndSets(t *testing.T) {
	got, err := racingWrite(t, time.Minute, 40, 0)
	if want := `{"mine":1,"other":40}`; err != nil || got != want {
		t.Fatalf("got %s %v, want %s", got, err, want)
	}
}

// TestMergeWriteSlowerThanLockTimeoutTriesAgain: a write whose first
// compare-and-set takes longer than SESSIONGATE_SESSION_LOCK_TIMEOUT (a
// large session on a loaded Redis) and loses it is tried again. The
// timeout bounds the retries, not the write itself: counted from before
// the first try, it left none, and the request got 503 with its change
// lost though no other write was still in the way.
func TestMergeWriteSlowerThanLockTimeoutTriesAgain(t *testing.T) {
	got, err := racingWrite(t, 50*time.Millisecond, 1, 100*time.Millisecond)
	if want := `{"mine":1,"other":1}`; err != nil || got != want {
		t.Fatalf("got %s %v, want %s", got, err, want)
	}
}

// TestMergeWriteThatAlwaysLosesIsBusy: a write that never wins its
// compare-and-set gives up (no endless loop) with ErrBusy, and nothing of
// it is stored.
func TestMergeWriteThatAlwaysLosesIsBusy(t *testing.T) {
	got, err := racingWrite(t, 50*time.Millisecond, math.MaxInt, 0)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
	if strings.Contains(got, `"mine":1`) {
		t.Fatalf("a write that gave up was stored: %s", got)
	}
}

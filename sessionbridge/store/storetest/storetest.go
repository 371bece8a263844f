// Package storetest is the conformance suite every store.Store must pass:
// memory, Redis standalone (miniredis and a real redis-server) and a real
// Redis Cluster all run the same tests, so the session manager can rely on
// the contract documented in package store and nothing else.
//
// Timing: expiry and lease tests use TTLs of a few hundred milliseconds and
// check with wide margins on both sides, so a loaded CI machine makes them
// slower, not flaky.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// NewPair returns two stores on ONE backend, both closed by t.Cleanup. For a
// backend that cannot be shared between instances (memory) return the same
// store twice. Each call must give a namespace no earlier call used (a fresh
// server, database or key prefix), so subtests do not see each other's
// sessions.
type NewPair func(t *testing.T) (a, b store.Store)

// Run runs the whole suite as subtests of t. Subtests run in parallel with
// each other only where they do not depend on timing.
func Run(t *testing.T, newPair NewPair) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"LoadAbsent", testLoadAbsent},
		{"SaveAndConflict", testSaveAndConflict},
		{"VersionsNeverReused", testVersionsNeverReused},
		{"EmptyValueIsPresent", testEmptyValue},
		{"ValuesAreCopied", testValuesAreCopied},
		{"TTLExpiry", testTTLExpiry},
		{"UseRestoresTheLastTTL", testUseRestoresTheLastTTL},
		{"Touch", testTouch},
		{"Delete", testDelete},
		{"SaveIgnoresLock", testSaveIgnoresLock},
		{"SaveUnderLockReachesTheNextHolder", testSaveUnderLockReachesTheNextHolder},
		{"LockExcludes", testLockExcludes},
		{"LockAcrossInstances", testLockAcrossInstances},
		{"LockDistinctSessionsIndependent", testLockDistinct},
		{"UnlockKeep", testUnlockKeep},
		{"UnlockPut", testUnlockPut},
		{"UnlockDelete", testUnlockDelete},
		{"UnlockTwice", testUnlockTwice},
		{"LeaseExpiryTakeover", testLeaseExpiryTakeover},
		{"LeaseExpiredNoWaiter", testLeaseExpiredNoWaiter},
		{"RenewOutlivesLease", testRenewOutlivesLease},
		{"RenewAfterLossIsLeaseLost", testRenewAfterLoss},
		{"RenewAfterUnlock", testRenewAfterUnlock},
		{"RenewRightAfterHandOver", testRenewAfterHandOver},
		{"LockTimeout", testLockTimeout},
		{"NoLostUpdateLocked", testNoLostUpdateLocked},
		{"NoLostUpdateCAS", testNoLostUpdateCAS},
		{"NoLostUpdateManySessions", testNoLostUpdateManySessions},
		{"BinaryValues", testBinaryValues},
		{"BigValue", testBigValue},
		{"ManySessions", testManySessions},
		{"Ping", testPing},
		{"LoginRegistry", testLoginRegistry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t)
			tc.fn(t, a, b)
		})
	}
}

var idSeq atomic.Uint64

// newID returns a session ID unique within the test binary, shaped like the
// manager's (URL-safe, no braces).
func newID() string {
	return fmt.Sprintf("storetest-%d-%d", time.Now().UnixNano(), idSeq.Add(1))
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustLoad(t *testing.T, s store.Store, id string) store.Record {
	t.Helper()
	r, err := s.Load(ctxT(t, 5*time.Second), id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func mustSave(t *testing.T, s store.Store, id string, expect uint64, v []byte, ttl time.Duration) uint64 {
	t.Helper()
	ver, err := s.Save(ctxT(t, 5*time.Second), id, expect, v, ttl)
	if err != nil {
		t.Fatalf("Save(expect %d): %v", expect, err)
	}
	if ver == 0 {
		t.Fatalf("Save returned version 0")
	}
	return ver
}

func mustLock(t *testing.T, s store.Store, id string, lease time.Duration) (store.Lease, store.Record) {
	t.Helper()
	l, r, err := s.Lock(ctxT(t, 10*time.Second), id, lease)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	return l, r
}

func mustUnlock(t *testing.T, l store.Lease, m store.Mutation) uint64 {
	t.Helper()
	v, err := l.Unlock(ctxT(t, 5*time.Second), m)
	if err != nil {
		t.Fatalf("Unlock(%v): %v", m.Kind, err)
	}
	return v
}

// lockResult is what a Lock call returned.
type lockResult struct {
	l   store.Lease
	r   store.Record
	err error
}

// lockLater calls s.Lock(id, lease) on a goroutine of its own, waiting up
// to wait, and sends what it returned. released, when not nil, says
// whether the holder has let the lock go: a Lock that returns before is
// the error released names.
func lockLater(t *testing.T, s store.Store, id string, wait, lease time.Duration, released func() error) <-chan lockResult {
	got := make(chan lockResult, 1)
	go func() {
		l, r, err := s.Lock(ctxT(t, wait), id, lease)
		if err == nil && released != nil {
			err = released()
		}
		got <- lockResult{l, r, err}
	}()
	return got
}

func wantRecord(t *testing.T, got store.Record, value []byte, version uint64) {
	t.Helper()
	if got.Version != version || !bytes.Equal(got.Value, value) {
		t.Fatalf("record = {%.40q, v%d}, want {%.40q, v%d}", got.Value, got.Version, value, version)
	}
	if version == 0 && got.Value != nil {
		t.Fatalf("absent record has non-nil value %q", got.Value)
	}
}

func testLoadAbsent(t *testing.T, a, _ store.Store) {
	wantRecord(t, mustLoad(t, a, newID()), nil, 0)
}

func testSaveAndConflict(t *testing.T, a, b store.Store) {
	id := newID()
	v1 := mustSave(t, a, id, 0, []byte("one"), time.Minute)
	wantRecord(t, mustLoad(t, b, id), []byte("one"), v1)

	if _, err := b.Save(ctxT(t, 5*time.Second), id, 0, []byte("again"), time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("create over existing record: err = %v, want ErrConflict", err)
	}
	v2 := mustSave(t, b, id, v1, []byte("two"), time.Minute)
	if v2 == v1 {
		t.Fatalf("version did not change on write: %d", v2)
	}
	if _, err := a.Save(ctxT(t, 5*time.Second), id, v1, []byte("stale"), time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("save with stale version: err = %v, want ErrConflict", err)
	}
	if _, err := a.Save(ctxT(t, 5*time.Second), newID(), 12345, []byte("x"), time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("save expecting a version of an absent record: err = %v, want ErrConflict", err)
	}
	wantRecord(t, mustLoad(t, a, id), []byte("two"), v2)
}

// A record deleted and created again must not reuse a version a stale
// compare-and-set still holds, or that CAS would overwrite the new record.
func testVersionsNeverReused(t *testing.T, a, b store.Store) {
	id := newID()
	seen := map[uint64]bool{}
	v := mustSave(t, a, id, 0, []byte("1"), time.Minute)
	seen[v] = true
	for i := range 5 {
		v = mustSave(t, b, id, v, []byte(strconv.Itoa(i)), time.Minute)
		if seen[v] {
			t.Fatalf("version %d reused", v)
		}
		seen[v] = true
	}
	old := v
	if err := a.Delete(ctxT(t, 5*time.Second), id); err != nil {
		t.Fatal(err)
	}
	v = mustSave(t, b, id, 0, []byte("reborn"), time.Minute)
	if v == old {
		t.Fatalf("recreated record got the version of the deleted one (%d)", v)
	}
	if _, err := a.Save(ctxT(t, 5*time.Second), id, old, []byte("stale"), time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CAS with the deleted record's version: err = %v, want ErrConflict", err)
	}
}

func testEmptyValue(t *testing.T, a, b store.Store) {
	id := newID()
	v := mustSave(t, a, id, 0, []byte{}, time.Minute)
	r := mustLoad(t, b, id)
	if r.Version != v || len(r.Value) != 0 {
		t.Fatalf("empty record = %+v, want version %d and no bytes", r, v)
	}
}

func testValuesAreCopied(t *testing.T, a, _ store.Store) {
	id := newID()
	buf := []byte("original")
	v := mustSave(t, a, id, 0, buf, time.Minute)
	copy(buf, "XXXXXXXX")
	r := mustLoad(t, a, id)
	wantRecord(t, r, []byte("original"), v)
	copy(r.Value, "YYYYYYYY")
	wantRecord(t, mustLoad(t, a, id), []byte("original"), v)

	l, r2 := mustLock(t, a, id, 5*time.Second)
	copy(r2.Value, "ZZZZZZZZ")
	put := []byte("put-value")
	v2 := mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: put, TTL: time.Minute})
	copy(put, "QQQQQQQQQ")
	wantRecord(t, mustLoad(t, a, id), []byte("put-value"), v2)
}

func testTTLExpiry(t *testing.T, a, b store.Store) {
	t.Parallel()
	short, never := newID(), newID()
	v := mustSave(t, a, short, 0, []byte("short"), 300*time.Millisecond)
	mustSave(t, a, never, 0, []byte("never"), 0)
	wantRecord(t, mustLoad(t, b, short), []byte("short"), v)
	time.Sleep(900 * time.Millisecond)
	wantRecord(t, mustLoad(t, b, short), nil, 0)
	if r := mustLoad(t, b, never); !bytes.Equal(r.Value, []byte("never")) {
		t.Fatalf("record saved with TTL 0 expired: %+v", r)
	}
	// An expired record is absent for CAS too.
	mustSave(t, b, short, 0, []byte("new"), time.Minute)
}

// testUseRestoresTheLastTTL: Load and Lock, a lock handed over to a waiter
// included, count as a use of a present record: it gets the TTL its last
// write or refresh gave it again (package store), so a request that began
// shortly before that TTL ran out still finds the record when it ends.
// Never a longer TTL than that last one. The waits are fractions of the
// TTL counted from the writes and the uses, not sleeps after the calls
// between them: with a 1 s TTL and fixed sleeps, the calls' own time on a
// loaded machine (-race, six packages at a time) let the record expire
// before its first use.
func testUseRestoresTheLastTTL(t *testing.T, a, b store.Store) {
	t.Parallel()
	const ttl = 3 * time.Second
	written := time.Now()
	loaded, locked, handed := newID(), newID(), newID()
	lv := mustSave(t, a, loaded, 0, []byte("loaded"), ttl)
	kv := mustSave(t, a, locked, 0, []byte("locked"), ttl)
	hv := mustSave(t, a, handed, 0, []byte("handed"), time.Minute)
	// A Keep with a TTL is what the handed record was last given.
	l, _ := mustLock(t, a, handed, 10*time.Second)
	mustUnlock(t, l, store.Mutation{Kind: store.Keep, TTL: ttl})
	// Shortened by its last refresh: a use gives it that, not the
	// minute it was saved with.
	short := newID()
	sv := mustSave(t, a, short, 0, []byte("short"), time.Minute)
	if err := a.Touch(ctxT(t, 5*time.Second), short, sv, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	wantRecord(t, mustLoad(t, b, short), []byte("short"), sv)

	holder, _ := mustLock(t, a, handed, 10*time.Second)
	waiter := lockLater(t, a, handed, 10*time.Second, 10*time.Second, nil)
	time.Sleep(time.Until(written.Add(ttl * 7 / 10)))
	used := time.Now()
	wantRecord(t, mustLoad(t, b, loaded), []byte("loaded"), lv)
	kl, kr := mustLock(t, b, locked, 10*time.Second)
	wantRecord(t, kr, []byte("locked"), kv)
	// Released without a TTL: the expiry stays as the lock made it.
	mustUnlock(t, kl, store.Mutation{Kind: store.Keep})
	// Handed to the waiter (in process where the store does that)
	// without a TTL: taking the lock is the waiter's use.
	mustUnlock(t, holder, store.Mutation{Kind: store.Keep})
	w := <-waiter
	if w.err != nil {
		t.Fatal(w.err)
	}
	wantRecord(t, w.r, []byte("handed"), hv)
	mustUnlock(t, w.l, store.Mutation{Kind: store.Keep})

	// Past the TTL since the last write, 0.7 of it since the uses.
	time.Sleep(time.Until(used.Add(ttl * 7 / 10)))
	wantRecord(t, mustLoad(t, a, loaded), []byte("loaded"), lv)
	wantRecord(t, mustLoad(t, a, locked), []byte("locked"), kv)
	wantRecord(t, mustLoad(t, a, handed), []byte("handed"), hv)
	if r := mustLoad(t, a, short); r.Version != 0 {
		t.Fatalf("a load gave a record the minute it was saved with, not the 300 ms of its last refresh: %+v", r)
	}
}

func testTouch(t *testing.T, a, b store.Store) {
	t.Parallel()
	id := newID()
	v := mustSave(t, a, id, 0, []byte("x"), 400*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	if err := b.Touch(ctxT(t, 5*time.Second), id, v, 3*time.Second); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	// A touch expecting another version (a stale one) changes nothing.
	stale := newID()
	sv := mustSave(t, a, stale, 0, []byte("old"), time.Minute)
	sv2 := mustSave(t, a, stale, sv, []byte("new"), 400*time.Millisecond)
	if err := b.Touch(ctxT(t, 5*time.Second), stale, sv, 3*time.Second); err != nil {
		t.Fatalf("Touch stale: %v", err)
	}
	time.Sleep(700 * time.Millisecond) // past the original TTL
	wantRecord(t, mustLoad(t, a, id), []byte("x"), v)
	if r := mustLoad(t, a, stale); r.Version != 0 {
		t.Fatalf("a touch of version %d extended version %d: %+v", sv, sv2, r)
	}

	// Touch with ttl <= 0 changes nothing; Touch of an absent record does
	// not create it.
	if err := a.Touch(ctxT(t, 5*time.Second), id, v, 0); err != nil {
		t.Fatalf("Touch(0): %v", err)
	}
	wantRecord(t, mustLoad(t, a, id), []byte("x"), v)
	absent := newID()
	if err := a.Touch(ctxT(t, 5*time.Second), absent, v, time.Minute); err != nil {
		t.Fatalf("Touch absent: %v", err)
	}
	wantRecord(t, mustLoad(t, b, absent), nil, 0)

	// Touch can also shorten.
	if err := a.Touch(ctxT(t, 5*time.Second), id, v, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(900 * time.Millisecond)
	wantRecord(t, mustLoad(t, b, id), nil, 0)
}

func testDelete(t *testing.T, a, b store.Store) {
	id := newID()
	mustSave(t, a, id, 0, []byte("x"), time.Minute)
	if err := b.Delete(ctxT(t, 5*time.Second), id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantRecord(t, mustLoad(t, a, id), nil, 0)
	if err := b.Delete(ctxT(t, 5*time.Second), id); err != nil {
		t.Fatalf("Delete absent: %v", err)
	}
}

func testSaveIgnoresLock(t *testing.T, a, b store.Store) {
	id := newID()
	l, _ := mustLock(t, a, id, 5*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := b.Save(ctxT(t, 5*time.Second), id, 0, []byte("merge"), time.Minute)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Save while locked: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Save waited for the lock")
	}
	mustUnlock(t, l, store.Mutation{Kind: store.Keep})
}

// testSaveUnderLockReachesTheNextHolder: a record saved while the lock is
// held (Save ignores locks) is the record the next holder gets, on the
// same instance too, where a store may hand the lock over with the record
// its holder's release leaves without reading it again (Redis does). Both
// a Keep and a Put release: the Put's version follows the saved one.
func testSaveUnderLockReachesTheNextHolder(t *testing.T, a, _ store.Store) {
	for _, put := range []bool{false, true} {
		id := newID()
		v0 := mustSave(t, a, id, 0, []byte("loaded"), time.Minute)
		l, r := mustLock(t, a, id, 10*time.Second)
		wantRecord(t, r, []byte("loaded"), v0)
		got := lockLater(t, a, id, 10*time.Second, 10*time.Second, nil)
		time.Sleep(200 * time.Millisecond) // the second Lock waits
		saved := mustSave(t, a, id, v0, []byte("saved"), time.Minute)
		want, wantV := []byte("saved"), saved
		if put {
			want = []byte("put")
			wantV = mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: want, TTL: time.Minute})
		} else {
			mustUnlock(t, l, store.Mutation{Kind: store.Keep})
		}
		x := <-got
		if x.err != nil {
			t.Fatal(x.err)
		}
		wantRecord(t, x.r, want, wantV)
		wantRecord(t, mustLoad(t, a, id), want, wantV)
		mustUnlock(t, x.l, store.Mutation{Kind: store.Keep})
	}
}

// lockExcludes: while one holder has the lock the second locker waits, then
// sees the holder's write.
func lockExcludes(t *testing.T, a, b store.Store) {
	id := newID()
	l1, r := mustLock(t, a, id, 10*time.Second)
	wantRecord(t, r, nil, 0)

	var released atomic.Bool
	got := lockLater(t, b, id, 10*time.Second, 10*time.Second, func() error {
		if !released.Load() {
			return errors.New("second Lock returned while the first holder still held the lock")
		}
		return nil
	})
	select {
	case x := <-got:
		t.Fatalf("second Lock did not wait: %v", x.err)
	case <-time.After(400 * time.Millisecond):
	}
	released.Store(true)
	v := mustUnlock(t, l1, store.Mutation{Kind: store.Put, Value: []byte("first"), TTL: time.Minute})
	var x lockResult
	select {
	case x = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("second Lock still waiting 5s after Unlock")
	}
	if x.err != nil {
		t.Fatal(x.err)
	}
	wantRecord(t, x.r, []byte("first"), v)
	mustUnlock(t, x.l, store.Mutation{Kind: store.Keep})
}

func testLockExcludes(t *testing.T, a, _ store.Store) { lockExcludes(t, a, a) }

func testLockAcrossInstances(t *testing.T, a, b store.Store) { lockExcludes(t, a, b) }

func testLockDistinct(t *testing.T, a, b store.Store) {
	l1, _ := mustLock(t, a, newID(), 10*time.Second)
	defer mustUnlock(t, l1, store.Mutation{Kind: store.Keep})
	start := time.Now()
	l2, _, err := b.Lock(ctxT(t, 2*time.Second), newID(), 10*time.Second)
	if err != nil {
		t.Fatalf("lock of another session blocked: %v after %v", err, time.Since(start))
	}
	mustUnlock(t, l2, store.Mutation{Kind: store.Keep})
}

func testUnlockKeep(t *testing.T, a, b store.Store) {
	t.Parallel()
	// Keep with a TTL slides the expiry of a present record.
	id := newID()
	v := mustSave(t, a, id, 0, []byte("k"), 400*time.Millisecond)
	l, r := mustLock(t, b, id, 5*time.Second)
	wantRecord(t, r, []byte("k"), v)
	if got := mustUnlock(t, l, store.Mutation{Kind: store.Keep, TTL: 3 * time.Second}); got != v {
		t.Fatalf("Keep returned version %d, want %d", got, v)
	}
	// Keep without a TTL leaves the expiry alone.
	id2 := newID()
	v2 := mustSave(t, a, id2, 0, []byte("k2"), 400*time.Millisecond)
	l2, _ := mustLock(t, a, id2, 5*time.Second)
	if got := mustUnlock(t, l2, store.Mutation{Kind: store.Keep}); got != v2 {
		t.Fatalf("Keep returned version %d, want %d", got, v2)
	}
	time.Sleep(1000 * time.Millisecond)
	wantRecord(t, mustLoad(t, a, id), []byte("k"), v)
	wantRecord(t, mustLoad(t, a, id2), nil, 0)

	// Keep on an absent record returns 0 and creates nothing.
	id3 := newID()
	l3, _ := mustLock(t, a, id3, 5*time.Second)
	if got := mustUnlock(t, l3, store.Mutation{Kind: store.Keep, TTL: time.Minute}); got != 0 {
		t.Fatalf("Keep on absent record returned version %d", got)
	}
	wantRecord(t, mustLoad(t, b, id3), nil, 0)
}

func testUnlockPut(t *testing.T, a, b store.Store) {
	t.Parallel()
	id := newID()
	l, r := mustLock(t, a, id, 5*time.Second)
	wantRecord(t, r, nil, 0)
	v1 := mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: []byte("p1"), TTL: time.Minute})
	if v1 == 0 {
		t.Fatal("Put returned version 0")
	}
	wantRecord(t, mustLoad(t, b, id), []byte("p1"), v1)

	l, r = mustLock(t, b, id, 5*time.Second)
	wantRecord(t, r, []byte("p1"), v1)
	v2 := mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: []byte("p2"), TTL: 300 * time.Millisecond})
	if v2 == 0 || v2 == v1 {
		t.Fatalf("second Put version %d (first %d)", v2, v1)
	}
	wantRecord(t, mustLoad(t, a, id), []byte("p2"), v2)
	// Put's TTL applies.
	time.Sleep(900 * time.Millisecond)
	wantRecord(t, mustLoad(t, a, id), nil, 0)
}

func testUnlockDelete(t *testing.T, a, b store.Store) {
	id := newID()
	mustSave(t, a, id, 0, []byte("d"), time.Minute)
	l, _ := mustLock(t, b, id, 5*time.Second)
	if v := mustUnlock(t, l, store.Mutation{Kind: store.Delete}); v != 0 {
		t.Fatalf("Delete returned version %d", v)
	}
	wantRecord(t, mustLoad(t, a, id), nil, 0)
	// The lock is free again.
	l, _ = mustLock(t, a, id, 5*time.Second)
	mustUnlock(t, l, store.Mutation{Kind: store.Keep})
}

func testUnlockTwice(t *testing.T, a, _ store.Store) {
	id := newID()
	l, _ := mustLock(t, a, id, 5*time.Second)
	v := mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: []byte("once"), TTL: time.Minute})
	// Someone else takes the lock; a second Unlock of the old lease must
	// neither succeed nor release the new holder's lock.
	l2, _ := mustLock(t, a, id, 5*time.Second)
	if _, err := l.Unlock(ctxT(t, 5*time.Second), store.Mutation{Kind: store.Put, Value: []byte("twice"), TTL: time.Minute}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("second Unlock: err = %v, want ErrLeaseLost", err)
	}
	if _, _, err := a.Lock(ctxT(t, 300*time.Millisecond), id, 5*time.Second); !errors.Is(err, store.ErrLockTimeout) {
		t.Fatalf("lock was released by a stale lease: Lock err = %v, want ErrLockTimeout", err)
	}
	mustUnlock(t, l2, store.Mutation{Kind: store.Keep})
	wantRecord(t, mustLoad(t, a, id), []byte("once"), v)
}

func testLeaseExpiryTakeover(t *testing.T, a, b store.Store) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		second store.Store
	}{{"same instance", a}, {"other instance", b}} {
		id := newID()
		v0 := mustSave(t, a, id, 0, []byte("before"), time.Minute)
		const lease = 400 * time.Millisecond
		crashed, _ := mustLock(t, a, id, lease) // never unlocked in time
		start := time.Now()
		l, r, err := tc.second.Lock(ctxT(t, 10*time.Second), id, 10*time.Second)
		waited := time.Since(start)
		if err != nil {
			t.Fatalf("%s: lock after a crashed holder: %v", tc.name, err)
		}
		if waited < lease/2 {
			t.Fatalf("%s: second Lock got the lock after %v, before the lease (%v) ran out", tc.name, waited, lease)
		}
		if waited > 5*time.Second {
			t.Fatalf("%s: takeover took %v for a %v lease", tc.name, waited, lease)
		}
		wantRecord(t, r, []byte("before"), v0)
		v := mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: []byte("second"), TTL: time.Minute})
		if _, err := crashed.Unlock(ctxT(t, 5*time.Second), store.Mutation{Kind: store.Put, Value: []byte("late"), TTL: time.Minute}); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("%s: late Unlock: err = %v, want ErrLeaseLost", tc.name, err)
		}
		wantRecord(t, mustLoad(t, b, id), []byte("second"), v)
	}
}

func testLeaseExpiredNoWaiter(t *testing.T, a, b store.Store) {
	t.Parallel()
	id := newID()
	v := mustSave(t, a, id, 0, []byte("kept"), time.Minute)
	l, _ := mustLock(t, a, id, 300*time.Millisecond)
	time.Sleep(900 * time.Millisecond)
	for _, m := range []store.Mutation{
		{Kind: store.Put, Value: []byte("late"), TTL: time.Minute},
	} {
		if _, err := l.Unlock(ctxT(t, 5*time.Second), m); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("Unlock after the lease ended: err = %v, want ErrLeaseLost", err)
		}
	}
	wantRecord(t, mustLoad(t, b, id), []byte("kept"), v)
	// Delete through an expired lease must not apply either.
	l, _ = mustLock(t, b, id, 300*time.Millisecond)
	time.Sleep(900 * time.Millisecond)
	if _, err := l.Unlock(ctxT(t, 5*time.Second), store.Mutation{Kind: store.Delete}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Delete after the lease ended: err = %v, want ErrLeaseLost", err)
	}
	wantRecord(t, mustLoad(t, a, id), []byte("kept"), v)
}

// renewFor renews l every lease/4 for d, failing the test on any error.
func renewFor(t *testing.T, l store.Lease, lease, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(lease / 4)
		if err := l.Renew(ctxT(t, 5*time.Second), lease); err != nil {
			t.Fatalf("Renew: %v", err)
		}
	}
}

// A holder that renews keeps the lock well past its first lease: waiters,
// on its instance or another, wait for its Unlock, whose mutation applies.
func testRenewOutlivesLease(t *testing.T, a, b store.Store) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		second store.Store
	}{{"same instance", a}, {"other instance", b}} {
		id := newID()
		// 1 s, renewed every 250 ms for three leases: with 400 ms, a
		// renewal that a loaded machine delayed past 300 ms lost the lease
		// (a CI flake), which says nothing about the store.
		const lease = time.Second
		l, _ := mustLock(t, a, id, lease)
		var released atomic.Bool
		got := lockLater(t, tc.second, id, 20*time.Second, 10*time.Second, func() error {
			if !released.Load() {
				return fmt.Errorf("%s: a waiter got the lock while its holder renewed it", tc.name)
			}
			return nil
		})
		renewFor(t, l, lease, 3*lease)
		select {
		case x := <-got:
			t.Fatalf("%s: waiter returned during renewals: %v", tc.name, x.err)
		default:
		}
		released.Store(true)
		v := mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: []byte("renewed"), TTL: time.Minute})
		if v == 0 {
			t.Fatalf("%s: Put after renewals returned version 0", tc.name)
		}
		var x lockResult
		select {
		case x = <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: waiter still waiting 5s after Unlock", tc.name)
		}
		if x.err != nil {
			t.Fatal(x.err)
		}
		wantRecord(t, x.r, []byte("renewed"), v)
		mustUnlock(t, x.l, store.Mutation{Kind: store.Keep})
		wantRecord(t, mustLoad(t, b, id), []byte("renewed"), v)
	}
}

// A renewal after the lease ran out and another holder took the lock is
// ErrLeaseLost and leaves the new holder's lock alone; so is one after the
// lease ran out with nobody waiting.
func testRenewAfterLoss(t *testing.T, a, b store.Store) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		second store.Store
	}{{"same instance", a}, {"other instance", b}} {
		id := newID()
		const lease = 300 * time.Millisecond
		old, _ := mustLock(t, a, id, lease)
		next, _, err := tc.second.Lock(ctxT(t, 10*time.Second), id, 2*time.Second)
		if err != nil {
			t.Fatalf("%s: take-over: %v", tc.name, err)
		}
		if err := old.Renew(ctxT(t, 5*time.Second), time.Minute); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("%s: Renew of a lost lease: err = %v, want ErrLeaseLost", tc.name, err)
		}
		if _, _, err := b.Lock(ctxT(t, 200*time.Millisecond), id, 5*time.Second); !errors.Is(err, store.ErrLockTimeout) {
			t.Fatalf("%s: the new holder lost its lock to a stale renewal: Lock err = %v", tc.name, err)
		}
		v := mustUnlock(t, next, store.Mutation{Kind: store.Put, Value: []byte("new holder"), TTL: time.Minute})
		if _, err := old.Unlock(ctxT(t, 5*time.Second), store.Mutation{Kind: store.Put, Value: []byte("stale"), TTL: time.Minute}); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("%s: Unlock of a lost lease: err = %v, want ErrLeaseLost", tc.name, err)
		}
		wantRecord(t, mustLoad(t, a, id), []byte("new holder"), v)
	}

	// Ran out with nobody waiting: lost too, and the lock is free.
	id := newID()
	l, _ := mustLock(t, a, id, 300*time.Millisecond)
	time.Sleep(900 * time.Millisecond)
	if err := l.Renew(ctxT(t, 5*time.Second), time.Minute); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Renew after the lease ended: err = %v, want ErrLeaseLost", err)
	}
	l2, _, err := b.Lock(ctxT(t, 2*time.Second), id, 5*time.Second)
	if err != nil {
		t.Fatalf("Lock after a failed renewal: %v", err)
	}
	if _, err := l.Unlock(ctxT(t, 5*time.Second), store.Mutation{Kind: store.Put, Value: []byte("late"), TTL: time.Minute}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Unlock after a failed renewal: err = %v, want ErrLeaseLost", err)
	}
	mustUnlock(t, l2, store.Mutation{Kind: store.Keep})
	wantRecord(t, mustLoad(t, a, id), nil, 0)
}

// Renew after Unlock is ErrLeaseLost and does not extend the lock of the
// holder that came next.
func testRenewAfterUnlock(t *testing.T, a, b store.Store) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		second store.Store
	}{{"same instance", a}, {"other instance", b}} {
		id := newID()
		l, _ := mustLock(t, a, id, 5*time.Second)
		mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: []byte("x"), TTL: time.Minute})
		if err := l.Renew(ctxT(t, 5*time.Second), time.Minute); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("%s: Renew after Unlock (lock free): err = %v, want ErrLeaseLost", tc.name, err)
		}
		const lease = 300 * time.Millisecond
		crashed, _ := mustLock(t, tc.second, id, lease)
		_ = crashed // never unlocked: its lease must end on time
		if err := l.Renew(ctxT(t, 5*time.Second), time.Minute); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("%s: Renew after Unlock (lock taken): err = %v, want ErrLeaseLost", tc.name, err)
		}
		start := time.Now()
		l3, _, err := b.Lock(ctxT(t, 10*time.Second), id, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: Lock after the next holder's lease: %v", tc.name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: the next holder's %v lock lasted %v: a stale renewal extended it", tc.name, lease, d)
		}
		mustUnlock(t, l3, store.Mutation{Kind: store.Keep})
	}
}

// A lease handed to a local waiter while the releasing holder's write may
// still be in flight (see store.Lease) can be renewed at once.
func testRenewAfterHandOver(t *testing.T, a, _ store.Store) {
	t.Parallel()
	id := newID()
	const lease = 2 * time.Second
	l1, _ := mustLock(t, a, id, lease)
	got := make(chan error, 1)
	var l2 store.Lease
	go func() {
		var err error
		l2, _, err = a.Lock(ctxT(t, 10*time.Second), id, lease)
		if err == nil {
			err = l2.Renew(ctxT(t, 5*time.Second), lease)
		}
		got <- err
	}()
	time.Sleep(200 * time.Millisecond) // queued behind l1
	v := mustUnlock(t, l1, store.Mutation{Kind: store.Put, Value: []byte("first"), TTL: time.Minute})
	if err := <-got; err != nil {
		t.Fatalf("Renew right after the hand-over: %v", err)
	}
	v2 := mustUnlock(t, l2, store.Mutation{Kind: store.Put, Value: []byte("second"), TTL: time.Minute})
	if v2 == v {
		t.Fatalf("second Put kept version %d", v)
	}
	wantRecord(t, mustLoad(t, a, id), []byte("second"), v2)
}

func testLockTimeout(t *testing.T, a, b store.Store) {
	t.Parallel()
	id := newID()
	holder, _ := mustLock(t, a, id, 20*time.Second)
	for _, s := range []store.Store{a, b} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, _, err := s.Lock(ctx, id, 5*time.Second)
		cancel()
		if !errors.Is(err, store.ErrLockTimeout) {
			t.Fatalf("Lock on a held session: err = %v, want ErrLockTimeout", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("Lock honoured a 300ms deadline only after %v", d)
		}
	}
	// Give-ups leave nothing behind: once the holder unlocks, a new locker
	// gets the lock at once.
	mustUnlock(t, holder, store.Mutation{Kind: store.Keep})
	l, _, err := b.Lock(ctxT(t, 3*time.Second), id, 5*time.Second)
	if err != nil {
		t.Fatalf("Lock after timed-out waiters: %v", err)
	}
	mustUnlock(t, l, store.Mutation{Kind: store.Keep})
}

// 64 goroutines split over both instances increment one counter under the
// lock: every increment must survive.
func testNoLostUpdateLocked(t *testing.T, a, b store.Store) {
	countConcurrently(t, a, b, 1, 64, 8, incrementLocked)
}

// The merge mode's compare-and-set: concurrent Load+Save loops retrying on
// ErrConflict must not lose an increment either.
func testNoLostUpdateCAS(t *testing.T, a, b store.Store) {
	countConcurrently(t, a, b, 1, 16, 8, incrementCAS)
}

// Many sessions at once, each locked from both stores: a store that sends
// the calls of concurrent requests together (the Redis store's pipelines)
// must still give every caller its own reply.
func testNoLostUpdateManySessions(t *testing.T, a, b store.Store) {
	countConcurrently(t, a, b, 16, 2, 8, incrementLocked)
}

// countConcurrently runs, on each of sessions fresh sessions, workers
// goroutines, alternately on a and b, that each call increment rounds
// times; each counter must then read workers*rounds on both stores.
func countConcurrently(t *testing.T, a, b store.Store, sessions, workers, rounds int, increment func(ctx context.Context, s store.Store, id string) error) {
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = newID()
	}
	var wg sync.WaitGroup
	errs := make(chan error, sessions*workers)
	for _, id := range ids {
		for w := range workers {
			s := a
			if w%2 == 1 {
				s = b
			}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				for range rounds {
					if err := increment(ctx, s, id); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		for _, s := range []store.Store{a, b} {
			if got := string(mustLoad(t, s, id).Value); got != strconv.Itoa(workers*rounds) {
				t.Fatalf("counter of session %s = %s, want %d (lost updates)", id, got, workers*rounds)
			}
		}
	}
}

func incrementLocked(ctx context.Context, s store.Store, id string) error {
	l, r, err := s.Lock(ctx, id, 30*time.Second)
	if err != nil {
		return fmt.Errorf("Lock: %w", err)
	}
	n := 0
	if r.Version != 0 {
		if n, err = strconv.Atoi(string(r.Value)); err != nil {
			_, _ = l.Unlock(ctx, store.Mutation{Kind: store.Keep})
			return fmt.Errorf("counter %q: %w", r.Value, err)
		}
	}
	v, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte(strconv.Itoa(n + 1)), TTL: time.Minute})
	if err != nil {
		return fmt.Errorf("Unlock: %w", err)
	}
	if v == 0 || v == r.Version {
		return fmt.Errorf("Put returned version %d after %d", v, r.Version)
	}
	return nil
}

func incrementCAS(ctx context.Context, s store.Store, id string) error {
	for {
		r, err := s.Load(ctx, id)
		if err != nil {
			return err
		}
		n := 0
		if r.Version != 0 {
			n, _ = strconv.Atoi(string(r.Value))
		}
		_, err = s.Save(ctx, id, r.Version, []byte(strconv.Itoa(n+1)), time.Minute)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

func allBytes() []byte {
	b := make([]byte, 0, 512)
	for i := range 256 {
		b = append(b, byte(i))
	}
	for i := 255; i >= 0; i-- {
		b = append(b, byte(i))
	}
	return b
}

func testBinaryValues(t *testing.T, a, b store.Store) {
	val := allBytes()
	id := newID()
	v := mustSave(t, a, id, 0, val, time.Minute)
	wantRecord(t, mustLoad(t, b, id), val, v)

	id2 := newID()
	l, _ := mustLock(t, b, id2, 5*time.Second)
	v2 := mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: val, TTL: time.Minute})
	l, r := mustLock(t, a, id2, 5*time.Second)
	wantRecord(t, r, val, v2)
	mustUnlock(t, l, store.Mutation{Kind: store.Keep})
}

func testBigValue(t *testing.T, a, b store.Store) {
	val := bytes.Repeat(allBytes(), (1<<20)/512+1)[:1<<20]
	id := newID()
	v := mustSave(t, a, id, 0, val, time.Minute)
	wantRecord(t, mustLoad(t, b, id), val, v)
	l, r := mustLock(t, b, id, 10*time.Second)
	wantRecord(t, r, val, v)
	val2 := append(bytes.Clone(val), "tail"...)
	v2 := mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: val2, TTL: time.Minute})
	wantRecord(t, mustLoad(t, a, id), val2, v2)
}

func testManySessions(t *testing.T, a, b store.Store) {
	const n = 300
	ids := make([]string, n)
	vers := make([]uint64, n)
	for i := range ids {
		ids[i] = newID()
		s := a
		if i%2 == 1 {
			s = b
		}
		vers[i] = mustSave(t, s, ids[i], 0, []byte("value-"+strconv.Itoa(i)), time.Minute)
	}
	for i, id := range ids {
		wantRecord(t, mustLoad(t, b, id), []byte("value-"+strconv.Itoa(i)), vers[i])
	}
	// Locks on many sessions held at once do not interfere.
	leases := make([]store.Lease, 0, 50)
	for _, id := range ids[:50] {
		l, _ := mustLock(t, a, id, 10*time.Second)
		leases = append(leases, l)
	}
	for i, l := range leases {
		v := mustUnlock(t, l, store.Mutation{Kind: store.Put, Value: []byte("locked-" + strconv.Itoa(i)), TTL: time.Minute})
		wantRecord(t, mustLoad(t, b, ids[i]), []byte("locked-"+strconv.Itoa(i)), v)
	}
}

func testPing(t *testing.T, a, b store.Store) {
	for _, s := range []store.Store{a, b} {
		if err := s.Ping(ctxT(t, 5*time.Second)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
}

// BenchLockUnlock measures one uncontended lock + put + unlock cycle on
// distinct sessions.
func BenchLockUnlock(b *testing.B, s store.Store) {
	ctx := context.Background()
	val := bytes.Repeat([]byte("x"), 512)
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = newID()
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		id := ids[i%len(ids)]
		i++
		l, _, err := s.Lock(ctx, id, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: val, TTL: time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchHotSession: 32 goroutines increment one session's counter under the
// lock (the hot-session case of the PHP benchmark). Reports increments/s and
// fails on a lost update.
func BenchHotSession(b *testing.B, s store.Store) {
	const clients = 32
	id := newID()
	var next atomic.Int64
	total := int64(b.N)
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for range clients {
		wg.Go(func() {
			for next.Add(1) <= total {
				if err := incrementLocked(ctx, s, id); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if e := failed.Load(); e != nil {
		b.Fatal(*e)
	}
	r, err := s.Load(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	if string(r.Value) != strconv.FormatInt(total, 10) {
		b.Fatalf("counter = %s, want %d", r.Value, total)
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "incr/s")
}

// testLoginRegistry: what one instance records for a user the other reads,
// a later record replaces it, records expire with their TTL, users are
// apart, and an id the registry cannot key is refused, not stored.
func testLoginRegistry(t *testing.T, a, b store.Store) {
	t.Parallel()
	ra, okA := a.(store.LoginRegistry)
	rb, okB := b.(store.LoginRegistry)
	if !okA || !okB {
		t.Fatalf("%T does not keep a store.LoginRegistry", a)
	}
	ctx := ctxT(t, 10*time.Second)
	user, other := newID(), newID()
	if v, err := rb.Logins(ctx, user); err != nil || v != nil {
		t.Fatalf("Logins of a user never recorded: %q, %v; want nil, nil", v, err)
	}
	if err := ra.SetLogins(ctx, user, []byte("h1 h2"), time.Minute); err != nil {
		t.Fatalf("SetLogins: %v", err)
	}
	if err := ra.SetLogins(ctx, user, []byte("h3"), time.Minute); err != nil {
		t.Fatalf("SetLogins again: %v", err)
	}
	if v, err := rb.Logins(ctx, user); err != nil || string(v) != "h3" {
		t.Fatalf("Logins after two records: %q, %v; want the later one", v, err)
	}
	if v, _ := rb.Logins(ctx, other); v != nil {
		t.Fatalf("another user's Logins: %q, want nil", v)
	}
	// An empty record (a user deleted: no login valid) is a record.
	empty := newID()
	if err := ra.SetLogins(ctx, empty, nil, time.Minute); err != nil {
		t.Fatalf("SetLogins of an empty record: %v", err)
	}
	if v, err := rb.Logins(ctx, empty); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Logins of an empty record: %q (nil: %v), %v; want empty, not nil", v, v == nil, err)
	}
	if err := ra.SetLogins(ctx, other, []byte("short"), 300*time.Millisecond); err != nil {
		t.Fatalf("SetLogins with a TTL: %v", err)
	}
	// KeepLogins renews a record's TTL, from either gateway, and creates
	// none for a user never recorded.
	kept, never := newID(), newID()
	if err := ra.SetLogins(ctx, kept, []byte("h4"), 300*time.Millisecond); err != nil {
		t.Fatalf("SetLogins with a TTL: %v", err)
	}
	if err := rb.KeepLogins(ctx, kept, time.Minute); err != nil {
		t.Fatalf("KeepLogins: %v", err)
	}
	if err := rb.KeepLogins(ctx, never, time.Minute); err != nil {
		t.Fatalf("KeepLogins of a user never recorded: %v", err)
	}
	time.Sleep(900 * time.Millisecond)
	if v, err := rb.Logins(ctx, other); err != nil || v != nil {
		t.Fatalf("Logins past its TTL: %q, %v; want nil", v, err)
	}
	if v, err := ra.Logins(ctx, kept); err != nil || string(v) != "h4" {
		t.Fatalf("Logins past its first TTL, renewed by KeepLogins: %q, %v; want h4", v, err)
	}
	if v, err := ra.Logins(ctx, never); err != nil || v != nil {
		t.Fatalf("Logins of a user KeepLogins was asked to keep but never recorded: %q, %v; want nil", v, err)
	}
	for _, bad := range []string{"", "{x}", "a\nb", strings.Repeat("u", 256)} {
		if err := ra.SetLogins(ctx, bad, []byte("h"), time.Minute); err == nil {
			t.Errorf("SetLogins(%q) stored; want it refused", bad)
		}
	}
}

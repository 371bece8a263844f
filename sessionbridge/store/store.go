// Package store defines the byte-level session store the session manager is
// built on. A store knows nothing of cookies, JSON or PHP: it keeps opaque
// values under session IDs, with a version for compare-and-set and an
// exclusive per-session lock. Keeping it this small is what lets one
// conformance suite (storetest) hold every implementation to the same
// contract: memory, Redis standalone, Sentinel and Cluster.
package store

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrConflict: a compare-and-set found another version than expected.
	ErrConflict = errors.New("session store: version conflict")
	// ErrLockTimeout: the lock was not obtained before the context ended.
	ErrLockTimeout = errors.New("session store: lock wait timed out")
	// ErrLeaseLost: the lock expired (or was taken over) before Unlock
	// or Renew. The mutation was NOT applied.
	ErrLeaseLost = errors.New("session store: lock lease lost")
	// ErrLockVanished comes with ErrLeaseLost when the lock was gone
	// before its lease ended: the store itself lost it (a failover to a
	// replica that never got it, a flush, an eviction), so unlike a lease
	// that ran out it is a store failure.
	ErrLockVanished = errors.New("the lock vanished from the store before its lease ended (a failover, a flush or an eviction lost it)")
	// ErrUnavailable wraps every backend failure (network, timeout, Redis
	// error) so callers can answer 503 without knowing the backend.
	ErrUnavailable = errors.New("session store: unavailable")
)

// Record is one stored value. Version 0 means "absent": Value is nil.
// Versions of a present record are > 0 and change on every write.
type Record struct {
	Value   []byte
	Version uint64
}

// MutationKind says what Unlock does to the record before releasing.
type MutationKind int

const (
	// Keep leaves the value alone; a TTL > 0 refreshes the expiry of a
	// present record (sliding idle timeout).
	Keep MutationKind = iota
	// Put stores Value with TTL.
	Put
	// Delete removes the record.
	Delete
)

// Mutation is applied atomically with the lock release, so that a write and
// the hand-over to the next waiter cost one round trip.
type Mutation struct {
	Kind  MutationKind
	Value []byte
	TTL   time.Duration
	// NoWait marks a Put as bookkeeping, not a change of the session (the
	// manager's refresh of a session's last-use time): a store that waits
	// for replicas after a write (redisstore's WaitReplicas) does not wait
	// for it, as for a Keep. A failover that loses it costs an early
	// idle expiry at worst, never a change a request was told is kept.
	NoWait bool
}

// Store is implemented by memory and Redis backends. All methods are safe for
// concurrent use. IDs are opaque printable strings chosen by the manager
// (the Redis store refuses IDs containing '{' or '}', which would break its
// per-session hash tag).
//
// TTLs: a ttl <= 0 in Save or a Put mutation stores a record that never
// expires; in Touch or a Keep mutation it leaves the expiry unchanged.
// Load and Lock count as a use of a present record from that moment: one
// with less left than the TTL its last Save, Put, Touch or Keep gave it
// gets that TTL again (never a shorter one). A request that starts shortly
// before the TTL counted from the previous use runs out, and ends after,
// so still finds the record: its write is not dropped, its session does
// not end under it. Whether the session it holds is still valid is the
// caller's judgement, not the TTL's.
// Versions are not reused after Delete (memory: one counter per store;
// Redis: a new record starts at the clock in microseconds), so a stale
// compare-and-set cannot hit a record created later under the same ID.
type Store interface {
	// Load returns the record, or a zero Record (Version 0) when absent.
	Load(ctx context.Context, id string) (Record, error)
	// Save writes value if the stored version equals expect (0: the record
	// must not exist) and returns the new version, or ErrConflict.
	// It ignores locks: it is the merge mode's compare-and-set.
	Save(ctx context.Context, id string, expect uint64, value []byte, ttl time.Duration) (uint64, error)
	// Touch refreshes the TTL of the record if its version is still
	// expect (the one the caller loaded or wrote). A record of another
	// version (a later write, which set its own TTL; a value that replaced
	// the caller's) or an absent one is left alone, and is not an error.
	Touch(ctx context.Context, id string, expect uint64, ttl time.Duration) error
	// Delete removes the record; absent is not an error.
	Delete(ctx context.Context, id string) error
	// Lock waits for the session's exclusive lock without polling the
	// backend in a loop, until ctx ends (ErrLockTimeout). The lock expires
	// by itself after leaseTTL so a crashed holder cannot block a session
	// for ever. leaseTTL must be > 0. It returns the record as it is under
	// the lock.
	Lock(ctx context.Context, id string, leaseTTL time.Duration) (Lease, Record, error)
	// Ping checks the backend (the fail-fast probe at start, /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// NoWaitSaver is a Store whose Save can be bookkeeping (see
// Mutation.NoWait): SaveNoWait is Save without the wait for replicas a
// store may make after a write. The manager uses Save where a store lacks
// it.
type NoWaitSaver interface {
	SaveNoWait(ctx context.Context, id string, expect uint64, value []byte, ttl time.Duration) (uint64, error)
}

// Lease is a held lock. Exactly one Unlock call ends it; later calls return
// ErrLeaseLost. A store may hand the lock to a waiter of the same process
// while the releasing holder's write is still in flight (Redis does, so the
// round trip does not lengthen the session's critical section); that
// waiter's record is the one the write produces, and its own Unlock fails,
// applying nothing, if the write it was built on failed.
type Lease interface {
	// Unlock applies m and releases the lock in one atomic step, returning
	// the record's new version (0 after Delete or for an absent record).
	Unlock(ctx context.Context, m Mutation) (uint64, error)
	// Renew extends the lock so that it expires leaseTTL from now (> 0):
	// a live holder renews its lease, which then only bounds how long a
	// crashed holder blocks the session. It returns ErrLeaseLost when the
	// lock is no longer this holder's (it expired, was taken over, or
	// Unlock ended the lease), and then changes nothing. It may run
	// concurrently with Unlock; a renewal that loses that race is
	// ErrLeaseLost and does not extend the next holder's lock.
	Renew(ctx context.Context, leaseTTL time.Duration) error
}

// Settler is a Lease that can say whether the record it came with is
// stored. A lease handed over while the previous holder's write was in
// flight came with the record that write makes; if the write fails, the
// holder's own Unlock fails, but a request that only reads (PHP's
// read_and_close) would already have shown that record as if it were
// stored.
type Settler interface {
	// Settled waits for the write the lease's record came from, when that
	// was in flight at the hand-over, and returns its error: the record
	// was then never stored. nil when the record was stored (or read).
	Settled(ctx context.Context) error
}

// LoginRegistry is kept by stores that can hold, per user of Django's auth,
// which login hashes (_auth_user_hash) are still valid. Django logs a
// session out at its next Django page once the hash in it no longer
// matches the user's password; a PHP page cannot compute that hash, so the
// gateway records the valid ones that Django reports (a password change, a
// login) and tells PHP when a session's hash is not among them. Optional:
// a store without it keeps no record, and PHP then trusts the session as
// it did before.
type LoginRegistry interface {
	// SetLogins replaces user's record (opaque bytes) for ttl (<= 0: no
	// expiry).
	SetLogins(ctx context.Context, user string, value []byte, ttl time.Duration) error
	// Logins returns user's record, or nil when there is none.
	Logins(ctx context.Context, user string) ([]byte, error)
	// KeepLogins makes user's record, if there is one, expire ttl from
	// now (ttl <= 0: as it was); it creates none.
	KeepLogins(ctx context.Context, user string, ttl time.Duration) error
}

// ValidLoginUser reports a user id a LoginRegistry takes: 1 to 255 bytes,
// printable, without '{' or '}' (which would make a Redis hash tag of it).
func ValidLoginUser(user string) bool {
	if user == "" || len(user) > 255 {
		return false
	}
	for i := 0; i < len(user); i++ {
		if c := user[i]; c < 0x20 || c == 0x7f || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

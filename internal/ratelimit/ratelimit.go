// Package ratelimit limits how often each client may ask for something, the
// way nginx's limit_req with nodelay does: a client may send burst+1
// requests at once, then one per 1/rate, and what comes faster is refused
// at once rather than queued (a queued request would hold a connection and
// a goroutine for an attacker).
//
// Memory is bounded: a client whose bucket has filled up again is the same
// as one never seen, and such entries are dropped first when the table is
// full; then arbitrary ones, which only ever lets those clients start over
// with a full burst.
package ratelimit

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// Limiter is one limit, for every client. It keeps, per client, the time
// at which its bucket would be empty again (GCRA), in integer nanoseconds,
// so that "10 a minute" means exactly one every 6 s.
type Limiter struct {
	// base is when the limiter was made: times are kept as nanoseconds
	// since then, on the monotonic clock, so that the wall clock stepping
	// back (NTP, a VM resumed) cannot lock every client out for the step.
	base      time.Time
	interval  int64 // nanoseconds per request at the rate
	tolerance int64 // burst * interval: how far ahead a client may be
	maxKeys   int

	mu  sync.Mutex
	tat map[netip.Addr]int64 // theoretical arrival time of the next request
}

// New returns a limiter of perSecond requests a second (> 0) with burst
// more at once, for up to maxKeys clients kept apart (at least 1).
func New(perSecond float64, burst, maxKeys int) *Limiter {
	interval := int64(math.Round(float64(time.Second) / perSecond))
	return &Limiter{
		base:      time.Now(),
		interval:  max(interval, 1),
		tolerance: int64(burst) * max(interval, 1),
		maxKeys:   max(maxKeys, 1),
		tat:       map[netip.Addr]int64{},
	}
}

// Key is the client an address counts as: an IPv6 client is its /64, the
// network one host gets, so it cannot dodge the limit by changing address.
// An IPv6 address that stands for an IPv4 host counts as that host: a /64
// of them would be every IPv4 client (NAT64's well-known prefix, as a
// stateless translator in front of an IPv6-only site shows them; Teredo,
// whose /64 is its relay's), or a host's /48 would be 65536 clients
// (6to4).
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if !a.Is6() {
		return a
	}
	b := a.As16()
	switch {
	case nat64.Contains(a.WithZone("")):
		return netip.AddrFrom4([4]byte(b[12:16]))
	case b[0] == 0x20 && b[1] == 0x02: // 6to4, 2002:V4ADDR::/48
		return netip.AddrFrom4([4]byte(b[2:6]))
	case teredo.Contains(a.WithZone("")): // the client's address, inverted
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	}
	p, _ := a.Prefix(64)
	return p.Addr()
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	teredo = netip.MustParsePrefix("2001::/32")
)

// Allow takes one request of client at now. When it is refused, retry says
// how long until the next one would be allowed; a refused request takes
// nothing from the client's allowance.
func (l *Limiter) Allow(client netip.Addr, now time.Time) (ok bool, retry time.Duration) {
	t := int64(now.Sub(l.base))
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, seen := l.tat[client]
	if !seen {
		if len(l.tat) >= l.maxKeys {
			l.evict(t)
		}
		tat = t
	}
	tat = max(tat, t)
	if allowedAt := tat - l.tolerance; t < allowedAt {
		return false, time.Duration(allowedAt - t)
	}
	l.tat[client] = tat + l.interval
	return true, 0
}

// evict makes room for a new client: clients whose allowance is whole
// again (the same as never seen) go first, then arbitrary ones (Go's map
// order), down to nine tenths of the table, so that the next sweep is that
// many new clients away.
func (l *Limiter) evict(t int64) {
	for k, tat := range l.tat {
		if tat <= t {
			delete(l.tat, k)
		}
	}
	target := l.maxKeys - max(l.maxKeys/10, 1)
	for k := range l.tat {
		if len(l.tat) <= target {
			break
		}
		delete(l.tat, k)
	}
}

// Len is the number of clients tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}

package fcgi

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/internal/connpeek"
	"github.com/sessiongate/sessiongate/internal/fdlimit"
	"github.com/sessiongate/sessiongate/internal/monoclock"
)

const (
	connBufSize = 32 << 10
	// Passive health: a backend that fails to dial is skipped for
	// downBase, doubled on each further failure up to downMax.
	downBase = 500 * time.Millisecond
	downMax  = 30 * time.Second
	// probeEvery is how often a backend in back-off is dialed to see
	// whether it accepts connections again.
	probeEvery = time.Second
)

// conn is one kept-alive connection to php-fpm. It carries one request at a
// time (php-fpm does not multiplex).
type conn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	b      *backend
	reused bool // taken from the idle list rather than freshly dialed
	// idleSince is when the connection last went back to the idle list
	// (a monoclock reading).
	idleSince int64
	// rescue, while a freshly dialed connection waits for its answer,
	// frees a worker for it after starveAfter (backend.rescue).
	rescue *time.Timer
	// bytesOut counts the bytes bw got onto the connection, over its
	// life (not to be confused with responseReader.sent, which says the
	// request is on the connection whole).
	bytesOut int64
}

// outCounter is the writer under a conn's bw: it counts what the kernel
// took, which tells a write that failed before any byte of a request left
// from one that failed partway (exchange's retry rule).
type outCounter struct{ c *conn }

func (w outCounter) Write(p []byte) (int, error) {
	n, err := w.c.nc.Write(p)
	w.c.bytesOut += int64(n)
	return n, err
}

// errNoFreeConn: every connection of the backend stayed busy for the whole
// wait. It is a timeout (504), like nginx's read timeout on a full backlog.
var errNoFreeConn = timeoutError("no free php-fpm connection within the wait limit")

type timeoutError string

func (e timeoutError) Error() string   { return string(e) }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }

// backend is one php-fpm address and its connection pool. Every open
// connection (idle, busy, or being dialed) holds one of max slots: the cap
// is on open connections, because an idle kept-alive connection pins a
// php-fpm worker just like a busy one.
type backend struct {
	addr             string // as configured, for logs and stats
	network, address string
	max              int
	dialer           net.Dialer
	idleTimeout      time.Duration // Options.IdleTimeout

	mu   sync.Mutex
	idle []*conn // LIFO: the most recently used is the most likely alive
	// reaper closes idle connections once idleTimeout passed; set while
	// idle holds any.
	reaper  *time.Timer
	open    int
	waiters []chan *conn // nil received = a slot to dial in
	closed  bool
	// unanswered holds freshly dialed connections whose request is written
	// and whose answer has not begun, with when it was written (monoclock).
	unanswered map[*conn]int64

	fails atomic.Int32
	// downUntil and lastOK are monoclock readings: on the wall clock, a
	// step back lengthened a back-off by the step.
	downUntil atomic.Int64 // 0 = healthy
	lastOK    atomic.Int64 // of the last successful exchange
	probing   atomic.Bool  // a probeUntilUp goroutine runs
	// answers counts the answers php-fpm began (their first record): a
	// request that waited out ReadTimeout while it stood still was not
	// merely slow (Transport.noteSilence).
	answers atomic.Uint64
	// silent: the backend accepts connections but no worker takes them (a
	// frozen or stopped php-fpm). A successful dial proves nothing then,
	// so it stays out of rotation until it answers: probeAnswer, or a real
	// answer while every backend was down.
	silent atomic.Bool
	// confirming: a probe runs to tell a silent backend from a slow script
	// (Transport.noteSilence).
	confirming atomic.Bool
	log        *slog.Logger
}

func (b *backend) healthy(now int64) bool { return b.downUntil.Load() <= now }

// markDown starts or lengthens the back-off of a backend that failed to
// dial. A silent backend stays out until it answers, whatever the back-off.
func (b *backend) markDown() time.Duration {
	n := b.fails.Add(1)
	d := downBase << min(n-1, 10)
	if d > downMax {
		d = downMax
	}
	if !b.silent.Load() {
		b.downUntil.Store(monoclock.Now() + int64(d))
	}
	b.startProbing()
	return d
}

// markSilent takes the backend out of rotation until it answers again,
// and reports whether it was in.
func (b *backend) markSilent() bool {
	wasIn := !b.silent.Swap(true) && b.healthy(monoclock.Now())
	b.downUntil.Store(math.MaxInt64)
	b.fails.Add(1)
	b.startProbing()
	return wasIn
}

// sayBackInRotation logs a backend's return: silent, it answered again;
// else it accepts connections again.
func (b *backend) sayBackInRotation(silent bool) {
	if silent {
		b.log.Info("php-fpm backend answers again; back in rotation", "backend", b.addr)
	} else {
		b.log.Info("php-fpm backend accepts connections again; back in rotation", "backend", b.addr)
	}
}

func (b *backend) startProbing() {
	if b.probing.CompareAndSwap(false, true) {
		go b.probeUntilUp()
	}
}

// probeUntilUp probes a backend out of rotation every probeEvery and puts
// it back as soon as it accepts a connection, or, if it was silent, answers
// a FastCGI management record. Without it, a php-fpm that comes back after
// a long outage would wait out its back-off (up to downMax) with no
// request sent to it, and a silent one would never come back. The probe
// connection carries no request and is closed at once; it runs only while
// the backend is out.
func (b *backend) probeUntilUp() {
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for range tick.C {
		b.mu.Lock()
		closed := b.closed
		b.mu.Unlock()
		if !closed && b.out() {
			silent := b.silent.Load()
			if b.probe(context.Background()) != nil {
				continue
			}
			b.sayBackInRotation(silent)
		}
		b.probing.Store(false)
		// A failure between the check above and the Store found the probe
		// still running and started none: carry on for it.
		if closed || !b.out() || !b.probing.CompareAndSwap(false, true) {
			return
		}
	}
}

// errProbeNoSlot: every connection of the backend carries a request, so
// a probe would be one connection more than SESSIONGATE_PHP_MAX_CONNS.
var errProbeNoSlot = errors.New("every connection carries a request; no slot for a probe")

// errNoAnswer: the probe's connection was accepted and no worker answered
// FCGI_GET_VALUES before the probe's time ran out.
type errNoAnswer struct{ err error }

func (e *errNoAnswer) Error() string { return "no answer to FCGI_GET_VALUES: " + e.err.Error() }
func (e *errNoAnswer) Unwrap() error { return e.err }

// probeSlot takes one of the backend's slots for a probe connection, so
// that probes too keep to SESSIONGATE_PHP_MAX_CONNS. An idle connection's
// comes first, closed: each php-fpm worker stays with a kept-alive
// connection until it is closed, so while the pool's idle connections pin
// every worker (as many connections as pm.max_children, or more) a probe
// on a new connection would wait in the listen queue, unanswered, on a
// healthy pool. Else a free slot, else, when wait allows, the first one
// given back, ahead of the requests waiting. The caller frees it with
// releaseSlot.
func (b *backend) probeSlot(ctx context.Context, wait bool) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("transport closed")
	}
	if len(b.idle) > 0 {
		c := b.takeOldestIdleLocked()
		b.mu.Unlock()
		c.nc.Close()
		return nil
	}
	if b.open < b.max {
		b.open++
		b.mu.Unlock()
		return nil
	}
	if !wait {
		b.mu.Unlock()
		return errProbeNoSlot
	}
	w := make(chan *conn, 1)
	b.waiters = slices.Insert(b.waiters, 0, w)
	b.mu.Unlock()
	select {
	case c := <-w:
		if c != nil {
			c.nc.Close()
		}
		return nil
	case <-ctx.Done():
	}
	if b.withdraw(w) {
		return fmt.Errorf("%w within %v", errProbeNoSlot, answerProbeWait)
	}
	// Handed one while giving up: it is ours.
	if c := <-w; c != nil {
		c.nc.Close()
	}
	return nil
}

// probe connects to the backend in a slot of its own (probeSlot, without
// waiting) and closes the connection at once; when the connection is
// accepted, it puts the backend back in rotation. A silent backend must
// answer the probe too (probeAnswer).
func (b *backend) probe(ctx context.Context) error {
	if b.silent.Load() {
		return b.probeAnswer(ctx, true)
	}
	if err := b.probeSlot(ctx, false); err != nil {
		return err
	}
	defer b.releaseSlot()
	nc, err := b.dialer.DialContext(ctx, b.network, b.address)
	if err != nil {
		return err
	}
	nc.Close()
	b.markUp()
	return nil
}

// answerProbeWait bounds probeAnswer when ctx does not: long enough for a
// worker of a loaded pool to take the connection, short enough that a
// pool with no worker free is found out at once.
const answerProbeWait = 2 * time.Second

// getValuesProbe is FCGI_GET_VALUES asking for FCGI_MPXS_CONNS: a
// management record (request id 0) that a php-fpm worker answers once it
// has accepted the connection, running no script.
var getValuesProbe = []byte{
	fcgiVersion, typeGetValues, 0, 0, 0, 17, 7, 0,
	15, 0, 'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_', 'C', 'O', 'N', 'N', 'S',
	0, 0, 0, 0, 0, 0, 0,
}

// probeAnswer proves that a worker takes connections: it sends
// FCGI_GET_VALUES on a connection of its own, in a slot of the pool
// (probeSlot; waitSlot lets it wait for one), and waits for the first
// record of the answer (FCGI_GET_VALUES_RESULT from php-fpm; a server that
// does not know the type answers FCGI_UNKNOWN_TYPE), then closes it, which
// frees the worker: php-fpm 8.2 keeps the connection open after its
// answer. It puts the backend back in rotation when answered. A connection
// accepted and not answered gives *errNoAnswer.
func (b *backend) probeAnswer(ctx context.Context, waitSlot bool) error {
	ctx, cancel := context.WithTimeout(ctx, answerProbeWait)
	defer cancel()
	if err := b.probeSlot(ctx, waitSlot); err != nil {
		return err
	}
	defer b.releaseSlot()
	nc, err := b.dialer.DialContext(ctx, b.network, b.address)
	if err != nil {
		return err
	}
	defer nc.Close()
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	if _, err := nc.Write(getValuesProbe); err != nil {
		return fmt.Errorf("send FCGI_GET_VALUES: %w", err)
	}
	var h [headerLen]byte
	if _, err := io.ReadFull(nc, h[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return &errNoAnswer{err}
		}
		return fmt.Errorf("answer to FCGI_GET_VALUES: %w", err)
	}
	if h[0] != fcgiVersion || (h[1] != typeGetValuesResult && h[1] != typeUnknownType) {
		return fmt.Errorf("%w: answer to FCGI_GET_VALUES is a record of type %d, version %d", ErrProtocol, h[1], h[0])
	}
	b.markUp()
	// Read the rest of the record (at most 64 KiB) before the close: a
	// socket closed with unread data sends a reset, and php-fpm's worker
	// reads ECONNRESET where it could read the end of the connection.
	io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint16(h[4:6]))+int64(h[6]))
	return nil
}

// out reports a backend with failures counted or a back-off set. Both,
// not the count alone: a markUp between markDown's count and its back-off
// leaves the back-off with no count, which the probe must clear too.
func (b *backend) out() bool {
	return b.fails.Load() != 0 || b.downUntil.Load() != 0
}

func (b *backend) markUp() {
	if b.out() || b.silent.Load() {
		b.silent.Store(false)
		b.fails.Store(0)
		b.downUntil.Store(0)
	}
}

// load is the number of requests using or waiting for this backend.
func (b *backend) load() int {
	b.mu.Lock()
	n := b.open - len(b.idle) + len(b.waiters)
	b.mu.Unlock()
	return n
}

// dialError marks a failure to connect: the request never reached PHP.
// wentDown: this failure took the backend out of rotation (it was in), so
// the caller says so once, not for every request of the back-off.
type dialError struct {
	err      error
	wentDown bool
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// acquire returns a connection, holding one slot, and how long it waited
// for that slot. fresh asks for a newly dialed connection (the retry after
// a stale one). The wait for a slot is bounded by ctx and by wait.
func (b *backend) acquire(ctx context.Context, wait time.Duration, fresh bool) (*conn, time.Duration, error) {
	b.mu.Lock()
	switch {
	case !fresh && len(b.idle) > 0:
		c := b.idle[len(b.idle)-1]
		b.idle[len(b.idle)-1] = nil
		b.idle = b.idle[:len(b.idle)-1]
		b.mu.Unlock()
		c, err := b.checkIdle(ctx, c)
		return c, 0, err
	case b.open < b.max:
		b.open++
		b.mu.Unlock()
		c, err := b.dial(ctx)
		return c, 0, err
	case fresh && len(b.idle) > 0:
		// Trade the oldest idle connection's slot for a new one.
		c := b.takeOldestIdleLocked()
		b.mu.Unlock()
		c.nc.Close()
		c, err := b.dial(ctx)
		return c, 0, err
	}
	w := make(chan *conn, 1)
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	start := time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var werr error
	select {
	case c := <-w:
		waited := time.Since(start)
		c, err := b.granted(ctx, c, fresh)
		return c, waited, err
	case <-ctx.Done():
		werr = ctx.Err()
	case <-timer.C:
		werr = errNoFreeConn
	}
	waited := time.Since(start)
	if b.withdraw(w) {
		return nil, waited, werr
	}
	// We were handed a connection or slot while giving up: pass it on.
	if c := <-w; c != nil {
		b.put(c)
	} else {
		b.releaseSlot()
	}
	return nil, waited, werr
}

// withdraw takes w out of the waiters and reports whether it was still
// there; when it was not, a connection or slot was handed to it (or is
// being), and the caller must take it from w.
func (b *backend) withdraw(w chan *conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.Index(b.waiters, w)
	if i < 0 {
		return false
	}
	b.waiters = slices.Delete(b.waiters, i, i+1)
	return true
}

// takeOldestIdleLocked removes the connection idle the longest, keeping
// its slot; b.mu is held and idle is not empty. The idle list is in the
// order the connections went idle (put appends).
func (b *backend) takeOldestIdleLocked() *conn {
	c := b.idle[0]
	b.idle = slices.Delete(b.idle, 0, 1)
	return c
}

// granted turns what a waiter received into a connection.
func (b *backend) granted(ctx context.Context, c *conn, fresh bool) (*conn, error) {
	if c == nil {
		return b.dial(ctx)
	}
	if fresh {
		c.nc.Close()
		return b.dial(ctx)
	}
	return b.checkIdle(ctx, c)
}

// checkIdle hands out a pooled connection if it is still alive and quiet,
// else dials a replacement in its slot. The peek (one syscall) is made for
// every request: besides a connection php-fpm closed, which a request that
// cannot be resent (a streamed body, a POST) must not be written to, it
// finds bytes a FastCGI server sent after END_REQUEST while the connection
// sat idle, which the next request would read as its own answer (the
// previous request's page, or records of another request: the id is 1 on
// every request). Stray bytes that arrive after the next request went out
// are not told apart, as with nginx.
func (b *backend) checkIdle(ctx context.Context, c *conn) (*conn, error) {
	if c.br.Buffered() == 0 && connpeek.Alive(c.nc) {
		c.reused = true
		return c, nil
	}
	c.nc.Close()
	return b.dial(ctx)
}

// dial opens a connection in a slot the caller already holds; on failure
// the slot is released and the backend marked down (unless the caller's
// context ended).
func (b *backend) dial(ctx context.Context) (*conn, error) {
	nc, err := b.dialer.DialContext(ctx, b.network, b.address)
	if err != nil {
		b.releaseSlot()
		wentDown := false
		if ctx.Err() == nil && !fdlimit.Reached(err) {
			wentDown = b.healthy(monoclock.Now())
			b.markDown()
		}
		return nil, &dialError{err: err, wentDown: wentDown}
	}
	if !b.silent.Load() {
		b.markUp()
	}
	c := &conn{
		nc: nc,
		br: bufio.NewReaderSize(nc, connBufSize),
		b:  b,
	}
	c.bw = bufio.NewWriterSize(outCounter{c}, connBufSize)
	return c, nil
}

// starveAfter is how long a freshly dialed connection may wait for the
// start of its answer before a worker is freed for it: put closes the
// connections that come back instead of keeping them, and rescue closes
// an idle one, each once per starveAfter.
const starveAfter = 100 * time.Millisecond

// awaitAnswer records that c, freshly dialed, carries a request whose
// answer has not begun; answered ends that.
func (b *backend) awaitAnswer(c *conn) {
	b.mu.Lock()
	if b.unanswered == nil {
		b.unanswered = make(map[*conn]int64)
	}
	b.unanswered[c] = monoclock.Now()
	c.rescue = time.AfterFunc(starveAfter, func() { b.rescue(c) })
	b.mu.Unlock()
}

func (b *backend) answered(c *conn) {
	b.mu.Lock()
	if _, ok := b.unanswered[c]; ok {
		delete(b.unanswered, c)
		c.rescue.Stop()
	}
	b.mu.Unlock()
}

// rescue frees a worker for c, still unanswered starveAfter after its
// request went out (or after the last worker freed for it), by closing an
// idle connection: its worker then accepts the oldest connection in
// php-fpm's listen queue. put does the same when a connection comes back,
// but after a burst no connection may come back: the burst's first
// requests finished before starveAfter, their connections went idle
// holding every worker, and the rest would wait for SESSIONGATE_PHP_TIMEOUT.
// While c stays unanswered, one idle connection is closed each starveAfter
// (the freed worker may have taken an older queued connection, ours or
// another gateway's). A slow script on a new connection (a long poll)
// looks the same from here and costs the idle connections a reconnect.
func (b *backend) rescue(c *conn) {
	b.mu.Lock()
	since, waiting := b.unanswered[c]
	if !waiting || b.closed {
		b.mu.Unlock()
		return
	}
	// Checked again each starveAfter while c waits, idle connections or
	// not: the workers may go idle later, on connections that put kept
	// because they came back before anyone had waited starveAfter.
	now := monoclock.Now()
	if wait := time.Duration(int64(starveAfter) - (now - since)); wait > 0 {
		// put freed a worker for c less than starveAfter ago, and
		// restarted its clock.
		c.rescue.Reset(wait)
		b.mu.Unlock()
		return
	}
	if len(b.idle) == 0 {
		c.rescue.Reset(starveAfter) // nothing to close yet
		b.mu.Unlock()
		return
	}
	// With an idle connection there is no waiter (put hands connections
	// to waiters first): its slot simply frees.
	idle := b.takeOldestIdleLocked()
	b.open--
	b.unanswered[c] = now
	c.rescue.Reset(starveAfter)
	b.mu.Unlock()
	idle.nc.Close()
}

// starvedLocked reports a fresh connection that php-fpm may not have
// accepted: each php-fpm worker serves one connection at a time and stays
// with a kept-alive one until it is closed, so with more connections than
// workers (SESSIONGATE_PHP_MAX_CONNS above pm.max_children, or several
// gateways on one pool) a new connection can sit in the listen queue while
// every worker waits on a connection idle in some pool, and its request
// would wait for the read timeout (504). Closing a finished connection
// instead of keeping it frees its worker, which then accepts the oldest
// queued one. One connection is closed per waiting one and starveAfter,
// so a fresh connection that is merely running a slow script (a long
// poll) costs at most ten reconnects a second, not one per request.
func (b *backend) starvedLocked(now int64) bool {
	for w, since := range b.unanswered {
		if now-since > int64(starveAfter) {
			b.unanswered[w] = now
			return true
		}
	}
	return false
}

// put returns a healthy connection after a complete exchange.
func (b *backend) put(c *conn) {
	b.mu.Lock()
	if b.closed || (len(b.unanswered) > 0 && b.starvedLocked(monoclock.Now())) {
		b.mu.Unlock()
		b.discard(c)
		return
	}
	if len(b.waiters) > 0 {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.mu.Unlock()
		w <- c
		return
	}
	c.idleSince = monoclock.Now()
	b.idle = append(b.idle, c)
	if b.reaper == nil && b.idleTimeout > 0 {
		b.reaper = time.AfterFunc(b.idleTimeout, b.reapIdle)
	}
	b.mu.Unlock()
}

// reapIdle closes the connections idle for idleTimeout, freeing their
// slots, and waits for the next one to come due. The idle list is in the
// order the connections went idle (put appends; acquire takes from either
// end), so the due ones are at its front.
func (b *backend) reapIdle() {
	now := monoclock.Now()
	limit := int64(b.idleTimeout)
	b.mu.Lock()
	n := 0
	for n < len(b.idle) && now-b.idle[n].idleSince >= limit {
		n++
	}
	due := append([]*conn(nil), b.idle[:n]...)
	b.idle = slices.Delete(b.idle, 0, n)
	b.open -= n
	b.reaper = nil
	if len(b.idle) > 0 {
		b.reaper = time.AfterFunc(time.Duration(limit-(now-b.idle[0].idleSince)), b.reapIdle)
	}
	b.mu.Unlock()
	for _, c := range due {
		c.nc.Close()
	}
}

// linger holds c, whose request its client abandoned before php-fpm
// answered (responseReader.abandon), until the answer begins, php-fpm
// closes or wait passes, then closes it and frees its slot. Until then a
// php-fpm worker runs the script, or will take it from the listen queue,
// whatever the gateway does: php-fpm notices a closed connection only when
// the script writes. A slot freed at the cancel let the pool open another
// connection for a worker php-fpm did not have; clients that reset each
// request once it was sent had php-fpm run a script per reset, for
// nobody, with legitimate requests queued behind them.
func (b *backend) linger(c *conn, wait time.Duration) {
	c.nc.SetReadDeadline(time.Now().Add(wait))
	c.br.Peek(1)
	if !c.reused {
		b.answered(c)
	}
	b.discard(c)
}

// discard closes a connection that must not be reused and frees its slot.
func (b *backend) discard(c *conn) {
	c.nc.Close()
	b.releaseSlot()
}

// releaseSlot frees one slot, or hands it to the first waiter.
func (b *backend) releaseSlot() {
	b.mu.Lock()
	if len(b.waiters) > 0 {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.mu.Unlock()
		w <- nil
		return
	}
	b.open--
	b.mu.Unlock()
}

// closeIdle closes every idle connection; with final, connections returned
// later are closed too.
func (b *backend) closeIdle(final bool) {
	b.mu.Lock()
	idle := b.idle
	b.idle = nil
	b.open -= len(idle)
	if final {
		b.closed = true
	}
	b.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// BackendStats describes one php-fpm backend for metrics.
type BackendStats struct {
	Addr    string
	Open    int  // open connections (idle + busy), never above MaxConnsPerBackend
	Idle    int  // kept-alive connections waiting for a request
	Busy    int  // connections in use: a request, one abandoned until php-fpm answers it (linger), a check of a quiet backend, or a dial
	Waiting int  // requests waiting for a free connection
	Healthy bool // false while the backend is skipped after a dial failure, or while it answers nothing
}

func (b *backend) stats(now int64) BackendStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BackendStats{
		Addr:    b.addr,
		Open:    b.open,
		Idle:    len(b.idle),
		Busy:    b.open - len(b.idle),
		Waiting: len(b.waiters),
		Healthy: b.healthy(now),
	}
}

// parseBackend splits "host:port" or "unix:/path".
func parseBackend(addr string) (network, address string, err error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return "", "", errors.New("empty unix socket path")
		}
		return "unix", path, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("want host:port or unix:/path: %w", err)
	}
	if host == "" || port == "" {
		return "", "", errors.New("want host:port or unix:/path")
	}
	return "tcp", addr, nil
}

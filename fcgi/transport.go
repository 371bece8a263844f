// Package fcgi is sessiongate's FastCGI client: an http.RoundTripper that
// speaks FastCGI 1.0 to php-fpm over a bounded keep-alive pool, builds
// nginx's CGI params from the request and the router's Script, sends
// request bodies with their exact length (read whole, or streamed when
// their length is known), streams response bodies, and turns upstream
// failures into *Error values that carry the HTTP status to answer.
//
// One request, on the wire: BEGIN_REQUEST (responder, KEEP_CONN), PARAMS
// records (each pair inside one record), an empty PARAMS, STDIN records
// with exactly CONTENT_LENGTH bytes, an empty STDIN; then STDOUT/STDERR
// records until END_REQUEST. Request id 1 on every connection: php-fpm does
// not multiplex.
package fcgi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sessiongate/sessiongate/internal/fdlimit"
	"github.com/sessiongate/sessiongate/internal/logtext"
	"github.com/sessiongate/sessiongate/internal/monoclock"
	"github.com/sessiongate/sessiongate/internal/proxyheader"
	"github.com/sessiongate/sessiongate/internal/readahead"
)

// Options configures a Transport. Zero values take the documented
// defaults; negative values are refused by NewTransport.
type Options struct {
	Backends           []string      // "host:port" or "unix:/path/to.sock"; at least one, at most 64
	MaxConnsPerBackend int           // hard cap on open conns per backend (default 8)
	DialTimeout        time.Duration // default 3s
	ReadTimeout        time.Duration // max wait for the next bytes from php-fpm once the request is sent, and for a free connection, which counts against it for the first bytes (default 60s) -> 504
	WriteTimeout       time.Duration // max wait for each write of params/body to php-fpm (default 60s) -> 504
	// IdleTimeout closes a kept-alive connection unused this long
	// (default 60s, nginx's keepalive_timeout for upstreams): an idle
	// connection pins a php-fpm worker, which a pm = ondemand pool cannot
	// retire and another gateway on the same pool cannot get.
	IdleTimeout time.Duration
	MaxBody     int64  // largest request body, known length or chunked (default 1 MiB) -> 413
	TempDir     string // where large bodies spill ("" = os.TempDir())
	// BufferBodies reads a known-length body over 64 KiB into a temp file
	// before a php-fpm connection is taken, like nginx's
	// fastcgi_request_buffering on; without it such a body streams to
	// php-fpm as it arrives. Chunked bodies are always read whole.
	BufferBodies bool
	// ReadAhead reads a response php-fpm sends faster than the client
	// takes it into memory, then a temp file (up to 1 GiB), like nginx's
	// fastcgi_buffering on: a slow client then holds no php-fpm worker.
	// A response that arrived whole by the time its header is parsed
	// (most pages) is left as it is. Without it the worker waits for the
	// client.
	ReadAhead bool
	// ReadAheadBudget (nil = none) bounds what all read-aheads hold
	// together (SESSIONGATE_RESPONSE_BUFFERING_LIMIT), shared with Django's.
	ReadAheadBudget *readahead.Budget
	StderrLogLimit  int          // max bytes of PHP stderr logged per request, as written with escapes (default 4096); the rest is counted
	Logger          *slog.Logger // default slog.Default()
	// CheckInterval (0 = never) is how often a backend in rotation that
	// answered nothing for that long is asked to answer, as /readyz asks
	// (Ping): a php-fpm that hung while the site was quiet then leaves
	// rotation before a request waits ReadTimeout on it, whether or not
	// something polls /readyz.
	CheckInterval time.Duration
}

const (
	defaultMaxConns       = 8
	defaultDialTimeout    = 3 * time.Second
	defaultReadTimeout    = 60 * time.Second
	defaultWriteTimeout   = 60 * time.Second
	defaultIdleTimeout    = 60 * time.Second
	defaultMaxBody        = 1 << 20
	defaultStderrLogLimit = 4096
	maxBackends           = 64
	// drainLimit bounds how much STDOUT RoundTrip takes from bytes already
	// received after the header, hoping to see END_REQUEST and give the
	// connection back before the body is even read.
	drainLimit = 64 << 10
	// fpmFullRecord is the STDOUT record php-fpm writes when its 8 KiB
	// output buffer fills (8192 bytes less the record header): a record
	// of that size or more ends where the buffer did, not where PHP
	// flushed.
	fpmFullRecord = 8192 - headerLen
	// smallFirstPiece is the body a response's first piece must reach
	// for a compressing server in front to take it for a page, not for
	// the first of a stream of small flushes (compress.MinSize).
	smallFirstPiece = 256
	// fullRecordWait bounds that wait for the record after a full one: a
	// page being written sends it at once, while a script whose header and
	// flushed first piece filled the record exactly (a long header, a
	// short "loading" or first event, then sleep()) sends nothing more
	// until it goes on, and that piece must not wait for it.
	fullRecordWait = 250 * time.Millisecond
)

// Transport is an http.RoundTripper to php-fpm. Every request must carry a
// *Script in its context (WithScript). Safe for concurrent use.
type Transport struct {
	o        Options
	log      *slog.Logger
	backends []*backend
	next     atomic.Uint32
	// stopChecks ends checkQuietBackends (Close).
	stopChecks chan struct{}
	closeOnce  sync.Once
	// sentHook, when set (tests only), runs once a request is on its
	// connection whole: a test that abandons a request php-fpm has must
	// cancel after that, which no delay on a loaded machine guarantees.
	sentHook func()
}

// NewTransport validates o, fills defaults and returns a Transport. It does
// not connect: use Ping to check php-fpm.
func NewTransport(o Options) (*Transport, error) {
	var errs []error
	if len(o.Backends) == 0 {
		errs = append(errs, errors.New("no php-fpm backend"))
	}
	if len(o.Backends) > maxBackends {
		errs = append(errs, fmt.Errorf("%d backends, at most %d", len(o.Backends), maxBackends))
	}
	neg := func(name string, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	neg("MaxConnsPerBackend", o.MaxConnsPerBackend < 0)
	neg("DialTimeout", o.DialTimeout < 0)
	neg("ReadTimeout", o.ReadTimeout < 0)
	neg("WriteTimeout", o.WriteTimeout < 0)
	neg("IdleTimeout", o.IdleTimeout < 0)
	neg("MaxBody", o.MaxBody < 0)
	neg("StderrLogLimit", o.StderrLogLimit < 0)
	neg("CheckInterval", o.CheckInterval < 0)
	if o.MaxConnsPerBackend == 0 {
		o.MaxConnsPerBackend = defaultMaxConns
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = defaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.MaxBody == 0 {
		o.MaxBody = defaultMaxBody
	}
	if o.StderrLogLimit == 0 {
		o.StderrLogLimit = defaultStderrLogLimit
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t := &Transport{o: o, log: o.Logger}
	seen := map[string]bool{}
	for _, a := range o.Backends {
		network, address, err := parseBackend(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("backend %q: %w", a, err))
			continue
		}
		if seen[a] {
			errs = append(errs, fmt.Errorf("backend %q listed twice", a))
			continue
		}
		seen[a] = true
		b := &backend{addr: a, network: network, address: address, max: o.MaxConnsPerBackend, idleTimeout: o.IdleTimeout, log: o.Logger}
		b.dialer.Timeout = o.DialTimeout
		t.backends = append(t.backends, b)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("fcgi: invalid options: %w", errors.Join(errs...))
	}
	t.stopChecks = make(chan struct{})
	if o.CheckInterval > 0 {
		go t.checkQuietBackends(o.CheckInterval)
	}
	return t, nil
}

// Close closes idle connections and stops the periodic checks;
// connections still carrying a request are closed when it ends instead of
// going back to the pool. RoundTrip keeps working (without keep-alive) so
// draining requests are not failed.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() { close(t.stopChecks) })
	for _, b := range t.backends {
		b.closeIdle(true)
	}
	return nil
}

// checkQuietBackends asks, every interval, each backend in rotation that
// began no answer to a request for the whole interval to answer, as Ping
// does (check). A backend that answers requests is not probed: a freeze
// there shows in its requests' timeouts (noteSilence). One out of rotation
// has its own probe (probeUntilUp). Without this, a php-fpm that froze
// while no request went to it stayed in rotation until a request waited
// out ReadTimeout on it, unless something polled /readyz.
func (t *Transport) checkQuietBackends(interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stopChecks:
			return
		case <-tick.C:
		}
		now := monoclock.Now()
		var checks sync.WaitGroup
		for _, b := range t.backends {
			if b.healthy(now) && !b.silent.Load() && now-b.lastOK.Load() >= int64(interval) {
				checks.Go(func() { t.check(b, "periodic check") })
			}
		}
		// At most one round at a time: a check takes a slot of the pool
		// for up to answerProbeWait.
		checks.Wait()
	}
}

// Stats returns one entry per backend, in configuration order.
func (t *Transport) Stats() []BackendStats {
	now := monoclock.Now()
	out := make([]BackendStats, len(t.backends))
	for i, b := range t.backends {
		out[i] = b.stats(now)
	}
	return out
}

// Ping returns nil if at least one backend can take a request now: it
// answered one within the last second, or a worker answers a probe
// (FCGI_GET_VALUES on a connection in a slot of the pool: probeAnswer), or
// it is in rotation and every one of its connections carries a request,
// whose own timeout judges it (noteSilence). A backend in rotation that
// accepts the probe's connection and answers nothing, while it begins no
// answer to a request either, is taken out of rotation as a request's
// timeout would take it out: a php-fpm that froze while no request went to
// it (a worker killed inside its scoreboard lock, docs/design.md) is found
// by the readiness checks, not by the next request's 504.
//
// The backends are probed at once, not one after another: a backend whose
// connect hangs (a full listen queue, a host gone behind a firewall that
// drops packets) would otherwise use up ctx before a healthy one after it
// was dialed. Each probe runs to its own end (answerProbeWait) whatever
// ctx, so that no verdict rests on a wait cut short; Ping returns when
// ctx ends.
func (t *Transport) Ping(ctx context.Context) error {
	now := monoclock.Now()
	for _, b := range t.backends {
		if now-b.lastOK.Load() < int64(time.Second) && b.healthy(now) {
			return nil
		}
	}
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(t.backends)) // probes left behind never block
	for i, b := range t.backends {
		go func() { results <- result{i, t.check(b, "readiness check")} }()
	}
	errs := make([]error, len(t.backends))
	for range t.backends {
		select {
		case r := <-results:
			if r.err == nil {
				return nil
			}
			errs[r.i] = fmt.Errorf("%s: %w", t.backends[r.i].addr, r.err)
		case <-ctx.Done():
			for i, err := range errs {
				if err == nil {
					errs[i] = fmt.Errorf("%s: no answer yet: %w", t.backends[i].addr, ctx.Err())
				}
			}
			return upstreamError("ping", "", errors.Join(errs...))
		}
	}
	return upstreamError("ping", "", errors.Join(errs...))
}

// check probes one backend for Ping and checkQuietBackends, and marks it
// down (its connect failed) or silent (it answered nothing) as a request
// would; foundBy names the caller in the log line. A connect that failed
// for want of a file descriptor is the gateway's shortage, not the
// backend's, as in dial.
func (t *Transport) check(b *backend, foundBy string) error {
	if !b.healthy(monoclock.Now()) || b.silent.Load() {
		// Out of rotation: probe puts it back if it answers.
		err := b.probe(context.Background())
		if err != nil && !errors.Is(err, errProbeNoSlot) && !fdlimit.Reached(err) {
			b.markDown()
		}
		return err
	}
	before := b.answers.Load()
	err := b.probeAnswer(context.Background(), false)
	var noAnswer *errNoAnswer
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errProbeNoSlot):
		return nil // busy, not silent: every connection carries a request
	case errors.As(err, &noAnswer):
		if b.answers.Load() == before {
			t.takeOutSilent(b, err, "found_by", foundBy)
		}
	case errors.Is(err, ErrProtocol), fdlimit.Reached(err):
		// Something answers, not FastCGI (a wrong port): every request
		// fails the same way, and it stays in rotation as it would.
	default:
		b.markDown()
	}
	return err
}

// pick chooses the healthy backend with the fewest requests in flight,
// starting the scan at a rotating index so ties spread round-robin. When
// every untried backend is down, it takes the one that comes back soonest:
// a request then fails fast rather than being refused outright.
func (t *Transport) pick(tried uint64) *backend {
	if len(t.backends) == 1 {
		return t.backends[0]
	}
	now := monoclock.Now()
	start := int(t.next.Add(1))
	var best, soonest *backend
	bestLoad := 0
	for i := range t.backends {
		idx := (start + i) % len(t.backends)
		if tried&(1<<idx) != 0 {
			continue
		}
		b := t.backends[idx]
		if !b.healthy(now) {
			if soonest == nil || b.downUntil.Load() < soonest.downUntil.Load() {
				soonest = b
			}
			continue
		}
		if l := b.load(); best == nil || l < bestLoad {
			best, bestLoad = b, l
		}
	}
	if best == nil {
		return soonest
	}
	return best
}

func (t *Transport) index(b *backend) int {
	for i, x := range t.backends {
		if x == b {
			return i
		}
	}
	return 0
}

var encBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// RoundTrip sends req to php-fpm and returns the response as soon as its
// CGI header is complete; the body streams record by record. Errors are
// *Error values (see StatusOf). A request is sent again on a fresh
// connection after a failed dial, or when a reused connection failed before
// any response byte while the body can still be sent again: mostly a worker
// that retired (pm.max_requests) and never read it. A worker killed while
// it ran the script fails the same way, so an idempotent request (GET,
// HEAD, PUT, DELETE, ...) may then run twice, as behind nginx's kept-alive
// upstreams. A request that must not run twice (POST, PATCH, ... without
// an idempotency key) is sent again only if the worker is provably still
// reading, i.e. retiring rather than killed with it (workerStillReading).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// What writing the request uses is freed once the write is over: when
	// RoundTrip returns, or, for a response that began while a large body
	// was still being sent (exchange), when that write ends.
	var cleanups []func()
	handedOff := false
	defer func() {
		if !handedOff {
			runAll(cleanups)
		}
	}()
	if req.Body != nil {
		// The body is fully consumed (or abandoned) once the write ends.
		cleanups = append(cleanups, func() { req.Body.Close() })
	}
	ctx := req.Context()
	s := ScriptFrom(ctx)
	if s == nil {
		return nil, &Error{Status: http.StatusInternalServerError, Op: "route", Err: ErrNoScript}
	}

	var body requestBody
	if pb, ok := req.Body.(*preparedBody); ok {
		body = pb.b // freed by ReadBody's caller
	} else {
		var err error
		if body, err = prepareBody(ctx, req, t.o.MaxBody, t.o.TempDir, t.o.BufferBodies); err != nil {
			return nil, err
		}
		cleanups = append(cleanups, body.release)
	}

	bp := encBufPool.Get().(*[]byte)
	cleanups = append(cleanups, func() {
		if cap(*bp) <= 1<<20 {
			encBufPool.Put(bp)
		}
	})
	enc := newParamEncoder(appendBeginRequest((*bp)[:0]))
	err := encodeParams(&enc, req, s, body.size, func(name string) {
		t.log.Warn("fcgi: Extra param may not replace a standard or HTTP_* param; dropped",
			"param", name, "script", s.ScriptName)
	})
	if err != nil {
		return nil, paramError(err)
	}
	prefix := enc.finish()
	*bp = prefix

	var tried uint64
	fresh := false
	// waited is how long the request has waited for a free connection:
	// that wait counts against ReadTimeout, which bounds the time until
	// PHP starts its answer, as in nginx, where a request php-fpm has no
	// worker for waits in its listen queue within fastcgi_read_timeout.
	var waited time.Duration
	for {
		b := t.pick(tried)
		answersBefore := b.answers.Load()
		// A kept-alive connection is peeked at first (checkIdle): one
		// php-fpm closed is not written to, which a streamed body or a
		// request that must not run twice could not be sent again from.
		c, w, err := b.acquire(ctx, t.o.ReadTimeout-waited, fresh)
		waited += w
		if err != nil {
			var de *dialError
			if errors.As(err, &de) {
				tried |= 1 << t.index(b)
				if ctx.Err() == nil && tried != (uint64(1)<<len(t.backends))-1 {
					// Once when the backend goes down, not again for
					// each request that tries it during its back-off
					// (every backend down): those log their own 502.
					if de.wentDown {
						t.log.Warn("fcgi: php-fpm backend down, trying another", "backend", b.addr, "err", de.err)
					}
					continue
				}
				return nil, upstreamError("dial", b.addr, de.err)
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, upstreamError("wait for connection", b.addr, err)
		}
		if err := ctx.Err(); err != nil {
			// The client left while the request waited for its
			// connection (an HTTP/2 stream reset right after its
			// HEADERS): once sent, php-fpm would run the script for
			// nobody, whatever the close that the cancel causes.
			b.put(c)
			return nil, upstreamError("wait for connection", b.addr, err)
		}
		resp, retry, err := t.exchange(ctx, req, s, c, prefix, &body, waited, func() { runAll(cleanups) }, &handedOff)
		if err == nil {
			return resp, nil
		}
		if retry && !fresh {
			fresh = true
			t.log.Debug("fcgi: stale kept-alive connection, retrying on a fresh one", "backend", b.addr, "err", err)
			continue
		}
		t.noteSilence(ctx, b, answersBefore, err)
		return nil, err
	}
}

// noteSilence takes b out of rotation after err, a request that waited out
// ReadTimeout for the start of its answer, when b began no answer to any
// request meanwhile (answers still at before) and a probe finds no worker
// to take a connection either: php-fpm accepts connections and nobody
// serves them (its master frozen, its processes stopped, every worker
// stuck). Left in rotation, such a backend would hold every request sent
// to it for the whole timeout. A slow script on a pool that has a worker
// free, or that answers other requests, leaves it in. The probe runs after
// the 504 is answered, not before.
func (t *Transport) noteSilence(ctx context.Context, b *backend, before uint64, err error) {
	var fe *Error
	if ctx.Err() != nil || !errors.As(err, &fe) || fe.Op != "read response header" || fe.Status != http.StatusGatewayTimeout || b.answers.Load() != before {
		return
	}
	if !b.confirming.CompareAndSwap(false, true) {
		return // the requests that timed out with it share one probe
	}
	go func() {
		defer b.confirming.Store(false)
		perr := b.probeAnswer(context.Background(), true)
		if perr == nil || b.answers.Load() != before {
			return
		}
		t.takeOutSilent(b, perr, "found_by", "request timeout", "timeout", t.o.ReadTimeout.String())
	}()
}

// takeOutSilent marks b silent and says so once, when it goes out.
func (t *Transport) takeOutSilent(b *backend, probeErr error, attrs ...any) {
	if b.markSilent() {
		t.log.Warn("fcgi: php-fpm backend answers nothing; out of rotation until it answers again",
			append([]any{"backend", b.addr, "probe", probeErr.Error(),
				"causes", "php-fpm stopped or hung, or every worker busy or held by other connections (SESSIONGATE_PHP_MAX_CONNS of every gateway on the pool, summed, above pm.max_children)"}, attrs...)...)
	}
}

func runAll(fs []func()) {
	for _, f := range fs {
		f()
	}
}

// paramError maps an unsendable param to a status: an oversized header is
// the client's (431), whether it travels as HTTP_* or as CONTENT_TYPE
// (Content-Type) or SERVER_NAME (Host, when SESSIONGATE_SERVER_NAMES does
// not name the server); an oversized URI too (414); anything else is ours.
func paramError(err error) *Error {
	var pe *errPairTooLarge
	if errors.As(err, &pe) {
		switch {
		case len(pe.name) > 5 && pe.name[:5] == "HTTP_" || pe.name == "CONTENT_TYPE" || pe.name == "SERVER_NAME":
			return &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Op: "encode params", Err: err}
		case pe.name == "REQUEST_URI" || pe.name == "QUERY_STRING" || pe.name == "DOCUMENT_URI" ||
			pe.name == "SCRIPT_NAME" || pe.name == "PATH_INFO" || pe.name == "PATH_TRANSLATED" || pe.name == "SCRIPT_FILENAME":
			return &Error{Status: http.StatusRequestURITooLong, Op: "encode params", Err: err}
		}
	}
	return &Error{Status: http.StatusInternalServerError, Op: "encode params", Err: err}
}

// exchange runs one request on c, which the request waited for that long
// (it leaves the start of the answer only the rest of ReadTimeout). On
// error the connection is already discarded; retry reports that the
// request never reached PHP and may be sent again on a fresh connection.
// When the response it returns began while a large body was still being
// sent, it sets *handedOff and the response body runs afterWrite once that
// write is over; otherwise the write is over when exchange returns.
func (t *Transport) exchange(ctx context.Context, req *http.Request, s *Script, c *conn, prefix []byte, body *requestBody, waited time.Duration, afterWrite func(), handedOff *bool) (*http.Response, bool, error) {
	b := c.b
	rr := &responseReader{t: t, c: c, script: s, path: req.URL.Path, waited: waited}
	// The client going away aborts the request: closing the connection is
	// what php-fpm understands (the worker sees it when the script next
	// writes, and stops), and the blocked read or write below returns at
	// once. A request php-fpm has whole and has not answered yet is
	// abandoned instead (abandon): its connection lingers.
	stop := context.AfterFunc(ctx, func() {
		if !rr.abandon() {
			c.nc.Close()
		}
	})
	// A body larger than memBodyLimit (spooled, or streamed from the
	// client) is written by a goroutine of its own while this one reads
	// the answer: a script that answers before it reads the body (PHP
	// reads it ahead only for a POST with a Content-Type) may write more
	// than the socket buffers hold, and would wait for that to be read
	// while the gateway waited for it to take the body, until
	// WriteTimeout. A streamed body is then read from the client after the
	// response header went out: the server runs the PHP proxy full duplex
	// for it (net/http would otherwise consume what is left of it then).
	var wdone chan error
	var stopRead func()
	if s, ok := body.stream.(BodyReadStopper); ok {
		stopRead = s.StopReading
	}
	// waitWrite waits for the end of the write, on a connection closed or
	// failed: nil when it was cut waiting for the client (waitCut), which
	// cut notes: that cut may have cancelled ctx (HTTP/1 net/http cancels
	// a request's context when a read of its connection fails).
	cut := false
	waitWrite := func() error {
		if wdone == nil {
			return nil
		}
		err, stopped := waitCut(ctx, wdone, stopRead)
		cut = cut || stopped
		wdone = nil
		return err
	}
	fail := func(op string, err error, retryable bool) (*http.Response, bool, error) {
		stop()
		b.discard(c)
		// Stderr over the log limit that came before the failure.
		rr.logDropped()
		waitWrite() // the connection is closed: the write ends at once, or is cut
		// A client body failure (clientBodyError) already accounts for
		// the context: net/http cancels it on a body read timeout too,
		// which is 408, not the client leaving.
		var ce *Error
		if errors.As(err, &ce) {
			return nil, false, ce
		}
		if ctx.Err() != nil && !cut {
			return nil, false, upstreamError(op, b.addr, fmt.Errorf("%w (%w)", ctx.Err(), err))
		}
		return nil, retryable, upstreamError(op, b.addr, err)
	}

	if !c.reused {
		// Until its answer begins, a new connection may be one php-fpm
		// has not accepted (starvedLocked, rescue): from before the
		// write, which a body larger than the socket buffers blocks on
		// such a connection.
		b.awaitAnswer(c)
	}
	outBefore := c.bytesOut
	writeFailed := func(err error) (*http.Response, bool, error) {
		if !c.reused {
			b.answered(c)
		}
		var ce *Error
		if errors.As(err, &ce) { // the client's body failed, not php-fpm
			return fail("write request", err, false)
		}
		// A connection that fails once part of the request went out
		// may be a worker that took the params, ran the script and died
		// (request_terminate_timeout, a crash) while the body was still
		// coming: like a reset before any answer, that is resent only
		// when running twice does no harm, and never once the script
		// has begun answering (a STDERR record, part of its header):
		// then it has run, and its session frames were applied.
		return fail("write request", err, c.reused && !rr.gotAny && c.br.Buffered() == 0 && body.replayable() && connGone(err) &&
			(idempotent(req) || c.bytesOut == outBefore))
	}
	if body.file != nil || body.stream != nil {
		rr.duplex, rr.sending = true, true
		wdone = make(chan error, 1)
		go func() {
			err := t.writeRequest(ctx, c, prefix, body)
			if err == nil {
				rr.sentWhole()
			}
			// Reported before the close below wakes the read of the
			// answer, which then finds why the write failed: found empty,
			// the write passed for one it cut itself (waitCut), and a
			// client's stalled or short HTTP/2 body (whose failure leaves
			// the context alive) was answered 502 for php-fpm's closed
			// connection instead of 408 or 400.
			wdone <- err
			if err != nil {
				// No answer is worth waiting for to a request not sent
				// whole: the read below returns.
				c.nc.Close()
			}
		}()
	} else if err := t.writeRequest(ctx, c, prefix, body); err != nil {
		return writeFailed(err)
	} else {
		rr.markSent()
	}

	hb := encBufPool.Get().(*[]byte)
	buf := (*hb)[:0]
	putBuf := func() {
		if cap(buf) <= 1<<20 {
			*hb = buf[:0]
			encBufPool.Put(hb)
		}
	}
	end := -1
	last := 0 // content length of the last STDOUT record read
	for end < 0 {
		err := rr.next(false)
		if err != nil && rr.lingering() {
			putBuf()
			rr.logDropped()
			if wdone != nil {
				<-wdone // sent whole: the write is over
			}
			go b.linger(c, t.o.ReadTimeout-rr.waited)
			return nil, false, upstreamError("read response header", b.addr,
				fmt.Errorf("%w (php-fpm has the request; its connection is kept until the answer begins)", ctx.Err()))
		}
		if !c.reused {
			b.answered(c)
		}
		if err == errEndRequest {
			putBuf()
			return fail("read response header", errors.New("php-fpm ended the request before a complete CGI header"), false)
		}
		if err != nil {
			putBuf()
			if wdone != nil {
				// The write may be why the answer failed: then its error
				// says what happened. A failure of the answer itself (a
				// timeout, a protocol error) ends the write.
				ours := !connGone(err)
				if ours {
					c.nc.Close()
				}
				if werr := waitWrite(); werr != nil && !ours {
					return writeFailed(werr)
				}
			}
			// A body whose read was cut (waitCut) cannot be read again.
			retryable := c.reused && !rr.gotAny && c.br.Buffered() == 0 && body.replayable() && !cut && connGone(err) &&
				(idempotent(req) || workerStillReading(c.nc))
			var ne net.Error
			if waited > 0 && errors.As(err, &ne) && ne.Timeout() {
				// The log line should say where the timeout went.
				err = fmt.Errorf("%w (after %v waiting for a free connection)", err, waited.Round(time.Millisecond))
			}
			return fail("read response header", err, retryable)
		}
		if len(buf)+rr.remaining > maxHeaderBlock+drainLimit {
			putBuf()
			return fail("read response header", fmt.Errorf("%w: CGI header block larger than %d bytes", errBadHeader, maxHeaderBlock), false)
		}
		from := len(buf)
		last = rr.remaining
		buf = append(buf, make([]byte, rr.remaining)...)
		if err := rr.readContent(buf[from:]); err != nil {
			putBuf()
			return fail("read response header", err, false)
		}
		end = findHeaderEnd(buf, from)
		if end < 0 && len(buf) > maxHeaderBlock {
			putBuf()
			return fail("read response header", fmt.Errorf("%w: CGI header block larger than %d bytes", errBadHeader, maxHeaderBlock), false)
		}
	}
	status, header, marked, err := parseCGIHeader(buf[:end], s.Marker)
	if err != nil {
		putBuf()
		return fail("parse response header", err, false)
	}
	if s.OnHeader != nil {
		s.OnHeader(HeaderInfo{Status: status, Marked: marked, Backend: b.addr})
	}

	// Take whatever complete records are already buffered: for most
	// responses this reaches END_REQUEST and the connection goes back to
	// the pool before the client has read a byte.
	//
	// A record php-fpm wrote because its buffer filled is no flush of
	// PHP's, and more follows at once: when it ends the header with fewer
	// than smallFirstPiece bytes of the body (a header of nearly 8 KiB: a
	// long Content-Security-Policy, many cookies), the next record is
	// waited for too, a moment (fullRecordWait). A server that compresses
	// would take so small a first piece for a stream of small flushes and
	// send the page uncompressed.
	done := false
	for !done && len(buf) < end+drainLimit {
		var err error
		if last >= fpmFullRecord && len(buf)-end < smallFirstPiece {
			err = rr.nextBy(time.Now().Add(fullRecordWait))
		} else {
			err = rr.next(true)
		}
		if err == errWouldBlock {
			break
		}
		if err == errEndRequest {
			done = true
			break
		}
		if err != nil {
			putBuf()
			return fail("read response", err, false)
		}
		from := len(buf)
		last = rr.remaining
		buf = append(buf, make([]byte, rr.remaining)...)
		if err := rr.readContent(buf[from:]); err != nil {
			putBuf()
			return fail("read response", err, false)
		}
	}

	rb := &responseBody{t: t, rr: rr, stop: stop, ctx: ctx, pending: buf[end:], buf: buf, hb: hb}
	if wdone != nil {
		rb.wdone, rb.afterWrite = wdone, afterWrite
		rb.stopRead = stopRead
		*handedOff = true
	}
	var respBody io.ReadCloser = rb
	if done {
		rb.finish()
	} else if t.o.ReadAhead {
		respBody = readahead.New(rb, readahead.Options{
			TempDir: t.o.TempDir,
			Budget:  t.o.ReadAheadBudget,
			OnTempFileError: func(err error) {
				t.log.Warn("fcgi: no temp file for a response read ahead; the rest waits for the client", "script", s.ScriptName, "error", err.Error())
			},
		})
	}
	resp := &http.Response{
		Status:        statusLine(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          respBody,
		ContentLength: -1,
		Request:       req,
	}
	if _, ok := header["Transfer-Encoding"]; ok {
		delete(header, "Content-Length")
	} else if cl, ok := header["Content-Length"]; ok {
		n, err := parseContentLength(cl[0])
		if len(cl) != 1 || err != nil {
			t.log.Warn("fcgi: PHP sent an invalid Content-Length; dropped", "script", s.ScriptName, "value", cl)
			delete(header, "Content-Length")
		} else {
			resp.ContentLength = n
		}
	} else if done {
		resp.ContentLength = int64(len(rb.pending))
	}
	// What PHP says about a connection (Connection, Keep-Alive, Upgrade...)
	// is not the response's: the server in front decides those itself
	// (RFC 9110 7.6.1), as nginx does for FastCGI.
	// Nor is what PHP tells nginx about buffering and caching
	// (X-Accel-Buffering...): nginx acts on those and never passes them
	// on. X-Accel-Redirect stays for the server to act on.
	for name := range header {
		if hopByHopName(name) || proxyheader.NginxControl(name) && name != proxyheader.AccelRedirect {
			delete(header, name)
		}
	}
	b.lastOK.Store(monoclock.Now())
	return resp, false, nil
}

// Whole reports whether res, an answer of a Transport, had been received
// to its end (END_REQUEST) when RoundTrip returned: its body is in memory,
// and none of it waits on PHP. A server sends such a body in one write;
// one still coming it flushes as it comes.
func Whole(res *http.Response) bool {
	b, ok := res.Body.(*responseBody)
	if !ok {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// parseContentLength reads a Content-Length value: digits only (RFC 9110
// 8.6). strconv.ParseInt alone also takes a sign ("+5", "-0"), and such a
// value, passed on, is one a client or a proxy further on reads
// differently or refuses: the response's framing would be in doubt.
func parseContentLength(v string) (int64, error) {
	if v == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fmt.Errorf("not a number of bytes: %q", v)
		}
	}
	return strconv.ParseInt(v, 10, 64)
}

func statusLine(code int) string {
	if code == http.StatusOK {
		return "200 OK"
	}
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}

// idempotent reports a request that may run twice without harm: one of
// RFC 9110's idempotent methods (section 9.2.2), or one that carries an
// idempotency key. PUT and DELETE are among them, as for nginx (which
// sends anything but POST, PATCH and LOCK again) and the Django path:
// left out, as net/http.Transport leaves them, a PHP API's update or
// delete that met a worker exiting under a php-fpm reload (SIGUSR2) got a
// 502 that nginx did not give.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// probeWait is how long workerStillReading waits for a reset: it is there
// at once on loopback and unix sockets; this covers a php-fpm a round trip
// away on a LAN.
const probeWait = 5 * time.Millisecond

// workerStillReading tells apart the two ways php-fpm closes a kept-alive
// connection after a request was written on it and before any answer. A
// worker retiring after pm.max_requests has shut down its sending side and
// reads until we close, discarding what we sent: the script never ran and
// the request may go out again. A worker killed with the request in hand
// (request_terminate_timeout, a crash, the OOM killer) may have run part of
// the script: its socket is gone, and a record written now is answered with
// a reset, after which a second write fails (a read would only repeat the
// end of the stream). The record is an FCGI_ABORT_REQUEST, which a live
// worker ignores. Only a request that must not run twice pays for the
// probe.
func workerStillReading(nc net.Conn) bool {
	var rec [headerLen]byte
	putHeader(rec[:], typeAbortRequest, 0, 0)
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := nc.Write(rec[:]); err != nil {
		return false
	}
	time.Sleep(probeWait)
	_, err := nc.Write(rec[:])
	return err == nil
}

// connGone reports errors that mean php-fpm had closed the connection
// (idle close by a recycled or restarted worker).
func connGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// writeRequest sends BEGIN_REQUEST, PARAMS and the whole STDIN stream.
// A client-side body failure is returned as *Error; a php-fpm write failure
// as the raw error.
func (t *Transport) writeRequest(ctx context.Context, c *conn, prefix []byte, body *requestBody) error {
	nc, bw := c.nc, c.bw
	deadline := func() error { return nc.SetWriteDeadline(time.Now().Add(t.o.WriteTimeout)) }
	if err := deadline(); err != nil {
		return err
	}
	if _, err := bw.Write(prefix); err != nil {
		return err
	}
	var hdr [headerLen]byte
	record := func(p []byte) error {
		putHeader(hdr[:], typeStdin, len(p), 0)
		if _, err := bw.Write(hdr[:]); err != nil {
			return err
		}
		_, err := bw.Write(p)
		return err
	}
	switch {
	case body.mem != nil:
		for p := body.mem; len(p) > 0; {
			n := min(len(p), maxStdinChunk)
			if err := record(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
	case body.file != nil || body.stream != nil:
		src := body.stream
		if body.file != nil {
			src = io.NewSectionReader(body.file, 0, body.size)
		}
		bp := bodyBufPool.Get().(*[]byte)
		defer bodyBufPool.Put(bp)
		scratch := (*bp)[:min(len(*bp), maxStdinChunk)]
		for left := body.size; left > 0; {
			n, rerr := src.Read(scratch[:min(int64(len(scratch)), left)])
			if n > 0 {
				if body.stream != nil {
					body.consumed = true
				}
				if err := deadline(); err != nil {
					return err
				}
				if err := record(scratch[:n]); err != nil {
					return err
				}
				left -= int64(n)
			}
			if rerr != nil && left > 0 {
				if rerr == io.EOF {
					rerr = io.ErrUnexpectedEOF
				}
				if body.file != nil {
					return &Error{Status: http.StatusInternalServerError, Op: "read spooled body", Err: rerr}
				}
				return clientBodyError(ctx, rerr)
			}
		}
	}
	if err := deadline(); err != nil {
		return err
	}
	if _, err := bw.Write(appendEmptyRecord(hdr[:0], typeStdin)); err != nil {
		return err
	}
	return bw.Flush()
}

// errWouldBlock: the next record is not fully buffered yet.
var errWouldBlock = errors.New("record not buffered")

// errEndRequest is returned by responseReader.next at a successful
// END_REQUEST. It is deliberately not io.EOF: a connection that closes is
// io.EOF from the network and must never pass for the end of a response.
var errEndRequest = errors.New("end of request")

// responseReader walks the records of one response. STDOUT content is left
// in the connection's reader (remaining bytes) for the caller; STDERR is
// dispatched as it comes; END_REQUEST ends the stream with errEndRequest.
type responseReader struct {
	t      *Transport
	c      *conn
	script *Script
	// path is the client's URL path, logged (clipped) with PHP's stderr
	// as the access log has it, so that a warning is tied to its page.
	path      string
	remaining int // unread content of the current STDOUT record
	padding   int // padding after it
	gotAny    bool
	// stderr accounting, per request
	logged, dropped int
	// duplex: the request is written by a goroutine of its own (exchange)
	// while the answer is read. Until it is sent whole (sending), the
	// answer has no read timeout, as nginx's fastcgi_read_timeout runs
	// once the request is sent: a body streamed from a slow client may
	// take longer than ReadTimeout to arrive, and PHP may answer only
	// once it has it. Each write still has WriteTimeout, and the client's
	// body the server's read timeout.
	duplex  bool
	wmu     sync.Mutex // serializes sentWhole, setReadDeadline and began
	sending bool
	// amu guards sent (the request is on the connection whole), begun
	// (a record of the answer came) and abandoned (abandon); it is taken
	// before wmu.
	amu                    sync.Mutex
	sent, begun, abandoned bool
	// by bounds the read deadline while nextBy waits for a record (zero
	// otherwise), so that sentWhole, which starts the read timeout when
	// a streamed body's write ends, does not stretch that short wait to
	// ReadTimeout. Guarded by amu.
	by time.Time
	// waited is how long the request waited for a free connection: until
	// its answer begins, the read timeout is ReadTimeout less that wait.
	// Written by the reading goroutine only, under wmu when duplex.
	waited time.Duration
}

func (r *responseReader) setReadDeadline() error {
	return r.setReadDeadlineBy(time.Time{})
}

// setReadDeadlineBy is setReadDeadline with the deadline no later than
// by, unless by is zero.
func (r *responseReader) setReadDeadlineBy(by time.Time) error {
	r.amu.Lock()
	defer r.amu.Unlock()
	r.by = by
	if r.abandoned {
		return r.c.nc.SetReadDeadline(time.Now())
	}
	if !by.IsZero() {
		return r.c.nc.SetReadDeadline(minTime(by, time.Now().Add(r.t.o.ReadTimeout-r.waited)))
	}
	if r.duplex {
		r.wmu.Lock()
		defer r.wmu.Unlock()
		if r.sending {
			return r.c.nc.SetReadDeadline(time.Time{})
		}
	}
	return r.c.nc.SetReadDeadline(time.Now().Add(r.t.o.ReadTimeout - r.waited))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sentWhole starts the read timeout once the request is sent: a read
// already waiting gets it too.
func (r *responseReader) sentWhole() {
	r.amu.Lock()
	r.sent = true
	r.wmu.Lock()
	r.sending = false
	d := time.Now().Add(r.t.o.ReadTimeout - r.waited)
	if !r.by.IsZero() {
		d = minTime(r.by, d)
	}
	r.c.nc.SetReadDeadline(d)
	r.wmu.Unlock()
	r.amu.Unlock()
	if h := r.t.sentHook; h != nil {
		h()
	}
}

// markSent records that the request is on the connection whole.
func (r *responseReader) markSent() {
	r.amu.Lock()
	r.sent = true
	r.amu.Unlock()
	if h := r.t.sentHook; h != nil {
		h()
	}
}

// abandon is called once the client left. A request php-fpm has whole and
// has not begun to answer is abandoned: the read waiting for the answer
// returns at once (a deadline past), and exchange leaves the connection
// to backend.linger. It reports false otherwise, and the caller closes
// the connection.
func (r *responseReader) abandon() bool {
	r.amu.Lock()
	defer r.amu.Unlock()
	if !r.sent || r.begun {
		return false
	}
	r.abandoned = true
	r.c.nc.SetReadDeadline(time.Now())
	return true
}

// lingering reports a request abandoned before its answer began.
func (r *responseReader) lingering() bool {
	r.amu.Lock()
	defer r.amu.Unlock()
	return r.abandoned && !r.begun
}

// began gives the reads after the start of the answer the whole
// ReadTimeout: the wait for a connection counted only against its start.
func (r *responseReader) began() {
	if r.duplex {
		r.wmu.Lock()
		defer r.wmu.Unlock()
	}
	r.waited = 0
}

// next positions the reader on STDOUT content (remaining > 0), or returns
// errEndRequest at END_REQUEST. With nonBlocking it only consumes records that
// are entirely buffered, else errWouldBlock.
func (r *responseReader) next(nonBlocking bool) error {
	return r.nextIn(nonBlocking, time.Time{})
}

// nextBy is next waiting for a record's header no later than by, and
// then errWouldBlock; a record whose header came is read whole.
func (r *responseReader) nextBy(by time.Time) error {
	return r.nextIn(false, by)
}

func (r *responseReader) nextIn(nonBlocking bool, by time.Time) error {
	br := r.c.br
	for r.remaining == 0 {
		if r.padding > 0 {
			if nonBlocking && br.Buffered() < r.padding {
				return errWouldBlock
			}
			if err := r.discard(r.padding); err != nil {
				return err
			}
			r.padding = 0
		}
		if nonBlocking && br.Buffered() < headerLen {
			return errWouldBlock
		}
		if !nonBlocking && (by.IsZero() || br.Buffered() < headerLen) {
			if err := r.setReadDeadlineBy(by); err != nil {
				return err
			}
		}
		p, err := br.Peek(headerLen)
		if !by.IsZero() {
			// The wait is over: the record's rest, and later reads, go by
			// the read timeout again.
			r.amu.Lock()
			r.by = time.Time{}
			r.amu.Unlock()
		}
		var ne net.Error
		if err != nil && !by.IsZero() && errors.As(err, &ne) && ne.Timeout() {
			return errWouldBlock // nothing consumed of this record
		}
		if err != nil {
			if err == io.EOF && len(p) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		h, err := parseHeader(p)
		if err != nil {
			return err
		}
		if nonBlocking && h.typ != typeStdout && br.Buffered() < headerLen+h.contentLen+h.padding {
			return errWouldBlock
		}
		if nonBlocking && h.typ == typeStdout && br.Buffered() < headerLen+h.contentLen {
			return errWouldBlock
		}
		br.Discard(headerLen)
		if !r.gotAny {
			r.amu.Lock()
			r.begun = true
			r.amu.Unlock()
			b := r.c.b
			b.answers.Add(1)
			// Load first: a CompareAndSwap that fails still takes the
			// cache line for writing, on every answer.
			if b.silent.Load() && b.silent.CompareAndSwap(true, false) {
				// Picked while every backend was out, and it answered.
				b.markUp()
				b.sayBackInRotation(true)
			}
		}
		r.gotAny = true
		if r.waited != 0 {
			r.began()
		}
		switch h.typ {
		case typeStdout:
			// An empty STDOUT record closes the stream; END_REQUEST follows.
			r.remaining, r.padding = h.contentLen, h.padding
		case typeStderr:
			msg := make([]byte, h.contentLen)
			if err := r.readContent(msg); err != nil {
				return err
			}
			r.padding = h.padding
			r.stderr(msg)
			if r.c.br.Buffered() <= int(h.padding) {
				// All php-fpm sent so far is read: it may wait for the
				// ACK of this stderr write before it sends the rest.
				ackNow(r.c.nc)
			}
		case typeEndRequest:
			var body [8]byte
			if err := r.readFull(body[:]); err != nil {
				return err
			}
			if err := r.discard(h.padding); err != nil {
				return err
			}
			if ps := body[4]; ps != statusRequestComplete {
				return fmt.Errorf("%w: END_REQUEST protocol status %d (%s)", ErrProtocol, ps, protocolStatusText(ps))
			}
			return errEndRequest
		}
	}
	return nil
}

func protocolStatusText(s byte) string {
	switch s {
	case statusCantMpxConn:
		return "cannot multiplex"
	case statusOverloaded:
		return "overloaded"
	case statusUnknownRole:
		return "unknown role"
	}
	return "unknown"
}

func (r *responseReader) readFull(p []byte) error {
	if r.c.br.Buffered() < len(p) {
		if err := r.setReadDeadline(); err != nil {
			return err
		}
	}
	_, err := io.ReadFull(r.c.br, p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // inside a record
	}
	return err
}

// readContent fills p from the current record's content.
func (r *responseReader) readContent(p []byte) error {
	if err := r.readFull(p); err != nil {
		return err
	}
	if r.remaining >= len(p) {
		r.remaining -= len(p)
	}
	return nil
}

func (r *responseReader) discard(n int) error {
	if n == 0 {
		return nil
	}
	if r.c.br.Buffered() < n {
		if err := r.setReadDeadline(); err != nil {
			return err
		}
	}
	_, err := r.c.br.Discard(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// stderr hands one STDERR record to the script's hook, or logs it within
// the per-request budget.
func (r *responseReader) stderr(msg []byte) {
	if len(msg) == 0 {
		return
	}
	if h := r.script.OnStderr; h != nil {
		if msg = h(msg); len(msg) == 0 {
			return
		}
	}
	budget := r.t.o.StderrLogLimit - r.logged
	if budget <= 0 {
		r.dropped += len(msg)
		return
	}
	// Counted as written, escapes included: a script logging binary data
	// would otherwise get lines six times the limit.
	n, written := logtext.Fit(string(msg), budget)
	r.logged += written
	if n < len(msg) {
		r.dropped += len(msg) - n
		r.logged = r.t.o.StderrLogLimit
		if n == 0 {
			return
		}
	}
	m := msg[:n]
	// "stderr", not "msg": a second "msg" key in the same JSON object
	// would replace the record's message in most parsers, and make strict
	// ones refuse the line.
	line := bytes.TrimRight(m, "\n")
	attrs := []any{"script", r.script.ScriptName, "path", r.loggedPath(), "remote", r.script.RemoteAddr,
		"backend", r.c.b.addr, "stderr", string(line)}
	if string(line) == primaryScriptUnknown {
		// php-fpm's whole answer when it cannot open SCRIPT_FILENAME; on
		// a new set-up, the document root given is not the path php-fpm
		// sees, or its user may not read the site.
		r1, r2 := joinPath(r.script.DocumentRoot, r.script.ScriptName)
		attrs = append(attrs, "script_filename", r1+r2,
			"hint", "php-fpm cannot open script_filename (SESSIONGATE_DOCUMENT_ROOT + the script): SESSIONGATE_DOCUMENT_ROOT must be the site's path as php-fpm sees it (set SESSIONGATE_STATIC_ROOT to the gateway's own path when they differ), readable by the pool's user")
	}
	r.t.log.Warn("php stderr", attrs...)
}

// primaryScriptUnknown is what php-fpm writes to stderr, before its "File
// not found." 404, when SCRIPT_FILENAME names no file it can open.
const primaryScriptUnknown = "Primary script unknown"

// logDropped reports stderr bytes that exceeded the log budget.
func (r *responseReader) logDropped() {
	if r.dropped > 0 {
		r.t.log.Warn("php stderr over the log limit; not logged", "script", r.script.ScriptName,
			"path", r.loggedPath(), "remote", r.script.RemoteAddr, "backend", r.c.b.addr, "logged_bytes", r.logged, "dropped_bytes", r.dropped)
		r.dropped = 0
	}
}

// loggedPath is the client's path as a log line may hold it, cut as the
// access log cuts it (the client chose it, and a line must stay one line
// for log pipelines); cut only when a line is written, not per request.
func (r *responseReader) loggedPath() string { return logtext.Clip(r.path, logtext.MaxValue) }

// errBodyClosed is returned by Read after Close.
var errBodyClosed = errors.New("fcgi: read on closed response body")

// responseBody streams STDOUT: each Read returns what one record holds (or
// what is already buffered), so a proxy that flushes after every write
// flushes exactly when PHP flushes. It ends with io.EOF at END_REQUEST,
// when the connection goes back to the pool. A connection that dies first
// gives an error, never io.EOF, so the client response is aborted rather
// than ending as a clean but truncated 200.
type responseBody struct {
	t       *Transport
	rr      *responseReader
	ctx     context.Context
	stop    func() bool
	pending []byte // STDOUT bytes received with the header
	buf     []byte
	hb      *[]byte
	// wdone, when not nil, delivers the result of the write of a large
	// body (spooled or streamed) still going on (exchange); afterWrite
	// frees what it used. Only whoever wins released touches them.
	wdone      chan error
	afterWrite func()
	// stopRead, when not nil, ends a read of a streamed body that waits
	// for the client (BodyReadStopper); cut notes that it was called,
	// which may have cancelled ctx.
	stopRead func()
	cut      atomic.Bool

	mu     sync.Mutex // serializes Read and the end of Close
	done   bool       // END_REQUEST seen
	err    error
	closed bool
	// released is set by whoever first gives the connection back (end of
	// stream) or throws it away (error, early Close).
	released atomic.Bool
	// closing is set by Close before it throws the connection away: a Read
	// it cuts short (ReadAhead's goroutine) was stopped by the caller, not
	// by php-fpm.
	closing atomic.Bool
}

// finish gives the connection back after END_REQUEST.
func (b *responseBody) finish() {
	b.done = true
	b.rr.logDropped()
	if !b.released.CompareAndSwap(false, true) {
		return
	}
	c := b.rr.c
	werr := b.endWrite(false)
	if !b.stop() || werr != nil {
		// The context fired (its callback closed the connection), or the
		// request was not sent whole.
		c.b.discard(c)
	} else {
		c.b.put(c)
	}
	b.ended()
}

// BodyReadStopper is a request body, streamed from the client to php-fpm
// (a known length over 64 KiB without Options.BufferBodies), whose reads
// can be ended from another goroutine: StopReading makes a read waiting
// for the client's next bytes return at once with an error, and the rest
// of the body go unread (the connection it comes on must then be closed
// after the response). The transport calls it when PHP has answered in
// full without taking the whole body.
type BodyReadStopper interface{ StopReading() }

// errWriteCut: PHP ended its answer before it took the whole body, whose
// write was then cut.
var errWriteCut = errors.New("fcgi: request body write cut: PHP answered before taking it whole")

// endWrite waits for the end of a write still going on, first closing the
// connection when closeFirst or when it has not ended by itself (PHP
// answered in full without taking the whole body), and frees what it
// used. The caller won released. A streamed body's write may be waiting
// for the client's next bytes: it ends when they come (its write to the
// closed connection fails), when the client leaves, or at the server's
// read timeout; net/http discards the rest of the body after the handler,
// or closes the connection. Once PHP answered in full, that wait is cut
// short (BodyReadStopper): a client that paused its upload, or stopped it
// on seeing the answer begin (curl does on a status of 300 or more),
// would otherwise wait that long for an answer already here.
func (b *responseBody) endWrite(closeFirst bool) error {
	if b.wdone == nil {
		return nil
	}
	var err error
	if closeFirst {
		b.rr.c.nc.Close()
		var stopped bool
		err, stopped = waitCut(b.ctx, b.wdone, b.stopRead)
		if stopped {
			b.cut.Store(true)
		}
	} else {
		select {
		case err = <-b.wdone:
		default:
			b.rr.c.nc.Close()
			if b.stopRead != nil {
				b.cut.Store(true)
				b.stopRead()
			}
			<-b.wdone
			err = errWriteCut
		}
	}
	b.wdone = nil
	b.afterWrite()
	return err
}

// waitCut waits for the end of a body write whose php-fpm connection is
// closed (or failed). A streamed body's write may be waiting for the
// client's next bytes, which a client that paused its upload may not send
// for long: that read is ended through stopRead (BodyReadStopper), stopped
// is true, and the write's error, then the gateway's own doing, is
// reported as nil, so that what failed on php-fpm's side is what the
// caller reports. Ending the read may cancel the request's context.
//
// A context already ended is no cut of ours: net/http cancels it when a
// read of the client's body fails (SESSIONGATE_READ_TIMEOUT: 408), and that
// failure may close the php-fpm connection (exchange's AfterFunc) before
// the write has reported it. The read is still ended, so nothing waits on
// the client, but the caller reports by the context, as without a cut.
func waitCut(ctx context.Context, wdone chan error, stopRead func()) (err error, stopped bool) {
	select {
	case err := <-wdone:
		return err, false
	default:
	}
	if stopRead == nil {
		return <-wdone, false
	}
	ended := ctx.Err() != nil
	stopRead()
	err = <-wdone
	if ended {
		return err, false
	}
	return nil, true
}

// ended runs the script's OnEnd hook; the caller won b.released.
func (b *responseBody) ended() {
	if h := b.rr.script.OnEnd; h != nil {
		h()
	}
}

// abandon throws the connection away and returns the error of a write it
// ended (nil when another caller had released the connection). It may run
// concurrently with Read: closing the connection is what unblocks a Read
// stuck on the network.
func (b *responseBody) abandon() error {
	if !b.released.CompareAndSwap(false, true) {
		return nil
	}
	b.stop()
	b.rr.c.b.discard(b.rr.c)
	werr := b.endWrite(true)
	b.ended()
	return werr
}

func (b *responseBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, errBodyClosed
	case len(b.pending) > 0:
		n := copy(p, b.pending)
		b.pending = b.pending[n:]
		return n, nil
	case b.done:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	case len(p) == 0:
		return 0, nil
	}
	rr := b.rr
	err := rr.next(false)
	if err == errEndRequest {
		b.finish()
		return 0, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the connection closed before END_REQUEST
	}
	if err == nil {
		if rr.c.br.Buffered() == 0 {
			err = rr.setReadDeadline()
		}
		if err == nil {
			var n int
			n, err = rr.c.br.Read(p[:min(len(p), rr.remaining)])
			rr.remaining -= n
			if n > 0 {
				return n, nil
			}
			if err == io.EOF || err == nil {
				err = io.ErrUnexpectedEOF
			}
		}
	}
	return 0, b.fail(err)
}

// fail records a body error, drops the connection and logs once.
func (b *responseBody) fail(err error) error {
	c := b.rr.c
	werr := b.abandon()
	b.rr.logDropped()
	var ce *Error
	if errors.As(werr, &ce) {
		// The client's body failed (the write closed the connection):
		// its status, not a cut-short answer.
		b.err = ce
		return b.err
	}
	var ne net.Error
	if errors.As(werr, &ne) && ne.Timeout() {
		// PHP stopped taking the body for WriteTimeout: the write closed
		// the connection, which is all the read saw.
		b.t.log.Warn("fcgi: php-fpm stopped taking the request body; aborting the client response",
			"script", b.rr.script.ScriptName, "backend", c.b.addr, "err", werr)
		b.err = upstreamError("write request", c.b.addr, werr)
		return b.err
	}
	switch {
	case b.ctx.Err() != nil && !b.cut.Load():
		err = fmt.Errorf("%w (%w)", b.ctx.Err(), err)
	case b.closing.Load():
		err = fmt.Errorf("%w (%w)", errBodyClosed, err)
	default:
		b.t.log.Warn("fcgi: php-fpm response cut short; aborting the client response",
			"script", b.rr.script.ScriptName, "backend", c.b.addr, "err", err)
	}
	b.err = upstreamError("read response body", c.b.addr, err)
	return b.err
}

// Close ends the body. Before END_REQUEST it means the client stopped
// reading: the connection is closed (php-fpm sees the abort) and its slot
// freed.
func (b *responseBody) Close() error {
	b.closing.Store(true)
	if !b.released.Load() {
		b.abandon() // also unblocks a concurrent Read
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.rr.logDropped()
	b.pending = nil
	if b.hb != nil && cap(b.buf) <= 1<<20 {
		*b.hb = b.buf[:0]
		encBufPool.Put(b.hb)
	}
	b.hb, b.buf = nil, nil
	return nil
}

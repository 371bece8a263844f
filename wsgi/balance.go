package wsgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/internal/fdlimit"
	"github.com/sessiongate/sessiongate/internal/monoclock"
)

// backend is one Django server.
type backend struct {
	name    string // as configured, for logs
	network string // "tcp" or "unix"
	addr    string // host:port or socket path
	// host is the placeholder URL host the transport pools connections
	// under; the dialer maps it back to this backend.
	host string
	// downUntil (a monoclock reading) is when a backend marked down may be
	// tried again: after the back-off (passive health), or, with the
	// checks on, downUntilAnswer: once a probe is answered (check.go).
	downUntil atomic.Int64
	// marked is the unix second of the last response that passed
	// sessiongate_django's middleware (see Proxy.checkMark).
	marked atomic.Int64
	// answers counts the responses it began: one that came while a
	// request waited in vain tells a slow view from a silent backend.
	answers atomic.Uint64
	// lastHost is the Host of the last request it answered with a status
	// under 400, for probes.
	lastHost atomic.Pointer[string]
}

func parseBackend(i int, s string) (*backend, error) {
	b := &backend{name: s, host: "backend-" + strconv.Itoa(i) + ".django.invalid"}
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("%q: unix socket path must be absolute", s)
		}
		b.network, b.addr = "unix", path
		return b, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%q is not http://host:port or unix:/path", s)
	}
	b.network, b.addr = "tcp", u.Host
	return b, nil
}

// pool picks backends round-robin, skipping those in back-off.
type pool struct {
	backends    []*backend
	byHost      map[string]*backend
	next        atomic.Uint64
	failTimeout time.Duration
	now         func() time.Time
	// mono is monoclock.Now when nil: the clock of downUntil, which a
	// step of the wall clock does not move (one stepped back an hour
	// kept a backend out of turn for the hour).
	mono func() int64
	// dial connects to one backend (DialTimeout applied).
	dial func(ctx context.Context, be *backend) (net.Conn, error)
	log  *slog.Logger
	// checks: Options.CheckInterval is set, so a backend marked down
	// stays out of turn until a probe is answered (pool.watch).
	checks bool
	// lastHost is the Host of the last request any backend answered under
	// 400, and checkHost Options.CheckHost: the probe's Host for a backend
	// that answered none yet.
	lastHost  atomic.Pointer[string]
	checkHost string
}

// monoNow reads the clock of downUntil (mono).
func (p *pool) monoNow() int64 {
	if p.mono != nil {
		return p.mono()
	}
	return monoclock.Now()
}

// order returns the backends to try for one request: the healthy ones,
// starting with the next in turn, then those in back-off, soonest back
// first (a request is better tried than refused while every backend is
// marked down: the back-off may be stale).
func (p *pool) order() []*backend {
	n := len(p.backends)
	start := int(p.next.Add(1) % uint64(n))
	now := p.monoNow()
	out := make([]*backend, 0, n)
	var down []*backend
	for i := 0; i < n; i++ {
		b := p.backends[(start+i)%n]
		if b.downUntil.Load() > now {
			down = append(down, b)
			continue
		}
		out = append(out, b)
	}
	for len(down) > 0 {
		j := 0
		for k := range down {
			if down[k].downUntil.Load() < down[j].downUntil.Load() {
				j = k
			}
		}
		out = append(out, down[j])
		down = append(down[:j], down[j+1:]...)
	}
	return out
}

// dialError marks a failure to connect: the request never reached Django,
// so another backend may take it, whatever its method.
type dialError struct {
	backend string
	err     error
}

func (e *dialError) Error() string {
	return fmt.Sprintf("connect to django backend %s: %v", e.backend, e.err)
}
func (e *dialError) Unwrap() error { return e.err }

// Timeout lets the error handler answer 504 for a connect timeout.
func (e *dialError) Timeout() bool { return isTimeout(e.err) }

// BackendState is one Django backend as the balancer sees it.
type BackendState struct {
	Name   string // as configured
	InTurn bool   // not skipped after a failure
}

// Backends returns each backend's state, in configuration order.
func (p *Proxy) Backends() []BackendState {
	now := p.pool.monoNow()
	out := make([]BackendState, len(p.pool.backends))
	for i, b := range p.pool.backends {
		out[i] = BackendState{Name: b.name, InTurn: b.downUntil.Load() <= now}
	}
	return out
}

// backendDialer connects to one backend, within timeout.
func backendDialer(timeout time.Duration) func(ctx context.Context, be *backend) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, be *backend) (net.Conn, error) {
		return d.DialContext(ctx, be.network, be.addr)
	}
}

// dialer is the transport's dial function: it maps the placeholder host
// a request was pooled under back to its backend.
func (p *pool) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		b := p.byHost[host]
		if b == nil {
			return nil, fmt.Errorf("wsgi: no backend for %q", addr)
		}
		c, err := p.dial(ctx, b)
		if err != nil {
			return nil, &dialError{backend: b.name, err: err}
		}
		return c, nil
	}
}

// balancer is the proxy's RoundTripper: it sends each request to a backend
// in turn and, when a backend cannot be connected to, marks it down and
// tries the next one. Nothing was sent then, so even a POST may move on.
// A GET, HEAD, OPTIONS, PUT or DELETE that a backend drops without
// answering moves on too (replayable), and the last backend tried gets it
// up to twice more; a POST or PATCH does not, since it may have run,
// unless the backend provably never read it (errUnread).
type balancer struct {
	pool *pool
	t    http.RoundTripper
	log  *slog.Logger
	// resign, when set, signs a request's session headers again before
	// it goes to the next backend (Proxy.resign).
	resign func(out *http.Request)
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	order := b.pool.order()
	orig := req.Body
	var lastErr error
	// sentAgain counts the tries the last backend got again.
	sentAgain := 0
	for i := 0; i < len(order); i++ {
		be := order[i]
		out := req.WithContext(req.Context()) // shallow copy
		u := *req.URL
		u.Host = be.host
		out.URL = &u
		if (i > 0 || sentAgain > 0) && b.resign != nil {
			b.resign(out)
		}
		var tb *keepBody
		if orig != nil && orig != http.NoBody {
			tb = &keepBody{rc: orig}
			out.Body = tb
		}
		answers := be.answers.Load()
		res, err := b.t.RoundTrip(out)
		if err == nil {
			be.answers.Add(1)
			if h := be.lastHost.Load(); res.StatusCode < 400 && (h == nil || *h != out.Host) {
				// Not from a 4xx: a Host Django refuses gets its 400
				// (DisallowedHost), and would be logged again with each
				// check that carried it.
				host := out.Host
				be.lastHost.Store(&host)
				b.pool.lastHost.Store(&host)
			}
			// Tried while out of turn only when every backend was.
			b.pool.putBack(be)
			return res, nil
		}
		var de *dialError
		dialFailed := errors.As(err, &de)
		if dialFailed && fdlimit.Reached(err) {
			// The gateway's own shortage: every backend would fail
			// alike, and none is to blame.
			closeBody(orig)
			return nil, err
		}
		// A safe request the backend dropped without an answer may have
		// run there; running it again elsewhere is harmless by its
		// method, so it moves on like one that could not connect. So
		// does one the backend provably never read, whatever its method
		// (errUnread).
		dropped := !dialFailed && errors.Is(err, errNoAnswer) && resendable(req, err)
		err = named(req, be, err)
		if errors.Is(err, errSilent) && req.Context().Err() == nil {
			// Not sent on: the client waited the whole timeout already.
			// A backend that answered other requests meanwhile is alive
			// and ran one slow view (a report, an export): taken out of
			// turn, it would leave the other backends all its traffic
			// for the back-off, for one request's sake.
			if be.answers.Load() == answers {
				b.pool.markDown(be, err, "request")
			}
			closeBody(orig)
			return nil, err
		}
		if !dialFailed && !dropped || req.Context().Err() != nil || (tb != nil && tb.touched() && req.GetBody == nil) {
			closeBody(orig)
			return nil, err
		}
		lastErr = err
		if tb != nil && tb.touched() {
			// A request whose body went out to a backend that dropped
			// it (replayable, or left unread), or on a kept-alive
			// connection the backend had closed and whose retry could
			// not connect: a body read ahead (GetBody) starts again.
			closeBody(orig)
			var gerr error
			if orig, gerr = req.GetBody(); gerr != nil {
				return nil, gerr
			}
		}
		if dropped {
			// One request's failure, not the backend's: it stays in
			// turn (a refused connection marks it down). Without a next
			// backend, the request's own 502 line says it all.
			if i < len(order)-1 {
				b.log.Warn("django backend dropped a request without answering; trying the next backend", "backend", be.name, "method", req.Method, "error", err.Error())
				continue
			}
			if sentAgain < maxSentAgain {
				// No next backend (often the only one): the same one
				// again (a kept-alive connection it closed meanwhile is
				// replaced by the transport). gunicorn 22 and later drop
				// a connection they accepted but had not read yet when a
				// worker exits (--max-requests, a reload), with a reset
				// and nothing run: every reload then failed a few
				// requests behind nginx too, which sends a request again
				// only to another server.
				sentAgain++
				b.log.Warn("django backend dropped a request without answering; sending it again", "backend", be.name, "method", req.Method, "error", err.Error())
				i--
			}
			continue
		}
		b.pool.markDown(be, de, "request")
	}
	closeBody(orig)
	return nil, lastErr
}

// maxSentAgain bounds the tries a safe request the last backend dropped
// gets there again. A worker that exits still accepts connections until
// its last poll ends, then drops them with its own: during a reload, which
// replaces every worker at once, a second try met another exiting worker
// in 3 of some 75 runs of TestNginxDjangoWorkerRecyclingDiff on gunicorn
// 23 (two or three at a time). Bounded, since a request that kills the
// worker that runs it is dropped every time.
const maxSentAgain = 2

// named puts be's name in the error of a request that failed there: with
// several backends, "closed the connection without answering" alone does
// not say which gunicorn to look at. A connect error names it already, and
// the client's own failures (its body, its leaving) are not the backend's.
func named(req *http.Request, be *backend, err error) error {
	var de *dialError
	var cb *errClientBody
	if errors.As(err, &de) || errors.As(err, &cb) || req.Context().Err() != nil {
		return err
	}
	return fmt.Errorf("django backend %s: %w", be.name, err)
}

// putBack returns be to turn once it answered, a request or a check; its
// return is logged when it was out until it answered.
func (p *pool) putBack(be *backend) {
	if d := be.downUntil.Load(); d != 0 && be.downUntil.CompareAndSwap(d, 0) && d == downUntilAnswer {
		p.log.Info("django backend answers again; back in turn", "backend", be.name)
	}
}

// markDown takes be out of turn: for the back-off, or with the checks on
// until a probe is answered. It is logged when the backend goes down, not
// on every request that still tries it (all backends down): each of those
// has its own 502 or 504 line already. foundBy says whether a request or
// a check found it.
func (p *pool) markDown(be *backend, err error, foundBy string) {
	now := p.monoNow()
	until, out := now+int64(p.failTimeout), p.failTimeout.String()
	if p.checks {
		until, out = downUntilAnswer, "until it answers a check"
	}
	if prev := be.downUntil.Swap(until); prev <= now {
		msg := "django backend unreachable; marked down"
		if errors.Is(err, errSilent) || errors.Is(err, errProbeSilent) {
			msg = "django backend sent no answer in time; marked down"
		}
		var de *dialError
		if errors.As(err, &de) {
			err = de.err
		}
		p.log.Warn(msg, "backend", be.name, "for", out, "found_by", foundBy, "error", err.Error())
	}
}

func closeBody(rc io.ReadCloser) {
	if rc != nil {
		rc.Close()
	}
}

// keepBody lends the request body to one attempt. The transport closes a
// request's body when it fails, even when it failed before reading a byte
// (a refused connection); such a close is not passed on, so the next
// backend can still get the body. Once a byte was read the attempt owns the
// body and is never retried.
type keepBody struct {
	rc   io.ReadCloser
	used atomic.Bool
}

func (k *keepBody) Read(p []byte) (int, error) {
	k.used.Store(true)
	return k.rc.Read(p)
}

func (k *keepBody) Close() error {
	if k.used.Load() {
		return k.rc.Close()
	}
	return nil
}

func (k *keepBody) touched() bool { return k.used.Load() }

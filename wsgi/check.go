package wsgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// A backend marked down is tried again by a probe, not by a client's
// request, when the checks are on (Options.CheckInterval). Before, a
// stopped gunicorn (SIGSTOP, or every worker stuck) came back into turn
// after the 10 s back-off, and with two backends half of the requests of
// the next SESSIONGATE_DJANGO_TIMEOUT (60 s) waited on it for their 504
// before the first of them marked it down again: in turn 60 s of every
// 70, it failed some 40% of the requests for as long as it stayed silent.

// probeWait bounds the wait for a probe's answer. A gunicorn with a thread
// free answers within milliseconds; one whose every thread has been busy
// for a whole check interval (a hung database) is as useless to the next
// request as a stopped one. The same 2 s as php-fpm's probe.
const probeWait = 2 * time.Second

// recheckDown is how often a backend out of turn is probed.
const recheckDown = time.Second

// checkHeader marks the probe. sessiongate_django's middleware answers it
// (204) before any view, session or log line; a Django without the
// middleware answers `OPTIONS *` as it likes (a 404, logged by Django),
// which counts as an answer all the same.
const checkHeader = "X-Sessiongate-Check"

// downUntilAnswer in backend.downUntil: out of turn until a probe answers.
const downUntilAnswer = int64(^uint64(0) >> 1)

// errProbeSilent: the probe's connection was accepted (or is still in
// the listen queue) and nothing answered within probeWait.
var errProbeSilent = errors.New("no answer to the check within " + probeWait.String())

// probe asks be for any HTTP answer: `OPTIONS *` (RFC 9110's ping of a
// server) on a connection of its own, closed after the answer's status
// line. Any status counts: the point is that a worker took the request.
func (p *pool) probe(ctx context.Context, be *backend) error {
	c, err := p.dial(ctx, be)
	if err != nil {
		return &dialError{backend: be.name, err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeWait))
	// A Host the site answered, or one it is known by: a Django
	// middleware placed before sessiongate_django's that looks at the Host
	// (SecurityMiddleware redirecting to HTTPS, CommonMiddleware listed
	// first) then finds it in ALLOWED_HOSTS, where an unknown one is
	// logged as DisallowedHost, an error mailed to the admins.
	host := be.addr
	if h := be.lastHost.Load(); h != nil {
		host = *h
	} else if h := p.lastHost.Load(); h != nil {
		host = *h
	} else if p.checkHost != "" {
		host = p.checkHost
	} else if be.network == "unix" {
		host = "localhost"
	}
	if _, err := fmt.Fprintf(c, "OPTIONS * HTTP/1.1\r\nHost: %s\r\n%s: 1\r\nConnection: close\r\n\r\n", host, checkHeader); err != nil {
		return fmt.Errorf("check not sent: %w", err)
	}
	br := bufio.NewReaderSize(c, 4<<10)
	line, err := br.ReadString('\n')
	switch {
	case err != nil && line == "" && isTimeout(err):
		return errProbeSilent
	case err != nil && line == "":
		return fmt.Errorf("connection closed without an answer to the check: %w", err)
	case !strings.HasPrefix(line, "HTTP/1."):
		// Still an answer of a live server, if not a WSGI one: the
		// address is wrong, which requests will say with their 502.
		return nil
	}
	// Read the rest (bounded), so that the close does not reset a
	// connection the server is still writing to: gunicorn would log the
	// reset.
	io.CopyN(io.Discard, br, 64<<10)
	return nil
}

// watch runs the checks until ctx ends (Proxy.Close), which also cuts the
// probes in flight: every tick (recheckDown) it probes each backend out of
// turn, and each backend in turn that began no answer for interval; one
// round at a time, its probes at once.
func (p *pool) watch(ctx context.Context, interval, tick time.Duration) {
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	// seen and quietSince follow each backend's answer count from here:
	// the request path only counts, and the clock is read once a second.
	seen := make([]uint64, len(p.backends))
	quietSince := make([]time.Time, len(p.backends))
	start := p.now()
	for i, be := range p.backends {
		seen[i], quietSince[i] = be.answers.Load(), start
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		now := p.now()
		var round sync.WaitGroup
		for i, be := range p.backends {
			if n := be.answers.Load(); n != seen[i] {
				seen[i], quietSince[i] = n, now
			}
			switch {
			case be.downUntil.Load() == downUntilAnswer:
				round.Go(func() { p.recheck(ctx, be) })
			case be.downUntil.Load() <= p.monoNow() && now.Sub(quietSince[i]) >= interval:
				quietSince[i] = now
				round.Go(func() { p.checkQuiet(ctx, be) })
			}
		}
		round.Wait()
	}
}

// recheck probes a backend out of turn and puts it back when it answers.
func (p *pool) recheck(ctx context.Context, be *backend) {
	if p.probe(ctx, be) == nil {
		p.putBack(be)
	}
}

// checkQuiet probes a backend in turn that answered nothing for the check
// interval (no traffic, or stuck under it) and takes it out of turn when
// the probe is not answered, unless a request's answer began meanwhile.
func (p *pool) checkQuiet(ctx context.Context, be *backend) {
	answers := be.answers.Load()
	err := p.probe(ctx, be)
	if err == nil || ctx.Err() != nil || be.answers.Load() != answers {
		return
	}
	p.markDown(be, err, "periodic check")
}

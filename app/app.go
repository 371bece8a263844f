// Package app assembles one gateway from its configuration: the session
// store and manager, the PHP site (server) with the session bridge in its
// PHP slot. cmd/gateway runs what Build returns; the integration tests build
// the very same thing in-process.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/server"
	"github.com/sessiongate/sessiongate/sessionbridge"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
	"github.com/sessiongate/sessiongate/wsgi"
)

// App is a ready-to-serve gateway.
type App struct {
	Server   *server.Server
	Sessions *sessionbridge.Manager // nil when SESSIONGATE_SESSIONS=off
	metrics  *gatewayMetrics
	closers  []func() error
}

// CountRefusal counts a request net/http answered itself (431, 400, 501,
// 417) before any handler ran, so it never reached the server's observer.
func (a *App) CountRefusal(upstream string, status int) {
	a.metrics.CountRefusal(upstream, status)
}

// Build wires the gateway. It fails fast: an unreachable Redis or a bad key
// stops the start, with the reason.
func Build(ctx context.Context, cfg *config.Config, log *slog.Logger, extra ...server.Option) (*App, error) {
	mx := newMetrics(cfg, log)
	a := &App{metrics: mx}
	budget := server.NewReadAheadBudget(cfg, log)
	mx.watchReadAhead(budget)
	opts := append(mx.serverOptions(), server.WithReadAheadBudget(budget))
	opts = append(opts, extra...)
	if cfg.AdminPprof {
		opts = append(opts, pprofOptions()...)
	}
	var secrets [][]byte
	if cfg.Session.Enabled {
		st, err := a.openStore(ctx, &cfg.Session, log)
		if err != nil {
			a.Close()
			return nil, err
		}
		secrets, err = sessionSecrets(&cfg.Session, log)
		if err != nil {
			a.Close()
			return nil, err
		}
		mgr, err := sessionbridge.New(sessionbridge.Options{
			Store:   st,
			Secrets: secrets,
			Cookie: sessionbridge.CookieOptions{
				Name: cfg.Session.Cookie, Domain: cfg.Session.Domain, Secure: cfg.Session.Secure,
				MaxAge: cfg.Session.MaxAge, Encrypt: cfg.Session.Encrypt,
				SameSite: cfg.Session.CookieSameSite(), BrowserSession: cfg.Session.BrowserClose,
			},
			IdleTimeout:  cfg.Session.IdleTimeout,
			LockMode:     sessionbridge.LockMode(cfg.Session.Lock),
			LockTimeout:  cfg.Session.LockTimeout,
			LockLease:    cfg.Session.LockLease,
			StoreTimeout: cfg.Session.RedisTimeout,
			Logger:       log,
			Metrics:      mx,
		})
		if err != nil {
			a.Close()
			return nil, err
		}
		a.Sessions = mgr
		php := sessionbridge.PHPOptions{PrependPath: cfg.Session.PHPPrepend}
		opts = append(opts,
			server.WithWrapPHP(func(h http.Handler) http.Handler { return mgr.PHPHandler(h, php) }),
			server.WithReadyCheck("session store", st.Ping),
		)
	}
	if cfg.Django.Enabled() {
		if cfg.Session.Enabled && len(cfg.Session.Keys) == 0 {
			log.Warn("SESSIONGATE_SESSION_DEV without SESSIONGATE_SESSION_KEYS: Django cannot know the throwaway key, so every Django request is anonymous; give both the same SESSIONGATE_SESSION_KEYS")
		}
		dj, err := wsgi.New(wsgi.Options{
			Backends: cfg.Django.URL, DialTimeout: cfg.Django.DialTimeout, ReadTimeout: cfg.Django.Timeout, CheckInterval: cfg.Django.CheckInterval, CheckHost: cfg.SiteName(),
			Sessions: a.Sessions, Secrets: secrets, BufferBodies: cfg.RequestBuffering, ReadAhead: cfg.ResponseBuffering, ReadAheadBudget: budget, Logger: log,
		})
		if err != nil {
			a.Close()
			return nil, err
		}
		a.closers = append(a.closers, dj.Close)
		mx.watchDjango(dj.Backends)
		opts = append(opts, server.WithMount("django", cfg.Django.Paths, dj))
	}
	srv, err := server.New(cfg, log, opts...)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Server = srv
	mx.watch(srv)
	a.closers = append(a.closers, srv.Close)
	return a, nil
}

func (a *App) openStore(ctx context.Context, sc *config.SessionConfig, log *slog.Logger) (store.Store, error) {
	if sc.RedisURL == "" {
		log.Warn("SESSIONGATE_REDIS_URL is empty: sessions live in this process's memory; run ONE gateway only, sessions are lost on restart")
		st := memory.New(memory.Options{})
		a.closers = append(a.closers, st.Close)
		return st, nil
	}
	redisstore.RouteClientLog(log)
	client, err := redisstore.OpenClient(sc.RedisURL, redisstore.WithTimeouts(sc.RedisTimeout, sc.RedisTimeout, sc.RedisTimeout))
	if err != nil {
		return nil, fmt.Errorf("SESSIONGATE_REDIS_URL: %w", err)
	}
	a.closers = append(a.closers, client.Close)
	// WAIT shares the pipeline's read deadline, SESSIONGATE_REDIS_TIMEOUT,
	// with the write before it: half of it leaves the other half to the
	// script and the network, so a shortfall comes back as a count, not a
	// broken connection.
	st, err := redisstore.New(client, redisstore.Options{Prefix: sc.RedisPrefix, Logger: log,
		WaitReplicas: sc.RedisWaitReplicas, WaitTimeout: sc.RedisTimeout / 2, Coalesce: sc.Coalesce()})
	if err != nil {
		return nil, fmt.Errorf("session store: %w", err)
	}
	// Closed before the client (closers run in reverse).
	a.closers = append(a.closers, st.Close)
	pctx, cancel := context.WithTimeout(ctx, 5*sc.RedisTimeout)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		if errors.Is(err, redisstore.ErrMisconfigured) {
			return nil, fmt.Errorf("session store: Redis at SESSIONGATE_REDIS_URL fails the start-up check: %w", err)
		}
		// Redis is there but not ready: telling the user to install it
		// would send them the wrong way.
		if redisstore.Loading(err) {
			return nil, fmt.Errorf("session store: Redis at SESSIONGATE_REDIS_URL fails the start-up check: it is still loading its data set, and answers once that is done; start the gateway again when redis-cli PING answers PONG: %w", err)
		}
		if errors.Is(err, syscall.EACCES) {
			// A unix socket the gateway's user may not use (Debian's
			// redis.conf: unixsocketperm 700): Redis is there, and the
			// next start would be refused alike.
			return nil, fmt.Errorf("session store: Redis at SESSIONGATE_REDIS_URL fails the start-up check: the gateway's user may not connect to its socket; give it access (redis.conf's unixsocketperm, e.g. 770, and the gateway's user in the socket's group): %w: %w", redisstore.ErrMisconfigured, err)
		}
		// A plain Redis port answers a TLS client's hello with nothing at
		// all (it waits for a line end), so the dial or the first read
		// times out as if Redis were stalled.
		tlsPort := ""
		if strings.HasPrefix(strings.ToLower(sc.RedisURL), "rediss") && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)) {
			tlsPort = "; with a rediss:// URL, check that the port is Redis's TLS port (redis.conf's tls-port), as a plain port answers a TLS client nothing"
		}
		if redisstore.AnsweredNothing(err) {
			return nil, fmt.Errorf("session store: Redis at SESSIONGATE_REDIS_URL fails the start-up check: it accepted the connection but answered nothing within SESSIONGATE_REDIS_TIMEOUT (%v); a Redis still loading a large data set at start may hold new connections until it is done, so start the gateway again once redis-cli PING answers PONG, or raise SESSIONGATE_REDIS_TIMEOUT for an overloaded or distant one%s: %w", sc.RedisTimeout, tlsPort, err)
		}
		// Not answering at all: at boot it may be late, but on a host
		// that never ran Redis (the example environment names one) the
		// gateway would be restarted every few seconds for ever.
		return nil, fmt.Errorf("session store: Redis at SESSIONGATE_REDIS_URL fails the start-up check (is redis-server installed and running, at the URL's address? apt-get install redis-server; or leave SESSIONGATE_REDIS_URL empty to keep sessions in memory, one gateway only)%s: %w", tlsPort, err)
	}
	if want := sc.RedisWaitReplicas; want > 0 {
		// Not a refusal: a replica may be resyncing, and requests that
		// write no session still work.
		if n, err := st.ConnectedReplicas(pctx); err == nil && n < want {
			log.Warn(fmt.Sprintf("SESSIONGATE_REDIS_WAIT_REPLICAS=%d, but the Redis master has %d connected: every session write gets 503 until enough replicas are", want, n))
		}
	}
	return st, nil
}

func sessionSecrets(sc *config.SessionConfig, log *slog.Logger) ([][]byte, error) {
	var out [][]byte
	for _, k := range sc.Keys {
		out = append(out, []byte(k))
	}
	if len(out) == 0 {
		if !sc.Dev {
			return nil, errors.New("SESSIONGATE_SESSION_KEYS is required")
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("development key: %w", err)
		}
		log.Warn("SESSIONGATE_SESSION_DEV: using a throwaway session key; every session dies with this process and other gateways cannot read its cookies")
		out = append(out, key)
	}
	return out, nil
}

// Close releases what Build opened, last opened first.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	a.closers = nil
	return errors.Join(errs...)
}

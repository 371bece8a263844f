package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sessiongate/sessiongate/app"
	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/procs"
	"github.com/sessiongate/sessiongate/server"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

// exitConfig is the exit status for a configuration the gateway can never
// start with (EX_CONFIG in sysexits.h). It differs from Go's status for a
// crash (2) and from a start that failed for now (1: Redis not answering
// yet, the port still taken), so a supervisor can restart those and stop
// on this one (deploy/systemd: RestartPreventExitStatus).
const exitConfig = 78

// stopSignals drain the gateway and stop it. SIGQUIT among them, as
// nginx and php-fpm take it (nginx -s quit, STOPSIGNAL SIGQUIT in the
// nginx image), so that a deployment moved from nginx stops gracefully:
// Go's default for it, a goroutine dump and exit status 2, cut the
// requests in flight and left their session locks in Redis. The goroutines
// are on the admin listener's /debug/pprof/goroutine?debug=2 instead
// (SESSIONGATE_ADMIN_PPROF).
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT}

// serve runs the gateway until SIGTERM, SIGINT or SIGQUIT; SIGHUP reloads the TLS
// certificate (certs.go).
func serve(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "gateway: unexpected argument %q (configuration comes from SESSIONGATE_* variables; see gateway -h)\n", args[0])
		return exitConfig
	}
	cfg, err := config.Load(environ)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return exitConfig
	}
	// A log line written to a pipe whose reader is gone (`gateway 2>&1 |
	// tee log`, where one Ctrl-C stops both) would end the process by Go's
	// default (SIGPIPE on stdout and stderr), cutting the requests in
	// flight, a drain included, and leaving their session locks to block
	// the sessions until the lease runs out. Serving goes on; the line is
	// lost, as it has nowhere to go.
	signal.Ignore(syscall.SIGPIPE)
	logger := newLogger(cfg, stderr)
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	// Caught from the start: Go's default action for SIGHUP (exit) would
	// kill a gateway still waiting for Redis or php-fpm at start, when a
	// renewal hook or a closed terminal sends one. It is handled once the
	// certificate is loaded (reloadOnHangup).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if reexecErr != nil {
		logger.Warn("running without GODEBUG="+procs.QuietSysmon+": more CPU per request", "error", reexecErr.Error())
	}
	// The process's own environment, not environ: GOMAXPROCS matters as the
	// Go runtime read it at start.
	if ok, why := procs.Enabled(os.Getenv); ok {
		go procs.Run(ctx, procs.Settings{}, logger)
	} else {
		logger.Debug("GOMAXPROCS left to Go", "why", why)
	}

	gw, err := app.Build(ctx, cfg, logger)
	if err != nil {
		if ctx.Err() != nil {
			// A stop signal while the start waited (for Redis): a
			// stop asked for, with no request in flight, not a failure.
			logger.Info("stopped before the start completed", "interrupted", err.Error())
			return 0
		}
		if errors.Is(err, redisstore.ErrMisconfigured) {
			// A password, database or ACL user Redis refuses: the next
			// start would be refused alike.
			logger.Error("cannot start: Redis refuses the settings of SESSIONGATE_REDIS_URL (fix it or the Redis user; restarting cannot help)", "error", err)
			return exitConfig
		}
		logger.Error("cannot start", "error", err)
		return 1
	}
	defer gw.Close()
	srv := gw.Server

	errLog := log.New(&serverErrorLog{logger}, "", 0)
	running := newInflight()
	public := &http.Server{
		Handler:     bodyReadTimeout(cfg.ReadTimeout, running.track(srv.Handler())),
		BaseContext: running.baseContext,
		// Every timeout explicit. ReadHeaderTimeout above all: without it a
		// client sending headers a byte at a time holds a connection forever.
		// SESSIONGATE_READ_TIMEOUT bounds each body read (bodyReadTimeout),
		// not the whole request as ReadTimeout would.
		// SESSIONGATE_WRITE_TIMEOUT bounds each response from its start
		// (server.Server), not from the end of the request headers as
		// WriteTimeout would: the app's time is PHP_TIMEOUT's business.
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    serverMaxHeaderBytes(int(cfg.MaxHeaderBytes)),
		ErrorLog:          errLog,
		// "OPTIONS *" goes to the handler too, which refuses it like nginx
		// and logs it. net/http's own answer (200) skipped the handler and
		// with it the close after a chunked body (server.front): the
		// request after such a body ran, a smuggling path.
		DisableGeneralOptionsHandler: true,
		// Over HTTP/2 a response's write deadline only queues a reset of
		// its stream, which goes out once the connection's writer can
		// write: a client that stopped reading its socket held every
		// stream's handler (and php-fpm or gunicorn connection) and the
		// connection for good. This closes such a connection.
		HTTP2: &http.HTTP2Config{WriteByteTimeout: h2WriteByteTimeout(cfg)},
	}
	var certs *certFiles
	if cfg.TLS() {
		if certs, err = loadCertFiles(cfg.TLSCert, cfg.TLSKey); err != nil {
			logger.Error("cannot load the TLS certificate", "error", err.Error())
			return 1
		}
		certs.names = cfg.HostNames()
		certs.warnMisfit(logger)
		if err := certs.expired(time.Now()); err != nil {
			// Served all the same, as nginx does: the redirect listener
			// must answer the ACME challenge that renews it.
			logger.Warn("TLS certificate expired: browsers refuse HTTPS until it is renewed (then SIGHUP)", "error", err.Error())
		}
		public.TLSConfig = publicTLSConfig(certs)
		public.MaxHeaderBytes = tlsMaxHeaderBytes(int(cfg.MaxHeaderBytes))
	}
	// Not ctx, which SIGTERM ends: SIGHUP stays handled through the drain,
	// where Go's default action (exit) would cut the requests still running.
	hupCtx, hupStop := context.WithCancel(context.Background())
	defer hupStop()
	reloadOnHangup(hupCtx, hup, certs, logger)
	lns, err := passedSockets(config.EnvironMap(environ), os.Getpid(), logger)
	if err != nil {
		// The socket unit and the gateway disagree: starting again with
		// the same sockets cannot help.
		logger.Error("cannot use the sockets systemd passed", "error", err.Error())
		return exitConfig
	}
	ln, err := lns.listen("SESSIONGATE_LISTEN", cfg.Listen)
	if err != nil {
		return listenFailedStatus(err)
	}
	// net/http's own answers (431, 400, ...) are counted in the metrics,
	// and logged with the access log on. Over TLS the listener does the
	// handshakes, for a copy of the config: net/http's HTTP/2 set-up
	// edits public.TLSConfig as Serve starts.
	var refusalLog *slog.Logger
	if cfg.AccessLog {
		refusalLog = logger
	}
	var lnTLS *tls.Config
	if cfg.TLS() {
		lnTLS = public.TLSConfig.Clone()
	}
	limitResets(public, logger)
	ln = logRefusals(public, ln, "gateway", refusalLog, gw.CountRefusal, lnTLS)

	var (
		admin   *http.Server
		adminLn net.Listener
	)
	if cfg.AdminListen != "" {
		admin = &http.Server{
			Handler:           srv.AdminHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          errLog,
		}
		if adminLn, err = lns.listen("SESSIONGATE_ADMIN_LISTEN", cfg.AdminListen); err != nil {
			ln.Close()
			return listenFailedStatus(err)
		}
	}

	var (
		redirect   *http.Server
		redirectLn net.Listener
	)
	if cfg.HTTPRedirectListen != "" {
		redirect = &http.Server{
			Handler:           srv.RedirectHandler(ln.Addr()),
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			// It reads no body and sends a redirect or an ACME token, a
			// few hundred bytes: no request needs the public listener's
			// bounds here.
			ReadTimeout:    10 * time.Second,
			WriteTimeout:   10 * time.Second,
			IdleTimeout:    cfg.IdleTimeout,
			MaxHeaderBytes: serverMaxHeaderBytes(redirectMaxHeaderBytes),
			ErrorLog:       errLog,
			// "OPTIONS *" reaches the handler and its access log (400).
			DisableGeneralOptionsHandler: true,
		}
		if redirectLn, err = lns.listen("SESSIONGATE_HTTP_REDIRECT_LISTEN", cfg.HTTPRedirectListen); err != nil {
			ln.Close()
			if adminLn != nil {
				adminLn.Close()
			}
			return listenFailedStatus(err)
		}
		redirectLn = logRefusals(redirect, redirectLn, "redirect", refusalLog, gw.CountRefusal, nil)
	}
	noKeepAlive(cfg, public, admin, redirect)

	if err := lns.unclaimed(); err != nil {
		// A socket the socket unit holds that no listener variable names:
		// a configuration error, which a restart would only repeat.
		logger.Error("cannot start", "error", err.Error())
		return exitConfig
	}

	serveErr := make(chan error, 3)
	go func() {
		// TLS or not: over TLS, ln does the handshakes (logRefusals).
		serveErr <- fmt.Errorf("public listener: %w", public.Serve(ln))
	}()
	adminAddr := ""
	if admin != nil {
		adminAddr = adminLn.Addr().String()
		go func() { serveErr <- fmt.Errorf("admin listener: %w", admin.Serve(adminLn)) }()
	}
	redirectAddr := ""
	if redirect != nil {
		redirectAddr = redirectLn.Addr().String()
		go func() { serveErr <- fmt.Errorf("redirect listener: %w", redirect.Serve(redirectLn)) }()
	}
	logger.Info("sessiongate started",
		"listen", ln.Addr().String(), "tls", cfg.TLS(), "admin", adminAddr, "http_redirect", redirectAddr, "config", cfg)
	go warnPHPDown(ctx, srv, cfg, logger)

	select {
	case err := <-serveErr:
		logger.Error("listener failed", "error", err)
		return 1
	case <-ctx.Done():
	}
	// A second stop signal stops the wait for the requests in
	// flight: they are cut as at the deadline, and their handlers still
	// release their session locks before the process exits (dying of the
	// signal would leave those locks to block their sessions until the
	// lease runs out). A third kills the process.
	again := make(chan os.Signal, 1)
	signal.Notify(again, stopSignals...)
	stop()
	hurry := make(chan struct{})
	go func() {
		<-again
		close(hurry)
		killBy((<-again).(syscall.Signal))
	}()

	logger.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	srv.Drain()
	redirectDone := make(chan struct{})
	go func() {
		defer close(redirectDone)
		if redirect == nil {
			return
		}
		// Closed with the public listener, not after it: a redirect to a
		// listener that takes no more connections would be a dead end.
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer rcancel()
		if redirect.Shutdown(rctx) != nil {
			redirect.Close()
		}
	}()
	code := 0
	if !drain(public, running, cfg.ShutdownTimeout, cutHandlerGrace(cfg), hurry, logger) {
		code = 1
	}
	<-redirectDone
	if admin != nil {
		// The admin listener outlives the drain so probes see /readyz fail
		// while requests finish; it closes last.
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		admin.Shutdown(actx)
		acancel()
	}
	logger.Info("stopped", "clean", code == 0)
	return code
}

// noKeepAlive gives SESSIONGATE_IDLE_TIMEOUT=0 nginx's meaning of
// keepalive_timeout 0, keep-alive off, on each server: net/http would take
// a zero IdleTimeout for its ReadTimeout, so an operator who copied nginx's
// 0 kept idle connections open for another timeout's length, or for ever.
func noKeepAlive(cfg *config.Config, servers ...*http.Server) {
	if cfg.IdleTimeout != 0 {
		return
	}
	for _, s := range servers {
		if s != nil {
			s.SetKeepAlivesEnabled(false)
			// HTTP/2 takes its idle timeout from IdleTimeout (else
			// ReadTimeout): with neither, a connection that opened no
			// stream was kept for good, where HTTP/1 closes an idle one
			// at ReadHeaderTimeout.
			s.IdleTimeout = cfg.ReadHeaderTimeout
		}
	}
}

// h2WriteByteTimeout is how long an HTTP/2 connection may take no bytes
// while it has some to write before it is closed: SESSIONGATE_SEND_TIMEOUT,
// else SESSIONGATE_WRITE_TIMEOUT, else a minute.
func h2WriteByteTimeout(cfg *config.Config) time.Duration {
	switch {
	case cfg.SendTimeout > 0:
		return cfg.SendTimeout
	case cfg.WriteTimeout > 0:
		return cfg.WriteTimeout
	}
	return time.Minute
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.LogFormat, "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serverErrorLog turns net/http's log lines into slog records: TLS handshake
// failures (scanners, expired clients) at debug, the rest at warn.
type serverErrorLog struct{ log *slog.Logger }

func (l *serverErrorLog) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg, "source", "net/http")
	return len(p), nil
}

// redirectMaxHeaderBytes bounds a request line plus headers on the
// redirect listener, nginx's default large_client_header_buffers (4 lines
// of 8 KiB): browsers send a host's cookies that lack the Secure flag over
// plain HTTP too, and a visitor refused with 431 would never reach HTTPS.
const redirectMaxHeaderBytes = 32 << 10

// tlsMaxHeaderBytes is the http.Server MaxHeaderBytes over TLS, where
// HTTP/2 takes it as its header list limit (plus 320 bytes): a list counts
// 32 bytes more per field than HTTP/1.1 lines, pseudo-headers included, so
// at serverMaxHeaderBytes a browser's HTTP/2 requests were refused 4 KiB
// under the limit (at 4k, all of them), and a longer field ended the whole
// connection. 8 KiB more holds the overhead of some 130 fields; the server
// handler applies SESSIONGATE_MAX_HEADER_BYTES itself, as HTTP/1.1 would
// carry the request, to HTTP/2 and to the HTTP/1.1 requests this lets
// through.
func tlsMaxHeaderBytes(n int) int {
	return serverMaxHeaderBytes(n) + 8<<10
}

// serverMaxHeaderBytes is the http.Server MaxHeaderBytes that enforces a
// limit of n bytes of request line plus headers
// (SESSIONGATE_MAX_HEADER_BYTES): net/http allows 4096 bytes more than
// MaxHeaderBytes. It stays above 0, which would mean net/http's default.
func serverMaxHeaderBytes(n int) int {
	return max(n-4096, 1)
}

// killBy ends the process by sig, as the signal's default action would,
// but SIGQUIT's by SIGKILL: Go's default for SIGQUIT prints every
// goroutine's stack to the log first (README: SIGQUIT dumps none).
func killBy(sig syscall.Signal) {
	signal.Reset(sig)
	if sig == syscall.SIGQUIT {
		sig = syscall.SIGKILL
	}
	syscall.Kill(os.Getpid(), sig)
}

// warnPHPDown says once, just after the start, when no php-fpm backend
// accepts connections. Not a refusal to start: php-fpm may come up after
// the gateway (its own unit, a container beside it), and static files and
// Django work without it. But every PHP page is a 502 until then, and the
// access log's dial error names neither the variable nor what to do, where
// a wrong socket path (another PHP version's, a pool's own) or a stopped
// php-fpm are the first mistakes of a new set-up.
func warnPHPDown(ctx context.Context, srv *server.Server, cfg *config.Config, logger *slog.Logger) {
	pctx, cancel := context.WithTimeout(ctx, cfg.PHPDialTimeout+time.Second)
	defer cancel()
	err := srv.PingPHP(pctx)
	if err == nil || ctx.Err() != nil {
		return
	}
	logger.Warn("php-fpm does not answer at SESSIONGATE_PHP_FPM="+strings.Join(cfg.PHPFPM, ",")+
		": PHP pages get 502 until it does. Start php-fpm (systemctl start php8.2-fpm), or set SESSIONGATE_PHP_FPM to the address of the pool's listen line (unix:/path for a socket), or let the gateway's user use the socket (the pool's listen.owner, listen.group and listen.mode)",
		"error", err.Error())
}

// Package server is the gateway's http.Handler: it ties routing (phproute),
// static files, the PHP upstream (fcgi) and the upstreams mounted on path
// prefixes (Django, package wsgi), and writes the access log. It also
// provides the admin handler (/healthz, /readyz) and the plain-HTTP
// redirect listener's handler (RedirectHandler).
//
// One request, outermost first:
//
//	logRequests   RequestInfo, client address (trusted proxies), access log,
//	              header edits as the header goes out (HIDE_HEADERS,
//	              RESPONSE_HEADERS, HSTS: outheaders.go)
//	compress      gzip for clients that take it (package compress; static
//	              files from its cache, see serveStatic)
//	front         a malformed Host or target (400), server names (421),
//	              the canonical name and moved URLs (301 and the like),
//	              body limit (413), rate limits (429), access rules (403,
//	              401), internal paths (404), mounted prefixes (e.g.
//	              Django), else PHP site
//	site          phproute.Resolve: static | redirect | refusal | PHP,
//	              whose body is read ahead first (ReadBody)
//	serveApp      around PHP and each mount: an X-Accel-Redirect in the
//	              app's answer is sent as the file it names (accel.go)
//	php           WithWrapPHP's wrappers: the session bridge's slot, then
//	phpProxy      fcgi.Transport (an http.RoundTripper) and the copy to the client
//
// The PHP handler receives requests whose context carries the routing
// decision (fcgi.ScriptFrom), so a wrapper can add params (Script.Extra) and
// watch stderr (Script.OnStderr) before the request reaches php-fpm.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/internal/compress"
	"github.com/sessiongate/sessiongate/internal/httpfield"
	"github.com/sessiongate/sessiongate/internal/logtext"
	"github.com/sessiongate/sessiongate/internal/readahead"
	"github.com/sessiongate/sessiongate/phproute"
)

// PHPBackend is what the server needs from the FastCGI side. *fcgi.Transport
// implements it; tests may pass another through WithPHPBackend.
type PHPBackend interface {
	http.RoundTripper
	// Ping checks that php-fpm can be reached, for /readyz.
	Ping(ctx context.Context) error
	Close() error
}

// bodyReader is a PHPBackend that can read a request body whole ahead of
// RoundTrip (*fcgi.Transport.ReadBody).
type bodyReader interface {
	ReadBody(*http.Request) (*http.Request, func(), error)
}

// Option changes how New builds the server.
type Option func(*options)

type options struct {
	php        PHPBackend
	wrapPHP    []func(http.Handler) http.Handler
	mounts     []mount
	checks     []readyCheck
	adminRoute []adminRoute
	observers  []Observer
	budget     *readahead.Budget
}

type mount struct {
	upstream string
	prefix   string
	h        http.Handler
}

type readyCheck struct {
	name  string
	check func(context.Context) error
}

type adminRoute struct {
	pattern string
	h       http.Handler
}

// WithReadAheadBudget shares b with the fcgi.Transport built from the
// configuration, so PHP's and Django's read-aheads are bounded together;
// without it the server makes its own from
// SESSIONGATE_RESPONSE_BUFFERING_LIMIT.
func WithReadAheadBudget(b *readahead.Budget) Option {
	return func(o *options) { o.budget = b }
}

// NewReadAheadBudget is the budget SESSIONGATE_RESPONSE_BUFFERING_LIMIT
// asks for, warning in log when it is spent.
func NewReadAheadBudget(cfg *config.Config, log *slog.Logger) *readahead.Budget {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limit := int64(cfg.ResponseBufferingLimit)
	if limit <= 0 {
		limit = 1 << 30 // a Config built by hand rather than by config.Load
	}
	// The default suits most disks, not every container's /tmp: past the
	// free space, clients could fill it before the limit is reached.
	if dir := os.TempDir(); cfg.ResponseBuffering {
		if free, ok := tempDirFree(dir); ok && free < limit {
			log.Warn("SESSIONGATE_RESPONSE_BUFFERING_LIMIT is more than the temp directory's free space: slow clients could fill it, and buffered uploads then fail; lower the limit or give the directory more room", "limit", limit, "free", free, "dir", dir)
		}
	}
	return readahead.NewBudget(limit, func(used, max int64) {
		log.Warn("responses read ahead of slow clients hold SESSIONGATE_RESPONSE_BUFFERING_LIMIT; more go at their clients' pace, keeping their php-fpm workers or gunicorn threads busy (logged at most once a minute)", "used", used, "limit", max)
	})
}

// WithPHPBackend makes the server send PHP requests to b instead of an
// fcgi.Transport built from the configuration. The server closes it.
func WithPHPBackend(b PHPBackend) Option {
	return func(o *options) { o.php = b }
}

// WithWrapPHP wraps the handler that sends a routed request to PHP. The
// request reaching the wrapper carries its *fcgi.Script in the context
// (fcgi.ScriptFrom) and its RequestInfo (Info). Several wrappers apply in
// order: the first given is the outermost. This is the session bridge's slot.
func WithWrapPHP(wrap func(http.Handler) http.Handler) Option {
	return func(o *options) { o.wrapPHP = append(o.wrapPHP, wrap) }
}

// WithMount routes every request whose path starts with one of prefixes to
// h, before PHP routing, and names it upstream in the access log. The
// longest matching prefix wins, across all mounts. This is how the Django
// upstream plugs in.
func WithMount(upstream string, prefixes []string, h http.Handler) Option {
	return func(o *options) {
		for _, p := range prefixes {
			o.mounts = append(o.mounts, mount{upstream: upstream, prefix: p, h: h})
		}
	}
}

// WithReadyCheck adds a check to /readyz (e.g. Redis reachable).
func WithReadyCheck(name string, check func(context.Context) error) Option {
	return func(o *options) { o.checks = append(o.checks, readyCheck{name, check}) }
}

// WithAdminHandler serves h on the admin listener at pattern (e.g.
// "GET /metrics").
func WithAdminHandler(pattern string, h http.Handler) Option {
	return func(o *options) { o.adminRoute = append(o.adminRoute, adminRoute{pattern, h}) }
}

// Observer is told about every request once it is over: its RequestInfo
// (Upstream names who answered), the status the access log shows (499 when
// the client left), the response body bytes written and the time taken. It
// runs on the request's goroutine, after the response, whether the access
// log is on or off; it must be quick and must not keep info.
type Observer func(info *RequestInfo, status int, bytes int64, d time.Duration)

// WithObserver adds an observer of finished requests (metrics). Several
// observers run in the order given.
func WithObserver(obs Observer) Option {
	return func(o *options) {
		if obs != nil {
			o.observers = append(o.observers, obs)
		}
	}
}

// Server is the gateway's request handling, built once at start.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	router  *phproute.Router
	php     PHPBackend
	phpH    http.Handler
	mounts  []mount
	checks  []readyCheck
	handler http.Handler
	admin   *http.ServeMux

	// sameRoot: php-fpm sees the site at the path the gateway routes in
	// (SESSIONGATE_STATIC_ROOT unset or equal to DOCUMENT_ROOT).
	sameRoot bool

	observers []Observer

	// gzCache holds gzipped copies of static files (nil: none).
	gzCache *compress.Cache
	// precompressedDirs are SESSIONGATE_PRECOMPRESSED's directories, each
	// ending in "/".
	precompressedDirs []string

	// internal are SESSIONGATE_INTERNAL_PATHS, longest first (accel.go).
	internal []internalLocation
	// names are SESSIONGATE_SERVER_NAMES (nil: every Host is served).
	names *serverNames
	// rates are SESSIONGATE_RATE_LIMITS, in the order they are tried.
	rates []rateRule
	// restrictedPaths are SESSIONGATE_RESTRICTED_PATHS and
	// SESSIONGATE_BASIC_AUTH, in the order they are tried.
	restrictedPaths []restrictedPath
	// longestFolded is the length of the longest entry of restrictedPaths
	// and rates lower-cased: how much of a path's folded reading matching
	// looks at (suffixFolds).
	longestFolded int
	// restBody: a rule may hold a WordPress REST route read from a form
	// body (restbody.go), so such bodies are read before the rules apply.
	restBody bool
	// errorPages are SESSIONGATE_ERROR_PAGES by status (errorpage.go).
	errorPages map[int]*errorPage
	// redirects are SESSIONGATE_REDIRECTS, in the order they are tried
	// (moved.go).
	redirects []config.Redirect
	// out are the header edits of every response (outheaders.go).
	out *outHeaders

	// sendTimeout bounds each write to a client
	// (SESSIONGATE_SEND_TIMEOUT); 0 when that is 0 or when
	// SESSIONGATE_WRITE_TIMEOUT bounds the whole response instead.
	sendTimeout time.Duration

	draining atomic.Bool
	// lingerTime and lingerTimeout bound the reading of a body left
	// unread after its answer (lingerAfter).
	lingerTime, lingerTimeout time.Duration

	closeOnce sync.Once
	closeErr  error
}

// New builds the server from cfg: the router over SESSIONGATE_STATIC_ROOT,
// the FastCGI transport and the proxy.
func New(cfg *config.Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	router, err := phproute.New(cfg.StaticRoot, cfg.IndexScript())
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	router.NoPHPUnder(cfg.NoPHPPaths)
	router.FollowSymlinksOut(cfg.SymlinkTargets())
	internal, err := openInternalLocations(cfg)
	if err != nil {
		router.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	restricted, err := newRestrictedPaths(cfg)
	if err != nil {
		router.Close()
		closeInternalLocations(internal)
		return nil, fmt.Errorf("server: %w", err)
	}
	php := o.php
	if php == nil {
		budget := o.budget
		if budget == nil {
			budget = NewReadAheadBudget(cfg, logger)
		}
		maxBody := int64(cfg.MaxBody)
		if maxBody == 0 {
			// 0 means unlimited in SESSIONGATE_MAX_BODY.
			maxBody = math.MaxInt64 / 2
		}
		t, err := fcgi.NewTransport(fcgi.Options{
			Backends:           cfg.PHPFPM,
			MaxConnsPerBackend: cfg.PHPMaxConns,
			DialTimeout:        cfg.PHPDialTimeout,
			ReadTimeout:        orForever(cfg.PHPTimeout),
			WriteTimeout:       orForever(cfg.PHPWriteTimeout),
			MaxBody:            maxBody,
			BufferBodies:       cfg.RequestBuffering,
			ReadAhead:          cfg.ResponseBuffering,
			ReadAheadBudget:    budget,
			Logger:             logger,
			CheckInterval:      cfg.PHPCheckInterval,
		})
		if err != nil {
			router.Close()
			closeInternalLocations(internal)
			return nil, fmt.Errorf("server: %w", err)
		}
		php = t
	}
	s := &Server{
		cfg:    cfg,
		log:    logger,
		router: router,
		php:    php,
		mounts: o.mounts,
		checks: append([]readyCheck{{"php-fpm", php.Ping}}, o.checks...),

		lingerTime:    lingerTime,
		lingerTimeout: lingerTimeout,

		observers: o.observers,
		internal:  internal,
		names:     newServerNames(cfg),
		rates:     newRateRules(cfg.RateLimits()),

		restrictedPaths: restricted,
		sameRoot:        filepath.Clean(cfg.StaticRoot) == filepath.Clean(cfg.DocumentRoot),
	}
	for _, e := range s.restrictedPaths {
		s.restBody = s.restBody || readsRESTBody(e.path)
		s.longestFolded = max(s.longestFolded, len(e.folded))
	}
	for _, e := range s.rates {
		s.restBody = s.restBody || readsRESTBody(e.path)
		s.longestFolded = max(s.longestFolded, len(e.folded))
	}
	s.errorPages = s.newErrorPages(cfg)
	s.out = newOutHeaders(cfg)
	s.redirects = cfg.Redirects()
	config.SortLocations(s.redirects, func(m config.Redirect) string { return m.From })
	if cfg.WriteTimeout == 0 {
		s.sendTimeout = cfg.SendTimeout
	}
	if cfg.Compress && cfg.CompressCache > 0 {
		s.gzCache = compress.NewCache(int64(cfg.CompressCache))
	}
	for _, d := range cfg.Precompressed {
		s.precompressedDirs = append(s.precompressedDirs, strings.TrimSuffix(d, "/")+"/")
	}
	// Longest prefix first, so the first match is the longest.
	sort.SliceStable(s.mounts, func(i, j int) bool { return len(s.mounts[i].prefix) > len(s.mounts[j].prefix) })

	var phpH http.Handler = phpProxy{s}
	for i := len(o.wrapPHP) - 1; i >= 0; i-- {
		phpH = o.wrapPHP[i](phpH)
	}
	s.phpH = phpH
	var front http.Handler = http.HandlerFunc(s.front)
	if cfg.Compress {
		front = compressResponses(front)
	}
	s.handler = s.logRequests(front)

	s.admin = http.NewServeMux()
	s.admin.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	s.admin.HandleFunc("GET /readyz", s.readyz)
	for _, ar := range o.adminRoute {
		s.admin.Handle(ar.pattern, ar.h)
	}
	if router.Index() != "" {
		if r := router.Resolve(router.Index()); r.Kind != phproute.PHP {
			logger.Warn("front controller not found under the static root: unmatched URLs will get 404",
				"index", router.Index(), "static_root", cfg.StaticRoot)
		}
	}
	return s, nil
}

// orForever maps the configuration's "0 = none" to a duration the fcgi
// transport (where 0 means its default) takes as no limit.
func orForever(d time.Duration) time.Duration {
	if d == 0 {
		return 100 * 365 * 24 * time.Hour
	}
	return d
}

// Handler returns the public handler.
func (s *Server) Handler() http.Handler { return s.handler }

// AdminHandler returns the admin handler: /healthz (the process answers),
// /readyz (every readiness check passes, php-fpm first) and whatever
// WithAdminHandler added.
func (s *Server) AdminHandler() http.Handler { return s.admin }

// PingPHP checks that a php-fpm backend accepts connections, as /readyz
// does.
func (s *Server) PingPHP(ctx context.Context) error { return s.php.Ping(ctx) }

// PHPStats returns the FastCGI pool state of each php-fpm backend, in
// configuration order, for metrics taken at scrape time. It is nil when the
// PHP backend does not report any (a backend given through WithPHPBackend
// reports only if it has a Stats() []fcgi.BackendStats method, as
// *fcgi.Transport does). Safe for concurrent use.
func (s *Server) PHPStats() []fcgi.BackendStats {
	if st, ok := s.php.(interface{ Stats() []fcgi.BackendStats }); ok {
		return st.Stats()
	}
	return nil
}

// GzipCacheStats returns the counts of the static files' gzip cache, and
// false when there is none (SESSIONGATE_COMPRESS off, or its cache at 0).
// Safe for concurrent use.
func (s *Server) GzipCacheStats() (compress.CacheStats, bool) {
	if s.gzCache == nil {
		return compress.CacheStats{}, false
	}
	return s.gzCache.Stats(), true
}

// Drain makes /readyz fail from now on, so that load balancers stop sending
// new requests while in-flight ones finish. Call it when shutdown starts.
func (s *Server) Drain() { s.draining.Store(true) }

// Close releases the FastCGI connections and the static root.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.php.Close(), s.router.Close())
		closeInternalLocations(s.internal)
	})
	return s.closeErr
}

// readyz runs every readiness check, each bounded, and answers 503 naming
// the failures.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var failures []string
	if s.draining.Load() {
		failures = append(failures, "shutting down")
	}
	for _, c := range s.checks {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := c.check(ctx)
		cancel()
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, c.name+":") {
				msg = c.name + ": " + msg
			}
			failures = append(failures, msg)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(failures) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready\n"+strings.Join(failures, "\n")+"\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// maxHeaderFields caps the header lines of one request, as Apache's
// LimitRequestFields and gunicorn's limit_request_fields do (100 both):
// SESSIONGATE_MAX_HEADER_BYTES bounds their size, but php-fpm's work per
// request grows faster than the number of params (50,000 small headers,
// 640 KB, kept a worker busy for 0.4 s), and gunicorn answers more than
// 100 with a bare 400. Browsers send about twenty.
const maxHeaderFields = 100

// compressResponses gzips what next sends, when the client and the
// response allow it (package compress). Inside logRequests, so the access
// log counts the bytes that went out.
func compressResponses(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The tags this gives out compressed are weak; an update that
		// carries one in If-Match must reach the app as its own.
		compress.StrongIfMatch(r.Header)
		cw := compress.NewWriter(w, r)
		returned := false
		defer func() {
			if !returned {
				// A panic (an aborted response) on its way: what is held
				// goes out before the cut, with no gzip trailer that
				// would make a body cut short look whole.
				cw.Abort()
			}
		}()
		next.ServeHTTP(cw, r)
		returned = true
		// A write error here is the client's, which the recorder has
		// already seen.
		if err := cw.Finish(); errors.Is(err, compress.ErrShort) {
			// Shorter than its Content-Length: uncompressed, net/http
			// would close the connection and the client see the cut;
			// compressed, aborting is how it does.
			if ri := Info(r.Context()); ri != nil && ri.Err == nil {
				ri.Err = err
			}
			panic(http.ErrAbortHandler)
		}
	})
}

// front applies what holds for every request, then dispatches to a mounted
// upstream or the PHP site.
func (s *Server) front(w http.ResponseWriter, r *http.Request) {
	if r.TransferEncoding != nil {
		// net/http accepts a request carrying both Transfer-Encoding:
		// chunked and Content-Length (it drops the latter, leaving no trace
		// for us to refuse it like nginx does). If a proxy in front of us
		// framed that request by its Content-Length, whatever follows the
		// chunked body on this connection could be a smuggled request:
		// never read another request from a connection that sent a chunked
		// body. Browsers do not send chunked request bodies, so this costs
		// next to nothing. First of all, so that the refusals below close
		// the connection too.
		w.Header().Set("Connection", "close")
	}
	if !r.ProtoAtLeast(1, 1) {
		// The same for every HTTP/1.0 request: net/http ignores a
		// Transfer-Encoding on HTTP/1.0 and frames the body by its
		// Content-Length (or as none), and removes the header, so a
		// chunked HTTP/1.0 request cannot be told apart here (the binary's
		// raw-byte check in cmd/gateway refuses one with 400 before it
		// gets here; a Server used on its own relies on this close). RFC
		// 9112 section 6.1 wants the connection closed after such a
		// message; HTTP/1.0 keep-alive (rare: proxies speak HTTP/1.1 or do
		// not keep HTTP/1.0 connections) is the price.
		w.Header().Set("Connection", "close")
	}
	if err := hostFieldError(r); err != nil {
		// Before the server names, which would answer 421 for what is
		// not a host at all.
		Info(r.Context()).Err = err
		s.fail(w, r, http.StatusBadRequest)
		return
	}
	if strings.IndexByte(r.RequestURI, ' ') >= 0 {
		// An HTTP/2 :path may hold a space, which no HTTP/1 request line
		// can (net/http refuses it there), and net/http passes it: a
		// query's went on raw into the request line Django's upstream
		// got ("GET /dj/?a b HTTP/1.1"), and into PHP's QUERY_STRING.
		// nginx refuses such a :path too.
		Info(r.Context()).Err = errors.New("space in the request target")
		s.fail(w, r, http.StatusBadRequest)
		return
	}
	if err := h2ContentLengthError(r); err != nil {
		Info(r.Context()).Err = err
		s.fail(w, r, http.StatusBadRequest)
		return
	}
	if s.refusedServerName(w, r) {
		// A Host the site does not have: nginx's default_server refusing
		// it. Neither app sees the forged name.
		return
	}
	if fields, size := HeadSize(r.Method, r.RequestURI, r.Host, r.Header); fields > maxHeaderFields || size > int64(s.cfg.MaxHeaderBytes) {
		closeAfter(w, r)
		status := http.StatusRequestHeaderFieldsTooLarge
		if r.ProtoMajor == 1 && int64(len(r.Method)+1+len(r.RequestURI)+len(" HTTP/1.1\r\n")) > int64(s.cfg.MaxHeaderBytes) {
			// The request line alone: 414, as nginx answers and as the
			// gateway does over plain HTTP, where net/http refuses the
			// head first; over TLS it leaves room for HTTP/2's sizing.
			status = http.StatusRequestURITooLong
		}
		Info(r.Context()).Err = fmt.Errorf("head of %d bytes over SESSIONGATE_MAX_HEADER_BYTES (%d)", size, s.cfg.MaxHeaderBytes)
		if fields > maxHeaderFields {
			Info(r.Context()).Err = fmt.Errorf("%d header fields, over the %d a head may have", fields, maxHeaderFields)
		}
		s.fail(w, r, status)
		return
	}
	if s.refusedMethod(w, r) {
		return
	}
	if s.names != nil && s.names.canonical != "" && s.redirectedToCanonical(w, r) {
		return
	}
	if strings.IndexByte(r.URL.Path, '#') >= 0 || strings.IndexByte(r.URL.RawQuery, '#') >= 0 {
		r = withoutFragment(r)
	}
	if r.URL.Scheme != "" && r.URL.Host == "" {
		// An absolute target without "//host" ("GET http:admin", whose
		// "admin" net/http keeps as the opaque part, or "http:/admin"):
		// nginx refuses it, as RFC 9110 section 4.2.1 wants an http URI
		// without a host refused. Taken as "/", it ran the front
		// controller with REQUEST_URI "http:admin", which routers that
		// read it with parse_url (Symfony's Request) route as /admin,
		// past every rule on /admin/.
		Info(r.Context()).Err = errors.New("absolute request target without a host")
		s.fail(w, r, http.StatusBadRequest)
		return
	}
	if r.URL.Path == "" && r.URL.Scheme != "" {
		// A request line in absolute form may leave the path empty ("GET
		// http://example.com HTTP/1.1"); its path is then "/" (RFC 9112
		// section 3.2.2), as nginx takes it, where routing would refuse an
		// empty path with 400. (CONNECT, whose authority form has none
		// either, was refused above.)
		r = withPath(r, "/", "")
	}
	// Before the body limit, rate limits and access rules, as nginx's
	// rewrite phase (return, rewrite ... permanent) comes before them.
	if len(s.redirects) > 0 && s.movedTo(w, r) {
		return
	}
	if max := int64(s.cfg.MaxBody); max > 0 {
		if r.ContentLength > max {
			// Like client_max_body_size: refused before anything runs or
			// any byte of the body is read.
			Info(r.Context()).Err = fmt.Errorf("body of %d bytes (Content-Length) over SESSIONGATE_MAX_BODY (%d)", r.ContentLength, max)
			closeAfter(w, r)
			s.fail(w, r, http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
	}
	// On the path routing will see (no fragment), after the 413, as
	// nginx's limit_req runs in the location the path picks.
	if len(s.rates) > 0 && (s.rateLimited(w, r, config.CleanPath(r.URL.Path)) || s.rateDotReadings(w, r, r.URL.Path) ||
		s.rateLimitedReadings(w, r, nonEmpty(hostPathReading(r)))) {
		return
	}
	// After the rate limit, as nginx's access phase follows limit_req.
	if len(s.restrictedPaths) > 0 && s.restrictedURL(w, r) {
		return
	}
	if len(s.internal) > 0 && s.internalLocationOf(config.CleanPath(r.URL.Path)) != nil {
		// Like nginx's internal locations: reached through an app's
		// X-Accel-Redirect only, whatever prefix a mount has.
		s.fail(w, r, http.StatusNotFound)
		return
	}
	if len(s.mounts) > 0 {
		p := config.CleanPath(r.URL.Path)
		for _, m := range s.mounts {
			if strings.HasPrefix(p, m.prefix) {
				Info(r.Context()).Upstream = m.upstream
				if strings.IndexByte(r.URL.Path, 0) >= 0 {
					// %00: nginx refuses it in any URI, and routing
					// refuses it on the PHP side. Django would take
					// it to the file system in its file views.
					Info(r.Context()).Err = errors.New("NUL byte in the path")
					s.fail(w, r, http.StatusBadRequest)
					return
				}
				s.serveApp(m.h, w, r, r)
				return
			}
		}
		// A prefix asked for without its trailing slash ("/admin" for
		// "/admin/") is redirected to it, as nginx does for a proxy_pass
		// location ending in "/": the PHP site would only answer it with
		// its front controller's 404.
		for _, m := range s.mounts {
			if strings.HasSuffix(m.prefix, "/") && p == m.prefix[:len(m.prefix)-1] {
				loc := (&url.URL{Path: m.prefix}).EscapedPath()
				if r.URL.RawQuery != "" {
					loc += "?" + r.URL.RawQuery
				}
				w.Header().Set("Location", loc)
				s.fail(w, r, http.StatusMovedPermanently)
				return
			}
		}
	}
	s.site(w, r)
}

// refusedMethod answers a request whose method no listener of the gateway
// takes, and reports whether it did:
//   - a method that is not a token (400), which net/http refuses on
//     HTTP/1 but passes as an HTTP/2 :method: "GET X" reached PHP as
//     REQUEST_METHOD, and the Django proxy wrote it into gunicorn's
//     request line ("GET X /dj/ HTTP/1.1"), whose target and version
//     were then the client's to choose;
//   - a method with lowercase letters (400): methods are case-sensitive
//     and nginx refuses those. gunicorn upper-cases it instead, so Django
//     would run "trace" as TRACE and "head" as HEAD while the gateway (its
//     TRACE refusal, its HEAD handling) and PHP took them for other
//     methods;
//   - TRACE and CONNECT (405). TRACE echoes the request, cookies included,
//     to whatever sent it: cross-site tracing reads HttpOnly session
//     cookies that way. CONNECT asks for a tunnel, which neither app
//     gives. nginx refuses both before any location runs; so does the
//     gateway, for PHP, static files, mounts and the redirect listener
//     alike. No Allow header: the methods a PHP or Django resource accepts
//     are theirs to say.
func (s *Server) refusedMethod(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case !httpfield.ValidName(r.Method), hasLower(r.Method):
		Info(r.Context()).Err = errors.New("method not a token in upper case")
		s.fail(w, r, http.StatusBadRequest)
	case r.Method == http.MethodTrace || r.Method == http.MethodConnect:
		s.fail(w, r, http.StatusMethodNotAllowed)
	default:
		return false
	}
	return true
}

// withoutFragment returns r with its URL cut at a "#" the client sent
// unescaped in the request target. A request target has no fragment (RFC
// 9112), but nginx ends the path its locations match there, and its
// $args (PHP's QUERY_STRING) too, as do gunicorn and PHP's parse_url (which
// front controllers route on), while net/http keeps the "#" and what
// follows in URL.Path or URL.RawQuery: routed on that,
// "/admin/users#/../../x" was matched as "/x" and reached PHP, whose router
// read "/admin/users", a path the operator gave to Django; and
// "?a=1#frag" gave PHP $_GET['a'] "1#frag". A "?" after the "#" is part of
// the fragment, not a query. An escaped "%23" is part of the path or
// query and stays. REQUEST_URI keeps the target as sent, like nginx's
// $request_uri.
func withoutFragment(r *http.Request) *http.Request {
	target := originForm(r.RequestURI)
	i := strings.IndexByte(target, '#')
	if i < 0 {
		return r
	}
	rawPath, query, _ := strings.Cut(target[:i], "?")
	p, err := url.PathUnescape(rawPath)
	if err != nil {
		// net/http accepted the same bytes; keep its reading.
		return r
	}
	r = withPath(r, p, rawPath)
	r.URL.RawQuery = query
	r.URL.ForceQuery = false
	return r
}

// withPath returns a shallow copy of r routed on another path. The URL is
// replaced, not changed in place: the request the handlers wrapped around
// this one hold stays as the client sent it.
func withPath(r *http.Request, path, rawPath string) *http.Request {
	u := *r.URL
	u.Path, u.RawPath = path, rawPath
	r = r.WithContext(r.Context())
	r.URL = &u
	return r
}

// h2ContentLengthError refuses an HTTP/2 request whose content-length
// its stream cannot match (RFC 9113 section 8.1.1 makes it malformed), as
// nginx does. net/http checks it against the DATA frames only: a stream
// that ends with its HEADERS frame is served as an empty body whatever its
// content-length says, and one that is no number is ignored, so that PHP
// and Django ran on an empty body a client had announced (a PUT stored
// empty, a form saved blank). Over HTTP/1.1 net/http refuses both.
func h2ContentLengthError(r *http.Request) error {
	cl := r.Header["Content-Length"]
	if r.ProtoMajor != 2 || len(cl) == 0 {
		return nil
	}
	n, err := strconv.ParseUint(cl[0], 10, 63)
	if err != nil {
		return fmt.Errorf("malformed content-length %q", logtext.Clip(cl[0], 100))
	}
	if r.ContentLength != int64(n) {
		// The body-less stream (r.ContentLength 0): an open one has
		// exactly the parsed value.
		return fmt.Errorf("content-length %d but the stream ended with its headers", n)
	}
	return nil
}

// closeAfter asks net/http to close an HTTP/1 connection after this
// response, whose request (its unread body, its header) must not be
// followed by another on the same connection. Not over HTTP/2, which frames
// each request: there net/http takes Connection: close as a GOAWAY, which
// ends the connection for every request after this one, the client's
// other streams included.
func closeAfter(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// nonEmpty is p as a list of readings: none when it is "".
func nonEmpty(p string) []string {
	if p == "" {
		return nil
	}
	return []string{p}
}

// hasLower reports whether s has an ASCII lowercase letter.
func hasLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			return true
		}
	}
	return false
}

// HeadSize counts a request's header lines (a repeated name counts each
// time) and the size of its request line and headers as HTTP/1.1 carries
// them ("Name: value" lines), for the method, request target, Host and
// header fields given. The gateway bounds a client's request with it
// (SESSIONGATE_MAX_HEADER_BYTES), and the Django proxy sizes the request it
// sent when Django's server dropped it. net/http enforces the limit on an
// HTTP/1 request's bytes before any handler runs, but sizes an HTTP/2
// header list its own way (32 bytes more per field, pseudo-headers
// included) from the same MaxHeaderBytes, which the gateway sets with room
// for that over TLS (serve.go): the limit itself is applied here, the same
// for both protocols. An HTTP/1 request written as clients write it
// ("Name: value" lines ending in CRLF) counts the bytes it took; one
// written compactly ("Name:value", bare LF), which net/http takes too,
// counts up to 2 bytes more per line than it took.
func HeadSize(method, target, host string, h http.Header) (fields int, size int64) {
	n := len(method) + 1 + len(target) + len(" HTTP/1.1\r\n") + len("\r\n")
	if host != "" {
		n += len("Host: \r\n") + len(host)
	}
	for name, values := range h {
		fields += len(values)
		if name == "Host" {
			continue // an HTTP/2 Host field, the request's Host (hostFieldError)
		}
		for _, v := range values {
			n += FieldLineSize(name, v)
		}
	}
	return fields, int64(n)
}

// FieldLineSize is the bytes one header field takes in an HTTP/1.1 head
// as HeadSize counts it ("Name: value" and CRLF).
func FieldLineSize(name, value string) int {
	return len(name) + len(": \r\n") + len(value)
}

// site serves the PHP site: static files, redirects and scripts.
func (s *Server) site(w http.ResponseWriter, r *http.Request) {
	ri := Info(r.Context())
	route := s.router.Resolve(r.URL.EscapedPath())
	switch route.Kind {
	case phproute.Static:
		ri.Upstream = "static"
		if p := config.CleanPath(r.URL.Path); strings.HasSuffix(p, "/") {
			// A directory's index file.
			ri.script = p + route.Name
			if len(s.restrictedPaths) > 0 && s.restrictedRoute(w, r, ri.script) {
				return
			}
		}
		s.serveStatic(w, r, route)
	case phproute.PHP:
		ri.Upstream = "php"
		ri.script = route.ScriptName
		if route.ScriptName == s.router.Index() {
			ri.frontRoute = route.PathInfo
		}
		// The script that runs may have a rule its URL did not match:
		// /wp-login.php/x runs /wp-login.php, /dir/ runs /dir/index.php
		// (nginx's index redirects internally to the script's location);
		// and front controllers route on the path after the script, so
		// /index.php/login is Laravel's /login.
		// CodeIgniter routes /?/admin/users as /admin/users, WordPress
		// ?rest_route=/wp/v2/users as /wp-json/wp/v2/users
		// (queryReadings): read only when there are rules to read them.
		var readings []string
		bodyRead := false
		if len(s.rates) > 0 || len(s.restrictedPaths) > 0 {
			readings = queryReadings(r, route.ScriptName, route.PathInfo, s.router.Index())
			// WordPress reads rest_route from a POST form body first
			// (restbody.go).
			if s.restBody && r.Method == http.MethodPost {
				r2, routes, release, err := s.restBodyRoutes(r, route.ScriptName, s.router.Index())
				if err != nil {
					s.phpError(w, r, err)
					return
				}
				defer release()
				bodyRead = r2 != r
				r = r2
				readings = append(readings, routes...)
			}
		}
		if len(s.rates) > 0 && (s.rateLimited(w, r, route.ScriptName) || route.PathInfo != "" && s.rateLimited(w, r, route.PathInfo) ||
			s.rateLimitedReadings(w, r, readings)) {
			return
		}
		if len(s.restrictedPaths) > 0 && (s.restrictedRoute(w, r, route.ScriptName, route.PathInfo) ||
			s.restrictedReadings(w, r, readings)) {
			return
		}
		script := &fcgi.Script{
			DocumentRoot: s.documentRoot(route),
			ScriptName:   route.ScriptName,
			PathInfo:     route.PathInfo,
			RequestURI:   originForm(r.RequestURI),
			DocumentURI:  route.ScriptName + route.PathInfo,
			HTTPS:        ri.HTTPS,
			RemoteAddr:   ri.RemoteAddr,
			ServerName:   ri.ServerName,
			RemoteUser:   ri.RemoteUser,
			// Forwarding headers reach PHP only from a trusted proxy.
			ForwardedTrusted: ri.ViaProxy,
		}
		if rb, ok := s.php.(bodyReader); ok && !bodyRead && r.Body != nil && r.Body != http.NoBody {
			// The whole body first, before the session lock (the PHP
			// wrappers) and a php-fpm connection are taken: a slow
			// upload holds neither.
			r2, release, err := rb.ReadBody(r)
			if err != nil {
				s.phpError(w, r, err)
				return
			}
			defer release()
			if r2 == r && r.ContentLength > 0 {
				// Left to stream to php-fpm: phpProxy reads PHP's
				// answer, and may send it, while the body still comes
				// (over HTTP/2 as well, where only StopReading applies).
				r.Body = &streamedBody{ReadCloser: r.Body}
			}
			r = r2
		}
		s.serveApp(s.phpH, w, r, r.WithContext(fcgi.WithScript(r.Context(), script)))
	case phproute.Redirect:
		loc := route.Location
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		s.fail(w, r, http.StatusMovedPermanently)
	case phproute.BadRequest:
		ri.Err = errors.New(route.Reason)
		s.fail(w, r, http.StatusBadRequest)
	case phproute.Forbidden:
		// An unreadable file is the operator's to fix, a script in an
		// upload directory may be an attack: either way, a warning with
		// the reason.
		ri.Err = errors.New(route.Reason)
		s.fail(w, r, http.StatusForbidden)
	case phproute.Failed:
		// The system's failure (no file descriptor left): not a 404
		// that browsers and CDNs would keep.
		ri.Err = errors.New(route.Reason)
		s.fail(w, r, http.StatusInternalServerError)
	default:
		if route.Warn {
			// nginx would have served it (a link out of the root):
			// without the reason the operator sees a bare 404.
			ri.Err = errors.New(route.Reason)
		}
		s.fail(w, r, http.StatusNotFound)
	}
}

// documentRoot is DOCUMENT_ROOT, from which SCRIPT_FILENAME and
// PATH_TRANSLATED are built. When php-fpm sees the site at the gateway's
// path, it is the root with its symlinks resolved, like $realpath_root in
// Laravel's and Symfony's nginx configurations: php-fpm keeps resolved
// paths in its realpath cache, so a worker given the symlinked path after
// a deploy repointed current -> releases/N would go on running the old
// release, or fail once that release is deleted. php-fpm in another
// container sees other paths, which the gateway cannot resolve: there it is
// SESSIONGATE_DOCUMENT_ROOT as configured. It is the release the route
// was found in, which another request may have seen replaced since.
func (s *Server) documentRoot(route phproute.Route) string {
	if !s.sameRoot {
		return s.cfg.DocumentRoot
	}
	if route.Root != "" {
		return route.Root
	}
	return s.router.RealPath()
}

// originForm returns the path and query of a request target as the client
// sent them. HTTP/1.1 servers must accept the absolute form ("GET
// http://host/path?q"), whose host net/http already took as the request's
// Host; nginx's $request_uri, and so REQUEST_URI, is then "/path?q", which
// front controllers route on.
func originForm(target string) string {
	if target == "" || target[0] == '/' {
		return target
	}
	i := strings.Index(target, "://")
	if i < 0 {
		return target // "*" (OPTIONS) or an authority (CONNECT)
	}
	rest := target[i+3:]
	j := strings.IndexAny(rest, "/?")
	switch {
	case j < 0:
		return "/"
	case rest[j] == '?':
		return "/" + rest[j:]
	}
	return rest[j:]
}

// fail answers with the status's page (SESSIONGATE_ERROR_PAGES) or its
// name, like nginx's short status pages.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int) {
	s.writeError(w, r, status, http.StatusText(status))
}

// Package wsgi is the gateway's Django upstream: an httputil.ReverseProxy to
// gunicorn (or any WSGI server speaking HTTP) that carries the shared
// session in signed request headers and applies the change Django hands back
// in signed response headers (docs/protocol.md section 5). The Python side
// is the sessiongate_django package in wsgi/django.
//
// One request, as Proxy.ServeHTTP runs it:
//
//	strip client X-Sessiongate-* headers (any spelling)
//	read the request body whole (memory, then a temp file; body.go),
//	         unless it has a known length over 64 KiB and is streamed
//	open the session (strict: locked until the response headers arrive)
//	Rewrite: Host kept, X-Forwarded-* from the real client, session cookie
//	         hidden, signed session headers added
//	balancer: a backend in turn; one that refuses connections is skipped
//	ModifyResponse: verify and apply the change (write/rotate/delete/touch,
//	         expiry), strip X-Sessiongate-*, set the cookie, release the lock
//	then the body is copied: read ahead of a slow client when over 64 KiB
//	         or of unknown length (ReadAhead); ReverseProxy flushes a
//	         streamed one after every write (FlushInterval 0)
package wsgi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessiongate/sessiongate/internal/bodyread"
	"github.com/sessiongate/sessiongate/internal/fdlimit"
	"github.com/sessiongate/sessiongate/internal/proxyheader"
	"github.com/sessiongate/sessiongate/internal/readahead"
	"github.com/sessiongate/sessiongate/server"
	"github.com/sessiongate/sessiongate/sessionbridge"
	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
)

// readAheadAbove is the response size from which Options.ReadAhead applies:
// below it, the socket buffers between gunicorn and the gateway hold the
// whole response.
const readAheadAbove = 64 << 10

// Options configure a Proxy.
type Options struct {
	// Backends are "http://host:port" or "unix:/path/to/socket"; several
	// are balanced round-robin.
	Backends []string
	// DialTimeout bounds connecting to one backend (default 3s).
	DialTimeout time.Duration
	// ReadTimeout bounds the wait for Django's response headers after the
	// request was sent, and then each wait for more of the body, like
	// nginx's proxy_read_timeout (default 60s); then 504. It also bounds
	// each wait for Django to take more of the request (proxy_send_timeout).
	ReadTimeout time.Duration
	// FailTimeout is how long a backend that refused a connection is
	// skipped (default 10s, like nginx's fail_timeout), when CheckInterval
	// is 0.
	FailTimeout time.Duration
	// CheckInterval, when set, has the gateway probe the backends itself
	// (SESSIONGATE_DJANGO_CHECK_INTERVAL, check.go): one that answered
	// nothing for that long is asked to answer `OPTIONS *` within 2 s, and
	// one marked down stays out of turn until it answers (probed every
	// second) instead of for FailTimeout.
	CheckInterval time.Duration
	// CheckHost is the Host of a check before any backend answered a
	// request (after that, the last Host one answered under 400): a name
	// the site is known by (SESSIONGATE_CANONICAL_NAME, or the first of
	// SESSIONGATE_SERVER_NAMES), so that a middleware listed before
	// sessiongate_django's that looks at the Host finds it in
	// ALLOWED_HOSTS. Empty: the backend's address.
	CheckHost string
	// recheckEvery is how often a backend out of turn is probed, and the
	// checks' tick (default recheckDown); tests shorten it.
	recheckEvery time.Duration
	// Sessions is the session manager; nil sends no session to Django
	// (client X-Sessiongate-* headers are still dropped).
	Sessions *sessionbridge.Manager
	// Secrets are SESSIONGATE_SESSION_KEYS: the first signs the headers.
	// Required with Sessions.
	Secrets [][]byte
	// BufferBodies reads a known-length body over 64 KiB into a temp file
	// before the session is opened and gunicorn gets the request
	// (SESSIONGATE_REQUEST_BUFFERING, nginx's proxy_request_buffering on);
	// without it such a body streams to Django as it arrives. Chunked
	// bodies and smaller ones are always read whole first.
	BufferBodies bool
	// ReadAhead reads a large or streamed response (over 64 KiB, or of
	// unknown length) ahead of a client that takes it slowly, into memory
	// then a temp file (SESSIONGATE_RESPONSE_BUFFERING, nginx's
	// proxy_buffering on), so a slow download holds no gunicorn thread. A
	// smaller response fits in the socket buffers: gunicorn is done with it
	// whatever the client does.
	ReadAhead bool
	// TempDir holds read-ahead temp files ("" = os.TempDir()).
	TempDir string
	// ReadAheadBudget (nil = none) bounds what all read-aheads hold
	// together, shared with PHP's.
	ReadAheadBudget *readahead.Budget
	Logger          *slog.Logger
}

// Proxy forwards requests to Django with the shared session.
type Proxy struct {
	rp       *httputil.ReverseProxy
	t        *h1Transport
	pool     *pool
	sessions *sessionbridge.Manager
	key      []byte // signs requests, verifies responses
	maxAge   string // X-Sessiongate-Max-Age (maxAgeValue), "" if 60 s cover ReadTimeout
	log      *slog.Logger
	now      func() time.Time
	// bufferBodies: Options.BufferBodies.
	bufferBodies bool
	readAhead    bool
	tempDir      string
	budget       *readahead.Budget
	// stopChecks ends pool.watch (Close); nil with the checks off.
	stopChecks context.CancelFunc
}

// New checks o and builds the proxy.
func New(o Options) (*Proxy, error) {
	if len(o.Backends) == 0 {
		return nil, errors.New("wsgi: no Django backend")
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 60 * time.Second
	}
	if o.FailTimeout <= 0 {
		o.FailTimeout = 10 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Proxy{sessions: o.Sessions, log: log, now: time.Now, bufferBodies: o.BufferBodies, readAhead: o.ReadAhead, tempDir: o.TempDir, budget: o.ReadAheadBudget}
	if o.Sessions != nil {
		if len(o.Secrets) == 0 {
			return nil, errors.New("wsgi: sessions need the session secrets to sign the Django headers")
		}
		p.key = HeaderKey(o.Secrets[0])
		p.maxAge = maxAgeValue(o.ReadTimeout)
	}
	p.pool = &pool{failTimeout: o.FailTimeout, now: time.Now, byHost: map[string]*backend{},
		dial: backendDialer(o.DialTimeout), log: log, checks: o.CheckInterval > 0, checkHost: o.CheckHost}
	for i, s := range o.Backends {
		b, err := parseBackend(i, s)
		if err != nil {
			return nil, fmt.Errorf("wsgi: %w", err)
		}
		p.pool.backends = append(p.pool.backends, b)
		p.pool.byHost[b.host] = b
	}
	p.t = &h1Transport{
		dial:               p.pool.dialer(),
		readTimeout:        o.ReadTimeout,
		idleTimeout:        60 * time.Second,
		reapEvery:          5 * time.Second,
		maxIdlePerHost:     64,
		maxHeaderBytes:     maxResponseHeaderBytes,
		maxRequestsPerConn: 1000,
		clean1xx:           p.cleanHeader,
		log:                log,
		resign:             p.resign,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: &balancer{pool: p.pool, t: p.t, log: log, resign: p.resign},
		// 0: ReverseProxy already flushes every write of a streamed
		// response (no Content-Length, or text/event-stream); a response
		// with a length then leaves in one write instead of two.
		FlushInterval:  0,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		// Without a pool ReverseProxy allocates (and zeroes) a 32 KiB copy
		// buffer per response: three quarters of the bytes the gateway
		// allocated on a Django page.
		BufferPool: server.CopyBuffers,
		ErrorLog:   slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if p.pool.checks {
		if o.recheckEvery <= 0 {
			o.recheckEvery = recheckDown
		}
		var ctx context.Context
		ctx, p.stopChecks = context.WithCancel(context.Background())
		go p.pool.watch(ctx, o.CheckInterval, o.recheckEvery)
	}
	return p, nil
}

// Close stops the checks and drops idle connections to Django.
func (p *Proxy) Close() error {
	if p.stopChecks != nil {
		p.stopChecks()
	}
	p.t.CloseIdleConnections()
	return nil
}

type stateKey struct{}

// reqState is one request's session context, shared by the ReverseProxy
// hooks through the request context.
type reqState struct {
	remote string // client address after trusted proxies
	https  bool
	// viaProxy: a trusted proxy sent the request, so the X-Forwarded-*
	// headers the gateway does not set itself are its, not the client's.
	viaProxy bool
	sess     *sessionbridge.Session
	nonce    string
	// out is the client's response header map, and conn the Connection
	// field the gateway set there before Django was asked (close: a
	// chunked request body, HTTP/1.0, a head the raw-byte check could
	// not follow). ReverseProxy clears out after passing on a 1xx (103
	// Early Hints), which would keep a connection open that must close.
	out  http.Header
	conn []string
}

// restoreConnection puts back the gateway's own Connection field when a
// 1xx answer cleared it.
func (st *reqState) restoreConnection() {
	if st != nil && st.conn != nil && st.out["Connection"] == nil {
		st.out["Connection"] = st.conn
	}
}

func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &reqState{remote: r.RemoteAddr, https: r.TLS != nil, out: w.Header()}
	st.conn = slices.Clone(st.out["Connection"])
	if ri := server.Info(r.Context()); ri != nil {
		st.remote, st.https, st.viaProxy = ri.RemoteAddr, ri.HTTPS, ri.ViaProxy
	}
	// Before anything reads the request: nobody but the gateway speaks
	// the session headers.
	sessionbridge.StripInternalHeaders(r.Header)
	if r.Body != nil && r.Body != http.NoBody && (p.bufferBodies || r.ContentLength <= memBodyLimit) {
		// Before the session is opened: a slow upload holds no lock.
		// (ContentLength is -1 for a chunked body, which Django could not
		// read at all: it reads up to CONTENT_LENGTH.)
		release, err := spoolBody(r)
		if err != nil {
			p.errorHandler(w, r, err)
			return
		}
		defer release()
	}
	if p.sessions != nil {
		sess, err := p.sessions.Open(r.Context(), r, st.https)
		if err != nil {
			// Logged there, like on the PHP path.
			p.sessions.RespondOpenError(w, r, err)
			return
		}
		// Normally released as soon as the response headers arrive
		// (modifyResponse); this covers every other way out.
		defer sess.Release(r.Context())
		st.sess = sess
		st.nonce = newNonce()
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

// unreservedDecoded decodes the percent-escapes of unreserved characters
// in an escaped path (letters, digits, "-", ".", "_", "~": RFC 3986
// section 6.2.2.2, the same URL either way) and keeps the others. Routing
// and the path lists judged the decoded path, and gunicorn before 22 cuts
// a SCRIPT_NAME mount (--env SCRIPT_NAME=/dj) off the path as sent, at
// the first place it occurs: /%64j/x/dj/admin/, which is /dj/x/dj/admin/
// to the gateway and under no entry, was /admin/ to Django, past an entry
// for /dj/admin/. With only reserved characters escaped, the path sent
// holds the prefix where the decoded one does. Undecodable text is left
// as it is.
func unreservedDecoded(escaped string) string {
	if !strings.Contains(escaped, "%") {
		return escaped
	}
	var b strings.Builder
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' && i+2 < len(escaped) {
			if v, err := strconv.ParseUint(escaped[i+1:i+3], 16, 8); err == nil && unreserved(byte(v)) {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rewrite prepares the request for Django. ReverseProxy has already removed
// hop-by-hop headers and the client's Forwarded and X-Forwarded-For, -Host
// and -Proto.
// reachedHost is the Host naming la, the address a client without one
// reached. A link-local address's zone is left out, as PHP's SERVER_NAME
// leaves it: net/http drops it from the Host it writes, so with it
// X-Forwarded-Host named another host than the Host, which Django refuses
// (DisallowedHost) under USE_X_FORWARDED_HOST.
func reachedHost(la net.Addr) string {
	if a, ok := la.(*net.TCPAddr); ok {
		return net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
	}
	return la.String()
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In.Context())
	out := pr.Out
	// The balancer sets the real backend; Host stays what the client sent
	// (Django's ALLOWED_HOSTS and absolute URLs depend on it).
	out.URL.Scheme = "http"
	out.URL.Host = "django"
	out.Host = pr.In.Host
	if ri := server.Info(pr.In.Context()); out.Host == "" && ri != nil && ri.ServerName != "" {
		// No Host (HTTP/1.0), and the site has names
		// (SESSIONGATE_SERVER_NAMES): the one PHP gets in SERVER_NAME.
		out.Host = ri.ServerName
	}
	if out.Host == "" {
		// No Host (HTTP/1.0): name the address the client reached, as PHP
		// gets it in SERVER_NAME. Left empty, the request would carry the
		// placeholder the balancer pools backends under, which Django
		// refuses (DisallowedHost) and asks to add to ALLOWED_HOSTS.
		if la, ok := pr.In.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil {
			out.Host = reachedHost(la)
		}
	}
	// ReverseProxy drops query parameters it cannot parse; Django gets the
	// query exactly as sent.
	out.URL.RawQuery = pr.In.URL.RawQuery
	out.URL.RawPath = unreservedDecoded(pr.In.URL.EscapedPath())
	if upgradesTo(out.Header, "h2c") {
		// Not passed on, so the request is the plain one it also is. A
		// backend that speaks h2c (hypercorn) would answer 101 and the
		// connection become a tunnel on which the client sends requests
		// straight to it, past SESSIONGATE_RESTRICTED_PATHS, _BASIC_AUTH
		// and _RATE_LIMITS (h2c smuggling). Its HTTP2-Settings is a
		// connection header (RFC 7540 section 3.2.1): an h2c upgrade is
		// never meant to cross a proxy.
		out.Header.Del("Upgrade")
		out.Header.Del("Connection")
		out.Header.Del("Http2-Settings")
	}
	viaProxy := st != nil && st.viaProxy
	if f, ok := pr.In.Header["Forwarded"]; ok && viaProxy {
		// ReverseProxy dropped it with the client's: a trusted proxy's
		// reaches Django, as it reaches PHP.
		out.Header["Forwarded"] = slices.Clone(f)
	}
	for name := range out.Header {
		// WSGI servers map '-' and '_' to the same environ key, so
		// X_Forwarded_For would pass for X-Forwarded-For, X_Sessiongate_...
		// for ours. Like nginx (underscores_in_headers off), drop them.
		// ReverseProxy removed only Forwarded and X-Forwarded-For, -Host
		// and -Proto: a client's own X-Forwarded-Port (Django's
		// USE_X_FORWARDED_PORT), -Prefix or -Ssl would still pass, so the
		// whole family goes unless a trusted proxy sent it, as on the PHP
		// side.
		if strings.ContainsRune(name, '_') || !viaProxy && proxyheader.Forwarding(name) || proxyheader.SendfileControl(name) || proxyheader.URLOverride(name) {
			delete(out.Header, name)
		}
	}
	sessionbridge.StripInternalHeaders(out.Header)
	if st == nil {
		return
	}
	out.Header.Set("X-Forwarded-For", clientIP(st.remote))
	proto := "http"
	if st.https {
		proto = "https"
	}
	out.Header.Set("X-Forwarded-Proto", proto)
	// The host the client asked for, as the canonical-name redirect reads
	// it: behind a trusted proxy that sends its own Host, the one it
	// forwards. Django with USE_X_FORWARDED_HOST builds its links and
	// checks ALLOWED_HOSTS with it, as it did behind that proxy alone.
	fwdHost := out.Host
	if viaProxy {
		if fh := server.ForwardedHost(pr.In); fh != "" {
			fwdHost = fh
		}
	}
	out.Header.Set("X-Forwarded-Host", fwdHost)
	if st.sess == nil {
		return
	}
	// Django sees the session ID in the signed headers, never the cookie
	// value, which it has no use for.
	hideCookie(out.Header, p.sessions.CookieName())
	setSessionHeaders(out.Header, p.key, st.nonce, p.now(), st.sess.ID(), st.sess.Data(), p.maxAge)
}

// resign signs the session headers of a request sent again (another
// backend, a new connection) anew, with the time of this attempt and a
// nonce of its own: the first attempt's signature may have aged past the
// middleware's 60 s window while a backend held the request before
// dropping it, and Django would then run the page with an anonymous
// session (refused-clock). The answer is verified against the nonce of the
// attempt that gave it. out must be a copy of the request whose Header the
// caller may replace.
func (p *Proxy) resign(out *http.Request) {
	st := stateOf(out.Context())
	if st == nil || st.sess == nil {
		return
	}
	st.nonce = newNonce()
	h := out.Header.Clone()
	setSessionHeaders(h, p.key, st.nonce, p.now(), st.sess.ID(), st.sess.Data(), p.maxAge)
	out.Header = h
}

// upgradesTo reports whether h's Upgrade lists protocol (any version).
func upgradesTo(h http.Header, protocol string) bool {
	for _, v := range h.Values("Upgrade") {
		for tok := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(tok), "/")
			if strings.EqualFold(name, protocol) {
				return true
			}
		}
	}
	return false
}

// clientIP is the address part of "ip:port" (the port is 0 or missing for
// an address learnt from a trusted proxy's X-Forwarded-For).
func clientIP(remote string) string {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().String()
	}
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// hideCookie removes the cookie name from the Cookie headers, keeping every
// other pair.
func hideCookie(h http.Header, name string) {
	vals := h.Values("Cookie")
	if len(vals) == 0 {
		return
	}
	var kept []string
	for _, v := range vals {
		for pair := range strings.SplitSeq(v, ";") {
			n, _, _ := strings.Cut(pair, "=")
			if strings.TrimSpace(n) == name || strings.TrimSpace(pair) == "" {
				continue
			}
			kept = append(kept, strings.TrimSpace(pair))
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}

// persistError: Django changed the session and the change could not be
// stored; the client must not get a response that pretends it was.
type persistError struct{ err error }

func (e *persistError) Error() string {
	return "session change from Django not saved: " + e.err.Error()
}
func (e *persistError) Unwrap() error { return e.err }

// modifyResponse applies Django's session change before the headers leave.
func (p *Proxy) modifyResponse(res *http.Response) error {
	st := stateOf(res.Request.Context())
	if res.StatusCode != http.StatusSwitchingProtocols {
		st.restoreConnection()
	}
	var ch *change
	var chErr error
	var logins []userLogins
	var loginsErr error
	if st != nil && st.sess != nil {
		ch, chErr = readChange(res.Header, p.key, st.nonce)
		logins, loginsErr = readLogins(res.Header, p.key, st.nonce)
	} else if res.Header.Get(hdrOp) != "" {
		chErr = errors.New("sessions are off")
	}
	// The server in front acts on an X-Accel-Redirect (the file it names
	// replaces the body); in the trailer it means nothing and goes.
	accel, hasAccel := res.Header[proxyheader.AccelRedirect]
	// Stripped with the other X-Sessiongate-* headers; canonical already
	// (http.ReadResponse), so read without allocating.
	mark := res.Header[sessionbridge.DjangoMarkHeader]
	p.cleanHeader(res.Header)
	if ct := res.Header["Content-Type"]; len(ct) > 1 {
		// A WSGI app may send two (Django cannot); a client picks either,
		// and a JSON answer could open as a page. The last one goes, as
		// on the PHP path and behind nginx.
		res.Header["Content-Type"] = ct[len(ct)-1:]
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// ReverseProxy writes a protocol switch on the hijacked
		// connection, past the server's writer and its header edits.
		server.Info(res.Request.Context()).HideResponseHeaders(res.Header)
	}
	if hasAccel && res.StatusCode != http.StatusSwitchingProtocols {
		res.Header[proxyheader.AccelRedirect] = accel
		// The file replaces the body, which is not read at all:
		// django-sendfile2 declares the file's length on an empty body,
		// which, read, would end as a cut response and abort the request
		// before the file could go out. The session change came in the
		// headers; the connection is closed rather than reused, as nginx
		// does.
		dropBody(res)
	}
	if res.StatusCode == http.StatusResetContent {
		// A 205 has no content (RFC 9110 section 15.3.6), but net/http
		// would pass on the body Django gave one (JsonResponse({},
		// status=205)): it goes, as on the PHP path, and Content-Length:
		// 0 is the framing the RFC asks. The connection is closed rather
		// than reused, as for a dropped X-Accel-Redirect body.
		dropBody(res)
		res.Header.Set("Content-Length", "0")
	}
	if len(res.TransferEncoding) > 0 && res.StatusCode != http.StatusSwitchingProtocols {
		// A chunked body may end with trailers, which ReverseProxy passes
		// on after the body: announced ones are in res.Trailer now, the
		// values (and any unannounced ones) arrive at the end of the body.
		p.cleanHeader(res.Trailer)
		res.Body = &trailerFilter{ReadCloser: res.Body, res: res, clean: p.cleanHeader}
	}
	if p.readAhead && res.Body != http.NoBody && res.StatusCode != http.StatusSwitchingProtocols &&
		(res.ContentLength < 0 || res.ContentLength > readAheadAbove) {
		path := res.Request.URL.Path
		res.Body = readahead.New(res.Body, readahead.Options{
			TempDir: p.tempDir,
			Budget:  p.budget,
			OnTempFileError: func(err error) {
				p.log.Warn("no temp file for a Django response read ahead; the rest waits for the client", "path", server.LogValue(path), "error", err.Error())
			},
		})
	}
	if ri := server.Info(res.Request.Context()); ri != nil && res.Body != http.NoBody && res.StatusCode != http.StatusSwitchingProtocols {
		cs := &cutShortBody{ReadCloser: res.Body, req: res.Request, ri: ri}
		if be := p.pool.byHost[res.Request.URL.Hostname()]; be != nil {
			cs.backend = be.name
		}
		res.Body = cs
	}
	// A change whose signature verified but that the gateway cannot apply
	// is refused below (500), not ignored.
	refused := errors.Is(chErr, sessionbridge.ErrUnstorable)
	if chErr != nil && !errors.Is(chErr, errNoChange) && !refused {
		p.log.Warn("session change from Django ignored", "path", server.LogValue(res.Request.URL.Path), "status", res.StatusCode, "reason", chErr.Error())
	}
	if loginsErr != nil && !errors.Is(loginsErr, errNoChange) {
		p.log.Warn("Django's report of valid logins ignored", "path", server.LogValue(res.Request.URL.Path), "status", res.StatusCode, "reason", loginsErr.Error())
	}
	if st == nil || st.sess == nil {
		return nil
	}
	p.checkMark(res, mark, ch != nil || refused)
	if len(mark) == 0 && (res.StatusCode == http.StatusBadRequest || res.StatusCode == http.StatusRequestHeaderFieldsTooLarge) {
		p.warnBigSession(res.Request.URL.Path, res.StatusCode, st.sess.Data())
	}
	if id := st.sess.ID(); id != "" {
		// The raw ID Django was given is the store's key: a cookie of
		// Django's holding it (its own SessionMiddleware left in under
		// another name than the gateway's, a view's set_cookie) must not
		// reach the browser, as on the PHP side.
		p.dropRawIDCookie(res.Header, id, res.Request.URL.Path)
	}
	ctx := res.Request.Context()
	for _, l := range logins {
		// A password Django stored is changed whatever happens to the
		// page; not recording it leaves the user's other sessions logged
		// in on PHP pages until their next Django page, as before.
		if err := p.sessions.RecordLogins(ctx, l.user, l.hashes); err != nil {
			p.log.Error("the logins Django reports valid were not recorded: PHP pages may still name the user in a session a password change ended, until its next Django page", "path", server.LogValue(res.Request.URL.Path), "error", err.Error())
		}
	}
	if refused {
		return &persistError{chErr}
	}
	if ch != nil {
		if err := p.apply(ctx, st.sess, ch, res.Request.URL.Path); err != nil {
			return &persistError{err}
		}
	}
	if err := st.sess.Settled(ctx); err != nil && (res.StatusCode < 500 || res.StatusCode > 599) {
		// Django's page may show what it was given.
		return &persistError{err}
	}
	st.sess.SetCookie(res.Header)
	// Django is done with the session once its headers are here: other
	// requests of the session need not wait for the body.
	st.sess.Release(ctx)
	return nil
}

// dropBody leaves res without the body Django sent, unread: closing it
// unread closes the connection to Django rather than reusing it.
func dropBody(res *http.Response) {
	res.Body.Close()
	res.Body = http.NoBody
	res.ContentLength = 0
	res.TransferEncoding, res.Trailer = nil, nil
}

// markedWithin is how long after a backend's last response that passed
// sessiongate_django's middleware an unmarked one is taken for an answer
// of a middleware listed before it (whitenoise's static files, a health
// check answered at the top of MIDDLEWARE), not for a missing middleware.
// Longer, a Django restarted with settings that lost the middleware would
// go unreported longer; shorter, a quiet site whose only requests are such
// answers would be reported more often.
const markedWithin = 10 * 60

// checkMark reports a Django response that says sessiongate_django's
// middleware refused the gateway's session, and one that should have
// passed the middleware and carries no mark (mark is the response's
// DjangoMarkHeader values) from a backend none of whose responses passed
// it for markedWithin. changed (a signed change the gateway verified)
// shows the middleware ran, also one older than the mark. An unmarked
// file (Last-Modified) is never taken for a missing middleware.
func (p *Proxy) checkMark(res *http.Response, mark []string, changed bool) {
	be := p.pool.byHost[res.Request.URL.Hostname()]
	if be == nil {
		return
	}
	// Seconds on the monotonic clock: read from the wall clock, a step
	// back of an hour kept a missing middleware unreported for the hour.
	now := p.pool.monoNow() / int64(time.Second)
	switch {
	case len(mark) == 0 && !changed:
	case len(mark) == 0 || mark[0] == sessionbridge.DjangoMarkOK:
		if be.marked.Load() != now {
			be.marked.Store(now)
		}
		return
	default:
		be.marked.Store(now)
		p.sessions.DjangoSessionRefused(mark[0], res.Request.URL.Path, res.StatusCode, be.name, signedAge(res.Request.Header, p.now()))
		return
	}
	if !sessionbridge.DjangoMiddlewareExpected(res.Request.Method, res.StatusCode) || now-be.marked.Load() < markedWithin {
		return
	}
	if res.Header.Get("Last-Modified") != "" {
		// A file: whitenoise sends Last-Modified with every one, Django's
		// pages rarely. Listed before the session middleware, it answers
		// without a mark; as the first answer after a gateway start (no
		// mark seen yet) it was taken for a missing middleware. Pages
		// are still reported at once.
		return
	}
	p.sessions.DjangoMiddlewareMissing(res.Request.URL.Path, res.StatusCode, be.name)
}

// bigSessionHeaders is the size of the session's request headers (base64)
// from which a 400 or 431 that Django's middleware did not mark (Django
// never ran) is likely its server's header limits. They differ by server:
// gunicorn takes 100 lines of at most 8190 bytes (about 800 KB; the
// session takes one line per DataChunk); uvicorn's h11 parser, its default
// without httptools, and daphne take 16 KiB for the whole head (h11 only
// a head that one read did not bring whole), so a session of some 12 KB
// can already fail there; waitress takes 256 KiB.
// Below this size, the rest of the head is the likelier cause.
const bigSessionHeaders = 8 << 10

// warnBigSession says, for an unmarked 400 or 431 answered to a request
// that carried a large session, that the server's header limits are the
// likely cause: such a server refuses every request of the session before
// Django runs, and its answer tells the client nothing it could act on.
func (p *Proxy) warnBigSession(path string, status int, data []byte) {
	n := base64.StdEncoding.EncodedLen(len(data))
	if n < bigSessionHeaders {
		return
	}
	p.sessions.DjangoSessionTooBig()
	p.log.Warn("Django's server refused a request carrying a large session before Django ran: it may refuse that many request header bytes or lines (gunicorn by default: 100 lines, about 800 KB; uvicorn's h11 parser and daphne: 16 KiB in all; waitress: 256 KiB); raise its limits (gunicorn --limit-request-fields, --limit-request-field_size; uvicorn --h11-max-incomplete-event-size from 0.18, or its httptools parser; waitress max_request_header_size) or keep the session smaller",
		"path", server.LogValue(path), "status", status, "session_bytes", len(data), "session_header_bytes", n, "header_lines", (n+DataChunk-1)/DataChunk)
}

// uwsgiBufferSize is uWSGI's default --buffer-size: its HTTP socket reads
// a request head into that many bytes and drops a larger one, logging only
// "invalid HTTP request size". It is also the smallest first read among
// Django's servers (unreadResendMax).
const uwsgiBufferSize = 4096

// headLimitDropping is the request head size from which a request Django's
// server closed without a word is likely too big for it (uWSGI's default
// buffer).
const headLimitDropping = uwsgiBufferSize

// warnDroppedBigHead says, for a request that Django's server closed
// without answering (on every try, for a safe method), that its head may
// be over the server's limit, when it is at least headLimitDropping bytes:
// the 502 alone reads like a crashed worker, and every page of the session
// fails the same way.
func (p *Proxy) warnDroppedBigHead(out *http.Request) {
	_, head := server.HeadSize(out.Method, out.URL.RequestURI(), out.Host, out.Header)
	if head < headLimitDropping {
		return
	}
	session, sessionLines := 0, 0
	for name, values := range out.Header {
		if strings.HasPrefix(name, hdrData) && name != hdrDataCount {
			for _, v := range values {
				session += len(v)
				sessionLines += server.FieldLineSize(name, v)
			}
		}
	}
	if head-int64(sessionLines) >= headLimitDropping {
		// The head is over the limit without the session: a smaller
		// session would not help, and the session is not too big.
		p.log.Warn("Django's server closed the connection without answering a request with a large head: a server that limits the request head drops such requests (uWSGI's --buffer-size, 4096 bytes by default); raise its limit (the head is that large without the session: its cookies, its URL or other headers)",
			"path", server.LogValue(out.URL.Path), "head_bytes", head, "session_header_bytes", session)
		return
	}
	if p.sessions != nil { // sessions off: a big head all the same
		p.sessions.DjangoSessionTooBig()
	}
	p.log.Warn("Django's server closed the connection without answering a request with a large head: a server that limits the request head drops such requests (uWSGI's --buffer-size, 4096 bytes by default); raise its limit or keep the session smaller",
		"path", server.LogValue(out.URL.Path), "head_bytes", head, "session_header_bytes", session)
}

// storableWrite refuses data Django wrote that PHP could not be given:
// Django's keys next to the opaque member that stands for a whole PHP
// session PHP linked together, a key twice, past the limits, or a PHP
// object the session did not hold. Stored, it would make every PHP page
// of the session a 500; refused, the request gets the 500 (Django's data
// is at fault, a retry writes it again), before a rotation destroys
// anything.
func storableWrite(sess *sessionbridge.Session, data []byte) error {
	if err := storableObject(data); err != nil {
		return fmt.Errorf("%w: Django's session data: %w", sessionbridge.ErrUnstorable, err)
	}
	if _, err := phpserial.EncodeSession(data, phpserial.DefaultLimits()); err != nil {
		return fmt.Errorf("%w: Django's session data cannot be given to PHP: %w", sessionbridge.ErrUnstorable, err)
	}
	if err := checkNoPlantedObjects(sess.Data(), data); err != nil {
		return fmt.Errorf("%w: %w", sessionbridge.ErrUnstorable, err)
	}
	return nil
}

func (p *Proxy) apply(ctx context.Context, sess *sessionbridge.Session, ch *change, path string) error {
	id := sess.ID()
	if !ch.until.IsZero() && !ch.until.After(p.now()) {
		// set_expiry() with a time already past: Django's session is
		// over (its cookie is expired at once), whatever the view
		// stored in it.
		if id == "" {
			return nil
		}
		return sess.Destroy(ctx, id)
	}
	if ch.op == "write" {
		// Before the expiry is set: a refused change leaves the session
		// as it was, its expiry included.
		if err := storableWrite(sess, ch.data); err != nil {
			return err
		}
	}
	switch {
	case ch.expiry > 0 || ch.browser || ch.reset:
		sess.SetExpiry(ch.expiry, ch.browser)
	case !ch.until.IsZero():
		sess.SetDeadline(ch.until)
	}
	if ch.op == "touch" && ch.rotate && id != "" {
		// A new ID for an unchanged session (a privilege change without
		// a write, a fixation defence): the rotation of a write of the
		// data the app was given, carrying what others stored meanwhile.
		// A delete with Rotate needs no new ID: the session ends.
		w := *ch
		w.op, w.carry, w.data = "write", true, sess.Data()
		ch = &w
	}
	switch ch.op {
	case "write":
		var conflicts []string
		var err error
		newID := ""
		if ch.rotate || id == "" {
			newID = sessionbridge.NewID()
			if len(bytes.Trim(ch.data, "{} \t\r\n")) == 0 {
				// A session the view saved empty (save(), create(),
				// cycle_key()): Django stores it under a key, and apps
				// call save() to give a visitor one. Announced, like a
				// PHP session started and left empty, it is stored.
				if err := sess.Announce(newID); err != nil {
					return err
				}
			}
		}
		switch {
		case ch.rotate && id != "":
			// cycle_key(): the old ID dies (fixation defence) and the
			// data moves to a new one; the old ID keeps a tombstone, so
			// a request sent with its cookie meanwhile does not replace
			// the new cookie. Rotate keeps the old session when the new
			// one cannot be stored (the client keeps its cookie on the
			// 503). With carry (the data derives from the loaded
			// session, not a flush()), what other requests stored in the
			// old session meanwhile moves along, as for PHP's
			// regeneration.
			conflicts, err = sess.Rotate(ctx, id, newID, ch.data, ch.carry)
		case id == "":
			conflicts, err = sess.WriteReencoded(ctx, newID, ch.data)
		default:
			conflicts, err = sess.WriteReencoded(ctx, id, ch.data)
		}
		if len(conflicts) > 0 {
			p.log.Warn("session write overrode concurrent changes (merge mode, last writer wins)", "path", server.LogValue(path), "conflicts", sessionbridge.ConflictKeys(conflicts))
		}
		return err
	case "delete":
		if id == "" {
			return nil
		}
		return sess.Destroy(ctx, id)
	case "touch":
		if id == "" {
			return nil
		}
		return sess.Touch(ctx, id)
	}
	return fmt.Errorf("unknown op %q", ch.op)
}

// storableObject refuses data the session store cannot hold although the
// PHP codec takes it: anything but one strict JSON object (NaN and
// Infinity, which Python's json.dumps writes by default, are no JSON; nor
// is a session that is an array). Refused here, before anything changes,
// it is the app's fault (500), where the store's refusal would be a 503
// the client retries in vain.
func storableObject(data []byte) error {
	if !json.Valid(data) {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("not JSON (NaN and Infinity are not): %w", err)
		}
		return errors.New("not JSON")
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	return nil
}

// checkNoPlantedObjects refuses Django's data when it holds a PHP object,
// Serializable or enum tag that the session Django was given (given) did
// not hold with the same text. PHP builds such a value, running code of the
// class it names, whenever it reads the session; in Django a dict is only
// data, and views store what clients send ({"__php__": "O:..."} as JSON, or
// request.GET.dict()). Only PHP's own objects, handed back unchanged as the
// protocol asks, may come back.
func checkNoPlantedObjects(given, data []byte) error {
	lim := phpserial.DefaultLimits()
	written, err := phpserial.ObjectTags(data, lim)
	if err != nil {
		return fmt.Errorf("Django's session data: %w", err)
	}
	if len(written) == 0 {
		return nil
	}
	had, err := phpserial.ObjectTags(given, lim)
	if err != nil {
		return fmt.Errorf("session data given to Django: %w", err)
	}
	for _, t := range written {
		if !slices.Contains(had, t) {
			return errors.New("Django's session data holds a PHP object the session did not hold (only PHP may create PHP objects; a view stored a client's {\"__php__\": ...} dict?): write refused")
		}
	}
	return nil
}

// cleanHeader removes from a header (or trailer) map of Django's what must
// not reach the client: X-Sessiongate-* in any spelling and a Set-Cookie of
// the gateway's session cookie (the gateway owns it; Django's own
// SessionMiddleware left in place would fight it), and the X-Accel-*
// instructions to nginx, which nginx hides by default.
func (p *Proxy) cleanHeader(h http.Header) {
	sessionbridge.StripInternalHeaders(h)
	for name := range h {
		if proxyheader.NginxControl(name) {
			delete(h, name)
		}
	}
	if p.sessions != nil {
		name := p.sessions.CookieName()
		sessionbridge.DropSetCookies(h, func(n, _, _ string) bool { return n == name })
	}
}

// trailerFilter cleans a response's trailers once the body has filled them
// in, before ReverseProxy copies them to the client.
type trailerFilter struct {
	io.ReadCloser
	res   *http.Response
	clean func(http.Header)
	// mu serializes the cleaning: read ahead (ReadAhead), the last Read
	// runs on the reader-ahead's goroutine while the handler may Close,
	// and both clean the one trailer map.
	mu sync.Mutex
}

func (f *trailerFilter) Read(b []byte) (int, error) {
	n, err := f.ReadCloser.Read(b)
	if err != nil {
		f.cleanTrailer()
	}
	return n, err
}

func (f *trailerFilter) Close() error {
	err := f.ReadCloser.Close()
	f.cleanTrailer()
	return err
}

func (f *trailerFilter) cleanTrailer() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clean(f.res.Trailer)
}

// cutShortBody records why a Django response broke off mid-body (a
// gunicorn worker killed while it streamed, the connection reset), as the
// PHP proxy does: ReverseProxy only aborts the client's response, so the
// access log and the metrics would otherwise count the status its headers
// carried (a 200) with no cause. It wraps the read-ahead body, so Read runs
// on the handler's goroutine, which owns RequestInfo.
type cutShortBody struct {
	io.ReadCloser
	req *http.Request
	ri  *server.RequestInfo
	// backend names the gunicorn that broke off, for the log: with
	// several, the error alone does not say which to look at.
	backend string
}

func (b *cutShortBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.ri.Err == nil {
		b.ri.Status = statusOf(b.req, err)
		if cerr := b.req.Context().Err(); cerr != nil {
			// The client left: its going broke the upstream read's
			// deadline, so err (an i/o timeout) would blame Django.
			b.ri.Err = fmt.Errorf("django response not finished: the client left (%w)", cerr)
		} else {
			b.ri.Err = fmt.Errorf("django response from %s cut short: %w", b.backend, err)
		}
	}
	return n, err
}

// dropRawIDCookie removes the Set-Cookie lines of h holding the raw
// session ID id and tells the operator, once a minute rather than on every
// request: unlike PHP, Django sends such a cookie only when an app is set
// up wrong.
func (p *Proxy) dropRawIDCookie(h http.Header, id, path string) {
	if dropped := sessionbridge.DropRawIDCookies(h, []string{id}); len(dropped) > 0 {
		p.sessions.DjangoRawIDCookie(path, dropped)
	}
}

// errorHandler answers for a failed upstream request like the PHP path:
// 502 when Django failed, 504 on a timeout, 503 when Django's session change
// could not be saved (500 when the gateway refused its data), and nothing
// (499 in the log) when the client left.
// The error is logged once: in the access log line when the request came
// through server.Server, here otherwise.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(r, err)
	if status == http.StatusBadGateway && (errors.Is(err, errNoAnswer) || errors.Is(err, errRetryable)) {
		p.warnDroppedBigHead(r)
	}
	if ri := server.Info(r.Context()); ri != nil {
		ri.Err = err
		switch status {
		case server.StatusClientClosedRequest:
			ri.Status = status
		case http.StatusRequestEntityTooLarge:
			ri.Upstream = server.BodyLimitUpstream
		}
	} else {
		p.log.Warn("django upstream error", "path", server.LogValue(r.URL.Path), "status", status, "error", err.Error())
	}
	if status == server.StatusClientClosedRequest {
		// No answer: returning without a write would have net/http send
		// 200 with an empty body, which a client that only half-closed
		// its connection (net/http takes that for one that left) read
		// as the page of a view that never ran. The abort closes the
		// connection or resets the HTTP/2 stream, as the PHP path does.
		panic(http.ErrAbortHandler)
	}
	stateOf(r.Context()).restoreConnection()
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	server.WriteError(w, r, status, http.StatusText(status))
}

func statusOf(r *http.Request, err error) int {
	var pe *persistError
	if errors.As(err, &pe) {
		if errors.Is(pe.err, sessionbridge.ErrUnstorable) {
			return http.StatusInternalServerError
		}
		return http.StatusServiceUnavailable
	}
	var spool *errSpool
	if errors.As(err, &spool) {
		return http.StatusInternalServerError
	}
	var bad *errClientBody
	if errors.As(err, &bad) && isTimeout(bad.err) {
		// The server's read timeout: too slow, like nginx's
		// client_body_timeout. Checked before the context, which
		// net/http cancels when a body read fails, on a timeout too.
		return http.StatusRequestTimeout
	}
	if bad != nil && bodyread.Overlong(bad.err) {
		// An HTTP/2 body longer than its content-length: the client's
		// fault, though net/http's reset of the stream ended the context.
		return http.StatusBadRequest
	}
	if bad != nil && bodyread.CutShort(bad.err) {
		// The client ended the connection inside its body's framing: its
		// fault, though net/http cancelled the context when the
		// connection's read failed under the body.
		return http.StatusBadRequest
	}
	if r.Context().Err() != nil {
		return server.StatusClientClosedRequest
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	if bad != nil {
		return http.StatusBadRequest
	}
	if fdlimit.Reached(err) {
		// As nginx answers when its socket() fails: not Django's fault.
		return http.StatusInternalServerError
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

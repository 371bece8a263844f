package sessionbridge

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/server"
	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// PrependPHP is the prepend file PHP needs; `gateway php-prepend` prints it.
//
//go:embed prepend.php
var PrependPHP []byte

// dataChunk is the size of one SESSIONGATE_DATA_n value: a FastCGI
// name/value pair must fit one record (< 64 KiB), so a large session is
// split over several params and joined by the prepend.
const dataChunk = 60000

// InternalHeaderPrefix marks headers only the gateway may set. Anything a
// client sends under it, in any spelling, is dropped before an app sees it.
const InternalHeaderPrefix = "X-Sessiongate-"

// StripInternalHeaders removes every header whose name, with '_' read as
// '-', starts with X-Sessiongate- (case-insensitively).
func StripInternalHeaders(h http.Header) {
	for name := range h {
		if isInternalHeader(name) {
			delete(h, name)
		}
	}
}

func isInternalHeader(name string) bool {
	if len(name) < len(InternalHeaderPrefix) {
		return false
	}
	for i := 0; i < len(InternalHeaderPrefix); i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		p := InternalHeaderPrefix[i]
		if 'A' <= p && p <= 'Z' {
			p += 'a' - 'A'
		}
		if c != p {
			return false
		}
	}
	return true
}

// PHPOptions configure the PHP side of the bridge.
type PHPOptions struct {
	// PrependPath is the prepend file's path on the php-fpm host. When set,
	// the gateway sends auto_prepend_file and the session settings the
	// prepend relies on in PHP_VALUE on every request (php-fpm leaks such
	// values to later requests of the same worker otherwise).
	PrependPath string
	// Limits bound the PHP session data the codec accepts.
	Limits phpserial.Limits
}

// phpINI is what the prepend relies on. serialize_handler php_serialize
// keeps integer keys and '|' in keys (the classic format loses them);
// strict mode so only IDs known to the handler are accepted. use_cookies
// stays on although the gateway owns the cookie (it drops the one PHP
// sends, dropRawIDCookies): with it off PHP 8 refuses
// session_set_cookie_params() with a warning, which applications call on
// every request (phpMyAdmin shows it in its pages), and a script's own
// save handler could keep no session. upload_progress off: PHP writes an
// upload's progress while the body arrives, before the prepend runs, with
// its own save handler under its own cookie, so it never reaches the
// gateway's session; and with it on, some PHP builds (8.2.36, measured
// here) refuse session_set_save_handler() and every session setting at run
// time, which failed every page with 500. session.auto_start is left as the
// pool has it: php-fpm keeps a PHP_VALUE setting in the worker for good, so
// turning it off here hid from the prepend that an application counts on
// it (one that never calls session_start() then lost every change); the
// prepend starts the gateway's session in place of PHP's own.
var phpINI = []string{
	"session.serialize_handler=php_serialize",
	"session.use_cookies=1",
	"session.use_only_cookies=1",
	"session.use_trans_sid=0",
	"session.use_strict_mode=1",
	"session.lazy_write=1",
	"session.gc_probability=0",
	"session.upload_progress.enabled=0",
	"fastcgi.logging=1",
}

// PHPHandler wraps the handler that sends a routed request to php-fpm. It
// expects the *fcgi.Script in the request context (the router put it there).
func (m *Manager) PHPHandler(next http.Handler, o PHPOptions) http.Handler {
	if o.Limits == (phpserial.Limits{}) {
		o.Limits = phpserial.DefaultLimits()
	}
	var phpValue string
	if o.PrependPath != "" {
		phpValue = strings.Join(append([]string{"auto_prepend_file=" + o.PrependPath}, phpINI...), "\n")
	}
	return &phpHandler{m: m, next: next, opts: o, phpValue: phpValue}
}

type phpHandler struct {
	m        *Manager
	next     http.Handler
	opts     PHPOptions
	phpValue string
	// stderrOffWarned is the unix second of the last stderrOffHeader
	// warning: a pool set up so is told once a minute, not per request.
	stderrOffWarned atomic.Int64
	// nameCookieWarned is the unix second of the last warning that PHP
	// set a cookie under the gateway's cookie name.
	nameCookieWarned atomic.Int64
	// unmarkedWarned is the same for a response without prependMarker.
	unmarkedWarned atomic.Int64
	// lateWriters are the scripts (ScriptName) seen changing their session
	// after the prepend's last shutdown function (lateWriter).
	lateWriters   sync.Map
	lateWriterCnt atomic.Int32
}

// maxLateWriters bounds lateWriters: scripts are files of the site, but a
// site with more than this many that change sessions in destructors keeps
// the early release for the rest.
const maxLateWriters = 10000

// holdsFor reports whether a write-hold or touch-hold of script keeps the
// strict-mode lock until PHP ends. Only for a script seen changing its
// session after that write: holding the lock through PHP's shutdown for
// every page would serialize a busy session's requests for that much
// longer (a hot session's throughput fell by half in the bench), while
// most scripts change nothing after it.
func (h *phpHandler) holdsFor(script string) bool {
	_, ok := h.lateWriters.Load(script)
	return ok
}

// lateWriter notes script as one that changes its session after the
// prepend's last shutdown function (an object's destructor, a shutdown
// function registered during shutdown, an output callback), so that from
// its next request on the lock stays until PHP ends, as PHP's files
// handler keeps it: the change is then no lost update. Said once.
func (h *phpHandler) lateWriter(script string) {
	if h.holdsFor(script) || h.lateWriterCnt.Load() >= maxLateWriters {
		return
	}
	if _, loaded := h.lateWriters.LoadOrStore(script, struct{}{}); !loaded {
		h.lateWriterCnt.Add(1)
		h.m.log.Info("script changes its session after its last shutdown function (an object destructor, a shutdown function registered during shutdown, an output callback): its requests now keep the session's lock until PHP ends, as PHP's files handler does", "script", script)
	}
}

// prependMarker is the header the prepend sends on every response of a
// request that came with the gateway's params. Without it PHP ran without
// the prepend (a pool without the auto_prepend_file line, a path PHP cannot
// open, a .user.ini or pool naming another file) and keeps sessions of its
// own, which nothing else would tell. The transport takes it out of the
// header block without allocating (fcgi.Script.Marker): a response header
// is the one thing every PHP response has, also one whose script never
// starts a session, and the header block is parsed anyway, where a stderr
// line would cost a record and a write per request.
const prependMarker = "X-Sessiongate-Prepend"

// prependUnmarked reports a PHP response the prepend did not mark: counted
// each time, logged once a minute. php-fpm's own 403 and 404 (a script it
// refuses to run or cannot find: security.limit_extensions, a file its
// user may not read, "Primary script unknown") ran no script, so they are
// no sign of a missing prepend.
func (h *phpHandler) prependUnmarked(path string, info fcgi.HeaderInfo) {
	if info.Status == http.StatusForbidden || info.Status == http.StatusNotFound {
		return
	}
	h.m.event("php_prepend_missing")
	if !h.m.dueAgain(&h.unmarkedWarned) {
		return
	}
	var cause string
	switch {
	case h.opts.PrependPath != "" && info.Status == http.StatusInternalServerError:
		cause = "PHP failed (500) before any script ran: most likely it could not open the prepend at " + h.opts.PrependPath +
			" (SESSIONGATE_PHP_PREPEND), which must be a path on the php-fpm host, readable by the pool's user: write it there with `gateway php-prepend`."
	case h.opts.PrependPath != "":
		cause = "The gateway sends auto_prepend_file=" + h.opts.PrependPath + " (SESSIONGATE_PHP_PREPEND), and something names another file instead: " +
			"an auto_prepend_file in a .user.ini of the script's directory or above (Wordfence puts its firewall there) or a php_admin_value[auto_prepend_file] in the pool; " +
			"make that file require the gateway's prepend first. Or the prepend file is older than this gateway: write it again with `gateway php-prepend`."
	case info.Status == http.StatusInternalServerError:
		cause = "PHP failed (500) before any script ran: most likely the pool's php_admin_value[auto_prepend_file] names a file PHP could not open; " +
			"write the prepend there with `gateway php-prepend`, readable by the pool's user, or set SESSIONGATE_PHP_PREPEND to its path."
	default:
		cause = "SESSIONGATE_PHP_PREPEND is empty, so the pool must load the prepend: add php_admin_value[auto_prepend_file] = <the file `gateway php-prepend` wrote> " +
			"to every php-fpm pool the gateway uses (this one: " + info.Backend + "), or set SESSIONGATE_PHP_PREPEND. " +
			"If it has the line, the file it names is not this gateway's prepend, or one older than this gateway: write it again with `gateway php-prepend`."
	}
	h.m.log.Warn("PHP answered without running the gateway's prepend, so its pages do not share the session (users look logged out there). "+
		cause+" Logged once a minute.", "script", server.LogValue(path), "status", info.Status, "backend", info.Backend)
}

// stderrOffHeader is the prepend's word that php-fpm's fastcgi.logging is
// off: its error_log() frames then never reach the gateway, so a change
// PHP makes after its output started is lost.
const stderrOffHeader = "X-Sessiongate-Stderr"

// warnStderrOff logs, once a minute, that PHP's error stream does not
// reach the gateway, and what to set.
func (h *phpHandler) warnStderrOff(path string) {
	if h.m.dueAgain(&h.stderrOffWarned) {
		h.m.log.Warn("php-fpm's fastcgi.logging is off (php.ini or the pool): a session change a script makes after its output started cannot reach the gateway and is lost; set php_admin_value[fastcgi.logging] = 1 in the pool, or let the gateway load the prepend (SESSIONGATE_PHP_PREPEND). Logged once a minute.",
			"script", server.LogValue(path))
	}
}

func (h *phpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	script := fcgi.ScriptFrom(r.Context())
	if script == nil {
		h.m.log.Error("session bridge: request reached PHP without a routing decision", "path", server.LogValue(r.URL.Path))
		server.WriteError(w, r, http.StatusInternalServerError, "internal error")
		return
	}
	StripInternalHeaders(r.Header)
	sess, err := h.m.Open(r.Context(), r, script.HTTPS)
	if err != nil {
		h.m.RespondOpenError(w, r, err)
		return
	}
	defer sess.Release(r.Context())

	nonce, key := newFrameSecrets()
	extra := make([]fcgi.Param, 0, 10)
	if h.phpValue != "" {
		extra = append(extra, fcgi.Param{Name: "PHP_VALUE", Value: h.phpValue})
	}
	extra = append(extra,
		fcgi.Param{Name: "SESSIONGATE_NONCE", Value: nonce},
		fcgi.Param{Name: "SESSIONGATE_FRAME_KEY", Value: hex.EncodeToString(key[:])})
	if h.m.o.Cookie.SameSite == http.SameSiteNoneMode {
		// The prepend warns a script that asks for SameSite=None cookies
		// unless the gateway's cookie is one.
		extra = append(extra, fcgi.Param{Name: "SESSIONGATE_COOKIE_SAMESITE", Value: "none"})
	}
	var sent []byte // php_serialize text PHP was given
	if id := sess.ID(); id != "" {
		if hash, err := sess.RevokedLogin(r.Context()); err != nil {
			// A client that left is nothing to warn of: the request
			// to PHP fails at once, and its 499 is logged.
			if r.Context().Err() == nil {
				h.m.log.Warn("cannot tell whether a password change ended the session's Django login; PHP gets the login as it is", "session", shortID(id), "error", err.Error())
			}
		} else if hash != "" {
			extra = append(extra, fcgi.Param{Name: "SESSIONGATE_LOGIN_REVOKED", Value: hash})
		}
		sent, err = phpserial.EncodeSession(sess.Data(), h.opts.Limits)
		if err != nil {
			// Data another app stored that PHP cannot take: PHP must
			// not run on a session it would then overwrite.
			h.m.log.Error("session data cannot be given to PHP", "session", shortID(id), "error", err.Error())
			server.WriteError(w, r, http.StatusInternalServerError, "session data unreadable")
			return
		}
		extra = append(extra, fcgi.Param{Name: "SESSIONGATE_SESSION_ID", Value: id})
		if h.m.o.LockMode == LockStrict {
			// The request holds the session's lock: the prepend's write
			// at its last shutdown function may keep it (opWriteHold).
			extra = append(extra, fcgi.Param{Name: "SESSIONGATE_FEATURES", Value: phpFeatures})
		}
		extra = appendDataParams(extra, sent)
	}
	b := &phpBridge{h: h, sess: sess, sent: sent, scanner: newFrameScanner(nonce, key), ctx: r.Context(), path: script.ScriptName,
		reqPath: r.URL.Path, remote: script.RemoteAddr}
	b.noteID(sess.ID())
	s2 := *script
	s2.Extra = append(append([]fcgi.Param(nil), script.Extra...), extra...)
	s2.OnStderr = b.onStderr
	s2.OnEnd = b.onPHPEnd
	s2.OnHeader = b.onPHPHeader
	s2.Marker = prependMarker
	r = r.WithContext(fcgi.WithScript(r.Context(), &s2))

	bw := &bridgeWriter{ResponseWriter: w, req: r, b: b}
	// Deferred: a response aborted mid-body (the client gone, a worker
	// killed) panics with http.ErrAbortHandler, and what PHP sent then
	// (a message cut short, stderr held back) must still be reported.
	defer b.finish()
	h.next.ServeHTTP(bw, r)
	b.finish()
	if bw.wroteHeader && !bw.swallow {
		// A change PHP sent after its headers (its end-of-request write
		// once its output had started) that was not saved: too late for
		// the page, but the file of an X-Accel-Redirect has not gone out
		// yet, and the server answers with this instead.
		if err := b.lateFailure(); err != nil {
			if ri := server.Info(r.Context()); ri != nil {
				status, text := unsavedAnswer(err)
				ri.Unsaved = &server.UnsavedAnswer{Status: status, Text: text, Err: fmt.Errorf("session change from PHP not saved: %w", err)}
			}
		}
	}
}

// unsavedAnswer is the status and text of the answer to a request whose
// session change was not saved: 500 for data that cannot be stored (the
// same again on a retry), else 503 (retry).
func unsavedAnswer(err error) (int, string) {
	if errors.Is(err, ErrUnstorable) {
		return http.StatusInternalServerError, "session data could not be saved"
	}
	return http.StatusServiceUnavailable, "session could not be saved, retry"
}

func appendDataParams(extra []fcgi.Param, data []byte) []fcgi.Param {
	enc := base64.StdEncoding.EncodeToString(data)
	n := 0
	for len(enc) > 0 {
		c := min(dataChunk, len(enc))
		extra = append(extra, fcgi.Param{Name: "SESSIONGATE_DATA_" + strconv.Itoa(n), Value: enc[:c]})
		enc = enc[c:]
		n++
	}
	return append(extra, fcgi.Param{Name: "SESSIONGATE_DATA_COUNT", Value: strconv.Itoa(n)})
}

// phpFeatures is the SESSIONGATE_FEATURES param: the messages this gateway
// takes beyond the first version of the protocol, which a prepend sends
// only to a gateway that names them (docs/protocol.md, section 4). Sent
// with a session whose lock the request holds (strict mode), the one case
// where "hold" changes anything.
const phpFeatures = "hold"

// opWriteHold and opTouchHold are the prepend's write at its last shutdown
// function (writeAtShutdown), to a gateway that names "hold": a write or
// touch that may keep the strict-mode lock, since PHP may still change the
// session afterwards (object destructors, shutdown functions registered
// during shutdown, output callbacks) and its files handler holds the lock
// until its final write. The gateway keeps it for the scripts it saw do
// that (holdsFor); the lock then goes with PHP's next message, or once PHP
// has ended and the headers are out (releaseOnceBoth).
const (
	opWriteHold = "write-hold"
	opTouchHold = "touch-hold"
)

// newFrameSecrets returns this request's frame nonce and AES-256 key. The
// key keeps session data out of any log that copies PHP's error_log()
// output (php-fpm's catch_workers_output) and authenticates the frames.
func newFrameSecrets() (nonce string, key [32]byte) {
	var b [16 + 32]byte
	_, _ = rand.Read(b[:])
	copy(key[:], b[16:])
	return hex.EncodeToString(b[:16]), key
}

// RespondOpenError answers a request whose session could not be opened
// (Open's error): 503 with Retry-After for a busy session or an unavailable
// store, no answer at all for a client that left (the handler aborts, as
// the PHP and Django proxies do for a 499). The cookie is left alone: the
// session is still there when the store is back. The PHP bridge and the
// Django proxy both use it, so every path fails the same way. The reason
// goes in the request's access log line, as other failures' do (a line of
// its own only for a request that has none), so the 503 and its cause are
// one line.
func (m *Manager) RespondOpenError(w http.ResponseWriter, r *http.Request, err error) {
	ri := server.Info(r.Context())
	switch {
	case errors.Is(err, ErrBusy):
		if ri != nil {
			ri.Err = err
		} else {
			m.log.Warn("session busy", "path", server.LogValue(r.URL.Path), "error", err.Error())
		}
		w.Header().Set("Retry-After", "1")
		server.WriteError(w, r, http.StatusServiceUnavailable, "session busy, retry")
	case errors.Is(err, context.Canceled):
		// Client gone while waiting: nothing to answer, but its 499 says
		// what it waited for, which a slow page of the same session
		// (strict mode) or a slow store explains.
		if ri != nil {
			what := "the session store"
			if m.o.LockMode == LockStrict {
				what = "its session's lock (held by another request of the session, or the store slow to answer)"
			}
			ri.Err = fmt.Errorf("client left while the request waited for %s (%w)", what, err)
			ri.Status = server.StatusClientClosedRequest
		}
		// No answer: returning without a write would have net/http send
		// 200 with an empty body, which a client that only half-closed
		// its connection (net/http takes that for one that left) read as
		// the page of a request that never ran. The abort closes the
		// connection or resets the HTTP/2 stream.
		panic(http.ErrAbortHandler)
	default:
		if ri != nil {
			ri.Err = err
		} else {
			m.log.Error("session store unavailable", "path", server.LogValue(r.URL.Path), "error", err.Error())
		}
		w.Header().Set("Retry-After", "1")
		server.WriteError(w, r, http.StatusServiceUnavailable, "session store unavailable")
	}
}

// phpBridge applies one request's PHP messages to its session.
type phpBridge struct {
	h       *phpHandler
	sess    *Session
	sent    []byte
	scanner *frameScanner
	ctx     context.Context
	path    string
	// reqPath and remote name the request PHP's stderr is logged with,
	// as fcgi names it; reqPath is cut for the log only when a line is
	// written.
	reqPath, remote string

	mu       sync.Mutex
	sentView []member // sent, as PHP's write would render it (lazy)
	failed   error    // a change PHP made could not be saved
	finished bool     // finish ran (it runs once, deferred for aborts)
	// ids are the session IDs PHP knew in this request (given, created,
	// regenerated): none of them may leave in a cookie of PHP's own.
	ids []string
	// phpEnded: php-fpm sent the whole response. headersOut: the response
	// headers (and the session messages they carry) were handled.
	phpEnded, headersOut bool
	// nextSeq is the seq of the next message to apply; held are messages
	// that came over stderr ahead of an earlier one still in the response
	// headers (the transport reads stderr records ahead of handing over
	// the headers). They wait for it: PHP's last change must win.
	nextSeq     int
	held        []message
	headersRead bool
	// shutdownWritten: the prepend's write at its last shutdown function
	// (write-hold or touch-hold) came; a change after it is a late one.
	shutdownWritten bool
	// headerSeen: the transport reported PHP's CGI header block
	// (onPHPHeader); cutAtHeader: a message of PHP's was incomplete then.
	headerSeen, cutAtHeader bool
	// backend is the php-fpm that answered (onPHPHeader), for the stderr
	// this bridge logs itself, as fcgi names it in its own.
	backend string
	// frameWarnings counts the frames rejected in this request (see
	// maxFrameWarnings).
	frameWarnings int
	// regenerated is the new ID session_regenerate_id() opened (the open
	// message's "regenerate"): the session moves there if the headers
	// leave before its write (moveAnnounced).
	regenerated string
	// retiring is the ID a session_regenerate_id(true) left, not retired
	// yet: the data moving to the new ID may still be refused, or the
	// store fail it, and a request that fails must leave the browser's
	// session (its old cookie) as it was. The new ID's write moves the
	// session and retires it then (moveTo), or drops it when the gateway
	// refuses the data; the headers leaving move the session as the new
	// cookie leaves (moveAnnounced); another message retires it first;
	// finish does when none came.
	retiring string
}

// onPHPHeader runs when PHP's header block has arrived, before any record
// after it is read. A message still incomplete at that point began before
// the output and can never be completed (log_limit cut it). One incomplete
// later, when the response headers are handled, may just be on its way:
// PHP sends a change made after its output started (its end-of-request
// write once the output buffer was flushed) behind that output, and the
// transport reads some of it ahead before the headers go out.
func (b *phpBridge) onPHPHeader(info fcgi.HeaderInfo) {
	b.mu.Lock()
	b.headerSeen = true
	b.cutAtHeader = b.scanner.cutShort()
	b.backend = info.Backend
	b.mu.Unlock()
	if !info.Marked {
		b.h.prependUnmarked(b.path, info)
	}
}

// onPHPEnd runs when php-fpm's part of the response is over (all of it
// arrived, or it was cut short): PHP can no longer change the session, so
// its lock goes then, not once a slow client has downloaded the page (the
// transport reads ahead of the client). A script that closed its session
// released it already; this is for one that never started it (the gateway
// locked it before PHP ran) or died before it could. While the headers are
// not out, the lock stays: messages in them are applied first.
func (b *phpBridge) onPHPEnd() { b.releaseOnceBoth(&b.phpEnded) }

// headersHandled is onPHPEnd's other half, called once the headers left.
func (b *phpBridge) headersHandled() { b.releaseOnceBoth(&b.headersOut) }

// releaseOnceBoth sets one of phpEnded and headersOut and releases the lock
// when both hold.
func (b *phpBridge) releaseOnceBoth(flag *bool) {
	b.mu.Lock()
	*flag = true
	both := b.phpEnded && b.headersOut
	b.mu.Unlock()
	if both {
		b.sess.Release(b.ctx)
	}
}

// noteID remembers an ID PHP knows. Callers hold b.mu, except the first
// call, made before PHP runs.
func (b *phpBridge) noteID(id string) {
	if id != "" && !slices.Contains(b.ids, id) {
		b.ids = append(b.ids, id)
	}
}

// dropRawIDCookies removes the Set-Cookie lines PHP itself made with a raw
// session ID as their value: PHP's own session cookie (session.use_cookies
// is on, see phpINI), or an application's cookie holding session_id().
// The raw ID is not a valid cookie for the gateway, so it grants nothing,
// but it is the store's key and must not reach the browser; and under the
// gateway's own cookie name it would replace the signed cookie there and
// log the user out. PHP sends its cookie on most requests that start a
// session, so this is no news for the log above debug level.
func (b *phpBridge) dropRawIDCookies(h http.Header) {
	if len(h["Set-Cookie"]) == 0 {
		return
	}
	b.mu.Lock()
	ids := slices.Clone(b.ids)
	b.mu.Unlock()
	ids = append(ids, b.sess.ID())
	if dropped := DropRawIDCookies(h, ids); len(dropped) > 0 {
		b.h.m.log.Debug("cookie holding the raw session ID dropped; the gateway's signed cookie carries the session",
			"script", b.path, "cookies", dropped)
	}
}

// dropCookiesUnderGatewayName removes the Set-Cookie lines PHP made under
// the gateway's cookie name with a value to keep: an app whose
// session.name is the gateway's cookie name and that picked its own session
// ID, or its own cookie of that name. PHP never sees the signed cookie, so
// such a value is never the gateway's, and on a response without the
// gateway's cookie it would replace the signed one in the browser and log
// the user out. A deletion (the PHP manual's logout recipe) still goes: it
// logs out, as it does behind nginx.
func (b *phpBridge) dropCookiesUnderGatewayName(h http.Header) {
	name := b.h.m.CookieName()
	dropped := DropSetCookies(h, func(n, _, line string) bool { return n == name && !deletesCookie(line) })
	if len(dropped) > 0 && b.h.m.dueAgain(&b.h.nameCookieWarned) {
		b.h.m.log.Warn("PHP set a cookie under the gateway's session cookie name; dropped, or it would replace the signed cookie and log the user out. Give PHP's session.name (or the app's cookie) another name. Logged once a minute.",
			"script", server.LogValue(b.path), "cookie", name)
	}
}

// deletesCookie reports whether the Set-Cookie line tells the browser to
// drop its cookie: Max-Age zero or below, or an Expires in the past.
func deletesCookie(line string) bool {
	c, err := http.ParseSetCookie(line)
	if err != nil {
		return false
	}
	return c.MaxAge < 0 || (c.MaxAge == 0 && !c.Expires.IsZero() && c.Expires.Before(time.Now()))
}

// DropRawIDCookies removes from h every Set-Cookie line whose value is one
// of ids (raw session IDs, the store's keys, which must never reach the
// browser), and returns the names of the cookies it removed.
func DropRawIDCookies(h http.Header, ids []string) (dropped []string) {
	return DropSetCookies(h, func(_, value, _ string) bool { return value != "" && slices.Contains(ids, value) })
}

// DropSetCookies removes from h the Set-Cookie lines drop says yes to, given
// each line's cookie name and value (unquoted) and the whole line, and
// returns the names of the cookies it removed.
func DropSetCookies(h http.Header, drop func(name, value, line string) bool) (dropped []string) {
	lines := h["Set-Cookie"]
	if len(lines) == 0 {
		return nil
	}
	// Copied only from the first line dropped: most responses drop none,
	// and each PHP response passes two filters.
	var kept []string
	for i, line := range lines {
		if name, value, ok := cookieNameValue(line); ok && drop(name, value, line) {
			if dropped == nil {
				kept = append(make([]string, 0, len(lines)-1), lines[:i]...)
			}
			dropped = append(dropped, name)
			continue
		}
		if dropped != nil {
			kept = append(kept, line)
		}
	}
	if len(dropped) == 0 {
		return nil
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
	return dropped
}

// cookieNameValue splits a Set-Cookie line's first pair; the value loses
// the double quotes a cookie value may have.
func cookieNameValue(line string) (name, value string, ok bool) {
	pair, _, _ := strings.Cut(line, ";")
	name, value, ok = strings.Cut(pair, "=")
	if !ok {
		return "", "", false
	}
	value = strings.TrimSpace(value)
	if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return strings.TrimSpace(name), value, true
}

func (b *phpBridge) onStderr(rec []byte) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	msgs, rest := b.scanner.feed(rec)
	b.applyInOrder(msgs, false)
	return rest
}

// applyInOrder applies msgs in PHP's order: a message comes either in seq
// order over stderr, or in the response headers at the very end, so one
// that skips a seq waits until the headers were read (fromHeaders), after
// which nothing else can fill the gap. b.mu is held.
func (b *phpBridge) applyInOrder(msgs []message, fromHeaders bool) {
	b.held = append(b.held, msgs...)
	slices.SortStableFunc(b.held, func(x, y message) int { return x.Seq - y.Seq })
	b.headersRead = b.headersRead || fromHeaders
	n := 0
	for n < len(b.held) && (b.headersRead || b.held[n].Seq <= b.nextSeq) {
		b.nextSeq = b.held[n].Seq + 1
		n++
	}
	ready := b.held[:n:n]
	b.held = b.held[n:]
	b.applyAll(ready)
}

// onFrameHeaders applies the messages PHP put in response headers; the
// bridge calls it before the headers leave, so a change that cannot be
// saved still turns the response into a 503.
func (b *phpBridge) onFrameHeaders(values []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	msgs := make([]message, 0, len(values))
	for _, v := range values {
		if m, ok := b.scanner.headerFrame(v); ok {
			msgs = append(msgs, m)
		}
	}
	b.applyInOrder(msgs, true)
	// The headers leave with the new session's cookie: the browser moves
	// to the new ID now, whatever comes after, so the session moves there
	// now (moveAnnounced), before PHP's write of it.
	old, want, retire := b.retiring, "", true
	if old == "" && b.regenerated != "" {
		old, want, retire = b.sess.ID(), b.regenerated, false
	}
	if old != "" {
		moved, err := b.sess.moveAnnounced(b.ctx, old, want, retire)
		if moved {
			b.retiring = ""
			if err != nil {
				b.notSaved("destroy", err)
			}
			return
		}
	}
	b.retireNow()
}

// applyAll applies messages in order and logs what failed; b.mu is held.
func (b *phpBridge) applyAll(msgs []message) {
	for _, m := range msgs {
		if err := b.apply(m); err != nil {
			b.notSaved(m.Op, err)
		}
	}
	for _, err := range b.scanner.errs {
		if b.frameWarnings++; b.frameWarnings <= maxFrameWarnings {
			b.h.m.log.Warn("session frame from PHP rejected", "script", b.path, "error", err.Error())
		}
	}
	b.scanner.errs = b.scanner.errs[:0]
	if b.scanner.lost && b.failed == nil {
		// PHP believes its change was sent; it was not applied.
		b.failed = errors.New("session message from PHP refused")
	}
}

func (b *phpBridge) apply(m message) error {
	ctx := b.ctx
	b.noteID(m.ID)
	hold := false
	switch m.Op {
	case opWriteHold, opTouchHold:
		m.Op = strings.TrimSuffix(m.Op, "-hold")
		hold = b.h.holdsFor(b.path)
		b.shutdownWritten = true
	case "write", "destroy":
		if b.shutdownWritten && b.h.m.o.LockMode == LockStrict {
			// After the shutdown write, whose lock went: the next
			// request of this script holds it.
			b.h.lateWriter(b.path)
		}
	}
	if m.Op == "open" {
		// The new ID's open comes between the regeneration and its
		// write; it changes nothing stored.
		if string(m.Payload) == "regenerate" {
			b.regenerated = m.ID
		}
		return b.sess.Announce(m.ID)
	}
	// A write's data is read before a pending retirement is applied: data
	// the gateway refuses leaves the old session as it was.
	var next []member
	if m.Op == "write" {
		var err error
		if next, err = b.decodeWrite(m.Payload); err != nil {
			if b.retiring != "" {
				b.h.m.log.Warn("session regeneration not applied: the data moving to the new ID was refused, the old session stays", "script", b.path, "session", shortID(b.retiring))
				b.retiring = ""
			}
			return err
		}
	}
	if m.Op == "destroy" && b.retiring != "" && m.ID != b.retiring && m.ID != b.sess.ID() {
		// A second session_regenerate_id(true) (or a session_destroy())
		// of the ID the first one opened, which nothing stored yet: it is
		// forgotten, and the session still moves from the first one's old
		// ID, retired only once the data is stored (moveTo).
		return b.sess.Destroy(ctx, m.ID)
	}
	// The app's expiry goes with the data it belongs to (dropExpiry),
	// unless the write fails.
	undoExpiry := func() {}
	if m.Op == "write" {
		undoExpiry = b.sess.dropExpiry(next)
	}
	// A write of the new ID moves the data there before the old one is
	// retired for good (moveTo); anything else retires it first.
	retiring := ""
	if m.Op == "write" && b.retiring != "" && b.retiring != m.ID {
		retiring, b.retiring = b.retiring, ""
	} else if err := b.retirePending(); err != nil {
		return err
	}
	switch m.Op {
	case "write":
		if b.sentView == nil && len(b.sent) > 0 {
			if view, err := phpserial.DecodeSession(b.sent, b.h.opts.Limits); err == nil {
				b.sentView, _ = objectMembers(view)
			}
		}
		var conflicts []string
		var err error
		switch {
		case retiring != "":
			conflicts, err = b.sess.moveTo(ctx, retiring, m.ID, next, b.sentView)
		case hold:
			conflicts, err = b.sess.writeHolding(ctx, m.ID, next, b.sentView)
		default:
			conflicts, err = b.sess.writeMembers(ctx, m.ID, next, b.sentView)
		}
		if len(conflicts) > 0 {
			if b.h.m.o.LockMode == LockMerge {
				b.h.m.log.Warn("session write overrode concurrent changes (merge mode, last writer wins)", "script", b.path, "conflicts", ConflictKeys(conflicts))
			} else {
				// Strict mode merges only a write made after the request
				// let the lock go (session_start() again after
				// session_write_close(), sessiongate_release()).
				b.h.m.log.Warn("session write overrode concurrent changes (strict mode: written after the request released the session's lock, last writer wins)", "script", b.path, "conflicts", ConflictKeys(conflicts))
			}
		}
		if err != nil {
			undoExpiry()
		}
		if err == nil {
			// PHP reads back what it wrote (the prepend's read handler), so
			// that, not the data it was first given, is its view from now
			// on. Non-nil even when empty: nil means "not computed yet".
			if next == nil {
				next = []member{}
			}
			b.sentView = next
		}
		return err
	case "touch":
		if hold && b.sess.holdsLockOf(m.ID) {
			// The release refreshes the session as a touch would.
			return nil
		}
		return b.sess.Touch(ctx, m.ID)
	case "close":
		b.sess.Close(ctx, m.ID)
		return nil
	case "destroy":
		if string(m.Payload) == "regenerate" {
			// session_regenerate_id(true): the data moves to a new ID,
			// and the old one is retired once that can no longer fail
			// for the data's sake (retiring).
			b.retiring = m.ID
			return nil
		}
		if m.ID == b.regenerated && m.ID != b.sess.ID() {
			// session_regenerate_id(false) then session_destroy(): the
			// browser would hold the new, destroyed ID (left), also when
			// a session_start() after it reopens the old session (PHP
			// takes its ID from $_COOKIE and sends no cookie for it).
			b.sess.leave()
		}
		return b.sess.Destroy(ctx, m.ID)
	default:
		return errors.New("unknown message " + strconv.Quote(m.Op))
	}
}

// decodeWrite parses a write's payload into the session's members; an
// error is the data's fault (ErrUnstorable: a retry writes it again).
func (b *phpBridge) decodeWrite(payload []byte) ([]member, error) {
	data, err := decodePHPSession(payload, b.h.opts.Limits)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnstorable, err)
	}
	next, err := objectMembers(data)
	if err != nil {
		return nil, fmt.Errorf("%w: write: %w", ErrUnstorable, err)
	}
	return next, nil
}

// retirePending retires the ID a regeneration left (retiring), if any.
func (b *phpBridge) retirePending() error {
	id := b.retiring
	if id == "" {
		return nil
	}
	b.retiring = ""
	return b.sess.Retire(b.ctx, id)
}

// retireNow applies a pending retirement outside a message (the headers
// leaving, the end of the request), logged and recorded as a failed
// message is.
func (b *phpBridge) retireNow() {
	if err := b.retirePending(); err != nil {
		b.notSaved("destroy", err)
	}
}

// notSaved logs a session change of PHP's (message op) that failed, and
// keeps the request's first such error (failed).
func (b *phpBridge) notSaved(op string, err error) {
	b.h.m.log.Error("session change from PHP not saved", "script", b.path, "op", op, "error", err.Error())
	if b.failed == nil {
		b.failed = err
	}
}

// decodePHPSession accepts the format the prepend configures
// (php_serialize) and the classic one, in case a script switched
// session.serialize_handler at run time.
func decodePHPSession(payload []byte, l phpserial.Limits) ([]byte, error) {
	if len(payload) == 0 {
		return emptyObject, nil
	}
	if len(payload) > 1 && payload[0] == 'a' && payload[1] == ':' {
		return phpserial.DecodeSession(payload, l)
	}
	return phpserial.DecodePHPHandler(payload, l)
}

func (b *phpBridge) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return // the deferred call after the one a whole response makes
	}
	b.finished = true
	if len(b.held) > 0 {
		// No headers were handed over (the response failed): apply what
		// came, in order, rather than drop it.
		b.applyInOrder(nil, true)
	}
	// A regeneration no write followed (session_abort(), a worker that
	// died): the old ID is retired as PHP asked.
	b.retireNow()
	if more := b.frameWarnings - maxFrameWarnings; more > 0 {
		b.h.m.log.Warn("session frames from PHP rejected, not logged one by one", "script", b.path, "more", more)
	}
	if rest := b.scanner.flushLog(); len(rest) > 0 {
		attrs := []any{"script", b.path, "path", server.LogValue(b.reqPath), "remote", b.remote}
		if b.backend != "" { // unknown when PHP's header never came
			attrs = append(attrs, "backend", b.backend)
		}
		b.h.m.log.Warn("php stderr", append(attrs, "stderr", string(rest))...) // as fcgi logs it
	}
	if b.scanner.cutShort() {
		b.h.m.log.Error("PHP session message cut short; change not saved", "script", b.path)
	}
}

// lateFailure is the session change of PHP's that was not saved, once
// finish has run: one refused, or a message PHP's end cut short.
func (b *phpBridge) lateFailure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed == nil && b.scanner.cutShort() {
		return errors.New("session message from PHP cut short")
	}
	return b.failed
}

func (b *phpBridge) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cut := b.cutAtHeader
	if !b.headerSeen {
		cut = b.scanner.cutShort()
	}
	if b.failed == nil && cut {
		// PHP's output started while one of its messages was incomplete:
		// the rest of it can no longer come (log_limit cut it); finish
		// logs it.
		b.failed = errors.New("session message from PHP cut short")
	}
	return b.failed
}

// bridgeWriter sets the session cookie as the headers leave, hides internal
// response headers, and turns a response whose session change was lost
// before the headers left into a 503 instead of a silent success.
type bridgeWriter struct {
	http.ResponseWriter
	req         *http.Request
	b           *phpBridge
	wroteHeader bool
	swallow     bool
}

func (w *bridgeWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	h := w.Header()
	// Also without frames: stderr messages held for the headers go now.
	w.b.onFrameHeaders(h[FrameHeader])
	if h.Get(stderrOffHeader) != "" {
		w.b.h.warnStderrOff(w.b.path)
	}
	StripInternalHeaders(h)
	w.b.dropRawIDCookies(h)
	w.b.dropCookiesUnderGatewayName(h)
	// A 5xx already tells the client the request failed; any other code,
	// a private 6xx-9xx included (the transport passes those, as nginx
	// does), would pass for a success.
	err := w.b.failure()
	why := "session change from PHP not saved"
	if err == nil && (code < 500 || code > 599) {
		// A page that only read the session shows what it was given.
		err, why = w.b.sess.Settled(w.req.Context()), "session given to PHP not stored"
	}
	if err != nil && (code < 500 || code > 599) {
		// The gateway's own Connection: close (a request body it will not
		// read to the end) must stay; the app's headers go.
		conn := h["Connection"]
		for k := range h {
			delete(h, k)
		}
		if conn != nil {
			h["Connection"] = conn
		}
		w.swallow = true
		// The access log line of the 503 (or 500) says why, as other
		// failures' do.
		if ri := server.Info(w.req.Context()); ri != nil && ri.Err == nil {
			ri.Err = fmt.Errorf("%s: %w", why, err)
		}
		// The script wrote what cannot be stored: the same again on a
		// retry (500); else 503, to retry.
		status, text := unsavedAnswer(err)
		if status == http.StatusServiceUnavailable {
			h.Set("Retry-After", "1")
		}
		server.WriteError(w.ResponseWriter, w.req, status, text)
		w.b.headersHandled()
		return
	}
	w.b.sess.SetCookie(h)
	w.ResponseWriter.WriteHeader(code)
	w.b.headersHandled()
}

func (w *bridgeWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func (w *bridgeWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.swallow {
		f.Flush()
	}
}

func (w *bridgeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maxFrameWarnings bounds the "session frame from PHP rejected" warnings of
// one request; the rest are counted in one line at the end. Text an app logs
// on a client's behalf can hold "@sg1:" hundreds of times per error_log()
// call, and each would otherwise be a log line of its own, outside the
// per-request stderr log budget.
const maxFrameWarnings = 5

// holdsLockOf reports whether the request holds session id's strict-mode
// lock, id being the session it loaded (not a new one PHP opened): a
// message that may keep the lock (opTouchHold, opWriteHold) then keeps it.
func (s *Session) holdsLockOf(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdsLockOfLocked(id)
}

func (s *Session) holdsLockOfLocked(id string) bool {
	return s.m.o.LockMode == LockStrict && s.lease != nil && id != "" && id == s.id && s.exists &&
		!s.movePending && !s.isAnnounced(id)
}

// writeHolding is writeMembers for PHP's write at its last shutdown
// function (opWriteHold): stored now, before the response headers leave,
// but under the lock, which it keeps, so that a change PHP makes after it
// (an object destructor) is written under the same lock, with no other
// request of the session in between, as PHP's files handler keeps its
// lock until its final write. The lock goes with PHP's next message or
// the end of the request (Release). The store's Save ignores the lock and
// checks the version this request loaded, which nobody else can change
// while it holds the lock, checked just before (Renew); a Save of the
// lock's holder is taken into the record the store hands the next holder
// (redisstore's savedUnderLock). Anything else (merge mode, a new ID, a
// regeneration, a record changed beside the lock) is an ordinary write.
// It costs a page that changes its session two more store round trips
// than the write and release in one step (Renew, Save, then the release):
// a store operation that writes under a lease and keeps it would make it
// one.
func (s *Session) writeHolding(ctx context.Context, id string, next, sentView []member) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holdsLockOfLocked(id) {
		return s.writeLocked(ctx, id, next, sentView)
	}
	ours := next
	if sentView != nil {
		ours = keepUntouched(s.stored, sentView, next)
	}
	newData := buildObject(ours)
	if bytes.Equal(newData, s.rec.Data) {
		// Unchanged: the release refreshes it, as a touch.
		return nil, nil
	}
	rec := s.rec
	rec.Data, rec.Seen = newData, ms(s.m.now())
	sctx, cancel := s.storeCtx(ctx)
	defer cancel()
	// The Save does not ask whether the lock is still this request's: the
	// renewal does, first (and waits for the write of the holder that
	// handed the lock over, which the Save must follow). A lock Redis lost
	// (a failover) or that ran out, or a hand-over whose write failed, is
	// then the failure an ordinary write under the lock meets: the write
	// and release in one step refuse it (503) and count it.
	if err := s.lease.Renew(sctx, s.m.o.LockLease); err != nil {
		return s.writeHeldLocked(ctx, id, next, sentView)
	}
	v, err := s.m.o.Store.Save(sctx, s.id, s.version, rec.encode(), s.ttl(rec.Created))
	if errors.Is(err, store.ErrConflict) {
		// Written beside the lock (a merge-mode gateway while
		// SESSIONGATE_SESSION_LOCK changes): written and released as
		// an ordinary write under the lock is.
		return s.writeHeldLocked(ctx, id, next, sentView)
	}
	if err != nil {
		s.m.event("store_error")
		return nil, fmt.Errorf("%w: save: %w", ErrUnavailable, err)
	}
	s.rec, s.version, s.stored, s.latest = rec, v, ours, nil
	s.m.event("save")
	return nil, nil
}

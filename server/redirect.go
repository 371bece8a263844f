package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/logtext"
	"github.com/sessiongate/sessiongate/phproute"
)

// acmeChallengeDir is where certbot --webroot (and every HTTP-01 client
// given a webroot) writes its tokens, relative to the webroot, and the URL
// path the certificate authority fetches them from (RFC 8555 section 8.3).
const acmeChallengeDir = ".well-known/acme-challenge"

// RedirectHandler returns the handler of the plain-HTTP listener
// (SESSIONGATE_HTTP_REDIRECT_LISTEN), with the same access log and
// observers as the public handler, under upstream "redirect".
//
// It takes the place of nginx's `server { listen 80; return 301
// https://$host$request_uri; }`, plus the ACME HTTP-01 files certbot
// --webroot writes, which must be answered on port 80 (served as the TLS
// listener serves them). Nothing else of the site is served over plain
// HTTP, and neither PHP nor Django is reached.
//
// public is the address the TLS listener is bound to, whose port the
// redirects name: SESSIONGATE_LISTEN's port 0 is only known once bound (a
// redirect to port 0 leads nowhere). nil takes the port SESSIONGATE_LISTEN
// names.
func (s *Server) RedirectHandler(public net.Addr) http.Handler {
	_, p, err := net.SplitHostPort(s.cfg.Listen)
	if a, ok := public.(*net.TCPAddr); ok {
		p, err = strconv.Itoa(a.Port), nil
	}
	port := ""
	if err == nil && p != "443" {
		port = ":" + p
	}
	rh := &redirecter{s: s, httpsPort: port}
	// No header edits here. No HSTS, whatever a proxy's X-Forwarded-Proto
	// says: the header must never go out over plain HTTP (RFC 6797 section
	// 7.2). No SESSIONGATE_RESPONSE_HEADERS: they are for the site's pages,
	// which this listener only redirects to.
	return s.logRequestsOut(http.HandlerFunc(rh.serve), nil)
}

type redirecter struct {
	s *Server
	// httpsPort is ":port" of the TLS listener, or "" for 443, which a
	// https:// URL implies.
	httpsPort string
}

func (rh *redirecter) serve(w http.ResponseWriter, r *http.Request) {
	s := rh.s
	Info(r.Context()).Upstream = "redirect"
	if r.ContentLength != 0 || r.TransferEncoding != nil || !r.ProtoAtLeast(1, 1) {
		// The body is never read. Reading another request after it would
		// mean reading (or skipping) it first; a 308 makes the client
		// send it again over TLS anyway. HTTP/1.0 closes for the same
		// reason as on the public listener (front).
		w.Header().Set("Connection", "close")
	}
	if s.refusedMethod(w, r) {
		// As on the public listener, rather than redirected: over TLS it
		// would be refused anyway.
		return
	}
	if err := hostFieldError(r); err != nil {
		// As on the public listener, and as nginx's port-80 server
		// answers. An empty Host went to the canonical name as if none
		// had been sent, and with userinfo the host after the "@" made
		// the redirect: a proxy in front that reads "site@evil.example"
		// as the site's sent its visitors to https://evil.example.
		Info(r.Context()).Err = err
		s.fail(w, r, http.StatusBadRequest)
		return
	}
	if s.refusedServerName(w, r) {
		// Neither a redirect to nor a certificate for a name the site
		// does not have.
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if token, ok := strings.CutPrefix(r.URL.Path, "/"+acmeChallengeDir+"/"); ok {
			rh.serveChallenge(w, r, token)
			return
		}
	}
	if Info(r.Context()).HTTPS {
		// A TLS proxy in front sends its HTTPS traffic here: redirecting
		// it to https:// would bring it straight back, a loop the browser
		// ends with "too many redirects" and no word in any log.
		Info(r.Context()).Err = errors.New("an HTTPS request (X-Forwarded-Proto from SESSIONGATE_TRUSTED_PROXIES) reached SESSIONGATE_HTTP_REDIRECT_LISTEN: point the proxy at SESSIONGATE_LISTEN")
		s.fail(w, r, http.StatusMisdirectedRequest)
		return
	}
	// The host the client asked for: through a trusted proxy, which may
	// send its own Host (nginx's proxy_pass sends the upstream's name), its
	// X-Forwarded-Host, as the canonical redirect reads it (names has
	// checked that every forwarded host is listed).
	asked := r.Host
	if Info(r.Context()).ViaProxy {
		if fh := forwardedHost(r.Header, s.cfg.TrustedProxies); fh != "" {
			asked = fh
		}
	}
	host, ok := requestHost(asked)
	if n := s.names; n != nil && n.canonical != "" {
		if name, listed := n.match(asked); asked == "" || listed && n.movesToCanonical(name) {
			// Straight to the canonical name: one hop, not two.
			host, ok = n.canonical, true
		}
	}
	if !ok {
		// The Host ends up in the Location header: nothing but a plain
		// name or address may, or a crafted one would send the visitor
		// elsewhere.
		Info(r.Context()).Err = fmt.Errorf("host %q is no plain name or address to redirect to", logtext.Clip(asked, 100))
		s.fail(w, r, http.StatusBadRequest)
		return
	}
	target, ok := redirectTarget(r.RequestURI)
	if !ok {
		// "OPTIONS *" and anything else without a path: nothing to redirect
		// to. The public listener answers those 400 too.
		Info(r.Context()).Err = errNoPathToRedirect
		s.fail(w, r, http.StatusBadRequest)
		return
	}
	status := http.StatusPermanentRedirect // keeps the method and body, unlike 301
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		status = http.StatusMovedPermanently // what nginx's return 301 sends, and what every client follows
	}
	w.Header().Set("Location", "https://"+host+rh.httpsPort+target)
	s.fail(w, r, status)
}

// redirectedToCanonical answers a request for another of the site's names
// with the same URL on SESSIONGATE_CANONICAL_NAME, nginx's server block
// that does nothing but return 301, and reports whether it did.
func (s *Server) redirectedToCanonical(w http.ResponseWriter, r *http.Request) bool {
	ri := Info(r.Context())
	loc, move, ok := s.names.canonicalLocation(r, ri.ViaProxy, ri.HTTPS, s.cfg.TrustedProxies)
	switch {
	case !move:
		return false
	case !ok:
		// "OPTIONS *" and other targets without a path.
		ri.Err = errNoPathToRedirect
		s.fail(w, r, http.StatusBadRequest)
		return true
	}
	s.redirect(w, r, loc, 0)
	return true
}

// errNoPathToRedirect refuses a request to redirect whose target has no
// path: "OPTIONS *", an authority-form target.
var errNoPathToRedirect = errors.New("request target without a path to redirect")

// redirect answers r with status and Location loc; status 0 is 301, or
// 308 for methods other than GET and HEAD, which keeps the method and body.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, loc string, status int) {
	if status == 0 {
		status = http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			status = http.StatusMovedPermanently
		}
	}
	if r.ProtoMajor == 1 && (r.ContentLength != 0 || r.TransferEncoding != nil) {
		// The body is never read; the client sends it again to the new
		// URL. (HTTP/2 frames each request: closing would end every other
		// stream of the connection.)
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Location", loc)
	s.fail(w, r, status)
}

// serveChallenge answers an ACME HTTP-01 challenge with the file certbot
// --webroot -w <static root> wrote for it. The token is routed and opened
// as the public listener would route and open /.well-known/acme-challenge/
// TOKEN (the same symlink rules, SESSIONGATE_FOLLOW_SYMLINKS included, and
// no FIFO can hold the request); only a static file is sent, never a
// script run, and a token that is not a base64url name is 404 before any
// lookup. SESSIONGATE_RESTRICTED_PATHS and SESSIONGATE_BASIC_AUTH do not
// apply here, as nginx's port-80 server block has none of the site's
// locations: the certificate authority must fetch the token, however the
// site is closed.
func (rh *redirecter) serveChallenge(w http.ResponseWriter, r *http.Request, token string) {
	s := rh.s
	if !validToken(token) {
		s.fail(w, r, http.StatusNotFound)
		return
	}
	route := s.router.Resolve("/" + acmeChallengeDir + "/" + token)
	if route.Kind != phproute.Static {
		if route.Warn {
			// A link out of the root, say: the renewal fails, and the
			// operator must hear why.
			Info(r.Context()).Err = errors.New(route.Reason)
		}
		status := http.StatusNotFound
		if route.Kind == phproute.Failed {
			status = http.StatusInternalServerError
		}
		s.fail(w, r, status)
		return
	}
	f, fi, err := s.router.Open(route)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// A missing token is the client's business (scanners, an old
			// challenge); one the gateway cannot read fails a renewal.
			Info(r.Context()).Err = err
		}
		s.fail(w, r, http.StatusNotFound)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// validToken reports whether token can be an ACME HTTP-01 token: base64url
// characters only (RFC 8555 section 8.1), so never a path, a dot name or
// empty.
func validToken(token string) bool {
	if token == "" || len(token) > 255 {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// requestHost returns the host of a Host header (or absolute-form
// request target), as a https:// URL and SESSIONGATE_SERVER_NAMES take it:
// lower-cased, without its port or the trailing dot of a fully qualified
// name (as nginx's $host: https://example.com./ is another origin to a
// browser, without the site's cookies), and only if it is a DNS name, an
// IPv4 address or a bracketed IPv6 address. Anything else (userinfo, backslashes,
// spaces, percent signs, a zone) could make the URL name another host
// than the one it appears to, so it is refused.
func requestHost(hostport string) (string, bool) {
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", false
		}
		host, port = hostport[:end+1], hostport[end+1:]
		if port != "" && port[0] != ':' {
			return "", false
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i:]
	}
	if len(port) > 6 {
		return "", false
	}
	for i := 1; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", false
		}
	}
	if host == "" {
		return "", false
	}
	host = strings.ToLower(host)
	if host[0] == '[' {
		return host, true
	}
	host = strings.TrimSuffix(host, ".")
	return host, config.ValidHostName(host)
}

// redirectTarget returns the path and query the client asked for, as it
// sent them (an absolute-form target reduced to them, like nginx's
// $request_uri), to follow the https:// origin. Bytes a URL may not hold
// raw (non-ASCII, quotes, backslashes, ...) are percent-encoded, as a
// browser would send them; a target that does not start with "/" has no
// place after a host and is refused.
func redirectTarget(requestURI string) (string, bool) {
	t := originForm(requestURI)
	if t == "" || t[0] != '/' {
		return "", false
	}
	return escapeRaw(t), true
}

// escapeRaw percent-encodes the bytes of a client's path or query a URL
// may not hold raw (non-ASCII, controls, space, quotes, backslashes, ...),
// as a browser would send them, for a Location header; the rest, escapes
// included, is kept as it is.
func escapeRaw(t string) string {
	const hex = "0123456789ABCDEF"
	var b []byte // nil while nothing needs escaping
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c > ' ' && c < 0x7f && !strings.ContainsRune("\"<>\\^`{|}", rune(c)) {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(t)+16), t[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	if b == nil {
		return t
	}
	return string(b)
}

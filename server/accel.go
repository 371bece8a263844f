package server

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/compress"
	"github.com/sessiongate/sessiongate/internal/httpfield"
	"github.com/sessiongate/sessiongate/internal/proxyheader"
	"github.com/sessiongate/sessiongate/phproute"
)

// X-Accel-Redirect: an app answers a download it has authorised with only
// this header, naming a URL, and the server in front sends the file at
// that URL instead of the app's (empty) body. WooCommerce's protected
// downloads, django-sendfile2, django-private-storage and Yii's xSendFile
// do so whenever SERVER_SOFTWARE says nginx, as ours does. The file then
// goes out with sendfile and ranges while the php-fpm worker or gunicorn
// thread, and the session lock, are already free.
//
// As with nginx, the app's response decides nothing but the file and the
// headers that describe the download (Content-Type, Content-Disposition,
// Cache-Control, Set-Cookie, its own others); the status, length and
// validators are the file's. Unlike nginx, the target can only be a file:
// a URL that would run PHP, or Django, is answered 404 with the reason in
// the log.

// internalLocation is one SESSIONGATE_INTERNAL_PATHS directory.
type internalLocation struct {
	prefix string // URL directory, ending in "/"
	// files resolves the path after prefix in an alias directory; nil
	// when the files are under the static root at their URL.
	files *phproute.Router
}

// openInternalLocations opens the routers of the alias directories, with
// the static root's symlink rules.
func openInternalLocations(cfg *config.Config) ([]internalLocation, error) {
	var out []internalLocation
	for _, l := range cfg.InternalLocations() {
		il := internalLocation{prefix: l.Prefix}
		if l.Dir != "" {
			r, err := phproute.New(l.Dir, "")
			if err != nil {
				closeInternalLocations(out)
				return nil, fmt.Errorf("SESSIONGATE_INTERNAL_PATHS %s: %w", l.Prefix, err)
			}
			r.FollowSymlinksOut(cfg.SymlinkTargets())
			il.files = r
		}
		out = append(out, il)
	}
	// Longest first, so that the first match is the longest.
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].prefix) > len(out[j].prefix) })
	return out, nil
}

func closeInternalLocations(ls []internalLocation) {
	for _, l := range ls {
		if l.files != nil {
			l.files.Close()
		}
	}
}

// internalLocationOf returns the internal location a clean URL path lies
// in (a directory asked for without its slash included), or nil.
func (s *Server) internalLocationOf(p string) *internalLocation {
	for i := range s.internal {
		pre := s.internal[i].prefix
		if strings.HasPrefix(p, pre) || p == pre[:len(pre)-1] {
			return &s.internal[i]
		}
	}
	return nil
}

// serveApp runs an app's handler (PHP's chain, a Django mount) and carries
// out the X-Accel-Redirect its response names, once the handler has
// returned: the app's session is then saved and its lock released, so a
// slow download holds neither.
func (s *Server) serveApp(h http.Handler, w http.ResponseWriter, r *http.Request, appReq *http.Request) {
	aw := &accelWriter{ResponseWriter: w}
	h.ServeHTTP(aw, appReq)
	if aw.redirected {
		if ri := Info(r.Context()); ri != nil && ri.Unsaved != nil {
			s.answerUnsaved(w, r, ri, aw.target)
			return
		}
		s.serveAccel(w, r, aw.target)
	}
}

// UnsavedAnswer is the error an app's response becomes when a change the
// app made could not be saved: Status and Text as WriteError takes them,
// Err the reason the access log gives.
type UnsavedAnswer struct {
	Status int
	Text   string
	Err    error
}

// answerUnsaved answers an X-Accel-Redirect whose app lost a change after
// its headers were handled (a session PHP wrote at its end, once the
// headers had left it) with the error the app's response would have got
// had the loss come before them: sending the file would tell the client
// the change was kept (a download counted, a one-time link used). The
// app's headers go, its cookies included, as they do then; the gateway's
// own Connection: close stays.
func (s *Server) answerUnsaved(w http.ResponseWriter, r *http.Request, ri *RequestInfo, target string) {
	ri.InternalRedirect = target
	if ri.Err == nil {
		ri.Err = ri.Unsaved.Err
	}
	h := w.Header()
	conn := h["Connection"]
	clear(h)
	if conn != nil {
		h["Connection"] = conn
	}
	if ri.Unsaved.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	s.writeError(w, r, ri.Unsaved.Status, ri.Unsaved.Text)
}

// accelWriter holds back an app's response that carries X-Accel-Redirect
// and drops its body; any other response passes through untouched.
type accelWriter struct {
	http.ResponseWriter
	wroteHeader bool
	redirected  bool
	target      string
}

// bodyHeaders describe the bytes of the app's body, which the file
// replaces, or its transfer.
var bodyHeaders = []string{
	"Content-Length", "Content-Encoding", "Content-Range", "Accept-Ranges",
	"Etag", "Last-Modified", "Transfer-Encoding", "Trailer",
	"Content-Md5", "Digest", "Content-Digest", "Repr-Digest",
}

func (w *accelWriter) WriteHeader(code int) {
	if w.wroteHeader || w.redirected {
		return
	}
	h := w.Header()
	v, ok := h[proxyheader.AccelRedirect]
	if !ok || code < 200 {
		if code >= 200 {
			w.wroteHeader = true
			if _, typed := h["Content-Type"]; !typed {
				// The app sent no type (PHP's header_remove('Content-Type')
				// or an empty default_mimetype, a Django response whose
				// header was deleted): none goes out, as nginx passes it.
				// net/http would sniff one from the first bytes,
				// "text/html; charset=utf-8" for markup, which a browser
				// honours where X-Content-Type-Options: nosniff kept it
				// from rendering an untyped body as HTML, and whose
				// charset overrides the page's. Static files are never
				// sniffed either.
				h["Content-Type"] = nil
			}
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	// nginx takes the first one too.
	w.redirected, w.target = true, v[0]
	delete(h, proxyheader.AccelRedirect)
	for _, name := range bodyHeaders {
		delete(h, name)
	}
}

func (w *accelWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader && !w.redirected {
		w.WriteHeader(http.StatusOK)
	}
	if w.redirected {
		// What the app printed anyway is read and dropped, as nginx
		// does, so that its connection stays usable.
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func (w *accelWriter) Flush() {
	if !w.wroteHeader && !w.redirected {
		w.WriteHeader(http.StatusOK)
	}
	if w.redirected {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *accelWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errAccel is why an X-Accel-Redirect was answered with an error.
type errAccel struct {
	target string
	why    string
	status int
}

func (e *errAccel) Error() string {
	return fmt.Sprintf("X-Accel-Redirect %q: %s", e.target, e.why)
}

// serveAccel sends the file target names, with the headers the app's
// response left in w, to the client of r.
func (s *Server) serveAccel(w http.ResponseWriter, r *http.Request, target string) {
	ri := Info(r.Context())
	if ri != nil {
		ri.InternalRedirect = target
	}
	if len(s.restrictedPaths) > 0 && s.accelRestricted(w, r, target) {
		return
	}
	files, route, err := s.resolveAccel(target)
	var f fileToSend
	if err == nil {
		f.file, f.info, err = files.Open(route)
		if err != nil {
			err = &errAccel{target, err.Error(), openFailureStatus(err)}
		}
	}
	var ae *errAccel
	if errors.As(err, &ae) {
		if ri != nil {
			ri.Err = ae
		}
		dropDownloadHeaders(w.Header())
		s.fail(w, r, ae.status)
		return
	}
	defer f.file.Close()
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", contentType(path.Ext(route.Name), mime.TypeByExtension))
	}
	h.Set("X-Content-Type-Options", "nosniff")
	// A file the app handed out after checking who asks is that user's:
	// no shared cache may keep it unless the app says so.
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "private")
	}
	// Downloads keep their length, ranges and sendfile, as with a
	// Content-Disposition: attachment from the app.
	compress.SkipCompression(w)
	relaxIfModifiedSince(r.Header)
	if r.Method != http.MethodHead && r.Method != http.MethodGet {
		// A POST that answered with a file gets the file, as with nginx,
		// and not ServeContent's refusals of conditional non-GETs.
		r = r.WithContext(r.Context())
		r.Method = http.MethodGet
	}
	s.sendFile(onSuccessOnly{w, dropDownloadHeaders}, r, f)
}

// dropDownloadHeaders takes out of h what the app said about the download
// it handed over, for an answer that is not the file. The app's
// Set-Cookie (a new session's cookie) stays, and a Cache-Control that
// keeps the answer out of shared caches (keepsOutOfSharedCaches); a Content-Disposition, a type,
// and freshness (a year of it, or "public, max-age") do not fit an error,
// which a shared cache could otherwise keep for every client of the URL.
// That includes the Cache-Control of a CDN's own (httpfield.CDNCacheControl),
// which a CDN reads before Cache-Control.
func dropDownloadHeaders(h http.Header) {
	h.Del("Content-Disposition")
	h.Del("Content-Type")
	h.Del("Expires")
	for _, name := range append([]string{"Cache-Control"}, httpfield.CDNCacheControl[:]...) {
		if !keepsOutOfSharedCaches(h.Values(name)) {
			h.Del(name)
		}
	}
}

// keepsOutOfSharedCaches reports whether cache directives keep a response
// out of shared caches, or stored but never reused unchecked: no-store,
// private or no-cache, each without an argument. Qualified, private and
// no-cache hold back only the fields they name (RFC 9111 sections
// 5.2.2.4 and 5.2.2.7: public, max-age=31536000, no-cache="Set-Cookie"
// is a year in any cache), and a name that only begins like one
// (Surrogate-Control's no-store-remote) is another directive.
func keepsOutOfSharedCaches(values []string) bool {
	for _, d := range httpfield.Directives(values) {
		switch d.Name {
		case "no-store", "private", "no-cache":
			if !d.HasArg {
				return true
			}
		}
	}
	return false
}

// accelPath is the path of the file an X-Accel-Redirect target names, as
// the path lists match it: without its query, decoded, config.CleanPath;
// ok is false for a target resolveAccel refuses anyway.
func accelPath(target string) (string, bool) {
	p, _, _ := strings.Cut(target, "?")
	decoded, err := url.PathUnescape(p)
	if err != nil || !strings.HasPrefix(decoded, "/") {
		return "", false
	}
	return config.CleanPath(decoded), true
}

// accelRestricted refuses an X-Accel-Redirect to a path that
// SESSIONGATE_RESTRICTED_PATHS or SESSIONGATE_BASIC_AUTH keep the client
// out of, as nginx runs its access checks again for the location an
// internal redirect leads to, and reports whether it did.
func (s *Server) accelRestricted(w http.ResponseWriter, r *http.Request, target string) bool {
	p, ok := accelPath(target)
	if !ok {
		return false // resolveAccel refuses it
	}
	// The entry of the path, and the one nginx picks for it when the
	// path names a directory entry without its slash (rulesOf).
	for _, i := range [2]int{s.restrictedRule(p), s.nginxRule(p)} {
		if i < 0 {
			continue
		}
		if status := s.denial(i, r); status != 0 {
			dropDownloadHeaders(w.Header())
			return s.refuse(w, r, i, status)
		}
	}
	return false
}

// resolveAccel finds the file an X-Accel-Redirect value names: the router
// to open it with and its route, or an *errAccel.
func (s *Server) resolveAccel(target string) (*phproute.Router, phproute.Route, error) {
	fail := func(status int, format string, args ...any) (*phproute.Router, phproute.Route, error) {
		return nil, phproute.Route{}, &errAccel{target, fmt.Sprintf(format, args...), status}
	}
	if strings.HasPrefix(target, "@") {
		return fail(http.StatusNotFound, "named locations are nginx's; the gateway sends files only, give the file's URL")
	}
	p, _, _ := strings.Cut(target, "?")
	if !strings.HasPrefix(p, "/") {
		return fail(http.StatusNotFound, "not a URL path starting with /")
	}
	// nginx unescapes the value when it has a %, and refuses .. either
	// way: an app that builds the header from a request parameter must
	// not be led out of the directory it meant.
	decoded, err := url.PathUnescape(p)
	if err != nil {
		return fail(http.StatusNotFound, "invalid percent-encoding")
	}
	for seg := range strings.SplitSeq(decoded, "/") {
		if seg == ".." {
			return fail(http.StatusNotFound, "a .. segment (refused, as nginx refuses it)")
		}
	}
	if strings.HasSuffix(decoded, "/") || strings.HasSuffix(decoded, "/.") {
		// nginx opens "report.pdf/", which fails, and the router refuses
		// a client's request for it: a file is not sent under a name
		// that says directory.
		return fail(http.StatusNotFound, "ends in /, so names a directory")
	}
	clean := path.Clean(decoded)
	for seg := range strings.SplitSeq(clean, "/") {
		if strings.HasSuffix(strings.ToLower(seg), ".php") {
			return fail(http.StatusNotFound, "names a PHP script; the gateway sends files only, never a script or its source")
		}
	}
	files, at := s.router, clean
	if l := s.internalLocationOf(clean); l != nil && l.files != nil {
		if !strings.HasPrefix(clean, l.prefix) {
			return fail(http.StatusNotFound, "names a directory")
		}
		files, at = l.files, "/"+strings.TrimPrefix(clean, l.prefix)
	}
	route := files.Resolve((&url.URL{Path: at}).EscapedPath())
	switch route.Kind {
	case phproute.Static:
		return files, route, nil
	case phproute.PHP:
		// The front controller, which nginx would run: not a file.
		return fail(http.StatusNotFound, "no such file")
	case phproute.Forbidden:
		return fail(http.StatusForbidden, "%s", route.Reason)
	case phproute.Failed:
		return fail(http.StatusInternalServerError, "%s", route.Reason)
	case phproute.Redirect:
		return fail(http.StatusNotFound, "names a directory")
	}
	why := "no such file"
	if route.Reason != "" {
		why += " (" + route.Reason + ")"
	}
	return fail(http.StatusNotFound, "%s", why)
}

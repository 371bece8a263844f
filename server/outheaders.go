package server

import (
	"net/http"
	"slices"

	"github.com/sessiongate/sessiongate/config"
)

// outHeaders is what the gateway does to a listener's response headers as
// they go out, whoever wrote the response (a static file, PHP, Django, a
// redirect, an error page): SESSIONGATE_HIDE_HEADERS, then
// SESSIONGATE_RESPONSE_HEADERS, then SESSIONGATE_HSTS. Applying it in the
// one place every response passes keeps nginx's surprise out: its
// add_header skips error responses unless told "always", and a location's
// add_header silently drops every one of the server's.
type outHeaders struct {
	// hsts is the Strict-Transport-Security value of HTTPS responses; it
	// replaces the app's.
	hsts string
	hide []string // canonical names
	// added are SESSIONGATE_RESPONSE_HEADERS, most specific path first
	// (config.SortLocations): the first line matching a request decides
	// for its header name.
	added []config.ResponseHeader
	// folded are the paths of added lower-cased (foldCase), and
	// longestFolded the longest of them (suffixFolds).
	folded        []string
	longestFolded int
	// maxNames is how many header names added holds.
	maxNames int
}

// newOutHeaders returns nil when cfg asks for no edits.
func newOutHeaders(cfg *config.Config) *outHeaders {
	o := &outHeaders{hsts: cfg.HSTS, hide: cfg.HiddenHeaders(), added: cfg.ResponseHeaders()}
	if o.hsts == "" && len(o.hide) == 0 && len(o.added) == 0 {
		return nil
	}
	config.SortLocations(o.added, func(h config.ResponseHeader) string { return h.Path })
	var names []string
	for _, h := range o.added {
		if !slices.Contains(names, h.Name) {
			names = append(names, h.Name)
		}
		o.folded = append(o.folded, foldCase(h.Path))
		o.longestFolded = max(o.longestFolded, len(h.Path))
	}
	o.maxNames = len(names)
	return o
}

// apply edits h, the headers of a response to the request ri describes,
// for urlPath (config.CleanPath of its path, rawPath as it came, decoded),
// just before they are written.
func (o *outHeaders) apply(h http.Header, ri *RequestInfo, urlPath, rawPath string, https bool) {
	o.hideFrom(h)
	if len(o.added) > 0 {
		o.add(h, ri, urlPath, rawPath)
	}
	if https && o.hsts != "" {
		h["Strict-Transport-Security"] = []string{o.hsts}
	}
}

// hideFrom removes SESSIONGATE_HIDE_HEADERS from h.
func (o *outHeaders) hideFrom(h http.Header) {
	for _, name := range o.hide {
		delete(h, name)
	}
}

// add puts SESSIONGATE_RESPONSE_HEADERS into h. A line applies when its
// path covers the URL, the script that ran (/hello.php for /hello.php/x,
// /dir/index.php for /dir/) or a directory's static index, the file an
// X-Accel-Redirect sent, or the route a front controller serves
// (/admin/users for /index.php/admin/users): a client cannot pick a URL
// that dodges a page's policy. The path after another script is only an
// argument of that script, and does not count: /account.php/embed/x must
// not get a line for /embed/. For each header the most specific line that
// applies decides. A directory's line that takes a header off reaches only
// the URLs under the directory, not its name without the slash.
//
// Apps may route a path on other readings than its clean one, as the
// restricted paths read it: lower-cased (Django's (?i) patterns take
// /dj/ADMIN/ for /dj/admin/) and, for a path with dot segments, from each
// of its slashes with the segments left in (/dj/account/..%2fembed/ is
// the account page to Django, though it cleans to /dj/embed/). A line that
// adds a header also applies on those readings; a line that takes one off
// never applies to a path with dot segments, so that such a spelling can
// add headers to a page but never take its policy off.
func (o *outHeaders) add(h http.Header, ri *RequestInfo, urlPath, rawPath string) {
	readings := [4]string{urlPath}
	if ri != nil {
		readings[1], readings[2] = ri.script, ri.frontRoute
		if ri.InternalRedirect != "" {
			readings[3], _ = accelPath(ri.InternalRedirect)
		}
	}
	dotted := config.HasRelativeSegment(rawPath)
	folded := "" // foldedPath(urlPath), once a line asks
	var buf [16]string
	decided := buf[:0]
	for i, a := range o.added {
		if len(decided) == o.maxNames {
			return
		}
		if slices.Contains(decided, a.Name) || a.Value == "" && dotted {
			continue
		}
		if !slices.ContainsFunc(readings[:], func(p string) bool { return p != "" && config.UnderPrefixLocation(p, a.Path) }) {
			// A directory's name without its slash is the directory for
			// Laravel and a route of its own for Symfony and Django, as
			// for nginx's location /dir/: it gets the directory's headers
			// and keeps the site's, so a line that takes one off (an
			// empty value) reaches only the URLs under the directory.
			if a.Value == "" {
				continue
			}
			if !slices.ContainsFunc(readings[:], func(p string) bool { return p != "" && config.UnderLocation(p, a.Path) }) {
				if folded == "" {
					folded = foldedPath(urlPath)
				}
				if !config.UnderLocation(folded, o.folded[i]) && !(dotted && anyDotReading(rawPath, o.longestFolded, func(reading, f string) bool {
					return config.UnderLocation(reading, a.Path) || config.UnderLocation(f, o.folded[i])
				})) {
					continue
				}
			}
		}
		decided = append(decided, a.Name)
		// The app's (or the gateway's own) header stays: browsers ignore
		// two X-Frame-Options that differ and enforce both of two CSPs, so
		// a second value would undo or tighten the app's choice.
		if a.Value != "" && len(h[a.Name]) == 0 {
			h[a.Name] = []string{a.Value}
		}
	}
}

// HideResponseHeaders removes SESSIONGATE_HIDE_HEADERS from h, the headers
// of a response that goes out without passing the access log's writer: a
// protocol switch (101), which httputil.ReverseProxy writes on the
// hijacked connection.
func (ri *RequestInfo) HideResponseHeaders(h http.Header) {
	if ri != nil && ri.srv != nil && ri.srv.out != nil {
		ri.srv.out.hideFrom(h)
	}
}

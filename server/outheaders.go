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
	// (sortLocations): the first line matching a request decides for its
	// header name.
	added []config.ResponseHeader
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
	}
	o.maxNames = len(names)
	return o
}

// apply edits h, the headers of a response to a request for urlPath (as
// mountPath cleans it), just before they are written.
func (o *outHeaders) apply(h http.Header, urlPath string, https bool) {
	for _, name := range o.hide {
		delete(h, name)
	}
	if len(o.added) > 0 {
		o.add(h, urlPath)
	}
	if https && o.hsts != "" {
		h["Strict-Transport-Security"] = []string{o.hsts}
	}
}

func (o *outHeaders) add(h http.Header, urlPath string) {
	var buf [16]string
	decided := buf[:0]
	for _, a := range o.added {
		if len(decided) == o.maxNames {
			return
		}
		if slices.Contains(decided, a.Name) || !config.UnderLocation(urlPath, a.Path) {
			continue
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

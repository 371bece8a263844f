package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/sessiongate/sessiongate/config"
)

// restrictedPath is one SESSIONGATE_RESTRICTED_PATHS entry: nginx's allow
// lines and deny all in a location, to keep phpMyAdmin or an admin area to
// the office network, or xmlrpc.php to nobody.
type restrictedPath struct {
	path  string // exact, or a directory ending in "/" (prefix)
	allow config.Prefixes
	spec  string
}

// newRestrictedPaths orders the entries as nginx picks a location; an
// entry's index is then its rank, lower being more specific.
func newRestrictedPaths(ls []config.RestrictedPath) []restrictedPath {
	var out []restrictedPath
	for _, l := range ls {
		out = append(out, restrictedPath{path: l.Path, allow: l.Allow, spec: l.Spec})
	}
	sortLocations(out, func(r restrictedPath) string { return r.path })
	return out
}

// restrictedRule returns the index in s.restrictedPaths of the entry for
// path, the most specific one (the first: they are sorted that way), or
// -1. A directory asked for without its slash is covered too: its redirect
// tells nothing, but its index script may run for it.
func (s *Server) restrictedRule(path string) int {
	for i := range s.restrictedPaths {
		rp := s.restrictedPaths[i].path
		dir := strings.HasSuffix(rp, "/")
		if path == rp || dir && (strings.HasPrefix(path, rp) || path == rp[:len(rp)-1]) {
			return i
		}
	}
	return -1
}

// refuses reports whether entry i keeps the client of ri out. A client
// whose address does not parse is in no list.
func (s *Server) refuses(i int, ri *RequestInfo) bool {
	client, err := netip.ParseAddrPort(ri.RemoteAddr)
	// net/http gives a link-local IPv6 client its zone, which no prefix
	// contains.
	return err != nil || !s.restrictedPaths[i].allow.Contains(client.Addr().WithZone(""))
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, i int) bool {
	Info(r.Context()).Err = fmt.Errorf("not let in by SESSIONGATE_RESTRICTED_PATHS %s", s.restrictedPaths[i].spec)
	s.fail(w, r, http.StatusForbidden)
	return true
}

// restrictedURL answers 403 to a request whose URL path falls under an
// entry that keeps its client out, and reports whether it did; it notes
// the URL's entry for restrictedRoute. Like nginx, only the most specific
// entry counts: /admin/public/ with its own list lets its clients in
// whatever /admin/ says.
//
// A path with dot segments (/admin/%2e%2e/users) is also read as apps
// that route on REQUEST_URI without resolving them may read it: from each
// of its slashes on, with the segments left in. Any entry that a reading
// falls under and that keeps the client out refuses it. Browsers resolve
// dot segments before they send a URL, so only crafted requests are
// refused this way.
func (s *Server) restrictedURL(w http.ResponseWriter, r *http.Request) bool {
	ri := Info(r.Context())
	i := s.restrictedRule(mountPath(r.URL.Path))
	ri.restrictedRule = i + 1
	if i >= 0 && s.refuses(i, ri) {
		return s.refuse(w, r, i)
	}
	if !hasDotSegment(r.URL.Path) {
		return false
	}
	raw := r.URL.Path
	for strings.Contains(raw, "//") {
		raw = strings.ReplaceAll(raw, "//", "/")
	}
	for k := 0; k < len(raw); k++ {
		if raw[k] != '/' {
			continue
		}
		if j := s.restrictedRule(raw[k:]); j >= 0 && s.refuses(j, ri) {
			return s.refuse(w, r, j)
		}
	}
	return false
}

func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// restrictedRoute answers 403 when an entry more specific than the URL's
// keeps the client out of what routing picked: the script that runs
// (/xmlrpc.php for /xmlrpc.php/x, /dir/index.php for /dir/), the path after
// it that front controllers route on (/admin/users for
// /index.php/admin/users), or a directory's static index. An entry less
// specific than the URL's does not: with "/ 10.0.0.0/8,/webhooks/
// 0.0.0.0/0", /webhooks/stripe runs /index.php for everyone.
func (s *Server) restrictedRoute(w http.ResponseWriter, r *http.Request, paths ...string) bool {
	ri := Info(r.Context())
	urlRule := ri.restrictedRule - 1
	best := urlRule
	for _, p := range paths {
		if j := s.restrictedRule(p); j >= 0 && (best < 0 || j < best) {
			best = j
		}
	}
	if best >= 0 && best != urlRule && s.refuses(best, ri) {
		return s.refuse(w, r, best)
	}
	return false
}

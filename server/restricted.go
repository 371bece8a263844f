package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"sort"
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

// newRestrictedPaths orders the entries as nginx picks a location: an
// exact path first, then the longest directory.
func newRestrictedPaths(ls []config.RestrictedPath) []restrictedPath {
	var out []restrictedPath
	for _, l := range ls {
		out = append(out, restrictedPath{path: l.Path, allow: l.Allow, spec: l.Spec})
	}
	sort.SliceStable(out, func(i, j int) bool {
		ei, ej := !strings.HasSuffix(out[i].path, "/"), !strings.HasSuffix(out[j].path, "/")
		if ei != ej {
			return ei
		}
		return len(out[i].path) > len(out[j].path)
	})
	return out
}

// restricted answers 403 to a request for path from a client the entry
// for path does not let in, and reports whether it did. Like nginx, only
// the most specific entry counts: /admin/public/ with its own list lets
// its clients in whatever /admin/ says.
func (s *Server) restricted(w http.ResponseWriter, r *http.Request, path string) bool {
	var rule *restrictedPath
	for i := range s.restrictedPaths {
		rp := &s.restrictedPaths[i]
		dir := strings.HasSuffix(rp.path, "/")
		// A directory asked for without its slash is covered too: its
		// redirect tells nothing, but its index script may run for it.
		if path == rp.path || dir && (strings.HasPrefix(path, rp.path) || path == rp.path[:len(rp.path)-1]) {
			rule = rp
			break
		}
	}
	if rule == nil {
		return false
	}
	ri := Info(r.Context())
	if client, err := netip.ParseAddrPort(ri.RemoteAddr); err == nil && rule.allow.Contains(client.Addr()) {
		return false
	}
	// A client that is not an IP address (a unix socket listener) is not
	// in any list.
	ri.Err = fmt.Errorf("not let in by SESSIONGATE_RESTRICTED_PATHS %s", rule.spec)
	s.fail(w, r, http.StatusForbidden)
	return true
}

package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/sessiongate/sessiongate/config"
)

// movedTo answers a request for a URL SESSIONGATE_REDIRECTS moves with
// its redirect, and reports whether it did. The entry is picked as nginx
// picks a location (exact path, then the longest directory), on the path
// with dot segments and doubled slashes resolved, as routing reads it.
func (s *Server) movedTo(w http.ResponseWriter, r *http.Request) bool {
	p := config.CleanPath(r.URL.Path)
	for _, m := range s.redirects {
		if !config.UnderLocation(p, m.From) {
			continue
		}
		s.redirect(w, r, movedLocation(m, p, r.URL.RawQuery), m.Code)
		return true
	}
	return false
}

// movedLocation is where a request for path (under m.From) with query goes:
// m.To, with the rest of the path after m.From when a directory moved to a
// directory, and the query after m.To's own, unless m.To ends in "?"
// (nginx's rewrite appends the request's arguments the same way).
func movedLocation(m config.Redirect, path, query string) string {
	loc, own, hasOwn := strings.Cut(m.To, "?")
	if m.KeepsRest() && strings.HasPrefix(path, m.From) {
		// Escaped anew from the decoded path: a backslash or a second
		// slash at its start could otherwise point a browser at another
		// host ("/\evil.example"); doubled slashes are gone already.
		loc += (&url.URL{Path: path[len(m.From):]}).EscapedPath()
	}
	switch {
	case hasOwn && own == "":
		return loc // "/new?": the query stays behind, as with nginx's rewrite
	case hasOwn && query != "":
		return loc + "?" + own + "&" + escapeRaw(query)
	case hasOwn:
		return loc + "?" + own
	case query != "":
		return loc + "?" + escapeRaw(query)
	}
	return loc
}

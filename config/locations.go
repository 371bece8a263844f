package config

import (
	"path"
	"sort"
	"strings"
)

// The path lists (SESSIONGATE_RATE_LIMITS, _RESTRICTED_PATHS, _BASIC_AUTH,
// _RESPONSE_HEADERS, _REDIRECTS) name nginx-like locations: an exact URL
// path, or a directory ending in "/". The server matches requests with
// these two, and the checks here follow requests the same way.

// UnderLocation reports whether a URL path falls under an entry's path:
// the same path, or for a directory entry (ending in "/") anything under
// it, and the directory asked for without its slash, whose redirect tells
// nothing but whose index script may run for it.
func UnderLocation(path, entry string) bool {
	if path == entry {
		return true
	}
	dir, ok := strings.CutSuffix(entry, "/")
	return ok && (strings.HasPrefix(path, entry) || path == dir)
}

// UnderPrefixLocation is UnderLocation without a directory entry's name
// asked for without its slash: where nginx's prefix location matches.
// Symfony and Django route /webhooks apart from /webhooks/, so an entry
// that opens or loosens a directory must not reach its name.
func UnderPrefixLocation(path, entry string) bool {
	return path == entry || strings.HasSuffix(entry, "/") && strings.HasPrefix(path, entry)
}

// SortLocations orders entries keyed by URL path (exact, or a directory
// ending in "/") as nginx picks a location, so that the first match is the
// one that applies: exact paths first, then the longest directory.
func SortLocations[T any](entries []T, path func(T) string) {
	sort.SliceStable(entries, func(i, j int) bool {
		pi, pj := path(entries[i]), path(entries[j])
		ei, ej := !strings.HasSuffix(pi, "/"), !strings.HasSuffix(pj, "/")
		if ei != ej {
			return ei
		}
		return len(pi) > len(pj)
	})
}

// CleanPath is the path as nginx matches it against its locations:
// duplicate slashes merged, dot segments resolved, a trailing slash kept.
// The server picks mounts and every path-list entry on it, so "//admin/"
// cannot reach PHP's /admin/ and "/admin/../x.php" cannot reach Django;
// the request itself goes out as the client sent it, as with nginx's
// proxy_pass without a URI.
func CleanPath(p string) string {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	dir := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
	c := path.Clean("/" + p)
	if dir && c != "/" {
		c += "/"
	}
	return c
}

// HasRelativeSegment reports a "." or ".." segment in a URL path: a
// configured path with one is refused, and a request path with one is
// read in more than one way (apps that route on REQUEST_URI do not resolve
// them).
func HasRelativeSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." || seg == "." {
			return true
		}
	}
	return false
}

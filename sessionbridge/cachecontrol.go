package sessionbridge

import (
	"net/http"
	"strings"
)

// keepFromSharedCaches makes a response that carries the session cookie
// private: a shared cache (a CDN, Varnish, nginx's proxy_cache) that
// stored it would hand the cookie, and with it the session, to everyone
// it serves the page to. The app's own directives stay (max-age for the
// browser's cache, no-cache, ...); only "public" goes, which private
// overrides anyway. A response already private or no-store is left alone.
// PHP pages that start a session are usually no-store already (PHP's
// session.cache_limiter), but an app may pick "public" or set its own.
func keepFromSharedCaches(h http.Header) {
	var kept []string
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(d, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			switch name {
			case "private", "no-store":
				return
			case "public", "":
				continue
			}
			kept = append(kept, d)
		}
	}
	h.Set("Cache-Control", strings.Join(append([]string{"private"}, kept...), ", "))
}

package sessionbridge

import (
	"net/http"
	"strings"

	"github.com/sessiongate/sessiongate/internal/httpfield"
)

// keepFromSharedCaches makes a response that carries the session cookie
// private: a shared cache (a CDN, Varnish, nginx's proxy_cache) that
// stored it would hand the cookie, and with it the session, to everyone
// it serves the page to. The app's own directives stay (max-age for the
// browser's cache, no-cache, ...); only "public" goes, which private
// overrides anyway. A response already private or no-store is left alone;
// one private only for some fields (private="X-User", RFC 9111 section
// 5.2.2.7) is not private, unless Set-Cookie is among them. PHP pages
// that start a session are usually no-store already (PHP's
// session.cache_limiter), but an app may pick "public" or set its own.
// A CDN's own fields (httpfield.CDNCacheControl) go unless they keep the
// response out too: the CDN they are meant for reads them instead of
// Cache-Control.
func keepFromSharedCaches(h http.Header) {
	for _, name := range httpfield.CDNCacheControl {
		if vs, ok := h[name]; ok && !keptOut(vs) {
			delete(h, name)
		}
	}
	if keptOut(h["Cache-Control"]) {
		return
	}
	var kept []string
	for _, d := range httpfield.Directives(h.Values("Cache-Control")) {
		switch d.Name {
		case "public", "private", "":
			continue // the private put first covers a field list's
		}
		kept = append(kept, d.Text)
	}
	h.Set("Cache-Control", strings.Join(append([]string{"private"}, kept...), ", "))
}

// keptOut reports whether cache directives keep the session cookie out of
// shared caches: no-store, private, or private naming Set-Cookie.
func keptOut(values []string) bool {
	for _, d := range httpfield.Directives(values) {
		switch d.Name {
		case "no-store":
			return true
		case "private":
			if !d.HasArg || d.Names("Set-Cookie") {
				return true
			}
		}
	}
	return false
}

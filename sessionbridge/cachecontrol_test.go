package sessionbridge

import (
	"net/http"
	"testing"
)

func TestKeepFromSharedCaches(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []string
		want string
	}{
		{"none", nil, "private"},
		{"public max-age", []string{"public, max-age=600"}, "private, max-age=600"},
		{"s-maxage", []string{"max-age=60, s-maxage=3600"}, "private, max-age=60, s-maxage=3600"},
		{"no-cache", []string{"no-cache"}, "private, no-cache"},
		{"two lines, case", []string{"PUBLIC", "Max-Age=5"}, "private, Max-Age=5"},
		{"already private", []string{"private, max-age=600"}, "private, max-age=600"},
		{"private with fields", []string{`private="Set-Cookie", max-age=5`}, `private="Set-Cookie", max-age=5`},
		// private for some fields only keeps the rest, Set-Cookie
		// included, storable by shared caches.
		{"private for another field", []string{`public, max-age=600, private="X-User"`}, "private, max-age=600"},
		// A field list's commas are inside its quoted string: split
		// there, half the list stayed behind as a directive with an
		// unbalanced quote, and Set-Cookie named second went unseen.
		{"private for other fields", []string{`public, max-age=600, private="X-User, X-Other"`}, "private, max-age=600"},
		{"private for fields, Set-Cookie second", []string{`public, max-age=600, private="X-User, Set-Cookie"`}, `public, max-age=600, private="X-User, Set-Cookie"`},
		{"no-cache for fields", []string{`public, no-cache="X-User, Set-Cookie", max-age=600`}, `private, no-cache="X-User, Set-Cookie", max-age=600`},
		{"no-store (PHP's nocache limiter)", []string{"no-store, no-cache, must-revalidate"}, "no-store, no-cache, must-revalidate"},
		{"empty directives", []string{" , public ,"}, "private"},
	} {
		h := http.Header{}
		for _, v := range c.in {
			h.Add("Cache-Control", v)
		}
		keepFromSharedCaches(h)
		got := h.Values("Cache-Control")
		if c.want == "" || len(got) == 0 {
			t.Fatalf("%s: %q", c.name, got)
		}
		if len(c.in) > 0 && c.in[0] == c.want {
			if len(got) != len(c.in) || got[0] != c.in[0] {
				t.Errorf("%s: changed to %q", c.name, got)
			}
			continue
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// CDN-Cache-Control (RFC 9213), Cloudflare-CDN-Cache-Control and
// Surrogate-Control are read by the CDN they are meant for instead of
// Cache-Control: with the session cookie they go, unless they keep the
// response out themselves.
func TestKeepFromSharedCachesCDNFields(t *testing.T) {
	for _, c := range []struct {
		field, value string
		kept         bool
	}{
		{"Cdn-Cache-Control", "max-age=600", false},
		{"Surrogate-Control", "max-age=600", false},
		{"Cloudflare-Cdn-Cache-Control", "max-age=600", false},
		{"Cdn-Cache-Control", "no-store", true},
		{"Cloudflare-Cdn-Cache-Control", "private", true},
		{"Surrogate-Control", "private", true},
	} {
		for _, cc := range []string{"public, max-age=60", "private"} {
			h := http.Header{"Cache-Control": {cc}, c.field: {c.value}}
			keepFromSharedCaches(h)
			if got := h.Get(c.field); (got != "") != c.kept {
				t.Errorf("%s: %s beside Cache-Control: %s: %q after, want kept %v", c.field, c.value, cc, got, c.kept)
			}
		}
	}
}

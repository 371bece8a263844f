package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Redirect is one SESSIONGATE_REDIRECTS entry.
type Redirect struct {
	// From is a URL path, matched exactly, or a directory ending in "/",
	// matched as a prefix.
	From string
	// To is a path (with a query, maybe) or an absolute http(s) URL. The
	// request's query follows it, after its own; a To ending in "?" drops
	// the request's query (nginx's rewrite idiom).
	To string
	// Code is the status; 0 means 301, or 308 for methods other than GET
	// and HEAD (the method and body kept, as for the canonical name).
	Code int
	// Spec is the entry as written, for logs.
	Spec string
}

// KeepsRest reports whether the part of the path under From is carried
// over: a directory moved to another directory, nginx's rewrite
// ^/old/(.*)$ /new/$1 permanent.
func (r Redirect) KeepsRest() bool {
	base, _, _ := strings.Cut(r.To, "?")
	return strings.HasSuffix(r.From, "/") && strings.HasSuffix(base, "/")
}

// Redirects parses SESSIONGATE_REDIRECTS (after Load has checked it).
func (c *Config) Redirects() []Redirect { return parsed(c.RedirectSpecs, parseRedirect) }

// redirectCodes are the statuses a redirect may have.
var redirectCodes = []int{301, 302, 303, 307, 308}

// parseRedirect reads "FROM TO [CODE]".
func parseRedirect(e string) (Redirect, error) {
	f := strings.Fields(e)
	if len(f) < 2 || len(f) > 3 {
		return Redirect{}, fmt.Errorf("%q: each entry is FROM TO [CODE], e.g. /old-page /new-page or /blog/ https://blog.example.com/ 302 (a comma in TO is written %%2C)", e)
	}
	r := Redirect{From: f[0], To: f[1], Spec: strings.Join(f, " ")}
	if strings.ContainsAny(r.From, "*~") {
		return Redirect{}, fmt.Errorf("%q: paths are matched as they are, not as patterns: /dir/ covers everything under /dir/, /page that exact URL", e)
	}
	if !urlPrefixOK(r.From) {
		return Redirect{}, fmt.Errorf(urlPrefixRule("path redirected", "/old-page or /old-blog/"), r.From)
	}
	if msg := checkRedirectTarget(r.To); msg != "" {
		return Redirect{}, fmt.Errorf("%q: %s", e, msg)
	}
	if len(f) == 3 {
		code, err := strconv.Atoi(f[2])
		if err != nil || len(f[2]) != 3 || !slices.Contains(redirectCodes, code) {
			return Redirect{}, fmt.Errorf("%q: %q is not a redirect status: 301, 302, 303, 307 or 308", e, f[2])
		}
		r.Code = code
	}
	return r, nil
}

// checkRedirectTarget explains what is wrong with a redirect's target, or
// returns "".
func checkRedirectTarget(to string) string {
	if strings.ContainsRune(to, '#') {
		return "the target may not hold a fragment (#)"
	}
	if strings.ContainsAny(to, "\\\"<>^`{|}") || !isPrintableASCII(to) {
		return "the target holds a character a URL may not hold raw: percent-encode it"
	}
	if strings.HasPrefix(to, "/") {
		if strings.HasPrefix(to, "//") {
			return "a target starting with // is another host: write https://host/path"
		}
		u, err := url.Parse(to)
		if err != nil {
			return "the target is not a URL path: " + err.Error()
		}
		if HasRelativeSegment(u.Path) {
			return "the target may not hold . or .. segments"
		}
		return ""
	}
	u, err := url.Parse(to)
	switch {
	case err != nil:
		return "the target is not a URL: " + err.Error()
	case u.Scheme != "http" && u.Scheme != "https":
		return "the target is a path starting with / or an http:// or https:// URL"
	case u.Host == "" || u.Opaque != "":
		return "the target URL has no host"
	case u.User != nil:
		return "the target URL may not hold a user or password"
	}
	return ""
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// relativeRedirectTarget returns the path a redirect to a path of this
// site leads to, as the server matches it (decoded, CleanPath), or "" for
// another site.
func relativeRedirectTarget(to string) string {
	if !strings.HasPrefix(to, "/") {
		return ""
	}
	u, err := url.Parse(to)
	if err != nil {
		return ""
	}
	return CleanPath(u.Path)
}

// maxRedirectHops is how many redirects in a row browsers follow (Chrome
// and Firefox stop at 20).
const maxRedirectHops = 20

func (c *Config) checkRedirects(check func(name string, ok bool, format string, args ...any)) {
	const name = "SESSIONGATE_REDIRECTS"
	seen := map[string]bool{}
	var all []Redirect
	for _, e := range c.RedirectSpecs {
		r, err := parseRedirect(e)
		if err != nil {
			check(name, false, "%s", err.Error())
			continue
		}
		check(name, !seen[r.From], "%q is listed twice", r.From)
		seen[r.From] = true
		all = append(all, r)
	}
	// A redirect whose target another one (or itself) sends on, back to
	// where it started or on without end, would bounce a browser until it
	// gives up. Only targets on this site can. Each entry's path is
	// followed, and the paths a moved directory turns into another
	// entry's path (with /a/ to /b/, /a/c becomes /b/c).
	SortLocations(all, func(r Redirect) string { return r.From })
	var probes []string
	for _, r := range all {
		probes = append(probes, r.From)
		to := relativeRedirectTarget(r.To)
		if !r.KeepsRest() || to == "" {
			continue
		}
		for _, n := range all {
			if rest, ok := strings.CutPrefix(n.From, to); ok {
				probes = append(probes, r.From+rest)
			}
		}
	}
	for _, p := range probes {
		if hops, loops := followRedirects(all, p); hops != nil {
			if loops {
				check(name, false, "redirect loop: %s", strings.Join(hops, " -> "))
			} else {
				check(name, false, "the redirects from %s do not end: %s ... (browsers give up after %d)", p, strings.Join(hops[:4], " -> "), maxRedirectHops)
			}
			return
		}
	}
}

// followRedirects follows path through the redirects (sorted as the
// server tries them). It returns the paths visited when one comes back
// (loops) or when they go on past maxRedirectHops, else nil.
func followRedirects(all []Redirect, path string) (hops []string, loops bool) {
	visited := []string{path}
	for range maxRedirectHops {
		i := slices.IndexFunc(all, func(r Redirect) bool { return UnderLocation(path, r.From) })
		if i < 0 {
			return nil, false
		}
		r := all[i]
		next := relativeRedirectTarget(r.To)
		if next == "" {
			return nil, false
		}
		if r.KeepsRest() && strings.HasPrefix(path, r.From) {
			next = CleanPath(next + path[len(r.From):])
		}
		if slices.Contains(visited, next) {
			return append(visited, next), true
		}
		visited = append(visited, next)
		path = next
	}
	return visited, false
}

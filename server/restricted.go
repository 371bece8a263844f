package server

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/htpasswd"
)

// restrictedPath is a URL path's entry in SESSIONGATE_RESTRICTED_PATHS,
// SESSIONGATE_BASIC_AUTH or both: nginx's allow lines and deny all, and
// its auth_basic, in one location (satisfy all). It keeps phpMyAdmin or an
// admin area to the office network, xmlrpc.php to nobody, a staging site
// to those with a password.
type restrictedPath struct {
	path string // exact, or a directory ending in "/" (prefix)
	// allow lets in only these client networks when restrictAddrs is set
	// (empty: nobody); every address otherwise.
	allow         config.Prefixes
	restrictAddrs bool
	// users, when set, must name the client's user and password.
	users *htpasswd.File
	spec  string
	// folded is path as foldedRule matches it.
	folded string
}

// newRestrictedPaths merges both variables' entries by path and orders
// them as nginx picks a location; an entry's index is then its rank, lower
// being more specific. Each password file is opened once.
func newRestrictedPaths(cfg *config.Config) ([]restrictedPath, error) {
	var out []restrictedPath
	byPath := map[string]int{}
	entry := func(path string) *restrictedPath {
		i, ok := byPath[path]
		if !ok {
			i = len(out)
			byPath[path] = i
			out = append(out, restrictedPath{path: path, folded: foldCase(path)})
		}
		return &out[i]
	}
	for _, l := range cfg.RestrictedPaths() {
		e := entry(l.Path)
		e.allow, e.restrictAddrs = l.Allow, true
		e.spec = joinSpec(e.spec, "SESSIONGATE_RESTRICTED_PATHS "+l.Spec)
	}
	files := map[string]*htpasswd.File{}
	for _, b := range cfg.BasicAuths() {
		f := files[b.File]
		if f == nil {
			var err error
			if f, err = htpasswd.Open(b.File); err != nil {
				return nil, fmt.Errorf("SESSIONGATE_BASIC_AUTH %s: %w", b.Spec, err)
			}
			files[b.File] = f
		}
		e := entry(b.Path)
		e.users = f
		e.spec = joinSpec(e.spec, "SESSIONGATE_BASIC_AUTH "+b.Spec)
	}
	config.SortLocations(out, func(r restrictedPath) string { return r.path })
	return out, nil
}

func joinSpec(a, b string) string {
	if a == "" {
		return b
	}
	return a + " and " + b
}

// restrictedRule returns the index in s.restrictedPaths of the entry for
// path, the most specific one (the first: they are sorted that way), or
// -1.
func (s *Server) restrictedRule(path string) int {
	return locationOf(s.restrictedPaths, path, func(e *restrictedPath) string { return e.path })
}

// locationOf returns the index of the first of entries, sorted by
// config.SortLocations, whose location (loc) path falls under, or -1: the
// most specific entry, a directory's name without its slash included
// (config.UnderLocation).
func locationOf[T any](entries []T, path string, loc func(*T) string) int {
	for i := range entries {
		if config.UnderLocation(path, loc(&entries[i])) {
			return i
		}
	}
	return -1
}

// prefixLocationOf is locationOf without a directory entry's name without
// its slash: the entry nginx's locations pick for path, or -1.
func prefixLocationOf[T any](entries []T, path string, loc func(*T) string) int {
	for i := range entries {
		if config.UnderPrefixLocation(path, loc(&entries[i])) {
			return i
		}
	}
	return -1
}

// foldedRule is restrictedRule for path as apps that route loosely read
// it (foldedPath), matched against the entries lower-cased: the most
// specific entry that the folded path falls under, or -1. It is a reading
// of its own, as the dot-segment readings are: the entry of the path as
// sent still counts, so an entry written for one spelling cannot open
// another that the path's own entry keeps out.
func (s *Server) foldedRule(path string) int {
	return s.foldedRuleOf(foldedPath(path))
}

// foldedRuleOf is foldedRule for a folded reading already made.
func (s *Server) foldedRuleOf(folded string) int {
	return locationOf(s.restrictedPaths, folded, func(e *restrictedPath) string { return e.folded })
}

// foldedPath is path as the PHP routers that read it loosely take it:
// lower-cased, as WordPress's REST server matches routes (its
// '@^...$@i' regexes: /wp-json/WP/v2/users is its /wp/v2/users), as
// Drupal matches paths and CodeIgniter 3 finds a controller (ucfirst:
// /Admin/ is its admin controller); without trailing slashes and
// backslashes, which WordPress's untrailingslashit trims from a REST
// route; and cut at a newline, where a PCRE "(.*)" capture ends and
// before which its "$" matches (?rest_route=/wp/v2/users%0A). The path
// is left empty of neither: "/" stays "/".
func foldedPath(path string) string {
	path, _, _ = strings.Cut(path, "\n")
	path = strings.TrimRight(path, `/\`)
	if path == "" {
		return "/"
	}
	return foldCase(path)
}

// foldCase lower-cases s as the routers that match paths without regard to
// case take it: strings.ToLower, and the two letters a case-insensitive
// regex also takes for ASCII ones, which ToLower leaves (Python's re with
// (?i), as in Django's re_path, and PCRE with /iu: dotless ı for i, long
// ſ for s; /dj/adm%C4%B1n/ was Django's /dj/admin/ past an entry for
// it). Each is 2 bytes and folds to 1. It maps rune by rune (foldRune), a
// byte that is not UTF-8 becoming U+FFFD as in strings.ToLower, so the
// fold of a part of s cut at rune starts is that part of foldCase(s):
// suffixFolds relies on it.
func foldCase(s string) string {
	return strings.Map(foldRune, s)
}

// foldRune is foldCase for one rune.
func foldRune(r rune) rune {
	switch r {
	case 'ı':
		return 'i'
	case 'ſ':
		return 's'
	}
	return unicode.ToLower(r)
}

// refusedAt refuses r when the entry of path, or the entry of its folded
// reading (foldedRule), keeps the client out, and reports whether it did;
// an entry both readings fall under is asked once.
func (s *Server) refusedAt(w http.ResponseWriter, r *http.Request, path string) bool {
	return s.refusedAtFolded(w, r, path, foldedPath(path))
}

// refusedAtFolded is refusedAt with path's folded reading already made
// (foldedPath, or as much of it as matching looks at: suffixFolds).
func (s *Server) refusedAtFolded(w http.ResponseWriter, r *http.Request, path, folded string) bool {
	rules := s.rulesOf(path, folded)
	for k, i := range rules {
		if i < 0 || slices.Contains(rules[:k], i) {
			continue
		}
		if status := s.denial(i, r); status != 0 {
			return s.refuse(w, r, i, status)
		}
	}
	return false
}

// rulesOf returns the entries that path and its folded reading fall
// under (-1 for none; one may repeat another): the most specific entry of
// each (restrictedRule, foldedRuleOf), and the entry nginx picks for path,
// the most specific that it falls under as a prefix, which differs when
// path names a directory entry without its slash. A directory's entry that opens it
// (/webhooks/ 0.0.0.0/0 under / with a password) thus does not open
// /webhooks, which nginx's location / keeps and which Symfony and Django
// route apart from /webhooks/; one that keeps clients out still covers
// it. The folded reading has no such second entry: it is the reading of
// routers that take /webhooks and /webhooks/ for one route.
func (s *Server) rulesOf(path, folded string) [3]int {
	return [3]int{s.restrictedRule(path), s.nginxRule(path), s.foldedRuleOf(folded)}
}

// nginxRule is restrictedRule without the directory named without its
// slash: the entry nginx's locations pick for path, or -1.
func (s *Server) nginxRule(path string) int {
	return prefixLocationOf(s.restrictedPaths, path, func(e *restrictedPath) string { return e.path })
}

// denial is 0 when entry i lets the client of r in, else the status to
// refuse it with: 403 for an address outside the entry's list, 401 without
// a user and password its file has, 400 for two Authorization fields.
// The user let in becomes REMOTE_USER.
func (s *Server) denial(i int, r *http.Request) int {
	e := &s.restrictedPaths[i]
	ri := Info(r.Context())
	if e.restrictAddrs {
		// A client whose address does not parse is in no list; net/http
		// gives a link-local IPv6 client its zone, which no prefix
		// contains.
		client, err := netip.ParseAddrPort(ri.RemoteAddr)
		if err != nil || !e.allow.Contains(client.Addr().WithZone("")) {
			return http.StatusForbidden
		}
	}
	if e.users != nil {
		if n := len(r.Header.Values("Authorization")); n > 1 {
			// nginx refuses the request (a duplicate header line); taking
			// the first let PHP read another password than the one
			// checked: it decodes the joined lines as one, the password
			// running on into the second.
			ri.Err = fmt.Errorf("%s: %d Authorization header fields", e.spec, n)
			return http.StatusBadRequest
		}
		user, password, ok := basicCredentials(r.Header.Get("Authorization"))
		if !ok {
			return http.StatusUnauthorized
		}
		ok = e.users.Verify(user, password)
		s.warnPasswordFile(e.users.NewErr())
		if !ok {
			// Logged, as nginx logs a wrong password; a browser's first
			// request, without credentials, is not.
			ri.Err = fmt.Errorf("%s: wrong password or unknown user %q", e.spec, user)
			if len(password) > htpasswd.MaxPassword {
				ri.Err = fmt.Errorf("%s: a password of %d bytes for user %q, longer than the %d checked", e.spec, len(password), user, htpasswd.MaxPassword)
			}
			return http.StatusUnauthorized
		}
		ri.RemoteUser = user
	}
	return 0
}

// basicCredentials reads the user and password of an Authorization
// header as nginx's auth_basic does: "Basic" in any case, one or more
// spaces (RFC 9110's 1*SP, where net/http's BasicAuth takes one), and
// base64 with or without its padding. Unlike nginx, nothing may follow the
// padding: PHP would decode it into PHP_AUTH_PW, a password no one
// checked.
func basicCredentials(auth string) (user, password string, ok bool) {
	const prefix = "Basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return "", "", false
	}
	enc := strings.TrimRight(strings.TrimLeft(auth[len(prefix):], " "), "=")
	b, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(b), ":")
}

// warnPasswordFile says, once per problem, what became of a password file
// that changed for the worse.
func (s *Server) warnPasswordFile(err error) {
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, htpasswd.ErrNoUser):
		s.log.Warn("SESSIONGATE_BASIC_AUTH: password file gone or without users: no one gets in", "error", err.Error())
	default:
		s.log.Warn("SESSIONGATE_BASIC_AUTH: password file unreadable or malformed: its last good contents are used", "error", err.Error())
	}
}

// refuse answers status for entry i; a 401 asks the browser for a password.
// A 403 is logged with the entry; a 401 only for a wrong password, and a
// 400 with what denial found.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, i, status int) bool {
	ri := Info(r.Context())
	ri.Upstream = "gateway" // nothing ran, whatever routing picked
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="Restricted", charset="UTF-8"`)
	case http.StatusBadRequest: // denial said why
	default:
		ri.Err = fmt.Errorf("not let in by %s", s.restrictedPaths[i].spec)
	}
	s.fail(w, r, status)
	return true
}

// restrictedURL refuses (403, or 401 for a password) a request whose URL
// path falls under an entry that keeps its client out, and reports whether
// it did; it notes the URL's entry for restrictedRoute. Like nginx, only
// the most specific entry counts: /admin/public/ with its own list lets
// its clients in whatever /admin/ says.
//
// A path with dot segments (/admin/%2e%2e/users) is also read as apps
// that route on REQUEST_URI without resolving them may read it: from each
// of its slashes on, with the segments left in. Any entry that a reading
// falls under and that keeps the client out refuses it. Browsers resolve
// dot segments before they send a URL, so only crafted requests are
// refused this way.
func (s *Server) restrictedURL(w http.ResponseWriter, r *http.Request) bool {
	ri := Info(r.Context())
	p := config.CleanPath(r.URL.Path)
	ri.restrictedRule = s.restrictedRule(p) + 1
	if s.refusedAt(w, r, p) || s.restrictedDotReadings(w, r, r.URL.Path) {
		return true
	}
	if hp := hostPathReading(r); hp != "" {
		return s.refusedAt(w, r, config.CleanPath(hp)) || s.restrictedDotReadings(w, r, hp)
	}
	return false
}

// hostPathReading returns the path PHP's parse_url finds in a request
// target that starts with "//" (decoded), or "": it takes what follows
// the "//" up to the next "/" for a host, so //evil/admin/users is its
// /admin/users, where the gateway, merging slashes as nginx does, reads
// /evil/admin/users. Routers that read REQUEST_URI with parse_url (many
// written by hand, Yii's examples) route on it.
func hostPathReading(r *http.Request) string {
	target := originForm(r.RequestURI)
	if !strings.HasPrefix(target, "//") {
		return ""
	}
	rest := target[2:]
	i := strings.IndexAny(rest, "/?#")
	if i < 0 || rest[i] != '/' {
		return ""
	}
	p := rest[i:]
	if j := strings.IndexAny(p, "?#"); j >= 0 {
		p = p[:j]
	}
	return phpRawURLDecode(p)
}

// restrictedDotReadings refuses a request when path, which has dot
// segments, falls under an entry that keeps its client out as an app that
// does not resolve them reads it: from each of its slashes on, with the
// segments left in (see restrictedURL).
func (s *Server) restrictedDotReadings(w http.ResponseWriter, r *http.Request, path string) bool {
	return config.HasRelativeSegment(path) && anyDotReading(path, s.longestFolded, func(reading, folded string) bool {
		return s.refusedAtFolded(w, r, reading, folded)
	})
}

// anyDotReading reports whether f holds for one of the readings of path,
// which has dot segments, that apps not resolving them route on: from each
// of its slashes on, slashes merged, the segments left in, each with its
// folded reading (foldedPath) as far as entries as long as longest (the
// longest one lower-cased) look at it (suffixFolds).
func anyDotReading(path string, longest int, f func(reading, folded string) bool) bool {
	raw := mergeSlashes(path)
	folds := suffixFolds{s: raw, limit: 4*(longest+1) + utf8.UTFMax, nl: -1}
	for k := 0; k < len(raw); k++ {
		if raw[k] == '/' && f(raw[k:], folds.at(k)) {
			return true
		}
	}
	return false
}

// mergeSlashes merges runs of slashes, as nginx and the path lists do.
func mergeSlashes(path string) string {
	for strings.Contains(path, "//") {
		path = strings.ReplaceAll(path, "//", "/")
	}
	return path
}

// suffixFolds gives the folded reading (foldedPath) of each suffix of s
// that restrictedDotReadings reads, from left to right, cut to what
// matching the entries looks at (limit: 4 bytes for each byte of the
// longest entry and one more, plus a rune). foldedPath of each whole
// suffix cost its length, so the readings of a crafted path (a rest_route
// of 64 KiB, a URL path near SESSIONGATE_MAX_HEADER_BYTES) cost the square
// of its length: minutes of CPU for one request. Here the newline that ends a reading and the
// trailing slashes before it are found once for all the suffixes that
// share them, and only the first limit bytes are read: a reading
// longer than that stays longer than every entry once lower-cased (a rune
// of at most 4 bytes lower-cases to at least 1), so it falls under the
// same entries as the whole one.
//
// Even so, lower-casing each reading's first limit bytes on its own cost
// a form body of 1 MiB, whose rest_route values are all slashes and
// upper-case letters, over a second of CPU and 100 MB of garbage. So s is
// lower-cased once, and each reading is a part of that (foldCase maps
// rune by rune), found by two offsets that only move right.
type suffixFolds struct {
	s     string
	limit int
	// folded is foldCase(s), once the first reading asks for it.
	folded string
	// nl is the index of the first newline at or after the last suffix
	// asked for (len(s) for none; -1 before the first), and end the
	// length of s[:nl] without its trailing slashes and backslashes.
	nl, end int
	// from and to are where the last reading's fold starts and stops.
	from, to foldOffset
}

// foldOffset is an offset in suffixFolds' s, at a rune's start, and the
// offset of the same place in its folded.
type foldOffset struct{ raw, folded int }

// moveTo moves o right to n, a rune's start in s at or after o.raw,
// counting what each rune passed folds to: a byte that is not UTF-8 is
// one rune (U+FFFD) as foldCase takes it.
func (o *foldOffset) moveTo(s string, n int) {
	for o.raw < n {
		r, size := utf8.DecodeRuneInString(s[o.raw:])
		o.raw += size
		o.folded += utf8.RuneLen(foldRune(r))
	}
}

// at returns the folded reading of s[k:]; k never decreases between calls.
func (f *suffixFolds) at(k int) string {
	if k > f.nl {
		f.nl = len(f.s)
		if i := strings.IndexByte(f.s[k:], '\n'); i >= 0 {
			f.nl = k + i
		}
		f.end = len(strings.TrimRight(f.s[:f.nl], `/\`))
	}
	if f.end <= k {
		return "/"
	}
	stop := f.end
	if stop-k > f.limit {
		// At a rune's start, so that what is returned is the start of
		// the whole reading's lower-casing. As k grows, stop does too.
		stop = k + f.limit
		for stop > k && !utf8.RuneStart(f.s[stop]) {
			stop--
		}
	}
	if f.folded == "" {
		f.folded = foldCase(f.s)
	}
	f.from.moveTo(f.s, k)
	f.to.moveTo(f.s, stop)
	return f.folded[f.from.folded:f.to.folded]
}

// queryRoute returns the route CodeIgniter (3 and 4) reads in the query
// string, decoded, or "": when the URL names nothing after the front
// controller (/, /index.php, /index.php/, or the script's directory), a
// query that starts with "/" is the route, for servers that pass it there
// (try_files ... /index.php?$uri), so /?/admin/users and
// /index.php?/admin/users are its /admin/users. It ends at a further "?".
// The access rules and rate limits read it like the URL, as they read the
// path after a script: reading more paths can only refuse more.
func queryRoute(r *http.Request, script, pathInfo string) string {
	q := r.URL.RawQuery
	if !strings.HasPrefix(q, "/") || pathInfo != "" && pathInfo != "/" {
		return ""
	}
	switch p := config.CleanPath(r.URL.Path); p {
	case "/", script, script + "/", path.Dir(script) + "/":
	default:
		return ""
	}
	p, _, _ := strings.Cut(q, "?")
	// Decoded as CodeIgniter 4's urldecode does, a "%" that starts no
	// escape kept: url.PathUnescape refused all of /%61dmin/users%zz.
	return phpRawURLDecode(p)
}

// restRoutes returns the WordPress REST route a request asks for in its
// query, as the paths it has under WordPress's pretty URLs (restPaths), or
// none: every URL WordPress's index.php serves (the front controller, so
// /?rest_route= and /any/page/?rest_route= alike) answers
// rest_route=/wp/v2/users as it answers /wp-json/wp/v2/users, and so does
// every script that runs wp(): wp-blog-header.php, wp-signup.php,
// wp-activate.php and wp-trackback.php, and any script of the site's that
// loads WordPress through wp-blog-header.php. So it is read whatever PHP
// script runs, and a SESSIONGATE_RESTRICTED_PATHS or
// SESSIONGATE_RATE_LIMITS entry on /wp-json/ (user enumeration) holds for
// it too. The key is read as PHP reads it (phpVarName), the value decoded
// as PHP decodes it (phpURLDecode), and every rest_route counts, not only
// the last, which PHP keeps: PHP stops reading a query after
// max_input_vars variables (1000), so with more in between it keeps an
// earlier one, and reading more only refuses more.
func restRoutes(r *http.Request, script, index string) []string {
	var out []string
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if name, scalar := phpVarName(phpURLDecode(k)); !scalar || name != "rest_route" {
			continue
		}
		out = append(out, restPaths(script, index, phpURLDecode(v))...)
	}
	return out
}

// restPaths returns the URL paths of REST route under WordPress's pretty
// URLs, with the rest prefix WordPress's default, wp-json: under the
// site's root, and, for the front controller and WordPress's own scripts
// (wpScripts) in a directory, under that directory (a WordPress whose
// home is /blog/ answers /blog/wp-json/R).
func restPaths(script, index, route string) []string {
	route = strings.TrimLeft(route, "/")
	out := []string{"/wp-json/" + route}
	if dir := path.Dir(script); dir != "/" && dir != "." && (script == index || wpScripts[path.Base(script)]) {
		out = append(out, dir+"/wp-json/"+route)
	}
	return out
}

// wpScripts are the scripts in WordPress's directory that run wp(), and
// so its REST server for rest_route.
var wpScripts = map[string]bool{
	"index.php": true, "wp-blog-header.php": true, "wp-signup.php": true, "wp-activate.php": true, "wp-trackback.php": true,
}

// phpURLDecode decodes a query or form parameter's name or value as PHP's
// urldecode does: "+" is a space, and a "%" not followed by two hex digits
// stays as it is, where url.QueryUnescape refuses the whole string (so
// "rest_route%00%zz" is PHP's rest_route).
func phpURLDecode(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// phpRawURLDecode is phpURLDecode without "+" for a space, as PHP's
// rawurldecode decodes a path.
func phpRawURLDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	return phpURLDecode(strings.ReplaceAll(s, "+", "%2B"))
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// phpVarName returns the name PHP gives a decoded query or form parameter
// name (php_register_variable_ex), and whether it names a plain value
// rather than an array or nothing: the name ends at a NUL byte, leading
// spaces are dropped, " " and "." become "_", and a "[" without a "]"
// after it becomes "_" too (with any " ", "." or "[" after it), where one
// with a "]" starts an array index. So "rest.route", " rest_route",
// "rest[route" and "rest_route\x00x" are all $_GET['rest_route'].
func phpVarName(k string) (string, bool) {
	if i := strings.IndexByte(k, 0); i >= 0 {
		k = k[:i]
	}
	b := []byte(strings.TrimLeft(k, " "))
	for i, c := range b {
		switch c {
		case ' ', '.':
			b[i] = '_'
		case '[':
			if i == 0 || bytes.IndexByte(b[i+1:], ']') >= 0 {
				return string(b[:i]), false
			}
			for j := i; j < len(b); j++ {
				if b[j] == ' ' || b[j] == '.' || b[j] == '[' {
					b[j] = '_'
				}
			}
			return string(b), true
		}
	}
	return string(b), len(b) > 0
}

// queryReadings returns the other paths a front controller routes this
// request on, read from its query (queryRoute, restRoutes), undecoded of
// dot segments; none for most requests.
func queryReadings(r *http.Request, script, pathInfo, index string) []string {
	var out []string
	if p := queryRoute(r, script, pathInfo); p != "" {
		out = append(out, p)
	}
	return append(out, restRoutes(r, script, index)...)
}

// restrictedReadings refuses a request when one of readings, other
// readings of its URL (queryReadings), falls under an entry that keeps its
// client out, by the reading's own most specific entry as for the URL,
// dot-segment readings included.
func (s *Server) restrictedReadings(w http.ResponseWriter, r *http.Request, readings []string) bool {
	for _, p := range readings {
		if s.refusedAt(w, r, config.CleanPath(p)) || s.restrictedDotReadings(w, r, p) {
			return true
		}
	}
	return false
}

// restrictedRoute refuses a request when an entry more specific than the
// URL's keeps the client out of what routing picked: the script that runs
// (/xmlrpc.php for /xmlrpc.php/x, /dir/index.php for /dir/), the path after
// it that front controllers route on (/admin/users for
// /index.php/admin/users), or a directory's static index. An entry less
// specific than the URL's does not: with "/ 10.0.0.0/8,/webhooks/
// 0.0.0.0/0", /webhooks/stripe runs /index.php for everyone.
//
// Each of those paths counts on its own, as reading more paths may only
// refuse more: an open entry on the script (/index.php) does not let in a
// client that the entry of the route after it (/admin/) keeps out.
func (s *Server) restrictedRoute(w http.ResponseWriter, r *http.Request, paths ...string) bool {
	ri := Info(r.Context())
	urlRule := ri.restrictedRule - 1
	checked := urlRule
	for _, p := range paths {
		for _, j := range s.rulesOf(p, foldedPath(p)) {
			if j < 0 || (urlRule >= 0 && j >= urlRule) || j == checked {
				continue
			}
			checked = j
			if status := s.denial(j, r); status != 0 {
				return s.refuse(w, r, j, status)
			}
		}
	}
	return false
}

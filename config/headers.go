package config

import (
	"fmt"
	"net/textproto"
	"regexp"
	"slices"
	"strings"

	"github.com/sessiongate/sessiongate/internal/httpfield"
)

// ResponseHeader is one SESSIONGATE_RESPONSE_HEADERS line.
type ResponseHeader struct {
	// Path is "/" for a line without one, a directory ending in "/"
	// (matched as a prefix) or an exact URL path.
	Path string
	// Name is canonical (X-Frame-Options).
	Name string
	// Value is what is sent; empty: the header is not added under Path
	// (a more specific line cancelling a broader one).
	Value string
}

// ResponseHeaders parses SESSIONGATE_RESPONSE_HEADERS (after Load has
// checked it).
func (c *Config) ResponseHeaders() []ResponseHeader {
	return parsed(c.ResponseHeaderSpecs, parseResponseHeader)
}

// HiddenHeaders returns SESSIONGATE_HIDE_HEADERS in canonical form.
func (c *Config) HiddenHeaders() []string {
	out := make([]string, 0, len(c.HideHeaders))
	for _, n := range c.HideHeaders {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, textproto.CanonicalMIMEHeaderKey(n))
		}
	}
	return out
}

// parseResponseHeader reads "[PATH ]Name: value" (a line Lines trimmed).
func parseResponseHeader(line string) (h ResponseHeader, err error) {
	h.Path = "/"
	field := line
	if strings.HasPrefix(line, "/") {
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			return h, fmt.Errorf("%q: a path is followed by the header, e.g. /fonts/ Access-Control-Allow-Origin: *", line)
		}
		h.Path, field = line[:i], strings.TrimSpace(line[i:])
		if err := accessPathError(line, h.Path); err != nil {
			return h, err
		}
	}
	name, value, found := strings.Cut(field, ":")
	if !found || !httpfield.ValidName(name) {
		return h, fmt.Errorf("%q: each line is Name: value, optionally after a path, e.g. X-Frame-Options: SAMEORIGIN", line)
	}
	h.Name = textproto.CanonicalMIMEHeaderKey(name)
	h.Value = strings.TrimSpace(value)
	if !httpfield.ValidValue(h.Value) {
		return h, fmt.Errorf("%q: the value holds a control character", line)
	}
	if why := gatewayOwnedHeader(h.Name); why != "" {
		return h, fmt.Errorf("%q: %s is not set here: %s", line, h.Name, why)
	}
	if msg := checkHeaderValue(h.Name, h.Value); msg != "" {
		return h, fmt.Errorf("%q: %s", line, msg)
	}
	return h, nil
}

// checkHeaderValue explains what is wrong with a value copied the way
// other configurations write it, or returns "": browsers drop a header
// they cannot parse without a word, so the site would go without it.
func checkHeaderValue(name, v string) string {
	if v == "" {
		return "" // keeps a broader line's header off
	}
	if strings.Contains(v, `\n`) {
		return `a literal \n: put each header on a line of its own (a real newline: a YAML block, $'...' in a shell, a single-quoted value over several lines in a systemd EnvironmentFile)`
	}
	if m := joinedHeader.FindStringSubmatch(v); m != nil {
		return fmt.Sprintf("put each header on a line of its own (%s starts a second header here)", strings.TrimSpace(m[1]))
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return "the value is sent as it is written: drop nginx's quotes"
	}
	if l := strings.ToLower(strings.TrimSuffix(v, ";")); strings.HasSuffix(l, " always") {
		return "nginx's always is how every response gets a header here: drop it"
	}
	switch name {
	case "X-Frame-Options":
		if !strings.EqualFold(v, "DENY") && !strings.EqualFold(v, "SAMEORIGIN") {
			return "X-Frame-Options is DENY or SAMEORIGIN (browsers ignore other values; Content-Security-Policy: frame-ancestors names other sites)"
		}
	case "X-Content-Type-Options":
		if !strings.EqualFold(v, "nosniff") {
			return "X-Content-Type-Options is nosniff"
		}
	}
	return ""
}

// joinedHeader finds a second header written on the same line: after a
// comma, as the comma-separated variables are written, after a semicolon
// or a space (a YAML > block or a quoted string folds lines into one).
// "X-Frame-Options: DENY, X-Content-Type-Options: nosniff" would otherwise
// send one X-Frame-Options value browsers reject. Only names such lists
// hold are looked for, so a value like X-Robots-Tag's "googlebot: noindex,
// bingbot: nofollow" passes.
var joinedHeader = regexp.MustCompile(`(?i)[,;\s]\s*((?:x-[a-z0-9-]+|content-security-policy(?:-report-only)?|referrer-policy|permissions-policy|cross-origin-[a-z-]+|access-control-[a-z-]+|strict-transport-security|cache-control|server|link)\s*:)`)

// gatewayOwned are the response headers an operator may neither add nor
// hide, with the reason: the gateway sets them itself, the response's
// framing depends on them, or the app sets them for the response that
// needs them (a fixed one would also reach error pages and responses that
// set the session cookie).
var gatewayOwned = map[string]string{
	"Connection":                "hop-by-hop headers belong to each connection",
	"Keep-Alive":                "hop-by-hop headers belong to each connection",
	"Proxy-Connection":          "hop-by-hop headers belong to each connection",
	"Te":                        "hop-by-hop headers belong to each connection",
	"Trailer":                   "hop-by-hop headers belong to each connection",
	"Transfer-Encoding":         "the gateway frames each response itself",
	"Upgrade":                   "hop-by-hop headers belong to each connection",
	"Content-Length":            "the gateway frames each response itself",
	"Content-Encoding":          "compression sets it (SESSIONGATE_COMPRESS)",
	"Content-Range":             "it belongs to the range that was asked for",
	"Content-Type":              "the file or the app decides the type",
	"Set-Cookie":                "the session cookie is the gateway's and the other cookies the app's",
	"Location":                  "it belongs to the redirect that sends it",
	"Status":                    "it is PHP's CGI status line, never sent",
	"Date":                      "the gateway sends the time of each response",
	"Age":                       "caches set it",
	"Vary":                      "compression and the app set it for what the response depends on",
	"Etag":                      "validators belong to the file or the app's response",
	"Last-Modified":             "validators belong to the file or the app's response",
	"Accept-Ranges":             "the gateway sends it for the files it serves ranges of",
	"Retry-After":               "the gateway and the app set it with the error that needs it",
	"Www-Authenticate":          "SESSIONGATE_BASIC_AUTH and the app set it with their 401",
	"Allow":                     "the gateway and the app send it with their 405",
	"Content-Disposition":       "it belongs to the download that sends it (the app sets it, X-Accel-Redirect keeps it); a fixed one would make error pages downloads",
	"Cache-Control":             "caching is SESSIONGATE_STATIC_MAX_AGE's for static files and the app's for its pages; a fixed value would also reach error pages and responses that set the session cookie",
	"Expires":                   "caching is SESSIONGATE_STATIC_MAX_AGE's for static files and the app's for its pages; a fixed value would also reach error pages and responses that set the session cookie",
	"Strict-Transport-Security": "SESSIONGATE_HSTS sets it, on HTTPS responses only",
}

func init() {
	for _, name := range httpfield.CDNCacheControl {
		gatewayOwned[name] = "caching is the app's for its pages, and a CDN reads this before Cache-Control; a fixed value would also reach error pages and responses that set the session cookie"
	}
}

// gatewayOwnedHeader returns why canonical name is refused, or "".
func gatewayOwnedHeader(name string) string {
	if why, ok := gatewayOwned[name]; ok {
		return why
	}
	for _, p := range []string{"X-Sessiongate-", "X-Accel-"} {
		if strings.HasPrefix(name, p) {
			return p + "* headers are the gateway's protocol with the apps, never sent to clients"
		}
	}
	return ""
}

func (c *Config) checkResponseHeaders(check func(name string, ok bool, format string, args ...any)) {
	const name = "SESSIONGATE_RESPONSE_HEADERS"
	seen := map[[2]string]bool{}
	headers := c.ResponseHeaders()
	for _, line := range c.ResponseHeaderSpecs {
		h, err := parseResponseHeader(line)
		if err != nil {
			check(name, false, "%s", err.Error())
			continue
		}
		key := [2]string{h.Path, h.Name}
		check(name, !seen[key], "%s is given twice for %s: combine the values with a comma on one line", h.Name, h.Path)
		seen[key] = true
		c.checkExactEntry(check, name, line, h.Path)
		if h.Value == "" {
			check(name, slices.ContainsFunc(headers, func(b ResponseHeader) bool {
				return b.Name == h.Name && b.Value != "" && b.Path != h.Path && strings.HasSuffix(b.Path, "/") && strings.HasPrefix(h.Path, b.Path)
			}), "%q: an empty value keeps a broader line's %s off %s, and no broader line adds it", line, h.Name, h.Path)
		}
	}

	const hide = "SESSIONGATE_HIDE_HEADERS"
	hidden := map[string]bool{}
	for _, n := range c.HideHeaders {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !httpfield.ValidName(n) {
			check(hide, false, "%q is not a header name", n)
			continue
		}
		canon := textproto.CanonicalMIMEHeaderKey(n)
		if why := gatewayOwnedHeader(canon); why != "" {
			check(hide, false, "%s cannot be hidden: %s", canon, why)
		}
		check(hide, !hidden[canon], "%s is listed twice", canon)
		hidden[canon] = true
	}
}

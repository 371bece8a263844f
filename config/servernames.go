package config

import (
	"net/netip"
	"strings"
)

// HostNames returns SESSIONGATE_SERVER_NAMES as Host headers spell them:
// lower case, no trailing dot, IPv6 addresses in brackets.
func (c *Config) HostNames() []string {
	var out []string
	for _, n := range c.ServerNames {
		out = append(out, CanonicalHost(n))
	}
	return out
}

// CanonicalHost is a host name or address (no port) as the lists compare
// it: lower case, no trailing dot, an IPv6 address in brackets and in its
// one short spelling (2001:0DB8::0001 is [2001:db8::1]).
func CanonicalHost(n string) string {
	n = strings.ToLower(strings.TrimSuffix(n, "."))
	bare := strings.TrimSuffix(strings.TrimPrefix(n, "["), "]")
	if a, err := netip.ParseAddr(bare); err == nil && a.Is6() && a.Zone() == "" && (bare == n || "["+bare+"]" == n) {
		return "[" + a.String() + "]"
	}
	return n
}

// checkServerNames checks SESSIONGATE_SERVER_NAMES: host names, leading
// wildcards and IP addresses, without ports.
func (c *Config) checkServerNames(check func(name string, ok bool, format string, args ...any)) {
	const name = "SESSIONGATE_SERVER_NAMES"
	seen := map[string]bool{}
	for _, n := range c.ServerNames {
		norm := CanonicalHost(n)
		check(name, !seen[norm], "%q is listed twice", n)
		seen[norm] = true
		var ok bool
		switch {
		case strings.HasPrefix(norm, "["):
			a, err := netip.ParseAddr(strings.TrimSuffix(norm[1:], "]"))
			ok = err == nil && strings.HasSuffix(norm, "]") && a.Is6() && a.Zone() == ""
		case strings.HasPrefix(norm, "*."):
			// A wildcard for the subdomains of a name with a dot at least:
			// "*.com" would take in a whole top-level domain.
			ok = ValidHostName(norm[2:]) && strings.Contains(norm[2:], ".")
		default:
			ok = ValidHostName(norm)
		}
		if !ok {
			check(name, false, "%q: %s", n, serverNameHint(serverNameRule, n))
		}
	}
}

// serverNameRule and canonicalNameRule say what SESSIONGATE_SERVER_NAMES
// entries and SESSIONGATE_CANONICAL_NAME may be.
const (
	serverNameRule    = "each entry must be a host name (example.com), a wildcard for its subdomains (*.example.com) or an IP address, without port or scheme"
	canonicalNameRule = "must be a host name, e.g. example.com, without port or scheme"
)

// serverNameHint explains a refused SESSIONGATE_SERVER_NAMES entry, with
// what nginx's server_name would have accepted in mind.
func serverNameHint(rule, n string) string {
	switch {
	case strings.ContainsAny(n, " \t"):
		return rule + "; the list is comma-separated, not space-separated like nginx's server_name"
	case strings.HasPrefix(n, "."):
		return rule + "; nginx's .example.com is example.com,*.example.com here"
	case strings.IndexFunc(n, func(r rune) bool { return r > 0x7f }) >= 0:
		return rule + "; write an internationalized name in its ASCII (xn--) form"
	}
	return rule
}

// ValidHostName reports whether h, in lower case and without a trailing
// dot, is dot-separated labels of letters, digits and hyphens, each 1-63
// bytes, not starting or ending with a hyphen (an IPv4 address is one
// too): a name that can stand in a URL's host as it is.
func ValidHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// SiteName is the name the site goes by where a request names none: the
// canonical name, or else the first listed name that is not a wildcard
// (nginx's first server_name); "" when SESSIONGATE_SERVER_NAMES lists none.
// PHP's SERVER_NAME for a request without Host, and the Host of the
// gateway's own checks of Django backends.
func (c *Config) SiteName() string {
	if n := c.Canonical(); n != "" {
		return n
	}
	for _, n := range c.HostNames() {
		if !strings.HasPrefix(n, "*") {
			return n
		}
	}
	return ""
}

// Canonical returns SESSIONGATE_CANONICAL_NAME as HostNames spells it, or
// "".
func (c *Config) Canonical() string {
	if c.CanonicalName == "" {
		return ""
	}
	return CanonicalHost(c.CanonicalName)
}

func (c *Config) checkCanonicalName(check func(name string, ok bool, format string, args ...any)) {
	const name = "SESSIONGATE_CANONICAL_NAME"
	if c.CanonicalName == "" {
		return
	}
	norm := c.Canonical()
	_, ipErr := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(norm, "["), "]"))
	switch {
	case strings.HasPrefix(norm, "*"):
		check(name, false, "%q: the site lives on one name; a wildcard cannot be redirected to", c.CanonicalName)
	case ipErr == nil:
		check(name, false, "%q: the site lives on a host name; listed addresses are served as they are, never redirected", c.CanonicalName)
	case !ValidHostName(norm):
		check(name, false, "%q: %s", c.CanonicalName, serverNameHint(canonicalNameRule, c.CanonicalName))
	case !strings.Contains(norm, "."):
		check(name, false, "%q: names without a dot (container names, localhost) are served as they are, never redirected to", c.CanonicalName)
	case len(c.ServerNames) == 0:
		check(name, false, "%q: list it in SESSIONGATE_SERVER_NAMES with the names to redirect to it, e.g. example.com,www.example.com", c.CanonicalName)
	case !listedName(c.HostNames(), norm):
		check(name, false, "%q is not one of SESSIONGATE_SERVER_NAMES; list it there too", c.CanonicalName)
	}
}

// listedName reports whether SESSIONGATE_SERVER_NAMES (as HostNames spells
// them) take in the host name h, exactly or by a wildcard.
func listedName(names []string, h string) bool {
	for _, n := range names {
		if n == h {
			return true
		}
		if suffix, ok := strings.CutPrefix(n, "*"); ok && strings.HasSuffix(h, suffix) {
			return true
		}
	}
	return false
}

// cookieDomainHosts returns, when SESSIONGATE_SESSION_COOKIE_DOMAIN and
// SESSIONGATE_SERVER_NAMES are both set, the host names browsers visit the
// site under (the canonical name when there is one, else every listed name
// with a dot; addresses and names without a dot are for health checks and
// services), and those of them the cookie's Domain does not cover: a
// browser ignores a Set-Cookie whose Domain the request's host does not
// domain-match (RFC 6265 section 5.3, step 6). A wildcard stands for its
// subdomains.
func (c *Config) cookieDomainHosts() (hosts, outside []string) {
	if c.Session.Domain == "" || len(c.ServerNames) == 0 {
		return nil, nil
	}
	domain := strings.ToLower(strings.TrimPrefix(c.Session.Domain, "."))
	names := c.HostNames()
	if canonical := c.Canonical(); canonical != "" {
		names = []string{canonical}
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "*.")
		if _, err := netip.ParseAddr(strings.Trim(base, "[]")); err == nil || !strings.Contains(base, ".") {
			continue
		}
		hosts = append(hosts, n)
		if base != domain && !strings.HasSuffix(base, "."+domain) {
			outside = append(outside, n)
		}
	}
	return hosts, outside
}

package server

import (
	"net/http"
	"strings"
)

// serverNames is SESSIONGATE_SERVER_NAMES, nginx's server_name with a
// default_server that refuses every other Host. PHP applications build
// absolute URLs (password-reset links, redirects, canonical links) from
// the Host header or SERVER_NAME; behind a server that answers any Host,
// a forged one puts an attacker's domain in a mail the victim trusts.
type serverNames struct {
	exact map[string]bool
	// suffixes are ".example.com" for "*.example.com".
	suffixes []string
	// first is the first name that is not a wildcard: SERVER_NAME for a
	// request without Host, as nginx sends its first server_name.
	first string
}

// newServerNames returns nil for an empty list: every Host is served.
func newServerNames(names []string) *serverNames {
	if len(names) == 0 {
		return nil
	}
	n := &serverNames{exact: map[string]bool{}}
	for _, name := range names {
		if suffix, ok := strings.CutPrefix(name, "*"); ok {
			n.suffixes = append(n.suffixes, suffix)
			continue
		}
		n.exact[name] = true
		if n.first == "" {
			n.first = name
		}
	}
	return n
}

// name returns the listed name r is for, as PHP's SERVER_NAME, and whether
// the site answers to it. A request without Host (HTTP/1.0) names no other
// site, so it is answered, under the first name.
func (n *serverNames) name(r *http.Request) (string, bool) {
	if r.Host == "" {
		return n.first, true
	}
	host, ok := requestHost(r.Host)
	if !ok {
		return "", false
	}
	host = strings.TrimSuffix(host, ".")
	if n.exact[host] {
		return host, true
	}
	for _, s := range n.suffixes {
		if strings.HasSuffix(host, s) {
			return host, true
		}
	}
	return "", false
}

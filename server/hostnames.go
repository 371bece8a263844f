package server

import (
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/netip"
	"strings"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/logtext"
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
	// request without Host, as nginx sends its first server_name; the
	// canonical name when there is one.
	first string
	// canonical is SESSIONGATE_CANONICAL_NAME: requests for the other
	// listed host names are redirected to it. "" for none.
	canonical string
}

// newServerNames returns nil for an empty list: every Host is served.
func newServerNames(cfg *config.Config) *serverNames {
	names := cfg.HostNames()
	if len(names) == 0 {
		return nil
	}
	n := &serverNames{exact: map[string]bool{}, canonical: cfg.Canonical(), first: cfg.SiteName()}
	for _, name := range names {
		if suffix, ok := strings.CutPrefix(name, "*"); ok {
			n.suffixes = append(n.suffixes, suffix)
			continue
		}
		n.exact[name] = true
	}
	return n
}

// name returns the listed name r is for, as PHP's SERVER_NAME, or, when
// the site does not answer to it, an error naming the host refused. A
// request without Host (HTTP/1.0) names no other site, so it is answered,
// under the first name. From a trusted proxy, the hosts it forwards
// (X-Forwarded-Host, Forwarded: host=) must be listed too: frameworks
// told to trust the proxy build their links from those.
func (n *serverNames) name(r *http.Request, viaProxy bool) (string, error) {
	if viaProxy {
		if host, found := n.unlistedForwardedHost(r.Header); found {
			return "", fmt.Errorf("forwarded host %q not in SESSIONGATE_SERVER_NAMES", logtext.Clip(host, 100))
		}
	}
	if r.Host == "" {
		return n.first, nil
	}
	name, ok := n.match(r.Host)
	if !ok {
		return "", fmt.Errorf("Host %q not in SESSIONGATE_SERVER_NAMES", logtext.Clip(r.Host, 100))
	}
	return name, nil
}

// refusedServerName answers 421 for a request whose Host (or forwarded
// host) is not one of SESSIONGATE_SERVER_NAMES, and otherwise records the
// name it is for, which PHP gets as SERVER_NAME. 421 rather than 404 or
// 400: the client may retry on a connection meant for that name. The
// refusal is logged with the host, at warn and with the access log off
// too, as the other refusals are.
func (s *Server) refusedServerName(w http.ResponseWriter, r *http.Request) bool {
	if s.names == nil {
		return false
	}
	ri := Info(r.Context())
	name, err := s.names.name(r, ri.ViaProxy)
	if err != nil {
		ri.Err = err
		s.fail(w, r, http.StatusMisdirectedRequest)
		return true
	}
	ri.ServerName = name
	return false
}

// match returns the listed name a Host value is for.
func (n *serverNames) match(hostport string) (string, bool) {
	host, ok := requestHost(hostport)
	if !ok {
		return "", false
	}
	host = config.CanonicalHost(host)
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

// unlistedForwardedHost returns the first host a proxy forwards that is
// not one of the site's, and whether there is one.
func (n *serverNames) unlistedForwardedHost(h http.Header) (string, bool) {
	for host := range forwardedHosts(h) {
		if _, ok := n.match(host); !ok {
			return host, true
		}
	}
	return "", false
}

// forwardedHosts yields the hosts a proxy says its client asked for: each
// X-Forwarded-Host entry, then each Forwarded host=, in order.
func forwardedHosts(h http.Header) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range h.Values("X-Forwarded-Host") {
			for part := range strings.SplitSeq(v, ",") {
				if !yield(strings.TrimSpace(part)) {
					return
				}
			}
		}
		for _, v := range h.Values("Forwarded") {
			for elem := range strings.SplitSeq(v, ",") {
				for host := range elementHosts(elem) {
					if !yield(host) {
						return
					}
				}
			}
		}
	}
}

// movesToCanonical reports whether a request for the listed name should
// move to the canonical one: www.example.com to example.com, the
// www-or-not choice every shop makes once for its search ranking. An IP
// address stays, as does a name without a dot (a container name,
// localhost): load balancers check health and services call each other by
// those, and expect an answer, not a redirect to the public name.
func (n *serverNames) movesToCanonical(name string) bool {
	return n.canonical != "" && name != n.canonical && strings.Contains(name, ".") && !isIPHost(name)
}

func isIPHost(h string) bool {
	_, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	return err == nil
}

// canonicalLocation returns the URL r moves to, when the host its client
// asked for is another of the site's host names: the same scheme, port and
// request target on the canonical name. Through a trusted proxy, the host
// the client asked for is the proxy's X-Forwarded-Host (or Forwarded
// host=) when it sends one, since a proxy may send its own Host (nginx's
// proxy_pass sends the upstream's name). ok is false for a request to
// move that names no path ("OPTIONS *"). trusted are
// SESSIONGATE_TRUSTED_PROXIES (forwardedHost).
func (n *serverNames) canonicalLocation(r *http.Request, viaProxy, https bool, trusted config.Prefixes) (loc string, move, ok bool) {
	asked := r.Host
	if viaProxy {
		if fh := forwardedHost(r.Header, trusted); fh != "" {
			asked = fh
		}
	}
	if asked == "" {
		// HTTP/1.0 without Host: served under the canonical name.
		return "", false, true
	}
	name, listed := n.match(asked)
	if !listed || !n.movesToCanonical(name) {
		return "", false, true
	}
	target, ok := redirectTarget(r.RequestURI)
	if !ok {
		return "", true, false
	}
	port := ""
	if i := strings.LastIndexByte(asked, ':'); i >= 0 && !strings.HasSuffix(asked, "]") && i < len(asked)-1 {
		port = asked[i:]
	}
	scheme := "http://"
	if https {
		scheme = "https://"
	}
	return scheme + n.canonical + port + target, true, true
}

// forwardedHost is the host a trusted proxy says its client asked for,
// or "": in its X-Forwarded-Host, else in its Forwarded element's host=,
// the entry the outermost trusted proxy wrote. A proxy that appends to
// these (Apache's mod_proxy; Forwarded, RFC 7239) passes its client's own
// entries on in front of its own, so the first may be anyone's: as in the
// X-Forwarded-For walk (clientOf), each trusted proxy between the client
// and the gateway wrote one entry, counted from the right (proxyHops). A
// proxy that replaces the header leaves one entry, its own.
// name (unlistedForwardedHost) has already refused a request whose forwarded
// hosts are not all listed.
func forwardedHost(h http.Header, trusted config.Prefixes) string {
	hops := proxyHops(h, trusted)
	if hosts := listEntries(h["X-Forwarded-Host"]); len(hosts) > 0 {
		return hosts[max(len(hosts)-hops, 0)]
	}
	elems := listEntries(h["Forwarded"])
	if len(elems) == 0 {
		return ""
	}
	for host := range elementHosts(elems[max(len(elems)-hops, 0)]) {
		return host
	}
	return ""
}

// elementHosts yields the host= parameters of one Forwarded element (RFC
// 7239), unquoted: one in a well-formed element.
func elementHosts(elem string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for pair := range strings.SplitSeq(elem, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "host") && !yield(strings.Trim(strings.TrimSpace(val), `"`)) {
				return
			}
		}
	}
}

// listEntries splits the lines of a comma-separated header into its
// entries, trimmed, as one list (RFC 9110 section 5.3).
func listEntries(values []string) []string {
	var out []string
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			out = append(out, strings.TrimSpace(part))
		}
	}
	return out
}

// ForwardedHost is forwardedHost for the Django proxy, whose
// X-Forwarded-Host must name the host the client asked for when a trusted
// proxy sends its own Host (nginx's proxy_pass sends the upstream's name).
// Call it only for a request that came through a trusted proxy, with the
// RequestInfo the server gave it (whose SESSIONGATE_TRUSTED_PROXIES count
// the hops).
func ForwardedHost(r *http.Request) string {
	var trusted config.Prefixes
	if ri := Info(r.Context()); ri != nil && ri.srv != nil {
		trusted = ri.srv.cfg.TrustedProxies
	}
	return forwardedHost(r.Header, trusted)
}

// hostFieldError says what is wrong with the host a request names, or
// returns nil. net/http refuses an HTTP/1 Host with bytes no host has
// ("malformed Host header", 400) before any handler runs, but passes an
// HTTP/2 :authority, or the Host field that stands in for it, as the
// client wrote it: a space, a slash or markup then reached PHP as
// HTTP_HOST and SERVER_NAME, which applications print into links and
// pages, and Django as X-Forwarded-Host. A Host field beside :authority
// that names another host, or a second one, makes an HTTP/2 request
// malformed (RFC 9113 section 8.3.1): which of them an app reads is
// anyone's guess. (net/http keeps a Host field only on HTTP/2.)
//
// An empty host is refused too ("Host:", "Host: :8080", an HTTP/2 request
// without :authority nor Host), as nginx refuses it and RFC 9110 section
// 4.2.1 wants an http URI with an empty host rejected: net/http refuses an
// HTTP/1.1 request without Host but passes an empty one, which PHP got as
// no HTTP_HOST and the server's address as SERVER_NAME, the host of every
// link the app then built. Only HTTP/1.0, where r.Host is empty when the
// request names no host at all, is served without one. A host with an
// empty label ("shop..example") names no host either, and nginx refuses
// it as well: without SESSIONGATE_SERVER_NAMES it reached PHP as HTTP_HOST
// and SERVER_NAME.
//
// So is an absolute-form target with userinfo ("http://user@host/"), which
// net/http serves for the host after the "@": RFC 9110 section 4.2.4 asks
// recipients to treat it as an error, as nginx does (400), since a proxy
// in front that reads the authority another way ("site@evil.example")
// routes the request for one host while PHP builds links from the other.
func hostFieldError(r *http.Request) error {
	if r.Host == "" && r.ProtoAtLeast(1, 1) || strings.HasPrefix(r.Host, ":") {
		return fmt.Errorf("empty host %q", logtext.Clip(r.Host, 100))
	}
	if strings.Contains(r.Host, "..") {
		return fmt.Errorf("empty label in host %q", logtext.Clip(r.Host, 100))
	}
	if r.URL != nil && r.URL.User != nil {
		return errors.New("userinfo in the request target")
	}
	for i := 0; i < len(r.Host); i++ {
		if !validHostByte[r.Host[i]] {
			return fmt.Errorf("malformed host %q", logtext.Clip(r.Host, 100))
		}
	}
	switch h := r.Header["Host"]; {
	case len(h) > 1:
		return errors.New("more than one Host field")
	case len(h) == 1 && !strings.EqualFold(h[0], r.Host):
		return fmt.Errorf("Host field %q differs from :authority %q", logtext.Clip(h[0], 100), logtext.Clip(r.Host, 100))
	}
	return nil
}

// validHostByte are the bytes net/http lets an HTTP/1 Host hold
// (golang.org/x/net/http/httpguts.ValidHostHeader): those of a reg-name,
// an IP literal and a port, so that both protocols take the same hosts.
var validHostByte = func() (t [256]bool) {
	for _, c := range "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!$%&'()*+,-.:;=[]_~" {
		t[c] = true
	}
	return t
}()

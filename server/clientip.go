package server

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/sessiongate/sessiongate/config"
)

// clientOf returns the client address ("ip:port") and whether the client
// used HTTPS, believing forwarding headers only from trusted proxies.
//
// X-Forwarded-For is honoured only when the direct peer is trusted. The list
// is walked from the right (the entry appended by our peer) to the left,
// skipping trusted hops: the first untrusted address is the client, because
// everything to its left was written by that client and may be forged. An
// unparsable entry stops the walk at the last good address, so garbage never
// becomes REMOTE_ADDR. When every hop is trusted the leftmost one wins, as
// with nginx's real_ip_recursive. An address learnt from the header has no
// port (REMOTE_PORT 0).
//
// X-Forwarded-Proto from a trusted peer decides HTTPS by its last value (the
// one our peer wrote): "https" or not. It wins over the TLS of the peer's own
// connection, because a load balancer that re-encrypts to the gateway says
// there which scheme its client used, and an http client told it is on
// https gets no redirect to https and a Secure cookie its browser drops.
// Without that header, and from any untrusted peer, a TLS connection is
// HTTPS.
func clientOf(r *http.Request, trusted config.Prefixes) (remote string, https bool, viaProxy bool) {
	https = r.TLS != nil
	peerAddr := withoutZone(r.RemoteAddr)
	if len(trusted) == 0 {
		return peerAddr, https, false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	// A link-local peer comes with its zone ("fe80::1%eth0"), which
	// netip.Prefix.Contains never matches: the zone says which interface,
	// not which network.
	if err != nil || !trusted.Contains(peer.Addr().WithZone("")) {
		return peerAddr, https, false
	}
	if v := lastListValue(r.Header["X-Forwarded-Proto"]); v != "" {
		https = strings.EqualFold(v, "https")
	}
	client, found := walkXFF(r.Header["X-Forwarded-For"], trusted)
	if !found {
		return peerAddr, https, true
	}
	return netip.AddrPortFrom(client, 0).String(), https, true
}

// withoutZone drops the zone of a link-local peer's address
// ("[fe80::1%eth0]:5555"): PHP's filter_var(FILTER_VALIDATE_IP) and
// inet_pton refuse an address with one, and nginx's $remote_addr has none.
func withoutZone(addr string) string {
	i := strings.IndexByte(addr, '%')
	if i < 0 {
		return addr
	}
	if j := strings.IndexByte(addr[i:], ']'); j >= 0 {
		return addr[:i] + addr[i+j:]
	}
	return addr
}

// walkXFF applies the right-to-left walk described at clientOf.
func walkXFF(values []string, trusted config.Prefixes) (netip.Addr, bool) {
	client, found, _ := walkXFFHops(values, trusted)
	return client, found
}

// proxyHops is how many trusted proxies a request from a trusted peer
// passed, the peer included: each wrote one X-Forwarded-For entry, of the
// address it took the request from, which the walk steps over up to the
// client's (at least 1).
func proxyHops(h http.Header, trusted config.Prefixes) int {
	_, _, hops := walkXFFHops(h["X-Forwarded-For"], trusted)
	return max(hops, 1)
}

// walkXFFHops is walkXFF that also counts the entries it took, the
// client's included.
func walkXFFHops(values []string, trusted config.Prefixes) (client netip.Addr, found bool, taken int) {
	// Several header lines are one list joined with commas (RFC 9110
	// 5.3): an empty entry at the start of a line stops the walk as it
	// would in the joined list.
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for more := true; more; {
			var entry string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				entry, v = v[j+1:], v[:j]
			} else {
				entry, more = v, false
			}
			a, ok := parseForwardedAddr(strings.TrimSpace(entry))
			if !ok {
				return client, found, taken
			}
			client, found = a, true
			taken++
			if !trusted.Contains(a) {
				return client, true, taken
			}
		}
	}
	return client, found, taken
}

// parseForwardedAddr accepts the spellings proxies use in X-Forwarded-For:
// "1.2.3.4", "1.2.3.4:5678", "2001:db8::1", "[2001:db8::1]" and
// "[2001:db8::1]:443". Zones are refused: they mean nothing off-link.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap(), a.Zone() == ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Addr().Zone() == ""
	}
	return netip.Addr{}, false
}

// lastListValue returns the last element of a comma-separated header that
// may appear several times.
func lastListValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	v := values[len(values)-1]
	if j := strings.LastIndexByte(v, ','); j >= 0 {
		v = v[j+1:]
	}
	return strings.TrimSpace(v)
}

package server

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
)

// FuzzWalkXFF: X-Forwarded-For sent as several lines means the same as the
// lines joined with commas (RFC 9110 5.3), the client found is never a
// zoned or IPv4-mapped address, and it is untrusted unless every hop was.
func FuzzWalkXFF(f *testing.F) {
	f.Add("6.6.6.6, 9.9.9.9", "10.1.1.1")
	f.Add("[2001:db9::5]:1234", "fe80::1%eth0, ::ffff:10.0.0.1")
	f.Add("9.9.9.9,,", " 10.3.3.3 ,[10.2.2.2]")
	f.Add("", "")
	trusted := config.Prefixes{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		lines := []string{a, b}
		got, found := walkXFF(lines, trusted)
		joined, jfound := walkXFF([]string{strings.Join(lines, ",")}, trusted)
		if got != joined || found != jfound {
			t.Fatalf("%q: %v %v, joined %v %v", lines, got, found, joined, jfound)
		}
		if !found {
			return
		}
		if got.Zone() != "" || got.Is4In6() || !got.IsValid() {
			t.Fatalf("%q: client %v", lines, got)
		}
		if trusted.Contains(got) {
			// Only when the walk ran out of entries, or an unparsable one
			// stopped it, right after trusted hops.
			entries := strings.Split(strings.Join(lines, ","), ",")
			for i := len(entries) - 1; i >= 0; i-- {
				a, ok := parseForwardedAddr(strings.TrimSpace(entries[i]))
				if !ok {
					break
				}
				if !trusted.Contains(a) {
					t.Fatalf("%q: trusted %v chosen over %v", lines, got, a)
				}
			}
		}
	})
}

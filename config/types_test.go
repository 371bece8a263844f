package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzParseByteSize: a size that parses is not negative, and its String()
// parses back to the same size; a refused one says why without the value.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "1m", " 512K ", "7", "8589934591g", "8589934592g", "9223372036854775807", "-1", "1.5m", "0x10", "k", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseByteSize(s)
		if err != nil {
			if err != errByteSize && err != errByteSizeTooLarge {
				t.Fatalf("%q: unexpected error %v", s, err)
			}
			return
		}
		n := v.(ByteSize)
		if n < 0 {
			t.Fatalf("%q: negative size %d", s, n)
		}
		back, err := parseByteSize(n.String())
		if err != nil || back.(ByteSize) != n {
			t.Fatalf("%q = %d: String %q parses to %v, %v", s, n, n.String(), back, err)
		}
	})
}

// FuzzParseDuration: a duration that parses is not negative and its
// String() parses back to it.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "60s", " 500ms", "2h45m", "-1s", "1", "9223372036854775807ns", "1e3s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseDuration(s)
		if err != nil {
			return
		}
		d := v.(time.Duration)
		if d < 0 {
			t.Fatalf("%q: negative %v", s, d)
		}
		if back, err := parseDuration(d.String()); err != nil || back.(time.Duration) != d {
			t.Fatalf("%q = %v: parses back to %v, %v", s, d, back, err)
		}
	})
}

// FuzzParsePrefixes: every entry of a trusted-proxy list becomes a masked
// prefix without zone or IPv4-mapped form, that contains the address it
// was written with, and the list parses back to itself.
func FuzzParsePrefixes(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "1.2.3.4, 2001:db8::/32", "::ffff:10.0.0.0/104", "::ffff:1.2.3.4", "fe80::1%eth0", "10.0.0.1/8", ",", "::ffff:0.0.0.0/96"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parsePrefixes(s)
		if err != nil {
			return
		}
		ps := v.(Prefixes)
		entries, _ := splitList(s)
		if len(entries) != len(ps) {
			t.Fatalf("%q: %d entries, %d prefixes", s, len(entries), len(ps))
		}
		var back []string
		for i, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
				t.Fatalf("%q: prefix %v", s, p)
			}
			addr, _, _ := strings.Cut(entries[i], "/")
			if a, err := netip.ParseAddr(addr); err == nil && !ps.Contains(a) {
				t.Fatalf("%q: %v does not contain %v", s, ps, a)
			}
			back = append(back, p.String())
		}
		again, err := parsePrefixes(strings.Join(back, ","))
		if err != nil || len(again.(Prefixes)) != len(ps) {
			t.Fatalf("%q: %v parses back to %v, %v", s, ps, again, err)
		}
		for i, p := range again.(Prefixes) {
			if p != ps[i] {
				t.Fatalf("%q: %v parses back to %v", s, ps, again)
			}
		}
	})
}

package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestBurstThenRate(t *testing.T) {
	l := New(1, 2, 100) // 1r/s burst=2
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 3 {
		if ok, _ := l.Allow(a, t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, retry := l.Allow(a, t0)
	if ok || retry != time.Second {
		t.Fatalf("4th at once: ok=%v retry=%v, want refused, retry 1s", ok, retry)
	}
	// Refused requests take nothing: half a second later, still half a
	// token to wait for.
	if ok, retry := l.Allow(a, t0.Add(500*time.Millisecond)); ok || retry != 500*time.Millisecond {
		t.Fatalf("at 0.5s: ok=%v retry=%v", ok, retry)
	}
	if ok, _ := l.Allow(a, t0.Add(time.Second)); !ok {
		t.Fatal("at 1s: refused")
	}
	if ok, _ := l.Allow(a, t0.Add(1500*time.Millisecond)); ok {
		t.Fatal("at 1.5s: allowed a second request within the second")
	}
	// Another client has its own bucket.
	if ok, _ := l.Allow(netip.MustParseAddr("192.0.2.2"), t0); !ok {
		t.Fatal("another client refused")
	}
	// A long pause refills the burst, no more.
	later := t0.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow(a, later); !ok {
			t.Fatalf("after an hour, request %d refused", i+1)
		}
	}
	if ok, _ := l.Allow(a, later); ok {
		t.Fatal("after an hour, more than the burst allowed")
	}
}

func TestPerMinute(t *testing.T) {
	l := New(10.0/60, 0, 100) // 10r/m, no burst: one per 6 s
	a := netip.MustParseAddr("2001:db8::1")
	if ok, _ := l.Allow(a, t0); !ok {
		t.Fatal("first refused")
	}
	if ok, retry := l.Allow(a, t0.Add(time.Second)); ok || retry != 5*time.Second {
		t.Fatalf("after 1s: ok=%v retry=%v, want refused for 5s", ok, retry)
	}
	if ok, _ := l.Allow(a, t0.Add(6*time.Second)); !ok {
		t.Fatal("after 6s: refused")
	}
}

func TestIPv6ClientIsItsSlash64(t *testing.T) {
	if Key(netip.MustParseAddr("2001:db8:1:2:aaaa::1")) != Key(netip.MustParseAddr("2001:db8:1:2:bbbb::2")) {
		t.Error("two addresses of one /64 are two clients")
	}
	if Key(netip.MustParseAddr("2001:db8:1:2::1")) == Key(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("two /64s are one client")
	}
	if Key(netip.MustParseAddr("::ffff:192.0.2.1")) != netip.MustParseAddr("192.0.2.1") {
		t.Error("an IPv4-mapped address is not its IPv4 client")
	}
}

// The table never holds more than maxKeys clients, however many come, and
// a client it dropped starts over with a full burst, never with less.
func TestBoundedMemory(t *testing.T) {
	l := New(1, 0, 1000)
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Allow(a, t0)
		if n := l.Len(); n > 1000 {
			t.Fatalf("%d clients kept after %d", n, i+1)
		}
	}
	// Buckets full again go before busy ones.
	l = New(1, 0, 10)
	busy := netip.MustParseAddr("192.0.2.9")
	l.Allow(busy, t0.Add(time.Minute))
	for i := range 9 {
		l.Allow(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), t0)
	}
	l.Allow(netip.MustParseAddr("192.0.2.10"), t0.Add(time.Minute))
	if ok, _ := l.Allow(busy, t0.Add(time.Minute)); ok {
		t.Error("the busy client was dropped before the idle ones and got a new burst")
	}
}

// IPv6 addresses that stand for an IPv4 host are keyed by that host: a
// whole /64 of them is every IPv4 client (NAT64's 64:ff9b::/96, as a
// stateless translator in front of an IPv6-only site shows them; Teredo's
// 2001::/32, whose /64 is the relay's), or one IPv4 host owns a /48 of
// them (6to4's 2002::/16).
func TestIPv6ForAnIPv4HostIsThatHost(t *testing.T) {
	for addr, want := range map[string]string{
		"64:ff9b::192.0.2.1":                   "192.0.2.1",
		"64:ff9b::c000:202":                    "192.0.2.2",
		"2002:c000:201:1::1":                   "192.0.2.1",
		"2002:c000:201:ffff:1:2:3:4":           "192.0.2.1",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": "192.0.2.45",
		"2001:0:4136:e378:0:f227:3fff:fdd2":    "192.0.2.45",
		"2001:db8:1:2::1":                      "2001:db8:1:2::",
		"64:ff9b:0:0:1::1":                     "64:ff9b::",
	} {
		if got := Key(netip.MustParseAddr(addr)); got != netip.MustParseAddr(want) {
			t.Errorf("Key(%s) = %s, want %s", addr, got, want)
		}
	}
	if Key(netip.MustParseAddr("64:ff9b::192.0.2.1")) == Key(netip.MustParseAddr("64:ff9b::192.0.2.2")) {
		t.Error("two IPv4 clients through NAT64 are one client")
	}
}

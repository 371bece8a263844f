package config

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
)

// TestOwnListenerWithoutNetlink: under deploy/systemd's unit
// (RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6) the netlink socket
// that lists the machine's addresses is refused. A Django or php-fpm
// address that is this machine's own address on the port of a listener on
// every address must still be found to be the gateway itself, or its
// requests loop back into the gateway until connections run out.
func TestOwnListenerWithoutNetlink(t *testing.T) {
	var own netip.Addr
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap().Is4() && !a.IsLoopback() {
				own = a.Unmap()
				break
			}
		}
	}
	if !own.IsValid() {
		t.Fatalf("this machine has no non-loopback IPv4 address to test with: %v", addrs)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	target := net.JoinHostPort(own.String(), strconv.Itoa(port))
	listen := ":" + strconv.Itoa(port)

	if !ownListener(listen, target) {
		t.Fatalf("ownListener(%q, %q) = false with the interface list", listen, target)
	}
	defer func(f func() ([]net.Addr, error)) { interfaceAddrs = f }(interfaceAddrs)
	interfaceAddrs = func() ([]net.Addr, error) {
		return nil, errors.New("route ip+net: netlinkrib: address family not supported by protocol")
	}
	if !ownListener(listen, target) {
		t.Errorf("ownListener(%q, %q) = false without netlink: the gateway's own address passes as a backend", listen, target)
	}
	if ownListener(listen, net.JoinHostPort("192.0.2.254", strconv.Itoa(port))) && own.String() != "192.0.2.254" {
		t.Errorf("an address of no interface counts as the gateway's own")
	}
}

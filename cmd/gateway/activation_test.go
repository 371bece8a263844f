package main

import (
	"log/slog"
	"net"
	"strings"
	"testing"
)

func TestBoundTo(t *testing.T) {
	v4 := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	any6 := &net.TCPAddr{IP: net.IPv6unspecified, Port: 443}
	for _, tc := range []struct {
		a    *net.TCPAddr
		addr string
		want bool
	}{
		{v4, "127.0.0.1:8080", true},
		{v4, ":8080", true},
		{v4, "0.0.0.0:8080", true},
		{v4, "localhost:8080", true}, // a name: its addresses
		{any6, "localhost:443", false},
		{v4, "127.0.0.2:8080", false},
		{v4, "127.0.0.1:8081", false},
		{any6, ":443", true},
		{any6, "[::]:443", true},
		{any6, "0.0.0.0:443", true},
		{any6, ":80", false},
		{any6, "10.0.0.1:443", false},
		{v4, "not-an-address", false},
	} {
		if got := boundTo(tc.a, tc.addr); got != tc.want {
			t.Errorf("boundTo(%s, %q) = %v, want %v", tc.a, tc.addr, got, tc.want)
		}
	}
}

// TestPassedSocketsFor: the variables only count for the process they
// name; a bad count stops the start with a message naming it.
func TestPassedSocketsFor(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, env := range []map[string]string{
		{},
		{"LISTEN_PID": "1", "LISTEN_FDS": "1"}, // another process's
		{"LISTEN_PID": "x", "LISTEN_FDS": "1"},
	} {
		l, err := passedSockets(env, 4242, log)
		if err != nil || len(l.passed) != 0 {
			t.Errorf("%v: %v, %d sockets", env, err, len(l.passed))
		}
	}
	for _, fds := range []string{"", "0", "-1", "x", "17"} {
		_, err := passedSockets(map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": fds}, 4242, log)
		if err == nil || !strings.Contains(err.Error(), "LISTEN_FDS") {
			t.Errorf("LISTEN_FDS=%q: %v", fds, err)
		}
	}
}

package fcgi

import (
	"sync"
	"testing"
)

// OnHeader runs once, after the stderr PHP wrote before its output and
// before the stderr it wrote after it, even when both arrive together (the
// session bridge tells a message cut short from one still on its way by it).
func TestOnHeaderSplitsStderrAtTheHeader(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		c.Stderr("before")
		c.Stdout("Content-Type: text/plain\r\n\r\nbody")
		c.Stderr("after")
		c.End()
		return true
	})
	tr, _ := newTransport(t, Options{}, srv.Addr())
	var mu sync.Mutex
	var events []string
	s := *testScript
	s.OnStderr = func(m []byte) []byte { mu.Lock(); events = append(events, string(m)); mu.Unlock(); return nil }
	s.OnHeader = func() { mu.Lock(); events = append(events, "header"); mu.Unlock() }
	if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, &s)); err != nil || body != "body" {
		t.Fatalf("body %q, err %v", body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 3 || events[0] != "before" || events[1] != "header" || events[2] != "after" {
		t.Fatalf("events %q, want before, header, after", events)
	}
}

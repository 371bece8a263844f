package fcgi

import (
	"net/http"
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
	s.OnHeader = func(HeaderInfo) { mu.Lock(); events = append(events, "header"); mu.Unlock() }
	if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, &s)); err != nil || body != "body" {
		t.Fatalf("body %q, err %v", body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 3 || events[0] != "before" || events[1] != "header" || events[2] != "after" {
		t.Fatalf("events %q, want before, header, after", events)
	}
}

// The session bridge learns from OnHeader whether PHP's header block held
// the prepend's marker (which never reaches the response), with PHP's
// status and the backend that answered.
func TestOnHeaderReportsMarker(t *testing.T) {
	for _, tc := range []struct {
		name, block string
		marked      bool
		status      int
	}{
		{"marked", "X-Mark: 1\r\nContent-Type: text/plain\r\n\r\n", true, 200},
		{"any case, after Status", "Status: 302 Found\r\nx-MARK: 1\r\nLocation: /x\r\n\r\n", true, 302},
		{"unmarked", "Status: 500 Internal Server Error\r\nContent-Type: text/html\r\n\r\n", false, 500},
		{"longer name", "X-Marker: 1\r\n\r\n", false, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
				c.Stdout(tc.block + "body")
				c.End()
				return true
			})
			tr, _ := newTransport(t, Options{}, srv.Addr())
			s := *testScript
			s.Marker = "X-Mark"
			var got []HeaderInfo
			s.OnHeader = func(i HeaderInfo) { got = append(got, i) }
			resp, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, &s))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Marked != tc.marked || got[0].Status != tc.status || got[0].Backend != srv.Addr() {
				t.Fatalf("OnHeader got %+v, want marked %v, status %d, backend %s", got, tc.marked, tc.status, srv.Addr())
			}
			if _, ok := resp.Header[http.CanonicalHeaderKey("X-Mark")]; ok {
				t.Fatalf("the marker reached the response: %v", resp.Header)
			}
		})
	}
}

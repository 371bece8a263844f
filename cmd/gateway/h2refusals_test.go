package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sessiongate/sessiongate/internal/testh2"
)

// TestHTTP2RefusalsHaveNoHook is why the HTTP/2 requests net/http refuses
// before any handler runs are neither logged nor counted (README, access
// log and sessiongate_http_requests_total): its 431 for a header list past
// the limit, its 400 for a connection-specific field, the stream it resets
// for a field with a forbidden character. None reaches the handler, and
// http.HTTP2Config.CountError, the one hook net/http has for HTTP/2
// errors, is not called for any of them (it is for a malformed :path,
// with no request to tell which). Over HTTP/1.x the gateway sees such
// answers on the connection (logRefusals); HTTP/2 is served only on the
// *tls.Conn itself. When this fails, Go reports these refusals somewhere:
// count and log them there.
func TestHTTP2RefusalsHaveNoHook(t *testing.T) {
	var mu sync.Mutex
	var counted, handled []string
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		handled = append(handled, r.URL.Path)
		mu.Unlock()
	}))
	ts.EnableHTTP2 = true
	ts.Config.MaxHeaderBytes = 4 << 10
	ts.Config.HTTP2 = &http.HTTP2Config{CountError: func(name string) {
		mu.Lock()
		counted = append(counted, name)
		mu.Unlock()
	}}
	ts.StartTLS()
	defer ts.Close()
	fields := func(path string, more ...testh2.Field) []testh2.Field {
		return append([]testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", path}}, more...)
	}
	big := strings.Repeat("a", 1500) // each under the limit, together past it
	for _, c := range []struct {
		name   string
		fields []testh2.Field
		status int // 0: the stream is reset
	}{
		{"header list past the limit", fields("/big", testh2.Field{"x-1", big}, testh2.Field{"x-2", big}, testh2.Field{"x-3", big}, testh2.Field{"x-4", big}), 431},
		{"Connection field", fields("/conn", testh2.Field{"connection", "close"}), 400},
		{"TE other than trailers", fields("/te", testh2.Field{"te", "gzip"}), 400},
		{"control character in a value", fields("/ctl", testh2.Field{"x-a", "a\x01b"}), 0},
		{"upper case in a name", fields("/upper", testh2.Field{"X-Upper", "a"}), 0},
	} {
		mu.Lock()
		counted, handled = nil, nil
		mu.Unlock()
		res := testh2.Do(t, ts.Listener.Addr().String(), c.fields, nil)
		if res.Status != c.status || c.status == 0 && !res.Reset {
			t.Errorf("%s: %+v, want status %d (0: reset)", c.name, res, c.status)
		}
		mu.Lock()
		if len(counted) > 0 || len(handled) > 0 {
			t.Errorf("%s: CountError got %q, the handler %q: net/http now reports this refusal", c.name, counted, handled)
		}
		mu.Unlock()
	}
}

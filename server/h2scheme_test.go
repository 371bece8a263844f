package server

import (
	"net/http/httptest"
	"testing"

	"github.com/sessiongate/sessiongate/internal/testh2"
)

// h2Get sends one GET over a new HTTP/2 connection to srv, with the
// pseudo-headers as given (the client decides :scheme, which Go's own
// client never sets to anything but https over TLS), and returns the
// response's status (0 when it came with another than HPACK's static
// table holds, or was refused).
func h2Get(t *testing.T, srv *httptest.Server, scheme, path string) int {
	t.Helper()
	return testh2.Do(t, srv.Listener.Addr().String(), []testh2.Field{
		{":method", "GET"}, {":scheme", scheme}, {":authority", "example.com"}, {":path", path}}, nil).Status
}

// TestHTTP2SchemeIsTheConnections: over TLS, a request whose :scheme says
// http is still an HTTPS request (net/http keeps :scheme out of the
// request; this guards that nothing reads the scheme elsewhere) for PHP (HTTPS=on, REQUEST_SCHEME) and
// Django (X-Forwarded-Proto), as behind nginx, whose $https comes from the
// connection: the pseudo-header is the client's to write, and an app told
// it is on plain HTTP may send a session cookie without Secure or
// redirect in a loop.
func TestHTTP2SchemeIsTheConnections(t *testing.T) {
	e := newEnv(t, nil)
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	for _, scheme := range []string{"https", "http"} {
		before := len(e.php.scripts)
		status := h2Get(t, ts, scheme, "/hello.php")
		if status == 0 && scheme == "https" {
			t.Fatalf(":scheme https over TLS got no response")
		}
		if status == 0 {
			// Refused outright: nothing reached PHP under a wrong scheme.
			t.Logf(":scheme %s refused", scheme)
			continue
		}
		e.php.mu.Lock()
		scripts := e.php.scripts[before:]
		e.php.mu.Unlock()
		if status != 200 || len(scripts) != 1 || !scripts[0].HTTPS {
			t.Errorf(":scheme %s over TLS: status %d, PHP ran %v; want 200 with HTTPS on", scheme, status, scripts)
		}
	}
}

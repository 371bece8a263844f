package integration

import (
	"strings"
	"testing"
	"time"
)

// TestHostileClientsRealBinary: the gateway binary's own limits against
// clients that are too slow or too big, in front of a real php-fpm.
//   - A request body stalled past SESSIONGATE_READ_TIMEOUT gets 408, like
//     nginx's client_body_timeout (net/http cancels the request's context
//     on that timeout, and it used to pass for a client that left: the
//     client got "200 OK" with an empty body, the log said 499).
//   - SESSIONGATE_MAX_HEADER_BYTES is the largest request line plus
//     headers: one byte more is 431 (net/http let 4 KiB more through).
func TestHostileClientsRealBinary(t *testing.T) {
	t.Parallel()
	_, addr, _ := startPHPBinary(t, "SESSIONGATE_READ_TIMEOUT=1s")

	for name, head := range map[string]string{
		"in memory": "Content-Length: 1000\r\n\r\nabc",
		"streamed":  "Content-Length: 204800\r\n\r\nabc",
		"chunked":   "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
	} {
		start := time.Now()
		resp, _ := raw(t, addr, "POST /index.php HTTP/1.1\r\nHost: x\r\n"+head)
		if statusOf(resp) != 408 {
			t.Errorf("%s body stalled past SESSIONGATE_READ_TIMEOUT: got %.60q after %v, want 408", name, resp, time.Since(start).Round(time.Millisecond))
		}
	}

	const limit = 8 << 10
	for _, tc := range []struct{ size, want int }{{limit, 200}, {limit + 1, 431}, {limit + 4000, 431}} {
		head := "GET /index.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: "
		req := head + strings.Repeat("a", tc.size-len(head)-4) + "\r\n\r\n"
		if resp, _ := raw(t, addr, req); statusOf(resp) != tc.want {
			t.Errorf("%d bytes of request line and headers with SESSIONGATE_MAX_HEADER_BYTES=8k: got %.60q, want %d", len(req), resp, tc.want)
		}
	}
}

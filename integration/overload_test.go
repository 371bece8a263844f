package integration

import (
	"io"
	"net"
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

	// A body that keeps coming is read whole, however long it takes:
	// the timeout is for a stall, like client_body_timeout, which bounds
	// the time between two reads. It used to bound the whole request, so
	// an upload over a slow link was cut with 408 at
	// SESSIONGATE_READ_TIMEOUT while it was making progress.
	for name, tc := range map[string]struct {
		head  string
		parts []string
		want  string
	}{
		"in memory": {"Content-Length: 12\r\n\r\n", []string{"abcd", "efgh", "ijkl"}, "len=12"},
		"spooled":   {"Content-Length: 98304\r\n\r\n", []string{strings.Repeat("a", 32768), strings.Repeat("b", 32768), strings.Repeat("c", 32768)}, "len=98304"},
		"chunked":   {"Transfer-Encoding: chunked\r\n\r\n", []string{"4\r\nabcd\r\n", "4\r\nefgh\r\n", "4\r\nijkl\r\n0\r\n\r\n"}, "len=12"},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST /echo.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+tc.head)
		for _, part := range tc.parts {
			time.Sleep(600 * time.Millisecond) // 1.8 s in all, never 1 s without a byte
			io.WriteString(c, part)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		resp, _ := io.ReadAll(c)
		c.Close()
		if statusOf(string(resp)) != 200 || !strings.HasSuffix(string(resp), tc.want) {
			t.Errorf("%s body sent over 1.8 s with SESSIONGATE_READ_TIMEOUT=1s, never stalled for 1 s: %.80q, want 200 %s", name, resp, tc.want)
		}
	}

	// The timeout ends with the body: PHP may work longer than it after
	// the upload (slow.php: 2 s) without the request passing for one the
	// client left.
	if resp, _ := raw(t, addr, "POST /slow.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"); statusOf(resp) != 200 || !strings.HasSuffix(resp, "slow done") {
		t.Errorf("a script working 2 s after its body with SESSIONGATE_READ_TIMEOUT=1s: %.80q, want 200 slow done", resp)
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

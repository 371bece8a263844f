package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSlowUploadDoesNotHoldSession: a page of the same session opened while
// an upload is still arriving is served at once. With PHP's files handler
// behind nginx the session is locked only once the script runs, after the
// body is in; the gateway used to take the session lock first and keep it
// for the whole upload, so every other tab of the user waited for it and
// got 503 after SESSIONGATE_SESSION_LOCK_TIMEOUT. A body up to 64 KiB is
// always read first; a larger one of known length with
// SESSIONGATE_REQUEST_BUFFERING=on (off, it streams to PHP).
func TestSlowUploadDoesNotHoldSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		buffering string
		size      int
	}{{"off", 1000}, {"on", 200 << 10}} {
		t.Run(fmt.Sprintf("%d bytes, buffering %s", tc.size, tc.buffering), func(t *testing.T) {
			slowUploadHoldsNoSession(t, tc.buffering, tc.size)
		})
	}
}

func slowUploadHoldsNoSession(t *testing.T, buffering string, size int) {
	st := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK_TIMEOUT=3s", "SESSIONGATE_REQUEST_BUFFERING=" + buffering}})
	cookie := st.newSession(t)
	g := st.gws[0]
	finish := startSlowUpload(t, g.URL, "/set.php?k=up&v=1", "x", cookie, size)
	res, body, _ := g.get(t, "/get.php", cookie)
	if res.StatusCode != 200 {
		t.Errorf("%d-byte upload under way: the same session's page got %d %q", size, res.StatusCode, body)
	}
	if status, b := finish(); status != 200 || b != "ok" {
		t.Errorf("%d-byte upload: %d %q", size, status, b)
	}
	if d := g.dump(t, cookie); !strings.Contains(string(d.Data), `"up":1`) {
		t.Errorf("upload's session change lost: %s", d.Data)
	}
}

// startSlowUpload begins a POST of size bytes to target with Expect:
// 100-continue, waits for the gateway's 100 Continue (it has started
// reading the body), and sends half the body. finish sends the rest and
// returns the response.
func startSlowUpload(t *testing.T, baseURL, target, host, cookie string, size int) (finish func() (status int, body string)) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nCookie: sessionid=%s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", target, host, cookie, size)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		c.Close()
		t.Fatalf("waiting for 100 Continue: %q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, strings.Repeat("u", size/2))
	return func() (int, string) {
		t.Helper()
		defer c.Close()
		io.WriteString(c, strings.Repeat("u", size-size/2))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
}

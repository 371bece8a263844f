package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSessionNewCookieBeforeWriteWaits: a page that starts a new session
// and streams its output sends the session cookie before it writes the
// session. A request the browser makes with that cookie meanwhile (a
// captcha image, an XHR), on either gateway, waits for the page, as with
// PHP's files handler, and then sees what the page stored; before, it found
// no session, started its own and replaced the browser's cookie, and the
// page's data was lost.
func TestSessionNewCookieBeforeWriteWaits(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"strict", "merge"} {
		t.Run(mode, func(t *testing.T) { newCookieBeforeWrite(t, mode) })
	}
}

// newCookieBeforeWrite: in merge mode the request does not wait, but finds
// the page's session (empty so far) instead of starting its own.
func newCookieBeforeWrite(t *testing.T, mode string) {
	s := startSessionStack(t, stackOpts{env: []string{"SESSIONGATE_SESSION_LOCK=" + mode}})
	goFile, q := markFile(t)
	resp, err := sessionClient.Get(s.gws[0].URL + "/new_session_streams.php?go=" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ck := ""
	for _, c := range resp.Cookies() {
		if c.Name == "sessionid" {
			ck = c.Value
		}
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); resp.StatusCode != 200 || ck == "" || line != "started\n" {
		t.Fatalf("page: %d cookie %q first line %q %v", resp.StatusCode, ck, line, err)
	}

	type result struct {
		d      sessionDump
		cookie string
	}
	got := make(chan result, 1)
	go func() {
		r, body, set := s.gws[1].get(t, "/get.php", ck)
		var d sessionDump
		if r.StatusCode == 200 {
			d = decodeDump(t, body)
		}
		got <- result{d, set}
	}()
	// Give the second request time to arrive; then the page ends.
	select {
	case r := <-got:
		got <- r
	case <-time.After(500 * time.Millisecond):
	}
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "done" {
		t.Fatalf("page's end: %q", rest)
	}
	r := <-got
	// Strict: it waited for the page and sees its data. Merge: it did not
	// wait, and saw the page's session, empty until the page's write.
	seen := strings.Contains(string(r.d.Data), `"csrf":"t0k"`) || mode == "merge" && string(r.d.Data) == "[]"
	if !seen || r.cookie != "" {
		t.Fatalf("a request with the new session's cookie, made while the page ran, saw session %s %s and set cookie %q; want the page's session and no new cookie",
			r.d.ID, r.d.Data, r.cookie)
	}
	if d := s.gws[0].dump(t, ck); !strings.Contains(string(d.Data), `"csrf":"t0k"`) {
		t.Fatalf("the page's session afterwards: %s", d.Data)
	}
}

func decodeDump(t testing.TB, body string) sessionDump {
	t.Helper()
	var d sessionDump
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Errorf("get.php: %v: %s", err, body)
	}
	return d
}

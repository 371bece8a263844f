package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestDjangoIdleStrayBytesNotNextAnswer: an HTTP upstream that sends a
// second response after a whole answer, while the kept-alive connection
// is idle (a confused WSGI server, a proxy's late error page), gave the
// next client's GET that stray response as its answer: another user's
// page. The gateway must see those bytes before it reuses the connection
// and give the next request its own answer, as nginx does.
func TestDjangoIdleStrayBytesNotNextAnswer(t *testing.T) {
	t.Parallel()
	fk := harness.StartFakeHTTP(t, func(r *http.Request) harness.FakeHTTPAnswer {
		who := r.URL.Query().Get("who")
		a := harness.FakeHTTPAnswer{Raw: []byte(httpOK("page of " + who))}
		if who == "alice" {
			a.Later, a.LaterDelay = []byte(httpOK("page of alice, again")), 20*time.Millisecond
		}
		return a
	})
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=127.0.0.1:9",
		"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_DJANGO_URL=http://" + fk.Addr,
		"SESSIONGATE_DJANGO_PATHS=/dj/",
	})
	get := func(who string) string {
		t.Helper()
		// Each its own client connection: two users.
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := c.Get(gw.URL + "/dj/?who=" + who)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return strings.TrimSpace(string(b))
	}
	if got := get("alice"); got != "page of alice" {
		t.Fatalf("alice got %q", got)
	}
	time.Sleep(300 * time.Millisecond) // the stray answer is in
	for _, m := range []string{"bob", "carol"} {
		if got := get(m); got != "page of "+m {
			t.Errorf("%s got %q, want %q", m, got, "page of "+m)
		}
	}
}

// httpOK is a whole HTTP/1.1 200 answer with body.
func httpOK(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

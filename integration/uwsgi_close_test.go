package integration

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestUWSGIClosingAfterEveryAnswerLosesNoPOST: uWSGI's HTTP socket closes
// its connection after every answer without saying `Connection: close`.
// A POST too large to be proven unread (over 4 KiB) that took such a
// connection before uWSGI's close reached the gateway got 502, though
// uWSGI never read it (a review measured 225 of 26980 from six clients).
// Once the gateway saw a kept-alive connection closed after one answer,
// such requests go on new connections.
func TestUWSGIClosingAfterEveryAnswerLosesNoPOST(t *testing.T) {
	t.Parallel()
	proj := faultProject(t)
	pkg, err := filepath.Abs("../wsgi/django")
	if err != nil {
		t.Fatal(err)
	}
	u := harness.StartUWSGI(t, harness.UWSGIOptions{Dir: proj, Module: "faultproj.wsgi:application",
		Env: []string{"SG_PKG=" + pkg, "SESSIONGATE_SESSION_KEYS=" + sessionTestKey, "SG_RUNLOG=" + filepath.Join(t.TempDir(), "runlog")}})
	gw := startDjangoGateway(t, u.URL())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	// A site's pages come first: the second GET meets the connection
	// uWSGI closed after the first one's answer. Without them, the first
	// POSTs could meet such a connection before the gateway saw one.
	for range 2 {
		res, err := client.Get(gw.URL + "/dj/slow/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET: %d", res.StatusCode)
		}
	}
	body := strings.Repeat("x", 6000)
	const clients, each = 6, 300
	var mu sync.Mutex
	failed := map[string]int{}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				res, err := client.Post(gw.URL+"/dj/slow/", "text/plain", strings.NewReader(body))
				what := ""
				if err != nil {
					what = err.Error()
				} else {
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != 200 || !strings.HasPrefix(string(b), "ok ") {
						what = fmt.Sprintf("%d %.80q", res.StatusCode, b)
					}
				}
				if what != "" {
					mu.Lock()
					failed[what]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("of %d POSTs of 6000 bytes behind uWSGI, failed: %v\ngateway log:\n%.3000s", clients*each, failed, gw.Logs.String())
	}
}

package integration

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"
)

// TestSessionMergePHPAndDjangoLoseNothing: in merge mode, PHP pages and
// Django views of one session, through two gateways, each count in keys of
// their own at the same time: every key ends exact, and no request fails.
func TestSessionMergePHPAndDjangoLoseNothing(t *testing.T) {
	t.Parallel()
	s := startDjangoStack(t, "SESSIONGATE_SESSION_LOCK=merge")
	ck := s.newSession(t)
	const clients, each = 6, 5
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				target := "/incr.php?k=p" + strconv.Itoa(c)
				if c%2 == 1 {
					target = "/accounts/counter/?key=d" + strconv.Itoa(c)
				}
				resp, body, _ := s.gws[(c/2)%2].get(t, target, ck)
				if resp.StatusCode != 200 || body != strconv.Itoa(i) {
					t.Errorf("client %d (%s) count %d: %d %q", c, target, i, resp.StatusCode, body)
				}
			}
		}(c)
	}
	wg.Wait()
	var got map[string]any
	if err := json.Unmarshal(s.gws[0].dump(t, ck).Data, &got); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < clients; c++ {
		k := "p" + strconv.Itoa(c)
		if c%2 == 1 {
			k = "d" + strconv.Itoa(c)
		}
		if v := got[k]; v != float64(each) {
			t.Errorf("key %s = %v, want %d (session %v)", k, v, each, got)
		}
	}
	if got["user"] != "ana" {
		t.Errorf("user lost: %v", got)
	}
}

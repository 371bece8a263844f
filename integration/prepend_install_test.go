package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge"
)

// TestPrependReplacedWhilePHPRuns: an upgrade writes the prepend again
// while php-fpm serves pages. Written with a shell's `>`, the file was
// empty or half-written for a moment: pages failed with PHP's parse error
// (500), or ran without it on PHP's own session, the user's session not
// loaded and its change lost (108 of 2726 requests while it was rewritten
// 20 times). `gateway php-prepend -o` replaces it in one rename: every
// page runs with the old prepend or the new one, and no count is lost.
func TestPrependReplacedWhilePHPRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prepend := filepath.Join(dir, "sessiongate-prepend.php")
	if err := os.WriteFile(prepend, sessionbridge.PrependPHP, 0o644); err != nil {
		t.Fatal(err)
	}
	harness.ShareWithPHP(t, dir)
	s := startSessionStack(t, stackOpts{prependPath: prepend})
	gw := s.gws[0]
	// The release before: the same prepend with a line more, put in
	// place in one rename as well.
	older := append(append([]byte{}, sessionbridge.PrependPHP...), "\n// the release before\n"...)
	bin := buildGateway(t)
	ck := s.newSession(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var done atomic.Int64
	failed := map[string]int{}
	for c := range 4 {
		wg.Go(func() {
			key := fmt.Sprintf("c%d", c)
			for n := 1; ; n++ {
				select {
				case <-stop:
					done.Add(int64(n - 1))
					return
				default:
				}
				res, body, _ := gw.get(t, "/incr.php?k="+key, ck)
				if res.StatusCode != 200 || body != fmt.Sprint(n) {
					mu.Lock()
					failed[fmt.Sprintf("%d %.60q (count %d)", res.StatusCode, body, n)]++
					mu.Unlock()
					done.Add(int64(n))
					return
				}
			}
		})
	}
	for i := range 20 {
		time.Sleep(100 * time.Millisecond)
		if i%2 == 0 {
			tmp := prepend + ".older"
			if err := os.WriteFile(tmp, older, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, prepend); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if out, err := exec.Command(bin, "php-prepend", "-o", prepend).CombinedOutput(); err != nil {
			t.Fatalf("gateway php-prepend -o: %v %s", err, out)
		}
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if len(failed) > 0 || strings.Contains(gw.Logs.String(), "without running the gateway's prepend") {
		t.Errorf("while the prepend was replaced 20 times (%d pages): %v\n%.3000s", done.Load(), failed, gw.Logs.String())
	}
}

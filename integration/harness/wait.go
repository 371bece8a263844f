package harness

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// waitLogHas waits until log() holds want: a server's own word that it
// bound our address, so that an answer there cannot come from another
// server that took the port. It fails early when p exits.
func waitLogHas(p *proc, log func() string, want string, deadline time.Time) error {
	for !strings.Contains(log(), want) {
		if p.exited() {
			return fmt.Errorf("exited: %v", p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q in its log in time", strings.TrimSpace(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitAnswer waits until url gives any HTTP answer through client, failing
// early when p exits.
func waitAnswer(p *proc, client *http.Client, url string, deadline time.Time) error {
	for {
		res, err := client.Get(url)
		if err == nil {
			res.Body.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("exited: %v", p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no HTTP answer from %s in time: %w", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

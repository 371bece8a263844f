package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestMoreConnsThanWorkersBurstThenQuiet: SESSIONGATE_PHP_MAX_CONNS above
// pm.max_children (the default 8 against Debian's pool of 5), a burst of
// quick requests, then nothing. Each php-fpm worker stays with the
// kept-alive connection it accepted, so the burst's extra connections sit
// in php-fpm's listen queue while the workers wait on connections idle in
// the gateway's pool. With more requests coming, a finished connection is
// closed for them; here none come, and the pool must free a worker by
// itself: every request of the burst gets its page, none waits for the
// 504 of SESSIONGATE_PHP_TIMEOUT.
func TestMoreConnsThanWorkersBurstThenQuiet(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	for _, conns := range []int{4, 8} {
		t.Run(fmt.Sprintf("2 workers, %d connections", conns), func(t *testing.T) {
			t.Parallel()
			burstThenQuiet(t, conns)
		})
	}
}

func burstThenQuiet(t *testing.T, conns int) {
	root := gwSite(t)
	writeTree(t, root, map[string]string{"quick.php": `<?php usleep(10000); echo 'quick';`})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.PHPMaxConns = conns
		c.PHPTimeout = 5 * time.Second
	})
	client := &http.Client{Timeout: 15 * time.Second}
	for round := range 4 {
		var wg sync.WaitGroup
		results := make([]string, conns)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				res, err := client.Get(g.URL + "/quick.php")
				if err != nil {
					results[i] = err.Error()
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				results[i] = fmt.Sprintf("%d %s", res.StatusCode, body)
				if res.StatusCode == 200 {
					t.Logf("round %d request %d: %v", round, i, time.Since(start).Round(time.Millisecond))
				}
			}()
		}
		wg.Wait()
		for i, r := range results {
			if r != "200 quick" {
				t.Errorf("round %d, request %d of the burst: %s", round, i, r)
			}
		}
		time.Sleep(300 * time.Millisecond) // quiet
	}
}

// TestMoreConnsThanWorkersLargeBody: the request a new connection carries
// may be an upload larger than the socket buffers, whose write blocks while
// php-fpm has not accepted the connection. The only worker runs a slow
// script on the other connection when the upload dials; once that script
// ends, its connection is closed for the upload rather than kept, before
// the write timeout.
func TestMoreConnsThanWorkersLargeBody(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	running := filepath.Join(harness.PHPTempDir(t), "slow-running")
	writeTree(t, root, map[string]string{
		"slow.php":   `<?php touch('` + running + `'); usleep(500000); echo 'slow';`,
		"upload.php": `<?php echo strlen(file_get_contents('php://input'));`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.PHPMaxConns = 2
		c.PHPTimeout = 5 * time.Second
		c.PHPWriteTimeout = 5 * time.Second
		c.MaxBody = 64 << 20
	})
	client := &http.Client{Timeout: 15 * time.Second}
	slow := make(chan string, 1)
	go func() {
		res, err := client.Get(g.URL + "/slow.php")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		slow <- fmt.Sprintf("%d %s", res.StatusCode, b)
	}()
	waitForFile(t, running, "slow.php")
	const size = 32 << 20
	start := time.Now()
	res, err := client.Post(g.URL+"/upload.php", "application/octet-stream", bytes.NewReader(make([]byte, size)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != fmt.Sprint(size) {
		t.Errorf("upload: %d %q after %v", res.StatusCode, body, time.Since(start).Round(time.Millisecond))
	}
	if got := <-slow; got != "200 slow" {
		t.Errorf("slow: %s", got)
	}
}

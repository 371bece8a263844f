package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
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

// TestPoolFullWaitsUpToPHPTimeout: SESSIONGATE_PHP_MAX_CONNS says "a
// request finding them all busy waits for one, and that wait counts
// against its SESSIONGATE_PHP_TIMEOUT". With one connection and a 3 s
// timeout: a request queued 1.2 s behind another, whose script then takes
// 1 s more, gets its page; one whose script takes 2 s gets 504 at the 3 s
// (it used to get its page after 3.2 s: the wait did not count); one
// queued behind a 5 s download that keeps sending gets 504 once it has
// waited the 3 s, while the download ends whole.
func TestPoolFullWaitsUpToPHPTimeout(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	writeTree(t, root, map[string]string{
		"nap.php": `<?php usleep((int)$_GET['ms'] * 1000); echo 'napped';`,
		"drip.php": `<?php while (ob_get_level()) { ob_end_flush(); }
for ($i = 0; $i < 10; $i++) { echo "drip$i\n"; flush(); usleep(500000); }`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.PHPMaxConns = 1
		c.PHPTimeout = 3 * time.Second
	})
	client := &http.Client{Timeout: 20 * time.Second}
	type result struct {
		code int
		body string
		took time.Duration
	}
	run := func(target string) <-chan result {
		out := make(chan result, 1)
		go func() {
			start := time.Now()
			res, err := client.Get(g.URL + target)
			if err != nil {
				out <- result{code: -1, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			out <- result{res.StatusCode, string(b), time.Since(start)}
		}()
		return out
	}

	for _, tc := range []struct {
		ms   int
		code int
	}{{1000, 200}, {2000, http.StatusGatewayTimeout}} {
		first := run("/nap.php?ms=1500")
		time.Sleep(300 * time.Millisecond) // the first holds the one connection
		queued := run(fmt.Sprintf("/nap.php?ms=%d", tc.ms))
		if r := <-first; r.code != 200 || r.body != "napped" {
			t.Fatalf("the request holding the connection: %d %q", r.code, r.body)
		}
		if r := <-queued; r.code != tc.code || r.took > 4500*time.Millisecond {
			t.Errorf("a request that waited ~1.2 s for the connection, then ran %d ms (PHP_TIMEOUT 3s): %d %q after %v, want %d within about 3 s", tc.ms, r.code, r.body, r.took, tc.code)
		}
	}

	drip := run("/drip.php")
	time.Sleep(300 * time.Millisecond)
	starved := run("/nap.php?ms=10")
	if r := <-starved; r.code != http.StatusGatewayTimeout || r.took < 2500*time.Millisecond {
		t.Errorf("a request whose connection stayed busy past PHP_TIMEOUT: %d %q after %v, want 504 after about 3 s", r.code, r.body, r.took)
	}
	if r := <-drip; r.code != 200 || !strings.HasSuffix(r.body, "drip9\n") {
		t.Errorf("the download holding the connection: %d %q", r.code, r.body)
	}
}

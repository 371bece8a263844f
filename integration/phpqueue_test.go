package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// TestPHPQueuedRequestBoundedByTimeout: with the one php-fpm worker busy
// (pm.max_children = 1, SESSIONGATE_PHP_MAX_CONNS=1), a second request
// waits for the connection; SESSIONGATE_PHP_TIMEOUT bounds that wait and
// its own script together, as fastcgi_read_timeout bounds a request
// waiting in php-fpm's listen queue behind nginx. The wait used to come on
// top of a whole timeout: with 2 s, a slow script queued behind a 1.5 s
// one got its 504 after 3.5 s.
func TestPHPQueuedRequestBoundedByTimeout(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	writeTree(t, root, map[string]string{
		"busy.php":  `<?php usleep(1500000); echo 'busy done';`,
		"sleep.php": `<?php sleep(6); echo 'never in time';`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	gw := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_PHP_MAX_CONNS=1",
		"SESSIONGATE_PHP_TIMEOUT=2s",
	})
	client := &http.Client{Timeout: 20 * time.Second}
	busy := make(chan int, 1)
	go func() {
		res, err := client.Get(gw.URL + "/busy.php")
		if err != nil {
			busy <- 0
			return
		}
		res.Body.Close()
		busy <- res.StatusCode
	}()
	// The busy request holds the one connection before the second comes.
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var held float64
		for k, v := range metricstest.Scrape(t, gw.Admin+"/metrics") {
			if strings.HasPrefix(k, "sessiongate_fcgi_connections{") && strings.Contains(k, `state="busy"`) {
				held += v
			}
		}
		if held == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the first request never took the php-fpm connection")
		}
	}
	start := time.Now()
	res, err := client.Get(gw.URL + "/sleep.php")
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("a 6 s script queued behind a 1.5 s one, SESSIONGATE_PHP_TIMEOUT=2s: %d, want 504", res.StatusCode)
	}
	if took > 3*time.Second {
		t.Errorf("504 after %v with SESSIONGATE_PHP_TIMEOUT=2s, want about 2 s (not the wait plus the timeout)", took.Round(time.Millisecond))
	}
	if code := <-busy; code != 200 {
		t.Errorf("the request holding the worker: %d, want 200", code)
	}
}

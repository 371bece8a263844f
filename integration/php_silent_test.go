package integration

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// silentSite is a root whose pid.php says which php-fpm worker ran it.
func silentSite(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"pid.php": "<?php echo getmypid();"})
	return root
}

// gatewayOnPools starts the gateway binary, sessions off, in front of
// pools, all serving root, with extra variables. Its periodic checks are
// off unless extra sets SESSIONGATE_PHP_CHECK_INTERVAL, so that each test
// sees a silent pool found the way it tests.
func gatewayOnPools(t *testing.T, root string, pools []*harness.PHPFPM, extra ...string) *gwProc {
	t.Helper()
	addrs := make([]string, len(pools))
	for i, p := range pools {
		addrs[i] = p.Addr
	}
	return startBinary(t, buildGateway(t), append([]string{
		"SESSIONGATE_PHP_FPM=" + strings.Join(addrs, ","),
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_PHP_CHECK_INTERVAL=0",
	}, extra...))
}

// twoPools starts two php-fpm pools of 2 workers on one silentSite and
// the gateway in front of both (gatewayOnPools, with extra).
func twoPools(t *testing.T, extra ...string) (live, stopped *harness.PHPFPM, gw *gwProc) {
	t.Helper()
	root := silentSite(t)
	live = harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	stopped = harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	return live, stopped, gatewayOnPools(t, root, []*harness.PHPFPM{live, stopped}, extra...)
}

// waitPoolServes waits until a request through gw runs on one of pool's
// workers.
func waitPoolServes(t *testing.T, gw *gwProc, pool *harness.PHPFPM) {
	t.Helper()
	eventually(t, 10*time.Second, "a request to reach the pool that answers again", func() bool {
		code, body := getStatus(t, gw.URL+"/pid.php")
		pid, _ := strconv.Atoi(body)
		return code == 200 && slices.Contains(pool.Workers(), pid)
	})
}

// waitReadyAgain waits until gw's /readyz answers 200, once php-fpm
// answers again.
func waitReadyAgain(t *testing.T, gw *gwProc) {
	t.Helper()
	eventually(t, 10*time.Second, "readyz to be 200 once php-fpm answers", func() bool {
		code, _ := getStatus(t, gw.Admin+"/readyz")
		return code == 200
	})
}

// checkFPMLogQuiet fails t for each WARNING or ERROR line in fpm's log.
func checkFPMLogQuiet(t *testing.T, fpm *harness.PHPFPM, during string) {
	t.Helper()
	fpmLog, err := os.ReadFile(fpm.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(fpmLog), "\n") {
		if strings.Contains(line, "WARNING") || strings.Contains(line, "ERROR") {
			t.Errorf("php-fpm %s logged %s: %s", fpm.Addr, during, line)
		}
	}
}

// TestPHPFrozenWithoutTrafficFoundByPeriodicCheck: a php-fpm pool stopped
// while no request goes to it, and nothing polls /readyz, is found by the
// gateway's own check (SESSIONGATE_PHP_CHECK_INTERVAL) within the interval
// and the check's 2 s. Every request after that goes to the other pool at
// once, none waiting out SESSIONGATE_PHP_TIMEOUT (60 s by default, as
// here); once thawed, the pool is back in rotation. The live pool, also
// quiet between requests, is checked too and stays in, and php-fpm logs
// nothing about the checks. Before, the first request sent to the stopped
// pool waited the whole timeout for a 504.
func TestPHPFrozenWithoutTrafficFoundByPeriodicCheck(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	live, stopped, gw := twoPools(t, "SESSIONGATE_PHP_CHECK_INTERVAL=1s")
	for i := 0; i < 4; i++ { // both pools serve, and hold idle connections
		if code, body := getStatus(t, gw.URL+"/pid.php"); code != 200 {
			t.Fatalf("pid.php before the stop: %d %q", code, body)
		}
	}
	thaw := stopPool(t, stopped)
	line := waitForLog(t, gw.stderr, "answers nothing; out of rotation")
	if !strings.Contains(line, stopped.Addr) || !strings.Contains(line, "periodic check") {
		t.Errorf("the log line does not name the stopped pool %s and the periodic check: %s", stopped.Addr, line)
	}
	for i := 0; i < 12; i++ {
		start := time.Now()
		code, body := getStatus(t, gw.URL+"/pid.php")
		if pid, _ := strconv.Atoi(body); code != 200 || !slices.Contains(live.Workers(), pid) {
			t.Fatalf("request %d with the stopped pool found out: %d %q, want a worker of %v", i, code, body, live.Workers())
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("request %d took %v: it waited on the stopped pool", i, d)
		}
	}
	time.Sleep(3 * time.Second) // the live pool, quiet, is checked again
	if n := strings.Count(gw.stderr.String(), "answers nothing"); n != 1 {
		t.Fatalf("%d pools taken out, want the stopped one only:\n%s", n, gw.stderr.String())
	}
	thaw()
	waitForLog(t, gw.stderr, "answers again; back in rotation")
	waitPoolServes(t, gw, stopped)
	checkFPMLogQuiet(t, live, "during the checks")
	checkFPMLogQuiet(t, stopped, "during the checks")
}

// TestPHPStoppedBackendLeavesRotation: one of two php-fpm pools stopped
// (SIGSTOP on its master and workers: the kernel still accepts its
// connections and nobody answers, as when php-fpm 8.2's master spins on a
// scoreboard lock a killed worker held) costs one request
// SESSIONGATE_PHP_TIMEOUT and a 504, then is skipped, with a log line
// naming it, until it answers again; then it serves its share again.
// Before, every second request waited the whole timeout for a 504 for as
// long as the pool stayed stopped.
func TestPHPStoppedBackendLeavesRotation(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	live, stopped, gw := twoPools(t, "SESSIONGATE_PHP_TIMEOUT=1s")
	thaw := stopPool(t, stopped)
	codes := map[int]int{}
	for i := 0; i < 12; i++ {
		code, body := getStatus(t, gw.URL+"/pid.php")
		codes[code]++
		if code == 200 {
			if pid, _ := strconv.Atoi(body); !slices.Contains(live.Workers(), pid) {
				t.Fatalf("pid.php answered %q, not a worker of the running pool %v", body, live.Workers())
			}
		}
		if code == 504 {
			// The probe that confirms the silence runs after the 504.
			waitForLog(t, gw.stderr, "answers nothing; out of rotation")
		}
	}
	if codes[504] != 1 || codes[200] != 11 {
		t.Fatalf("12 requests with one of two pools stopped: %v, want one 504 and eleven 200\n%s", codes, gw.stderr.String())
	}
	if line := waitForLog(t, gw.stderr, "answers nothing"); !strings.Contains(line, stopped.Addr) {
		t.Errorf("the log line does not name the stopped pool %s: %s", stopped.Addr, line)
	}
	if code, body := getStatus(t, gw.Admin+"/readyz"); code != 200 {
		t.Errorf("readyz with one pool of two stopped: %d %q", code, body)
	}

	thaw()
	waitForLog(t, gw.stderr, "answers again; back in rotation")
	waitPoolServes(t, gw, stopped)
}

// TestPHPStoppedOnlyBackendFailsReadiness: with its only php-fpm stopped,
// the gateway's /readyz says so (503 naming php-fpm) once a request has
// waited out SESSIONGATE_PHP_TIMEOUT for nothing, though php-fpm's socket
// still accepts connections, and is 200 again once php-fpm answers.
// Requests still go to php-fpm meanwhile (there is no other): 504 each.
// On a TCP port and on a unix socket.
func TestPHPStoppedOnlyBackendFailsReadiness(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	for _, unix := range []bool{false, true} {
		t.Run(map[bool]string{false: "TCP", true: "UnixSocket"}[unix], func(t *testing.T) {
			t.Parallel()
			stoppedOnlyBackend(t, unix)
		})
	}
}

func stoppedOnlyBackend(t *testing.T, unix bool) {
	root := silentSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2, Unix: unix})
	gw := gatewayOnPools(t, root, []*harness.PHPFPM{fpm}, "SESSIONGATE_PHP_TIMEOUT=1s")
	if code, body := getStatus(t, gw.URL+"/pid.php"); code != 200 {
		t.Fatalf("pid.php: %d %q", code, body)
	}
	thaw := stopPool(t, fpm)
	if code, _ := getStatus(t, gw.URL+"/pid.php"); code != 504 {
		t.Fatalf("pid.php with php-fpm stopped: %d, want 504", code)
	}
	waitForLog(t, gw.stderr, "answers nothing; out of rotation")
	code, body := getStatus(t, gw.Admin+"/readyz")
	if code != 503 || !strings.Contains(body, "php-fpm") || !strings.Contains(body, fpm.Addr) {
		t.Errorf("readyz with php-fpm stopped: %d %q, want 503 naming php-fpm at %s", code, body, fpm.Addr)
	}
	healthy := `sessiongate_fcgi_backend_healthy{backend="` + fpm.Addr + `"}`
	if v, ok := metricstest.Scrape(t, gw.Admin+"/metrics")[healthy]; !ok || v != 0 {
		t.Errorf("%s with php-fpm stopped: %v (served: %v), want 0", healthy, v, ok)
	}
	if code, _ := getStatus(t, gw.URL+"/pid.php"); code != 504 {
		t.Errorf("pid.php with php-fpm still stopped: %d, want 504", code)
	}
	thaw()
	waitReadyAgain(t, gw)
	if code, body := getStatus(t, gw.URL+"/pid.php"); code != 200 {
		t.Errorf("pid.php once php-fpm answers: %d %q", code, body)
	}
	if v := metricstest.Scrape(t, gw.Admin+"/metrics")[healthy]; v != 1 {
		t.Errorf("%s once php-fpm answers: %v, want 1", healthy, v)
	}
}

// TestPHPFrozenWithoutTrafficFoundByReadiness: a php-fpm pool stopped
// while no request goes to it is found by /readyz, which asks a worker to
// answer (FCGI_GET_VALUES), before any request waits on it. With two pools
// the other keeps /readyz at 200 and serves every request, none a 504;
// with one, /readyz answers 503 naming it. Before, /readyz only dialed,
// which the kernel accepts for a stopped pool, and the first request sent
// there waited out SESSIONGATE_PHP_TIMEOUT for a 504.
func TestPHPFrozenWithoutTrafficFoundByReadiness(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	t.Run("OneOfTwo", func(t *testing.T) {
		t.Parallel()
		_, stopped, gw := twoPools(t, "SESSIONGATE_PHP_TIMEOUT=5s")
		stopPool(t, stopped)
		if code, body := getStatus(t, gw.Admin+"/readyz"); code != 200 {
			t.Fatalf("readyz with one pool of two stopped: %d %q", code, body)
		}
		line := waitForLog(t, gw.stderr, "answers nothing; out of rotation")
		if !strings.Contains(line, stopped.Addr) || !strings.Contains(line, "readiness check") {
			t.Errorf("the log line does not name the stopped pool %s and the readiness check: %s", stopped.Addr, line)
		}
		for i := 0; i < 12; i++ {
			if code, body := getStatus(t, gw.URL+"/pid.php"); code != 200 {
				t.Fatalf("request %d with the stopped pool found out: %d %q", i, code, body)
			}
		}
	})
	t.Run("Only", func(t *testing.T) {
		t.Parallel()
		root := silentSite(t)
		fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
		gw := gatewayOnPools(t, root, []*harness.PHPFPM{fpm})
		thaw := stopPool(t, fpm)
		code, body := getStatus(t, gw.Admin+"/readyz")
		if code != 503 || !strings.Contains(body, "php-fpm") || !strings.Contains(body, fpm.Addr) {
			t.Errorf("readyz with the only pool stopped: %d %q, want 503 naming php-fpm at %s", code, body, fpm.Addr)
		}
		waitForLog(t, gw.stderr, "answers nothing; out of rotation")
		thaw()
		waitReadyAgain(t, gw)
	})
}

// stopPool stops every process of fpm (SIGSTOP) and returns what resumes
// them, which t.Cleanup also runs if the test has not.
func stopPool(t *testing.T, fpm *harness.PHPFPM) (thaw func()) {
	t.Helper()
	signalPool(fpm, syscall.SIGSTOP)
	var once sync.Once
	thaw = func() { once.Do(func() { signalPool(fpm, syscall.SIGCONT) }) }
	t.Cleanup(thaw)
	return thaw
}

// TestPHPReadinessWithEveryWorkerHeldIdle: with as many connections as
// php-fpm has workers (SESSIONGATE_PHP_MAX_CONNS = pm.max_children), the
// gateway's idle kept-alive connections hold every worker once traffic
// stops. /readyz's probe then takes one of them and closes it, freeing a
// worker to answer it; a probe on a connection of its own would wait in
// php-fpm's listen queue, and /readyz would fail on a healthy pool. php-fpm
// logs nothing about the probes.
func TestPHPReadinessWithEveryWorkerHeldIdle(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	writeTree(t, root, map[string]string{"nap.php": "<?php usleep(50000); echo getmypid();"})
	const workers = 2
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: workers})
	gw := gatewayOnPools(t, root, []*harness.PHPFPM{fpm}, "SESSIONGATE_PHP_MAX_CONNS="+strconv.Itoa(workers))
	// Two requests at once leave two connections idle, each on its own
	// worker (a worker serves one connection until it is closed). Tried
	// again when they did not overlap, or when the gateway closed one
	// because the other's answer took over 100 ms to begin (it frees a
	// worker for a connection that may wait in php-fpm's listen queue).
	idle := `sessiongate_fcgi_connections{backend="` + fpm.Addr + `",state="idle"}`
	eventually(t, 20*time.Second, "an idle connection on every worker", func() bool {
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, body := getStatus(t, gw.URL+"/nap.php"); code != 200 {
					t.Errorf("nap.php: %d %q", code, body)
				}
			}()
		}
		wg.Wait()
		return metricstest.Scrape(t, gw.Admin+"/metrics")[idle] == workers
	})
	time.Sleep(1200 * time.Millisecond) // past the "answered within the last second" shortcut
	for i := 0; i < 3; i++ {
		if code, body := getStatus(t, gw.Admin+"/readyz"); code != 200 {
			t.Fatalf("readyz %d on a healthy pool whose workers the idle connections hold: %d %q\n%s", i, code, body, gw.stderr.String())
		}
		time.Sleep(1100 * time.Millisecond)
	}
	if strings.Contains(gw.stderr.String(), "answers nothing") {
		t.Fatalf("the healthy pool was taken out:\n%s", gw.stderr.String())
	}
	if code, _ := getStatus(t, gw.URL+"/nap.php"); code != 200 {
		t.Fatalf("nap.php after the probes: %d", code)
	}
	checkFPMLogQuiet(t, fpm, "during the probes")
}

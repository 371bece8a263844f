package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// gwHeld is what a gateway binary holds that a request may leave behind:
// goroutines, open spool files (unlinked temp files of request bodies and
// read-ahead responses), client connections, and the FastCGI pool's busy
// connections and waiting requests.
type gwHeld struct {
	goroutines     int
	spools         []string
	clients        int
	busy, waiting  float64
	pprofAvailable bool
	// goroutineProfile is the profile the count comes from, shown when
	// goroutines outlive what made them.
	goroutineProfile string
}

// heldBy reads what the gateway p holds, through its admin listener
// (SESSIONGATE_ADMIN_PPROF=on) and /proc. listen is its public port.
func heldBy(t *testing.T, p *gwProc, listen string) gwHeld {
	t.Helper()
	var h gwHeld
	once := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if res, err := once.Get(p.Admin + "/debug/pprof/goroutine?debug=1"); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		_, err := fmt.Sscanf(string(b), "goroutine profile: total %d", &h.goroutines)
		h.pprofAvailable = err == nil
		h.goroutineProfile = string(b)
	}
	for k, v := range metricstest.Scrape(t, p.Admin+"/metrics") {
		switch {
		case strings.HasPrefix(k, "sessiongate_fcgi_connections{") && strings.Contains(k, `state="busy"`):
			h.busy += v
		case strings.HasPrefix(k, "sessiongate_fcgi_waiting_requests{"):
			h.waiting += v
		}
	}
	pid := p.cmd.Process.Pid
	clientSockets := map[string]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			// local address, state not LISTEN (0A): a client's socket.
			if len(fs) > 9 && fs[3] != "0A" && strings.HasSuffix(fs[1], fmt.Sprintf(":%04X", mustAtoi(t, listen))) {
				clientSockets[fs[9]] = true
			}
		}
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		l, _ := os.Readlink(filepath.Join(dir, e.Name()))
		switch {
		case strings.Contains(l, "sessiongate-") && strings.HasSuffix(l, "(deleted)"):
			h.spools = append(h.spools, l)
		case strings.HasPrefix(l, "socket:[") && clientSockets[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")]:
			h.clients++
		}
	}
	return h
}

func mustAtoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}

// TestClientsLeavingLeaveNothingHeld: clients that leave in the middle of
// their request, many at once, in front of real php-fpm and Redis, leave
// nothing behind in the gateway binary once it has noticed: no goroutine
// above what it ran before (the Redis unlock subscription included), no
// open spool file of a body or a read-ahead response, no client
// connection, no busy FastCGI connection or waiting request, no session
// lock in Redis. Each case: an upload cut mid-body (known length, spooled,
// and chunked), a streamed page cut mid-response (read ahead into a temp
// file), requests given up while they wait for their session's lock, a
// static range download cut short.
func TestClientsLeavingLeaveNothingHeld(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "redis-server")
	root := sessionFixtureRoot(t)
	writeTree(t, root, map[string]string{
		"echo.php":   `<?php echo 'len=' . strlen(file_get_contents('php://input'));`,
		"stream.php": `<?php for ($i = 0; $i < 100; $i++) { echo str_repeat('x', 65536); flush(); usleep(20000); }`,
		"big.bin":    strings.Repeat("0123456789abcdef", 1<<16),
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 3})
	red := harness.StartRedis(t)
	p := startBinary(t, buildGateway(t), append(drainSessionEnv(t, fpm, root, red),
		"SESSIONGATE_PHP_MAX_CONNS=3",
		"SESSIONGATE_MAX_BODY=4m",
		"SESSIONGATE_ADMIN_PPROF=on",
		"SESSIONGATE_IDLE_TIMEOUT=1s",
	))
	addr := strings.TrimPrefix(p.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)

	// The baseline once a session was locked: the store's subscription
	// runs from then on.
	ck := (&sessionStack{gws: []*sessionGW{{URL: p.URL}}}).newSession(t)
	if _, done := holdSession(t, p, 1); !strings.HasPrefix(<-done, "200") {
		t.Fatal("hold.php failed")
	}
	var base gwHeld
	eventually(t, 10*time.Second, "the gateway to close the set-up's idle client connections", func() bool {
		base = heldBy(t, p, port)
		return base.clients == 0
	})
	if !base.pprofAvailable {
		t.Fatal("no goroutine profile on the admin listener")
	}

	leave := func(n int, request string, readFirst int, after time.Duration) {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				io.WriteString(c, request)
				if readFirst > 0 {
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					io.ReadFull(c, make([]byte, readFirst))
				}
				time.Sleep(after)
			}()
		}
		wg.Wait()
	}
	settled := func(what string) {
		t.Helper()
		var h gwHeld
		var locks string
		ok := poll(10*time.Second, func() bool {
			h = heldBy(t, p, port)
			locks, _ = red.Do("KEYS", "*:lock")
			return h.goroutines <= base.goroutines && len(h.spools) == 0 && h.clients == 0 &&
				h.busy == 0 && h.waiting == 0 && strings.TrimSpace(locks) == ""
		})
		if !ok {
			t.Errorf("%s: still held 10 s after the clients left: %d goroutines (%d before), spool files %v, %d client connections, %v busy FastCGI connections, %v waiting, session locks %q",
				what, h.goroutines, base.goroutines, h.spools, h.clients, h.busy, h.waiting, locks)
			if h.goroutines > base.goroutines {
				t.Logf("goroutines before:\n%s\nnow:\n%s", base.goroutineProfile, h.goroutineProfile)
			}
		}
	}

	part := strings.Repeat("a", 100<<10)
	leave(6, "POST /echo.php HTTP/1.1\r\nHost: x\r\nCookie: sessionid="+ck+"\r\nContent-Length: 300000\r\n\r\n"+part, 0, 100*time.Millisecond)
	settled("uploads cut mid-body")
	leave(6, "POST /echo.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+fmt.Sprintf("%x\r\n%s\r\n", len(part), part), 0, 100*time.Millisecond)
	settled("chunked uploads cut mid-body")
	leave(4, "GET /stream.php HTTP/1.1\r\nHost: x\r\n\r\n", 100<<10, 50*time.Millisecond)
	settled("streamed pages cut mid-response")
	leave(6, "GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100-\r\n\r\n", 10<<10, 0)
	settled("static range downloads cut")

	held, done := holdSession(t, p, 1500)
	leave(6, "GET /nosession.php HTTP/1.1\r\nHost: x\r\nCookie: sessionid="+held+"\r\n\r\n", 0, 200*time.Millisecond)
	if got := <-done; !strings.HasPrefix(got, "200") {
		t.Errorf("the request holding the session: %s", got)
	}
	settled("requests given up in the lock wait")
}

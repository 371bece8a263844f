package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// soakTally is what the soak's clients saw: status codes by kind of
// request, and for each session the increments acknowledged (200), those
// whose outcome is unknown (a 502, 503 or 504, or a client that left: the
// write may or may not have landed) and the counter values the 200s showed.
type soakTally struct {
	mu      sync.Mutex
	codes   map[string]map[int]int
	acked   map[string]int
	unknown map[string]int
	shown   map[string]map[int]int
	lastOK  map[string]time.Time // kind -> last 200
	bad     []string             // answers that break the contract
	// longest is the slowest answer of each kind and status since the
	// last takeLongest: logged per fault, to see how long requests
	// waited through it.
	longest map[string]time.Duration
}

func newSoakTally() *soakTally {
	return &soakTally{codes: map[string]map[int]int{}, acked: map[string]int{}, unknown: map[string]int{},
		shown: map[string]map[int]int{}, lastOK: map[string]time.Time{}}
}

// soakFaultCodes are the statuses a request may get while a backend is
// down, stalled or restarting (README: 502 refused or dropped, 503 Redis
// unavailable or a session busy past its lock timeout, 504 timeouts).
var soakFaultCodes = []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// record files one answer. session is "" for a request that counts
// nothing; code 0 means the client left on purpose (its increment is
// unknown); err is a transport error, which on a request the client did
// not give up is a hang or a dropped connection: the contract is broken.
func (s *soakTally) record(kind, session string, code int, body string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.bad = append(s.bad, fmt.Sprintf("%s: %v", kind, err))
		return
	}
	if s.codes[kind] == nil {
		s.codes[kind] = map[int]int{}
	}
	s.codes[kind][code]++
	switch {
	case code == 200:
		s.lastOK[kind] = time.Now()
	case code == 0 || slices.Contains(soakFaultCodes, code):
	default:
		s.bad = append(s.bad, fmt.Sprintf("%s: %d %q", kind, code, body))
	}
	if session == "" {
		return
	}
	if code != 200 {
		s.unknown[session]++
		return
	}
	n, perr := strconv.Atoi(strings.TrimSpace(body))
	if perr != nil || n <= 0 {
		s.bad = append(s.bad, fmt.Sprintf("%s: 200 with %q, not a counter", kind, body))
		return
	}
	s.acked[session]++
	if s.shown[session] == nil {
		s.shown[session] = map[int]int{}
	}
	s.shown[session][n]++
}

// took notes how long a request of kind (with its status) took since st.
func (s *soakTally) took(kind string, st time.Time) {
	d := time.Since(st)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.longest == nil {
		s.longest = map[string]time.Duration{}
	}
	if d > s.longest[kind] {
		s.longest[kind] = d
	}
}

// takeLongest returns longest and starts it again.
func (s *soakTally) takeLongest() map[string]time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.longest
	s.longest = nil
	return l
}

// snapshot copies the codes seen so far, for since.
func (s *soakTally) snapshot() map[string]map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[int]int{}
	for k, m := range s.codes {
		out[k] = maps.Clone(m)
	}
	return out
}

// since is the answers other than 200 seen after snapshot returned old.
func (s *soakTally) since(old map[string]map[int]int) map[string]map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[int]int{}
	for k, m := range s.codes {
		for code, n := range m {
			if d := n - old[k][code]; code != 200 && d > 0 {
				if out[k] == nil {
					out[k] = map[int]int{}
				}
				out[k][code] = d
			}
		}
	}
	return out
}

// passedSince reports whether each kind got a 200 after since.
func (s *soakTally) passedSince(since time.Time, kinds ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range kinds {
		if !s.lastOK[k].After(since) {
			return false
		}
	}
	return true
}

// soakRedisPID is redis-server's process id, from INFO.
func soakRedisPID(t *testing.T, red *harness.Redis) int {
	t.Helper()
	info, err := red.Do("INFO", "server")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO process_id %q", v)
			}
			return pid
		}
	}
	t.Fatalf("no process_id in INFO server:\n%s", info)
	return 0
}

// soakKeepRedisData makes redis-server save its data set when it is
// stopped (SIGTERM saves when a save point is configured), and the harness
// starts it again in the same directory, where it loads dump.rdb: a
// restart keeps the sessions, as a persistent Redis does.
func soakKeepRedisData(t *testing.T, red *harness.Redis) {
	t.Helper()
	if _, err := red.Do("CONFIG", "SET", "save", "3600 1"); err != nil {
		t.Fatal(err)
	}
}

// TestFaultsSoak: two gateway binaries on one redis-server, php-fpm and
// gunicorn with the example Django project, under a steady load of
// session increments through PHP and Django on a few shared sessions,
// anonymous PHP and Django pages and a static file, while the test breaks
// one thing at a time and lets it recover: Redis stalled (SIGSTOP) and
// restarted (its data kept), a php-fpm worker SIGKILLed and php-fpm
// restarted, gunicorn reloaded (HUP) and restarted, clients that leave
// mid-request and mid-response, Redis refusing writes (OOM) and turned
// into a read-only replica (READONLY), its clients paused (CLIENT PAUSE)
// and its connections killed (CLIENT KILL, the unlock subscription's
// too), php-fpm's whole pool taken by long scripts that hold session
// locks; one client sends its bodies slowly all along. Every request ends, with 200 or one of the fault statuses; a
// static file is never refused; no acknowledged increment is lost or
// counted twice (each session's counter lies between its acknowledged
// increments and those plus the ones whose outcome is unknown, and no
// value is shown twice). Once the load stops each gateway returns to its
// idle state: goroutines back near the baseline, no busy or waiting
// FastCGI connection, no spool file, no client connection, no session
// lock in Redis, /readyz 200, and the old session cookies work.
func TestFaultsSoak(t *testing.T) {
	t.Parallel()
	site := startDjangoSite(t)
	writeTree(t, site.root, map[string]string{
		"soak.css": strings.Repeat("body{color:#123}\n", 200),
		"soak_stream.php": `<?php
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
header('Content-Type: text/plain');
echo $_SESSION['n'], "\n";
for ($i = 0; $i < 64; $i++) { echo str_repeat('x', 8192); flush(); usleep(5000); }
`,
		// Counts, says which worker runs it, and waits to be killed.
		"soak_victim.php": `<?php
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
file_put_contents($_GET['pid'], (string)getmypid());
usleep(5000000);
echo $_SESSION['n'];
`,
	})
	static, err := os.ReadFile(filepath.Join(site.root, "soak.css"))
	if err != nil {
		t.Fatal(err)
	}
	red := site.red
	soakKeepRedisData(t, red)
	g := harness.StartGunicorn(t, harness.GunicornOptions{
		Dir: site.project, App: "sgdemo.wsgi:application", Workers: 2, Threads: 4,
		Env: append([]string{"SESSIONGATE_SESSION_KEYS=" + sessionTestKey}, site.env...),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", tailString(g.Log(), 8192))
			t.Logf("php-fpm log:\n%s", tailString(site.fpm.Log(), 8192))
		}
	})
	bin := buildGateway(t)
	env := site.gatewayEnv(sessionTestKey, g.URL(),
		"SESSIONGATE_ADMIN_PPROF=on",
		"SESSIONGATE_IDLE_TIMEOUT=1s",
		"SESSIONGATE_PHP_MAX_CONNS=4",
		"SESSIONGATE_PHP_TIMEOUT=10s",
		"SESSIONGATE_DJANGO_TIMEOUT=10s",
		"SESSIONGATE_SESSION_LOCK_TIMEOUT=10s",
	)
	gws := []*gwProc{startBinary(t, bin, env), startBinary(t, bin, env)}
	sgws := []*sessionGW{{URL: gws[0].URL}, {URL: gws[1].URL}}
	ports := make([]string, len(gws))
	for i, p := range gws {
		_, ports[i], _ = net.SplitHostPort(strings.TrimPrefix(p.URL, "http://"))
	}
	rc := redis.NewClient(&redis.Options{Addr: red.Addr})
	t.Cleanup(func() { rc.Close() })

	const sessions = 4
	stack := &sessionStack{gws: sgws}
	cookies := make([]string, sessions)
	for i := range cookies {
		cookies[i] = stack.newSession(t)
	}
	tally := newSoakTally()
	transport := &http.Transport{MaxIdleConnsPerHost: 32}
	client := &http.Client{
		// Longer than every timeout the gateways have (10 s): a request
		// that runs into it hung.
		Timeout:       30 * time.Second,
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	do := func(method, url, cookie string, body io.Reader) (int, string, error) {
		req, _ := http.NewRequest(method, url, body)
		if cookie != "" {
			req.Header.Set("Cookie", "sessionid="+cookie)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b), err
	}
	phpIncr := func(gw int, s int) {
		st := time.Now()
		code, body, err := do("GET", gws[gw].URL+"/incr.php?k=n", cookies[s], nil)
		tally.record("php-incr", cookies[s], code, body, err)
		tally.took(fmt.Sprintf("php-incr %d", code), st)
	}
	djangoIncr := func(gw int, s int) {
		st := time.Now()
		code, body, err := do("GET", gws[gw].URL+"/accounts/counter/?key=n", cookies[s], nil)
		tally.record("django-incr", cookies[s], code, body, err)
		tally.took(fmt.Sprintf("django-incr %d", code), st)
	}
	anon := func(gw, i int) {
		switch i % 3 {
		case 0:
			code, body, err := do("GET", gws[gw].URL+"/soak.css", "", nil)
			if err == nil && (code != 200 || body != string(static)) {
				// Static files need no backend: no fault excuses a refusal.
				tally.record("static", "", 500, fmt.Sprintf("%d, %d bytes", code, len(body)), nil)
				return
			}
			tally.record("static", "", code, "", err)
		case 1:
			code, body, err := do("GET", gws[gw].URL+"/nosession.php", "", nil)
			if err == nil && code == 200 && body != "no session here" {
				code = 500
			}
			tally.record("php-anon", "", code, body, err)
		case 2:
			code, body, err := do("GET", gws[gw].URL+"/accounts/whoami/", "", nil)
			tally.record("django-anon", "", code, body, err)
		}
	}

	// Warm up with the load's own mix, so that the baseline has the
	// connections an idle gateway keeps (php-fpm, gunicorn, Redis and its
	// subscription), then let the clients' connections close.
	var wg sync.WaitGroup
	for c := range 2 * sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				phpIncr((c+i)%2, c%sessions)
				djangoIncr((c+i+1)%2, c%sessions)
				anon((c+i)%2, i)
			}
		}()
	}
	wg.Wait()
	if len(tally.bad) > 0 {
		t.Fatalf("warm-up: %v", tally.bad)
	}
	transport.CloseIdleConnections()
	base := make([]gwHeld, len(gws))
	for i, p := range gws {
		eventually(t, 10*time.Second, "the warm-up's client connections to close", func() bool {
			base[i] = heldBy(t, p, ports[i])
			return base[i].clients == 0
		})
		if !base[i].pprofAvailable {
			t.Fatal("no goroutine profile on the admin listener")
		}
	}

	// The load: per session two clients, each alternating PHP and Django
	// on alternating gateways; one client of anonymous pages and the
	// static file; one client sending its bodies slowly.
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	pause := func(code int) {
		d := 20 * time.Millisecond
		if code != 200 {
			d = 100 * time.Millisecond
		}
		time.Sleep(d)
	}
	loadStart := time.Now()
	for c := range 2 * sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopped(); i++ {
				gw := (c + i) % 2
				if i%2 == 0 {
					phpIncr(gw, c%sessions)
				} else {
					djangoIncr(gw, c%sessions)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stopped(); i++ {
			anon(i%2, i)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stopped(); i++ {
			pr, pw := io.Pipe()
			go func() {
				// 1000 bytes in 10 parts over about a second.
				for range 10 {
					time.Sleep(100 * time.Millisecond)
					if _, err := pw.Write([]byte(strings.Repeat("s", 100))); err != nil {
						return
					}
				}
				pw.Close()
			}()
			req, _ := http.NewRequest("POST", gws[i%2].URL+"/incr.php?k=n", pr)
			req.ContentLength = 1000
			req.Header.Set("Cookie", "sessionid="+cookies[0])
			req.Header.Set("Content-Type", "application/octet-stream")
			code, body := 0, ""
			res, err := client.Do(req)
			if err == nil {
				b, rerr := io.ReadAll(res.Body)
				res.Body.Close()
				code, body, err = res.StatusCode, string(b), rerr
			}
			pr.CloseWithError(io.ErrClosedPipe)
			tally.record("php-slow-body", cookies[0], code, body, err)
			pause(code)
		}
	}()
	stalled := 0 // redis-server's pid while it is stopped
	defer func() {
		// A failure below must not leave Redis stopped or the load running.
		if stalled > 0 {
			syscall.Kill(stalled, syscall.SIGCONT)
		}
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// leave sends requests of counted sessions whose clients go away:
	// mid-body, right after the request, and mid-response, to PHP and
	// Django.
	leave := func() {
		var lw sync.WaitGroup
		for i := range 15 {
			lw.Add(1)
			go func() {
				defer lw.Done()
				s := i % sessions
				c, err := net.Dial("tcp", strings.TrimPrefix(gws[i%2].URL, "http://"))
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				ck := "Cookie: sessionid=" + cookies[s] + "\r\n"
				switch i % 5 {
				case 0:
					io.WriteString(c, "POST /incr.php?k=n HTTP/1.1\r\nHost: x\r\n"+ck+"Content-Length: 1000\r\n\r\n"+strings.Repeat("b", 100))
					time.Sleep(100 * time.Millisecond)
				case 1:
					io.WriteString(c, "GET /incr.php?k=n HTTP/1.1\r\nHost: x\r\n"+ck+"\r\n")
				case 2:
					io.WriteString(c, "GET /soak_stream.php HTTP/1.1\r\nHost: x\r\n"+ck+"\r\n")
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					io.ReadFull(bufio.NewReader(c), make([]byte, 16<<10))
				case 3:
					// Gone while Django runs.
					io.WriteString(c, "GET /accounts/counter/?key=n HTTP/1.1\r\nHost: 127.0.0.1\r\n"+ck+"\r\n")
				case 4:
					// Gone in the middle of a body for Django.
					io.WriteString(c, "POST /accounts/cart/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"+ck+"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":")
					time.Sleep(100 * time.Millisecond)
				}
				tally.record("client-left", cookies[s], 0, "", nil)
			}()
		}
		lw.Wait()
	}

	faults := []struct {
		name   string
		inject func()
	}{
		{"redis-server stalled (SIGSTOP) for 2 s", func() {
			stalled = soakRedisPID(t, red)
			syscall.Kill(stalled, syscall.SIGSTOP)
			time.Sleep(2 * time.Second)
			syscall.Kill(stalled, syscall.SIGCONT)
			stalled = 0
		}},
		{"redis-server restarted (data kept)", func() {
			before, _ := red.Do("DBSIZE")
			red.Restart()
			soakKeepRedisData(t, red)
			after, _ := red.Do("DBSIZE")
			t.Logf("redis-server restarted: %s keys before, %s after", before, after)
		}},
		{"a php-fpm worker SIGKILLed in the middle of a session's request", func() {
			pidFile, q := markFile(t)
			victim := make(chan struct{})
			go func() {
				defer close(victim)
				// A POST: a GET the worker died on is sent again on a
				// fresh connection (as nginx's fastcgi_next_upstream
				// would to another server), a POST never. The wait for
				// recovery after the fault before takes one good answer of
				// each kind from either gateway, so this one may still
				// refuse (go-redis dials again a pool whose dial failed
				// only once a second): a 503 before the script started is
				// sent again.
				for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
					code, body, err := do("POST", gws[0].URL+"/soak_victim.php?pid="+q, cookies[1], strings.NewReader("a=1"))
					tally.record("php-victim", cookies[1], code, body, err)
					if _, serr := os.Stat(pidFile); code != http.StatusServiceUnavailable || serr == nil || time.Since(start) > 10*time.Second {
						break
					}
				}
			}()
			waitForFile(t, pidFile, "soak_victim.php")
			var pid int
			eventually(t, 5*time.Second, "soak_victim.php's pid", func() bool {
				b, _ := os.ReadFile(pidFile)
				pid, _ = strconv.Atoi(string(b))
				return pid > 0
			})
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Errorf("kill soak_victim.php's worker %d: %v", pid, err)
			}
			<-victim
		}},
		{"php-fpm restarted", func() { site.fpm.Restart() }},
		{"gunicorn reloaded (HUP)", func() { syscall.Kill(g.PID(), syscall.SIGHUP) }},
		{"gunicorn stopped and started", func() { g.Restart() }},
		{"clients leaving mid-request and mid-response", leave},
		{"redis-server refusing writes (OOM) for 1.5 s", func() {
			redisDoT(t, red, "CONFIG", "SET", "maxmemory-policy", "noeviction")
			redisDoT(t, red, "CONFIG", "SET", "maxmemory", "1")
			time.Sleep(1500 * time.Millisecond)
			redisDoT(t, red, "CONFIG", "SET", "maxmemory", "0")
		}},
		{"redis-server a read-only replica (READONLY) for 1.5 s", func() {
			// Of a master that is not there: it keeps its data and
			// answers reads, and refuses every write.
			redisDoT(t, red, "REPLICAOF", "127.0.0.1", strconv.Itoa(harness.FreePort(t)))
			time.Sleep(1500 * time.Millisecond)
			redisDoT(t, red, "REPLICAOF", "NO", "ONE")
		}},
		{"redis-server clients paused (CLIENT PAUSE) for 1.5 s", func() {
			redisDoT(t, red, "CLIENT", "PAUSE", "1500", "ALL")
			time.Sleep(1500 * time.Millisecond)
		}},
		{"redis-server connections killed (CLIENT KILL)", func() {
			redisDoT(t, red, "CLIENT", "KILL", "TYPE", "pubsub")
			redisDoT(t, red, "CLIENT", "KILL", "TYPE", "normal")
		}},
		{"php-fpm's pool taken by long scripts holding session locks", func() {
			var hw sync.WaitGroup
			for i := range 8 {
				hw.Add(1)
				go func() {
					defer hw.Done()
					code, body, err := do("GET", gws[i%2].URL+"/hold.php?ms=2500", cookies[i%sessions], nil)
					if err == nil && code == 200 && body != "held" {
						code = 500
					}
					tally.record("php-hold", "", code, body, err)
				}()
			}
			hw.Wait()
		}},
	}
	time.Sleep(time.Second)
	for _, f := range faults {
		at, before := time.Now(), tally.snapshot()
		f.inject()
		end := time.Now()
		if !poll(15*time.Second, func() bool { return tally.passedSince(end, "php-incr", "django-incr", "php-anon", "django-anon") }) {
			t.Errorf("%s: no recovery 15 s after it", f.name)
		}
		t.Logf("%s: took %v, recovered %v later; meanwhile %v", f.name, end.Sub(at).Round(time.Millisecond), time.Since(end).Round(time.Millisecond), tally.since(before))
		t.Logf("longest: %v", tally.takeLongest())
		time.Sleep(500 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	loadTime := time.Since(loadStart)

	total := 0
	for _, m := range tally.codes {
		total += sumCodes(m)
	}
	t.Logf("%d requests over %v: %v", total, loadTime.Round(100*time.Millisecond), tally.codes)
	for _, b := range tally.bad {
		t.Errorf("broken answer: %s", b)
	}

	for i, p := range gws {
		if out := p.stderr.String(); strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
			t.Errorf("gateway %d output:\n%s", i, out)
		}
	}

	// Each session's counter, read without changing it.
	for s, ck := range cookies {
		d := sgws[s%2].dump(t, ck)
		var data map[string]any
		if err := json.Unmarshal(d.Data, &data); err != nil {
			t.Fatalf("session %d: %v: %s", s, err, d.Data)
		}
		n, _ := data["n"].(float64)
		final := int(n)
		acked, unknown := tally.acked[ck], tally.unknown[ck]
		var twice []int
		for v, k := range tally.shown[ck] {
			if k > 1 {
				twice = append(twice, v)
			}
		}
		slices.Sort(twice)
		t.Logf("session %d: counter %d, %d increments acknowledged, %d unknown", s, final, acked, unknown)
		if len(twice) > 0 {
			t.Errorf("session %d: counter values %v shown by more than one 200: lost updates", s, twice)
		}
		if final < acked || final > acked+unknown {
			t.Errorf("session %d: counter %d, want %d acknowledged increments plus at most %d unknown", s, final, acked, unknown)
		}
	}

	// Back to idle.
	transport.CloseIdleConnections()
	for i, p := range gws {
		const slack = 8
		var h gwHeld
		var locks []string
		ok := poll(10*time.Second, func() bool {
			h = heldBy(t, p, ports[i])
			locks = soakLocks(t, rc)
			return h.goroutines <= base[i].goroutines+slack && len(h.spools) == 0 && h.clients == 0 &&
				h.busy == 0 && h.waiting == 0 && len(locks) == 0
		})
		t.Logf("gateway %d idle: %d goroutines (%d before the load)", i, h.goroutines, base[i].goroutines)
		if !ok {
			t.Errorf("gateway %d 10 s after the load: %d goroutines (%d before, slack %d), spool files %v, %d client connections, %v busy FastCGI connections, %v waiting, session locks %v",
				i, h.goroutines, base[i].goroutines, slack, h.spools, h.clients, h.busy, h.waiting, locks)
			if res, err := http.Get(p.Admin + "/debug/pprof/goroutine?debug=1"); err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				t.Logf("gateway %d goroutines:\n%s", i, b)
			}
		}
		eventually(t, 10*time.Second, fmt.Sprintf("gateway %d's /readyz to answer 200", i), func() bool {
			res, err := http.Get(p.Admin + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == 200
		})
	}

	// The old cookies work, through PHP and Django on both gateways.
	for s, ck := range cookies {
		d := sgws[0].dump(t, ck)
		var data map[string]any
		if err := json.Unmarshal(d.Data, &data); err != nil {
			t.Fatal(err)
		}
		n, _ := data["n"].(float64)
		want := int(n)
		for gw := range gws {
			for _, path := range []string{"/incr.php?k=n", "/accounts/counter/?key=n"} {
				want++
				code, body, err := do("GET", gws[gw].URL+path, ck, nil)
				if err != nil || code != 200 || body != strconv.Itoa(want) {
					t.Errorf("session %d after the soak, gateway %d %s: %d %q %v, want 200 %d", s, gw, path, code, body, err, want)
				}
			}
		}
	}
}

// redisDoT is red.Do failing the test on an error.
func redisDoT(t *testing.T, red *harness.Redis, args ...string) string {
	t.Helper()
	reply, err := red.Do(args...)
	if err != nil {
		t.Fatalf("redis %v: %v", args, err)
	}
	return reply
}

// soakLocks lists the session lock keys in Redis.
func soakLocks(t *testing.T, rc *redis.Client) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	iter := rc.Scan(ctx, 0, "sessiongate:*:lock", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		out = append(out, "scan: "+err.Error())
	}
	return out
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

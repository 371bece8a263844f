package integration

// The PHP path beside nginx under php-fpm's own faults: nginx as PHP shops
// run it (fastcgi_keep_conn on, an upstream with keepalive, the gateway's
// timeouts as fastcgi_read_timeout and send_timeout) and the gateway, each
// in front of its own php-fpm pool configured alike, so that what one
// front's faults do to its pool never reaches the other. For each fault:
// the status the client got, whether the body came whole or cut, the
// status each front logged, what of PHP's messages reached its log, and
// how often the script ran (a side-effect file it appends to).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// phpFaultScript does what ?c= names, after noting in RUNDIR/runs that it
// started (its id is its PATH_INFO, or the X-Req-Id of loadFronts) and,
// from a shutdown function, that it ended and whether PHP saw the client
// leave.
const phpFaultScript = `<?php
$sg_id = trim($_SERVER['PATH_INFO'] ?? '', '/') ?: ($_SERVER['HTTP_X_REQ_ID'] ?? '');
function sg_run($what) { global $sg_id; file_put_contents('RUNDIR/runs', $sg_id . ':' . $what . "\n", FILE_APPEND | LOCK_EX); }
function sg_out($s) { echo $s; while (ob_get_level()) { ob_end_flush(); } flush(); }
sg_run('start');
register_shutdown_function(function () { sg_run(connection_aborted() ? 'end-aborted' : 'end'); });
if (isset($_GET['de'])) { ini_set('display_errors', $_GET['de']); }
$sig = (int)($_GET['sig'] ?? 9);
switch ($_GET['c'] ?? '') {
case 'kill-before': posix_kill(getmypid(), $sig); sleep(5); break;
case 'kill-length': header('Content-Length: 1000'); sg_out(str_repeat('x', 10)); usleep(200000); posix_kill(getmypid(), $sig); sleep(5); break;
case 'kill-mid': sg_out(str_repeat('x', 100000)); usleep(200000); posix_kill(getmypid(), $sig); sleep(5); break;
case 'kill-whole': header('Content-Length: 1000'); sg_out(str_repeat('x', 1000)); usleep(200000); posix_kill(getmypid(), $sig); sleep(5); break;
case 'sleep': if (!empty($_GET['out'])) { sg_out('partial'); } sleep((int)$_GET['s']); echo 'late'; break;
case 'spin': set_time_limit(1); if (!empty($_GET['out'])) { sg_out('partial'); } for (;;) {} break;
case 'fatal': if (!empty($_GET['out'])) { echo 'before'; } sg_undefined(); break;
case 'memory': ini_set('memory_limit', '16M'); if (!empty($_GET['out'])) { echo 'before'; } $m = str_repeat('m', 64 << 20); break;
case 'shutdown-exit': register_shutdown_function(function () { echo 'shutdown'; exit(3); }); echo 'main'; break;
case 'finish': echo 'answer'; fastcgi_finish_request(); echo 'after'; sg_run('finished'); break;
case 'stderr': error_log('big-stderr:' . str_repeat('e', 100000)); echo 'ok'; break;
case 'late-header': sg_out('body'); header('X-Late: 1'); echo 'more'; break;
case 'status-line': header('HTTP/1.1 404 Not Found'); echo 'nf'; break;
case 'code599': http_response_code(599); echo 'x'; break;
case 'status000': header('Status: 000'); echo 'x'; break;
case 'informational': http_response_code(102); echo 'x'; break;
case 'location201': http_response_code(201); header('Location: /new'); echo 'created'; break;
case 'abort': ignore_user_abort(!empty($_GET['ignore'])); for ($i = 0; $i < 20; $i++) { sg_out(str_repeat('a', 1000)); usleep(50000); } sg_run('completed'); break;
default: echo 'ok';
}
`

// phpFaultPair is nginx and the gateway, each in front of its own php-fpm
// pool started with the same options, on one document root whose f.php
// is phpFaultScript.
type phpFaultPair struct {
	ng, gw       string // addresses
	ngFPM, gwFPM *harness.PHPFPM
	ngLog, runs  string // nginx's access log ("$status $request_uri"), the runs file
	nginx        *harness.Nginx
	gateway      *gwProc
}

// faultConnectTimeout is the gateway's default SESSIONGATE_PHP_DIAL_TIMEOUT.
const faultConnectTimeout = 3 * time.Second

// startPHPFaultPair starts the two pools with o, nginx as a PHP shop runs
// it with keep-alive connections to its pool and fastcgi_read_timeout and
// send_timeout of timeout, and the gateway with SESSIONGATE_PHP_TIMEOUT and
// SESSIONGATE_SEND_TIMEOUT of timeout, and as many kept-alive connections
// as the pool has workers on both. Both give up connecting after
// faultConnectTimeout: with nginx's default of 60 s, a connection whose
// SYN a full listen backlog dropped left the request hanging past the
// client's patience, or not, by which of a burst's SYNs came first.
func startPHPFaultPair(t *testing.T, o harness.PHPFPMOptions, timeout time.Duration) *phpFaultPair {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "nginx")
	dir := harness.PHPTempDir(t)
	root := filepath.Join(t.TempDir(), "root")
	writeTree(t, root, map[string]string{"f.php": strings.ReplaceAll(phpFaultScript, "RUNDIR", dir)})
	o.DocRoot = root
	p := &phpFaultPair{ngFPM: harness.StartPHPFPM(t, o), gwFPM: harness.StartPHPFPM(t, o), runs: filepath.Join(dir, "runs")}
	p.ngLog = filepath.Join(dir, "access.log")
	ms := timeout.Milliseconds()
	p.nginx = harness.StartNginx(t, 1, func(addrs []string) string {
		return fmt.Sprintf(`    log_format st '$status $request_uri';
    upstream php {
        server %s;
        keepalive %d;
    }
`, p.ngFPM.Addr, o.Children) + nginxPHPShop(addrs[0], root, "php", fmt.Sprintf("access_log %s st;\n        send_timeout %dms;", p.ngLog, ms),
			fmt.Sprintf("fastcgi_keep_conn on;\n            fastcgi_connect_timeout %dms;\n            fastcgi_read_timeout %dms;\n            fastcgi_send_timeout %dms;", faultConnectTimeout.Milliseconds(), ms, ms))
	})
	p.ng = p.nginx.Addrs[0]
	p.gateway = startBinary(t, buildGateway(t), []string{"SESSIONGATE_PHP_FPM=" + p.gwFPM.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off", "SESSIONGATE_ACCESS_LOG=on", fmt.Sprintf("SESSIONGATE_PHP_MAX_CONNS=%d", o.Children),
		fmt.Sprintf("SESSIONGATE_PHP_TIMEOUT=%dms", ms), fmt.Sprintf("SESSIONGATE_SEND_TIMEOUT=%dms", ms),
		fmt.Sprintf("SESSIONGATE_PHP_DIAL_TIMEOUT=%dms", faultConnectTimeout.Milliseconds())})
	p.gw = strings.TrimPrefix(p.gateway.URL, "http://")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(p.ngLog)
			t.Logf("nginx error log:\n%s\naccess log:\n%s", p.nginx.Log(), b)
		}
	})
	return p
}

// runCount returns how often each id's script started, and how it ended
// ("end", "end-aborted", "finished").
func (p *phpFaultPair) runCount() (started map[string]int, ended map[string][]string) {
	b, _ := os.ReadFile(p.runs)
	started, ended = map[string]int{}, map[string][]string{}
	for _, line := range strings.Fields(string(b)) {
		id, what, _ := strings.Cut(line, ":")
		if what == "start" {
			started[id]++
		} else {
			ended[id] = append(ended[id], what)
		}
	}
	return started, ended
}

// faultAnswer is what a client got: the status (0: no answer), the body's
// length, whether the body ended cleanly, and the body when short.
type faultAnswer struct {
	status int
	n      int
	cut    bool
	body   string
}

func (a faultAnswer) String() string {
	if a.status == 0 && a.body != "" {
		return a.body
	}
	if a.status == 0 {
		return "no answer"
	}
	end := "whole"
	if a.cut {
		end = "cut"
	}
	if (a.status == 502 || a.status == 504) && !a.cut {
		// Each front's own error page: nginx's HTML, the gateway's line
		// of text (SESSIONGATE_ERROR_PAGES sets another).
		return fmt.Sprintf("%d error page", a.status)
	}
	if a.n < 0 {
		return fmt.Sprintf("%d %s", a.status, end)
	}
	if a.n <= 64 {
		return fmt.Sprintf("%d %q %s", a.status, a.body, end)
	}
	return fmt.Sprintf("%d %dB %s", a.status, a.n, end)
}

// faultGet sends GET target on a fresh connection and reads the answer,
// leaving after leave when that is set.
func faultGet(addr, target string, leave time.Duration) faultAnswer {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return faultAnswer{}
	}
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	if leave > 0 {
		deadline = time.Now().Add(leave)
	}
	c.SetDeadline(deadline)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n", target)
	br := bufio.NewReader(c)
	if line, err := br.Peek(12); err == nil && !regexp.MustCompile(`^HTTP/1\.[01] [1-5]\d\d$`).Match(line) {
		return faultAnswer{body: "status line " + string(line)}
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return faultAnswer{}
	}
	b, err := io.ReadAll(res.Body)
	a := faultAnswer{status: res.StatusCode, n: len(b), cut: err != nil}
	if len(b) <= 64 {
		a.body = string(b)
	}
	return a
}

// logged returns the status front logged last for path (its access log's
// line), or "none" after 3 s.
func (p *phpFaultPair) logged(front, path string) string {
	status := "none"
	poll(3*time.Second, func() bool {
		if front == "nginx" {
			b, _ := os.ReadFile(p.ngLog)
			for l := range strings.SplitSeq(string(b), "\n") {
				if st, uri, ok := strings.Cut(l, " "); ok && (uri == path || strings.HasPrefix(uri, path+"?")) {
					status = st
				}
			}
		} else {
			for l := range strings.SplitSeq(p.gateway.stderr.String(), "\n") {
				if strings.Contains(l, `"path":"`+path+`"`) && strings.Contains(l, `"status":`) {
					_, after, _ := strings.Cut(l, `"status":`)
					status = after[:3]
				}
			}
		}
		return status != "none"
	})
	return status
}

// phpMessages are the kinds of PHP's messages a front's log may carry.
var phpMessages = regexp.MustCompile(`PHP (Fatal error|Warning|Notice)|big-stderr:e+|php stderr over the log limit`)

// messages returns what of PHP's messages the front logged in text.
func messages(text string) string {
	var out []string
	for _, m := range phpMessages.FindAllString(text, -1) {
		if strings.HasPrefix(m, "big-stderr:") {
			m = fmt.Sprintf("big-stderr(%d)", len(m)-len("big-stderr:"))
		}
		out = append(out, m)
	}
	return strings.Join(out, ",")
}

// phpFaultCase is one request of TestNginxPHPFaultDiff.
type phpFaultCase struct {
	name, query string
	leave       time.Duration // the client leaves after this
}

// phpFaultOutcome is what one front did with a case.
type phpFaultOutcome struct {
	answer   faultAnswer
	logged   string
	messages string
	runs     int
	ends     string
}

func (o phpFaultOutcome) String() string {
	return fmt.Sprintf("%s, logged %s, messages [%s], ran %d, ended [%s]", o.answer, o.logged, o.messages, o.runs, o.ends)
}

// phpFaultDiff is a case whose outcome differs.
type phpFaultDiff struct {
	name   string
	ng, gw phpFaultOutcome
}

func (d phpFaultDiff) String() string {
	return fmt.Sprintf("%s:\n\tnginx:   %s\n\tgateway: %s", d.name, d.ng, d.gw)
}

// sameBut reports whether d's outcomes differ only in what change sets
// on a copy of nginx's.
func (d phpFaultDiff) sameBut(change func(o *phpFaultOutcome)) bool {
	ng := d.ng
	change(&ng)
	return ng.String() == d.gw.String()
}

// phpFaultKnownDiffs are the differences README describes.
var phpFaultKnownDiffs = []knownDiff[phpFaultDiff]{
	{"an answer PHP's worker cuts after its header (killed, request_terminate_timeout, max_execution_time) is cut for the client on both and logged 502 naming the failure (nginx: the 200 it began)", func(d phpFaultDiff) bool {
		return d.ng.answer.status == 200 && d.ng.answer.cut && d.ng.logged == "200" && d.sameBut(func(o *phpFaultOutcome) { o.logged = "502" })
	}},
	{"a client that leaves mid-answer is logged 499 (nginx: the 200 it began); the script is stopped at its next output on both, unless it ignores the abort", func(d phpFaultDiff) bool {
		return (d.name == "client leaves" || d.name == "client leaves, ignore_user_abort") &&
			d.ng.answer.cut && d.ng.logged == "200" && d.sameBut(func(o *phpFaultOutcome) { o.logged = "499" })
	}},
	{"Status: 000 gets 502 (nginx sends the status line HTTP/1.1 000, which clients refuse)", func(d phpFaultDiff) bool {
		return d.name == "status000" && d.ng.answer.String() == "status line HTTP/1.1 000" && d.ng.logged == "000" &&
			d.sameBut(func(o *phpFaultOutcome) { o.answer, o.logged = faultAnswer{status: 502}, "502" })
	}},
	{"a 1xx status (http_response_code(102)) gets 502 (nginx sends it as the final status, and clients wait for another)", func(d phpFaultDiff) bool {
		return d.name == "informational" && d.ng.answer.status == 102 && d.ng.logged == "102" &&
			d.sameBut(func(o *phpFaultOutcome) { o.answer, o.logged = faultAnswer{status: 502}, "502" })
	}},
}

// TestNginxPHPFaultDiff: each fault a PHP script meets, through nginx and
// through the gateway. The same answers, logged statuses, PHP messages in
// the log and runs for a worker killed (SIGKILL, SIGSEGV) before any
// output, inside a Content-Length, mid-body and after its whole
// Content-Length (the client has the whole answer; both log the 200),
// request_terminate_timeout before output (502), max_execution_time before
// output (500, PHP's fatal error) and after (PHP's 200 with the message),
// fatal errors and memory_limit with display_errors on and off, with and
// without output before (output_buffering holds it: 500 or PHP's 200 with
// the message), exit() in a shutdown function, output after
// fastcgi_finish_request() (dropped by both, the script runs on), 100 KB of
// stderr (both log php-fpm's first 1024 bytes), a warning after the
// headers went, and PHP's odd statuses (a status line, 599, 201 with a
// Location); a client that leaves mid-answer stops the script at its next
// output on both unless it ignores the abort. The differences are
// phpFaultKnownDiffs.
func TestNginxPHPFaultDiff(t *testing.T) {
	t.Parallel()
	var cases []phpFaultCase
	for _, sig := range []int{9, 11} {
		for _, c := range []string{"kill-before", "kill-length", "kill-mid", "kill-whole"} {
			cases = append(cases, phpFaultCase{name: fmt.Sprintf("%s sig%d", c, sig), query: fmt.Sprintf("c=%s&sig=%d", c, sig)})
		}
	}
	cases = append(cases,
		phpFaultCase{name: "max_execution_time before output", query: "c=spin"},
		phpFaultCase{name: "max_execution_time after output", query: "c=spin&out=1"},
	)
	for _, de := range []string{"0", "1"} {
		for _, c := range []string{"fatal", "memory"} {
			cases = append(cases, phpFaultCase{name: c + " de" + de, query: "c=" + c + "&de=" + de},
				phpFaultCase{name: c + " after output de" + de, query: "c=" + c + "&out=1&de=" + de})
		}
	}
	for _, c := range []string{"shutdown-exit", "finish", "stderr", "late-header", "status-line", "code599", "status000", "informational", "location201"} {
		cases = append(cases, phpFaultCase{name: c, query: "c=" + c})
	}
	cases = append(cases,
		phpFaultCase{name: "client leaves", query: "c=abort", leave: 300 * time.Millisecond},
		phpFaultCase{name: "client leaves, ignore_user_abort", query: "c=abort&ignore=1", leave: 300 * time.Millisecond},
	)
	// request_terminate_timeout on a pool of its own: max_execution_time
	// counts CPU time, which on a loaded machine passes more slowly than
	// any terminate timeout.
	terminate := []phpFaultCase{
		{name: "request_terminate_timeout before output", query: "c=sleep&s=5"},
		{name: "request_terminate_timeout after output", query: "c=sleep&s=5&out=1"},
	}
	var mu sync.Mutex
	var diffs []phpFaultDiff
	t.Run("pools", func(t *testing.T) {
		for _, run := range []struct {
			name  string
			opts  harness.PHPFPMOptions
			cases []phpFaultCase
		}{
			{"scripts", harness.PHPFPMOptions{Children: 3}, cases},
			{"request_terminate_timeout", harness.PHPFPMOptions{Children: 2, RequestTerminateTimeout: 2 * time.Second}, terminate},
		} {
			t.Run(run.name, func(t *testing.T) {
				t.Parallel()
				d := runPHPFaultCases(t, startPHPFaultPair(t, run.opts, 8*time.Second), run.cases)
				mu.Lock()
				diffs = append(diffs, d...)
				mu.Unlock()
			})
		}
	})
	seen := map[string]int{}
	judgeDiffs(t, diffs, phpFaultKnownDiffs, seen, "")
	knownAllSeen(t, phpFaultKnownDiffs, seen)
}

// runPHPFaultCases sends each case to both fronts of p at once, one case
// after the other (each front's log then holds one case's PHP messages at
// a time), and returns the cases whose outcomes differ.
func runPHPFaultCases(t *testing.T, p *phpFaultPair, cases []phpFaultCase) []phpFaultDiff {
	fronts := []struct {
		name, addr string
		log        func() string
	}{{"nginx", p.ng, p.nginx.Log}, {"gateway", p.gw, p.gateway.stderr.String}}
	out := map[string]map[string]phpFaultOutcome{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range cases {
		for _, f := range fronts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("c%d-%s", i, f.name)
				before := len(f.log())
				a := faultGet(f.addr, "/f.php/"+id+"?"+c.query, c.leave)
				// Each front logs PHP's messages before the request's
				// access line, which logged waits for.
				o := phpFaultOutcome{answer: a, logged: p.logged(f.name, "/f.php/"+id)}
				o.messages = messages(f.log()[before:])
				mu.Lock()
				if out[c.name] == nil {
					out[c.name] = map[string]phpFaultOutcome{}
				}
				out[c.name][f.name] = o
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	// The scripts whose client left end (a second or two on).
	var started map[string]int
	var ended map[string][]string
	poll(10*time.Second, func() bool {
		started, ended = p.runCount()
		for i, c := range cases {
			for _, f := range fronts {
				if c.leave > 0 && len(ended[fmt.Sprintf("c%d-%s", i, f.name)]) == 0 {
					return false
				}
			}
		}
		return true
	})
	var diffs []phpFaultDiff
	for i, c := range cases {
		for _, f := range fronts {
			id := fmt.Sprintf("c%d-%s", i, f.name)
			o := out[c.name][f.name]
			o.runs = started[id]
			if c.leave > 0 {
				// How much came before the client left is the
				// client's timing.
				o.answer.n, o.answer.body = -1, ""
			}
			o.ends = strings.Join(ended[id], ",")
			out[c.name][f.name] = o
		}
		ng, gw := out[c.name]["nginx"], out[c.name]["gateway"]
		t.Logf("%s:\n\tnginx:   %s\n\tgateway: %s", c.name, ng, gw)
		if ng.String() != gw.String() {
			diffs = append(diffs, phpFaultDiff{c.name, ng, gw})
		}
	}
	return diffs
}

// poolFault is something done to both pools of a pair at once, under
// load.
type poolFault struct {
	name string
	opts harness.PHPFPMOptions
	do   func(t *testing.T, fpm *harness.PHPFPM)
	// mayFail: requests may fail (502) on both fronts meanwhile: php-fpm
	// is down, or a reload's exiting worker took a fresh connection. And
	// a GET, PUT or DELETE may run twice: with process_control_timeout
	// at its default 0, php-fpm follows its SIGQUIT to the workers with
	// SIGTERM at once (fpm_pctl_action_next), so a worker dies mid-script,
	// and both fronts send such a request again when its connection closes
	// without an answer (seen on nginx).
	mayFail bool
}

// gracefulStop sends SIGQUIT (php-fpm's graceful stop), waits for the
// master to exit and starts it again.
func gracefulStop(t *testing.T, fpm *harness.PHPFPM) {
	syscall.Kill(fpm.PID(), syscall.SIGQUIT)
	if !poll(10*time.Second, func() bool { return fpm.PID() == 0 }) {
		t.Errorf("php-fpm still runs 10 s after SIGQUIT")
	}
	fpm.Start()
}

// TestNginxPHPPoolFaultDiff: php-fpm recycling its workers
// (pm.max_requests), reloaded (SIGUSR2, a deploy's systemctl reload),
// stopped gracefully (SIGQUIT) or not (SIGTERM) and started again, under
// kept-alive GET, PUT, DELETE and POST load through both fronts. While
// workers are recycled no GET, PUT or DELETE fails on either front: a
// request that meets a kept-alive connection whose worker is gone is sent
// again on a fresh one. A POST may fail on nginx, which never sends one
// again, and then never ran; the gateway sends it again when the worker
// provably never read it. Under a reload a few requests may fail (502) on
// both: the exiting workers also take fresh connections (through the
// gateway a PUT or DELETE on a kept-alive connection failed where nginx
// sent it again, until they were sent again like GET:
// fcgi.TestRetryWhenNothingReceived). While php-fpm is down both answer
// 502. Nothing hangs, no POST runs twice, no failed POST ran, and only
// while php-fpm kills running workers (reload, stops: poolFault.mayFail)
// may a GET, PUT or DELETE run twice. Counts depend on the machine's
// load; what is asserted does not.
func TestNginxPHPPoolFaultDiff(t *testing.T) {
	t.Parallel()
	for _, f := range []poolFault{
		{"max_requests", harness.PHPFPMOptions{Children: 4, MaxRequests: 5}, nil, false},
		{"reload", harness.PHPFPMOptions{Children: 4}, func(t *testing.T, fpm *harness.PHPFPM) { syscall.Kill(fpm.PID(), syscall.SIGUSR2) }, true},
		{"graceful stop", harness.PHPFPMOptions{Children: 4}, gracefulStop, true},
		{"stop", harness.PHPFPMOptions{Children: 4}, func(t *testing.T, fpm *harness.PHPFPM) { fpm.Restart() }, true},
	} {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			p := startPHPFaultPair(t, f.opts, 5*time.Second)
			stop := make(chan struct{})
			wait := loadFronts(map[string]string{"nginx": "http://" + p.ng, "gateway": "http://" + p.gw}, "/f.php", 2, stop)
			time.Sleep(time.Second)
			if f.do != nil {
				var wg sync.WaitGroup
				for _, fpm := range []*harness.PHPFPM{p.ngFPM, p.gwFPM} {
					wg.Add(1)
					go func() { defer wg.Done(); f.do(t, fpm) }()
				}
				wg.Wait()
			}
			time.Sleep(time.Second)
			close(stop)
			results := wait()
			started, _ := p.runCount()
			reran := map[string]int{}
			for _, r := range results {
				if started[r.id] > 1 {
					if f.mayFail && r.method != "POST" && started[r.id] == 2 {
						reran[r.front]++
					} else {
						t.Errorf("%s: %s %s ran %d times", r.front, r.method, r.id, started[r.id])
					}
				}
				if r.err == nil && r.status == 200 {
					continue
				}
				switch {
				case r.err != nil:
					t.Errorf("%s: %s %s: %v (no answer)", r.front, r.method, r.id, r.err)
				case f.mayFail:
					if r.status != 502 {
						t.Errorf("%s: %s %s: %d while php-fpm %s, want 502", r.front, r.method, r.id, r.status, f.name)
					}
				case r.method != "POST":
					t.Errorf("%s: %s %s: %d while php-fpm %s (an idempotent request is sent again)", r.front, r.method, r.id, r.status, f.name)
				case started[r.id] > 0:
					t.Errorf("%s: POST %s failed (%d) after it ran", r.front, r.id, r.status)
				}
			}
			reportFrontFailures(t, results)
			if len(reran) > 0 {
				t.Logf("sent again after their worker died mid-script, so ran twice: nginx %d, gateway %d", reran["nginx"], reran["gateway"])
			}
		})
	}
}

// signalPool sends sig to php-fpm's master and workers.
func signalPool(fpm *harness.PHPFPM, sig syscall.Signal) {
	for _, pid := range append(fpm.Workers(), fpm.PID()) {
		syscall.Kill(pid, sig)
	}
}

// busyReq is one request of TestNginxPHPBusyPoolDiff, sent after a pause
// and left after leave when that is set.
type busyReq struct {
	name, query  string
	after, leave time.Duration
}

// busyDiff is what one front did with a busyReq: its answer, the status
// it logged, and how often the script ran.
type busyDiff struct{ name, ng, gw string }

// busyKnownDiffs are the differences README describes.
var busyKnownDiffs = []knownDiff[busyDiff]{
	{"requests queued behind a busy pool wait for a connection the gateway holds, and run (nginx: a new connection that php-fpm, its workers held by nginx's idle kept-alive ones, never accepts; 504 after fastcgi_read_timeout, or fastcgi_connect_timeout when the full listen queue dropped its SYN; the script never ran)", func(d busyDiff) bool {
		return (d.name == "q3" || d.name == "q4") && d.ng == "504 error page, logged 504, ran 0" && d.gw == `200 "late" whole, logged 200, ran 1`
	}},
}

// TestNginxPHPBusyPoolDiff: every worker busy, with a small listen.backlog;
// a client that leaves while its request is queued; php-fpm frozen
// (SIGSTOP) and thawed within the timeout, and past it. Both pools have
// two workers and a backlog of one, and both fronts keep two connections
// alive, as many as the pool has workers. Same: the client that leaves
// while queued gets 499 and its script never runs; a freeze shorter than
// the timeout only delays the answers; past it both answer 504, and the
// scripts run once php-fpm is thawed (php-fpm had the requests).
func TestNginxPHPBusyPoolDiff(t *testing.T) {
	t.Parallel()
	p := startPHPFaultPair(t, harness.PHPFPMOptions{Children: 2, ListenBacklog: 1}, 3*time.Second)
	seen := map[string]int{}
	run := func(reqs []busyReq, during func()) {
		out := map[string]map[string]faultAnswer{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, f := range []struct{ name, addr string }{{"nginx", p.ng}, {"gateway", p.gw}} {
			for _, r := range reqs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(r.after)
					a := faultGet(f.addr, "/f.php/"+r.name+"-"+f.name+"?"+r.query, r.leave)
					mu.Lock()
					if out[r.name] == nil {
						out[r.name] = map[string]faultAnswer{}
					}
					out[r.name][f.name] = a
					mu.Unlock()
				}()
			}
		}
		if during != nil {
			during()
		}
		wg.Wait()
		time.Sleep(time.Second) // scripts php-fpm had run
		started, _ := p.runCount()
		var diffs []busyDiff
		for _, r := range reqs {
			got := map[string]string{}
			for _, f := range []string{"nginx", "gateway"} {
				id := r.name + "-" + f
				got[f] = fmt.Sprintf("%s, logged %s, ran %d", out[r.name][f], p.logged(f, "/f.php/"+id), started[id])
			}
			t.Logf("%s:\n\tnginx:   %s\n\tgateway: %s", r.name, got["nginx"], got["gateway"])
			if got["nginx"] != got["gateway"] {
				diffs = append(diffs, busyDiff{r.name, got["nginx"], got["gateway"]})
			}
		}
		judgeDiffs(t, diffs, busyKnownDiffs, seen, "")
	}
	// Two scripts of a second take both workers; two more and one that
	// leaves after 300 ms queue behind them.
	run([]busyReq{
		{"q1", "c=sleep&s=1", 0, 0}, {"q2", "c=sleep&s=1", 0, 0},
		{"q3", "c=sleep&s=1", 100 * time.Millisecond, 0}, {"q4", "c=sleep&s=1", 100 * time.Millisecond, 0},
		{"qleave", "c=sleep&s=1", 150 * time.Millisecond, 300 * time.Millisecond},
	}, nil)
	// freeze stops both pools at once, before run sends a request (its
	// argument is evaluated first), and returns the thaw, due d after the
	// stop. Stopping them inside run raced the requests: on a loaded
	// machine, the gateway's two requests once reached a pool not yet
	// stopped and were answered at once, where nginx's got their 504.
	freeze := func(d time.Duration) func() {
		signalPool(p.ngFPM, syscall.SIGSTOP)
		signalPool(p.gwFPM, syscall.SIGSTOP)
		thaw := time.Now().Add(d)
		return func() {
			time.Sleep(time.Until(thaw))
			signalPool(p.ngFPM, syscall.SIGCONT)
			signalPool(p.gwFPM, syscall.SIGCONT)
		}
	}
	run([]busyReq{{"f1", "c=sleep&s=0", 100 * time.Millisecond, 0}, {"f2", "c=sleep&s=0", 100 * time.Millisecond, 0}}, freeze(time.Second))
	run([]busyReq{{"l1", "c=sleep&s=0", 100 * time.Millisecond, 0}, {"l2", "c=sleep&s=0", 100 * time.Millisecond, 0}}, freeze(3500*time.Millisecond))
	knownAllSeen(t, busyKnownDiffs, seen)
}

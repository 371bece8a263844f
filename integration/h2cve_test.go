package integration

import (
	"bytes"
	"crypto/tls"
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
	"github.com/sessiongate/sessiongate/internal/testh2"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

// h2Attack is the real gateway binary on TLS in front of a real php-fpm
// whose scripts count their runs, for the HTTP/2 denial-of-service tests.
type h2Attack struct {
	p          *gwProc
	addr, port string
	runsDir    string
	root       string // the site's document root
}

// startH2Attack runs the gateway on TLS, sessions off, the admin pprof on,
// in front of php-fpm with children workers, and env added. The site has
// count.php (counts its run in runs/count, then answers "ran"), slow.php
// (counts, then sleeps 300 ms) and big.php (counts, then sends 1 MiB).
func startH2Attack(t *testing.T, children int, env ...string) *h2Attack {
	t.Helper()
	harness.Require(t, "php-fpm8.2")
	runs := harness.PHPTempDir(t)
	count := func(name string) string {
		return fmt.Sprintf(`file_put_contents(%q, "x", FILE_APPEND | LOCK_EX);`, filepath.Join(runs, name))
	}
	root := gwSite(t)
	writeTree(t, root, map[string]string{
		"count.php": "<?php " + count("count") + ` echo "ran";`,
		"slow.php":  "<?php " + count("slow") + ` usleep(300000); echo "slept";`,
		"big.php":   "<?php " + count("big") + ` echo str_repeat("0123456789abcdef", 65536);`,
		// With sessions on: a 1 MiB page that holds the session's lock
		// while it runs, and the session's counter.
		"bigsess.php": "<?php " + count("bigsess") + ` session_start(); $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; echo str_repeat("0123456789abcdef", 65536);`,
		"counter.php": `<?php session_start(); $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; echo $_SESSION['n'];`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: children})
	cert, key := testtls.Pair(t)
	p := startBinary(t, buildGateway(t), append([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_ADMIN_PPROF=on",
		"SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + key,
		fmt.Sprintf("SESSIONGATE_PHP_MAX_CONNS=%d", children),
	}, env...))
	addr := strings.TrimPrefix(p.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	return &h2Attack{p: p, addr: addr, port: port, runsDir: runs, root: root}
}

// runs is how many times script name (count, slow, big) ran so far.
func (a *h2Attack) runs(name string) int {
	b, _ := os.ReadFile(filepath.Join(a.runsDir, name))
	return len(b)
}

// rssKiB is the gateway's resident memory.
func (a *h2Attack) rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kib)
			return kib
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// baseline is what the gateway holds once a legitimate request was served
// and its connection closed.
func (a *h2Attack) baseline(t *testing.T) gwHeld {
	t.Helper()
	if res := testh2.Do(t, a.addr, []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/count.php"}}, nil); res.Status != 200 {
		t.Fatalf("a first request: %+v", res)
	}
	var base gwHeld
	eventually(t, 10*time.Second, "the gateway to close the first client connection", func() bool {
		base = heldBy(t, a.p, a.port)
		return base.clients == 0
	})
	if !base.pprofAvailable {
		t.Fatal("no goroutine profile on the admin listener")
	}
	return base
}

// attackStart is what an attack test compares the gateway with once its
// attacks are over: what it held, its RSS and count.php's runs.
type attackStart struct {
	held      gwHeld
	rssKiB    int
	countRuns int
}

// start takes the baseline (see baseline) before an attack.
func (a *h2Attack) start(t *testing.T) attackStart {
	t.Helper()
	return attackStart{held: a.baseline(t), rssKiB: a.rssKiB(t), countRuns: a.runs("count")}
}

// unharmed checks that after the attacks the gateway holds no more than
// at their start (settled), that count.php ran only for the legitimate
// clients (want times), and that its RSS grew by at most 32 MiB.
func (a *h2Attack) unharmed(t *testing.T, what string, at attackStart, want int) {
	t.Helper()
	a.settled(t, what, at.held)
	if ran := a.runs("count") - at.countRuns; ran != want {
		t.Errorf("count.php ran %d times, want %d, once for each legitimate client", ran, want)
	}
	if rss := a.rssKiB(t); rss > at.rssKiB+32<<10 {
		t.Errorf("the gateway's RSS grew from %d to %d KiB", at.rssKiB, rss)
	}
}

// settled waits up to 10 s for the gateway to hold no more than base:
// goroutines, client connections, busy FastCGI connections and waiting
// requests.
func (a *h2Attack) settled(t *testing.T, what string, base gwHeld) {
	t.Helper()
	var h gwHeld
	var dump []byte
	start := time.Now()
	if !poll(20*time.Second, func() bool {
		h = heldBy(t, a.p, a.port)
		ok := h.goroutines <= base.goroutines && h.clients == 0 && h.busy == 0 && h.waiting == 0
		if !ok && dump == nil && time.Since(start) > 3*time.Second {
			once := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			if res, err := once.Get(a.p.Admin + "/debug/pprof/goroutine?debug=1"); err == nil {
				dump, _ = io.ReadAll(res.Body)
				res.Body.Close()
			}
		}
		return ok
	}) {
		t.Errorf("%s: still held 20 s after the attack: %d goroutines (%d before), %d client connections, %v busy FastCGI connections, %v waiting",
			what, h.goroutines, base.goroutines, h.clients, h.busy, h.waiting)
		t.Logf("goroutines 3 s after the attack:\n%s", dump)
	} else if dump != nil {
		t.Logf("%s: settled after %v; goroutines 3 s after the attack:\n%s", what, time.Since(start).Round(time.Millisecond), dump)
	}
}

// legit fetches count.php on a new connection while an attack runs and
// returns how long it took; the test fails if the page did not come.
func (a *h2Attack) legit(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	res := testh2.Do(t, a.addr, []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/count.php"}}, nil)
	if res.Status != 200 || res.Body != "ran" {
		t.Errorf("a legitimate client during the attack: %+v", res)
	}
	return time.Since(start)
}

// TestCVE_2023_44487_RapidReset: a client opens streams for a slow PHP
// page (300 ms) and resets each (HEADERS then RST_STREAM), a thousand
// times on one connection back to back, then on four connections at once
// with each reset 5 ms after its HEADERS, the time for the request to
// reach php-fpm. Go's HTTP/2 server runs a handler for each stream, up to
// 250 at once per connection; what matters in front of php-fpm is what the
// resets cost it. Bounds: php-fpm runs the page for at most one reset
// stream in 50 and has stopped once the gateway holds nothing, a
// legitimate client on another connection gets its page within 5 s, and
// the gateway's goroutines, connections and FastCGI connections return to
// where they were.
func TestCVE_2023_44487_RapidReset(t *testing.T) {
	t.Parallel()
	a := startH2Attack(t, 2)
	base := a.baseline(t)
	rss0 := a.rssKiB(t)

	const pairs = 1000
	// attack sends the pairs on a new connection in batches of batch
	// streams: their HEADERS, then, after pause, their RST_STREAMs.
	attack := func(batch int, pause time.Duration) *testh2.Conn {
		c := testh2.Dial(t, a.addr)
		for first := 0; first < pairs; first += batch {
			var heads, rsts [][]byte
			for i := first; i < first+batch; i++ {
				id := uint32(2*i + 1)
				heads = append(heads, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, id, testh2.Get("/slow.php")))
				rsts = append(rsts, testh2.RST(id))
			}
			if pause == 0 {
				heads = append(heads, rsts...)
			}
			if c.Write(heads...) != nil {
				break // closed by the server
			}
			if pause > 0 {
				time.Sleep(pause)
				if c.Write(rsts...) != nil {
					break
				}
			}
		}
		return c
	}
	round := func(what string, conns, batch int, pause time.Duration) {
		t.Helper()
		before := a.runs("slow")
		cs := make([]*testh2.Conn, conns)
		var wg sync.WaitGroup
		for i := range cs {
			wg.Add(1)
			go func() { defer wg.Done(); cs[i] = attack(batch, pause) }()
		}
		wg.Wait()
		took := a.legit(t)
		if took > 5*time.Second {
			t.Errorf("%s: the legitimate client waited %v for its page", what, took)
		}
		closed := 0
		for _, c := range cs {
			if c.WaitClosed(5 * time.Second) {
				closed++
			}
			c.Close()
		}
		if closed != conns {
			t.Errorf("%s: the gateway closed %d of %d connections that reset %d streams each", what, closed, conns, pairs)
		}
		a.settled(t, what, base)
		ran := a.runs("slow") - before
		time.Sleep(time.Second)
		later := a.runs("slow") - before
		t.Logf("%s: %d reset streams, slow.php ran %d times (%d a second later), %d of %d connections closed by the gateway, legitimate page in %v, RSS %d -> %d KiB",
			what, conns*pairs, ran, later, closed, conns, took.Round(time.Millisecond), rss0, a.rssKiB(t))
		if later*50 > conns*pairs || later != ran {
			t.Errorf("%s: php-fpm ran slow.php %d times for %d reset streams (%d once the gateway held nothing), want at most 1 in 50 and none after", what, later, conns*pairs, ran)
		}
	}
	round("one connection, back to back", 1, 100, 0)
	round("four connections, 5 ms between HEADERS and RST_STREAM", 4, 10, 5*time.Millisecond)
	if rss := a.rssKiB(t); rss > rss0+64<<10 {
		t.Errorf("the gateway's RSS grew from %d to %d KiB", rss0, rss)
	}
}

// flood writes frames on c in writes of about 64 KiB until all went out
// or a write fails (the server closed), and reports how many went out.
func flood(c *testh2.Conn, frames [][]byte) int {
	sent := 0
	for sent < len(frames) {
		n, size := 0, 0
		for sent+n < len(frames) && size < 64<<10 {
			size += len(frames[sent+n])
			n++
		}
		if c.Write(frames[sent:sent+n]...) != nil {
			break
		}
		sent += n
	}
	return sent
}

// repeat is n copies of f.
func repeat(f []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// TestH2CancelledDownloadsKeepTheConnection: a browser cancels streams by
// the hundred once their answers began (downloads left by a navigation, a
// video player's range requests dropped as it seeks or has buffered
// enough). Those are not rapid reset, which resets streams before their
// answer: the connection stays open and serves the next request. Before,
// the gateway closed it once more than 100 were reset, more than it had let
// end, and the page the browser had just asked for on it was lost.
func TestH2CancelledDownloadsKeepTheConnection(t *testing.T) {
	t.Parallel()
	a := startH2Attack(t, 2)
	writeTree(t, a.root, map[string]string{"video.bin": strings.Repeat("v", 1<<20)})
	// A window of 0 (SETTINGS_INITIAL_WINDOW_SIZE): each answer begins
	// with its headers, then waits for the client.
	c := testh2.Dial(t, a.addr, 0x4, 0)
	const n = 200
	var frames [][]byte
	for i := range n {
		frames = append(frames, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, uint32(2*i+1), testh2.Get("/video.bin")))
	}
	if err := c.Write(frames...); err != nil {
		t.Fatal(err)
	}
	if !poll(10*time.Second, func() bool { return len(c.Seen().Statuses) == n }) {
		t.Fatalf("%d of %d answers began", len(c.Seen().Statuses), n)
	}
	frames = frames[:0]
	for i := range n {
		frames = append(frames, testh2.RST(uint32(2*i+1)))
	}
	next := uint32(2*n + 1)
	frames = append(frames, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, next, testh2.Get("/count.php")))
	if err := c.Write(frames...); err != nil {
		t.Fatal(err)
	}
	if !poll(5*time.Second, func() bool { return c.Seen().Statuses[next] != 0 }) || c.WaitClosed(500*time.Millisecond) {
		t.Errorf("after %d cancelled downloads the next page got status %d, connection closed: %v, closed as rapid reset: %v",
			n, c.Seen().Statuses[next], c.WaitClosed(0), strings.Contains(a.p.stderr.String(), "rapid reset"))
	}
}

// TestCVE_2023_45288_ContinuationFlood: a HEADERS frame without
// END_HEADERS followed by CONTINUATION frames that never end the block
// (CVE-2023-45288, CVE-2024-27316 in httpd). With header fields in them,
// net/http closes the connection (GOAWAY) once the block is past the
// header limit (SESSIONGATE_MAX_HEADER_BYTES, here 64 KiB). Empty ones
// add nothing to the block, and net/http reads them on, for a frame
// header's parsing each: the connection, which has no stream open yet, is
// closed at SESSIONGATE_IDLE_TIMEOUT (2 s here), however the frames keep
// coming. No request reaches PHP, memory stays bounded.
func TestCVE_2023_45288_ContinuationFlood(t *testing.T) {
	t.Parallel()
	a := startH2Attack(t, 2, "SESSIONGATE_MAX_HEADER_BYTES=64k", "SESSIONGATE_IDLE_TIMEOUT=2s")
	at := a.start(t)
	headers := testh2.Frame(testh2.TypeHeaders, testh2.FlagEndStream, 1, testh2.Get("/count.php"))

	conn := testh2.Dial(t, a.addr)
	field := testh2.Frame(testh2.TypeContinuation, 0, 1, testh2.Block([]testh2.Field{{"x-filler", strings.Repeat("a", 16000)}}))
	start := time.Now()
	sent := flood(conn, append([][]byte{headers}, repeat(field, 2000)...))
	closed := conn.WaitClosed(5 * time.Second)
	seen := conn.Seen()
	t.Logf("16 KB fields: %d of 2000 CONTINUATION frames (%d KB) went out before the gateway closed in %v (closed %v, GOAWAY %v code %d), RSS %d KiB",
		sent-1, (sent-1)*len(field)>>10, time.Since(start).Round(time.Millisecond), closed, seen.GoAway, seen.GoAwayCode, a.rssKiB(t))
	if !closed || !seen.GoAway {
		t.Errorf("16 KB fields: no GOAWAY, or the connection still open, 5 s after %d CONTINUATION frames", sent-1)
	}
	conn.Close()

	conn = testh2.Dial(t, a.addr)
	start = time.Now()
	conn.Write(headers)
	empty := repeat(testh2.Frame(testh2.TypeContinuation, 0, 1, nil), 1000)
	n := 0
	for time.Since(start) < 8*time.Second && conn.Write(empty...) == nil {
		n += len(empty)
		time.Sleep(20 * time.Millisecond)
	}
	closed = conn.WaitClosed(time.Second)
	t.Logf("empty: %d CONTINUATION frames went out in %v before the gateway closed (%v), RSS %d KiB",
		n, time.Since(start).Round(time.Millisecond), closed, a.rssKiB(t))
	if !closed || time.Since(start) > 6*time.Second {
		t.Errorf("empty: the connection was still open %v after it started sending empty CONTINUATION frames (SESSIONGATE_IDLE_TIMEOUT=2s)", time.Since(start).Round(time.Millisecond))
	}
	conn.Close()

	if took := a.legit(t); took > 5*time.Second {
		t.Errorf("the legitimate client waited %v", took)
	}
	a.unharmed(t, "CONTINUATION floods", at, 1)
}

// TestCVE_2019_9512_9515_9518_FrameFloods: a client that never reads
// floods PINGs (CVE-2019-9512) or SETTINGS (CVE-2019-9515), each calling
// for an acknowledgement, or empty DATA frames on an open stream
// (CVE-2019-9518). PING acknowledgements queue up to net/http's limit
// (10000 control frames) once the socket buffers are full (the flood
// is larger than the kernel's largest send buffer, 4 MiB by default), past
// which the connection closes; SETTINGS are
// acknowledged once however many came (net/http coalesces them), and empty
// DATA frames cost a frame header's parsing each: both leave the
// connection open, with nothing growing. Memory stays bounded and a
// legitimate client is served.
func TestCVE_2019_9512_9515_9518_FrameFloods(t *testing.T) {
	t.Parallel()
	a := startH2Attack(t, 2)
	at := a.start(t)
	for _, c := range []struct {
		name   string
		frames [][]byte
		closes bool
	}{
		{"PING flood", repeat(testh2.Frame(testh2.TypePing, 0, 0, make([]byte, 8)), 600000), true},
		{"SETTINGS flood", repeat(testh2.Frame(testh2.TypeSettings, 0, 0, nil), 200000), false},
		{"empty DATA frames", append([][]byte{testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders, 1,
			testh2.Block([]testh2.Field{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/count.php"}}))},
			repeat(testh2.Frame(testh2.TypeData, 0, 1, nil), 200000)...), false},
	} {
		conn := testh2.DialUnread(t, a.addr)
		start := time.Now()
		sent := flood(conn, c.frames)
		// Closed: a write fails once the gateway's reset arrived.
		wait := time.Second
		if c.closes {
			wait = 5 * time.Second
		}
		closed := poll(wait, func() bool { return conn.Write(testh2.Frame(testh2.TypeSettings, 0x1, 0, nil)) != nil })
		t.Logf("%s: %d of %d frames went out, closed by the gateway %v (%v), RSS %d KiB",
			c.name, sent, len(c.frames), closed, time.Since(start).Round(time.Millisecond), a.rssKiB(t))
		if c.closes && !closed {
			t.Errorf("%s: the connection is still open after %d frames", c.name, sent)
		}
		if took := a.legit(t); took > 5*time.Second {
			t.Errorf("%s: the legitimate client waited %v", c.name, took)
		}
		conn.Close()
	}
	a.unharmed(t, "frame floods", at, 3)
}

// TestCVE_2019_9516_2016_6581_HeaderBombs: a header block of zero-length
// fields (CVE-2019-9516), and an HPACK bomb (CVE-2016-6581): one 4000-byte
// field put in the dynamic table, then referenced by a one-byte index
// 16000 times a frame, 64 MB a frame once decoded. Neither reaches PHP,
// the gateway's memory stays bounded, and a legitimate client is served.
func TestCVE_2019_9516_2016_6581_HeaderBombs(t *testing.T) {
	t.Parallel()
	a := startH2Attack(t, 2)
	at := a.start(t)
	get := testh2.Get("/count.php")
	empty := bytes.Repeat([]byte{0, 0, 0}, 5000) // literal, new name "", value ""
	bomb := append(append([]byte{}, get...), 0x40)
	bomb = append(bomb, testh2.Block([]testh2.Field{{"x-bomb", strings.Repeat("b", 4000)}})[1:]...)
	refs := bytes.Repeat([]byte{0xbe}, 16000) // indexed: dynamic table entry 1
	for _, c := range []struct {
		name   string
		frames [][]byte
	}{
		{"zero-length fields", append([][]byte{testh2.Frame(testh2.TypeHeaders, testh2.FlagEndStream, 1, append(append([]byte{}, get...), empty...))},
			append(repeat(testh2.Frame(testh2.TypeContinuation, 0, 1, empty), 200), testh2.Frame(testh2.TypeContinuation, testh2.FlagEndHeaders, 1, empty))...)},
		{"HPACK bomb", append([][]byte{testh2.Frame(testh2.TypeHeaders, testh2.FlagEndStream, 1, append(bomb, refs...))},
			append(repeat(testh2.Frame(testh2.TypeContinuation, 0, 1, refs), 200), testh2.Frame(testh2.TypeContinuation, testh2.FlagEndHeaders, 1, refs))...)},
	} {
		conn := testh2.Dial(t, a.addr)
		start := time.Now()
		sent := flood(conn, c.frames)
		closed := conn.WaitClosed(5 * time.Second)
		seen := conn.Seen()
		t.Logf("%s: %d of %d frames went out, closed by the gateway %v in %v (GOAWAY %v code %d), statuses %v, RSS %d KiB",
			c.name, sent, len(c.frames), closed, time.Since(start).Round(time.Millisecond), seen.GoAway, seen.GoAwayCode, seen.Statuses, a.rssKiB(t))
		if !closed && seen.Statuses[1] != 431 && seen.Statuses[1] != 400 {
			t.Errorf("%s: neither refused nor closed: %+v", c.name, seen)
		}
		conn.Close()
	}
	if took := a.legit(t); took > 5*time.Second {
		t.Errorf("the legitimate client waited %v", took)
	}
	a.unharmed(t, "header bombs", at, 1)
}

// spooled is how many read-ahead temp files the gateway has open, and
// their bytes.
func (a *h2Attack) spooled(t *testing.T) (files int, bytes int64) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", a.p.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		l, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if strings.Contains(l, "sessiongate-") && strings.HasSuffix(l, "(deleted)") {
			if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
				files++
				bytes += fi.Size()
			}
		}
	}
	return files, bytes
}

// TestCVE_2019_9511_9517_UnreadResponses: a client opens 60 streams for a
// 1 MiB PHP page on one connection with its flow-control window at 0
// (SETTINGS_INITIAL_WINDOW_SIZE 0) and never reads (the data dribble of
// CVE-2019-9511, the internal data buffering of CVE-2019-9517). With
// SESSIONGATE_RESPONSE_BUFFERING=on (the default) each response is read
// ahead, 64 KiB in memory and the rest in a temp file, so php-fpm's two
// workers are free again and a legitimate client is served while the
// streams stay open; the gateway's memory grows by a bounded amount, and
// all is released once the client leaves.
func TestCVE_2019_9511_9517_UnreadResponses(t *testing.T) {
	t.Parallel()
	a := startH2Attack(t, 2)
	base := a.baseline(t)
	rss0 := a.rssKiB(t)
	const streams = 60
	conn := testh2.Dial(t, a.addr, 0x4, 0) // SETTINGS_INITIAL_WINDOW_SIZE
	var frames [][]byte
	for i := range streams {
		frames = append(frames, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, uint32(2*i+1), testh2.Get("/big.php")))
	}
	if err := conn.Write(frames...); err != nil {
		t.Fatal(err)
	}
	var h gwHeld
	ok := poll(20*time.Second, func() bool {
		h = heldBy(t, a.p, a.port)
		return a.runs("big") == streams && h.busy == 0
	})
	files, spooled := a.spooled(t)
	rss := a.rssKiB(t)
	t.Logf("%d unread 1 MiB responses: big.php ran %d times, %v busy FastCGI connections, %d temp files (%d KiB), %d response headers sent, RSS %d -> %d KiB",
		streams, a.runs("big"), h.busy, files, spooled>>10, len(conn.Seen().Statuses), rss0, rss)
	if !ok {
		t.Errorf("php-fpm's workers still held by unread responses: big.php ran %d of %d times, %v busy FastCGI connections", a.runs("big"), streams, h.busy)
	}
	if rss > rss0+streams*256 {
		t.Errorf("the gateway's RSS grew from %d to %d KiB for %d unread responses", rss0, rss, streams)
	}
	if took := a.legit(t); took > 5*time.Second {
		t.Errorf("the legitimate client waited %v", took)
	}
	conn.Close()
	a.settled(t, "unread responses", base)
	if files, _ := a.spooled(t); files != 0 {
		t.Errorf("%d temp files still open once the client left", files)
	}
}

// TestCVE_2019_9511_9517_UnreadResponsesSessionLock: ten unread 1 MiB
// responses of a page that takes the session's strict lock, on one
// connection with its window at 0, all for one session. Read ahead, each
// page ends in PHP and lets the lock go for the next one, though no
// response is read; the same session's next request is served at once.
func TestCVE_2019_9511_9517_UnreadResponsesSessionLock(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	red := harness.StartRedis(t)
	a := startH2Attack(t, 2, "SESSIONGATE_SESSIONS=on", "SESSIONGATE_SESSION_KEYS="+sessionTestKey,
		"SESSIONGATE_PHP_PREPEND="+writePrepend(t), "SESSIONGATE_REDIS_URL="+red.URL())
	client := h2Client()
	ck := h2CounterCookie(t, client, a.addr)
	const streams = 10
	conn := testh2.Dial(t, a.addr, 0x4, 0) // SETTINGS_INITIAL_WINDOW_SIZE
	var frames [][]byte
	for i := range streams {
		frames = append(frames, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, uint32(2*i+1),
			testh2.Block([]testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/bigsess.php"}, {"cookie", "sessionid=" + ck.Value}})))
	}
	if err := conn.Write(frames...); err != nil {
		t.Fatal(err)
	}
	if !poll(15*time.Second, func() bool { return a.runs("bigsess") == streams }) {
		t.Errorf("bigsess.php ran %d of %d times: unread responses hold the session's lock", a.runs("bigsess"), streams)
	}
	req, _ := http.NewRequest("GET", "https://"+a.addr+"/counter.php", nil)
	req.AddCookie(ck)
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	t.Logf("%d unread responses of one session: bigsess.php ran %d times, the session's next request answered %q in %v", streams, a.runs("bigsess"), b, took.Round(time.Millisecond))
	if res.StatusCode != 200 || string(b) != fmt.Sprint(streams+2) || took > 5*time.Second {
		t.Errorf("the session's next request: %d %q after %v, want %d at once", res.StatusCode, b, took, streams+2)
	}
	conn.Close()
}

// TestCVE_2019_9511_UnreadResponsesUnbuffered: with
// SESSIONGATE_RESPONSE_BUFFERING=off PHP waits for the client, so unread
// responses (window 0) hold php-fpm's workers; SESSIONGATE_WRITE_TIMEOUT
// is what frees them, and a legitimate client is served after it.
func TestCVE_2019_9511_UnreadResponsesUnbuffered(t *testing.T) {
	t.Parallel()
	a := startH2Attack(t, 2, "SESSIONGATE_RESPONSE_BUFFERING=off", "SESSIONGATE_WRITE_TIMEOUT=2s")
	base := a.baseline(t)
	conn := testh2.Dial(t, a.addr, 0x4, 0) // SETTINGS_INITIAL_WINDOW_SIZE
	var frames [][]byte
	for i := range 4 {
		frames = append(frames, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, uint32(2*i+1), testh2.Get("/big.php")))
	}
	if err := conn.Write(frames...); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "php-fpm's two workers to be busy with unread responses", func() bool {
		return heldBy(t, a.p, a.port).busy == 2
	})
	start := time.Now()
	took := a.legit(t)
	t.Logf("2 workers held by unread responses: a legitimate page came after %v (write timeout 2 s); big.php ran %d times",
		took.Round(time.Millisecond), a.runs("big"))
	if took > 10*time.Second {
		t.Errorf("the legitimate client waited %v", time.Since(start))
	}
	conn.Close()
	a.settled(t, "unread unbuffered responses", base)
}

// TestSlowlorisAndSlowPOST (CVE-2007-6750 and its kind, over HTTP/1.1 on
// the TLS listener): 40 clients send request headers a byte every 100 ms,
// 20 open TCP connections and never start TLS, and 20 send a POST body of
// 100 KB at 1 KB every 200 ms (each read within SESSIONGATE_READ_TIMEOUT,
// so never cut). Headers are bounded by SESSIONGATE_READ_HEADER_TIMEOUT
// (1 s here), the TLS handshake too; the slow bodies are read by the
// gateway (request buffering) with no php-fpm worker held and PHP not run
// before a body is whole; a legitimate client is served all along.
func TestSlowlorisAndSlowPOST(t *testing.T) {
	t.Parallel()
	a := startH2Attack(t, 2, "SESSIONGATE_READ_HEADER_TIMEOUT=1s", "SESSIONGATE_READ_TIMEOUT=1s")
	base := a.baseline(t)
	before := a.runs("count")
	tlsDial := func() net.Conn {
		c, err := tls.Dial("tcp", a.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Error(err)
			return nil
		}
		return c
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var headerCut []time.Duration
	var handshakeCut []time.Duration
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tlsDial()
			if c == nil {
				return
			}
			defer c.Close()
			start := time.Now()
			msg := "GET /count.php HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Slow: aaaa\r\n", 20)
			for i := 0; i < len(msg); i++ {
				if _, err := c.Write([]byte{msg[i]}); err != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			mu.Lock()
			headerCut = append(headerCut, time.Since(start))
			mu.Unlock()
		}()
	}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", a.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			c.Read(make([]byte, 1)) // until the gateway closes
			mu.Lock()
			handshakeCut = append(handshakeCut, time.Since(start))
			mu.Unlock()
		}()
	}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tlsDial()
			if c == nil {
				return
			}
			defer c.Close()
			start := time.Now()
			io.WriteString(c, "POST /count.php HTTP/1.1\r\nHost: x\r\nContent-Length: 102400\r\n\r\n")
			chunk := strings.Repeat("b", 1024)
			for range 100 {
				if _, err := io.WriteString(c, chunk); err != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
				if time.Since(start) > 3*time.Second {
					return // leaves mid-body
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	var h gwHeld
	for i := range 4 {
		took := a.legit(t)
		h = heldBy(t, a.p, a.port)
		t.Logf("%.1f s into the attack: legitimate page in %v, %d client connections, %v busy FastCGI connections", 0.5+0.6*float64(i), took.Round(time.Millisecond), h.clients, h.busy)
		if took > 5*time.Second {
			t.Errorf("the legitimate client waited %v", took)
		}
		if h.busy > 0 {
			t.Errorf("%v php-fpm connections busy while only slow clients send", h.busy)
		}
		time.Sleep(500 * time.Millisecond)
	}
	wg.Wait()
	maxOf := func(ds []time.Duration) time.Duration {
		var m time.Duration
		for _, d := range ds {
			m = max(m, d)
		}
		return m
	}
	t.Logf("slow headers cut after at most %v (%d clients), silent TLS connections after at most %v (%d)",
		maxOf(headerCut).Round(time.Millisecond), len(headerCut), maxOf(handshakeCut).Round(time.Millisecond), len(handshakeCut))
	if d := maxOf(headerCut); d > 5*time.Second {
		t.Errorf("a client sending headers a byte every 100 ms was cut only after %v (SESSIONGATE_READ_HEADER_TIMEOUT=1s)", d)
	}
	if d := maxOf(handshakeCut); d > 5*time.Second {
		t.Errorf("a connection that never started TLS was closed only after %v", d)
	}
	if ran := a.runs("count") - before; ran != 4 {
		t.Errorf("count.php ran %d times, want 4, once for each legitimate client", ran)
	}
	a.settled(t, "slow clients", base)
}

// countWSGI counts its runs in the file COUNT_FILE names, then answers;
// a request for ?warm counts nothing and takes 300 ms, so that requests
// sent at once each need a connection of their own.
const countWSGI = `import os, time
def application(environ, start_response):
    if environ.get("QUERY_STRING") == "warm":
        time.sleep(0.3)
    else:
        with open(os.environ["COUNT_FILE"], "a") as f:
            f.write("x")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ran"]
`

// TestCVE_2023_44487_RapidResetDjango: rapid reset on a Django path, in
// front of a real gunicorn whose kept-alive connections are at hand: a
// stream reset before its request went out costs gunicorn nothing, and the
// connection is closed past the reset limit. Before, a request handed a
// kept-alive connection was written although its client had reset it, and
// gunicorn ran the view for nobody.
//
// How many times the view runs is not exact, and cannot be made so from
// outside: HEADERS and RST_STREAM come in one write, but net/http starts
// the stream's handler at the HEADERS, and when that goroutine gets ahead
// of the connection's frame loop the request goes out before the reset is
// known, and gunicorn rightly runs it: 0 to 2 times in 8000 resets,
// measured alone and under other tests. The bug ran the view once per
// kept-alive connection at hand, each taken by a reset request and then
// closed: with 4 at hand, as this test had, 4 runs against a bound of 1,
// which the legitimate race once broke under the whole suite's load. With
// 32 at hand the bug runs it 32 or 33 times (the fix reverted), and the
// bound sits between: under 8.
func TestCVE_2023_44487_RapidResetDjango(t *testing.T) {
	t.Parallel()
	harness.Require(t, "gunicorn")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "countapp.py"), []byte(countWSGI), 0o644); err != nil {
		t.Fatal(err)
	}
	countFile := filepath.Join(dir, "runs")
	const idle = 32
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: dir, App: "countapp:application", Workers: 1, Threads: idle, Env: []string{"COUNT_FILE=" + countFile}})
	a := startH2Attack(t, 2, "SESSIONGATE_DJANGO_URL="+g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/")
	runs := func() int {
		b, _ := os.ReadFile(countFile)
		return len(b)
	}
	get := []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/dj/"}}
	warm := []testh2.Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/dj/?warm"}}
	// idle requests at once: as many kept-alive connections, idle for
	// less than gunicorn's keep-alive (2 s) when the resets come.
	var wg sync.WaitGroup
	for range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := testh2.Do(t, a.addr, warm, nil); res.Status != 200 || res.Body != "ran" {
				t.Errorf("a first request: %+v", res)
			}
		}()
	}
	wg.Wait()
	before := runs()
	// Each connection is closed once past the reset limit (some 100
	// resets): eight of them, one after the other.
	const pairs, conns = 1000, 8
	var frames [][]byte
	for i := range pairs {
		id := uint32(2*i + 1)
		frames = append(frames, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, id, testh2.Block(get)), testh2.RST(id))
	}
	closed := 0
	for range conns {
		c := testh2.Dial(t, a.addr)
		flood(c, frames)
		if c.WaitClosed(5 * time.Second) {
			closed++
		}
		c.Close()
	}
	time.Sleep(500 * time.Millisecond) // for views still running
	ran := runs() - before
	t.Logf("%d connections of %d reset streams each, %d kept-alive connections at hand: %d closed by the gateway, the view ran %d times", conns, pairs, idle, closed, ran)
	if closed != conns {
		t.Errorf("the gateway closed %d of %d connections", closed, conns)
	}
	if ran >= idle/4 {
		t.Errorf("gunicorn ran the view %d times for the resets of %d connections, want under %d", ran, conns, idle/4)
	}
	if res := testh2.Do(t, a.addr, get, nil); res.Status != 200 || res.Body != "ran" {
		t.Errorf("a legitimate request after: %+v", res)
	}
}

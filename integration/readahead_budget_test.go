package integration

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testh2"
	"github.com/sessiongate/sessiongate/internal/testtls"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// readAheadFileBytes sums the sizes of the read-ahead temp files pid has
// open (unlinked, so only /proc sees them).
func readAheadFileBytes(t *testing.T, pid int) int64 {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.Contains(target, "sessiongate-response-") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
			sum += fi.Size()
		}
	}
	return sum
}

// TestReadAheadLimitBoundsUnreadResponses: an HTTP/2 client that opens
// several large PHP downloads and reads none (it never opens the
// flow-control windows) makes the gateway hold no more than
// SESSIONGATE_RESPONSE_BUFFERING_LIMIT in temp files between them, with one
// warning; other pages still work, and each download arrives whole once the
// client reads. Before the limit, each response was read ahead up to 1 GiB,
// so a few such clients could fill the temp directory (six 2 MiB downloads
// left 12 MiB of temp files here).
func TestReadAheadLimitBoundsUnreadResponses(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	const streams, size, limit = 6, 2 << 20, 512 << 10
	root := gwSite(t)
	writeTree(t, root, map[string]string{
		"big.php": fmt.Sprintf(`<?php for ($i = 0; $i < %d; $i++) { echo str_repeat('b', 65536); flush(); }`, size/65536),
	})
	// More workers than stalled downloads: once the limit is reached
	// each of them holds its worker, as behind nginx.
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: streams + 2})
	cert, key := testtls.Pair(t)
	p := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off", "SESSIONGATE_COMPRESS=off",
		"SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + key,
		"SESSIONGATE_PHP_MAX_CONNS=" + fmt.Sprint(streams+2),
		"SESSIONGATE_RESPONSE_BUFFERING_LIMIT=" + fmt.Sprint(limit),
		"TMPDIR=" + t.TempDir(),
	})
	addr := strings.TrimPrefix(p.URL, "http://")

	c := testh2.Dial(t, addr)
	var heads [][]byte
	for i := range streams {
		heads = append(heads, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, uint32(2*i+1), testh2.Get("/big.php")))
	}
	if err := c.Write(heads...); err != nil {
		t.Fatal(err)
	}
	// Wait until the gateway holds steady: the same temp file bytes for
	// half a second.
	var held int64 = -1
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		now := readAheadFileBytes(t, p.cmd.Process.Pid)
		if now == held && len(c.Seen().Statuses) == streams {
			break
		}
		held = now
	}
	if s := c.Seen(); len(s.Statuses) != streams {
		t.Fatalf("response headers for %d of %d streams", len(s.Statuses), streams)
	}
	// The limit counts memory too; beyond it each response holds at
	// most one 32 KiB chunk.
	if max := int64(limit + streams*(32<<10)); held > max {
		t.Fatalf("%d unread responses hold %d bytes in temp files, over SESSIONGATE_RESPONSE_BUFFERING_LIMIT %d (+ a chunk each)", streams, held, limit)
	}
	m := metricstest.Scrape(t, p.Admin+"/metrics")
	if used := m["sessiongate_response_buffering_bytes"]; used > limit || used < limit/2 {
		t.Errorf("sessiongate_response_buffering_bytes = %v with the limit reached, want near %d", used, limit)
	}
	if m["sessiongate_response_buffering_limit_reached_total"] == 0 {
		t.Error("sessiongate_response_buffering_limit_reached_total stayed 0")
	}

	// A page while the downloads wait.
	res, err := h2Client().Get("https://" + addr + "/info.php")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("a page while %d downloads wait: %d", streams, res.StatusCode)
	}

	// The client reads: every download arrives whole.
	var windows [][]byte
	open := binary.BigEndian.AppendUint32(nil, 1<<30)
	windows = append(windows, testh2.Frame(testh2.TypeWindowUpdate, 0, 0, open))
	for i := range streams {
		windows = append(windows, testh2.Frame(testh2.TypeWindowUpdate, 0, uint32(2*i+1), open))
	}
	if err := c.Write(windows...); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); c.Seen().Ended < streams && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if s := c.Seen(); s.Ended != streams || s.Bytes < streams*size {
		t.Fatalf("after the client read: %d of %d streams ended, %d bytes received, want over %d", s.Ended, streams, s.Bytes, streams*size)
	}
	logs := p.stderr.String()
	if n := strings.Count(logs, "SESSIONGATE_RESPONSE_BUFFERING_LIMIT; more go at their clients' pace"); n != 1 {
		t.Errorf("the limit was warned of %d times, want once:\n%s", n, logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"path":"/big.php"`) && !strings.Contains(line, `"status":200`) {
			t.Errorf("a download logged as %s", line)
		}
	}
	if used := metricstest.Scrape(t, p.Admin+"/metrics")["sessiongate_response_buffering_bytes"]; used != 0 {
		t.Errorf("sessiongate_response_buffering_bytes = %v after every download ended", used)
	}
}

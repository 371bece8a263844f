package integration

import (
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testh2"
)

// smallTmpfs mounts a tmpfs of size (mount's units, e.g. 256k) on a fresh
// directory and unmounts it at cleanup; it skips the test where mounting
// is not allowed (not root, no CAP_SYS_ADMIN), except in CI, where
// nothing may be skipped.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=1777", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a small tmpfs for a full temp directory (CI runs the tests as root): %v %s", err, out)
		}
		t.Skipf("cannot mount a small tmpfs for a full temp directory: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestFullTempDirReadAheadLosesNothing: when the temp directory fills
// while a PHP response is read ahead of a client that reads nothing yet,
// the rest waits in memory (its worker waits too) and the client gets
// the whole response once it reads, with the full disk logged. Before,
// the response ended where the disk filled: the client got 384 KiB of
// 2 MiB, its stream ended early.
func TestFullTempDirReadAheadLosesNothing(t *testing.T) {
	t.Parallel()
	tmp := smallTmpfs(t, "256k")
	const size = 2 << 20
	p, addr := startH2Site(t, map[string]string{
		"big.php": `<?php for ($i = 0; $i < 32; $i++) { echo str_repeat('b', 65536); flush(); }`,
	}, "SESSIONGATE_SESSIONS=off", "SESSIONGATE_COMPRESS=off", "TMPDIR="+tmp)
	c := testh2.Dial(t, addr)
	if err := c.Write(testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, 1, testh2.Get("/big.php"))); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, p.stderr, "no space left on device")
	open := binary.BigEndian.AppendUint32(nil, 1<<30)
	if err := c.Write(testh2.Frame(testh2.TypeWindowUpdate, 0, 0, open), testh2.Frame(testh2.TypeWindowUpdate, 0, 1, open)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); c.Seen().Ended < 1 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	s := c.Seen()
	if s.Statuses[1] != 200 || s.Ended != 1 || s.Bytes < size {
		t.Fatalf("response read ahead into a full temp dir: status %d, ended %v, %d bytes received, want over %d", s.Statuses[1], s.Ended == 1, s.Bytes, size)
	}
	line := waitForLog(t, p.stderr, `"path":"/big.php"`)
	if strings.Contains(line, `"aborted":true`) || !strings.Contains(line, `"bytes":2097152`) {
		t.Errorf("access log: %s", line)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
	// The default limit (1 GiB) is over this temp dir's 256 KiB: said at
	// start.
	waitForLog(t, p.stderr, "SESSIONGATE_RESPONSE_BUFFERING_LIMIT is more than the temp directory's free space")
}

// TestFullTempDirRequestBody: an upload that does not fit in a full temp
// directory gets 500 on the PHP and the Django path, with a log line
// naming the full disk, and the next upload that fits in memory still
// works. Before, Django's path answered 502 and counted the gateway's
// disk as Django's failure, its log line not saying it was the upload's
// spool.
func TestFullTempDirRequestBody(t *testing.T) {
	t.Parallel()
	tmp := smallTmpfs(t, "128k")
	p, addr := startH2Site(t, nil, "SESSIONGATE_SESSIONS=off", "SESSIONGATE_MAX_BODY=2m", "TMPDIR="+tmp)
	c := h2Client()
	for _, path := range []string{"/echo.php", "/dj/echo"} {
		res, err := c.Post("https://"+addr+path, "application/octet-stream", strings.NewReader(strings.Repeat("u", 512<<10)))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		res.Body.Close()
		if res.StatusCode != 500 {
			t.Errorf("%s: 512 KiB upload into a full temp dir: %d, want 500", path, res.StatusCode)
		}
		line := waitForLog(t, p.stderr, `"path":"`+path+`"`)
		if !strings.Contains(line, "no space left on device") {
			t.Errorf("%s: the access log does not name the full disk: %s", path, line)
		}
		res, err = c.Post("https://"+addr+path, "application/octet-stream", strings.NewReader(strings.Repeat("u", 10<<10)))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: 10 KiB upload after a full temp dir: %d", path, res.StatusCode)
		}
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
}

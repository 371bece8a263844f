package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNoWritableTmp: docker-compose.yml mounts a volume on the gateway's
// /tmp, its only writable place, and says what happens without one: a
// request body over 64 KiB (any with SESSIONGATE_REQUEST_BUFFERING=on, the
// default) fails with 500, and a response read ahead of a slow client
// stays in memory (the client still gets it whole). Run with TMPDIR
// naming a directory that does not exist, as a read-only /tmp would fail.
func TestNoWritableTmp(t *testing.T) {
	t.Parallel()
	gw, addr, root := startPHPBinary(t, "TMPDIR="+filepath.Join(t.TempDir(), "missing"))
	if err := os.WriteFile(filepath.Join(root, "big_out.php"), []byte(`<?php echo str_repeat("z", 16 << 20);`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{60 << 10, 100 << 10} {
		res, err := http.Post(gw.URL+"/echo.php", "application/octet-stream", strings.NewReader(strings.Repeat("u", size)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		want := http.StatusOK
		if size > 64<<10 {
			want = http.StatusInternalServerError
		}
		if res.StatusCode != want || want == 200 && string(b) != fmt.Sprintf("len=%d", size) {
			t.Errorf("%d-byte upload without a temp dir: %d %q, want %d", size, res.StatusCode, b, want)
		}
	}

	// A client that reads nothing for a while, then the whole 16 MiB: more
	// than loopback's socket buffers hold (4 MiB fitted once: a send
	// buffer grows to 4 MiB, net.ipv4.tcp_wmem's maximum here).
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /big_out.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	time.Sleep(500 * time.Millisecond)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if res.StatusCode != 200 || n != 16<<20 || err != nil {
		t.Errorf("16 MiB response to a slow client without a temp dir: %d, %d bytes, %v", res.StatusCode, n, err)
	}
	logs := gw.stderr.String()
	if !strings.Contains(logs, `"status":500`) || !strings.Contains(logs, "spool request body: open "+filepath.Dir(filepath.Dir(root))) {
		t.Errorf("the 500 left no log line naming the temp file:\n%s", logs)
	}
	if !strings.Contains(logs, "no temp file for a response read ahead") {
		t.Errorf("the response was not read ahead (the test did not reach the temp file):\n%s", logs)
	}
}

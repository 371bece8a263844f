package integration

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

// TestPHPSizedBodyStall: PHP declares a Content-Length, sends part of the
// body (or only its headers) and stalls past SESSIONGATE_PHP_TIMEOUT. The
// client must get an answer: the 504 (the PHP path holds a short response
// until it is whole, so nothing has left), or the header and what came,
// then the cut, as from nginx. Never an empty reply, which on a
// kept-alive connection makes a browser send the request again, running
// the script twice (the Django path's defect).
func TestPHPSizedBodyStall(t *testing.T) {
	t.Parallel()
	g := startGW(t, func(c *config.Config) { c.PHPTimeout = time.Second })
	script := `<?php
while (ob_get_level()) ob_end_flush();
header('Content-Type: application/octet-stream');
header('Content-Length: 1000');
echo str_repeat('p', (int)$_GET['part']);
flush();
sleep(4);
`
	if err := os.WriteFile(filepath.Join(g.Root, "stall.php"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, part := range []int{300, 0} {
		c, err := net.Dial("tcp", g.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(8 * time.Second))
		io.WriteString(c, "GET /stall.php?part="+strconv.Itoa(part)+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		got, _ := io.ReadAll(c)
		c.Close()
		head, body, _ := strings.Cut(string(got), "\r\n\r\n")
		t.Logf("part %d: %.120q", part, got)
		answered504 := strings.HasPrefix(head, "HTTP/1.1 504 ") && body == "Gateway Timeout\n"
		sentPart := strings.HasPrefix(head, "HTTP/1.1 200 ") && strings.Contains(head, "Content-Length: 1000") && body == strings.Repeat("p", part)
		if !answered504 && !sentPart {
			t.Errorf("part %d: client got %.200q, want the header and the part, then a cut", part, got)
		}
	}
}

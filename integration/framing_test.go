package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSmallPHPPageFraming: the gateway holds a small response without
// Content-Length (PHP declares none) and gives it the Content-Length
// net/http would, so that its one write fails where the access log sees
// it (server.TestFinalWriteOfSmallPageCutIsLogged). What reaches the
// client from a real php-fpm stays as net/http framed it: the length for a
// page up to 2 KiB, an empty redirect and a small compressed page, chunked
// past 2 KiB, none for a HEAD whose body PHP left out, or a 204; over
// HTTP/1.0 too, where a page past 2 KiB ends with the connection.
func TestSmallPHPPageFraming(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	writeTree(t, g.Root, map[string]string{
		"n.php":      `<?php header('Content-Type: text/html'); echo str_repeat('x', (int)$_GET['n']);`,
		"moved.php":  `<?php header('Location: /n.php?n=1', true, 302);`,
		"nobody.php": `<?php http_response_code(204);`,
	})
	for _, c := range []struct {
		request, wantStatus, wantFraming string
	}{
		{"GET /n.php?n=11 HTTP/1.1", "200", "Content-Length: 11"},
		{"GET /n.php?n=0 HTTP/1.1", "200", "Content-Length: 0"},
		{"GET /n.php?n=2048 HTTP/1.1", "200", "Content-Length: 2048"},
		{"GET /n.php?n=2049 HTTP/1.1", "200", "Transfer-Encoding: chunked"},
		{"GET /moved.php HTTP/1.1", "302", "Content-Length: 0"},
		{"HEAD /n.php?n=11 HTTP/1.1", "200", "none"},
		{"GET /nobody.php HTTP/1.1", "204", "none"},
		{"GET /n.php?n=1500 HTTP/1.1\r\nAccept-Encoding: gzip", "200", "Content-Length: "},
		{"GET /n.php?n=11 HTTP/1.0", "200", "Content-Length: 11"},
		{"GET /n.php?n=2049 HTTP/1.0", "200", "none"},
	} {
		c := c
		conn, err := net.Dial("tcp", g.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "%s\r\nHost: x\r\n\r\n", c.request)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		req, _ := http.NewRequest(strings.Fields(c.request)[0], "/", nil)
		res, err := http.ReadResponse(br, req)
		if err != nil {
			conn.Close()
			t.Fatalf("%q: %v", c.request, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		conn.Close()
		framing := "none"
		switch {
		case len(res.TransferEncoding) > 0:
			framing = "Transfer-Encoding: " + strings.Join(res.TransferEncoding, ",")
		case res.Header.Get("Content-Length") != "":
			framing = "Content-Length: " + res.Header.Get("Content-Length")
		}
		if got := fmt.Sprint(res.StatusCode); got != c.wantStatus || !strings.HasPrefix(framing, c.wantFraming) || err != nil {
			t.Errorf("%q: %s, %s, body %d bytes (%v); want %s, %s", c.request, got, framing, len(body), err, c.wantStatus, c.wantFraming)
		}
		if strings.Contains(c.request, "gzip") && (res.Header.Get("Content-Encoding") != "gzip" || fmt.Sprint(len(body)) != res.Header.Get("Content-Length") || gunzipAll(t, body) != strings.Repeat("x", 1500)) {
			t.Errorf("%q: %v, %d bytes, want gzip of its Content-Length", c.request, res.Header, len(body))
		}
	}
}

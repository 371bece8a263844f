package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The bench reads evloop's figures as a front's; these tests keep it a
// front that answers what it is asked, so that a figure never comes from
// a loop that fails fast.

// TestMain runs evloop itself when a test starts this binary as a child:
// the loop locks its thread and never returns, so it runs in its own
// process, as in the bench.
func TestMain(m *testing.M) {
	if os.Getenv("EVLOOP_TEST_CHILD") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// fakeFPM answers every FastCGI request with its SCRIPT_FILENAME,
// REQUEST_URI and HTTP_HOST, keeping connections open as php-fpm does with
// FCGI_KEEP_CONN.
type fakeFPM struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startFakeFPM(t *testing.T) *fakeFPM {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeFPM{ln: ln}
	t.Cleanup(func() { ln.Close(); f.closeConns() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			go f.serve(c)
		}
	}()
	return f
}

// closeConns closes every connection, as a php-fpm restart does.
func (f *fakeFPM) closeConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func (f *fakeFPM) serve(c net.Conn) {
	r := bufio.NewReader(c)
	var params []byte
	for {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return
		}
		content := make([]byte, int(h[4])<<8|int(h[5]))
		if _, err := io.ReadFull(r, content); err != nil {
			return
		}
		if _, err := r.Discard(int(h[6])); err != nil {
			return
		}
		switch {
		case h[1] == fcgiParams:
			params = append(params, content...)
		case h[1] == fcgiStdin && len(content) == 0:
			p := decodeParams(params)
			params = nil
			body := fmt.Sprintf("script=%s uri=%s host=%s", p["SCRIPT_FILENAME"], p["REQUEST_URI"], p["HTTP_HOST"])
			out := "Content-Type: text/plain\r\n\r\n" + body
			var resp []byte
			resp = appendRecord(resp, fcgiStdout, []byte(out))
			resp = appendRecord(resp, fcgiEndRequest, make([]byte, 8))
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}
}

func decodeParams(b []byte) map[string]string {
	m := map[string]string{}
	length := func() int {
		if b[0] < 128 {
			n := int(b[0])
			b = b[1:]
			return n
		}
		n := int(binary.BigEndian.Uint32(b) &^ (1 << 31))
		b = b[4:]
		return n
	}
	for len(b) > 0 {
		nl, vl := length(), length()
		m[string(b[:nl])] = string(b[nl : nl+vl])
		b = b[nl+vl:]
	}
	return m
}

// startEvloop runs evloop in front of fpm and, when django is set, that
// server for /dj/; it returns evloop's address.
func startEvloop(t *testing.T, fpm string, docroot string, django string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EVLOOP_TEST_CHILD=1",
		"SESSIONGATE_LISTEN="+addr,
		"SESSIONGATE_PHP_FPM="+fpm,
		"SESSIONGATE_DOCUMENT_ROOT="+docroot,
		"SESSIONGATE_PHP_MAX_CONNS=2")
	if django != "" {
		cmd.Env = append(cmd.Env, "SESSIONGATE_DJANGO_URL="+django, "SESSIONGATE_DJANGO_PATHS=/dj/")
	}
	// A test binary killed by its timeout runs no cleanup: the child dies
	// with it instead of listening on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("evloop's stderr: %s", stderr.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp4", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("evloop did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpClient bounds every request, so that a loop that never answers fails
// the test instead of hanging it.
var httpClient = &http.Client{Timeout: 10 * time.Second}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestPHPRequests(t *testing.T) {
	docroot := t.TempDir()
	if err := os.WriteFile(filepath.Join(docroot, "hello.php"), []byte("<?php"), 0o644); err != nil {
		t.Fatal(err)
	}
	fpm := startFakeFPM(t)
	addr := startEvloop(t, fpm.ln.Addr().String(), docroot, "")

	status, body := get(t, "http://"+addr+"/hello.php?a=1")
	want := "script=" + docroot + "/hello.php uri=/hello.php?a=1 host=" + addr
	if status != 200 || body != want {
		t.Errorf("hello.php: %d %q, want 200 %q", status, body, want)
	}
	if status, _ := get(t, "http://"+addr+"/missing.php"); status != 404 {
		t.Errorf("missing.php: %d, want 404", status)
	}
	resp, err := httpClient.Post("http://"+addr+"/hello.php", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 501 {
		t.Errorf("a request with a body: %d, want 501 (evloop takes none)", resp.StatusCode)
	}

	// Two requests sent at once on one connection are answered in order.
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /hello.php?n=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /hello.php?n=2 HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	for n := 1; n <= 2; n++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("pipelined answer %d: %v", n, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), fmt.Sprintf("uri=/hello.php?n=%d ", n)) {
			t.Errorf("pipelined answer %d: %q", n, b)
		}
	}

	// php-fpm closing its connections (a restart): new ones are dialled
	// as requests need them. A request sent on a closed one before the
	// loop saw the close gets 502, as behind nginx; a later one gets 200.
	fpm.closeConns()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, body := get(t, "http://"+addr+"/hello.php")
		if status == 200 && strings.HasPrefix(body, "script=") {
			break
		}
		if status != 502 || time.Now().After(deadline) {
			t.Fatalf("after php-fpm closed its connections: %d %q, want 200", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDjangoRequests(t *testing.T) {
	django := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dj/chunked" {
			// No length: Go's server sends it chunked.
			for i := range 3 {
				fmt.Fprintf(w, "part%d-%s", i, strings.Repeat("x", 30000))
				w.(http.Flusher).Flush()
			}
			return
		}
		fmt.Fprintf(w, "xff=%s proto=%s host=%s path=%s", r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), r.URL.Path)
	}))
	defer django.Close()
	fpm := startFakeFPM(t)
	addr := startEvloop(t, fpm.ln.Addr().String(), t.TempDir(), django.URL)

	status, body := get(t, "http://"+addr+"/dj/whoami")
	if want := "xff=127.0.0.1 proto=http host=" + addr + " path=/dj/whoami"; status != 200 || body != want {
		t.Errorf("/dj/whoami: %d %q, want 200 %q", status, body, want)
	}
	status, body = get(t, "http://"+addr+"/dj/chunked")
	if status != 200 || len(body) != 3*(len("part0-")+30000) || !strings.HasPrefix(body, "part0-") || !strings.Contains(body, "part2-") {
		t.Errorf("/dj/chunked: %d, %d bytes, want 200 and the three parts", status, len(body))
	}
	// Kept-alive connections the upstream closes are replaced.
	django.CloseClientConnections()
	time.Sleep(100 * time.Millisecond)
	if status, _ := get(t, "http://"+addr+"/dj/again"); status != 200 {
		t.Errorf("after the upstream closed its connections: %d, want 200", status)
	}
}

// An upstream that drops a kept-alive connection as the next request
// arrives, as gunicorn does when its keep-alive timeout ends just then,
// costs the client nothing: the request goes again on a new connection.
func TestDjangoRequestSentAgainOnDroppedConnection(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				if _, err := http.ReadRequest(r); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				// The next request on this connection is read and
				// dropped unanswered.
				http.ReadRequest(r)
			}()
		}
	}()
	fpm := startFakeFPM(t)
	addr := startEvloop(t, fpm.ln.Addr().String(), t.TempDir(), "http://"+ln.Addr().String())
	for i := range 3 {
		if status, body := get(t, "http://"+addr+"/dj/x"); status != 200 || body != "ok" {
			t.Errorf("request %d: %d %q, want 200 \"ok\"", i, status, body)
		}
	}
}

func TestChunkedLength(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"0\r\n\r\n", 5},
		{"3\r\nabc\r\n0\r\n\r\n", 13},
		{"3;ext=1\r\nabc\r\n0\r\n\r\nNEXT", 19},
		{"3\r\nabc\r\n", -1},
		{"3\r\nab", -1},
		{"0\r\n", -1},
		{"zz\r\n", -2},
		{"-1\r\n", -2},
	} {
		if got := chunkedLength([]byte(tc.in)); got != tc.want {
			t.Errorf("chunkedLength(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

package integration

// The gateway's own log lines against a real php-fpm: each one a JSON
// object a log pipeline can take as it is.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestLogPHPStderrKeepsItsMessage: PHP's error_log() text reaches the log
// (through the FastCGI transport, and through the session bridge for a
// tail it held back) under its own key, never as a second "msg" in the
// same JSON object: most parsers keep the last of two equal keys, so the
// record's message "php stderr" was replaced by PHP's text, and strict
// ones (Elasticsearch) refuse the whole line, dropping exactly the PHP
// errors an operator looks for.
func TestLogPHPStderrKeepsItsMessage(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "noisy.php"), []byte(`<?php
session_start();
error_log("first complaint");
error_log("price was 5; PHP");
echo "done";
`), 0o644); err != nil {
		t.Fatal(err)
	}
	prepend := writePrepend(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_INDEX=off",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_PHP_PREPEND=" + prepend,
	})
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateways(t, cfg, 1)[0]
	logs := gw.Logs

	res, err := http.Get(gw.URL + "/noisy.php")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "done" {
		t.Fatalf("noisy.php: %d %q", res.StatusCode, body)
	}

	var stderr []string
	fromBridge := 0 // the held tail ("; PHP"), which the bridge logs itself
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if err := uniqueKeys([]byte(line)); err != nil {
			t.Errorf("log line with %v: %s", err, line)
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line not JSON: %v: %s", err, line)
		}
		if rec["msg"] == "php stderr" {
			s, _ := rec["stderr"].(string)
			stderr = append(stderr, s)
			if s == "PHP" {
				fromBridge++
			}
			// The bridge's records too (they had none).
			if rec["backend"] != fpm.Addr {
				t.Errorf("php stderr record with backend %v, want %s: %s", rec["backend"], fpm.Addr, line)
			}
		}
	}
	// The second message ends like the start of a session frame's
	// wrapper, so the bridge holds its tail back and logs it at the end:
	// at least two records.
	all := strings.Join(stderr, "\n")
	for _, want := range []string{"first complaint", "price was 5"} {
		if !strings.Contains(all, want) {
			t.Errorf("PHP's %q not logged as a php stderr record's stderr; got %q", want, stderr)
		}
	}
	if fromBridge == 0 || len(stderr) < 2 {
		t.Errorf("%d php stderr records with their text under stderr, %d of them from the bridge; want both the transport's and the bridge's: %q", len(stderr), fromBridge, stderr)
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.String())
	}
}

// uniqueKeys reports a JSON object (at any depth) holding the same key
// twice, which encoding/json itself accepts silently.
func uniqueKeys(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := k.(string)
				if seen[key] {
					return fmt.Errorf("duplicate key %q", key)
				}
				seen[key] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token() // '}'
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token() // ']'
			return err
		}
		return nil
	}
	if err := walk(); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data")
	}
	return nil
}

// TestLogPHPStderrLineIsBounded: a script that logs binary or control bytes
// (an upload, a client's input, a serialized blob) gets a "php stderr"
// record short enough to stay one line in a log pipeline. The per-request
// budget counted PHP's raw bytes (4096), but slog writes a control byte or
// an invalid one as six (\u0001, \ufffd): real php-fpm packs several
// error_log() messages into one record, and eight of 1000 such bytes made
// a line of 24 KB, which Docker's json-file driver (16 KiB) splits into
// fragments that are no longer JSON.
func TestLogPHPStderrLineIsBounded(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "binary.php"), []byte(`<?php
for ($i = 0; $i < 8; $i++) { error_log(str_repeat("\x01\xff", 500)); }
error_log("after the binary");
echo "done";
`), 0o644); err != nil {
		t.Fatal(err)
	}
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_INDEX=off",
		"SESSIONGATE_SESSIONS=off",
	})
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateways(t, cfg, 1)[0]
	logs := gw.Logs

	res, err := http.Get(gw.URL + "/binary.php")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "done" {
		t.Fatalf("binary.php: %d %q", res.StatusCode, body)
	}
	stderr, dropped := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line not JSON: %v: %.200s", err, line)
		}
		switch rec["msg"] {
		case "php stderr":
			stderr++
			// The budget (4 KiB) and the record's other fields.
			if len(line) > 5<<10 {
				t.Errorf("php stderr line of %d bytes: %.200s", len(line), line)
			}
		case "php stderr over the log limit; not logged":
			dropped++
		}
	}
	if stderr == 0 || dropped != 1 {
		t.Errorf("%d php stderr records, %d saying the rest was dropped; want some and one:\n%.2000s", stderr, dropped, logs.String())
	}
}

// TestFinalWriteCutIsLogged: a page whose end net/http still held when the
// handler returned (PHP declared its Content-Length, so nothing was
// flushed as it came) and whose write then failed: here
// SESSIONGATE_WRITE_TIMEOUT passed while PHP finished the page. The
// client got nothing; the access line said 200 with all 3100 bytes, at
// info level. It says the response was cut, at warn, now.
func TestFinalWriteCutIsLogged(t *testing.T) {
	t.Parallel()
	g := startGW(t, func(c *config.Config) { c.WriteTimeout = 300 * time.Millisecond; c.Compress = false })
	writeTree(t, g.Root, map[string]string{
		"late.php": `<?php while (ob_get_level()) { ob_end_flush(); } header('Content-Length: 3100'); echo str_repeat('h', 3000); flush(); usleep(600000); echo str_repeat('t', 100);`,
	})
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /late.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	line, ok := logLine(g.Logs, `"path":"/late.php"`)
	if !ok {
		t.Fatalf("no access line:\n%s", g.Logs.String())
	}
	if !strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, "response cut") || !strings.Contains(line, "timed out") {
		t.Errorf("the client got %d of 3100 bytes; logged as %s", len(got), line)
	}
}

// TestBodyOverTheLimitLoggedWithAccessLogOff: with SESSIONGATE_ACCESS_LOG
// off, a body over SESSIONGATE_MAX_BODY is a refusal logged at warn,
// however it is framed. Sent chunked, it was (the read stops at the
// limit, with an error); with a Content-Length over the limit, refused
// before a byte of it is read, the 413 left no line at all, nor did the
// 421 for a Host not in SESSIONGATE_SERVER_NAMES.
func TestBodyOverTheLimitLoggedWithAccessLogOff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "upload.php"), []byte(`<?php echo strlen(file_get_contents("php://input"));`), 0o644); err != nil {
		t.Fatal(err)
	}
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_ACCESS_LOG=off",
		"SESSIONGATE_MAX_BODY=1k",
		"SESSIONGATE_SERVER_NAMES=127.0.0.1,example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateways(t, cfg, 1)[0]
	for _, tc := range []struct {
		name, host string
		body       io.Reader
		status     int
		error      string
	}{
		{"chunked body", "", io.MultiReader(strings.NewReader(strings.Repeat("x", 4096))), 413, "too large"},
		{"Content-Length", "", strings.NewReader(strings.Repeat("x", 4096)), 413, "body of 4096 bytes (Content-Length) over SESSIONGATE_MAX_BODY (1024)"},
		{"Host not listed", "evil.example", strings.NewReader("x"), 421, `Host "evil.example" not in SESSIONGATE_SERVER_NAMES`},
	} {
		before := len(gw.Logs.String())
		req, _ := http.NewRequest("POST", gw.URL+"/upload.php", tc.body)
		if tc.host != "" {
			req.Host = tc.host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		// The line is written once the handler returns, which may be
		// after the client has its answer.
		var logged string
		poll(5*time.Second, func() bool {
			logged = strings.TrimSpace(gw.Logs.String()[before:])
			return strings.Contains(logged, `"msg":"request"`)
		})
		var line struct {
			Level, Msg, Error string
			Status            int
		}
		if err := json.Unmarshal([]byte(logged), &line); err != nil || res.StatusCode != tc.status {
			t.Errorf("%s: %d, logged %q; want %d and a line with SESSIONGATE_ACCESS_LOG=off", tc.name, res.StatusCode, logged, tc.status)
			continue
		}
		if line.Level != "WARN" || line.Msg != "request" || line.Status != tc.status || !strings.Contains(line.Error, tc.error) {
			t.Errorf("%s: logged %s, want a warning with status %d and error %q", tc.name, logged, tc.status, tc.error)
		}
	}
}

package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// slowMultipart POSTs a multipart form to target on addr, as a browser's
// upload form with PHP's progress field does: the field
// PHP_SESSION_UPLOAD_PROGRESS=key, then a file of size bytes, written in
// pieces with pause between them. It returns the response.
func slowMultipart(t *testing.T, addr, target, cookie, key string, size, pieces int, pause time.Duration) (int, string) {
	t.Helper()
	const boundary = "sgprogressboundary"
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"PHP_SESSION_UPLOAD_PROGRESS\"\r\n\r\n" + key + "\r\n" +
		"--" + boundary + "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nCookie: %s\r\nContent-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n%s",
		target, cookie, boundary, len(head)+size+len(tail), head)
	piece := size / pieces
	for i := 0; i < pieces; i++ {
		n := piece
		if i == pieces-1 {
			n = size - piece*(pieces-1)
		}
		if _, err := io.WriteString(c, strings.Repeat("u", n)); err != nil {
			t.Fatal(err)
		}
		if i < pieces-1 {
			time.Sleep(pause)
		}
	}
	io.WriteString(c, tail)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestSessionUploadProgressOn: a pool or php.ini with PHP's
// session.upload_progress.enabled on. That PHP then refuses every change of
// a session setting at run time, the prepend's session_set_save_handler()
// included ("Session ini settings cannot be changed at runtime when
// session.upload_progress.enabled is On"), so every PHP page through the
// gateway failed with 500. Upload progress cannot reach the gateway's
// session anyway: PHP writes it while the body arrives, before the prepend
// runs, with its own save handler under its own cookie. The gateway turns
// it off in PHP_VALUE; a pool that loads the prepend itself, where nothing
// can turn it off before the script runs, gets a message naming the
// setting instead of a fatal error.
func TestSessionUploadProgressOn(t *testing.T) {
	t.Parallel()
	on := map[string]string{"session.upload_progress.enabled": "1"}
	t.Run("prepend in PHP_VALUE", func(t *testing.T) {
		savePath := harness.PHPTempDir(t)
		s := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{Values: on, AdminValues: map[string]string{"session.save_path": savePath}}})
		ck := s.newSession(t)
		g := s.gws[0]
		status, body := slowMultipart(t, strings.TrimPrefix(g.URL, "http://"), "/progress_upload.php", "sessionid="+ck, "k1", 200<<10, 2, 100*time.Millisecond)
		var up struct {
			Uploads int
			Files   map[string]struct{ Error, Size int }
		}
		if err := json.Unmarshal([]byte(body), &up); status != 200 || err != nil {
			t.Fatalf("upload: %d %q", status, body)
		}
		if f := up.Files["f"]; up.Uploads != 1 || f.Error != 0 || f.Size != 200<<10 {
			t.Errorf("upload: %s", body)
		}
		d := g.dump(t, ck)
		if !strings.Contains(string(d.Data), `"user":"ana"`) || !strings.Contains(string(d.Data), `"uploads":1`) || strings.Contains(string(d.Data), "upload_progress_") {
			t.Errorf("session after the upload: %s", d.Data)
		}
		if files, _ := filepath.Glob(filepath.Join(savePath, "*")); len(files) > 0 {
			t.Errorf("PHP wrote files into session.save_path: %v", files)
		}
	})
	t.Run("prepend in the pool", func(t *testing.T) {
		s := startSessionStack(t, stackOpts{prependInPool: true, fpm: harness.PHPFPMOptions{Values: on}})
		resp, body, _ := s.gws[0].get(t, "/counter.php", "")
		if resp.StatusCode != 200 || body != "1" {
			t.Errorf("counter: %d %q", resp.StatusCode, body)
		}
		if logs := s.gws[0].Logs.String(); !strings.Contains(logs, "php_value[session.upload_progress.enabled] = 0") {
			t.Errorf("nothing names the setting:\n%s", logs)
		}
	})
}

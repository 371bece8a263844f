package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

// TestReadmeOwnPHPFPM runs the README's "put the gateway in front of your
// own php-fpm" block as a user copies it, with only its paths and port
// moved to the test's own: the key, the prepend and the variables must give
// a gateway whose sessions PHP shares (the gateway's signed cookie, no
// PHPSESSID), so the block cannot drift from what the gateway accepts.
func TestReadmeOwnPHPFPM(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)To put the gateway in front of your own php-fpm:\n\n```sh\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal(`README: no sh block after "To put the gateway in front of your own php-fpm:"`)
	}
	script := string(m[1])

	root := sessionFixtureRoot(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2, Unix: true})
	etc := harness.PHPTempDir(t) // php-fpm's workers (nobody) read the prepend here
	port := harness.FreePort(t)
	for _, r := range []struct{ old, new string }{
		{"make build\n", ""}, // the binary comes from buildGateway
		{"bin/gateway", buildGateway(t)},
		{"/etc/sessiongate.key", filepath.Join(t.TempDir(), "sessiongate.key")},
		{"/etc/php/8.2/sessiongate-prepend.php", filepath.Join(etc, "sessiongate-prepend.php")},
		{"unix:/run/php/php8.2-fpm.sock", fpm.Addr},
		{"/srv/www/public", root},
		{"SESSIONGATE_LISTEN=:80", fmt.Sprintf("SESSIONGATE_LISTEN=127.0.0.1:%d", port)},
	} {
		if !strings.Contains(script, r.old) {
			t.Fatalf("README's block no longer has %q; update this test with it:\n%s", r.old, m[1])
		}
		script = strings.ReplaceAll(script, r.old, r.new)
	}

	out := &testlog.Buffer{}
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("the README's block:\n%s\noutput:\n%s", script, out.String())
		}
	})

	url := fmt.Sprintf("http://127.0.0.1:%d/counter.php", port)
	get := func(cookie string) (*http.Response, string, error) {
		req, _ := http.NewRequest("GET", url, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return nil, "", err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b), nil
	}
	var res *http.Response
	var body string
	up := poll(15*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("the README's block ended before serving: %v\n%s", err, out.String())
		default:
		}
		var err error
		res, body, err = get("")
		return err == nil
	})
	if !up {
		t.Fatal("the README's block serves nothing after 15s")
	}
	var cookie string
	for _, c := range res.Cookies() {
		if c.Name == "PHPSESSID" {
			t.Errorf("PHP set its own PHPSESSID cookie: the prepend is not in use")
		}
		if c.Name == "sessionid" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if res.StatusCode != 200 || body != "1" || cookie == "" {
		t.Fatalf("first request: %d %q, gateway cookie %q; want 200 \"1\" and a sessionid cookie", res.StatusCode, body, cookie)
	}
	if res, body, err := get(cookie); err != nil || res.StatusCode != 200 || body != "2" {
		t.Fatalf("second request with the gateway's cookie: %v %v %q, want 200 \"2\"", err, res, body)
	}
}

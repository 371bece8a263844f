package integration

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestBasicAuth: a staging site behind SESSIONGATE_BASIC_AUTH, with the
// password file Apache's htpasswd writes (bcrypt with -B, and its default
// $apr1$), in front of the real php-fpm: without the password, 401 and no
// PHP run; with it, the page, and PHP sees the user as REMOTE_USER and
// PHP_AUTH_USER, as behind nginx's auth_basic. A user added to the file
// with htpasswd gets in without a restart, and so does one a copy put in
// place with its old size and mtime (cp -p); the webhooks directory, opened
// by a more specific entry, needs no password.
func TestBasicAuth(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "htpasswd")
	users := filepath.Join(t.TempDir(), "staging.htpasswd")
	htpasswd := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(harness.Bin(t, "htpasswd"), args...).CombinedOutput(); err != nil {
			t.Fatalf("htpasswd %v: %v\n%s", args, err, out)
		}
	}
	htpasswd("-c", "-b", "-B", "-C", "5", users, "ana", "bcrypt pass")
	htpasswd("-b", "-m", users, "bo", "apr1-pass")
	root := t.TempDir()
	ran := filepath.Join(harness.PHPTempDir(t), "ran")
	writeTree(t, root, map[string]string{
		"index.php":           `<?php file_put_contents('` + ran + `', "x", FILE_APPEND); echo $_SERVER['REMOTE_USER'] ?? '-', ' ', $_SERVER['PHP_AUTH_USER'] ?? '-';`,
		"webhooks/stripe.php": `<?php echo 'hook';`,
	})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.BasicAuthSpecs = []string{"/ " + users}
		c.RestrictedPathSpecs = []string{"/webhooks/ 0.0.0.0/0 ::/0"}
	})
	get := func(target, user, password string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", g.URL+target, nil)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b := new(strings.Builder)
		_, _ = io.Copy(b, res.Body)
		return res.StatusCode, b.String(), res.Header
	}
	code, _, h := get("/", "", "")
	if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), `Basic realm=`) {
		t.Errorf("no password: %d %v", code, h)
	}
	for _, c := range [][2]string{{"ana", "wrong"}, {"nobody", "bcrypt pass"}, {"bo", "bcrypt pass"}} {
		if code, _, _ := get("/", c[0], c[1]); code != 401 {
			t.Errorf("%s with a wrong password: %d", c[0], code)
		}
	}
	if b, _ := os.ReadFile(ran); len(b) != 0 {
		t.Errorf("PHP ran %d times without a password", len(b))
	}
	for user, password := range map[string]string{"ana": "bcrypt pass", "bo": "apr1-pass"} {
		for range 2 { // the second time from the gateway's memory of it
			if code, body, _ := get("/", user, password); code != 200 || body != user+" "+user {
				t.Errorf("%s: %d %q, want 200 %q", user, code, body, user+" "+user)
			}
		}
	}
	if code, body, _ := get("/webhooks/stripe.php", "", ""); code != 200 || body != "hook" {
		t.Errorf("webhooks: %d %q", code, body)
	}
	htpasswd("-b", "-B", "-C", "5", users, "cy", "new user")
	if !poll(3*time.Second, func() bool { code, _, _ = get("/", "cy", "new user"); return code == 200 }) {
		t.Fatalf("a user added with htpasswd still refused: %d", code)
	}
	// A copy with its size and times kept (cp -p, rsync -t, a backup put
	// back) lands in place with the old mtime: bo renamed bx, same length.
	contents, err := os.ReadFile(users)
	if err != nil {
		t.Fatal(err)
	}
	restored := users + ".restored"
	if err := os.WriteFile(restored, []byte(strings.Replace(string(contents), "\nbo:", "\nbx:", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("touch", "-r", users, restored).CombinedOutput(); err != nil {
		t.Fatalf("touch -r: %v\n%s", err, out)
	}
	time.Sleep(20 * time.Millisecond) // past the ctime clock's tick
	if out, err := exec.Command("cp", "-p", restored, users).CombinedOutput(); err != nil {
		t.Fatalf("cp -p: %v\n%s", err, out)
	}
	if !poll(3*time.Second, func() bool { code, _, _ = get("/", "bx", "apr1-pass"); return code == 200 }) {
		t.Errorf("a user put in place by cp -p (size and mtime kept) still refused: %d", code)
	}
	if code, _, _ := get("/", "bo", "apr1-pass"); code != 401 {
		t.Errorf("a user removed by cp -p (size and mtime kept) still let in: %d", code)
	}
}

package deploy

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sessiongate/sessiongate/internal/testtls"
)

// readmeCertHook returns the certbot deploy hook README gives (the sh
// block that starts with #!/bin/sh and installs the pair).
func readmeCertHook(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "```sh\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.HasPrefix(block, "#!/bin/sh\n") && strings.Contains(block, "RENEWED_LINEAGE") {
			return block
		}
	}
	t.Fatal("README has no certbot deploy hook")
	return ""
}

// TestCertbotHookLeavesThePairReadable: README's certbot deploy hook,
// run under a umask of 077 (a root shell's, a hardened host's), leaves the
// certificate and key where the gateway's user (www-data, the files'
// group) can read them, and the key closed to everyone else. Session 51's
// review suspected `install -D` would create /etc/sessiongate/tls 0700
// then; GNU install makes the directories it adds 0755 whatever the umask,
// and this holds README to a hook that works. As root (CI) the pair is
// read as www-data; otherwise the hook's group is the test's own and the
// modes are checked.
func TestCertbotHookLeavesThePairReadable(t *testing.T) {
	hook := readmeCertHook(t)
	dir := t.TempDir()
	// t.TempDir and its parent are 0700: www-data must get in.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	etc := filepath.Join(dir, "etc", "sessiongate")
	live := filepath.Join(dir, "live")
	if err := os.Mkdir(live, 0o700); err != nil {
		t.Fatal(err)
	}
	cert, key := testtls.Pair(t)
	for name, src := range map[string]string{"fullchain.pem": cert, "privkey.pem": key} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(live, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A systemctl that records the reload.
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	reloaded := filepath.Join(dir, "reloaded")
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\necho \"$@\" > "+reloaded+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	group := "www-data"
	if !root {
		g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
		if err != nil {
			t.Fatal(err)
		}
		group = g.Name
	}
	script := strings.ReplaceAll(hook, "/etc/sessiongate", etc)
	script = strings.ReplaceAll(script, "-g www-data", "-g "+group)
	cmd := exec.Command("sh", "-c", "umask 077\n"+script)
	cmd.Env = append(os.Environ(), "RENEWED_LINEAGE="+live, "PATH="+bin+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the hook failed: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(reloaded); strings.TrimSpace(string(b)) != "reload sessiongate" {
		t.Errorf("systemctl called with %q, want reload sessiongate", b)
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	// Every directory on the way is searchable by the group, and the
	// files readable by it.
	searchable := func(fi os.FileInfo) bool {
		st := fi.Sys().(*syscall.Stat_t)
		return fi.Mode().Perm()&0o001 != 0 || fi.Mode().Perm()&0o010 != 0 && int(st.Gid) == gid
	}
	for _, d := range []string{filepath.Join(dir, "etc"), etc, filepath.Join(etc, "tls")} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if !searchable(fi) {
			t.Errorf("%s: mode %v after the hook under umask 077: the group %s cannot get through", d, fi.Mode().Perm(), group)
		}
	}
	for _, name := range []string{"fullchain.pem", "privkey.pem"} {
		fi, err := os.Stat(filepath.Join(etc, "tls", name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || int(st.Gid) != gid {
			t.Errorf("%s: mode %v group %d, want 0640 and group %s", name, fi.Mode().Perm(), st.Gid, group)
		}
	}
	if !root {
		return
	}
	for _, name := range []string{"fullchain.pem", "privkey.pem"} {
		out, err := exec.Command("setpriv", "--reuid=www-data", "--regid=www-data", "--clear-groups",
			"cat", filepath.Join(etc, "tls", name)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "-----BEGIN") {
			t.Errorf("www-data cannot read %s after the hook: %v %.200s", name, err, out)
		}
	}
}

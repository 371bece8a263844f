package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestDjangoPackageFromPip: issue 4's "installable with pip install
// ./wsgi/django", the way a Debian 12 machine without PyPI can do it: a
// virtualenv of Debian's python3 (the system one refuses pip, PEP 668) and
// --no-build-isolation (pip would fetch setuptools otherwise). gunicorn then
// runs the example project from that virtualenv, so sessiongate_django comes
// from the installed package, not from the checkout, and a login through
// Django's admin shows on a PHP page.
func TestDjangoPackageFromPip(t *testing.T) {
	t.Parallel()
	harness.Require(t, "venv", "pip", "gunicorn")
	site := startDjangoSite(t)

	// A copy: pip builds in the source tree (build/, *.egg-info).
	src := filepath.Join(t.TempDir(), "sessiongate-django")
	if out, err := exec.Command("cp", "-r", "../wsgi/django", src).CombinedOutput(); err != nil {
		t.Fatalf("copy the package: %v\n%s", err, out)
	}
	os.RemoveAll(filepath.Join(src, "tests"))
	venv := filepath.Join(t.TempDir(), "venv")
	python := filepath.Join(venv, "bin", "python")
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir(), "PIP_NO_INPUT=1"}
		cmd.Dir = site.project
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// Django and gunicorn are Debian's, seen through --system-site-packages.
	run("/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip", venv)
	run("/usr/bin/python3", "-m", "pip", "--python", python, "install", "--no-build-isolation", "--no-index", src)
	// From the project's directory, as gunicorn imports it.
	where := run(python, "-c", "import sessiongate_django; print(sessiongate_django.__file__)")
	if !strings.HasPrefix(where, venv+string(os.PathSeparator)) {
		t.Fatalf("sessiongate_django imported from %s, not from the virtualenv %s", where, venv)
	}

	g := harness.StartGunicorn(t, harness.GunicornOptions{
		Python: python, Dir: site.project, App: "sgdemo.wsgi:application", Workers: 1, Threads: 2,
		Env: append([]string{"SESSIONGATE_SESSION_KEYS=" + sessionTestKey}, site.env...),
	})
	cfg, err := config.Load(site.gatewayEnv(sessionTestKey, g.URL()))
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateways(t, cfg, 1)[0]

	j := jar{}
	adminLogin(t, gw, j)
	if res, body := call(t, gw, j, "GET", "/whoami.php", ""); res.StatusCode != 200 || body != "user:"+site.userID {
		t.Fatalf("PHP after a Django login through the installed package: %d %q, want user %s\ngunicorn log:\n%s", res.StatusCode, body, site.userID, g.Log())
	}
}

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	// The virtualenv the README says to make, with its own pip, as a user
	// runs it: a plain one (or one made --without-pip, installed into by
	// Debian's pip) has no wheel, and Debian's setuptools then stops with
	// "invalid command 'bdist_wheel'". Django and gunicorn are Debian's,
	// seen through --system-site-packages.
	venvCmd := readmeVenvCommand(t)
	run(venvCmd[0], append(venvCmd[1:], venv)...)
	run(filepath.Join(venv, "bin", "pip"), "install", "--no-build-isolation", "--no-index", src)
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

// readmeVenvCommand returns the command the README ("Install the Django
// side") gives for the virtualenv a machine without PyPI needs, so the test
// installs the package the way the README says and the two cannot drift.
func readmeVenvCommand(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)Without PyPI,\\s+make the virtualenv with `([^`]+)`").FindSubmatch(b)
	if m == nil {
		t.Fatal("README: no virtualenv command for installing sessiongate_django without PyPI")
	}
	return strings.Fields(string(m[1]))
}

package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// djangoRelease is a Django the end-to-end tests run on. Debian 12's own
// 3.2 is the one the issue names; sessiongate_django must also run on
// Django 4.x and 5.x, which scripts/newer-django.sh brings from Debian's
// archive as virtualenvs (`make test` runs it first).
type djangoRelease struct {
	name string // "3.2", "4.2", "5.2"
	// python is the virtualenv's interpreter that runs manage.py and
	// gunicorn (python -m gunicorn); "" is Debian's /usr/bin/python3 with
	// /usr/bin/gunicorn.
	python string
	// gunicorn22: its gunicorn is 22 or later (23 in the 5.2 virtualenv,
	// 20.1 otherwise), which refuses oversized header fields with 431,
	// not 400, and whose exiting worker drops the connections it accepted
	// but had not read.
	gunicorn22 bool
	// uvicorn: gunicorn runs uvicorn's worker (Debian's python3-uvicorn)
	// on the project's ASGI application instead of its own threads on the
	// WSGI one: Django under ASGI, as sites with async views run it.
	// Django then runs sync views one at a time per worker, and uvicorn's
	// h11 parser refuses a request head over 16 KiB that one read did not
	// bring whole.
	uvicorn bool
}

// uvicornSuffix marks a release served under ASGI in the names
// djangoReleases takes and in subtest names: "5.2-uvicorn".
const uvicornSuffix = "-uvicorn"

// label names r in subtests.
func (r djangoRelease) label() string {
	if r.uvicorn {
		return r.name + uvicornSuffix
	}
	return r.name
}

// gunicornOptions completes o to serve module's project (its wsgi.py, or
// asgi.py under uvicorn) on r.
func (r djangoRelease) gunicornOptions(module string, o harness.GunicornOptions) harness.GunicornOptions {
	o.Python = r.python
	o.App = module + ".wsgi:application"
	if r.uvicorn {
		o.App = module + ".asgi:application"
		o.Args = append([]string{"--worker-class", "uvicorn.workers.UvicornWorker"}, o.Args...)
	}
	return o
}

var debianDjango = djangoRelease{name: "3.2"}

// newerDjango is what scripts/newer-django.sh builds under .cache/django
// (NEWER_DJANGO in the Makefile), and which of them has gunicorn 22 or
// later.
var newerDjango = []struct {
	name       string
	gunicorn22 bool
}{{"4.2", false}, {"5.2", true}}

// managePython is the interpreter that runs the project's manage.py.
func (r djangoRelease) managePython() string {
	if r.python == "" {
		return "/usr/bin/python3"
	}
	return r.python
}

// serverHeader is the Server field of its server's answers.
func (r djangoRelease) serverHeader() string {
	if r.uvicorn {
		return "uvicorn"
	}
	return "gunicorn"
}

// headerLimitStatus is what its server answers a request whose header
// fields are over its limits.
func (r djangoRelease) headerLimitStatus() int {
	if r.gunicorn22 && !r.uvicorn {
		return http.StatusRequestHeaderFieldsTooLarge
	}
	return http.StatusBadRequest
}

// newerDjangoRelease returns the virtualenv of Django name, failing the
// test (never skipping it) when scripts/newer-django.sh has not built it.
func newerDjangoRelease(t *testing.T, name string) djangoRelease {
	t.Helper()
	python, err := filepath.Abs(filepath.Join("..", ".cache", "django", name, "bin", "python"))
	if err == nil {
		_, err = os.Stat(python)
	}
	if err != nil {
		t.Fatalf("Django %s: %v: run scripts/newer-django.sh (make test does)", name, err)
	}
	for _, n := range newerDjango {
		if n.name == name {
			return djangoRelease{name: name, python: python, gunicorn22: n.gunicorn22}
		}
	}
	t.Fatalf("Django %s: not among the releases scripts/newer-django.sh builds", name)
	return djangoRelease{}
}

// djangoReleases returns the named releases ("3.2" is Debian's, "5.2-uvicorn"
// 5.2 under ASGI), each newer one failing the test when missing; none named:
// all of them under WSGI.
func djangoReleases(t *testing.T, names ...string) []djangoRelease {
	t.Helper()
	if len(names) == 0 {
		names = []string{debianDjango.name}
		for _, n := range newerDjango {
			names = append(names, n.name)
		}
	}
	var out []djangoRelease
	for _, name := range names {
		name, asgi := strings.CutSuffix(name, uvicornSuffix)
		rel := debianDjango
		if name != debianDjango.name {
			rel = newerDjangoRelease(t, name)
		}
		if asgi {
			harness.Require(t, "uvicorn")
			rel.uvicorn = true
		}
		out = append(out, rel)
	}
	return out
}

// forEachDjango runs test on each release, as parallel subtests named
// after it.
func forEachDjango(t *testing.T, releases []djangoRelease, test func(t *testing.T, rel djangoRelease)) {
	t.Helper()
	for _, rel := range releases {
		t.Run("django"+rel.label(), func(t *testing.T) {
			t.Parallel()
			test(t, rel)
		})
	}
}

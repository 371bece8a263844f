package integration

import (
	"os"
	"path/filepath"
	"testing"
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
}

var debianDjango = djangoRelease{name: "3.2"}

// newerDjango is what scripts/newer-django.sh builds under .cache/django
// (NEWER_DJANGO in the Makefile).
var newerDjango = []string{"4.2", "5.2"}

// managePython is the interpreter that runs the project's manage.py.
func (r djangoRelease) managePython() string {
	if r.python == "" {
		return "/usr/bin/python3"
	}
	return r.python
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
	return djangoRelease{name: name, python: python}
}

// forEachDjango runs test on Debian's Django and on each newer one, as
// parallel subtests named after the release.
func forEachDjango(t *testing.T, test func(t *testing.T, rel djangoRelease)) {
	t.Helper()
	releases := []djangoRelease{debianDjango}
	for _, name := range newerDjango {
		releases = append(releases, newerDjangoRelease(t, name))
	}
	for _, rel := range releases {
		t.Run("django"+rel.name, func(t *testing.T) {
			t.Parallel()
			test(t, rel)
		})
	}
}

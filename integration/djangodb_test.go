package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// djangoDatabase returns a new SQLite database for the Django project in
// dir, in t.TempDir(), prepared by the manage.py commands steps (migrate,
// then e.g. demo_user), and what each step printed. env is the project's
// environment without DJANGO_DATABASE.
//
// The steps run once per test binary for each project, env and steps, and
// every test gets a copy of the result: migrate alone costs about a second
// of CPU, and some fifty Django stacks a run each paid it on a 2-CPU
// machine the other tests share. Debian's Django runs them;
// djangoDatabaseOn takes another release.
func djangoDatabase(t *testing.T, dir string, env []string, steps ...[]string) (string, []string) {
	t.Helper()
	return djangoDatabaseOn(t, debianDjango, dir, env, steps...)
}

// djangoDatabaseOn is djangoDatabase with rel's Django.
func djangoDatabaseOn(t *testing.T, rel djangoRelease, dir string, env []string, steps ...[]string) (string, []string) {
	t.Helper()
	db, out, err := djangoDatabaseIn(t.TempDir(), rel, dir, env, steps...)
	if err != nil {
		t.Fatal(err)
	}
	return db, out
}

// djangoDatabaseIn is djangoDatabase with the copy in tempDir and the
// failure returned, for a caller off the test's goroutine.
func djangoDatabaseIn(tempDir string, rel djangoRelease, dir string, env []string, steps ...[]string) (string, []string, error) {
	key := strings.Join(append([]string{rel.managePython(), dir}, env...), "\x00")
	for _, s := range steps {
		key += "\x01" + strings.Join(s, "\x00")
	}
	djangoTemplates.mu.Lock()
	if djangoTemplates.byKey == nil {
		djangoTemplates.byKey = map[string]*djangoTemplate{}
	}
	tpl := djangoTemplates.byKey[key]
	if tpl == nil {
		tpl = &djangoTemplate{}
		djangoTemplates.byKey[key] = tpl
	}
	djangoTemplates.mu.Unlock()
	tpl.once.Do(func() { tpl.prepare(rel.managePython(), dir, env, steps) })
	if tpl.err != nil {
		return "", nil, tpl.err
	}
	b, err := os.ReadFile(tpl.db)
	if err != nil {
		return "", nil, fmt.Errorf("django database template: %w", err)
	}
	db := filepath.Join(tempDir, "db.sqlite3")
	if err := os.WriteFile(db, b, 0o644); err != nil {
		return "", nil, fmt.Errorf("django database copy: %w", err)
	}
	return db, tpl.out, nil
}

var djangoTemplates struct {
	mu    sync.Mutex
	byKey map[string]*djangoTemplate
	// dir holds every template; removed at exit (removeDjangoTemplates).
	dir string
}

type djangoTemplate struct {
	once sync.Once
	db   string
	out  []string
	err  error
}

func (tpl *djangoTemplate) prepare(python, dir string, env []string, steps [][]string) {
	djangoTemplates.mu.Lock()
	if djangoTemplates.dir == "" {
		djangoTemplates.dir, tpl.err = os.MkdirTemp("", "sessiongate-django-")
	}
	root := djangoTemplates.dir
	djangoTemplates.mu.Unlock()
	if tpl.err != nil {
		return
	}
	work, err := os.MkdirTemp(root, "db-")
	if err != nil {
		tpl.err = err
		return
	}
	tpl.db = filepath.Join(work, "db.sqlite3")
	for _, args := range steps {
		cmd := exec.Command(python, append([]string{"-E", "manage.py"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + work, "DJANGO_DATABASE=" + tpl.db}, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			tpl.err = fmt.Errorf("manage.py %s in %s: %w\n%s", strings.Join(args, " "), dir, err, out)
			return
		}
		tpl.out = append(tpl.out, string(out))
	}
}

// removeDjangoTemplates deletes the databases djangoDatabase prepared.
func removeDjangoTemplates() {
	if djangoTemplates.dir != "" {
		os.RemoveAll(djangoTemplates.dir)
	}
}

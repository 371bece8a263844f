package harness

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// phpWorkerUser is the account php-fpm's workers run as when the tests run as
// root. A worker running as root behind a loopback TCP port would let every
// local user run PHP as root for as long as the suite runs: FastCGI has no
// authentication, and a request's PHP_ADMIN_VALUE param can set
// auto_prepend_file=php://input with allow_url_include. With the workers
// unprivileged, such a user gains nothing they could not already do.
const phpWorkerUser = "nobody"

// phpWorker is who the workers run as: zero when the tests do not run as
// root (php-fpm then runs them as the current user, as before).
type phpWorker struct {
	user, group string
	uid, gid    int
}

var (
	phpWorkerOnce sync.Once
	phpWorkerVal  phpWorker
	phpWorkerErr  error
)

// workerAccount resolves phpWorkerUser once per test binary.
func workerAccount() (phpWorker, error) {
	phpWorkerOnce.Do(func() {
		if os.Geteuid() != 0 {
			return
		}
		u, err := user.Lookup(phpWorkerUser)
		if err != nil {
			phpWorkerErr = fmt.Errorf("harness: php-fpm workers run as %q when the tests run as root: %w", phpWorkerUser, err)
			return
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			phpWorkerErr = fmt.Errorf("harness: group %s of %q: %w", u.Gid, phpWorkerUser, err)
			return
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			phpWorkerErr = fmt.Errorf("harness: %q has uid %q gid %q", phpWorkerUser, u.Uid, u.Gid)
			return
		}
		// The shared files live under the temporary directory: the
		// workers must be able to reach it (TMPDIR=/root/tmp would not do).
		for dir := os.TempDir(); ; dir = filepath.Dir(dir) {
			fi, err := os.Stat(dir)
			if err != nil {
				phpWorkerErr = fmt.Errorf("harness: temporary directory: %w", err)
				return
			}
			if fi.Mode().Perm()&0o001 == 0 {
				phpWorkerErr = fmt.Errorf("harness: php-fpm's workers run as %s when the tests run as root and cannot reach the temporary directory %s (%s is %v): set TMPDIR to a directory others may traverse, such as /tmp", u.Username, os.TempDir(), dir, fi.Mode().Perm())
				return
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
		phpWorkerVal = phpWorker{user: u.Username, group: g.Name, uid: uid, gid: gid}
	})
	return phpWorkerVal, phpWorkerErr
}

// ShareWithPHP lets the php-fpm workers read and write path (a file, or a
// directory and everything in it) when the tests run as root; otherwise the
// workers run as the current user and it does nothing. Scripts, the prepend
// file and the files scripts write (marks, uploads) live in t.TempDir(),
// which is private to root: the tree is given to the workers' user and its
// parent directories inside the temporary directory become traversable (not
// readable) by others. StartPHPFPM shares its DocRoot itself.
func ShareWithPHP(t testing.TB, path string) {
	t.Helper()
	if err := shareWithPHP(path); err != nil {
		t.Fatal(err)
	}
}

func shareWithPHP(path string) error {
	w, err := workerAccount()
	if err != nil || w.user == "" {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("harness: share %s with php-fpm: %w", path, err)
	}
	tmp, err := filepath.Abs(os.TempDir())
	if err != nil {
		return err
	}
	if !strings.HasPrefix(abs, tmp+string(filepath.Separator)) {
		// Never hand a checkout's files to another account.
		return fmt.Errorf("harness: %s is outside %s: php-fpm's workers run as %s, so tests give them copies in t.TempDir()", abs, tmp, w.user)
	}
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Lchown: a symlink a test planted to point outside stays root's,
		// and what it points to is not touched.
		return os.Lchown(p, w.uid, w.gid)
	})
	if err != nil {
		return fmt.Errorf("harness: share %s with php-fpm's %s: %w", abs, w.user, err)
	}
	for dir := filepath.Dir(abs); dir != tmp && strings.HasPrefix(dir, tmp+string(filepath.Separator)); dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("harness: share %s with php-fpm: %w", abs, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("harness: share %s with php-fpm: %w", abs, err)
			}
		}
	}
	return nil
}

// poolUserLines are the pool's user/group directives: empty unless the
// tests run as root.
func poolUserLines() (string, error) {
	w, err := workerAccount()
	if err != nil || w.user == "" {
		return "", err
	}
	return fmt.Sprintf("user = %s\ngroup = %s\n", w.user, w.group), nil
}

// PHPTempDir is a fresh t.TempDir() shared with php-fpm's workers
// (ShareWithPHP), for the files scripts write: marks, run counters, saved
// sessions.
func PHPTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	ShareWithPHP(t, dir)
	return dir
}

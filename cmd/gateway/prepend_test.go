package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sessiongate/sessiongate/sessionbridge"
)

// `gateway php-prepend -o PATH` replaces the file in one rename (a new
// inode): a php-fpm including it meanwhile reads the old file or the new
// one, where a shell's `>` emptied it first (pages failed with a parse
// error or ran without the shared session). The mode of a file already
// there is kept; a new one is 0644, for php-fpm's workers; nothing is left
// beside it; an unchanged file is not touched.
func TestPHPPrependInstalledInOneRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sessiongate-prepend.php")
	install := func() {
		t.Helper()
		var out, errs bytes.Buffer
		if code := run([]string{"php-prepend", "-o", path}, nil, &out, &errs); code != 0 || out.Len() != 0 {
			t.Fatalf("php-prepend -o: exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
		}
		if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, sessionbridge.PrependPHP) {
			t.Fatalf("installed file: %v, %d bytes, want the prepend's %d", err, len(b), len(sessionbridge.PrependPHP))
		}
	}
	inode := func() uint64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	install()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("new file mode %v, want 0644", fi.Mode().Perm())
	}
	same := inode()
	install()
	if inode() != same {
		t.Error("an unchanged prepend was written again")
	}
	// An older release's file, mode 0640 (group www-data).
	if err := os.WriteFile(path, []byte("<?php // older"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	before := inode()
	install()
	if inode() == before {
		t.Error("the prepend was written in place, not renamed over the old one")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after the upgrade, want the old file's 0640", fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 {
		t.Errorf("files beside the prepend: %v", left)
	}

	var out, errs bytes.Buffer
	if code := run([]string{"php-prepend", "-o", filepath.Join(dir, "missing", "p.php")}, nil, &out, &errs); code != 1 || !strings.Contains(errs.String(), "missing") {
		t.Errorf("into a missing directory: exit %d, %q; want 1 and the path", code, errs.String())
	}
	errs.Reset()
	if code := run([]string{"php-prepend", "-x"}, nil, &out, &errs); code != 2 || !strings.Contains(errs.String(), "usage") {
		t.Errorf("php-prepend -x: exit %d, %q; want 2 and the usage", code, errs.String())
	}
}

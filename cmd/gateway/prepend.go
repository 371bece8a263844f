package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sessiongate/sessiongate/sessionbridge"
)

// printPrepend prints the PHP prepend file, or with -o PATH installs it at
// PATH. php-fpm includes the file on every request: a shell's `>` empties
// it before writing it again, and during an upgrade's rewrite pages failed
// with PHP's parse error of a half-written file, or ran without it
// (OPcache keeping the empty copy for revalidate_freq) on PHP's own
// session, the user's unloaded and its changes lost (108 of 2726 requests
// of a live rewrite, 1 answered 500). -o writes a new file beside PATH and
// renames it over PATH, so PHP includes the old file or the new one.
func printPrepend(args, _ []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		if _, err := stdout.Write(sessionbridge.PrependPHP); err != nil {
			fmt.Fprintf(stderr, "gateway php-prepend: %v\n", err)
			return 1
		}
		return 0
	case len(args) == 2 && args[0] == "-o" && args[1] != "":
		if err := installPrepend(args[1]); err != nil {
			fmt.Fprintf(stderr, "gateway php-prepend: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "gateway php-prepend: unexpected arguments %q (usage: gateway php-prepend [-o PATH])\n", args)
	return 2
}

// installPrepend puts the prepend at path in one rename. A file already
// there with the same bytes is left alone (no OPcache recompilation); its
// mode carries over, else 0644: php-fpm's workers, another user, read it.
func installPrepend(path string) error {
	mode := fs.FileMode(0o644)
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, sessionbridge.PrependPHP):
		return nil
	case err == nil:
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(sessionbridge.PrependPHP)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("install %s: %w", path, err)
	}
	return nil
}

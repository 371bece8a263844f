package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// socketPath returns a path of exactly n bytes under dir.
func socketPath(t *testing.T, dir string, n int) string {
	t.Helper()
	p := filepath.Join(dir, "s")
	if len(p) > n {
		t.Fatalf("temp dir %s is too long for a %d-byte socket path", dir, n)
	}
	return p + strings.Repeat("x", n-len(p))
}

// TestUnixSocketPathTooLong: a socket path longer than a socket address
// holds can never be connected to (every dial fails with "invalid
// argument"), so it stops the start under the variable that names it, as
// nginx refuses "too long path in the unix domain socket". The longest path
// the kernel takes is still accepted.
func TestUnixSocketPathTooLong(t *testing.T) {
	dir, err := os.MkdirTemp("", "sg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	longest := len(syscall.RawSockaddrUnix{}.Path) - 1 // room for the NUL, independent of sockpath.Max
	fits, tooLong := socketPath(t, dir, longest), socketPath(t, dir, longest+1)

	// The limit is the kernel's, not a guess.
	ln, err := net.Listen("unix", fits)
	if err != nil {
		t.Fatalf("listen on a %d-byte socket path: %v", len(fits), err)
	}
	ln.Close()
	if ln, err := net.Listen("unix", tooLong); err == nil {
		ln.Close()
		t.Fatalf("listen on a %d-byte socket path worked: the limit is wrong", len(tooLong))
	}

	django := []string{"SESSIONGATE_DJANGO_PATHS=/admin/"}
	for _, c := range []struct {
		name, value string
		extra       []string
	}{
		{"SESSIONGATE_PHP_FPM", "unix:" + tooLong, nil},
		{"SESSIONGATE_DJANGO_URL", "unix:" + tooLong, django},
		{"SESSIONGATE_REDIS_URL", "unix://" + tooLong + "?db=0", nil},
	} {
		_, err := Load(append(append(base(t), c.extra...), c.name+"="+c.value))
		var cerr *Error
		if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Vars(), []string{c.name}) || !strings.Contains(err.Error(), "too long") {
			t.Errorf("%s with a %d-byte socket path: got %v, want only %s refused as too long", c.name, len(tooLong), err, c.name)
		}
	}
	for _, env := range [][]string{
		{"SESSIONGATE_PHP_FPM=unix:" + fits},
		append([]string{"SESSIONGATE_DJANGO_URL=unix:" + fits}, django...),
		{"SESSIONGATE_REDIS_URL=unix://" + fits + "?db=0"},
	} {
		if _, err := Load(append(base(t), env...)); err != nil {
			t.Errorf("%v with a %d-byte socket path: %v", env, len(fits), err)
		}
	}
}

// Package testfd lets a test run out of file descriptors without taking
// them from the rest of its test binary: the test runs again in a child
// process, whose limit on open files is lowered and then used up.
package testfd

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

const childEnv = "SESSIONGATE_TEST_EMFILE"

// InChild reports whether this is the child process. In the parent it runs
// the current (top-level) test again in a child and fails t if the child
// fails; the caller then returns.
func InChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == "1" {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return false
}

// Exhaust lowers RLIMIT_NOFILE to the descriptors open now plus a few and
// opens /dev/null until no descriptor is left; restore frees them and puts
// the limit back. It skips the test where the limit cannot be lowered.
//
// Then the limit goes down to 3: a descriptor the process closes meanwhile
// (a finalizer, a server's goroutine) frees a number below the old limit,
// which the next socket took, and a test of a connect that cannot get a
// descriptor then saw it succeed about once in ten runs under load. The
// kernel refuses any new descriptor numbered at or above the limit, so
// none is handed out until restore.
func Exhaust(t *testing.T) (restore func()) {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(len(entries) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip("cannot lower RLIMIT_NOFILE:", err)
	}
	var hogs []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		hogs = append(hogs, f)
	}
	lim.Cur = 3
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	return func() {
		for _, f := range hogs {
			f.Close()
		}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	}
}

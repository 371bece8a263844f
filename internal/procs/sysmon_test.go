package procs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestWithQuietSysmon(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"A=1"}, []string{"A=1", "GODEBUG=" + QuietSysmon}, true},
		{"empty GODEBUG", []string{"GODEBUG=", "A=1"}, []string{"GODEBUG=" + QuietSysmon, "A=1"}, true},
		{"other settings kept", []string{"GODEBUG=gctrace=1,madvdontneed=1"},
			[]string{"GODEBUG=gctrace=1,madvdontneed=1," + QuietSysmon}, true},
		{"operator turned it off", []string{"GODEBUG=schedtrace=0"}, []string{"GODEBUG=schedtrace=0"}, false},
		{"operator's own trace", []string{"GODEBUG=gctrace=1, schedtrace=1000"}, []string{"GODEBUG=gctrace=1, schedtrace=1000"}, false},
		{"duplicate GODEBUG: the first counts", []string{"GODEBUG=gctrace=1", "GODEBUG=schedtrace=0"},
			[]string{"GODEBUG=gctrace=1," + QuietSysmon}, true},
	} {
		got, changed := withQuietSysmon(tc.in)
		if changed != tc.changed || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: withQuietSysmon(%q) = %q, %v; want %q, %v", tc.name, tc.in, got, changed, tc.want, tc.changed)
		}
	}
}

const (
	reexecChild     = "PROCS_TEST_REEXEC_CHILD"
	reexecFailChild = "PROCS_TEST_REEXEC_FAIL_CHILD"
)

// TestMain lets TestReexecQuietSysmon run this test binary as the process
// that re-executes itself.
func TestMain(m *testing.M) {
	if os.Getenv(reexecChild) == "1" {
		if err := ReexecQuietSysmon(os.Args, os.Environ()); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		// Only reached once GODEBUG holds schedtrace: after the exec.
		fmt.Printf("pid=%d godebug=%s args=%s\n", os.Getpid(), os.Getenv("GODEBUG"), strings.Join(os.Args[1:], " "))
		os.Exit(0)
	}
	if os.Getenv(reexecFailChild) == "1" {
		var before, after syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		// One string over the kernel's 128 KiB limit: execve fails (E2BIG).
		env := append(os.Environ(), "PROCS_TEST_BIG="+strings.Repeat("x", 256<<10))
		err := ReexecQuietSysmon(os.Args, env)
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("e2big=%v nofile=%d->%d\n", errors.Is(err, syscall.E2BIG), before.Cur, after.Cur)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestReexecQuietSysmon(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, reexecChild+"=1", "GODEBUG=gctrace=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := "pid=" + strconv.Itoa(cmd.Process.Pid) + " godebug=gctrace=0," + QuietSysmon + " args=-test.run=^$ -test.count=1\n"
	if string(out) != want {
		t.Fatalf("child printed %q, want %q (same PID, GODEBUG extended, same arguments)", out, want)
	}
}

// TestFailedReexecKeepsTheFileLimit: Go raises the soft RLIMIT_NOFILE at
// start and syscall.Exec puts the original back for the new image; when the
// exec fails, the gateway runs on and must keep the raised limit, not the
// 1024 a systemd unit or shell gave it.
func TestFailedReexecKeepsTheFileLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	const soft = 256
	if lim.Max < 2*soft {
		t.Skipf("hard RLIMIT_NOFILE %d: no room for a lower soft limit", lim.Max)
	}
	// The child starts with a soft limit below the hard one, as under
	// systemd; the shell sets it and execs the test binary.
	cmd := exec.Command("/bin/sh", "-c", "ulimit -S -n "+strconv.Itoa(soft)+` && exec "$0" -test.run=^$`, os.Args[0])
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, reexecFailChild+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var e2big bool
	var before, after uint64
	if _, err := fmt.Sscanf(string(out), "e2big=%t nofile=%d->%d\n", &e2big, &before, &after); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	if !e2big {
		t.Fatalf("child printed %q: the exec did not fail with E2BIG", out)
	}
	if before <= soft {
		t.Fatalf("child printed %q: Go did not raise the soft limit above %d, nothing to test", out, soft)
	}
	if after != before {
		t.Fatalf("soft RLIMIT_NOFILE %d before the failed re-exec, %d after; want it kept", before, after)
	}
}

package procs

import (
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
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

const reexecChild = "PROCS_TEST_REEXEC_CHILD"

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

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/sessiongate/sessiongate/internal/procs"
)

const reexecChild = "GATEWAY_TEST_REEXEC_CHILD"

// TestMain lets TestReexecKeepsParentDeathSignal run this test binary as a
// gateway that re-executes itself.
func TestMain(m *testing.M) {
	if os.Getenv(reexecChild) == "1" {
		if strings.Contains(os.Getenv("GODEBUG"), procs.QuietSysmon) {
			// After the exec.
			fmt.Printf("pid=%d pdeathsig=%d\n", os.Getpid(), parentDeathSignal())
			os.Exit(0)
		}
		leaveMainThread()
		os.Args = os.Args[:1] // serving: main re-executes
		main()
		os.Exit(1) // not reached: main exits
	}
	os.Exit(m.Run())
}

// parentDeathSignal is the calling thread's PR_GET_PDEATHSIG.
func parentDeathSignal() int {
	var sig int32
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0); errno != 0 {
		return -1
	}
	return int(sig)
}

// leaveMainThread moves the calling goroutine to another thread if it can,
// as the scheduler may at any time: a helper goroutine that runs on the main
// thread locks itself there and never returns it.
func leaveMainThread() {
	for range 20 {
		if syscall.Gettid() != os.Getpid() {
			return
		}
		ready := make(chan struct{})
		go func() {
			if syscall.Gettid() == os.Getpid() {
				runtime.LockOSThread()
				close(ready)
				select {}
			}
			close(ready)
		}()
		<-ready
		time.Sleep(time.Millisecond)
	}
}

// TestReexecKeepsParentDeathSignal: a supervisor (or the integration tests)
// starts the gateway with a parent-death signal. Linux keeps it across an
// exec by the main thread only: the re-exec must not drop it, whichever
// thread the main goroutine was on.
func TestReexecKeepsParentDeathSignal(t *testing.T) {
	runtime.LockOSThread() // the signal follows the thread that forked
	defer runtime.UnlockOSThread()
	for i := range 5 {
		cmd := exec.Command(os.Args[0])
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GODEBUG=") && !strings.HasPrefix(kv, "SESSIONGATE_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, reexecChild+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGUSR2}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		want := "pid=" + strconv.Itoa(cmd.Process.Pid) + " pdeathsig=" + strconv.Itoa(int(syscall.SIGUSR2)) + "\n"
		if string(out) != want {
			t.Fatalf("run %d: child printed %q, want %q (the parent-death signal kept across the re-exec)", i, out, want)
		}
	}
}

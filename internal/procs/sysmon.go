package procs

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// QuietSysmon is the GODEBUG setting the gateway runs with.
//
// Why: Go's monitor thread (sysmon) goes into a deep sleep whenever every
// processor is idle, and the next system call wakes it up again, after
// which it polls every 20 µs for a millisecond. A proxy goes idle and back
// many times a second (each time it waits for php-fpm, Redis or gunicorn),
// so sysmon spends its life being woken and put to sleep: on a 2-CPU
// virtual machine, perf put a fifth of the gateway's CPU in those switches
// on the Django path. With schedtrace set, sysmon never takes the deep
// sleep; it backs off to one poll every 10 ms while nothing happens, which
// cut the gateway's CPU per Django request from about 300 to 166 µs and per
// hello-world request from 96 to 81 µs (bench/run.sh). The price: the
// runtime prints one scheduler summary line to stderr every 2^31-1 ms
// (24.8 days) of machine uptime, and sysmon wakes 100 times a second on an
// idle gateway.
const QuietSysmon = "schedtrace=2147483647"

// withQuietSysmon returns environ with QuietSysmon added to GODEBUG, or
// false when GODEBUG already sets schedtrace (the operator's choice, e.g.
// schedtrace=0 to turn this off).
func withQuietSysmon(environ []string) ([]string, bool) {
	out := make([]string, 0, len(environ)+1)
	found := false
	for _, kv := range environ {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		if found {
			continue // a duplicate: the runtime reads the first
		}
		found = true
		for _, setting := range strings.Split(v, ",") {
			if strings.HasPrefix(strings.TrimSpace(setting), "schedtrace=") {
				return environ, false
			}
		}
		if strings.TrimSpace(v) == "" {
			out = append(out, "GODEBUG="+QuietSysmon)
		} else {
			out = append(out, "GODEBUG="+v+","+QuietSysmon)
		}
	}
	if !found {
		out = append(out, "GODEBUG="+QuietSysmon)
	}
	return out, true
}

// ReexecQuietSysmon replaces the process with the same binary, arguments
// and environment plus QuietSysmon in GODEBUG (the runtime reads GODEBUG
// only at start). It returns nil without doing anything when GODEBUG
// already sets schedtrace, and an error when the exec failed: the caller
// then runs on as it is. The process keeps its PID.
func ReexecQuietSysmon(args, environ []string) error {
	env, needed := withQuietSysmon(environ)
	if !needed {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("quiet sysmon: finding the binary: %w", err)
	}
	// syscall.Exec lowers the soft RLIMIT_NOFILE to what it was before Go
	// raised it, for the new image; if the exec fails, the process runs on
	// and needs its raised limit back.
	var nofile syscall.Rlimit
	haveNofile := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile) == nil
	err = syscall.Exec(exe, args, env)
	if haveNofile {
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nofile)
	}
	return fmt.Errorf("quiet sysmon: exec %s: %w", exe, err)
}

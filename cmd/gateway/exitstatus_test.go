package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestHelpStatesTheExitStatuses: `gateway -h` tells an operator (and the
// author of a supervisor's configuration) what each exit status means. It
// must give the status run really returns for a configuration the gateway
// refuses, and for a usage error.
func TestHelpStatesTheExitStatuses(t *testing.T) {
	var help bytes.Buffer
	run([]string{"-h"}, nil, &help, &help)
	// The paragraph, its lines joined.
	line := strings.Join(strings.Fields(regexp.MustCompile(`(?ms)^Exit status: .*?(\n\n|\z)`).FindString(help.String())), " ")
	if line == "" {
		t.Fatalf("help has no \"Exit status:\" line:\n%s", help.String())
	}
	var out bytes.Buffer
	bad := run(nil, []string{"SESSIONGATE_MAX_BODY=lots"}, &out, &out)
	usage := run([]string{"no-such-command"}, nil, &out, &out)
	for _, want := range []string{
		fmt.Sprintf("%d configuration error", bad),
		fmt.Sprintf("%d usage error", usage),
	} {
		if !strings.Contains(line, want) {
			t.Errorf("help says %q; want it to say %q", line, want)
		}
	}
}

// A port the gateway's user may not bind (EACCES: below 1024 without
// CAP_NET_BIND_SERVICE, as the container's non-root user) fails every
// start alike: 78, which the systemd unit does not restart, where a port
// still taken by the old process (EADDRINUSE) may be free on the next
// start (1).
func TestListenFailedStatus(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		want  int
	}{
		{syscall.EACCES, exitConfig},
		{syscall.EADDRINUSE, 1},
		{syscall.EADDRNOTAVAIL, 1},
	} {
		err := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", tc.errno)}
		if got := listenFailedStatus(err); got != tc.want {
			t.Errorf("%v: exit %d, want %d", err, got, tc.want)
		}
	}
}

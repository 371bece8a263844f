package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
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

// What the gateway's user may not use (a site root of another user's with
// mode 0750, where www-data runs the gateway; a Redis socket with Debian's
// unixsocketperm 700) fails every start alike: 78, which the systemd unit
// does not restart, with a message that says what to change. The root
// passed the configuration check (os.Stat needs only its parent
// searchable) and the start failed with 1 and a message naming no
// variable; the socket got 1 and "apt-get install redis-server".
func TestAccessDeniedIsAConfigurationError(t *testing.T) {
	dir, err := os.MkdirTemp("", "sessiongate-access-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The run below may be another user's: it must reach the binary and
	// the paths (a denial on the way would be another error).
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gateway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	site, denied := filepath.Join(dir, "site"), filepath.Join(dir, "denied")
	for _, d := range []string{site, denied} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "redis.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The owner's (this test's) as root is, denied to the gateway: as
	// root, run as nobody; otherwise, no permission even for the owner.
	mode := os.FileMode(0o700)
	var as *syscall.SysProcAttr
	if os.Getuid() == 0 {
		as = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	} else {
		mode = 0
	}
	for _, p := range []string{denied, sock} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_SESSION_DEV=on", "SESSIONGATE_LISTEN=127.0.0.1:0", "SESSIONGATE_LOG_FORMAT=text"}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"site root", []string{"SESSIONGATE_DOCUMENT_ROOT=" + denied}, "SESSIONGATE_DOCUMENT_ROOT"},
		{"internal path's directory", []string{"SESSIONGATE_DOCUMENT_ROOT=" + site, "SESSIONGATE_INTERNAL_PATHS=/p/=" + denied}, "SESSIONGATE_INTERNAL_PATHS"},
		{"Redis socket", []string{"SESSIONGATE_DOCUMENT_ROOT=" + site, "SESSIONGATE_REDIS_URL=unix://" + sock}, "unixsocketperm"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env, cmd.SysProcAttr = append(slices.Clone(base), tc.env...), as
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitConfig || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "apt-get") {
			t.Errorf("%s denied to the gateway's user: %v, want exit %d naming %s:\n%s", tc.name, err, exitConfig, tc.want, out)
		}
	}
}

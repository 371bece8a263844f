// Command gateway is sessiongate: one binary in front of php-fpm and Django
// that replaces nginx. It is configured only through SESSIONGATE_*
// environment variables; `gateway -h` lists them. SIGHUP reloads the TLS
// certificate and key.
//
// Exit status: 0 after a clean shutdown (SIGTERM/SIGINT/SIGQUIT with every in-flight
// request finished), 1 on a runtime failure or a start that failed for now
// (Redis not answering, the port taken), 2 on a usage error (and a Go
// crash), 78 (EX_CONFIG) on a configuration error (Redis refusing the
// password, database or user of SESSIONGATE_REDIS_URL included).
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/procs"
)

// command is one subcommand; the first (name "") is what runs without one.
type command struct {
	name    string
	summary string
	run     func(args, environ []string, stdout, stderr io.Writer) int
}

// commands is the dispatch table. New subcommands (e.g. php-prepend) add a
// line here.
var commands = []command{
	{"", "run the gateway (the default)", serve},
	{"php-prepend", "print the PHP prepend file; -o PATH installs it at PATH in one rename, safe while php-fpm runs (see SESSIONGATE_PHP_PREPEND)", printPrepend},
	{"healthcheck", "probe /healthz on SESSIONGATE_ADMIN_LISTEN: exit 0 if it answers 200, else 1 (for a container HEALTHCHECK without curl)", healthcheck},
}

func init() {
	// Added here: a help entry in the literal above would make commands
	// depend on itself through usage.
	commands = append(commands, command{"help", "print this help (also -h, --help)",
		func(_, _ []string, stdout, _ io.Writer) int { usage(stdout); return 0 }})
}

func init() {
	// Locked here, main runs on the main thread: Linux keeps a parent-death
	// signal (prctl PR_SET_PDEATHSIG, set by a supervisor) across an exec
	// only when the main thread makes it. main unlocks after the re-exec.
	runtime.LockOSThread()
}

func main() {
	if len(os.Args) == 1 {
		// Serving (no command): keep Go's monitor thread out of its deep
		// sleep, which a proxy would otherwise leave and re-enter many
		// times a second (see procs.QuietSysmon). On success this does
		// not return; on failure the gateway runs on as it is and says so.
		reexecErr = procs.ReexecQuietSysmon(os.Args, os.Environ())
	}
	runtime.UnlockOSThread()
	if os.Getenv("GOGC") == "" {
		// A proxy's garbage is short-lived per-request buffers; collecting
		// at 4x the live heap instead of 2x costs a few MiB and saves a
		// measurable share of CPU under load. GOGC still overrides it.
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// reexecErr is why the gateway could not restart itself with
// procs.QuietSysmon; serve logs it once the logger exists.
var reexecErr error

func run(args, environ []string, stdout, stderr io.Writer) int {
	name := ""
	if len(args) > 0 {
		name = args[0]
		args = args[1:]
	}
	switch name {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(args, environ, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "gateway: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("sessiongate gateway: serves a PHP site through php-fpm, like nginx, with shared sessions.\n\n")
	b.WriteString("Usage:\n  gateway [command]\n\nCommands:\n")
	for _, c := range commands {
		name := c.name
		if name == "" {
			name = "(none)"
		}
		fmt.Fprintf(&b, "  %-12s %s\n", name, c.summary)
	}
	b.WriteString("\nConfiguration comes only from the environment:\n\n")
	io.WriteString(w, b.String())
	config.WriteHelp(w)
	io.WriteString(w, "\nGo runtime: GOGC defaults to 400 (collect at 4x the live heap). Unless GOMAXPROCS is set, the gateway\n"+
		"runs on one processor while that is enough (fewer thread wake-ups, more CPU left to the backends) and on\n"+
		"Go's default when one is saturated. Serving, it restarts itself once in place with GODEBUG=schedtrace=2147483647\n"+
		"(keeps Go's monitor thread out of a sleep/wake cycle that costs CPU; GODEBUG=schedtrace=0 turns it off).\n")
	io.WriteString(w, "\nSignals: SIGTERM, SIGINT or SIGQUIT (nginx's graceful stop) drain in-flight requests\n"+
		"(SESSIONGATE_SHUTDOWN_TIMEOUT) and stop; a second one cuts the requests still running at once (their session\n"+
		"locks are still released), a third kills; SIGHUP reloads the TLS certificate and key files (other settings take\n"+
		"a restart). SIGQUIT dumps no goroutines: SESSIONGATE_ADMIN_PPROF's /debug/pprof/goroutine?debug=2 shows them.\n")
	io.WriteString(w, "\nSocket activation: a listening socket systemd passes (LISTEN_FDS, deploy/systemd/sessiongate.socket) serves\n"+
		"the listener variable with its port and address (any, for a variable without a host or with a wildcard),\n"+
		"so that a restart refuses no connection; a passed socket no variable takes stops the start.\n")
	io.WriteString(w, "\nExit status: 0 clean shutdown, 1 runtime failure or a start that failed for now (Redis not answering, the\n"+
		"port taken), 2 usage error (and a Go crash), 78 configuration error (EX_CONFIG: starting again cannot help; a\n"+
		"port the user may not bind, below 1024 without CAP_NET_BIND_SERVICE, and a password, database number or ACL\n"+
		"user of SESSIONGATE_REDIS_URL that Redis refuses included).\n")
}

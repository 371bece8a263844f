package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Socket activation (systemd's sd_listen_fds protocol, deploy/systemd/
// sessiongate.socket): systemd binds the ports and passes the listening
// sockets from file descriptor 3 on, with LISTEN_PID and LISTEN_FDS. The
// sockets outlive the gateway, so `systemctl restart sessiongate` refuses
// no connection: while the old process drains and the new one starts,
// clients wait in the kernel's accept queue, which nginx's reload avoids by
// other means. Each configured listener takes the passed socket bound to
// its port; one the configuration names nowhere stops the start, as it
// would take connections nobody answers.

// firstPassedFD is SD_LISTEN_FDS_START.
const firstPassedFD = 3

// maxPassedFDs bounds LISTEN_FDS: the gateway has three listeners.
const maxPassedFDs = 16

// listeners opens the gateway's listeners, taking the sockets systemd
// passed when there are any.
type listeners struct {
	passed []passedSocket
	log    *slog.Logger
}

type passedSocket struct {
	ln  net.Listener
	fd  int
	use string // the variable that took it, "" while unclaimed
}

// passedSockets reads the sockets systemd passed to this process (pid),
// after environ's LISTEN_PID and LISTEN_FDS. None when the variables are
// absent, or set for another process (a supervisor's own, inherited).
func passedSockets(environ map[string]string, pid int, logger *slog.Logger) (*listeners, error) {
	l := &listeners{log: logger}
	pidText, ok := environ["LISTEN_PID"]
	if !ok {
		return l, nil
	}
	if p, err := strconv.Atoi(pidText); err != nil || p != pid {
		return l, nil
	}
	n, err := strconv.Atoi(environ["LISTEN_FDS"])
	if err != nil || n < 1 || n > maxPassedFDs {
		return nil, fmt.Errorf("LISTEN_FDS=%q: systemd passes 1 to %d sockets", environ["LISTEN_FDS"], maxPassedFDs)
	}
	// Read once: nothing started later may take them for its own.
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	for fd := firstPassedFD; fd < firstPassedFD+n; fd++ {
		ln, err := passedListener(fd)
		if err != nil {
			l.closeAll()
			return nil, err
		}
		l.passed = append(l.passed, passedSocket{ln: ln, fd: fd})
	}
	return l, nil
}

// passedListener turns descriptor fd into a TCP listener, or says why it
// cannot serve as one.
func passedListener(fd int) (net.Listener, error) {
	if accepting, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); err != nil || accepting != 1 {
		return nil, fmt.Errorf("file descriptor %d that systemd passed is not a listening socket (a ListenStream= of the .socket unit is)", fd)
	}
	f := os.NewFile(uintptr(fd), "systemd socket "+strconv.Itoa(fd))
	ln, err := net.FileListener(f) // a duplicate: f is no longer needed
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("file descriptor %d that systemd passed: %w", fd, err)
	}
	if _, ok := ln.Addr().(*net.TCPAddr); !ok {
		ln.Close()
		return nil, fmt.Errorf("systemd passed %s, not a TCP socket: the gateway's listeners are host:port", ln.Addr())
	}
	return ln, nil
}

// listen returns the listener for addr, which the named variable gives:
// the passed socket bound to its port, else a new one. A failure (the port
// taken, an address not on this host) is logged naming both, the line an
// operator needs to fix it.
func (l *listeners) listen(variable, addr string) (net.Listener, error) {
	for i := range l.passed {
		p := &l.passed[i]
		if p.use == "" && boundTo(p.ln.Addr().(*net.TCPAddr), addr) {
			p.use = variable
			l.log.Info("listening on the socket systemd passed", "variable", variable, "addr", p.ln.Addr().String(), "fd", p.fd)
			return p.ln, nil
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		attrs := []any{"variable", variable, "addr", addr, "error", err}
		for _, p := range l.passed {
			if _, port, _ := net.SplitHostPort(addr); p.use == "" && port == strconv.Itoa(p.ln.Addr().(*net.TCPAddr).Port) {
				// The socket systemd holds takes the port: the two
				// addresses differ.
				attrs = append(attrs, "hint", fmt.Sprintf("systemd passed a socket on %s, which %s does not name: make them the same address", p.ln.Addr(), variable))
			}
		}
		switch {
		case errors.Is(err, syscall.EACCES):
			attrs = append(attrs, "hint", "a port below 1024 needs root or CAP_NET_BIND_SERVICE (deploy/systemd's unit grants it); in a container, publish a high port instead")
		case errors.Is(err, syscall.EADDRINUSE):
			// On a first start the web server the gateway replaces still
			// runs; on a restart the old gateway may still be draining.
			_, port, _ := net.SplitHostPort(addr)
			attrs = append(attrs, "hint", fmt.Sprintf("another process holds the port (nginx or Apache still running? ss -ltnp 'sport = :%s' names it): stop it (systemctl disable --now nginx), or set %s to a free port", port, variable))
		}
		l.log.Error("cannot listen", attrs...)
	}
	return ln, err
}

// listenFailedStatus is the exit status for a listener that could not be
// opened: a port still taken by the old process, or an address not up yet
// at boot, may work on the next start (1), but a port the user may not
// bind never will, and a supervisor restarting on it forever only fills
// the log (exitConfig).
func listenFailedStatus(err error) int {
	if errors.Is(err, syscall.EACCES) {
		return exitConfig
	}
	return 1
}

// boundTo reports whether a socket bound to a serves addr (host:port): the
// same port, and the same address unless addr's host is empty or a
// wildcard. A host name must resolve to the socket's address: a wildcard
// socket would open SESSIONGATE_ADMIN_LISTEN=localhost:8081 to every
// interface.
func boundTo(a *net.TCPAddr, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != strconv.Itoa(a.Port) {
		return false
	}
	if host == "" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsUnspecified() || ip.Equal(a.IP)
	}
	ips, err := net.LookupIP(host)
	return err == nil && slices.ContainsFunc(ips, a.IP.Equal)
}

// unclaimed returns an error naming the passed sockets no listener took.
func (l *listeners) unclaimed() error {
	var left []string
	for _, p := range l.passed {
		if p.use == "" {
			left = append(left, fmt.Sprintf("%s (fd %d)", p.ln.Addr(), p.fd))
		}
	}
	if len(left) == 0 {
		return nil
	}
	return errors.New("systemd passed sockets on " + strings.Join(left, ", ") +
		" that no SESSIONGATE_LISTEN, SESSIONGATE_HTTP_REDIRECT_LISTEN or SESSIONGATE_ADMIN_LISTEN names: their connections would never be answered")
}

func (l *listeners) closeAll() {
	for _, p := range l.passed {
		p.ln.Close()
	}
}

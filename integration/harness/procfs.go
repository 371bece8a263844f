package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// procEntry is what the harness reads of one process in /proc/PID/stat.
type procEntry struct{ pid, ppid, pgrp int }

// liveProcs lists the processes in /proc, zombies left out (a killed worker
// not yet reaped is not a worker, and holds no sockets).
func liveProcs() []procEntry {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procEntry
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Format: pid (comm) state ppid pgrp ...; comm may contain spaces
		// and ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		ppid, err1 := strconv.Atoi(fields[1])
		pgrp, err2 := strconv.Atoi(fields[2])
		if err1 == nil && err2 == nil {
			out = append(out, procEntry{pid: pid, ppid: ppid, pgrp: pgrp})
		}
	}
	return out
}

// groupListensOn reports whether a process of process group pgid holds a
// listening TCP socket on port. A connection to a port picked for a server
// proves nothing by itself: another process may have taken the port
// meanwhile, and this server is about to exit on "address already in use".
func groupListensOn(pgid, port int) bool {
	inodes := listeningInodes(port)
	if len(inodes) == 0 {
		return false
	}
	// The group's leader (php-fpm's master, gunicorn's arbiter, redis)
	// holds it nearly always: looked at first, it spares reading every
	// process's stat, which the test binary spent seconds on per run.
	if holdsSocket(pgid, inodes) {
		return true
	}
	for _, p := range liveProcs() {
		if p.pgrp == pgid && p.pid != pgid && holdsSocket(p.pid, inodes) {
			return true
		}
	}
	return false
}

// holdsSocket reports whether process pid has one of inodes open.
func holdsSocket(pid int, inodes map[string]bool) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if link, err := os.Readlink(dir + "/" + fd.Name()); err == nil && inodes[link] {
			return true
		}
	}
	return false
}

// listeningInodes returns the "socket:[INODE]" names of the TCP sockets in
// state LISTEN on port, IPv4 and IPv6.
func listeningInodes(port int) map[string]bool {
	out := map[string]bool{}
	wantPort := fmt.Sprintf(":%04X", port)
	// A local address ends in the port, then a space.
	portField := []byte(wantPort + " ")
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the column titles
		for sc.Scan() {
			// Thousands of lines after a load test (TIME_WAIT): split
			// only those that name the port.
			if !bytes.Contains(sc.Bytes(), portField) {
				continue
			}
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when
			// retrnsmt uid timeout inode ...
			fields := strings.Fields(sc.Text())
			const listen = "0A"
			if len(fields) >= 10 && strings.HasSuffix(fields[1], wantPort) && fields[3] == listen {
				out["socket:["+fields[9]+"]"] = true
			}
		}
		f.Close()
	}
	return out
}

// listensOn reports whether p (its process group: servers are started with
// Setpgid) holds addr's listening socket; always true for a unix socket,
// whose path is the test's own.
func (p *proc) listensOn(addr string) bool {
	network, address := splitAddr(addr)
	if network != "tcp" {
		return true
	}
	_, portText, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return false
	}
	return groupListensOn(p.cmd.Process.Pid, port)
}

// HoldsConnection reports whether process pid holds the TCP connection
// between its localPort and the peer's remotePort: a socket the process
// closed may live on in the kernel, sending what was queued, but no
// longer holds the process's descriptor (what ss -p shows).
func HoldsConnection(pid, localPort, remotePort int) bool {
	inodes := map[string]bool{}
	local, remote := fmt.Sprintf(":%04X", localPort), fmt.Sprintf(":%04X", remotePort)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) >= 10 && strings.HasSuffix(fields[1], local) && strings.HasSuffix(fields[2], remote) {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
	}
	return len(inodes) > 0 && holdsSocket(pid, inodes)
}

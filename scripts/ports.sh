# scripts/ports.sh — sourced by scripts/demo.sh and bench/run.sh, which
# start servers on loopback ports they pick. The caller defines die.

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# loopback_addr HOST:PORT: where this machine reaches a listener on
# HOST:PORT. One without a host (":8080", as the gateway takes it) or on a
# wildcard (0.0.0.0, [::]) is reached on 127.0.0.1: bash's /dev/tcp cannot
# connect to ":8080", so port_busy would never see such a listener.
loopback_addr() {
	local host=${1%:*}
	case $host in "" | 0.0.0.0 | "[::]") host=127.0.0.1 ;; esac
	echo "$host:${1##*:}"
}

# port_busy HOST:PORT: something accepts connections there.
port_busy() {
	local addr host
	addr=$(loopback_addr "$1")
	host=${addr%:*}
	host=${host#\[}
	host=${host%\]}
	(exec 3<>"/dev/tcp/$host/${addr##*:}") 2>/dev/null
}

# wait_port HOST:PORT PID LOGFILE: until HOST:PORT accepts a connection; die
# with the tail of LOGFILE if process PID exits first or after 15 s.
wait_port() {
	local pid=$2 logfile=$3
	for _ in $(seq 150); do
		if port_busy "$1"; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -20 "$logfile" >&2 || true
			die "process $pid exited before $1 accepted (log: $logfile)"
		fi
		sleep 0.1
	done
	tail -20 "$logfile" >&2 || true
	die "$1 not accepting after 15s (log: $logfile)"
}

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

# holds_listener PID PORT: process PID itself has a socket listening on
# PORT. A connection that succeeds proves less: a port free_port picked may
# have been taken by another process, which then answers in PID's place.
holds_listener() {
	local pid=$1 port _ local_addr st inode fd
	port=$(printf '%04X' "$2")
	while read -r _ local_addr _ st _ _ _ _ _ inode _; do
		[[ $st == 0A && ${local_addr##*:} == "$port" ]] || continue
		for fd in /proc/"$pid"/fd/*; do
			[[ $(readlink "$fd" 2>/dev/null) != "socket:[$inode]" ]] || return 0
		done
	done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
	return 1
}

# listening HOST:PORT PID LOGFILE: 0 once process PID listens on HOST's
# PORT. 1 when PID exited with "in use" in LOGFILE (what redis-server,
# php-fpm, gunicorn and the gateway say when bind fails): another process
# took the port between free_port and PID's bind, and the caller may start
# PID again on a new port. Dies with the tail of LOGFILE when PID exits for
# another reason, or after 15 s.
listening() {
	local pid=$2 logfile=$3
	for _ in $(seq 150); do
		if ! kill -0 "$pid" 2>/dev/null; then
			! grep -qi "in use" "$logfile" 2>/dev/null || return 1
			tail -20 "$logfile" >&2 || true
			die "process $pid exited before $1 accepted (log: $logfile)"
		fi
		if holds_listener "$pid" "${1##*:}"; then
			return 0
		fi
		sleep 0.1
	done
	tail -20 "$logfile" >&2 || true
	die "$1 not accepting after 15s (log: $logfile)"
}

# wait_port HOST:PORT PID LOGFILE: listening, for a port that cannot be
# picked again; a taken one is fatal too.
wait_port() {
	listening "$@" && return 0
	tail -20 "$3" >&2 || true
	die "process $2 exited: $1 is in use (log: $3)"
}

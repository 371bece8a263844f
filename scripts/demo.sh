#!/usr/bin/env bash
# demo.sh — run the demo stack in the foreground: php-fpm and the gateway on
# http://127.0.0.1:8080 serving examples/php. Ctrl-C stops everything it
# started. `make demo` builds bin/gateway and checks dependencies first.
#
# Environment: DEMO_LISTEN (default 127.0.0.1:8080), DEMO_ADMIN_LISTEN
# (default 127.0.0.1:8081), GATEWAY_BIN (default bin/gateway).
#
# Each service is a start_* function; issues 3 and 4 add redis-server and
# gunicorn (Django) the same way, before start_gateway.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
DEMO=$ROOT/.demo
DEMO_LISTEN=${DEMO_LISTEN:-127.0.0.1:8080}
DEMO_ADMIN_LISTEN=${DEMO_ADMIN_LISTEN:-127.0.0.1:8081}
GATEWAY_BIN=${GATEWAY_BIN:-$ROOT/bin/gateway}
SITE=$ROOT/examples/php

mkdir -p "$DEMO"
declare -a PIDS=()

log() { echo "demo: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

stop_all() {
	local i pid
	# Reverse start order: the gateway first, then what it depends on.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		kill -TERM -- "-$pid" 2>/dev/null || continue
		for _ in $(seq 50); do
			kill -0 -- "-$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap stop_all EXIT
trap 'log "stopping"; exit 0' INT TERM

# spawn NAME LOGFILE CMD...: run CMD in its own process group (so stopping it
# takes its workers), output to LOGFILE; sets SPAWNED_PID.
spawn() {
	local name=$1 logfile=$2
	shift 2
	: >"$logfile"
	setsid "$@" >>"$logfile" 2>&1 </dev/null &
	SPAWNED_PID=$!
	PIDS+=("$SPAWNED_PID")
	log "$name started (pid $SPAWNED_PID, log $logfile)"
}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port HOST:PORT PID LOGFILE
wait_port() {
	local host=${1%:*} port=${1##*:} pid=$2 logfile=$3
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -20 "$logfile" >&2 || true
			die "process $pid exited before $1 accepted"
		fi
		sleep 0.1
	done
	tail -20 "$logfile" >&2 || true
	die "$1 not accepting after 10s"
}

port_busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

start_php_fpm() {
	FPM_ADDR=127.0.0.1:$(free_port)
	cat >"$DEMO/php-fpm.conf" <<CONF
[global]
pid = $DEMO/php-fpm.pid
error_log = $DEMO/php-fpm.log
daemonize = no

[demo]
listen = $FPM_ADDR
pm = static
pm.max_children = 4
catch_workers_output = yes
security.limit_extensions = .php
php_admin_value[display_errors] = stderr
CONF
	local args=(-F -y "$DEMO/php-fpm.conf")
	# Root may run workers as root only with -R: acceptable for a local demo.
	[[ $(id -u) -ne 0 ]] || args+=(-R)
	# Start-up errors go to stderr before error_log opens: same file.
	spawn php-fpm "$DEMO/php-fpm.log" php-fpm8.2 "${args[@]}"
	wait_port "$FPM_ADDR" "$SPAWNED_PID" "$DEMO/php-fpm.log"
}

# session_key prints the demo's cookie-signing key, made once and kept in
# .demo/ so that sessions survive a restart of the demo.
session_key() {
	local f=$DEMO/session-key
	if [[ ! -s $f ]]; then
		(umask 077 && head -c 48 /dev/urandom | base64 -w0 >"$f")
	fi
	cat "$f"
}

start_gateway() {
	[[ -x $GATEWAY_BIN ]] || die "$GATEWAY_BIN missing: run 'make build'"
	! port_busy "$DEMO_LISTEN" || die "$DEMO_LISTEN is in use (set DEMO_LISTEN=host:port)"
	SESSIONGATE_SESSION_KEYS=$(session_key) \
		SESSIONGATE_LISTEN=$DEMO_LISTEN \
		SESSIONGATE_ADMIN_LISTEN=$DEMO_ADMIN_LISTEN \
		SESSIONGATE_PHP_FPM=$FPM_ADDR \
		SESSIONGATE_DOCUMENT_ROOT=$SITE \
		SESSIONGATE_PHP_MAX_CONNS=4 \
		SESSIONGATE_LOG_FORMAT=text \
		spawn gateway "$DEMO/gateway.log" "$GATEWAY_BIN"
	wait_port "$DEMO_LISTEN" "$SPAWNED_PID" "$DEMO/gateway.log"
	GATEWAY_PID=$SPAWNED_PID
}

start_php_fpm
start_gateway

{
	echo
	echo "  sessiongate demo is running."
	echo
	printf '    %-48s %s\n' \
		"http://$DEMO_LISTEN/" "PHP front controller: what PHP receives" \
		"http://$DEMO_LISTEN/pathinfo.php/articles/42" "a script with PATH_INFO" \
		"http://$DEMO_LISTEN/assets/style.css" "a static file served by the gateway" \
		"http://$DEMO_ADMIN_LISTEN/healthz" "admin listener: liveness" \
		"http://$DEMO_ADMIN_LISTEN/readyz" "admin listener: php-fpm reachable"
	echo
	echo "  Logs in $DEMO/ (the gateway's access log is gateway.log)."
	echo "  Press Ctrl-C to stop."
	echo
}

# Stay in the foreground until Ctrl-C or until the gateway dies.
while kill -0 "$GATEWAY_PID" 2>/dev/null; do
	sleep 1
done
tail -20 "$DEMO/gateway.log" >&2 || true
die "the gateway exited"

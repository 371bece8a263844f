#!/usr/bin/env bash
# demo.sh — run the demo stack in the foreground: redis-server, php-fpm
# serving examples/php, gunicorn serving examples/django, and the gateway on
# http://127.0.0.1:8080 in front of both, sharing one session kept in Redis.
# Ctrl-C (or SIGTERM) stops everything it started. `make demo` checks (and as
# root on Debian installs) the dependencies and builds bin/gateway first.
#
# Environment: DEMO_LISTEN (default 127.0.0.1:8080), DEMO_ADMIN_LISTEN
# (default 127.0.0.1:8081), GATEWAY_BIN (default bin/gateway).
#
# Everything the demo keeps is in .demo/: the logs, the cookie-signing key
# (session-key) and Django's secret key, so that a restart keeps the logins,
# Django's database with the demo user, and Redis' snapshot (redis.rdb).
# One demo runs per checkout (it holds .demo/lock while it runs).
# gunicorn listens on a loopback port picked at start, redis-server and
# php-fpm on unix sockets in .demo/ that only the demo's user may use.
# Run as root (`make demo` on Debian), php-fpm's workers run as nobody, on
# a read-only copy of examples/php in /tmp that nobody can reach, and so do
# gunicorn and manage.py, on a read-only copy of examples/django and
# wsgi/django, with Django's database in a directory of /tmp only nobody
# may use, taken from .demo/ at start and put back there when the demo
# stops.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
DEMO=$ROOT/.demo
DEMO_LISTEN=${DEMO_LISTEN:-127.0.0.1:8080}
DEMO_ADMIN_LISTEN=${DEMO_ADMIN_LISTEN:-127.0.0.1:8081}
GATEWAY_BIN=${GATEWAY_BIN:-$ROOT/bin/gateway}
SITE=$ROOT/examples/php
DJANGO_PROJECT=$ROOT/examples/django
# Debian's interpreter and gunicorn: they have Django. A pyenv/virtualenv
# python3 first on PATH may not, and PYTHON* variables could point Debian's
# interpreter at another installation, so those are dropped for the whole
# demo (nothing else it runs reads them).
PYTHON=/usr/bin/python3
GUNICORN=/usr/bin/gunicorn
for v in $(compgen -e); do
	case $v in PYTHON* | PYENV* | VIRTUAL_ENV | CONDA_PREFIX) unset "$v" ;; esac
done

# Seconds the gateway drains its requests on Ctrl-C; stop_all waits for it.
GATEWAY_SHUTDOWN_TIMEOUT=3s

mkdir -p "$DEMO"
# The services started, in start order: process (group) id, name, log.
declare -a PIDS=() NAMES=() LOGS=()

log() { echo "demo: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

stop_all() {
	local i pid
	# A second Ctrl-C or SIGTERM (make passes its own SIGTERM on to this
	# script) must not cut the clean-up short and leave services running.
	trap '' INT TERM HUP
	# Reverse start order: the gateway first, then what it depends on.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		kill -TERM -- "-$pid" 2>/dev/null || continue
		# Tenths of a second before SIGKILL. The gateway's drain
		# (GATEWAY_SHUTDOWN_TIMEOUT), then up to 5 s for the requests it
		# cut to release their session locks, with some to spare: killed
		# sooner, it would leave those locks in Redis, snapshot and all.
		local wait=50
		[[ ${NAMES[i]} != gateway ]] || wait=$(((${GATEWAY_SHUTDOWN_TIMEOUT%s} + 5 + 2) * 10))
		for _ in $(seq "$wait"); do
			kill -0 -- "-$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PIDS=() NAMES=() LOGS=()
	[[ -z ${SOCK_TMP:-} ]] || rm -rf "$SOCK_TMP"
	[[ -z ${PHP_SHARE:-} ]] || rm -rf "$PHP_SHARE"
	if [[ -n ${DJANGO_SHARE:-} ]]; then
		keep_django_db
		rm -rf "$DJANGO_SHARE"
	fi
}
trap stop_all EXIT
trap 'trap "" INT TERM HUP; log "stopping"; exit 0' INT TERM
# The script's output may go to a reader that is gone (`make demo | tee`,
# tee stopped by the same Ctrl-C): a write there fails instead of killing
# the script, which could then die with a stop signal pending and skip the
# EXIT trap, leaving every service running. spawn gives the services the
# default back.
trap '' PIPE

# spawn NAME LOGFILE CMD...: run CMD in its own process group (so stopping it
# takes its workers), output to LOGFILE; sets SPAWNED_PID.
spawn() {
	local name=$1 logfile=$2
	shift 2
	: >"$logfile"
	(
		trap - PIPE
		exec setsid "$@"
	) >>"$logfile" 2>&1 </dev/null {LOCK_FD}>&- &
	SPAWNED_PID=$!
	PIDS+=("$SPAWNED_PID")
	NAMES+=("$name")
	LOGS+=("$logfile")
	log "$name started (pid $SPAWNED_PID, log $logfile)"
}

# Missing programs: `make demo` installs them (as root on Debian) before
# this script runs; run directly, say what to do.
preflight() {
	local missing=()
	command -v php-fpm8.2 >/dev/null || missing+=(php-fpm8.2)
	command -v redis-server >/dev/null || missing+=(redis-server)
	[[ -x $GUNICORN ]] || missing+=("$GUNICORN")
	"$PYTHON" -c 'import django' 2>/dev/null || missing+=("django for $PYTHON")
	((${#missing[@]} == 0)) || die "missing: ${missing[*]} (scripts/deps.sh demo installs them as root)"
}

# free_port, loopback_addr HOST:PORT, port_busy HOST:PORT, listening and
# wait_port HOST:PORT PID LOGFILE
source "$ROOT/scripts/ports.sh"

# on_free_port NAME SPAWN: SPAWN PORT spawns NAME to listen on
# 127.0.0.1:PORT, a port free_port picked. Another process can take that
# port before NAME binds it; NAME then exits saying so and is spawned again
# on a new port (3 tries), forgotten by stop_all and the watch loop. The
# gateway's own ports are never picked: they look free until the gateway,
# started last, binds them (DEMO_LISTEN on an ephemeral port, as the tests
# give it, was once handed to gunicorn, and the gateway refused to start).
on_free_port() {
	local name=$1 spawn_on=$2 port
	for _ in 1 2 3; do
		port=$(free_port)
		while [[ $port == "${DEMO_LISTEN##*:}" || $port == "${DEMO_ADMIN_LISTEN##*:}" ]]; do
			port=$(free_port)
		done
		"$spawn_on" "$port"
		listening "127.0.0.1:$port" "$SPAWNED_PID" "${LOGS[-1]}" && return 0
		log "$name: 127.0.0.1:$port was taken before it bound it; another port"
		unset 'PIDS[-1]' 'NAMES[-1]' 'LOGS[-1]'
	done
	die "$name: the port was taken three times in a row"
}

# PHP_WORKER_USER is who php-fpm's workers run as when the demo runs as
# root (`make demo` installs packages as root on Debian): never root, as
# in the integration tests (integration/harness/phpuser.go).
PHP_WORKER_USER=nobody

# prepare_php sets PHP_SITE, the site as php-fpm reads it, and PREPEND,
# the PHP side of the session bridge (gateway php-prepend). As root, the
# workers run as PHP_WORKER_USER, who may not reach the checkout (under
# /root, mode 0700): they get read-only copies of both in a directory of
# /tmp they can reach (removed by stop_all), and the gateway serves the
# same copy.
prepare_php() {
	PHP_SITE=$SITE
	PREPEND=$DEMO/sessiongate-prepend.php
	if [[ $(id -u) -eq 0 ]]; then
		id -u "$PHP_WORKER_USER" >/dev/null 2>&1 ||
			die "the demo runs as root and runs PHP as $PHP_WORKER_USER, which does not exist"
		PHP_SHARE=$(mktemp -d /tmp/sessiongate-demo-php.XXXXXX)
		PHP_SITE=$PHP_SHARE/site
		PREPEND=$PHP_SHARE/sessiongate-prepend.php
		cp -R "$SITE/." "$PHP_SITE" || die "cannot copy $SITE to $PHP_SITE"
	fi
	"$GATEWAY_BIN" php-prepend >"$PREPEND" || die "$GATEWAY_BIN php-prepend failed"
	[[ -z ${PHP_SHARE:-} ]] || chmod -R go-w,a+rX "$PHP_SHARE"
}

# start_php_fpm: php-fpm on a unix socket only the demo's user may use.
# php-fpm runs any script, with any php.ini setting (auto_prepend_file),
# for whoever connects: on a 127.0.0.1 port every local user could, and
# with workers running as root that was every local user running code as
# root.
start_php_fpm() {
	sock_path php-fpm.sock
	local sock=$SOCK pool_user=""
	FPM_ADDR=unix:$sock
	if [[ $(id -u) -eq 0 ]]; then
		# The socket stays root's (the gateway's) alone: the workers get
		# their connections from the master and need no access to it.
		pool_user="user = $PHP_WORKER_USER
group = $(id -gn "$PHP_WORKER_USER")
listen.owner = root
listen.group = root"
	fi
	cat >"$DEMO/php-fpm.conf" <<CONF
[global]
pid = $DEMO/php-fpm.pid
error_log = $DEMO/php-fpm.log
daemonize = no

[demo]
$pool_user
listen = $sock
listen.mode = 0600
pm = static
pm.max_children = 4
catch_workers_output = yes
security.limit_extensions = .php
php_admin_value[display_errors] = stderr
CONF
	# Start-up errors go to stderr before error_log opens: same file.
	spawn php-fpm "$DEMO/php-fpm.log" php-fpm8.2 -F -y "$DEMO/php-fpm.conf"
	wait_sock php-fpm "$sock"
}

# sock_path NAME sets SOCK to where a service of the demo puts its unix
# socket NAME, a path not there yet: in .demo/, or a private directory in
# /tmp (removed by stop_all) when that path is too long for a socket (107
# bytes).
sock_path() {
	SOCK=$DEMO/$1
	if ((${#SOCK} > 100)); then
		[[ -n ${SOCK_TMP:-} ]] || SOCK_TMP=$(mktemp -d /tmp/sessiongate-demo.XXXXXX)
		SOCK=$SOCK_TMP/$1
	fi
	rm -f "$SOCK"
}

# wait_sock NAME SOCKET: the service just spawned listens on SOCKET.
wait_sock() {
	local name=$1 sock=$2 pid=$SPAWNED_PID log=${LOGS[-1]}
	for _ in $(seq 150); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -20 "$log" >&2 || true
			die "$name exited before it listened on $sock (log: $log)"
		fi
		[[ ! -S $sock ]] || return 0
		sleep 0.1
	done
	tail -20 "$log" >&2 || true
	die "$name not listening on $sock after 15s (log: $log)"
}

# secret FILE prints a random secret made once and kept in .demo/, so that
# the logins survive a restart of the demo.
secret() {
	local f=$DEMO/$1
	if [[ ! -s $f ]]; then
		(umask 077 && head -c 48 /dev/urandom | base64 -w0 >"$f")
	fi
	cat "$f"
}

# start_redis: redis-server on a unix socket only the demo's user may use,
# and no port: it holds the sessions, logins included, without a password,
# and any local user could otherwise log themselves in as the demo's admin.
start_redis() {
	sock_path redis.sock
	local sock=$SOCK
	REDIS_SOCK=$sock
	# Snapshots into .demo/redis.rdb (at most a minute behind, and on a
	# clean stop), so sessions outlive a restart of the demo, like the key.
	spawn redis-server "$DEMO/redis.log" redis-server \
		--port 0 --unixsocket "$sock" --unixsocketperm 600 \
		--dir "$DEMO" --dbfilename redis.rdb --save "60 1" --appendonly no \
		--daemonize no
	wait_sock redis-server "$sock"
}

# demo_host: the host of the URLs the banner prints (DEMO_LISTEN's, or
# 127.0.0.1 for a wildcard), which Django must accept as a Host: [::1] or a
# LAN address is not in its default list.
demo_host() {
	local addr
	addr=$(loopback_addr "$DEMO_LISTEN")
	echo "${addr%:*}"
}

# with_django_env CMD...: runs CMD (a program, or spawn) with what
# manage.py and gunicorn read. Variables, not arguments: the secrets stay out
# of the process list, and out of the other services' environment. The
# settings are the example project's, whatever DJANGO_SETTINGS_MODULE the
# user's shell exports for a project of their own (manage.py and wsgi.py
# only set it when it is unset).
with_django_env() {
	DJANGO_SETTINGS_MODULE=sgdemo.settings \
		DJANGO_DATABASE=$DJANGO_DB \
		DJANGO_SECRET_KEY=$(secret django-secret-key) \
		DJANGO_ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS:-127.0.0.1,localhost,$(demo_host)} \
		SESSIONGATE_SESSION_KEYS=$(secret session-key) \
		"$@"
}

# prepare_django sets DJANGO_DIR, the project as gunicorn and manage.py
# import it, DJANGO_DB, its database, and AS_DJANGO, what runs a program as
# Django's user. As root, that is PHP_WORKER_USER, never root: the views,
# and any bug in one, would run as root. That user may not reach the
# checkout (under /root, mode 0700), so it gets read-only copies of the
# project and of sessiongate_django (at the same place relative to each
# other: settings.py finds the package there) in a directory of /tmp, and
# the database in a directory of it that only it may use (SQLite writes its
# journal next to the file). The database is copied there from .demo/ and
# back by stop_all (keep_django_db), so .demo/ keeps it, root's.
prepare_django() {
	DJANGO_DIR=$DJANGO_PROJECT
	DJANGO_DB=$DEMO/django.sqlite3
	AS_DJANGO=()
	[[ $(id -u) -eq 0 ]] || return 0
	local group
	group=$(id -gn "$PHP_WORKER_USER")
	DJANGO_SHARE=$(mktemp -d /tmp/sessiongate-demo-django.XXXXXX)
	mkdir -p "$DJANGO_SHARE/examples/django" "$DJANGO_SHARE/wsgi/django"
	cp -R "$DJANGO_PROJECT/." "$DJANGO_SHARE/examples/django" &&
		cp -R "$ROOT/wsgi/django/." "$DJANGO_SHARE/wsgi/django" ||
		die "cannot copy the Django project to $DJANGO_SHARE"
	chmod -R go-w,a+rX "$DJANGO_SHARE"
	mkdir -m 0700 "$DJANGO_SHARE/db"
	if [[ -s $DEMO/django.sqlite3 ]]; then
		cp "$DEMO/django.sqlite3" "$DJANGO_SHARE/db/django.sqlite3" || die "cannot copy $DEMO/django.sqlite3"
	fi
	chown -R "$PHP_WORKER_USER:$group" "$DJANGO_SHARE/db"
	DJANGO_DIR=$DJANGO_SHARE/examples/django
	DJANGO_DB=$DJANGO_SHARE/db/django.sqlite3
	AS_DJANGO=(setpriv --reuid="$PHP_WORKER_USER" --regid="$group" --clear-groups --)
}

# keep_django_db puts the database Django used as root's PHP_WORKER_USER
# back into .demo/ (SQLite's backup: whole and consistent, also if gunicorn
# was killed in a transaction), once Django has stopped.
keep_django_db() {
	local db=$DJANGO_SHARE/db/django.sqlite3
	[[ -s $db ]] || return 0
	rm -f "$DEMO/django.sqlite3.new"
	if "$PYTHON" -E -c 'import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()
src.close()' "$db" "$DEMO/django.sqlite3.new" && mv -f "$DEMO/django.sqlite3.new" "$DEMO/django.sqlite3"; then
		return 0
	fi
	rm -f "$DEMO/django.sqlite3.new"
	log "error: Django's database not kept: $db could not be copied to $DEMO/django.sqlite3"
}

start_django() {
	prepare_django
	log "django: migrate, demo user (log $DEMO/django-setup.log)"
	# The admin's static files are served by the example project itself
	# (examples/django/sgdemo/urls.py), so there is no collectstatic step.
	if ! (cd "$DJANGO_DIR" &&
		with_django_env "${AS_DJANGO[@]}" "$PYTHON" -E manage.py migrate --noinput &&
		with_django_env "${AS_DJANGO[@]}" "$PYTHON" -E manage.py demo_user) >"$DEMO/django-setup.log" 2>&1; then
		tail -20 "$DEMO/django-setup.log" >&2 || true
		die "Django set-up failed"
	fi
	on_free_port gunicorn spawn_gunicorn
}

spawn_gunicorn() {
	DJANGO_ADDR=127.0.0.1:$1
	with_django_env spawn gunicorn "$DEMO/gunicorn.log" "${AS_DJANGO[@]}" "$GUNICORN" \
		--chdir "$DJANGO_DIR" --pythonpath "$DJANGO_DIR" \
		--bind "$DJANGO_ADDR" --workers 2 --threads 4 --graceful-timeout 3 \
		sgdemo.wsgi:application
}

start_gateway() {
	SESSIONGATE_SESSION_KEYS=$(secret session-key) \
		SESSIONGATE_REDIS_URL=unix://$REDIS_SOCK?db=0 \
		SESSIONGATE_PHP_PREPEND=$PREPEND \
		SESSIONGATE_DJANGO_URL=http://$DJANGO_ADDR \
		SESSIONGATE_DJANGO_PATHS=/admin/,/accounts/,/static/admin/ \
		SESSIONGATE_LISTEN=$DEMO_LISTEN \
		SESSIONGATE_ADMIN_LISTEN=$DEMO_ADMIN_LISTEN \
		SESSIONGATE_PHP_FPM=$FPM_ADDR \
		SESSIONGATE_DOCUMENT_ROOT=$PHP_SITE \
		SESSIONGATE_SHUTDOWN_TIMEOUT=$GATEWAY_SHUTDOWN_TIMEOUT \
		SESSIONGATE_PHP_MAX_CONNS=4 \
		SESSIONGATE_LOG_FORMAT=text \
		spawn gateway "$DEMO/gateway.log" "$GATEWAY_BIN"
	wait_port "$DEMO_LISTEN" "$SPAWNED_PID" "$DEMO/gateway.log"
}

# One demo per checkout: a second one would share .demo/ (truncate the
# logs, migrate the same database, snapshot into the same redis.rdb). The
# lock goes with this process, however it ends, so it is never stale; the
# services do not inherit it (spawn closes it).
exec {LOCK_FD}>>"$DEMO/lock"
if ! flock -n "$LOCK_FD"; then
	die "a demo is already running from $ROOT (pid $(cat "$DEMO/lock" 2>/dev/null || echo '?')): stop it (Ctrl-C) first"
fi
echo $$ >"$DEMO/lock"

preflight
[[ -x $GATEWAY_BIN ]] || die "$GATEWAY_BIN missing: run 'make build'"
! port_busy "$DEMO_LISTEN" || die "$DEMO_LISTEN is in use (set DEMO_LISTEN=host:port)"
! port_busy "$DEMO_ADMIN_LISTEN" || die "$DEMO_ADMIN_LISTEN is in use (set DEMO_ADMIN_LISTEN=host:port)"
start_redis
prepare_php
start_php_fpm
start_django
start_gateway

{
	# URLs a browser opens: ":8080" or "0.0.0.0:8080" is not one.
	u=http://$(loopback_addr "$DEMO_LISTEN")
	admin=http://$(loopback_addr "$DEMO_ADMIN_LISTEN")
	echo
	echo "  sessiongate demo is running: PHP and Django behind one gateway, one session."
	echo
	echo "  Log in with Django's admin as demo / demo-password, then see PHP know you:"
	echo
	printf '    %-48s %s\n' \
		"$u/admin/" "Django admin (log in: demo / demo-password)" \
		"$u/who.php" "PHP: who is logged in (name and id from Django)" \
		"$u/cart.php" "PHP: a cart in \$_SESSION" \
		"$u/accounts/cart/" "Django: the same cart (JSON)" \
		"$u/counter.php" "PHP: a session counter" \
		"$u/accounts/counter/" "Django: the same counter, +1" \
		"$u/accounts/" "Django: who is logged in" \
		"$u/" "PHP front controller: what PHP receives" \
		"$u/pathinfo.php/articles/42" "a script with PATH_INFO" \
		"$u/assets/style.css" "a static file served by the gateway" \
		"$admin/healthz" "admin listener: liveness" \
		"$admin/readyz" "admin listener: readiness" \
		"$admin/metrics" "admin listener: Prometheus metrics"
	echo
	echo "  Logs in $DEMO/ (the gateway's access log is gateway.log)."
	echo "  Press Ctrl-C to stop."
	echo
}

# Stay in the foreground until Ctrl-C or until a service dies.
while true; do
	for i in "${!PIDS[@]}"; do
		if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
			tail -20 "${LOGS[i]}" >&2 || true
			die "${NAMES[i]} (pid ${PIDS[i]}) exited; log ${LOGS[i]}"
		fi
	done
	sleep 1
done

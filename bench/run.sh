#!/usr/bin/env bash
# bench/run.sh — the gateway, nginx and Caddy in front of the SAME php-fpm
# pool, measured with wrk in the same run and printed as req/s, p99 and
# ratios. Called by `make bench` (which builds bin/gateway and checks the
# dependencies first).
#
# Environment (all optional):
#   BENCH_DURATION   measured wrk run per front and scenario   (default 10s)
#   BENCH_WARMUP     wrk warm-up before each measurement       (default 2s)
#   BENCH_ROUNDS     rounds; the front order alternates         (default 2)
#   BENCH_THREADS    wrk -t                                     (default 2)
#   BENCH_CONNS      wrk -c                                     (default 32)
#   BENCH_FRONTS     fronts to run         (default "gateway nginx caddy")
#   BENCH_SCENARIOS  scenarios to run      (default "hello static")
#   BENCH_CHILDREN   php-fpm pm.max_children, pm=static         (default 8)
#   GATEWAY_BIN      gateway binary                   (default bin/gateway)
#
# Method. Runs vary by +-30% on a shared 2-core machine, so absolute figures
# mean little: fronts are compared as ratios measured in the same run, over
# several rounds with the order reversed every round. Each front is started
# just before its measurements and stopped right after: an idle keep-alive
# connection pins a php-fpm worker, so a front left running would hold
# workers the next front needs and we would measure the pinning, not the
# front. Every response is checked once before a front is measured, and wrk's
# error counts are printed: a front that answers errors fast must not look
# fast.
#
# Extending (issues 3 and 4: session counter page, Django proxy): a scenario
# NAME is a set of functions —
#   scenario_NAME_setup      write its files into $DOCROOT (once, optional)
#   scenario_NAME_path       print the URL path to request
#   scenario_NAME_expect     print a string the response body must contain
#   scenario_NAME_fronts     print the fronts it runs on (optional; default
#                            all of BENCH_FRONTS)
#   scenario_NAME_wrk_args   print extra wrk arguments, e.g. "-s x.lua" (optional)
#   scenario_NAME_after      called after each measurement with the front
#                            name, e.g. to count lost updates (optional)
# and its targets are rows of TARGETS below. A front NAME is start_NAME
# (start it, set FRONT_URL) plus an entry in FRONT_PIDS for the cleanup.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

BENCH_DURATION=${BENCH_DURATION:-10s}
BENCH_WARMUP=${BENCH_WARMUP:-2s}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_CONNS=${BENCH_CONNS:-32}
BENCH_FRONTS=${BENCH_FRONTS:-gateway nginx caddy}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-hello static}
BENCH_CHILDREN=${BENCH_CHILDREN:-8}
GATEWAY_BIN=${GATEWAY_BIN:-$ROOT/bin/gateway}
PHP_FPM=${PHP_FPM:-php-fpm8.2}

# Targets: "scenario front baseline ratio": front must reach ratio x baseline.
TARGETS=(
	"hello gateway nginx 1.0"
	"hello gateway caddy 3.0"
	"static gateway caddy 1.0"
)

WORK=$(mktemp -d /tmp/sessiongate-bench.XXXXXX)
# nginx workers may run as nobody when started by root: the tree must be
# readable by them.
chmod 755 "$WORK"
DOCROOT=$WORK/docroot
mkdir -p "$DOCROOT"
RESULTS_DIR=$ROOT/bench/results
mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$RESULTS_DIR/$STAMP
mkdir -p "$RAW"

declare -a ALL_PIDS=() # process-group leaders started by this script
FPM_PID=""
FRONT_PID=""
FRONT_URL=""

log() { echo "bench: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# stop_group PID: SIGTERM the process group, SIGKILL after 5 s, reap.
stop_group() {
	local pid=$1
	[[ -n $pid ]] || return 0
	kill -TERM -- "-$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${ALL_PIDS[@]}"; do
		stop_group "$pid"
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn LOGFILE CMD...: start CMD in its own session/process group so that
# stop_group takes its workers too; sets SPAWNED_PID.
spawn() {
	local logfile=$1
	shift
	setsid "$@" >>"$logfile" 2>&1 </dev/null &
	SPAWNED_PID=$!
	ALL_PIDS+=("$SPAWNED_PID")
}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT PID LOGFILE: until 127.0.0.1:PORT accepts, or die with the log.
wait_port() {
	local port=$1 pid=$2 logfile=$3
	for _ in $(seq 150); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -20 "$logfile" >&2 || true
			die "process $pid exited before 127.0.0.1:$port accepted (log: $logfile)"
		fi
		sleep 0.1
	done
	tail -20 "$logfile" >&2 || true
	die "127.0.0.1:$port not accepting after 15s (log: $logfile)"
}

# ---------------------------------------------------------------- php-fpm

start_php_fpm() {
	FPM_PORT=$(free_port)
	cat >"$WORK/php-fpm.conf" <<EOF
[global]
pid = $WORK/php-fpm.pid
error_log = $WORK/php-fpm.log
daemonize = no

[bench]
listen = 127.0.0.1:$FPM_PORT
; the default backlog; connections over the worker count wait here
pm = static
pm.max_children = $BENCH_CHILDREN
pm.max_requests = 0
catch_workers_output = yes
security.limit_extensions = .php
EOF
	local args=(-F -y "$WORK/php-fpm.conf")
	[[ $(id -u) -ne 0 ]] || args+=(-R)
	spawn "$WORK/php-fpm.log" "$PHP_FPM" "${args[@]}"
	FPM_PID=$SPAWNED_PID
	wait_port "$FPM_PORT" "$FPM_PID" "$WORK/php-fpm.log"
	log "php-fpm pid $FPM_PID on 127.0.0.1:$FPM_PORT, pm=static, $BENCH_CHILDREN children"
}

# ---------------------------------------------------------------- fronts

start_gateway() {
	[[ -x $GATEWAY_BIN ]] || die "$GATEWAY_BIN missing: run 'make build' (or drop gateway from BENCH_FRONTS)"
	local port
	port=$(free_port)
	# A fresh signing key per run: the bench pages use no session, but the
	# gateway refuses to start without one (or development mode).
	SESSIONGATE_SESSION_KEYS=$(head -c 48 /dev/urandom | base64 -w0) \
		SESSIONGATE_LISTEN=127.0.0.1:$port \
		SESSIONGATE_PHP_FPM=127.0.0.1:$FPM_PORT \
		SESSIONGATE_DOCUMENT_ROOT=$DOCROOT \
		SESSIONGATE_PHP_MAX_CONNS=$BENCH_CHILDREN \
		SESSIONGATE_ACCESS_LOG=off \
		spawn "$WORK/gateway.log" "$GATEWAY_BIN"
	FRONT_PID=$SPAWNED_PID
	wait_port "$port" "$FRONT_PID" "$WORK/gateway.log"
	FRONT_URL=http://127.0.0.1:$port
}

start_nginx() {
	local port
	port=$(free_port)
	mkdir -p "$WORK/nginx"
	# keepalive is per nginx worker process: 2 workers x 4 idle connections
	# = 8 <= pm.max_children. An idle kept-alive connection pins a php-fpm
	# worker; a cache larger than the pool lets idle connections of one
	# nginx worker starve the other (field notes: 0 req/s).
	cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path $WORK/nginx/body;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    proxy_temp_path $WORK/nginx/proxy;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;

    upstream php {
        server 127.0.0.1:$FPM_PORT;
        keepalive 4;
    }

    server {
        listen 127.0.0.1:$port;
        root $DOCROOT;
        index index.php;

        location ~ /\. { deny all; }

        # The gateway's routing: file, directory index, front controller.
        location / {
            try_files \$uri \$uri/ /index.php\$is_args\$args;
        }

        location ~ [^/]\.php(/|\$) {
            fastcgi_split_path_info ^(.+?\.php)(/.*)\$;
            try_files \$fastcgi_script_name =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param PATH_INFO \$fastcgi_path_info;
            fastcgi_param HTTP_PROXY "";
            fastcgi_keep_conn on;
            fastcgi_pass php;
        }
    }
}
EOF
	spawn "$WORK/nginx/stderr.log" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
	FRONT_PID=$SPAWNED_PID
	wait_port "$port" "$FRONT_PID" "$WORK/nginx/error.log"
	FRONT_URL=http://127.0.0.1:$port
}

start_caddy() {
	local port
	port=$(free_port)
	mkdir -p "$WORK/caddy"
	cat >"$WORK/caddy/Caddyfile" <<EOF
{
	admin off
	auto_https off
}

http://127.0.0.1:$port {
	root * $DOCROOT
	php_fastcgi 127.0.0.1:$FPM_PORT
	file_server
}
EOF
	# Caddy keeps state under XDG dirs / HOME: keep it in the work dir.
	HOME=$WORK/caddy XDG_DATA_HOME=$WORK/caddy XDG_CONFIG_HOME=$WORK/caddy \
		spawn "$WORK/caddy/caddy.log" caddy run --config "$WORK/caddy/Caddyfile" --adapter caddyfile
	FRONT_PID=$SPAWNED_PID
	wait_port "$port" "$FRONT_PID" "$WORK/caddy/caddy.log"
	FRONT_URL=http://127.0.0.1:$port
}

stop_front() {
	stop_group "$FRONT_PID"
	local pid keep=()
	for pid in "${ALL_PIDS[@]}"; do
		[[ $pid == "$FRONT_PID" ]] || keep+=("$pid")
	done
	ALL_PIDS=("${keep[@]}")
	FRONT_PID=""
	FRONT_URL=""
}

# ---------------------------------------------------------------- scenarios

scenario_hello_setup() { printf '<?php echo "Hello, world\\n";\n' >"$DOCROOT/hello.php"; }
scenario_hello_path() { echo /hello.php; }
scenario_hello_expect() { echo "Hello, world"; }

scenario_static_setup() {
	# A 1 KiB stylesheet (cut from a longer generated one).
	local i
	for i in $(seq -w 1 20); do
		printf '.rule-%s { color: #%s%s%s; margin: 0 auto; padding: 1px; }\n' "$i" "$i" "$i" "$i"
	done >"$WORK/style.css"
	head -c 1024 "$WORK/style.css" >"$DOCROOT/style.css"
}
scenario_static_path() { echo /style.css; }
scenario_static_expect() { echo ".rule-01"; }

has_fn() { declare -F "$1" >/dev/null; }

scenario_fronts() {
	if has_fn "scenario_$1_fronts"; then "scenario_$1_fronts"; else echo "$BENCH_FRONTS"; fi
}

# ---------------------------------------------------------------- measuring

# to_ms VALUE: wrk latency ("812.00us", "3.21ms", "1.02s", "2.00m") -> ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.2f", n }'
}

# measure SCENARIO FRONT ROUND: one warm-up and one measured wrk run; appends
# "scenario front round rps p99ms errors" to $RAW/runs.tsv.
measure() {
	local sc=$1 front=$2 round=$3 url path expect body extra=()
	path=$("scenario_${sc}_path")
	url=$FRONT_URL$path
	expect=$("scenario_${sc}_expect")
	if ! body=$(curl -fsS --max-time 5 "$url" 2>&1) || [[ $body != *"$expect"* ]]; then
		die "$front $url: expected a body with '$expect', got: ${body:0:300}"
	fi
	if has_fn "scenario_${sc}_wrk_args"; then
		read -r -a extra <<<"$("scenario_${sc}_wrk_args")"
	fi
	wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"$BENCH_WARMUP" "${extra[@]}" "$url" >/dev/null
	local out=$RAW/$sc-$front-$round.txt
	wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"$BENCH_DURATION" --latency "${extra[@]}" "$url" >"$out"
	local rps p99 errors
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
	p99=$(awk '$1 == "99%" { print $2 }' "$out")
	# Socket errors (connect/read/write/timeout) plus non-2xx/3xx answers.
	errors=$(awk '/Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 }
		/Non-2xx or 3xx responses:/ { s += $5 } END { print s + 0 }' "$out")
	[[ -n $rps && -n $p99 ]] || die "cannot parse wrk output $out"
	p99=$(to_ms "$p99")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$front" "$round" "$rps" "$p99" "$errors" >>"$RAW/runs.tsv"
	log "$(printf 'round %s %-8s %-8s %10.0f req/s  p99 %8s ms  errors %s' "$round" "$sc" "$front" "$rps" "$p99" "$errors")"
	if has_fn "scenario_${sc}_after"; then "scenario_${sc}_after" "$front"; fi
}

# ---------------------------------------------------------------- main

for b in "$PHP_FPM" wrk curl; do
	command -v "$b" >/dev/null || die "$b not found: run scripts/deps.sh bench"
done

for sc in $BENCH_SCENARIOS; do
	has_fn "scenario_${sc}_path" || die "unknown scenario '$sc'"
	if has_fn "scenario_${sc}_setup"; then "scenario_${sc}_setup"; fi
done
for front in $BENCH_FRONTS; do
	has_fn "start_$front" || die "unknown front '$front'"
done
chmod -R a+rX "$DOCROOT"

start_php_fpm
: >"$RAW/runs.tsv"
read -r -a fronts <<<"$BENCH_FRONTS"
for round in $(seq 1 "$BENCH_ROUNDS"); do
	order=("${fronts[@]}")
	if ((round % 2 == 0)); then # reverse every other round
		order=()
		for ((i = ${#fronts[@]} - 1; i >= 0; i--)); do order+=("${fronts[i]}"); done
	fi
	for front in "${order[@]}"; do
		"start_$front"
		for sc in $BENCH_SCENARIOS; do
			[[ " $(scenario_fronts "$sc") " == *" $front "* ]] || continue
			measure "$sc" "$front" "$round"
		done
		stop_front
	done
done

# ---------------------------------------------------------------- report

report() {
	echo "sessiongate bench $STAMP: wrk -t$BENCH_THREADS -c$BENCH_CONNS -d$BENCH_DURATION, $BENCH_ROUNDS round(s), php-fpm pm=static $BENCH_CHILDREN children, $(nproc) CPUs"
	echo
	printf '%-10s %-10s %12s %12s %10s  %s\n' scenario front "req/s(mean)" "p99 ms(max)" errors "req/s per round"
	awk -F'\t' '
		{ k = $1 "\t" $2; if (!(k in n)) order[++m] = k
		  n[k]++; sum[k] += $4; runs[k] = runs[k] sprintf(" %.0f", $4)
		  if ($5 + 0 > p99[k] + 0) p99[k] = $5; err[k] += $6 }
		END { for (i = 1; i <= m; i++) { k = order[i]; split(k, a, "\t")
			printf "%-10s %-10s %12.0f %12.2f %10d %s\n", a[1], a[2], sum[k] / n[k], p99[k], err[k], runs[k] } }
	' "$RAW/runs.tsv"
	echo
	local t sc front base want
	for t in "${TARGETS[@]}"; do
		read -r sc front base want <<<"$t"
		awk -F'\t' -v sc="$sc" -v f="$front" -v b="$base" -v want="$want" '
			$1 == sc && $2 == f { fs += $4; fn++ }
			$1 == sc && $2 == b { bs += $4; bn++ }
			END {
				if (!fn || !bn) exit
				r = (fs / fn) / (bs / bn)
				printf "%-8s %s/%s = %.2fx   target >= %.1fx   %s\n", sc, f, b, r, want, (r >= want ? "met" : "NOT MET") }
		' "$RAW/runs.tsv"
	done
	echo
	echo "raw wrk outputs: $RAW"
}

report | tee "$RESULTS_DIR/$STAMP.txt"

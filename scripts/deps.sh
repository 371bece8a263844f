#!/usr/bin/env bash
# deps.sh test|bench|demo — check (and, as root on Debian, install) what a
# make target needs.
#
#   test   what `make test` runs against: gcc (for -race), php-fpm, php CLI,
#          redis-server, redis-cli, Debian's Django for /usr/bin/python3,
#          gunicorn, uvicorn (its gunicorn worker: Django under ASGI),
#          uWSGI with python3, chromium, python3-venv and python3-pip
#          (pip install of wsgi/django into a virtualenv), nginx (the PHP
#          params and the Django path compared with nginx's), Debian's
#          DokuWiki, and MediaWiki with PHP's SQLite driver
#   bench  php-fpm, php8.2-redis, redis, wrk, curl, nginx, caddy, Django, gunicorn
#   demo   php-fpm, redis, Django, gunicorn
#
# As root with apt-get: runs `apt-get update` once and installs the missing
# packages non-interactively. Otherwise prints the exact command and exits 1.
# A missing dependency is always a failure (with CI=true or not): tests never
# skip, so a half-installed machine must not look green. Go is not installed
# here (Debian 12 ships 1.19): a Go older than 1.26 is reported with where to
# get it. Every mode builds Go code, which downloads its modules over HTTPS,
# so every mode also needs the CA certificates (ca-certificates).
set -euo pipefail

mode=${1:-}
case "$mode" in
test | bench | demo) ;;
*)
	echo "usage: $0 test|bench|demo" >&2
	exit 2
	;;
esac

# Debian puts php-fpm8.2 and nginx in /usr/sbin, not on every PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing_pkgs=()
problems=()

need_bin() { # need_bin BINARY PACKAGE
	if ! command -v "$1" >/dev/null 2>&1; then
		problems+=("$1 not found")
		missing_pkgs+=("$2")
	fi
}

need_file() { # need_file PATH PACKAGE: a script runs that very file
	if [[ ! -x $1 ]]; then
		problems+=("$1 not found")
		missing_pkgs+=("$2")
	fi
}

need_django() {
	# Always Debian's interpreter: a pyenv/virtualenv python3 on PATH may lack Django.
	if ! /usr/bin/python3 -c 'import django' >/dev/null 2>&1; then
		problems+=("/usr/bin/python3 cannot import django")
		missing_pkgs+=(python3-django)
	fi
}

need_python_mod() { # need_python_mod PACKAGE PYTHON-ARGS...: Debian's python3 runs them
	local pkg=$1
	shift
	if ! /usr/bin/python3 "$@" >/dev/null 2>&1; then
		problems+=("/usr/bin/python3 $* fails")
		missing_pkgs+=("$pkg")
	fi
}

need_deb() { # need_deb PACKAGE WHAT: a Debian package that installs no command
	if ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; then
		problems+=("$1 ($2) not installed")
		missing_pkgs+=("$1")
	fi
}

need_certs() {
	# go build fetches the modules from proxy.golang.org over HTTPS and
	# verifies it with the system's CA bundle; minimal Debian installs lack it.
	if [[ -z ${SSL_CERT_FILE:-} && -z ${SSL_CERT_DIR:-} && ! -s /etc/ssl/certs/ca-certificates.crt ]]; then
		problems+=("no CA certificates (/etc/ssl/certs/ca-certificates.crt): go cannot download modules")
		missing_pkgs+=(ca-certificates)
	fi
}

need_cc() {
	# go test -race needs cgo: a C compiler that can link against libc.
	if ! echo 'int main(void){return 0;}' | gcc -x c - -o /dev/null >/dev/null 2>&1; then
		problems+=("no working gcc (go test -race needs cgo)")
		missing_pkgs+=(gcc libc6-dev)
	fi
}

need_go() {
	local v
	if ! v=$(go env GOVERSION 2>/dev/null); then
		if [[ -x /usr/local/go/bin/go ]]; then
			# Installed the go.dev way but not on PATH (sudo resets PATH).
			problems+=("go not on PATH: add /usr/local/go/bin to PATH (with sudo: sudo env PATH=\"\$PATH\" make ...)")
		else
			problems+=("go not found: install Go >= 1.26 from https://go.dev/dl/ (Debian's golang is too old)")
		fi
		go_missing=1
		return
	fi
	v=${v#go}
	local major=${v%%.*} rest=${v#*.}
	local minor=${rest%%[!0-9]*}
	if ((major < 1 || (major == 1 && minor < 26))); then
		problems+=("go $v is older than 1.26: install a newer Go from https://go.dev/dl/")
		go_missing=1
	fi
}

go_missing=0
case "$mode" in
test)
	need_go
	need_certs
	need_cc
	need_bin php-fpm8.2 php8.2-fpm
	need_bin php php8.2-cli
	need_bin redis-server redis-server
	need_bin redis-cli redis-tools
	need_django
	need_bin gunicorn gunicorn
	# Django under ASGI: gunicorn with uvicorn's worker (integration).
	need_python_mod python3-uvicorn -c 'import uvicorn.workers'
	# Django under uWSGI's HTTP socket (integration).
	need_bin uwsgi_python3 uwsgi-plugin-python3
	# pip install ./wsgi/django into a virtualenv, offline (integration).
	need_python_mod python3-venv -m venv --help
	need_python_mod python3-pip -m pip --version
	need_python_mod python3-pip -c 'import setuptools, wheel'
	need_bin chromium chromium
	# What PHP sees behind the gateway and behind Debian's nginx
	# (integration/nginx_diff_test.go), and the Django path beside nginx's
	# proxy_pass in front of the same gunicorn
	# (integration/nginx_django_diff_test.go).
	need_bin nginx nginx-light
	# Password files as users make them, for SESSIONGATE_BASIC_AUTH.
	need_bin htpasswd apache2-utils
	# Symfony's BinaryFileResponse sends X-Accel-Redirect (integration).
	need_deb php-symfony-http-foundation "Symfony's HttpFoundation"
	# BinaryFileResponse guesses the file's type with symfony/mime, which
	# Debian only suggests (a composer app has it).
	need_deb php-symfony-mime "Symfony's Mime"
	# Debian's DokuWiki runs behind the gateway (integration). MediaWiki's
	# test is opt-in (integration/mediawiki_test.go): its package pulls in
	# a web server that starts on port 80.
	need_deb dokuwiki "DokuWiki"
	# Validates docker-compose.yml offline (deploy tests); no engine needed.
	need_bin docker-compose docker-compose
	# Checks deploy/systemd/sessiongate.service offline (deploy tests).
	need_bin systemd-analyze systemd
	# make test-python (wsgi/django) needs only need_django above: the
	# standard library's unittest and sqlite3 come with Debian's python3.
	# The newer Djangos come from scripts/newer-django.sh, which needs
	# python3-venv (above) and apt-get download, no root.
	;;
bench)
	need_go
	need_certs
	need_bin php-fpm8.2 php8.2-fpm
	need_bin php php8.2-cli
	need_deb php8.2-redis phpredis
	need_bin redis-server redis-server
	need_bin redis-cli redis-tools
	need_bin wrk wrk
	# bench/run.sh checks each front's pages with curl before measuring.
	need_bin curl curl
	need_bin nginx nginx-light
	need_bin caddy caddy
	need_django
	# run.sh runs Debian's, whose python3 has Django (not a pip one on PATH).
	need_file /usr/bin/gunicorn gunicorn
	;;
demo)
	need_go
	need_certs
	need_bin php-fpm8.2 php8.2-fpm
	need_bin redis-server redis-server
	need_bin redis-cli redis-tools
	need_django
	# demo.sh runs Debian's, whose python3 has Django (not a pip one on PATH).
	need_file /usr/bin/gunicorn gunicorn
	;;
esac

if ((${#problems[@]} == 0)); then
	exit 0
fi

echo "deps ($mode): missing:" >&2
printf '  %s\n' "${problems[@]}" >&2
if ((${#missing_pkgs[@]} == 0)); then
	exit 1 # only Go is missing: nothing apt can do
fi
# Unique package list, stable order.
mapfile -t pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | awk '!seen[$0]++')
cmd="apt-get install -y ${pkgs[*]}"

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1 || [[ -n ${DEPS_RECHECK:-} ]]; then
	echo "deps: install them as root with:" >&2
	echo "  apt-get update && $cmd" >&2
	exit 1
fi

echo "deps: installing: ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq || ! apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2; then
	echo "deps: '$cmd' failed${CI:+ (CI=$CI)}" >&2
	exit 1
fi
((go_missing == 0)) || exit 1
# Re-check once: an install that "succeeded" must actually provide the
# binaries (DEPS_RECHECK stops a second install attempt).
DEPS_RECHECK=1 exec "$0" "$mode"

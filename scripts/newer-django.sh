#!/usr/bin/env bash
# newer-django.sh — virtualenvs with the Django releases after Debian 12's
# own 3.2, for `make test`: sessiongate_django must run on Django 4.x and
# 5.x too, and PyPI is not reachable here, but Debian's archive is.
#
#   .cache/django/4.2   Django 4.2 LTS from bookworm-backports (what a
#                       Debian 12 admin installs with apt), with Debian 12's
#                       gunicorn 20.1
#   .cache/django/5.2   Django 5.2 LTS from trixie-backports, asgiref 3.8
#                       (5.2 needs at least 3.8.1) and gunicorn 23 from
#                       trixie: the pair deploy/django.Dockerfile pins
#
# Each is a virtualenv of Debian's /usr/bin/python3 with
# --system-site-packages: the newer packages sit in its own site-packages
# and shadow Debian's, everything else (sqlparse, packaging) is Debian 12's.
# The packages are fetched with apt-get download through a private apt
# configuration under .cache/django/apt (its own sources and lists), so the
# machine's sources and installed packages are left alone and no root is
# needed. A virtualenv whose stamp matches is kept; `make clean` removes
# them. A failure exits non-zero: `make test` must not run with one missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=$PWD/.cache/django
apt_dir=$top/apt
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# name: the packages, each as package/suite (apt-get download's syntax).
declare -A releases=(
	[4.2]="python3-django/bookworm-backports"
	[5.2]="python3-django/trixie-backports python3-asgiref/trixie python3-gunicorn/trixie"
)

python_version=$(/usr/bin/python3 -c 'import sys; print(sys.version.split()[0])')
stamp_of() { # what a virtualenv was built from, to tell when to rebuild
	echo "${releases[$1]} $python_version"
}

todo=()
for name in "${!releases[@]}"; do
	venv=$top/$name
	if [[ -x $venv/bin/python && -f $venv/stamp && "$(cat "$venv/stamp")" == "$(stamp_of "$name")" ]]; then
		continue
	fi
	todo+=("$name")
done
((${#todo[@]} == 0)) && exit 0

for cmd in apt-get dpkg-deb; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		echo "newer-django: $cmd not found (Debian's apt and dpkg are needed)" >&2
		exit 1
	fi
done
if [[ ! -s $keyring ]]; then
	echo "newer-django: $keyring missing: apt-get install debian-archive-keyring" >&2
	exit 1
fi
if ! /usr/bin/python3 -m venv --help >/dev/null 2>&1; then
	echo "newer-django: /usr/bin/python3 -m venv fails: apt-get install python3-venv" >&2
	exit 1
fi

mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
{
	for suite in bookworm-backports trixie trixie-backports; do
		echo "deb [signed-by=$keyring] http://deb.debian.org/debian $suite main"
	done
} >"$apt_dir/sources.list"
apt_opts=(
	-o "Dir::Etc::sourcelist=$apt_dir/sources.list"
	-o "Dir::Etc::sourceparts=-"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::Cache=$apt_dir/cache"
	# The package lists are all this needs: no AppStream metadata.
	-o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
)
if [[ $(id -u) -eq 0 ]]; then
	# apt's _apt user cannot write into this checkout.
	apt_opts+=(-o "APT::Sandbox::User=root")
fi
echo "newer-django: fetching ${todo[*]} from Debian's archive" >&2
if ! apt-get "${apt_opts[@]}" -qq update >&2; then
	echo "newer-django: apt-get update of bookworm-backports, trixie and trixie-backports failed" >&2
	exit 1
fi

for name in "${todo[@]}"; do
	venv=$top/$name
	work=$(mktemp -d "$top/.build-XXXXXX")
	trap 'rm -rf "$work"' EXIT
	(cd "$work" && apt-get "${apt_opts[@]}" -qq download ${releases[$name]} >&2) || {
		echo "newer-django: apt-get download ${releases[$name]} failed" >&2
		exit 1
	}
	mkdir "$work/root"
	for deb in "$work"/*.deb; do
		dpkg-deb -x "$deb" "$work/root"
	done
	/usr/bin/python3 -m venv --system-site-packages --without-pip "$work/venv"
	site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
	# The packages' files as they would land in /usr/lib/python3/dist-packages.
	# Their relative links (the admin's jQuery points into
	# /usr/share/javascript, another package) are made absolute, so that
	# they lead where they would on an installed system.
	/usr/bin/python3 - "$work/root/usr/lib/python3/dist-packages" "$site" <<'EOF'
import os, shutil, sys
src, dst = sys.argv[1:]
installed = "/usr/lib/python3/dist-packages"
for dirpath, dirnames, filenames in os.walk(src):
    rel = os.path.relpath(dirpath, src)
    os.makedirs(os.path.join(dst, rel), exist_ok=True)
    for name in dirnames + filenames:
        path = os.path.join(dirpath, name)
        if os.path.islink(path):
            target = os.readlink(path)
            if not os.path.isabs(target):
                target = os.path.normpath(os.path.join(installed, rel, target))
            os.symlink(target, os.path.join(dst, rel, name))
            if name in dirnames:
                dirnames.remove(name)
        elif name in filenames:
            shutil.copy2(path, os.path.join(dst, rel, name))
EOF
	# The byte code Debian's postinst would compile, so that every
	# gunicorn worker does not compile Django again.
	"$work/venv/bin/python" -m compileall -q -j0 "$site" >/dev/null
	version=$("$work/venv/bin/python" -c 'import django; print(django.get_version())')
	if [[ $version != "$name".* ]]; then
		echo "newer-django: .cache/django/$name has Django $version" >&2
		exit 1
	fi
	stamp_of "$name" >"$work/venv/stamp"
	rm -rf "$venv"
	# bin/python and pyvenv.cfg name /usr/bin, not the virtualenv's own
	# path, so it may move (its activate scripts, unused here, may not).
	mv "$work/venv" "$venv"
	rm -rf "$work"
	trap - EXIT
done

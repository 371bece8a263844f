# sessiongate — `make test` is what CI runs (.ci/run); `make demo` and
# `make bench` start their own servers on loopback and stop them on exit.
# Every target that needs system packages first runs scripts/deps.sh, which
# installs what is missing as root on Debian and otherwise prints the
# apt-get command and fails.

GO       ?= go
BIN      := bin/gateway
# Fuzz time per target for `make fuzz` (go test -fuzztime syntax).
FUZZTIME ?= 20s
# Extra flags for the integration run, e.g. INTEGRATION_FLAGS=-race. That
# races the gateway the tests run in-process; INTEGRATION_GATEWAY_RACE=1 in
# the environment also builds the gateway binary other tests start with
# -race, and a race report in its output fails the test that started it.
INTEGRATION_FLAGS ?=

# Unit packages: everything outside integration/. The ones whose tests
# take a minute or more under -race on 2 CPUs come first: go test starts
# test binaries in this order, -p at a time, and in alphabetical order
# scripts (the demo's tests) started 28 s into the step and ended it, wsgi
# and redisstore 81 s in.
UNIT_SLOW := $(addprefix github.com/sessiongate/sessiongate/,scripts wsgi sessionbridge/store/redisstore server deploy fcgi cmd/gateway sessionbridge)
UNIT_PKGS = $(UNIT_SLOW) $(filter-out $(UNIT_SLOW),$(shell $(GO) list ./... | grep -v -e '/integration$$' -e '/integration/'))

.PHONY: build test test-python vet unit integration bench demo fuzz clean

# A static binary (no cgo) so it copies onto any Linux host or a scratch image.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/gateway

test:
	scripts/deps.sh test
	scripts/newer-django.sh
	$(MAKE) --no-print-directory build vet unit integration
	$(MAKE) --no-print-directory test-python

# The Django releases sessiongate_django is tested on besides Debian 12's
# 3.2: virtualenvs that scripts/newer-django.sh builds from Debian's archive.
NEWER_DJANGO := 4.2 5.2

# The sessiongate_django tests (wsgi/django) with Debian's interpreter, the
# one that has Django: a pyenv/virtualenv python3 on PATH may lack it. -E
# ignores PYTHON* variables; -t puts wsgi/django first on sys.path, so the
# checkout is tested, never a copy installed elsewhere. Then on each newer
# Django, where anything the package uses that Django deprecated (to be
# removed in its next major release) fails the run.
test-python:
	/usr/bin/python3 -E -m unittest discover -s wsgi/django/tests -t wsgi/django
	for v in $(NEWER_DJANGO); do \
		echo "sessiongate_django on Django $$v:"; \
		test -x .cache/django/$$v/bin/python || { echo "no .cache/django/$$v: run scripts/newer-django.sh" >&2; exit 1; }; \
		.cache/django/$$v/bin/python -E -W error::DeprecationWarning -W error::PendingDeprecationWarning \
			-m unittest discover -s wsgi/django/tests -t wsgi/django || exit 1; \
	done

vet:
	$(GO) vet ./...

# Unit tests run under the race detector: they hold the concurrent code
# (FastCGI pool, session locks, stores) and are cheap enough to pay its cost.
# Six packages at a time, not go test's one per CPU: much of their time is
# waiting (timeouts, the demo's services starting). On 2 CPUs four at a
# time took the step from 260 s to 175 s; then tests that must fill socket
# buffers made them small first (internal/testnet.SmallBuffers: moving the
# 16-64 MiB that autotuned loopback buffers hold cost tens of seconds under
# the race detector), and the step took 126 s four at a time, 113-115 s six
# at a time.
#
# -vet=off in both test steps: `make test` runs go vet over every package
# first, and go test's own vet pass (a subset) would run again on a build
# cache that has not seen the code (CI's).
unit:
	$(GO) test -race -vet=off -count=1 -p 6 -timeout 4m $(UNIT_PKGS)

# Integration tests run without -race by default. They are dominated by
# real php-fpm, redis-server and gunicorn processes and by load phases
# (restarts under load, 64 concurrent clients); on a 2-core machine the race
# detector's 5-10x CPU cost on the Go side turns those phases into timing
# noise and pushes the suite past its budget (well under 10 minutes), while
# the same concurrent code is already raced in the unit run. Add
# INTEGRATION_FLAGS=-race to race them anyway.
#
# The tests run 6 at a time: most of their time is waiting (see
# integration/main_test.go), and a waiting test holds its slot all the
# same. On a 2-CPU machine where nginx serves 9-11k hello-world requests a
# second they took 485 s 4 at a time (CPU 67% busy); once replicas stopped
# waiting 5 s to sync and Django's migrations ran once per run, 446 s 4 at
# a time (70%) and 367-388 s 6 at a time (80%). Before those cuts the CPU
# was saturated at 6, and tests whose Redis calls outlasted their timeout
# failed. Later, 333-343 s 6 at a time and 335 s 8 at a time (the CPU, 85%
# busy, is the bound: user and system time 572 s). Process accounting then
# put 40% of the step's CPU in gunicorn, nearly all of it starting and
# stopping: with --preload and a SIGKILL once a test is over (harness),
# 367 s for 475 s of CPU where the same machine took 402 s for 638 s. Eight
# at a time gave 358 s, and the unit step run beside this one made the two
# take 487 s, 9 s more than one after the other. The timeout is a guard
# against a hang, not a budget.
integration:
	$(GO) test -vet=off -count=1 -timeout 12m -parallel 6 $(INTEGRATION_FLAGS) ./integration/...

bench:
	scripts/deps.sh bench
	$(MAKE) --no-print-directory build
	bench/run.sh

demo:
	scripts/deps.sh demo
	$(MAKE) --no-print-directory build
	scripts/demo.sh

# Short runs of every fuzz target (go test -fuzz takes one package and one
# target at a time). The targets are discovered, not listed, so new ones are
# picked up.
fuzz:
	@set -e; for pkg in $(UNIT_PKGS); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$list"; exit 1; }; \
		for f in $$(echo "$$list" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin .demo bench/results .cache

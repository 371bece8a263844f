package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

const (
	unitPath    = "systemd/sessiongate.service"
	envFilePath = "systemd/sessiongate.env"
)

// unitFile is a systemd unit: section -> key -> values in file order.
type unitFile map[string]map[string][]string

func (u unitFile) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("%s:%d: not a key=value line of a section: %q", path, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// readEnvFile reads a systemd EnvironmentFile of plain KEY=value lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(v, `"'$\`) {
			t.Fatalf("%s:%d: want KEY=value without quotes or expansions: %q", path, n+1, line)
		}
		env[k] = v
	}
	return env
}

// buildGateway builds cmd/gateway into a temp dir.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gateway")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gateway")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestSystemdUnit: the unit starts the gateway with the example environment
// file, which the gateway's configuration rules accept, and what the unit
// assumes about the gateway holds: the exit status it does not restart on
// is the gateway's status for a configuration error, it waits longer than
// the default drain, and reload is the SIGHUP that reloads certificates.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, unitPath)
	svc := u["Service"]
	if svc == nil || u["Install"] == nil {
		t.Fatal("no [Service] or [Install] section")
	}
	if got := u.get("Service", "ExecStart"); got != "/usr/local/bin/gateway" {
		t.Errorf("ExecStart=%s, want the binary the README installs, without arguments", got)
	}
	if got := u.get("Service", "EnvironmentFile"); got != "/etc/sessiongate/env" {
		t.Errorf("EnvironmentFile=%s, want /etc/sessiongate/env", got)
	}
	if got := u.get("Service", "ExecReload"); !strings.Contains(got, "-HUP $MAINPID") {
		t.Errorf("ExecReload=%s does not send SIGHUP", got)
	}

	// The drain must end before systemd's SIGKILL.
	var drain time.Duration
	for _, v := range config.Variables() {
		if v.Name == "SESSIONGATE_SHUTDOWN_TIMEOUT" {
			d, err := time.ParseDuration(v.Default)
			if err != nil {
				t.Fatal(err)
			}
			drain = d
		}
	}
	stop, err := time.ParseDuration(u.get("Service", "TimeoutStopSec"))
	if err != nil || stop <= drain {
		t.Errorf("TimeoutStopSec=%s, want a duration above SESSIONGATE_SHUTDOWN_TIMEOUT's default %v", u.get("Service", "TimeoutStopSec"), drain)
	}

	// A configuration error exits at once with a status the unit does not
	// restart on: restarting cannot fix it.
	bin := buildGateway(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=/srv", "SESSIONGATE_LISTEN=not-an-address", "SESSIONGATE_SESSION_DEV=on"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "SESSIONGATE_LISTEN") {
		t.Errorf("configuration error: gateway exit %v (%s)", err, bytes.TrimSpace(out))
	} else if !restartPrevented(u, exit.ExitCode()) {
		t.Errorf("configuration error: the gateway exits %d, which the unit restarts for ever (RestartPreventExitStatus=%v)", exit.ExitCode(), u["Service"]["RestartPreventExitStatus"])
	}

	// The example environment is a configuration the gateway starts with,
	// once the key is filled in and the site exists.
	env := readEnvFile(t, envFilePath)
	if _, err := config.Load(envList(env)); err == nil || !strings.Contains(err.Error(), "SESSIONGATE_SESSION_KEYS") {
		t.Errorf("the example's placeholder key is accepted: %v", err)
	}
	site := t.TempDir()
	env["SESSIONGATE_SESSION_KEYS"] = "systemd-test-secret-0123456789abcdef0123456789"
	env["SESSIONGATE_DOCUMENT_ROOT"] = site
	cfg, err := config.Load(envList(env))
	if err != nil {
		t.Fatalf("the gateway would not start with %s: %v", envFilePath, err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("configuration warnings: %v", cfg.Warnings)
	}
	if cfg.Session.PHPPrepend == "" || cfg.Session.RedisURL == "" || cfg.AdminListen == "" {
		t.Errorf("the example leaves out the prepend, Redis or the admin listener: %+v", cfg.Session)
	}

	// Its commented HTTPS block, server names and error pages, uncommented,
	// start too:
	// TLS on 443 and the redirect listener on 80, clashing with neither
	// other listener.
	src, err := os.ReadFile(envFilePath)
	if err != nil {
		t.Fatal(err)
	}
	https := map[string]bool{"SESSIONGATE_LISTEN": true, "SESSIONGATE_TLS_CERT": true, "SESSIONGATE_TLS_KEY": true, "SESSIONGATE_HTTP_REDIRECT_LISTEN": true, "SESSIONGATE_HSTS": true, "SESSIONGATE_SERVER_NAMES": true, "SESSIONGATE_CANONICAL_NAME": true, "SESSIONGATE_ERROR_PAGES": true}
	for line := range strings.SplitSeq(string(src), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "#"), "="); ok && strings.HasPrefix(line, "#") && https[k] {
			env[k] = v
		}
	}
	env["SESSIONGATE_TLS_CERT"], env["SESSIONGATE_TLS_KEY"] = testtls.Pair(t)
	cfg, err = config.Load(envList(env))
	if err != nil {
		t.Fatalf("the example's HTTPS block: %v", err)
	}
	if cfg.Listen != ":443" || cfg.HTTPRedirectListen != ":80" || cfg.HSTS == "" || len(cfg.ServerNames) == 0 || cfg.Canonical() != "example.com" || len(cfg.ErrorPages()) != 3 {
		t.Errorf("the example's commented block: listen %q, redirect %q, HSTS %q, server names %q, canonical %q, error pages %v", cfg.Listen, cfg.HTTPRedirectListen, cfg.HSTS, cfg.ServerNames, cfg.Canonical(), cfg.ErrorPages())
	}

	// systemd's own check of the unit, with ExecStart pointing at the
	// binary just built (it must exist). Unknown or misspelt keys are only
	// warnings for systemd, so any word about the unit fails the test.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed: apt-get install -y systemd")
	}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "sessiongate.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(b, []byte("ExecStart=/usr/local/bin/gateway"), []byte("ExecStart="+bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("sessiongate.service")) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdUnitRestartsCrashes: Go exits with status 2 when the runtime
// dies (an unrecovered panic in a goroutine, "fatal error: concurrent map
// writes", running out of memory). A unit that does not restart on 2 leaves
// the site down after a crash until someone notices.
func TestSystemdUnitRestartsCrashes(t *testing.T) {
	u := parseUnit(t, unitPath)
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { var m map[string]int; m[\"x\"] = 1 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "crash")
	if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var exit *exec.ExitError
	if err := exec.Command(bin).Run(); !errors.As(err, &exit) {
		t.Fatalf("the crashing program: %v", err)
	}
	if restartPrevented(u, exit.ExitCode()) {
		t.Errorf("RestartPreventExitStatus=%v: a Go crash exits %d and would not be restarted", u["Service"]["RestartPreventExitStatus"], exit.ExitCode())
	}
	if u.get("Service", "Restart") != "on-failure" {
		t.Errorf("Restart=%s, want on-failure", u.get("Service", "Restart"))
	}
}

// TestSystemdUnitWaitsForRedis: at boot Redis may answer late (loading a
// large dump, on another host still out of reach). The gateway's start-up
// check then fails and it exits; the unit must start it again until Redis
// answers, not give up after a few tries (a start limit once stopped it for
// good after 5 starts in 30 s, about 10 s of a Redis down).
func TestSystemdUnitWaitsForRedis(t *testing.T) {
	u := parseUnit(t, unitPath)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(buildGateway(t))
	cmd.Env = []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9000", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(), "SESSIONGATE_LISTEN=127.0.0.1:0",
		"SESSIONGATE_SESSION_KEYS=systemd-test-secret-0123456789abcdef0123456789", "SESSIONGATE_REDIS_URL=redis://" + down, "SESSIONGATE_REDIS_TIMEOUT=200ms"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "SESSIONGATE_REDIS_URL") {
		t.Fatalf("gateway with Redis down: exit %v (%s), want a failed start naming Redis", err, bytes.TrimSpace(out))
	}
	// The journal's last line must say what to do: on a PHP host that never
	// ran Redis (the example environment names one), that is to install it.
	if !strings.Contains(string(out), "redis-server") {
		t.Errorf("gateway with Redis down does not say to start or install redis-server:\n%s", bytes.TrimSpace(out))
	}
	if restartPrevented(u, exit.ExitCode()) {
		t.Errorf("Redis down at start: the gateway exits %d, which the unit does not restart (RestartPreventExitStatus=%v)", exit.ExitCode(), u["Service"]["RestartPreventExitStatus"])
	}
	if u.get("Unit", "StartLimitIntervalSec") != "0" {
		t.Errorf("StartLimitIntervalSec=%s StartLimitBurst=%s: systemd stops restarting a gateway that waits for Redis; want 0 (no limit)",
			u.get("Unit", "StartLimitIntervalSec"), u.get("Unit", "StartLimitBurst"))
	}
	restart, err := time.ParseDuration(u.get("Service", "RestartSec"))
	if err != nil || restart < time.Second {
		t.Errorf("RestartSec=%s: without a start limit, want a pause of a second or more between starts", u.get("Service", "RestartSec"))
	}
}

// restartPrevented reports whether the unit's RestartPreventExitStatus
// lists status.
func restartPrevented(u unitFile, status int) bool {
	for _, v := range u["Service"]["RestartPreventExitStatus"] {
		if slices.Contains(strings.Fields(v), strconv.Itoa(status)) {
			return true
		}
	}
	return false
}

// maxChildren reads pm.max_children from the php-fpm pool file at path.
func maxChildren(t *testing.T, path string) int {
	t.Helper()
	pool, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^pm\.max_children\s*=\s*(\d+)`).FindSubmatch(pool)
	if m == nil {
		t.Fatalf("%s: no pm.max_children", path)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// debianPoolChildren is pm.max_children in the pool Debian's php8.2-fpm
// installs (/etc/php/8.2/fpm/pool.d/www.conf), the one the example
// environment's socket belongs to.
const debianPoolChildren = 5

// TestSystemdEnvFitsDebiansPool: the example environment names Debian's
// own pool, of 5 workers; with the default of 8 connections a readiness
// check, or the periodic one, found the pool silent while five slow
// scripts held every worker, and took a healthy php-fpm out of rotation
// (/readyz failed).
func TestSystemdEnvFitsDebiansPool(t *testing.T) {
	env := readEnvFile(t, envFilePath)
	env["SESSIONGATE_SESSION_KEYS"] = "systemd-test-secret-0123456789abcdef0123456789"
	env["SESSIONGATE_DOCUMENT_ROOT"] = t.TempDir()
	cfg, err := config.Load(envList(env))
	if err != nil {
		t.Fatal(err)
	}
	children := debianPoolChildren
	const stock = "/etc/php/8.2/fpm/pool.d/www.conf"
	if _, err := os.Stat(stock); err == nil {
		children = maxChildren(t, stock)
	}
	if cfg.PHPMaxConns > children {
		t.Errorf("%s: SESSIONGATE_PHP_MAX_CONNS %d above pm.max_children %d of Debian's pool", envFilePath, cfg.PHPMaxConns, children)
	}
}

func envList(env map[string]string) []string {
	var l []string
	for k, v := range env {
		l = append(l, k+"="+v)
	}
	return l
}

// TestSystemdSocketUnit: sessiongate.socket holds the ports the example
// environment listens on (the gateway refuses a socket no listener
// variable names, and binds a port no socket covers itself), pairs with
// sessiongate.service by name, and passes systemd's own check.
func TestSystemdSocketUnit(t *testing.T) {
	const socketPath = "systemd/sessiongate.socket"
	u := parseUnit(t, socketPath)
	streams := u["Socket"]["ListenStream"]
	env := readEnvFile(t, envFilePath)
	var ports []string
	for _, v := range []string{"SESSIONGATE_LISTEN", "SESSIONGATE_HTTP_REDIRECT_LISTEN"} {
		if addr := env[v]; addr != "" {
			_, port, _ := strings.Cut(addr, ":")
			ports = append(ports, port)
		}
	}
	if !slices.Equal(streams, ports) {
		t.Errorf("ListenStream=%q, want the example environment's public ports %q", streams, ports)
	}
	if u.get("Install", "WantedBy") != "sockets.target" {
		t.Errorf("WantedBy=%s, want sockets.target", u.get("Install", "WantedBy"))
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed: apt-get install -y systemd")
	}
	dir := t.TempDir()
	svc, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	sock, err := os.ReadFile(socketPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := buildGateway(t)
	os.WriteFile(filepath.Join(dir, "sessiongate.service"), bytes.ReplaceAll(svc, []byte("ExecStart=/usr/local/bin/gateway"), []byte("ExecStart="+bin)), 0o644)
	os.WriteFile(filepath.Join(dir, "sessiongate.socket"), sock, 0o644)
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "sessiongate.socket")).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("sessiongate.")) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdEnvDjangoBlock: the example environment's commented Django
// lines are what an admin uncomments for a project of their own, served by
// gunicorn, which serves no static files (Django serves them only under
// runserver or with staticfiles' URL patterns in DEBUG). A prefix there
// that covers STATIC_URL (/static/, /static/admin/) sends the admin's CSS
// and JavaScript to gunicorn, which answers 404: the admin works unstyled.
// The README has collectstatic write under the static root instead; the
// demo and docker-compose.yml route /static/admin/ to Django only because
// their example project serves those files itself.
func TestSystemdEnvDjangoBlock(t *testing.T) {
	env := readEnvFile(t, envFilePath)
	env["SESSIONGATE_SESSION_KEYS"] = "systemd-test-secret-0123456789abcdef0123456789"
	env["SESSIONGATE_DOCUMENT_ROOT"] = t.TempDir()
	src, err := os.ReadFile(envFilePath)
	if err != nil {
		t.Fatal(err)
	}
	django := map[string]bool{"SESSIONGATE_DJANGO_URL": true, "SESSIONGATE_DJANGO_PATHS": true}
	found := 0
	for line := range strings.SplitSeq(string(src), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "#"), "="); ok && strings.HasPrefix(line, "#") && django[k] {
			env[k] = v
			found++
		}
	}
	if found != len(django) {
		t.Fatalf("%s: want a commented line for each of %v, found %d", envFilePath, django, found)
	}
	cfg, err := config.Load(envList(env))
	if err != nil {
		t.Fatalf("the example's Django lines: %v", err)
	}
	for _, p := range cfg.Django.Paths {
		if strings.HasPrefix(p, "/static/") || strings.HasPrefix("/static/", p) {
			t.Errorf("SESSIONGATE_DJANGO_PATHS=%s: %s sends collectstatic's files to gunicorn, which serves none", env["SESSIONGATE_DJANGO_PATHS"], p)
		}
	}
}

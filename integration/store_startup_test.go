package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

// runGatewayToExit runs the gateway binary with env and returns its exit
// code and output; a gateway still running after 15 s fails the test.
func runGatewayToExit(t *testing.T, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(buildGateway(t))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "SESSIONGATE_LISTEN=127.0.0.1:0", "SESSIONGATE_ADMIN_LISTEN=127.0.0.1:0"}, env...)
	var out testlog.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		failOnRace(t, out.String())
		var exit *exec.ExitError
		if err == nil {
			return 0, out.String()
		}
		if !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return exit.ExitCode(), out.String()
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the gateway still runs after 15 s, want it to stop at start; log:\n%s", out.String())
		return 0, ""
	}
}

// README, Sessions, "Store", "Redis permissions" and "TLS": what the real
// binary says at start about the store, against real redis-server: the
// warning of the memory store, a Redis that is not running, a wrong password and a user without a
// permission sessions need stop it naming the cause and never the
// password, so do a renamed command and a Redis out of memory, and rediss:// with a private CA fails as the README quotes
// until SSL_CERT_FILE names the CA (or skip_verify), and against
// redis-server's default tls-auth-clients fails as it quotes too. The
// settings no restart cures exit 78; rediss:// on the plain port, which
// looks like a stalled Redis, exits 1 with a word on the TLS port.
func TestStoreStartupMessages(t *testing.T) {
	t.Parallel()
	base := startupBase(t)
	r := harness.StartRedis(t)

	t.Run("MemoryStoreWarns", func(t *testing.T) {
		p := startBinary(t, buildGateway(t), base)
		if !strings.Contains(p.stderr.String(), "SESSIONGATE_REDIS_URL is empty") || !strings.Contains(p.stderr.String(), "ONE gateway") {
			t.Errorf("no warning that sessions live in memory, for one gateway only:\n%s", p.stderr.String())
		}
	})

	t.Run("NoRedis", func(t *testing.T) {
		down := harness.StartRedis(t)
		url := down.URL()
		down.Stop()
		code, out := runGatewayToExit(t, append(base, "SESSIONGATE_REDIS_URL="+url)...)
		if code != 1 || !strings.Contains(out, "connection refused") || !strings.Contains(out, "cannot start") {
			t.Errorf("Redis not running: exit %d, want 1 (a start that may work later) naming the cause; log:\n%s", code, out)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		if out, err := r.Do("ACL", "SETUSER", "sgwrong", "on", ">right-secret-pw", "~sessiongate:*", "&*", "+@all"); err != nil {
			t.Fatalf("ACL SETUSER: %v %s", err, out)
		}
		code, out := runGatewayToExit(t, append(base, "SESSIONGATE_REDIS_URL=redis://sgwrong:wrong-secret-pw@"+r.Addr+"/0")...)
		if code != 78 || !strings.Contains(out, "WRONGPASS") || !strings.Contains(out, "cannot start") || !strings.Contains(out, "SESSIONGATE_REDIS_URL") {
			t.Errorf("wrong password: exit %d, want 78 (EX_CONFIG) naming WRONGPASS and SESSIONGATE_REDIS_URL; log:\n%s", code, out)
		}
		if strings.Contains(out, "wrong-secret-pw") {
			t.Errorf("the log shows the password:\n%s", out)
		}
	})

	t.Run("MissingPermission", func(t *testing.T) {
		if out, err := r.Do("ACL", "SETUSER", "sgnochan", "on", ">nochan-secret-pw", "resetchannels", "~sessiongate:*", "+@all"); err != nil {
			t.Fatalf("ACL SETUSER: %v %s", err, out)
		}
		code, out := runGatewayToExit(t, append(base, "SESSIONGATE_REDIS_URL=redis://sgnochan:nochan-secret-pw@"+r.Addr+"/0")...)
		if code != 78 || !strings.Contains(out, "the server refuses a command sessions need") {
			t.Errorf("user without the unlock channel: exit %d, want 78 (EX_CONFIG) saying the server refuses a command sessions need; log:\n%s", code, out)
		}
		if strings.Contains(out, "nochan-secret-pw") {
			t.Errorf("the log shows the password:\n%s", out)
		}
	})

	t.Run("RenamedCommand", func(t *testing.T) {
		dir := t.TempDir()
		port := strconv.Itoa(harness.FreePort(t))
		cmd := exec.Command(harness.Bin(t, "redis-server"), "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"), "--rename-command", "PUBLISH", "")
		if err := harness.StartInGroup(cmd); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		harness.WaitTCP(t, "127.0.0.1:"+port, 10*time.Second)
		code, out := runGatewayToExit(t, append(base, "SESSIONGATE_REDIS_URL=redis://127.0.0.1:"+port+"/0")...)
		if code != 78 || !strings.Contains(out, "the server refuses a command sessions need") {
			t.Errorf("PUBLISH renamed away: exit %d, want 78 (EX_CONFIG) saying the server refuses a command sessions need; log:\n%s", code, out)
		}
	})

	t.Run("SentinelURLNamingARedis", func(t *testing.T) {
		// The Redis's port where the Sentinel's belongs: it answers, so
		// "no Sentinel reachable" misled.
		code, out := runGatewayToExit(t, append(base, "SESSIONGATE_REDIS_URL=redis-sentinel://"+r.Addr+"/0?master=mymaster")...)
		if code != 78 || !strings.Contains(out, "answers as a Redis server, not a Sentinel") || strings.Contains(out, "no Sentinel reachable") {
			t.Errorf("redis-sentinel:// naming a Redis: exit %d, want 78 (EX_CONFIG) saying it is no Sentinel; log:\n%s", code, out)
		}
	})

	t.Run("OutOfMemory", func(t *testing.T) {
		full := harness.StartRedis(t)
		for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "1"}} {
			if out, err := full.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
				t.Fatalf("CONFIG SET %s: %v %s", kv[0], err, out)
			}
		}
		code, out := runGatewayToExit(t, append(base, "SESSIONGATE_REDIS_URL="+full.URL())...)
		if code != 1 || !strings.Contains(out, "out of memory") {
			t.Errorf("Redis out of memory: exit %d, want 1 (memory may be freed) saying so; log:\n%s", code, out)
		}
	})

	t.Run("TLS", func(t *testing.T) {
		cert, key := testtls.Pair(t)
		tr := harness.StartRedis(t)
		port := harness.FreePort(t)
		for _, kv := range [][2]string{{"tls-cert-file", cert}, {"tls-key-file", key}, {"tls-ca-cert-file", cert}, {"tls-auth-clients", "optional"}, {"tls-port", strconv.Itoa(port)}} {
			if out, err := tr.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
				t.Skipf("CONFIG SET %s: %v %s (redis-server without TLS?)", kv[0], err, out)
			}
		}
		url := "SESSIONGATE_REDIS_URL=rediss://localhost:" + strconv.Itoa(port) + "/0"
		code, out := runGatewayToExit(t, append(base, url)...)
		if code != 78 || !strings.Contains(out, "x509: certificate signed by unknown authority") {
			t.Errorf("private CA without SSL_CERT_FILE: exit %d, want 78 (EX_CONFIG: no restart trusts it) and the README's x509 message; log:\n%s", code, out)
		}
		// rediss:// on the plain port: redis-server answers the hello
		// nothing, which looks like a stalled Redis (exit 1), so the
		// message points at the port.
		code, out = runGatewayToExit(t, append(base, "SESSIONGATE_REDIS_URL=rediss://"+tr.Addr+"/0", "SSL_CERT_FILE="+cert)...)
		if code != 1 || !strings.Contains(out, "tls-port") {
			t.Errorf("rediss:// on the plain port: exit %d, want 1 and a word on the TLS port; log:\n%s", code, out)
		}
		startBinary(t, buildGateway(t), append(base, url, "SSL_CERT_FILE="+cert))
		startBinary(t, buildGateway(t), append(base, url+"?skip_verify=true"))

		if out, err := tr.Do("CONFIG", "SET", "tls-auth-clients", "yes"); err != nil {
			t.Fatalf("CONFIG SET tls-auth-clients yes: %v %s", err, out)
		}
		code, out = runGatewayToExit(t, append(base, url, "SSL_CERT_FILE="+cert)...)
		switch {
		case strings.Contains(out, "tls: certificate required"):
			if code != 78 {
				t.Errorf("tls-auth-clients yes: exit %d, want 78 (EX_CONFIG: the gateway sends no client certificate); log:\n%s", code, out)
			}
		case !strings.Contains(out, "connection reset by peer") || code == 0:
			t.Errorf("tls-auth-clients yes: exit %d, want the README's tls: certificate required (or connection reset by peer); log:\n%s", code, out)
		}
	})
}

// Redis settings no restart can cure stop the start with 78 (EX_CONFIG),
// which the systemd unit does not restart and a supervisor can tell from
// 1: a password Redis refuses or none where one is required, a database
// number beyond the server's `databases` (16, its default), an ACL user
// without a command sessions need. Each used to exit 1, and was restarted
// for ever. The log names SESSIONGATE_REDIS_URL and never the password.
func TestStoreStartupRefusedSettings(t *testing.T) {
	t.Parallel()
	base := startupBase(t)

	r := harness.StartRedis(t)
	addr := r.Addr
	if out, err := r.Do("ACL", "SETUSER", "sgnoeval", "on", ">noeval-secret-pw", "~*", "&*", "+@all", "-evalsha"); err != nil {
		t.Fatalf("ACL SETUSER: %v %s", err, out)
	}
	// Last: the harness's own commands need no password.
	if out, err := r.Do("CONFIG", "SET", "requirepass", "the-right-secret-pw"); err != nil {
		t.Fatalf("CONFIG SET requirepass: %v %s", err, out)
	}
	// The right settings start: the server itself is fine.
	startBinary(t, buildGateway(t), append(base, "SESSIONGATE_REDIS_URL=redis://:the-right-secret-pw@"+addr+"/3"))

	for _, tc := range []struct{ name, url, want string }{
		{"WrongPassword", "redis://:a-wrong-secret-pw@" + addr + "/0", "WRONGPASS"},
		{"NoPassword", "redis://" + addr + "/0", "NOAUTH"},
		{"DatabaseOutOfRange", "redis://:the-right-secret-pw@" + addr + "/16", "DB index is out of range"},
		{"UserWithoutEvalsha", "redis://sgnoeval:noeval-secret-pw@" + addr + "/0", "NOPERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runGatewayToExit(t, append(base, "SESSIONGATE_REDIS_URL="+tc.url)...)
			if code != 78 || !strings.Contains(out, tc.want) || !strings.Contains(out, "SESSIONGATE_REDIS_URL") {
				t.Errorf("exit %d, want 78 (EX_CONFIG) naming %s and SESSIONGATE_REDIS_URL; log:\n%s", code, tc.want, out)
			}
			if strings.Contains(out, "secret-pw") {
				t.Errorf("the log shows the password:\n%s", out)
			}
		})
	}
}

// startupBase starts a php-fpm for the start-up tests and returns the
// environment every gateway of theirs shares, Redis left to each case.
func startupBase(t *testing.T) []string {
	t.Helper()
	harness.Require(t, "redis-server", "php-fpm8.2")
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	return []string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=startup-test-key-0123456789abcdef0123456789", "SESSIONGATE_REDIS_TIMEOUT=1s"}
}

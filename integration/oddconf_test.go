package integration

// The real binary under configuration values that are valid but unusual,
// as operators write them: each must either work end to end or stop the
// start naming its variable (exit 78), never start and then misbehave.

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testtls"
)

// sessionBinaryEnv is the environment of a gateway binary with sessions
// (the in-process store) in front of a real php-fpm running the session
// fixtures with the prepend.
func sessionBinaryEnv(t *testing.T) []string {
	t.Helper()
	harness.Require(t, "php-fpm8.2")
	root := sessionFixtureRoot(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	return []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_PHP_PREPEND=" + writePrepend(t),
	}
}

// startOrRefused runs the binary with env as startBinary does and
// returns it serving, or, when it refuses the configuration (exit 78
// naming the variable name), nil and its message. Any other failure to
// start fails the test.
func startOrRefused(t *testing.T, env []string, name string) (p *gwProc, refusal string) {
	t.Helper()
	bin := buildGateway(t)
	p, err := tryOnFreePorts(t, func() *gwProc { return binaryOnFreePorts(t, bin, env) })
	if err == nil {
		return p, ""
	}
	msg := p.stderr.String()
	var ee *exec.ExitError
	if errors.Is(err, errExitedAtStart) && errors.As(p.err, &ee) && ee.ExitCode() == 78 && strings.Contains(msg, name) {
		return nil, msg
	}
	t.Fatal(err)
	return nil, ""
}

// TestCookieDomainBrowsersKeep: a SESSIONGATE_SESSION_COOKIE_DOMAIN
// written as DNS writes a name, with its trailing dot (example.com.), went
// out as Domain=example.com.; Chromium drops such a cookie (RFC 6265 has
// user agents ignore the attribute), so no visitor ever kept a session, on
// www.example.com or any other name. Such a value must stop the start,
// naming the variable; one that starts must give Chromium a session that
// holds on www. and is shared with shop., as the variable promises. The
// same for a public suffix (co.uk, herokuapp.com), whose cookies Chromium
// refuses: they were accepted.
func TestCookieDomainBrowsersKeep(t *testing.T) {
	t.Parallel()
	harness.Require(t, "chromium")
	env := sessionBinaryEnv(t)
	for _, c := range []struct {
		domain, site string // site: www.site and shop.site are visited
		mayRefuse    bool
	}{
		{"example.com", "example.com", false},
		{".example.com", "example.com", false},
		{"Example.COM", "example.com", false},
		{"example.com.", "example.com", true},
		{".example.com.", "example.com", true},
		{"co.uk", "co.uk", true},
		{"herokuapp.com", "herokuapp.com", true},
		{"myshop.herokuapp.com", "myshop.herokuapp.com", false},
	} {
		t.Run(c.domain, func(t *testing.T) {
			const name = "SESSIONGATE_SESSION_COOKIE_DOMAIN"
			p, refusal := startOrRefused(t, append(env[:len(env):len(env)], name+"="+c.domain), name)
			if p == nil {
				if !c.mayRefuse {
					t.Fatalf("%s=%s refused:\n%s", name, c.domain, refusal)
				}
				return
			}
			addr := strings.TrimPrefix(p.URL, "http://")
			b := newBrowser(t, "http://www."+c.site, 30*time.Second,
				chromedp.Flag("host-resolver-rules", "MAP *."+c.site+" "+addr))
			b.open("/set.php?k=user&v=%22ana%22", 200)
			for _, host := range []string{"www." + c.site, "shop." + c.site} {
				b.base = "http://" + host
				b.open("/get.php", 200)
				if body := b.eval(`document.body.innerText`); !strings.Contains(body, `"user":"ana"`) {
					b.fatalf("%s=%s: %s has no session of the login on www.%s (Chromium kept no cookie?): %s", name, c.domain, host, c.site, body)
				}
			}
		})
	}
}

// TestSessionIdleTimeoutOfCenturies: SESSIONGATE_SESSION_IDLE_TIMEOUT set
// as long as a duration goes (2562047h, for sessions that never go idle)
// was accepted, and then every session was dropped as expired on the
// request after the one that created it ("session record dropped
// reason=expired"): no login stuck. With Redis, the store's TTL of that
// many milliseconds must work as well.
func TestSessionIdleTimeoutOfCenturies(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	red := harness.StartRedis(t)
	const name = "SESSIONGATE_SESSION_IDLE_TIMEOUT"
	p, refusal := startOrRefused(t, append(sessionBinaryEnv(t), "SESSIONGATE_REDIS_URL="+red.URL(), name+"=2562047h"), name)
	if p == nil {
		t.Fatalf("%s=2562047h refused:\n%s", name, refusal)
	}
	gw := &sessionGW{URL: p.URL}
	resp, body, ck := gw.get(t, "/set.php?k=user&v=%22ana%22", "")
	if resp.StatusCode != 200 || body != "ok" || ck == "" || ck == "-" {
		t.Fatalf("create: %d %q cookie %q", resp.StatusCode, body, ck)
	}
	for i := range 2 {
		if d := gw.dump(t, ck); !strings.Contains(string(d.Data), `"user":"ana"`) {
			t.Fatalf("request %d after the login: session %s, want the login's", i+1, d.Data)
		}
	}
}

// TestRedisUnixURLForms: a Redis on a unix socket named as
// SESSIONGATE_PHP_FPM and SESSIONGATE_DJANGO_URL name theirs
// (unix:/path.sock, also redis-py's form) was refused as "needs a scheme",
// which it has; it must work. One slash short of unix:///path
// (unix://tmp/x.sock) dialed another path and failed the start-up check
// with exit 1, which a supervisor restarts for ever: it must be refused
// at start, naming the variable.
func TestRedisUnixURLForms(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	dir := t.TempDir()
	sock := filepath.Join(dir, "my redis.sock")
	cmd := exec.Command(harness.Bin(t, "redis-server"), "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := harness.StartInGroup(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rc := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, DB: 3})
	t.Cleanup(func() { rc.Close() })
	eventually(t, 10*time.Second, "redis-server on "+sock, func() bool { return rc.Ping(context.Background()).Err() == nil })
	env := sessionBinaryEnv(t)
	const name = "SESSIONGATE_REDIS_URL"

	p, refusal := startOrRefused(t, append(env[:len(env):len(env)], name+"=unix:"+sock+"?db=3"), name)
	if p == nil {
		t.Fatalf("%s=unix:%s?db=3 refused:\n%s", name, sock, refusal)
	}
	gw := &sessionGW{URL: p.URL}
	resp, body, ck := gw.get(t, "/set.php?k=user&v=%22ana%22", "")
	if resp.StatusCode != 200 || body != "ok" || ck == "" || ck == "-" {
		t.Fatalf("create: %d %q cookie %q", resp.StatusCode, body, ck)
	}
	d := gw.dump(t, ck)
	if !strings.Contains(string(d.Data), `"user":"ana"`) {
		t.Fatalf("the next request's session: %s", d.Data)
	}
	if n, err := rc.Exists(context.Background(), "sessiongate:{"+d.ID+"}").Result(); err != nil || n != 1 {
		t.Fatalf("the session is not in database 3 of the socket's server: %d %v", n, err)
	}

	// The URL form, its space percent-encoded as in any URL: it dialed
	// ".../my%20redis.sock" and failed the start-up check (exit 1).
	encoded := "unix://" + strings.ReplaceAll(sock, " ", "%20") + "?db=3"
	if p, refusal := startOrRefused(t, append(env[:len(env):len(env)], name+"="+encoded), name); p == nil {
		t.Fatalf("%s=%s refused:\n%s", name, encoded, refusal)
	} else if resp, body, ck := (&sessionGW{URL: p.URL}).get(t, "/set.php?k=user&v=%22bo%22", ""); resp.StatusCode != 200 || body != "ok" || ck == "" {
		t.Fatalf("%s=%s: create: %d %q cookie %q", name, encoded, resp.StatusCode, body, ck)
	}

	// The socket as a relative path, one slash short.
	rel := strings.TrimPrefix(sock, "/")
	if p, _ := startOrRefused(t, append(env[:len(env):len(env)], name+"=unix://"+rel), name); p != nil {
		t.Fatalf("%s=unix://%s (a relative path) started", name, rel)
	}
}

// TestRedisURLDatabaseNamedOnce: redis://host/1?db=2 started and kept the
// sessions in database 2 (go-redis takes db= over the path without a
// word), where the operator read database 1. It is refused at start,
// naming the variable; the path alone and db= alone name the database
// the sessions go to.
func TestRedisURLDatabaseNamedOnce(t *testing.T) {
	t.Parallel()
	red := harness.StartRedis(t)
	env := sessionBinaryEnv(t)
	const name = "SESSIONGATE_REDIS_URL"
	host := red.Addr
	if p, refusal := startOrRefused(t, append(env[:len(env):len(env)], name+"=redis://"+host+"/1?db=2"), name); p != nil {
		t.Fatalf("%s with /1 and db=2 started", name)
	} else if !strings.Contains(refusal, "named twice") {
		t.Fatalf("refused with:\n%s\nwant the database named twice", refusal)
	}
	for _, c := range []struct {
		url string
		db  int
	}{{"redis://" + host + "/4", 4}, {"redis://" + host + "?db=5", 5}} {
		p, refusal := startOrRefused(t, append(env[:len(env):len(env)], name+"="+c.url), name)
		if p == nil {
			t.Fatalf("%s=%s refused:\n%s", name, c.url, refusal)
		}
		gw := &sessionGW{URL: p.URL}
		resp, body, ck := gw.get(t, "/set.php?k=user&v=%22ana%22", "")
		if resp.StatusCode != 200 || body != "ok" || ck == "" || ck == "-" {
			t.Fatalf("%s: create: %d %q cookie %q", c.url, resp.StatusCode, body, ck)
		}
		id := gw.dump(t, ck).ID
		rc := redis.NewClient(&redis.Options{Addr: host, DB: c.db})
		n, err := rc.Exists(context.Background(), "sessiongate:{"+id+"}").Result()
		rc.Close()
		if err != nil || n != 1 {
			t.Fatalf("%s: the session is not in database %d: %d %v", c.url, c.db, n, err)
		}
	}
}

// TestTLSCertNotCoveringServerNames: SESSIONGATE_TLS_CERT for some of
// SESSIONGATE_SERVER_NAMES only (a placeholder before certbot's, a name
// added to the list and not to the certificate) started and served it
// without a word, while every browser refused HTTPS on the other names.
// The start says which names it does not cover, and so does a SIGHUP
// reload of such a certificate.
func TestTLSCertNotCoveringServerNames(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	cert, key := testtls.Pair(t) // localhost, example.com, 127.0.0.1, ::1
	p, _, _ := startPHPBinary(t, "SESSIONGATE_TLS_CERT="+cert, "SESSIONGATE_TLS_KEY="+key,
		"SESSIONGATE_SERVER_NAMES=example.com,www.example.com,127.0.0.1")
	line := waitForLog(t, p.stderr, "does not cover")
	if !strings.Contains(line, "www.example.com") || strings.Contains(line, `"example.com`) || !strings.Contains(line, "SESSIONGATE_SERVER_NAMES") {
		t.Fatalf("start: %s\nwant a warning naming www.example.com only, and SESSIONGATE_SERVER_NAMES", line)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, p.stderr, "SIGHUP: TLS certificate reloaded")
	eventually(t, 10*time.Second, "the warning again after the reload", func() bool {
		return strings.Count(p.stderr.String(), "does not cover") == 2
	})
}

// TestTrustedProxiesEveryAddressWarns: with SESSIONGATE_TRUSTED_PROXIES
// covering every address, a client behind a load balancer that appends
// to X-Forwarded-For (as nginx, AWS's and Google's do) chooses the
// address PHP sees, and the address SESSIONGATE_RESTRICTED_PATHS checks,
// by sending one of its own first: the gateway started without a word.
// It must say so at start.
func TestTrustedProxiesEveryAddressWarns(t *testing.T) {
	t.Parallel()
	p, addr, _ := startPHPBinary(t, "SESSIONGATE_TRUSTED_PROXIES=0.0.0.0/0,::/0", "SESSIONGATE_RESTRICTED_PATHS=/info.php 10.0.0.0/8")
	// The load balancer appended the client's real address, 203.0.113.9.
	resp, _ := raw(t, addr, "GET /info.php HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1, 203.0.113.9\r\nConnection: close\r\n\r\n")
	if !strings.Contains(resp, `"REMOTE_ADDR":"10.0.0.1"`) {
		t.Fatalf("the client's own X-Forwarded-For entry is not its address any more (good news: adjust this test):\n%.600s", resp)
	}
	line := waitForLog(t, p.stderr, "trusts every address")
	if !strings.Contains(line, "SESSIONGATE_TRUSTED_PROXIES") || !strings.Contains(line, "X-Forwarded-For") {
		t.Fatalf("start: %s\nwant a warning that every address is trusted and what X-Forwarded-For then does", line)
	}
}

// TestLogLevelErrorShowsBackendFailures: with SESSIONGATE_LOG_LEVEL=error
// (nginx's error_log ... error, which has "connect() failed ... while
// connecting to upstream" at that level), a php-fpm that is down left no
// line at all: every request got 502 and the log stayed empty, though
// SESSIONGATE_ACCESS_LOG's help said error keeps the failed requests. A
// backend that cannot be reached, or does not answer in time, is an
// error; a client that left (499) stays a warning.
func TestLogLevelErrorShowsBackendFailures(t *testing.T) {
	t.Parallel()
	p, addr, _ := startPHPBinary(t, "SESSIONGATE_LOG_LEVEL=error", "SESSIONGATE_PHP_FPM="+fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)))
	if resp, _ := raw(t, addr, "GET /info.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); statusOf(resp) != 502 {
		t.Fatalf("with php-fpm down: %.200s", resp)
	}
	line := waitForLog(t, p.stderr, `"status":502`)
	if !strings.Contains(line, `"level":"ERROR"`) || !strings.Contains(line, "/info.php") {
		t.Fatalf("502 logged as %s", line)
	}
}

// TestTLSChainInTheWrongOrder: a certificate file holding the chain
// before the site's certificate (cat chain.pem cert.pem) stopped the start
// with "private key does not match public key" under SESSIONGATE_TLS_CERT
// and SESSIONGATE_TLS_KEY alike, though the key was right. The message
// names the certificate file and the order.
func TestTLSChainInTheWrongOrder(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	cert, _, key := testtls.Chain(t)
	b, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	leaf, chain := pem.Decode(b)
	reversed := filepath.Join(t.TempDir(), "reversed.pem")
	if err := os.WriteFile(reversed, append(chain, pem.EncodeToMemory(leaf)...), 0o600); err != nil {
		t.Fatal(err)
	}
	root := gwSite(t)
	p, msg := startOrRefused(t, []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + root, "SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_TLS_CERT=" + reversed, "SESSIONGATE_TLS_KEY=" + key}, "SESSIONGATE_TLS_CERT")
	if p != nil {
		t.Fatal("started with the chain in the wrong order")
	}
	if !strings.Contains(msg, "first") || strings.Contains(msg, "SESSIONGATE_TLS_KEY=") {
		t.Fatalf("refused with:\n%s\nwant the certificate file named alone, saying the site's certificate comes first", msg)
	}
}

// Keywords typed in capitals, as booleans always could be, reach the real
// binary as the keywords: FOLLOW_SYMLINKS=ANY serves a link out of the
// root, INDEX=OFF answers 404 where index.php would run, and the start
// against a real Redis takes SESSION_LOCK=MERGE and REDIS_COALESCE=ON.
// Each was refused with exit 78.
func TestKeywordsInCapitals(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "php-fpm8.2")
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	r := harness.StartRedis(t)
	p := startBinary(t, buildGateway(t), []string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey, "SESSIONGATE_REDIS_URL=" + r.URL(),
		"SESSIONGATE_FOLLOW_SYMLINKS=ANY", "SESSIONGATE_INDEX=OFF", "SESSIONGATE_SESSION_LOCK=MERGE", "SESSIONGATE_REDIS_COALESCE=ON"})
	for path, want := range map[string]int{"/out-file.txt": 200, "/no-such-page": 404} {
		res, err := http.Get(p.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: %d %q, want %d", path, res.StatusCode, body, want)
		}
	}
	if log := p.stderr.String(); !strings.Contains(log, `"SESSIONGATE_SESSION_LOCK":"merge"`) || !strings.Contains(log, `"SESSIONGATE_REDIS_COALESCE":"on"`) {
		t.Errorf("the start does not log the keywords as such:\n%s", log)
	}
}

package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestSessionRedisUnixSocket: README, Sessions, "Store": the unix socket
// form of SESSIONGATE_REDIS_URL (unix:///path.sock?db=N) against a real
// redis-server listening on a socket only: two gateways share sessions,
// and a request of a session another one holds waits for it (the lock and
// its unlock notice over the socket) and then sees its change.
func TestSessionRedisUnixSocket(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "redis-server")
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(harness.Bin(t, "redis-server"), "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := harness.StartInGroup(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rc := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, DB: 2})
	t.Cleanup(func() { rc.Close() })
	eventually(t, 10*time.Second, "redis-server on "+sock, func() bool { return rc.Ping(context.Background()).Err() == nil })

	root := sessionFixtureRoot(t)
	prepend := writePrepend(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_PHP_MAX_CONNS=2",
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_PHP_PREPEND=" + prepend,
		"SESSIONGATE_REDIS_URL=unix://" + sock + "?db=2",
	})
	if err != nil {
		t.Fatal(err)
	}
	gws := startGateways(t, cfg, 2)
	s := &sessionStack{fpm: fpm, gws: gws}
	ck := s.newSession(t)
	held := make(chan int, 1)
	started, q := markFile(t)
	go func() {
		resp, _, _ := gws[0].get(t, "/hold.php?ms=500&started="+q, ck)
		held <- resp.StatusCode
	}()
	waitForFile(t, started, "hold.php")
	if resp, body, _ := gws[1].get(t, "/counter.php", ck); resp.StatusCode != 200 || body != "1" {
		t.Fatalf("the other gateway's request of the session: %d %q", resp.StatusCode, body)
	}
	if code := <-held; code != 200 {
		t.Fatalf("hold.php: %d", code)
	}
	d := gws[1].dump(t, ck)
	if !strings.Contains(string(d.Data), `"held":1`) || !strings.Contains(string(d.Data), `"n":1`) {
		t.Fatalf("session after both requests: %s", d.Data)
	}
	if n, err := rc.Exists(context.Background(), "sessiongate:{"+d.ID+"}").Result(); err != nil || n != 1 {
		t.Fatalf("the session is not in database 2 of the socket's server: %d %v", n, err)
	}
}

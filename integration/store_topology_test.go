package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/app"
	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// startSentinel runs a redis-sentinel (redis-server --sentinel) on a free
// loopback port monitoring master as "mymaster", stopped by t.Cleanup. The
// port FreePort picked may be taken before the sentinel binds it: the
// start is then tried again on another, as the harness does for its
// servers; and the sentinel is ready when its own log says it runs on the
// port, not merely when something accepts there.
func startSentinel(t *testing.T, master string) string {
	t.Helper()
	host, mport, _ := strings.Cut(master, ":")
	for attempt := 1; ; attempt++ {
		dir := t.TempDir()
		port := harness.FreePort(t)
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster %s %s 1\n", port, dir, host, mport)
		path := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, "sentinel.log")
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(harness.Bin(t, "redis-server"), path, "--sentinel")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := harness.StartInGroup(cmd); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			logf.Close()
		})
		addr := "127.0.0.1:" + strconv.Itoa(port)
		running := fmt.Sprintf("Running mode=sentinel, port=%d.", port)
		out, up := "", false
		for deadline := time.Now().Add(10 * time.Second); !up; time.Sleep(20 * time.Millisecond) {
			gone := sentinelExited(exited) // before the read: its log is complete then
			b, _ := os.ReadFile(logPath)
			out, up = string(b), strings.Contains(string(b), running)
			if !up && gone {
				break
			}
			if !up && time.Now().After(deadline) {
				t.Fatalf("redis sentinel not running on %s after 10 s:\n%s", addr, out)
			}
		}
		if up {
			harness.WaitTCP(t, addr, 10*time.Second)
			return addr
		}
		if attempt == 3 || !strings.Contains(out, "Address already in use") {
			t.Fatalf("redis sentinel exited at start:\n%s", out)
		}
		t.Logf("sentinel start, attempt %d: port %d was taken meanwhile; trying another", attempt, port)
	}
}

// sentinelExited reports whether the channel closed when the process ended
// is closed.
func sentinelExited(exited <-chan struct{}) bool {
	select {
	case <-exited:
		return true
	default:
		return false
	}
}

// A server that answers PING but cannot hold the sessions through the URL's
// kind of client must stop the gateway at start with a message naming
// SESSIONGATE_REDIS_URL, not let it start and fail most requests: redis://
// at a Cluster node (sessions in other nodes' slots get MOVED), at a
// Sentinel (no data commands) or at a read-only replica (no writes).
func TestStoreRedisProbeRefusesWrongTopology(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server", "redis-cli")
	c := harness.StartRedisCluster(t)
	master := harness.StartRedis(t)
	replica := harness.StartRedis(t)
	host, port, _ := strings.Cut(master.Addr, ":")
	if _, err := replica.Do("REPLICAOF", host, port); err != nil {
		t.Fatal(err)
	}
	sentinel := startSentinel(t, master.Addr)

	build := func(url string) error {
		cfg, err := config.Load([]string{
			"SESSIONGATE_PHP_FPM=127.0.0.1:9",
			"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
			"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
			"SESSIONGATE_REDIS_URL=" + url,
		})
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.Build(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if a != nil {
			a.Close()
		}
		return err
	}
	for name, tc := range map[string]struct{ url, want string }{
		"cluster node": {"redis://" + c.Addrs[0] + "/0", "redis-cluster://"},
		"sentinel":     {"redis://" + sentinel + "/0", "redis-sentinel://"},
		"replica":      {"redis://" + replica.Addr + "/0", "replica"},
	} {
		err := build(tc.url)
		if err == nil {
			t.Errorf("%s: the gateway started on %s", name, tc.url)
			continue
		}
		if !strings.Contains(err.Error(), "SESSIONGATE_REDIS_URL") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not name SESSIONGATE_REDIS_URL and %q", name, err, tc.want)
		}
	}
	// The right URLs still start.
	for _, url := range []string{
		clusterURL(c),
		master.URL(),
		"redis-sentinel://" + sentinel + "/0?master=mymaster",
	} {
		if err := build(url); err != nil {
			t.Errorf("%s: %v", url, err)
		}
	}
}

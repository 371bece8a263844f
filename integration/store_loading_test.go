package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestRedisLoadingAtStart: a gateway started while its Redis reads its
// data set back (after a restart, a failover to a fresh node) fails the
// start-up check, as it must, but the message said to install
// redis-server. It must say that Redis is still loading and when to try
// again. The data set here is small; redis-server's own test knob,
// key-load-delay, stretches its loading to a few seconds.
func TestRedisLoadingAtStart(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	env := sessionBinaryEnv(t)
	ctx := context.Background()

	// A data set saved by one server...
	first := harness.StartRedis(t)
	fc := redis.NewClient(&redis.Options{Addr: first.Addr})
	defer fc.Close()
	const keys = 4000
	// A loading server answers clients only between pieces of the file
	// (loading-process-events-interval-bytes, 1 KiB at the least): values
	// of 200 bytes make that every 5 keys, 15 ms. One-byte values made it
	// every 120 keys, about 400 ms, which a busy machine stretched past the
	// gateway's 500 ms check: it then reported a silent Redis, not a
	// loading one.
	value := strings.Repeat("v", 200)
	pipe := fc.Pipeline()
	for i := range keys {
		pipe.Set(ctx, "k"+strconv.Itoa(i), value, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fc.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	dirReply, err := first.Do("CONFIG", "GET", "dir")
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := os.ReadFile(filepath.Join(strings.TrimPrefix(dirReply, "dir\n"), "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	// ...read back by another, 3 ms a key: 12 s, far longer than the
	// gateway's start-up check waits (go-redis retries LOADING).
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dump.rdb"), rdb, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	_, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(harness.Bin(t, "redis-server"), "--port", port, "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"),
		"--key-load-delay", "3000", "--loading-process-events-interval-bytes", "1024")
	if err := harness.StartInGroup(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer lc.Close()
	var ping error
	eventually(t, 10*time.Second, "redis-server loading on "+addr, func() bool {
		ping = lc.Ping(ctx).Err()
		return ping != nil && strings.HasPrefix(ping.Error(), "LOADING")
	})

	run, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	gw := exec.CommandContext(run, buildGateway(t))
	gw.Env = append([]string{"PATH=" + os.Getenv("PATH"), "SESSIONGATE_LISTEN=127.0.0.1:0", "SESSIONGATE_REDIS_URL=redis://" + addr + "/0"}, env...)
	out, err := gw.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("the gateway ended with %v, want exit 1; output:\n%s", err, out)
	}
	if s := string(out); !strings.Contains(s, "still loading its data set") || !strings.Contains(s, "SESSIONGATE_REDIS_URL") || strings.Contains(s, "apt-get install redis-server") {
		t.Errorf("the start-up check's message does not say Redis is loading:\n%s", s)
	}
}

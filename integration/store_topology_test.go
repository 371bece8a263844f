package integration

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/app"
	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

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
	sentinel := harness.StartRedisSentinel(t, master.Addr)

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
	// The wrong kind of URL for the server is a configuration error (exit
	// 78); a replica may be promoted, so it is not.
	for name, tc := range map[string]struct {
		url, want     string
		misconfigured bool
	}{
		"cluster node": {"redis://" + c.Addrs[0] + "/0", "redis-cluster://", true},
		"sentinel":     {"redis://" + sentinel + "/0", "redis-sentinel://", true},
		"replica":      {"redis://" + replica.Addr + "/0", "replica", false},
	} {
		err := build(tc.url)
		if err == nil {
			t.Errorf("%s: the gateway started on %s", name, tc.url)
			continue
		}
		if !strings.Contains(err.Error(), "SESSIONGATE_REDIS_URL") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not name SESSIONGATE_REDIS_URL and %q", name, err, tc.want)
		}
		if got := errors.Is(err, redisstore.ErrMisconfigured); got != tc.misconfigured {
			t.Errorf("%s: ErrMisconfigured %v, want %v: %v", name, got, tc.misconfigured, err)
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

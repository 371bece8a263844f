package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestStoreRedisSentinelMasterUnreachable: the Sentinel answers but the
// master it names does not (a master behind NAT or in a container, which
// announces an address the gateway cannot reach, or one that is down with
// no replica to promote). The start-up check says that the address is the
// one the Sentinel gave, not one of the URL's: the operator otherwise saw
// only "dial tcp ADDR: connection refused" for an address written nowhere
// in the configuration.
func TestStoreRedisSentinelMasterUnreachable(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	r := harness.StartRedis(t)
	sentinel := harness.StartRedisSentinel(t, r.Addr)
	r.Stop()
	s := newStore(t, "redis-sentinel://"+sentinel+"/0?master=mymaster", "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Ping(ctx)
	if err == nil {
		t.Fatal("Ping passed with the master down")
	}
	t.Log(err)
	if msg := err.Error(); !strings.Contains(msg, "the master the Sentinel names") || !strings.Contains(msg, r.Addr) {
		t.Errorf("Ping: %v\nwant it to say the Sentinel named the unreachable master at %s", err, r.Addr)
	}
}

// The integration tests run in parallel (make test: -parallel 6): most of
// their time is spent waiting for servers to start, for timeouts and for
// back-offs, and each starts its own php-fpm, redis-server and gunicorn on
// ports of its own. A test that measures throughput or the order of
// closely spaced requests does not call t.Parallel(), and says why; Go runs
// those first, alone.
package integration

import (
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestMain lets the harness stop every process it started, and removes the
// shared gateway build and Django databases, even when the test binary is
// interrupted.
func TestMain(m *testing.M) { harness.Main(m, removeGatewayBuild, removeDjangoTemplates) }

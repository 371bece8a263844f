package integration

import (
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestMain lets the harness stop every process it started, even when the
// test binary is interrupted.
func TestMain(m *testing.M) { harness.Main(m) }

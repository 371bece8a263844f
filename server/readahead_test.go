package server

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

// A limit larger than the temp directory's free space is said at start:
// slow clients could fill the disk before it is reached, and buffered
// uploads would then fail.
func TestReadAheadLimitOverFreeSpaceWarned(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, c := range []struct {
		limit config.ByteSize
		warn  bool
	}{{1 << 60, true}, {64 << 10, false}} {
		logs := &testlog.Buffer{}
		NewReadAheadBudget(&config.Config{ResponseBuffering: true, ResponseBufferingLimit: c.limit}, slog.New(slog.NewJSONHandler(logs, nil)))
		if got := strings.Contains(logs.String(), "SESSIONGATE_RESPONSE_BUFFERING_LIMIT is more than"); got != c.warn {
			t.Errorf("limit %d: warned %v, want %v: %s", c.limit, got, c.warn, logs.String())
		}
	}
}

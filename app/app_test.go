package app

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

// The fail-fast probe: a gateway whose Redis does not answer refuses to
// start, quickly, naming the variable and without echoing its password.
func TestBuildRefusesUnreachableRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=127.0.0.1:1",
		"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSION_KEYS=app-test-key-0123456789abcdef0123456789",
		"SESSIONGATE_REDIS_URL=redis://:hunter2-secret@" + addr + "/0",
		"SESSIONGATE_REDIS_TIMEOUT=200ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		a.Close()
		t.Fatal("started without Redis")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("refusal took %v", took)
	}
	msg := err.Error()
	if !strings.Contains(msg, "SESSIONGATE_REDIS_URL") || strings.Contains(msg, "hunter2") {
		t.Fatalf("error %q: want the variable named and no password", msg)
	}
}

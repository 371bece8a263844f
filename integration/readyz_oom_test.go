package integration

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestReadyzRedisOutOfMemory: a Redis at its maxmemory with a policy that
// evicts nothing refuses every write (OOM), so every request that needs
// the session gets 503 (strict mode locks with a write). /readyz must say
// so, as it does for a Redis that does not answer, and name the cause. Its
// probe ran a read-only command and a write that Redis allows under OOM
// first, after which a script may write on: it answered 200 "ok" while
// pages failed.
func TestReadyzRedisOutOfMemory(t *testing.T) {
	t.Parallel()
	p, rc := startSessionBinary(t)
	if code, body := getStatus(t, p.Admin+"/readyz"); code != 200 {
		t.Fatalf("readyz before: %d %q", code, body)
	}
	ctx := context.Background()
	if err := rc.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if code, body := getStatus(t, p.URL+"/set.php?k=a&v=b"); code != 503 {
		t.Fatalf("a session write with Redis out of memory got %d %q, want 503", code, body)
	}
	// README, "Sharing a Redis": the log names OOM.
	if !poll(5*time.Second, func() bool { return strings.Contains(p.stderr.String(), "OOM") }) {
		t.Errorf("the 503 of a session write with Redis out of memory: the log does not name OOM:\n%s", p.stderr.String())
	}
	code, body := getStatus(t, p.Admin+"/readyz")
	if code != 503 || !strings.Contains(body, "out of memory") || strings.Contains(body, "permissions") {
		t.Errorf("readyz with Redis out of memory: %d %q, want 503 saying out of memory", code, body)
	}
	if err := rc.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if code, body := getStatus(t, p.Admin+"/readyz"); code != 200 {
		t.Errorf("readyz once Redis has memory again: %d %q", code, body)
	}
}

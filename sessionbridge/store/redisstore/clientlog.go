package redisstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// RouteClientLog sends go-redis's own messages (a failed dial, trouble in
// its connection pool) to l at warn level. go-redis otherwise prints them
// as plain lines on stderr, in the middle of the gateway's JSON log, where
// log shippers cannot parse them. go-redis keeps one logger per process:
// the last call wins.
func RouteClientLog(l *slog.Logger) {
	redis.SetLogger(clientLog{l})
}

type clientLog struct{ l *slog.Logger }

func (c clientLog) Printf(ctx context.Context, format string, v ...any) {
	c.l.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

package app

import (
	"log/slog"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/readahead"
	"github.com/sessiongate/sessiongate/metrics"
	"github.com/sessiongate/sessiongate/server"
	"github.com/sessiongate/sessiongate/wsgi"
)

// gatewayMetrics is the Prometheus side of one gateway: it observes every
// request the server finishes, receives the session manager's events
// (sessionbridge.Metrics, through the embedded *metrics.Metrics) and reads
// the FastCGI pool at scrape time. Each gateway has its own registry, so
// several built in one process (the integration tests) never mix counts.
//
// Metrics are always collected: counting costs a few atomic additions per
// request, and GET /metrics is served wherever the admin listener is
// (SESSIONGATE_ADMIN_LISTEN; not at all without one).
type gatewayMetrics struct {
	*metrics.Metrics
	maxConns int
	log      *slog.Logger
}

func newMetrics(cfg *config.Config, log *slog.Logger) *gatewayMetrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &gatewayMetrics{Metrics: metrics.New(log), maxConns: cfg.PHPMaxConns, log: log}
}

// serverOptions hooks the metrics into the server: the request observer
// (every upstream, Django included, through RequestInfo.Upstream) and
// GET /metrics on the admin listener.
func (g *gatewayMetrics) serverOptions() []server.Option {
	return []server.Option{
		server.WithObserver(func(ri *server.RequestInfo, status int, bytes int64, d time.Duration) {
			g.ObserveRequest(ri.Upstream, status, bytes, d)
		}),
		server.WithAdminHandler("GET /metrics", g.Handler()),
	}
}

// watchReadAhead adds the gauges of the budget every read-ahead shares.
func (g *gatewayMetrics) watchReadAhead(b *readahead.Budget) {
	if err := g.RegisterReadAhead(func() (int64, int64, int64) { return b.Used(), b.Max(), b.Refused() }); err != nil {
		g.log.Error("read-ahead metrics unavailable", "error", err.Error())
	}
}

// watchDjango adds the gauge of each Django backend's turn.
func (g *gatewayMetrics) watchDjango(backends func() []wsgi.BackendState) {
	if err := g.RegisterDjangoBackends(backends); err != nil {
		g.log.Error("Django backend metrics unavailable", "error", err.Error())
	}
}

// watch adds the FastCGI pool gauges of srv's php-fpm backends.
func (g *gatewayMetrics) watch(srv *server.Server) {
	if err := g.RegisterPHPPool(srv.PHPStats, g.maxConns); err != nil {
		// Only a programming error (a second registration) gets here;
		// the gateway serves without pool gauges rather than not at all.
		g.log.Error("FastCGI pool metrics unavailable", "error", err.Error())
	}
	if err := g.RegisterGzipCache(srv.GzipCacheStats); err != nil {
		g.log.Error("gzip cache metrics unavailable", "error", err.Error())
	}
}

// Package metrics is the gateway's Prometheus instrumentation: requests by
// upstream and status, latency, the FastCGI pool, and session events. It
// keeps its own registry (never the process-global one), so two gateways
// built in one process (the integration tests do) never collide, and serves
// it with Handler on the admin listener.
//
// Label values are bounded by construction: the upstream is a name chosen
// by code or configuration ("static", "php", "django", "gateway"), the code
// is an HTTP status, the backend is a configured php-fpm address and the
// session event is one of a fixed set. Nothing is ever labelled by path,
// client or session, whatever the traffic.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/internal/compress"
	"github.com/sessiongate/sessiongate/wsgi"
)

// Namespace starts the name of every metric of the gateway's own.
const Namespace = "sessiongate"

// LatencyBuckets are the upper bounds, in seconds, of the request duration
// and session lock wait histograms: from a static file served from the page
// cache (well under a millisecond) to a slow report page; anything slower
// than 30 s lands in +Inf.
var LatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// SessionEvents are the events sessionbridge reports (sessionbridge.Metrics).
// Their counters exist from the start, at zero, so that rate() and alerts
// work before the first occurrence.
var SessionEvents = []string{"load", "load_absent", "save", "touch", "destroy", "conflict", "lock_timeout", "store_error", "php_prepend_missing", "django_middleware_missing", "django_signature_rejected", "django_session_too_big", "django_login_revoked"}

// Metrics holds the gateway's collectors and their registry. Its methods
// are safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	respBytes     *prometheus.CounterVec
	sessionEvents *prometheus.CounterVec
	lockWait      prometheus.Histogram
	storeErrors   prometheus.Counter

	// events caches the counter of each known session event, and
	// upstreams the series of each upstream seen (*upstreamSeries), so the
	// request path does not hash label values.
	events    map[string]prometheus.Counter
	upstreams sync.Map
}

// upstreamSeries are one upstream's request series. The status counters
// are created on first use: only statuses that occur become series.
type upstreamSeries struct {
	duration prometheus.Observer
	bytes    prometheus.Counter
	codes    [len(statusLabels) + 1]atomic.Pointer[prometheus.Counter] // last: "other"
}

// New builds the gateway's metrics in a fresh registry, with the Go runtime,
// process and build information collectors. logger receives scrape errors
// (nil: discarded).
func New(logger *slog.Logger) *Metrics {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "http", Name: "requests_total",
			Help: "Finished client requests by upstream (static, php, django, redirect for the plain-HTTP redirect listener, or gateway for answers the gateway gives itself: 404, 413, and net/http's refusals of malformed or oversized requests on plain-HTTP listeners, which have no duration sample) and status code; 499 means the client left first.",
		}, []string{"upstream", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time from the request headers to the end of the response, by upstream; session lock waits included.",
			Buckets: LatencyBuckets,
		}, []string{"upstream"}),
		respBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "http", Name: "response_bytes_total",
			Help: "Response body bytes written to clients, by upstream.",
		}, []string{"upstream"}),
		sessionEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "session", Name: "events_total",
			Help: "Session operations: load (an existing session was read), load_absent (a signed cookie named no live session), save, touch (expiry extended), destroy, conflict (merge mode: a key changed concurrently, last writer won), lock_timeout (503: the strict lock wait, or a merge write's retries, ran out), store_error (Redis failed), php_prepend_missing (a PHP response the prepend did not mark: PHP ran without it and kept a session of its own), django_middleware_missing (a Django response sessiongate_django's middleware did not mark: Django's own SessionMiddleware, or none, kept its session), django_signature_rejected (a Django response whose middleware refused the gateway's session headers: SESSIONGATE_SESSION_KEYS differs, clock skew), django_session_too_big (Django's server refused or dropped a request, before Django ran, whose session took more request header than its limits: every Django page of that session fails so), django_login_revoked (a PHP request whose session holds a Django login that a password change ended: PHP is told, and sessiongate_user_id() names nobody).",
		}, []string{"event"}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "session", Name: "lock_wait_seconds",
			Help:    "Time each wait for a session's lock took, timeouts included: a request in strict mode waits once, and once more each time it takes the lock again after releasing it (a write, a regeneration or a logout after session_write_close()).",
			Buckets: LatencyBuckets,
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "session", Name: "store_errors_total",
			Help: "Session store (Redis) operations that failed, a session lock Redis lost before its lease ended (a failover, a flush) included; most made a request answer 503 or lose a session change.",
		}),
		events: make(map[string]prometheus.Counter, len(SessionEvents)),
	}
	for _, e := range SessionEvents {
		m.events[e] = m.sessionEvents.WithLabelValues(e)
	}
	m.reg.MustRegister(
		m.requests, m.duration, m.respBytes,
		m.sessionEvents, m.lockWait, m.storeErrors,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: errorLog{logger},
		// A collector failing (say, /proc unreadable in a sandbox) must
		// not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // promhttp_metric_handler_errors_total
		// Scrapes are cheap but not free: bound what a misbehaving
		// scraper can make the gateway do.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	return m
}

// Handler serves the registry in the Prometheus text (or negotiated)
// format, for the admin listener's GET /metrics.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Gatherer gives tests and embedders the registry to read.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// ObserveRequest records one finished request. It has the shape of
// server.Observer once the upstream is taken from the request's info.
func (m *Metrics) ObserveRequest(upstream string, status int, bytes int64, d time.Duration) {
	if upstream == "" {
		upstream = "gateway"
	}
	u := m.series(upstream)
	i := len(statusLabels) // "other"
	if status >= 100 && status < len(statusLabels) {
		i = status
	}
	c := u.codes[i].Load()
	if c == nil {
		// Racing first uses get the same child from the vector.
		n := m.requests.WithLabelValues(upstream, statusLabel(status))
		u.codes[i].Store(&n)
		c = &n
	}
	// The count last: a scrape that sees a request counted sees its
	// duration and bytes too (tests wait for the count, then read the
	// others; with the count first, TestMetricsCountDjango once read a
	// duration count of 1 beside a request count of 2).
	u.duration.Observe(d.Seconds())
	if bytes > 0 {
		u.bytes.Add(float64(bytes))
	}
	(*c).Inc()
}

// CountRefusal counts a request net/http refused before any handler ran
// (431, 400, 501, 417) under the upstream of the listener that refused it
// ("gateway", or "redirect" for the port-80 listener, whose every answer
// is counted there). Only requests_total: the request was never timed, and
// a made-up duration would pull the latency histogram down.
func (m *Metrics) CountRefusal(upstream string, status int) {
	m.requests.WithLabelValues(upstream, statusLabel(status)).Inc()
}

func (m *Metrics) series(upstream string) *upstreamSeries {
	if u, ok := m.upstreams.Load(upstream); ok {
		return u.(*upstreamSeries)
	}
	u, _ := m.upstreams.LoadOrStore(upstream, &upstreamSeries{
		duration: m.duration.WithLabelValues(upstream),
		bytes:    m.respBytes.WithLabelValues(upstream),
	})
	return u.(*upstreamSeries)
}

// statusLabels holds the label of every valid status, so the request path
// does not allocate one.
var statusLabels = func() (s [600]string) {
	for i := 100; i < len(s); i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// statusLabel maps a status to its label. net/http accepts any three-digit
// code from an upstream; codes outside 100-599 share "other", which keeps
// the label set bounded even against a hostile PHP script.
func statusLabel(status int) string {
	if status >= 100 && status < len(statusLabels) {
		return statusLabels[status]
	}
	return "other"
}

// SessionEvent counts one session event (sessionbridge.Metrics). An event
// name this package does not know is counted too (it can only come from
// code, never from a request), but a typo shows up as its own series.
func (m *Metrics) SessionEvent(event string) {
	if c, ok := m.events[event]; ok {
		c.Inc()
	} else {
		m.sessionEvents.WithLabelValues(event).Inc()
	}
	if event == "store_error" {
		m.storeErrors.Inc()
	}
}

// LockWait records the time one request waited for its session's lock
// (sessionbridge.Metrics).
func (m *Metrics) LockWait(d time.Duration) {
	m.lockWait.Observe(max(d, 0).Seconds())
}

// RegisterPHPPool adds the FastCGI pool gauges. stats is called at every
// scrape (never on the request path) and must be safe for concurrent use:
// server.(*Server).PHPStats or fcgi.(*Transport).Stats. maxConns, when
// positive, is exported as each backend's connection limit
// (SESSIONGATE_PHP_MAX_CONNS), so that busy/max is the pool's saturation.
func (m *Metrics) RegisterPHPPool(stats func() []fcgi.BackendStats, maxConns int) error {
	if stats == nil {
		return errors.New("metrics: no PHP pool stats function")
	}
	if err := m.reg.Register(&poolCollector{stats: stats, maxConns: maxConns}); err != nil {
		return fmt.Errorf("metrics: PHP pool: %w", err)
	}
	return nil
}

var (
	poolConnsDesc = prometheus.NewDesc(Namespace+"_fcgi_connections",
		"FastCGI connections open to a php-fpm backend, by state: busy (carrying a request, held for one its client left until php-fpm answers it, checking a quiet backend, or being dialed) or idle (kept alive for the next request; each pins a php-fpm worker).",
		[]string{"backend", "state"}, nil)
	poolWaitingDesc = prometheus.NewDesc(Namespace+"_fcgi_waiting_requests",
		"Requests waiting for a free connection to a php-fpm backend (the pool is full).",
		[]string{"backend"}, nil)
	poolHealthyDesc = prometheus.NewDesc(Namespace+"_fcgi_backend_healthy",
		"1 while a php-fpm backend is in rotation, 0 while it is skipped after a failed dial or because it answers nothing.",
		[]string{"backend"}, nil)
	poolMaxDesc = prometheus.NewDesc(Namespace+"_fcgi_max_connections",
		"Most connections the gateway opens to a php-fpm backend (SESSIONGATE_PHP_MAX_CONNS).",
		[]string{"backend"}, nil)
)

// poolCollector reads the pool state at scrape time: the pool keeps exact
// counts under its own lock, so nothing is updated per request for metrics.
type poolCollector struct {
	stats    func() []fcgi.BackendStats
	maxConns int
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolConnsDesc
	ch <- poolWaitingDesc
	ch <- poolHealthyDesc
	if c.maxConns > 0 {
		ch <- poolMaxDesc
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	seen := make(map[string]bool)
	for _, b := range c.stats() {
		// The configuration refuses a backend listed twice; should one
		// slip through, a duplicate series would fail the whole scrape.
		if seen[b.Addr] {
			continue
		}
		seen[b.Addr] = true
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(b.Busy), b.Addr, "busy")
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(b.Idle), b.Addr, "idle")
		ch <- prometheus.MustNewConstMetric(poolWaitingDesc, prometheus.GaugeValue, float64(b.Waiting), b.Addr)
		healthy := 0.0
		if b.Healthy {
			healthy = 1
		}
		ch <- prometheus.MustNewConstMetric(poolHealthyDesc, prometheus.GaugeValue, healthy, b.Addr)
		if c.maxConns > 0 {
			ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(c.maxConns), b.Addr)
		}
	}
}

// RegisterDjangoBackends adds a gauge per Django backend, read at scrape
// time from stats (wsgi.(*Proxy).Backends): a gunicorn out of turn is
// otherwise seen only in the log line that took it out.
func (m *Metrics) RegisterDjangoBackends(stats func() []wsgi.BackendState) error {
	if err := m.reg.Register(&djangoBackendCollector{stats: stats}); err != nil {
		return fmt.Errorf("metrics: Django backends: %w", err)
	}
	return nil
}

var djangoBackendUpDesc = prometheus.NewDesc(Namespace+"_django_backend_healthy",
	"1 while a Django backend is in turn, 0 while it is skipped: after a refused or timed-out connect, or an answer that never came, until it answers the gateway's check (SESSIONGATE_DJANGO_CHECK_INTERVAL) or, with the checks off, for 10 s.",
	[]string{"backend"}, nil)

type djangoBackendCollector struct {
	stats func() []wsgi.BackendState
}

func (c *djangoBackendCollector) Describe(ch chan<- *prometheus.Desc) { ch <- djangoBackendUpDesc }

func (c *djangoBackendCollector) Collect(ch chan<- prometheus.Metric) {
	seen := make(map[string]bool)
	for _, b := range c.stats() {
		if seen[b.Name] {
			continue
		}
		seen[b.Name] = true
		up := 0.0
		if b.InTurn {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(djangoBackendUpDesc, prometheus.GaugeValue, up, b.Name)
	}
}

// RegisterGzipCache adds the gauges and counters of the static files'
// gzip cache (SESSIONGATE_COMPRESS_CACHE), read at scrape time from stats
// (server.(*Server).GzipCacheStats), so that an operator can tell whether
// the cache holds the site's assets: misses that keep growing under
// steady traffic mean it is too small.
func (m *Metrics) RegisterGzipCache(stats func() (compress.CacheStats, bool)) error {
	if err := m.reg.Register(&gzipCacheCollector{stats: stats}); err != nil {
		return fmt.Errorf("metrics: gzip cache: %w", err)
	}
	return nil
}

var (
	gzipCacheBytesDesc = prometheus.NewDesc(Namespace+"_static_gzip_cache_bytes",
		"Bytes of gzipped static files held in memory.", nil, nil)
	gzipCacheMaxDesc = prometheus.NewDesc(Namespace+"_static_gzip_cache_max_bytes",
		"Most bytes the gzip cache may hold (SESSIONGATE_COMPRESS_CACHE).", nil, nil)
	gzipCacheFilesDesc = prometheus.NewDesc(Namespace+"_static_gzip_cache_files",
		"Static files whose gzipped copy is held in memory.", nil, nil)
	gzipCacheLookupsDesc = prometheus.NewDesc(Namespace+"_static_gzip_cache_lookups_total",
		"Static files asked for gzipped, by result: hit (sent from memory), miss (compressed, then kept); sent uncompressed: busy (two compressions were running), too_large (over an eighth of the cache), failed (changed while compressed), uncached (a revalidation answered 304 found no copy).",
		[]string{"result"}, nil)
)

type gzipCacheCollector struct {
	stats func() (compress.CacheStats, bool)
}

func (c *gzipCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- gzipCacheBytesDesc
	ch <- gzipCacheMaxDesc
	ch <- gzipCacheFilesDesc
	ch <- gzipCacheLookupsDesc
}

func (c *gzipCacheCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.stats()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(gzipCacheBytesDesc, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(gzipCacheMaxDesc, prometheus.GaugeValue, float64(st.MaxBytes))
	ch <- prometheus.MustNewConstMetric(gzipCacheFilesDesc, prometheus.GaugeValue, float64(st.Files))
	ch <- prometheus.MustNewConstMetric(gzipCacheLookupsDesc, prometheus.CounterValue, float64(st.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(gzipCacheLookupsDesc, prometheus.CounterValue, float64(st.Misses), "miss")
	ch <- prometheus.MustNewConstMetric(gzipCacheLookupsDesc, prometheus.CounterValue, float64(st.Busy), "busy")
	ch <- prometheus.MustNewConstMetric(gzipCacheLookupsDesc, prometheus.CounterValue, float64(st.TooLarge), "too_large")
	ch <- prometheus.MustNewConstMetric(gzipCacheLookupsDesc, prometheus.CounterValue, float64(st.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(gzipCacheLookupsDesc, prometheus.CounterValue, float64(st.Uncached), "uncached")
}

// RegisterReadAhead adds the read-ahead budget's gauges and counter:
// used near max, or refusals growing, mean slow clients hold php-fpm
// workers or gunicorn threads again (SESSIONGATE_RESPONSE_BUFFERING_LIMIT).
func (m *Metrics) RegisterReadAhead(stats func() (used, max, refused int64)) error {
	if err := m.reg.Register(&readAheadCollector{stats: stats}); err != nil {
		return fmt.Errorf("metrics: read-ahead: %w", err)
	}
	return nil
}

var (
	readAheadBytesDesc = prometheus.NewDesc(Namespace+"_response_buffering_bytes",
		"Bytes responses read ahead of slow clients hold now, memory and temp files.", nil, nil)
	readAheadMaxDesc = prometheus.NewDesc(Namespace+"_response_buffering_limit_bytes",
		"Most bytes they may hold together (SESSIONGATE_RESPONSE_BUFFERING_LIMIT).", nil, nil)
	readAheadRefusedDesc = prometheus.NewDesc(Namespace+"_response_buffering_limit_reached_total",
		"Responses that found the limit reached and went on at their client's pace (each counted once).", nil, nil)
)

type readAheadCollector struct {
	stats func() (used, max, refused int64)
}

func (c *readAheadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- readAheadBytesDesc
	ch <- readAheadMaxDesc
	ch <- readAheadRefusedDesc
}

func (c *readAheadCollector) Collect(ch chan<- prometheus.Metric) {
	used, max, refused := c.stats()
	ch <- prometheus.MustNewConstMetric(readAheadBytesDesc, prometheus.GaugeValue, float64(used))
	ch <- prometheus.MustNewConstMetric(readAheadMaxDesc, prometheus.GaugeValue, float64(max))
	ch <- prometheus.MustNewConstMetric(readAheadRefusedDesc, prometheus.CounterValue, float64(refused))
}

// errorLog adapts slog to promhttp's Println logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) {
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "metrics scrape", slog.String("error", fmt.Sprint(v...)))
}

package metrics

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/internal/compress"
	"github.com/sessiongate/sessiongate/wsgi"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	return string(body)
}

func TestRequestMetrics(t *testing.T) {
	m := New(nil)
	m.ObserveRequest("php", 200, 100, 3*time.Millisecond)
	m.ObserveRequest("php", 200, 50, 700*time.Millisecond)
	m.ObserveRequest("php", 502, 0, 40*time.Second)
	m.ObserveRequest("static", 304, 0, 100*time.Microsecond)
	m.ObserveRequest("", 404, 10, time.Millisecond)
	m.ObserveRequest("django", 499, 0, time.Second)

	g := m.Gatherer()
	for _, c := range []struct {
		upstream, code string
		want           float64
	}{{"php", "200", 2}, {"php", "502", 1}, {"static", "304", 1}, {"gateway", "404", 1}, {"django", "499", 1}} {
		expect(t, g, "sessiongate_http_requests_total", labels{"upstream": c.upstream, "code": c.code}, c.want)
	}
	if n := seriesCount(t, g, "sessiongate_http_requests_total"); n != 5 {
		t.Errorf("%d request series, want 5", n)
	}
	expect(t, g, "sessiongate_http_response_bytes_total", labels{"upstream": "php"}, 150)
	expect(t, g, "sessiongate_http_response_bytes_total", labels{"upstream": "gateway"}, 10)
	expect(t, g, "sessiongate_http_response_bytes_total", labels{"upstream": "static"}, 0)
	expect(t, g, "sessiongate_http_response_bytes_total", labels{"upstream": "django"}, 0)
	if n := seriesCount(t, g, "sessiongate_http_response_bytes_total"); n != 4 {
		t.Errorf("%d byte series, want 4 (one per upstream)", n)
	}

	// The histogram, read from a real scrape: buckets are cumulative, the
	// 40 s request is only in +Inf.
	text := scrape(t, m)
	for _, line := range []string{
		`sessiongate_http_request_duration_seconds_bucket{upstream="php",le="0.0005"} 0`,
		`sessiongate_http_request_duration_seconds_bucket{upstream="php",le="0.005"} 1`,
		`sessiongate_http_request_duration_seconds_bucket{upstream="php",le="1"} 2`,
		`sessiongate_http_request_duration_seconds_bucket{upstream="php",le="30"} 2`,
		`sessiongate_http_request_duration_seconds_bucket{upstream="php",le="+Inf"} 3`,
		`sessiongate_http_request_duration_seconds_count{upstream="php"} 3`,
		`sessiongate_http_request_duration_seconds_bucket{upstream="static",le="0.0005"} 1`,
		`sessiongate_http_request_duration_seconds_count{upstream="django"} 1`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("scrape lacks %q", line)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "go_build_info", "promhttp_metric_handler_errors_total"} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

func TestStatusLabelsAreBounded(t *testing.T) {
	m := New(nil)
	for code := -5; code < 2000; code++ {
		m.ObserveRequest("php", code, 0, time.Millisecond)
	}
	if n := seriesCount(t, m.Gatherer(), "sessiongate_http_requests_total"); n != 500+1 { // 100..599 and "other"
		t.Errorf("%d series for 2005 distinct status values, want 501", n)
	}
	expect(t, m.Gatherer(), "sessiongate_http_requests_total", labels{"upstream": "php", "code": "other"}, 105+1400)
	for status, want := range map[int]string{100: "100", 200: "200", 599: "599", 600: "other", 99: "other", 0: "other"} {
		if got := statusLabel(status); got != want {
			t.Errorf("statusLabel(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestSessionMetrics(t *testing.T) {
	m := New(nil)
	// Every known event exists from the start, at zero.
	if n := seriesCount(t, m.Gatherer(), "sessiongate_session_events_total"); n != len(SessionEvents) {
		t.Errorf("%d event series before any event, want %d", n, len(SessionEvents))
	}
	for _, e := range []string{"load", "load", "save", "store_error", "lock_timeout", "store_error", "conflict"} {
		m.SessionEvent(e)
	}
	m.LockWait(2 * time.Millisecond)
	m.LockWait(3 * time.Second)
	m.LockWait(-time.Second) // a clock step back counts as no wait

	g := m.Gatherer()
	for e, want := range map[string]float64{"load": 2, "load_absent": 0, "save": 1, "touch": 0, "destroy": 0, "conflict": 1, "lock_timeout": 1, "store_error": 2} {
		expect(t, g, "sessiongate_session_events_total", labels{"event": e}, want)
	}
	expect(t, g, "sessiongate_session_store_errors_total", nil, 2)
	h := histogram(t, g, "sessiongate_session_lock_wait_seconds", nil)
	if h.GetSampleCount() != 3 || h.GetSampleSum() < 3.0019 || h.GetSampleSum() > 3.0021 {
		t.Errorf("lock wait count %d sum %v, want 3 and 3.002", h.GetSampleCount(), h.GetSampleSum())
	}
	wantCum := map[float64]uint64{0.0005: 1, 0.001: 1, 0.0025: 2, 2.5: 2, 5: 3, 30: 3}
	for _, b := range h.GetBucket() {
		if w, ok := wantCum[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("lock wait bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	if len(h.GetBucket()) != len(LatencyBuckets) {
		t.Errorf("%d buckets, want %d", len(h.GetBucket()), len(LatencyBuckets))
	}
}

func TestDjangoBackendGauges(t *testing.T) {
	m := New(nil)
	calls := 0
	err := m.RegisterDjangoBackends(func() []wsgi.BackendState {
		calls++
		return []wsgi.BackendState{
			{Name: "http://127.0.0.1:8000", InTurn: true},
			{Name: "unix:/run/gunicorn.sock", InTurn: false},
			{Name: "http://127.0.0.1:8000", InTurn: false}, // duplicate: must not break the scrape
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Errorf("stats read %d times before any scrape", calls)
	}
	g := m.Gatherer()
	expect(t, g, "sessiongate_django_backend_healthy", labels{"backend": "http://127.0.0.1:8000"}, 1)
	expect(t, g, "sessiongate_django_backend_healthy", labels{"backend": "unix:/run/gunicorn.sock"}, 0)
}

func TestPHPPoolGauges(t *testing.T) {
	m := New(nil)
	var mu sync.Mutex
	stats := []fcgi.BackendStats{
		{Addr: "php:9000", Open: 5, Idle: 2, Busy: 3, Waiting: 1, Healthy: true},
		{Addr: "unix:/run/php/fpm.sock", Open: 0, Healthy: false},
		{Addr: "php:9000", Open: 7, Busy: 7}, // duplicate: must not break the scrape
	}
	calls := 0
	err := m.RegisterPHPPool(func() []fcgi.BackendStats {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return stats
	}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Errorf("stats read %d times before any scrape", calls)
	}
	g := m.Gatherer()
	for name, want := range map[string]float64{"busy": 3, "idle": 2} {
		expect(t, g, "sessiongate_fcgi_connections", labels{"backend": "php:9000", "state": name}, want)
		expect(t, g, "sessiongate_fcgi_connections", labels{"backend": "unix:/run/php/fpm.sock", "state": name}, 0)
	}
	expect(t, g, "sessiongate_fcgi_waiting_requests", labels{"backend": "php:9000"}, 1)
	expect(t, g, "sessiongate_fcgi_waiting_requests", labels{"backend": "unix:/run/php/fpm.sock"}, 0)
	expect(t, g, "sessiongate_fcgi_backend_healthy", labels{"backend": "php:9000"}, 1)
	expect(t, g, "sessiongate_fcgi_backend_healthy", labels{"backend": "unix:/run/php/fpm.sock"}, 0)
	expect(t, g, "sessiongate_fcgi_max_connections", labels{"backend": "php:9000"}, 8)
	if n := seriesCount(t, g, "sessiongate_fcgi_connections"); n != 4 {
		t.Errorf("%d connection series, want 4", n)
	}
	for _, mf := range gather(t, g) {
		if mf.GetType() != dto.MetricType_GAUGE && strings.HasPrefix(mf.GetName(), "sessiongate_fcgi_") {
			t.Errorf("%s is a %v, want a gauge", mf.GetName(), mf.GetType())
		}
	}

	// Read at scrape time: a change shows at the next scrape.
	mu.Lock()
	stats = []fcgi.BackendStats{{Addr: "php:9000", Open: 1, Idle: 1, Healthy: true}}
	mu.Unlock()
	text := scrape(t, m)
	if !strings.Contains(text, `sessiongate_fcgi_connections{backend="php:9000",state="idle"} 1`+"\n") ||
		strings.Contains(text, "unix:/run/php/fpm.sock") {
		t.Errorf("scrape did not read the new pool state:\n%s", grep(text, "sessiongate_fcgi"))
	}

	if err := m.RegisterPHPPool(func() []fcgi.BackendStats { return nil }, 0); err == nil {
		t.Error("a second pool collector was accepted")
	}
	if err := New(nil).RegisterPHPPool(nil, 0); err == nil {
		t.Error("nil stats accepted")
	}
}

// TestReadAheadMetrics: the read-ahead budget is read at scrape time.
func TestReadAheadMetrics(t *testing.T) {
	m := New(nil)
	if err := m.RegisterReadAhead(func() (int64, int64, int64) { return 5000, 1 << 30, 7 }); err != nil {
		t.Fatal(err)
	}
	g := m.Gatherer()
	expect(t, g, "sessiongate_response_buffering_bytes", labels{}, 5000)
	expect(t, g, "sessiongate_response_buffering_limit_bytes", labels{}, 1<<30)
	expect(t, g, "sessiongate_response_buffering_limit_reached_total", labels{}, 7)
}

// TestGzipCacheMetrics: the static files' gzip cache is read at scrape
// time, and a gateway without one exposes none of its series.
func TestGzipCacheMetrics(t *testing.T) {
	m := New(nil)
	on := true
	st := compress.CacheStats{Files: 3, Bytes: 9000, MaxBytes: 32 << 20, Hits: 40, Misses: 3, Busy: 1, TooLarge: 2, Failed: 4, Uncached: 5}
	if err := m.RegisterGzipCache(func() (compress.CacheStats, bool) { return st, on }); err != nil {
		t.Fatal(err)
	}
	g := m.Gatherer()
	expect(t, g, "sessiongate_static_gzip_cache_bytes", labels{}, 9000)
	expect(t, g, "sessiongate_static_gzip_cache_max_bytes", labels{}, 32<<20)
	expect(t, g, "sessiongate_static_gzip_cache_files", labels{}, 3)
	for result, want := range map[string]float64{"hit": 40, "miss": 3, "busy": 1, "too_large": 2, "failed": 4, "uncached": 5} {
		expect(t, g, "sessiongate_static_gzip_cache_lookups_total", labels{"result": result}, want)
	}
	on = false
	if n := seriesCount(t, g, "sessiongate_static_gzip_cache_files"); n != 0 {
		t.Errorf("%d series without a cache", n)
	}
}

// TestLint runs promlint over everything the registry exposes: names,
// units and help texts follow the Prometheus conventions.
func TestLint(t *testing.T) {
	m := New(nil)
	m.ObserveRequest("php", 200, 1, time.Millisecond)
	m.SessionEvent("load")
	m.LockWait(time.Millisecond)
	if err := m.RegisterPHPPool(func() []fcgi.BackendStats { return []fcgi.BackendStats{{Addr: "a:1"}} }, 4); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterGzipCache(func() (compress.CacheStats, bool) { return compress.CacheStats{Files: 1}, true }); err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(gather(t, m.Gatherer())).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, Namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// TestRegistriesAreIndependent: two gateways in one process (as in the
// integration tests) each count their own requests.
func TestRegistriesAreIndependent(t *testing.T) {
	a, b := New(nil), New(nil)
	a.ObserveRequest("php", 200, 0, time.Millisecond)
	if n := seriesCount(t, b.Gatherer(), "sessiongate_http_requests_total"); n != 0 {
		t.Errorf("second registry has %d request series", n)
	}
	expect(t, a.Gatherer(), "sessiongate_http_requests_total", labels{"upstream": "php", "code": "200"}, 1)
}

func TestConcurrentObserveAndScrape(t *testing.T) {
	m := New(slog.New(slog.DiscardHandler))
	if err := m.RegisterPHPPool(func() []fcgi.BackendStats { return []fcgi.BackendStats{{Addr: "a:1"}} }, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				m.ObserveRequest("php", 200+i%3, 1, time.Millisecond)
				m.SessionEvent("save")
				m.LockWait(time.Microsecond)
			}
		}()
	}
	for i := 0; i < 5; i++ {
		scrape(t, m)
	}
	wg.Wait()
	g := m.Gatherer()
	for c := 200; c < 203; c++ {
		want := 4.0 * 166
		if c == 200 || c == 201 {
			want = 4 * 167
		}
		expect(t, g, "sessiongate_http_requests_total", labels{"upstream": "php", "code": fmt.Sprint(c)}, want)
	}
	expect(t, g, "sessiongate_session_events_total", labels{"event": "save"}, 2000)
	if h := histogram(t, g, "sessiongate_http_request_duration_seconds", labels{"upstream": "php"}); h.GetSampleCount() != 2000 {
		t.Errorf("duration count %d, want 2000", h.GetSampleCount())
	}
}

func grep(text, substr string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("php", 200, 1234, 3*time.Millisecond)
		}
	})
}

type labels map[string]string

func gather(t *testing.T, g prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return mfs
}

func family(t *testing.T, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	for _, mf := range gather(t, g) {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

func seriesCount(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	return len(family(t, g, name).GetMetric())
}

// metric finds the series of name whose labels are exactly want.
func metric(t *testing.T, g prometheus.Gatherer, name string, want labels) *dto.Metric {
	t.Helper()
	for _, m := range family(t, g, name).GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		ok := true
		for _, lp := range m.GetLabel() {
			if v, has := want[lp.GetName()]; !has || v != lp.GetValue() {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
	t.Errorf("no series %s%v", name, want)
	return nil
}

// expect checks the value of a counter or gauge series.
func expect(t *testing.T, g prometheus.Gatherer, name string, l labels, want float64) {
	t.Helper()
	m := metric(t, g, name, l)
	if m == nil {
		return
	}
	var got float64
	switch {
	case m.Counter != nil:
		got = m.GetCounter().GetValue()
	case m.Gauge != nil:
		got = m.GetGauge().GetValue()
	default:
		t.Errorf("%s%v is neither a counter nor a gauge", name, l)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, l, got, want)
	}
}

func histogram(t *testing.T, g prometheus.Gatherer, name string, l labels) *dto.Histogram {
	t.Helper()
	m := metric(t, g, name, l)
	if m.GetHistogram() == nil {
		t.Fatalf("%s%v: no histogram", name, l)
	}
	return m.GetHistogram()
}

package fcgi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitHealthy waits until backend i's Healthy is want, failing after d.
func waitHealthy(t *testing.T, tr *Transport, i int, want bool, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for tr.Stats()[i].Healthy != want {
		if time.Now().After(deadline) {
			t.Fatalf("backend %d: Healthy still %v after %v", i, !want, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A backend that accepts connections and answers nothing (a php-fpm whose
// master and workers are stopped or frozen) costs one request its timeout,
// then stays out of rotation, though it still accepts connections, until it
// answers again. Before, every second request waited the whole timeout.
func TestSilentBackendLeavesRotationUntilItAnswers(t *testing.T) {
	silent := newFakeServer(t, helloHandler)
	live := newFakeServer(t, helloHandler)
	silent.frozen.Store(true)
	tr, logs := newTransport(t, Options{ReadTimeout: 300 * time.Millisecond}, silent.Addr(), live.Addr())
	codes := map[int]int{}
	for i := 0; i < 12; i++ {
		res, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
		if err != nil {
			codes[StatusOf(err)]++
			// The probe that confirms the silence runs after the 504.
			waitHealthy(t, tr, 0, false, 3*time.Second)
			continue
		}
		codes[res.StatusCode]++
	}
	if codes[504] != 1 || codes[200] != 11 {
		t.Fatalf("12 requests with one backend silent: %v, want one 504 and eleven 200", codes)
	}
	if !strings.Contains(logs.String(), "answers nothing; out of rotation") || !strings.Contains(logs.String(), silent.Addr()) {
		t.Fatalf("no log line naming the silent backend:\n%s", logs)
	}
	// It accepts connections all along: a dial alone must not bring it
	// back (the probe dials every second).
	time.Sleep(probeEvery + probeEvery/2)
	if tr.Stats()[0].Healthy {
		t.Fatal("the silent backend is back in rotation without having answered")
	}
	silent.frozen.Store(false)
	waitHealthy(t, tr, 0, true, probeEvery+answerProbeWait+time.Second)
	if !strings.Contains(logs.String(), "answers again; back in rotation") {
		t.Fatalf("no log line for the backend's return:\n%s", logs)
	}
	before := silent.served.Load()
	for i := 0; i < 6; i++ {
		if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if silent.served.Load() == before {
		t.Fatal("the backend that answers again gets no request")
	}
}

// A script slower than ReadTimeout on a backend that has a worker free
// gets its 504 and leaves the backend in rotation: the probe is answered.
func TestSlowScriptKeepsItsBackendInRotation(t *testing.T) {
	slow := func(c *fakeConn, r *fakeRequest) bool {
		if r.Params["REQUEST_URI"] == "/slow" {
			time.Sleep(time.Second)
		}
		respond(c, "", "ok")
		return true
	}
	a := newFakeServer(t, slow)
	b := newFakeServer(t, slow)
	tr, logs := newTransport(t, Options{ReadTimeout: 300 * time.Millisecond}, a.Addr(), b.Addr())
	for i := 0; i < 2; i++ { // one slow request on each backend
		if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/slow", nil, nil)); StatusOf(err) != 504 {
			t.Fatalf("slow script: %v, want 504", err)
		}
	}
	for deadline := time.Now().Add(time.Second); a.probes.Load()+b.probes.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d probes after two timeouts, want 2", a.probes.Load()+b.probes.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	for i, st := range tr.Stats() {
		if !st.Healthy {
			t.Fatalf("backend %d out of rotation after a slow script", i)
		}
	}
	if strings.Contains(logs.String(), "answers nothing") {
		t.Fatalf("a slow script was taken for a silent backend:\n%s", logs)
	}
}

// A backend that answered another request while one waited out its
// timeout is not silent: no probe is even sent.
func TestTimeoutWhileOtherRequestsAreAnsweredIsNoSilence(t *testing.T) {
	h := func(c *fakeConn, r *fakeRequest) bool {
		if r.Params["REQUEST_URI"] == "/slow" {
			time.Sleep(600 * time.Millisecond)
		}
		respond(c, "", "ok")
		return true
	}
	srv := newFakeServer(t, h)
	tr, _ := newTransport(t, Options{ReadTimeout: 300 * time.Millisecond}, srv.Addr())
	done := make(chan error, 1)
	go func() {
		_, _, err := roundTrip(t, tr, newReq(nil, "GET", "/slow", nil, nil))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; StatusOf(err) != 504 {
		t.Fatalf("slow script: %v, want 504", err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := srv.probes.Load(); n != 0 {
		t.Fatalf("%d probes, want none: the backend answered meanwhile", n)
	}
}

// Ping (readiness) fails while the only backend is silent, though it
// accepts connections, and passes once it answers again.
func TestPingFailsWhileTheBackendIsSilent(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{ReadTimeout: 300 * time.Millisecond}, srv.Addr())
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
		t.Fatal(err)
	}
	srv.frozen.Store(true)
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); StatusOf(err) != 504 {
		t.Fatalf("frozen backend: %v, want 504", err)
	}
	waitHealthy(t, tr, 0, false, 3*time.Second)
	// A request's fresh connection to it is no sign of life either.
	b := tr.backends[0]
	c, _, err := b.acquire(context.Background(), time.Second, true)
	if err != nil {
		t.Fatalf("dial the silent backend: %v", err)
	}
	b.discard(c)
	if tr.Stats()[0].Healthy {
		t.Fatal("a successful dial brought the silent backend back")
	}
	time.Sleep(time.Second) // past Ping's "answered within the last second"
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = tr.Ping(ctx)
	cancel()
	if err == nil {
		t.Fatal("Ping passed with the only backend silent")
	}
	// The only backend is still tried (and waited for) by requests.
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); StatusOf(err) != 504 {
		t.Fatalf("frozen backend, second request: %v, want 504", err)
	}
	srv.frozen.Store(false)
	if err := tr.Ping(context.Background()); err != nil {
		t.Fatalf("Ping once the backend answers: %v", err)
	}
	if res, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || res.StatusCode != http.StatusOK || body == "" {
		t.Fatalf("after the thaw: %v %v %q", res, err, body)
	}
}

// Requests that time out together on a silent backend share one probe.
func TestRequestsTimingOutTogetherShareOneProbe(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	srv.frozen.Store(true)
	tr, _ := newTransport(t, Options{ReadTimeout: 300 * time.Millisecond}, srv.Addr())
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); StatusOf(err) != 504 {
				t.Errorf("frozen backend: %v, want 504", err)
			}
		}()
	}
	wg.Wait()
	// Before the probe's 2 s are up, so before probeUntilUp starts.
	time.Sleep(time.Second)
	if n := srv.accepted.Load(); n != 5 {
		t.Fatalf("%d connections for 4 requests that timed out together, want 5 (one probe)", n)
	}
}

// A php-fpm that freezes while no request goes to it is found by the
// readiness check, which asks a worker to answer, not by the next
// request's 504: Ping passes on the other backend, the frozen one leaves
// rotation, and no request waits for it.
func TestPingFindsABackendThatFrozeWithoutTraffic(t *testing.T) {
	frozen := newFakeServer(t, helloHandler)
	live := newFakeServer(t, helloHandler)
	frozen.frozen.Store(true)
	tr, logs := newTransport(t, Options{ReadTimeout: 5 * time.Second}, frozen.Addr(), live.Addr())
	if err := tr.Ping(context.Background()); err != nil {
		t.Fatalf("Ping with the second backend answering: %v", err)
	}
	waitHealthy(t, tr, 0, false, answerProbeWait+time.Second)
	waitFor(t, "a log line naming the frozen backend and the readiness check", func() bool {
		return strings.Contains(logs.String(), "found_by=\"readiness check\"") && strings.Contains(logs.String(), frozen.Addr())
	})
	for i := 0; i < 6; i++ {
		if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
			t.Fatalf("request %d with the frozen backend out: %v", i, err)
		}
	}
	frozen.frozen.Store(false)
	waitHealthy(t, tr, 0, true, probeEvery+answerProbeWait+time.Second)
}

// With a single backend frozen before any request, readiness fails.
func TestPingFailsWhenTheOnlyBackendFrozeWithoutTraffic(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	srv.frozen.Store(true)
	tr, _ := newTransport(t, Options{}, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), answerProbeWait+time.Second)
	defer cancel()
	if err := tr.Ping(ctx); err == nil || !strings.Contains(err.Error(), "FCGI_GET_VALUES") {
		t.Fatalf("Ping with the only backend frozen: %v, want an unanswered FCGI_GET_VALUES", err)
	}
	if tr.Stats()[0].Healthy {
		t.Fatal("the frozen backend is still in rotation")
	}
}

// Probes keep to MaxConnsPerBackend, and on a pool whose workers are all
// held by the transport's idle kept-alive connections (as many connections
// as pm.max_children) they are still answered: a probe takes an idle
// connection's slot and closes it, which frees its worker. A probe on a
// connection of its own, beyond the limit, waited unanswered in the listen
// queue, so readiness failed and the healthy backend left rotation.
func TestProbesKeepToMaxConnsAndFreeAWorker(t *testing.T) {
	const workers = 2
	srv := newWorkersFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		time.Sleep(50 * time.Millisecond) // so that the two requests overlap
		return helloHandler(c, r)
	}, workers)
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: workers}, srv.Addr())
	idleOnEveryWorker(t, tr, workers)
	time.Sleep(time.Second + 100*time.Millisecond) // past Ping's "answered within the last second"
	ctx, cancel := context.WithTimeout(context.Background(), answerProbeWait+time.Second)
	err := tr.Ping(ctx)
	cancel()
	if err != nil {
		t.Fatalf("Ping on a healthy pool whose workers the idle connections hold: %v", err)
	}
	if !tr.Stats()[0].Healthy {
		t.Fatal("the healthy backend left rotation")
	}
	if n := srv.probes.Load(); n != 1 {
		t.Fatalf("%d probes answered, want 1", n)
	}
	// The probe's slot was an idle connection's, now closed.
	if st := tr.Stats()[0]; st.Open != workers-1 || st.Idle != workers-1 {
		t.Fatalf("stats %+v after the probe, want %d open and idle", st, workers-1)
	}
}

// A script that outlives ReadTimeout on a pool whose other workers are
// held by idle kept-alive connections leaves its backend in rotation: the
// probe that tells silence from slowness frees one of them and is
// answered, without a connection beyond MaxConnsPerBackend.
func TestSlowScriptWithIdleConnsKeepsItsBackend(t *testing.T) {
	const workers = 2
	release := make(chan struct{})
	srv := newWorkersFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		if r.Params["REQUEST_URI"] == "/slow" {
			<-release
		} else {
			time.Sleep(50 * time.Millisecond) // so that the first two overlap
		}
		return helloHandler(c, r)
	}, workers)
	defer close(release)
	tr, logs := newTransport(t, Options{MaxConnsPerBackend: workers, ReadTimeout: 300 * time.Millisecond}, srv.Addr())
	idleOnEveryWorker(t, tr, workers)
	// It takes one idle connection; the other holds the second worker.
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/slow", nil, nil)); StatusOf(err) != 504 {
		t.Fatalf("slow script: %v, want 504", err)
	}
	waitFor(t, "the probe's answer", func() bool { return srv.probes.Load() == 1 })
	time.Sleep(100 * time.Millisecond)
	if !tr.Stats()[0].Healthy || strings.Contains(logs.String(), "answers nothing") {
		t.Fatalf("a slow script took its backend out:\n%s", logs)
	}
	if st := tr.Stats()[0]; st.Open != 0 {
		t.Fatalf("stats %+v, want no connection open: the slow one was dropped and the idle one gave its slot to the probe", st)
	}
}

// Ping does not take a backend out whose every connection carries a
// request: their own timeouts judge it.
func TestPingWithEveryConnectionBusy(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		<-release
		return helloHandler(c, r)
	})
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: 1, ReadTimeout: 10 * time.Second}, srv.Addr())
	done := make(chan error, 1)
	go func() {
		_, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
		done <- err
	}()
	waitFor(t, "the request to reach the backend", func() bool { return len(srv.Requests()) == 1 })
	if err := tr.Ping(context.Background()); err != nil {
		t.Fatalf("Ping with the only connection busy: %v", err)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1: Ping went beyond MaxConnsPerBackend", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// idleOnEveryWorker leaves n kept-alive connections idle, one on each of
// the n workers of a fake server whose handler for "/" takes long enough
// for n requests at once to overlap.
// Tried again when the requests did not overlap, or when the transport
// closed a connection because another's answer took over starveAfter to
// begin (a loaded machine).
func idleOnEveryWorker(t *testing.T, tr *Transport, n int) {
	t.Helper()
	for try := 0; ; try++ {
		getAtOnce(t, tr, n)
		st := tr.Stats()[0]
		if st.Idle == n {
			return
		}
		if try == 10 {
			t.Fatalf("stats %+v after %d tries, want %d idle connections holding every worker", st, try+1, n)
		}
	}
}

// A probe that finds every slot taken waits for the next one given back,
// ahead of the requests already waiting: behind them, on a backend whose
// every connection is stuck, it would wait out their timeouts too. The
// waiting request is served once the probe is done.
func TestProbeWaitsForASlotAheadOfRequests(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		if r.Params["REQUEST_URI"] == "/slow" {
			<-release
		}
		return helloHandler(c, r)
	})
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: 1, ReadTimeout: 10 * time.Second}, srv.Addr())
	b := tr.backends[0]
	slow := make(chan error, 1)
	go func() {
		_, _, err := roundTrip(t, tr, newReq(nil, "GET", "/slow", nil, nil))
		slow <- err
	}()
	waitFor(t, "the slow request to reach the backend", func() bool { return len(srv.Requests()) == 1 })
	queued := make(chan error, 1)
	go func() {
		_, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil))
		queued <- err
	}()
	waitFor(t, "a request waiting for the only connection", func() bool { return tr.Stats()[0].Waiting == 1 })
	probed := make(chan error, 1)
	go func() { probed <- b.probeAnswer(context.Background(), true) }()
	waitFor(t, "the probe waiting too", func() bool { return tr.Stats()[0].Waiting == 2 })
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("slow request: %v", err)
	}
	if err := <-probed; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := <-queued; err != nil {
		t.Fatalf("queued request: %v", err)
	}
	if n := srv.probes.Load(); n != 1 {
		t.Fatalf("%d probes answered, want 1", n)
	}
	// The probe went first: the queued request came after it, on a
	// connection of its own (the probe closed the one it was handed).
	if n := srv.accepted.Load(); n != 3 {
		t.Fatalf("%d connections accepted, want 3 (slow request, probe, queued request)", n)
	}
	if st := tr.Stats()[0]; st.Open != 1 || st.Idle != 1 {
		t.Fatalf("stats %+v, want the queued request's connection alone, idle", st)
	}
}

package fcgi

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A backend that froze while no request went to it leaves rotation by
// the periodic check alone, with no Ping and no request waiting out its
// timeout; requests then go to the other backend without a 504. Before
// CheckInterval, it stayed in rotation until a request found it (with
// the 60 s timeout) or a /readyz poll did.
func TestCheckIntervalFindsABackendThatFrozeWithoutTraffic(t *testing.T) {
	frozen := newFakeServer(t, helloHandler)
	live := newFakeServer(t, helloHandler)
	tr, logs := newTransport(t, Options{ReadTimeout: time.Minute, CheckInterval: 200 * time.Millisecond}, frozen.Addr(), live.Addr())
	frozen.frozen.Store(true)
	waitHealthy(t, tr, 0, false, 200*time.Millisecond+answerProbeWait+2*time.Second)
	// The line follows the flag that takes the backend out.
	waitFor(t, "the periodic check's log line", func() bool { return strings.Contains(logs.String(), `found_by="periodic check"`) })
	if line := logs.String(); !strings.Contains(line, "answers nothing; out of rotation") ||
		!strings.Contains(line, frozen.Addr()) || !strings.Contains(line, `found_by="periodic check"`) {
		t.Fatalf("no log line naming the frozen backend and the periodic check:\n%s", line)
	}
	if !tr.Stats()[1].Healthy {
		t.Fatal("the live backend left rotation too")
	}
	for i := 0; i < 6; i++ {
		start := time.Now()
		if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
			t.Fatalf("request %d with the frozen backend out: %v", i, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("request %d took %v: it waited on the frozen backend", i, d)
		}
	}
	frozen.frozen.Store(false)
	waitHealthy(t, tr, 0, true, probeEvery+answerProbeWait+time.Second)
}

// A backend that answers requests more often than CheckInterval gets no
// check: its requests' own timeouts judge it, and a probe would cost it a
// connection. A quiet one is checked about once per interval, and only
// while it stays quiet.
func TestCheckIntervalLeavesBusyBackendsAlone(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	const interval = 500 * time.Millisecond
	tr, logs := newTransport(t, Options{CheckInterval: interval}, srv.Addr())
	for end := time.Now().Add(4 * interval); time.Now().Before(end); time.Sleep(interval / 25) {
		if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.probes.Load(); n != 0 {
		t.Fatalf("%d checks of a backend that answered a request every %v", n, interval/25)
	}
	time.Sleep(4*interval + interval/2)
	// Quiet for 4.5 intervals: 4 ticks, the first of which finds the last
	// answer less than an interval old, so 3 checks; 2 to 5 allows for a
	// loaded machine's late ticks.
	if n := srv.probes.Load(); n < 2 || n > 5 {
		t.Fatalf("%d checks of a backend quiet for %v with CheckInterval %v, want about 3", n, 4*interval+interval/2, interval)
	}
	if strings.Contains(logs.String(), "answers nothing") {
		t.Fatalf("a backend that answers its checks was taken out:\n%s", logs)
	}
	tr.Close()
	time.Sleep(interval / 2)
	after := srv.probes.Load()
	time.Sleep(2 * interval)
	if n := srv.probes.Load(); n != after {
		t.Fatalf("%d checks after Close", n-after)
	}
}

// A backend that hangs with a request in flight and a connection slot
// free is found by the periodic check too, without waiting for that
// request's timeout: it has answered nothing for the interval, and the
// probe in the free slot goes unanswered.
func TestCheckIntervalFindsABackendThatHungUnderARequest(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	tr, logs := newTransport(t, Options{ReadTimeout: time.Minute, MaxConnsPerBackend: 4, CheckInterval: 300 * time.Millisecond}, srv.Addr())
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
		t.Fatal(err)
	}
	srv.frozen.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := roundTrip(t, tr, newReq(ctx, "GET", "/", nil, nil))
		done <- err
	}()
	waitHealthy(t, tr, 0, false, 300*time.Millisecond+answerProbeWait+2*time.Second)
	select {
	case err := <-done:
		t.Fatalf("the request on the hung backend ended before it was found: %v", err)
	default:
	}
	waitFor(t, "the periodic check's log line", func() bool { return strings.Contains(logs.String(), `found_by="periodic check"`) })
	cancel()
	<-done
}

package integration

import (
	"fmt"
	"testing"
	"time"
)

// poll calls cond until it returns true or timeout has passed, and tells
// whether it did. The servers under test act in their own processes and
// goroutines (a log line, a file a script touches, a restarted Redis), so
// a test waits for what it needs to see instead of sleeping a guessed
// delay, and every wait is bounded by the same rule: cond runs at once,
// then after pauses growing from 5 ms to 100 ms (quick for what is nearly
// there, gentle on a backend that is still coming back), and once more
// when timeout has passed. A test that fails with its own message calls
// poll; one with nothing more to say calls eventually.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left < 0 {
			return false
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// eventually is poll that fails the test (Fatalf) when cond did not hold
// within timeout, the message saying what it waited for: what reads after
// "waited 10s for", e.g. "hold.php to take the session's lock".
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("waited %v for %s", timeout, what)
	}
}

func TestPollReturnsOnceCondHolds(t *testing.T) {
	t.Parallel()
	calls := 0
	start := time.Now()
	if !poll(10*time.Second, func() bool { calls++; return calls == 3 }) {
		t.Fatal("poll gave up although cond held on its third call")
	}
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("poll took %v to see a cond that held at once the third time", d)
	}
}

func TestPollGivesUpAfterTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	calls := 0
	var last time.Time
	start := time.Now()
	if poll(timeout, func() bool { calls++; last = time.Now(); return false }) {
		t.Fatal("poll reported a cond that never held")
	}
	if d := last.Sub(start); d < timeout {
		t.Errorf("last call %v after the start, want one at the timeout (%v)", d, timeout)
	}
	if d := time.Since(start); d > timeout+time.Second {
		t.Errorf("poll gave up %v after the start, timeout %v", d, timeout)
	}
	if calls < 3 {
		t.Errorf("cond called %d times in %v", calls, timeout)
	}
}

// fakeTB records what eventually reports instead of failing the test that
// runs it.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestEventually(t *testing.T) {
	t.Parallel()
	held := &fakeTB{}
	eventually(held, time.Second, "a cond that holds", func() bool { return true })
	if held.failed != "" {
		t.Errorf("failed although cond held: %s", held.failed)
	}
	never := &fakeTB{}
	eventually(never, 50*time.Millisecond, "the moon to turn blue", func() bool { return false })
	if want := "waited 50ms for the moon to turn blue"; never.failed != want {
		t.Errorf("failure %q, want %q", never.failed, want)
	}
}

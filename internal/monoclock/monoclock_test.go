package monoclock

import (
	"testing"
	"time"
)

// A reading is the wall clock's time while the wall clock is not
// stepped, and moves with real time.
func TestNowFollowsRealTime(t *testing.T) {
	a := Now()
	if d := time.Duration(a - time.Now().UnixNano()); d < -time.Second || d > time.Second {
		t.Fatalf("Now is %v off the wall clock", d)
	}
	time.Sleep(20 * time.Millisecond)
	if d := time.Duration(Now() - a); d < 20*time.Millisecond || d > 5*time.Second {
		t.Fatalf("20 ms later Now moved %v", d)
	}
}

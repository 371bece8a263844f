package wsgi

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// A back-off (SESSIONGATE_FAIL_TIMEOUT, checks off) lasts its time on the
// monotonic clock: the host's wall clock stepped back an hour during it
// (an NTP step, a VM restored) kept the backend out of turn for the hour
// as well, and every request on the other backends.
func TestBackoffEndsOnTimeAcrossAWallClockStepBack(t *testing.T) {
	wall, mono := time.Unix(1_800_000_000, 0), time.Unix(1_800_000_000, 0)
	a, _ := parseBackend(0, "http://127.0.0.1:1")
	b, _ := parseBackend(1, "http://127.0.0.1:2")
	p := &pool{backends: []*backend{a, b}, failTimeout: 10 * time.Second,
		now:  func() time.Time { return wall },
		mono: func() int64 { return mono.UnixNano() },
		log:  slog.New(slog.NewTextHandler(io.Discard, nil))}
	proxy := &Proxy{pool: p}
	p.markDown(a, errors.New("connection refused"), "request")
	if st := proxy.Backends(); st[0].InTurn {
		t.Fatalf("just marked down, the backend is in turn: %+v", st)
	}
	// The wall clock steps back an hour; 30 real seconds pass.
	wall = wall.Add(-time.Hour + 30*time.Second)
	mono = mono.Add(30 * time.Second)
	if st := proxy.Backends(); !st[0].InTurn {
		t.Errorf("30 s after a 10 s back-off (the wall clock stepped back an hour meanwhile) the backend is out of turn: %+v", st)
	}
	last := 0
	for range 4 {
		if order := p.order(); order[len(order)-1] == a {
			last++
		}
	}
	if last == 4 {
		t.Errorf("30 s after a 10 s back-off the backend was tried last by all 4 requests")
	}
}

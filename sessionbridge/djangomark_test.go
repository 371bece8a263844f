package sessionbridge

import (
	"strings"
	"testing"
	"time"
)

// The Django set-up warnings share the PHP ones' once-a-minute clock
// (dueAgain): every response is counted, a line is logged again only a
// minute later, and the warnings do not hold each other back.
func TestDjangoWarningsOnceAMinute(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	logs := captureLog(m)
	mc := &eventCounter{}
	m.o.Metrics = mc
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	m.mono = func() int64 { return now.UnixNano() }
	for range 3 {
		m.DjangoMiddlewareMissing("/accounts/", 200, "http://django:8000")
		m.DjangoSessionRefused("refused-clock", "/accounts/", 200, "http://django:8000", time.Second)
		m.DjangoRawIDCookie("/accounts/", []string{"django_sid"})
	}
	if a, b, c := strings.Count(logs.String(), "without sessiongate_django's middleware"), strings.Count(logs.String(), "refused the gateway's session"),
		strings.Count(logs.String(), "cookie holding the raw session ID"); a != 1 || b != 1 || c != 1 {
		t.Fatalf("%d, %d and %d lines in a minute, want 1 each:\n%s", a, b, c, logs)
	}
	if !strings.Contains(logs.String(), "NTP") || !strings.Contains(logs.String(), "http://django:8000") {
		t.Errorf("the lines name neither the clock nor the backend:\n%s", logs)
	}
	if a, b := mc.count("django_middleware_missing"), mc.count("django_signature_rejected"); a != 3 || b != 3 {
		t.Errorf("counted %d and %d, want 3 each", a, b)
	}
	now = now.Add(time.Minute)
	m.DjangoMiddlewareMissing("/accounts/", 200, "http://django:8000")
	if n := strings.Count(logs.String(), "without sessiongate_django's middleware"); n != 2 {
		t.Errorf("a minute later: %d lines, want 2", n)
	}
}

func TestDjangoMiddlewareExpected(t *testing.T) {
	for _, tc := range []struct {
		method string
		status int
		want   bool
	}{
		{"GET", 200, true}, {"HEAD", 200, true}, {"POST", 201, true}, {"GET", 403, true}, {"GET", 404, true},
		{"GET", 101, false}, {"GET", 301, false}, {"GET", 302, false}, {"GET", 304, false},
		{"GET", 400, false}, {"GET", 431, false}, {"GET", 500, false}, {"GET", 503, false}, {"OPTIONS", 200, false},
	} {
		if got := DjangoMiddlewareExpected(tc.method, tc.status); got != tc.want {
			t.Errorf("%s %d: %v, want %v", tc.method, tc.status, got, tc.want)
		}
	}
}

// The once-a-minute warnings are spaced on the monotonic clock: after the
// host's wall clock is stepped back an hour (an NTP step, a VM restored),
// the next is due a minute later, not once the wall clock is back where
// it was, an hour of silence while every Django page runs anonymous.
func TestSetupWarningsOnceAMinuteAcrossAWallClockStepBack(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	logs := captureLog(m)
	wall, mono := time.Unix(1_800_000_000, 0), time.Unix(1_800_000_000, 0)
	m.now = func() time.Time { return wall }
	m.mono = func() int64 { return mono.UnixNano() }
	m.DjangoSessionRefused("refused-signature", "/accounts/", 200, "http://django:8000", time.Second)
	// The wall clock steps back an hour; then 5 real minutes pass.
	wall = wall.Add(-time.Hour + 5*time.Minute)
	mono = mono.Add(5 * time.Minute)
	m.DjangoSessionRefused("refused-signature", "/accounts/", 200, "http://django:8000", time.Second)
	if n := strings.Count(logs.String(), "refused the gateway's session"); n != 2 {
		t.Errorf("5 minutes after the wall clock stepped back an hour: %d warning lines, want 2 (the next is due once a minute)", n)
	}
}

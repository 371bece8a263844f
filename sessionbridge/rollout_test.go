package sessionbridge

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// Turning SESSIONGATE_SESSION_ENCRYPT on (or off) is a rolling change like
// a key rotation: while it rolls out, gateways with either setting serve
// the same users, and once it is done every cookie set before it is still
// in browsers. Both kinds of cookie must keep their session, as cookies
// signed with an old key do, or enabling encryption logs every user out.
func TestEncryptToggleKeepsSessions(t *testing.T) {
	st := memory.New(memory.Options{})
	codec := func(encrypt bool) *cookieCodec {
		m, err := New(Options{Store: st, Secrets: [][]byte{[]byte(testSecret)},
			Cookie:      CookieOptions{Name: "sessionid", MaxAge: time.Hour, Encrypt: encrypt},
			IdleTimeout: time.Minute, LockTimeout: time.Second, LockLease: time.Second, StoreTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return m.cookie
	}
	plain, enc := codec(false), codec(true)
	id := NewID()
	for _, tc := range []struct {
		name     string
		from, to *cookieCodec
	}{
		{"encryption turned on", plain, enc},
		{"encryption turned off", enc, plain},
	} {
		ck, err := tc.from.cookie(id, false)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(ck)
		if got, ok := idOf(tc.to, r); !ok || got != id {
			t.Errorf("%s: a cookie set before the change is no session after it (got %q)", tc.name, got)
		}
	}
	// What a gateway sets follows its own setting.
	ck, _ := enc.cookie(id, false)
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(ck)
	var clear string
	if err := plain.codecs[0].Decode("sessionid", ck.Value, &clear); err == nil {
		t.Fatalf("the encrypting gateway set a cookie that decodes without encryption: %q", clear)
	}
}

// A rolling change of SESSIONGATE_SESSION_IDLE_TIMEOUT (raised for
// "remember me" logins, or lowered): gateways with a long and a short
// timeout share the records, and each judges idleness by its own. A
// session used every ten minutes through the 24 h gateway, then once
// through the 2 h one, is a session in use for both. Refreshing its last
// use only every 6 h (a quarter of 24 h) made it look 3 h idle to the
// 2 h gateway, which dropped it from the store for every gateway.
func TestIdleTimeoutRolloutKeepsSessionsInUse(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		clock := time.Now()
		gateway := idleTimeoutGateways(t, mode, &clock)
		long, short := gateway(24*time.Hour), gateway(2*time.Hour)
		id := createSession(t, long, `{"user":"ana"}`)
		use := func(m *Manager, via string) {
			t.Helper()
			s, err := m.Open(context.Background(), requestWithCookie(t, m, id), false)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release(context.Background())
			if s.ID() != id {
				t.Fatalf("%s: the session in use was dropped by the %s gateway", mode, via)
			}
		}
		for range 18 { // three hours
			clock = clock.Add(10 * time.Minute)
			use(long, "24 h")
		}
		clock = clock.Add(time.Minute)
		use(short, "2 h")
		use(long, "24 h")
	}
}

// idleTimeoutGateways returns a maker of gateways on one memory store, in
// lock mode mode, each with the idle timeout it is given and *clock for
// its clock: a fleet during a rolling change of the timeout.
func idleTimeoutGateways(t *testing.T, mode LockMode, clock *time.Time) func(idle time.Duration) *Manager {
	st := memory.New(memory.Options{})
	t.Cleanup(func() { st.Close() })
	return func(idle time.Duration) *Manager {
		t.Helper()
		m, err := New(Options{Store: st, Secrets: [][]byte{[]byte(testSecret)},
			Cookie:      CookieOptions{Name: "sessionid", MaxAge: 14 * 24 * time.Hour},
			IdleTimeout: idle, LockMode: mode, LockTimeout: time.Second, LockLease: 5 * time.Second, StoreTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		m.now = func() time.Time { return *clock }
		return m
	}
}

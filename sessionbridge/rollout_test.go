package sessionbridge

import (
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

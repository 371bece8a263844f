package sessionbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// After SESSIONGATE_SESSION_COOKIE_DOMAIN is set on a live site, a browser
// keeps its host-only cookie of a live session X. A login page that calls
// PHP's session_regenerate_id() (delete_old_session defaults to false: X
// stays live) moves the user to Y, whose cookie now has Domain=example.com:
// a second cookie of the same name, not a replacement. The browser sent
// the older one (X) first, Open took the first live session, and the user
// was back on the session from before the login on every later request.
// The response that moves the user expires the host-only cookie too.
// Without the Domain change the same flow works (control).
func TestCookieDomainSetOnALiveSiteKeepsLogins(t *testing.T) {
	for _, domainChange := range []bool{false, true} {
		ctx := context.Background()
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { mem.Close() })
		mk := func(domain string) *Manager {
			m, err := New(Options{Store: mem, Secrets: [][]byte{[]byte(testSecret)},
				Cookie:      CookieOptions{Name: "sessionid", MaxAge: time.Hour, Domain: domain},
				IdleTimeout: 10 * time.Minute, LockMode: LockStrict, LockTimeout: 2 * time.Second,
				LockLease: 5 * time.Second, StoreTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		before, after := mk(""), mk("")
		if domainChange {
			after = mk("example.com")
		}
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse("http://www.example.com/")
		req := func() *http.Request {
			r := httptest.NewRequest("GET", "http://www.example.com/", nil)
			for _, c := range jar.Cookies(u) {
				r.AddCookie(c)
			}
			return r
		}
		store := func(h http.Header) { jar.SetCookies(u, (&http.Response{Header: h}).Cookies()) }

		// Before the change: a visitor gets a session (host-only cookie).
		s, _ := before.Open(ctx, req(), false)
		x := NewID()
		if _, err := s.Write(ctx, x, json.RawMessage(`{"cart":1}`), nil); err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		s.SetCookie(h)
		s.Release(ctx)
		store(h)
		time.Sleep(5 * time.Millisecond) // the jar orders same-path cookies by creation

		// After the change: the login page, session_regenerate_id() then the write.
		s, err := after.Open(ctx, req(), false)
		if err != nil || s.ID() != x {
			t.Fatalf("login page: %v %q", err, s.ID())
		}
		y := NewID()
		if _, err := s.Write(ctx, y, json.RawMessage(`{"cart":1,"user":"ana"}`), nil); err != nil {
			t.Fatal(err)
		}
		h = http.Header{}
		s.SetCookie(h)
		s.Release(ctx)
		store(h)

		// The next page.
		s, err = after.Open(ctx, req(), false)
		if err != nil {
			t.Fatal(err)
		}
		got, data := s.ID(), string(s.Data())
		s.Release(ctx)
		if got != y {
			t.Errorf("domain change %v: the page after the login loads %s (the pre-login session: %v), not the login's session; cookies sent: %v",
				domainChange, data, got == x, req().Header.Get("Cookie") != "")
		}
	}
}

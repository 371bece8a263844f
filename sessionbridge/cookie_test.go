package sessionbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzCookieIDs: any Cookie header a client sends yields only IDs we could
// have minted; a cookie we signed yields its ID back, whatever other
// cookies of the same name come with it.
func FuzzCookieIDs(f *testing.F) {
	f.Add("sessionid=abc", false)
	f.Add(`sessionid="MTc5NTQyMzA2OHxabc|def"; sessionid=; other=1`, true)
	f.Add("sessionid=====; sessionid=%ff", false)
	secrets := [][]byte{[]byte(testSecret)}
	codecs := map[bool]*cookieCodec{}
	for _, enc := range []bool{false, true} {
		c, err := newCookieCodec(secrets, CookieOptions{Name: "sessionid", MaxAge: time.Hour, Encrypt: enc})
		if err != nil {
			f.Fatal(err)
		}
		codecs[enc] = c
	}
	id := NewID()
	f.Fuzz(func(t *testing.T, header string, enc bool) {
		c := codecs[enc]
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", header)
		for _, got := range c.idsFrom(r) {
			if !ValidID(got) {
				t.Fatalf("%q: invalid ID %q accepted", header, got)
			}
		}
		ck, err := c.cookie(id, false)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(header, ";") >= maxSameNameCookies-1 {
			return // ours might come after the ones verified
		}
		r.Header.Set("Cookie", header+"; "+ck.Name+"="+ck.Value)
		ids := c.idsFrom(r)
		if len(ids) == 0 || ids[len(ids)-1] != id {
			t.Fatalf("%q: our cookie gave %q", header, ids)
		}
	})
}

// ValidID accepts exactly the IDs NewID mints (64 lowercase hex digits):
// it is what keeps an ID a PHP script reports back (session_id('abc'),
// a custom save handler) from becoming a short, guessable Redis key and
// cookie.
func TestValidID(t *testing.T) {
	id := NewID()
	if !ValidID(id) {
		t.Fatalf("NewID() = %q is not valid", id)
	}
	for _, bad := range []string{"", "abc", id[:63], id + "0", strings.ToUpper(id), id[:63] + "g", id[:63] + "/"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

// The session cookie carries Expires next to Max-Age, as Django's and PHP's
// do: a browser that ignores Max-Age (Internet Explorer, and the webviews
// built on it) kept the cookie only until it closed ("remember me" lost),
// and kept a deleted one (a logout) until then.
func TestCookieExpiresMatchesMaxAge(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockStrict, nil)
	check := func(name string, h http.Header, maxAge int, expires time.Time) {
		t.Helper()
		raw := h.Get("Set-Cookie")
		ck := cookieOf(t, h)
		if ck.MaxAge != maxAge {
			t.Errorf("%s: Max-Age %d, want %d: %s", name, ck.MaxAge, maxAge, raw)
		}
		switch {
		case expires.IsZero() && ck.RawExpires != "":
			t.Errorf("%s: Expires in a browser-session cookie: %s", name, raw)
		case !expires.IsZero() && ck.RawExpires == "":
			t.Errorf("%s: no Expires: %s", name, raw)
		case !expires.IsZero() && (ck.Expires.Before(expires.Add(-2*time.Second)) || ck.Expires.After(expires.Add(2*time.Second))):
			t.Errorf("%s: Expires %v, want about %v: %s", name, ck.Expires, expires, raw)
		}
	}

	s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	if _, err := s.Write(ctx, id, json.RawMessage(`{"a":1}`), nil); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.SetCookie(h)
	s.Release(ctx)
	check("new session", h, 3600, time.Now().Add(time.Hour))

	check("set_expiry(90)", setAppExpiry(t, m, id, 90*time.Second), 90, time.Now().Add(90*time.Second))

	s, err = m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	s.SetExpiry(0, true)
	if err := s.Touch(ctx, id); err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	s.SetCookie(h)
	s.Release(ctx)
	check("set_expiry(0)", h, 0, time.Time{})

	s, err = m.Open(ctx, requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	s.SetCookie(h)
	s.Release(ctx)
	check("deleted", h, -1, time.Unix(0, 0))
}

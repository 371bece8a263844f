package sessionbridge

import (
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

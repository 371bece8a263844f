package wsgi

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Django's set_expiry() with a datetime or timedelta ends the session at
// that time, however much it is used until then. The gateway took it as an
// idle timeout of the seconds left, which every request started again: a
// session meant to end at 17:00 lived on as long as the user kept clicking.
func TestDeadlineExpiryIsNotExtended(t *testing.T) {
	e := newEnv(t, envOpts{})
	if got := func() string {
		e.respond(answer{})
		e.do("GET", "/a/", "", nil)
		return e.app.seen().Header.Get(hdrFeatures)
	}(); !strings.Contains(got, "expiry-at") {
		t.Fatalf("%s = %q, want expiry-at announced", hdrFeatures, got)
	}
	// Whole seconds on the wire: a deadline 2 to 3 s away.
	end := time.Now().Truncate(time.Second).Add(3 * time.Second)
	at := "at:" + strconv.FormatInt(end.Unix(), 10)
	e.respond(answer{op: "write", expiry: at, data: `{"a":1}`})
	res, _, ck := e.do("GET", "/a/", "", nil)
	c := res.Cookies()
	if ck == "" || len(c) != 1 || c[0].MaxAge < 1 || c[0].MaxAge > 3 {
		t.Fatalf("set_expiry(datetime): %v", res.Header["Set-Cookie"])
	}
	id, _ := e.open(ck)
	stored, err := e.store.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Until  int64 `json:"until"`
		Expiry int64 `json:"expiry"`
	}
	if err := json.Unmarshal(stored.Value, &rec); err != nil || rec.Until != end.UnixMilli() || rec.Expiry != 0 {
		t.Fatalf("record: %s (%v)", stored.Value, err)
	}
	// Used shortly before the end, with the same deadline repeated (the
	// middleware sends it with every response): no new cookie, no
	// extension.
	time.Sleep(time.Until(end.Add(-1200 * time.Millisecond)))
	e.respond(answer{op: "touch", expiry: at})
	if res, _, set := e.do("GET", "/a/", ck, nil); res.StatusCode != 200 || set != "" {
		t.Fatalf("touch before the end: %d, cookie %q", res.StatusCode, set)
	}
	e.respond(answer{op: "write", expiry: at, data: `{"a":2}`})
	if res, _, _ := e.do("GET", "/a/", ck, nil); res.StatusCode != 200 {
		t.Fatalf("write before the end: %d", res.StatusCode)
	}
	if id, _ := e.open(ck); id == "" {
		t.Fatal("session gone before its end")
	}
	time.Sleep(time.Until(end.Add(200 * time.Millisecond)))
	if id, data := e.open(ck); id != "" {
		t.Fatalf("session still there after its end: %s", data)
	}
}

// set_expiry() with a time already past ends the session at once, as in
// Django, whatever the view stored.
func TestPastDeadlineEndsTheSession(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.respond(answer{op: "write", data: `{"a":1}`})
	_, _, ck := e.do("GET", "/a/", "", nil)
	past := "at:" + strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	e.respond(answer{op: "write", expiry: past, data: `{"a":2}`})
	res, _, set := e.do("GET", "/a/", ck, nil)
	if res.StatusCode != 200 || set != "-" {
		t.Fatalf("past deadline: %d, cookie %q", res.StatusCode, set)
	}
	if id, data := e.open(ck); id != "" {
		t.Fatalf("session kept: %s", data)
	}
}

package sessionbridge

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/fcgi"
	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
)

// newTestBridge opens the session named by id and builds the bridge the PHP
// handler would, with the data PHP was given.
func newTestBridge(t *testing.T, m *Manager, id string) *phpBridge {
	t.Helper()
	h := m.PHPHandler(nil, PHPOptions{}).(*phpHandler)
	s, err := m.Open(context.Background(), requestWithCookie(t, m, id), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Release(context.Background()) })
	sent, err := phpserial.EncodeSession(s.Data(), h.opts.Limits)
	if err != nil {
		t.Fatal(err)
	}
	return &phpBridge{h: h, sess: s, sent: sent, ctx: context.Background()}
}

// newFramingBridge is newTestBridge reading PHP's frames sealed under
// nonce, for the script /t.php.
func newFramingBridge(t *testing.T, m *Manager, id, nonce string) *phpBridge {
	t.Helper()
	b := newTestBridge(t, m, id)
	b.scanner = newFrameScanner(nonce, testFrameKey)
	b.path = "/t.php"
	return b
}

// framingTestNonce is the frame nonce of newLoggedFramingBridge.
const framingTestNonce = "00112233445566778899aabbccddeeff"

// newLoggedFramingBridge is a strict-mode manager whose log the returned
// builder captures, a session {"k":"A"}, and a bridge reading frames with
// framingTestNonce for it.
func newLoggedFramingBridge(t *testing.T) (*Manager, *strings.Builder, string, *phpBridge) {
	t.Helper()
	m := newTestManager(t, LockStrict, nil)
	logs := captureLog(m)
	id := createSession(t, m, `{"k":"A"}`)
	return m, logs, id, newFramingBridge(t, m, id, framingTestNonce)
}

// captureLog sends m's log to the returned builder, as text.
func captureLog(m *Manager) *strings.Builder {
	var logs strings.Builder
	m.log = slog.New(slog.NewTextHandler(&logs, nil))
	return &logs
}

// A script that writes, reopens the session and writes again (PHP reads
// back what it wrote) must have its second write persisted as sent, even
// when it sets a key back to the value it was first given.
func TestPHPSecondWriteRevertingAKeyIsKept(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		m := newTestManager(t, mode, nil)
		id := createSession(t, m, `{"k":"A","n":1}`)
		b := newTestBridge(t, m, id)
		for _, payload := range []string{
			`a:2:{s:1:"k";s:1:"B";s:1:"n";i:1;}`,
			`a:2:{s:1:"k";s:1:"A";s:1:"n";i:2;}`,
		} {
			if err := b.apply(message{Op: "write", ID: id, Payload: []byte(payload)}); err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
		}
		b.sess.Release(context.Background())
		got := storedData(t, m, id)
		if got != `{"k":"A","n":2}` {
			t.Fatalf("%s: stored %s, want {\"k\":\"A\",\"n\":2}", mode, got)
		}
	}
}

// A change PHP made before its output whose frames the gateway refuses
// (php-fpm's log_limit cut them) is lost: the client must get the 503 a
// change the store refused gets, not the app's success page. Text that
// merely looks like a frame (an app logging what a client sent) carries no
// nonce of this request and must not cost the app its response.
func TestRefusedPHPFrameIsNeverReportedAsSaved(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"k":"A"}`)
	cut := func(s string, n int) string { return s[:len(s)-n] }
	write := phpFrames(nonce, 0, "write", id, `a:1:{s:1:"k";s:1:"B";}`, 60)
	destroy := phpFrames(nonce, 0, "destroy", id, "", 800)
	chunks := strings.SplitAfter(write, "#")
	for name, c := range map[string]struct {
		stderr string
		lost   bool
	}{
		// log_limit cuts every frame of a long message: the next frame
		// shows the first was truncated.
		"first chunk cut": {cut(chunks[0], 20) + strings.Join(chunks[1:], ""), true},
		// a one-frame message cut: no end ever comes.
		"only frame cut": {cut(destroy, 10), true},
		"tampered":       {strings.Replace(destroy, ":1:", ":1:AAAA", 1), true},
		"foreign nonce":  {phpFrames("ffffffffffffffffffffffffffffffff", 0, "destroy", id, "", 800), false},
		"client text":    {"; PHP message: login failed for @sg1:" + nonce[:8] + "x#; PHP message: user @sg1:abc", false},
	} {
		b := newFramingBridge(t, m, id, nonce)
		b.onStderr([]byte(c.stderr))
		rec := httptest.NewRecorder()
		w := &bridgeWriter{ResponseWriter: rec, req: httptest.NewRequest("GET", "/", nil), b: b}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("saved!"))
		if c.lost && (rec.Code != http.StatusServiceUnavailable || rec.Body.String() == "saved!") {
			t.Errorf("%s: change refused, client got %d %q", name, rec.Code, rec.Body.String())
		}
		if !c.lost && (rec.Code != http.StatusOK || rec.Body.String() != "saved!") {
			t.Errorf("%s: app response replaced: %d %q", name, rec.Code, rec.Body.String())
		}
		b.sess.Release(context.Background())
		b.finish()
	}
	if got := storedData(t, m, id); got != `{"k":"A"}` {
		t.Fatalf("a refused frame changed the session: %s", got)
	}
}

// PHP sends its own session cookie with the raw session ID: the ID the
// request was given, or one it created or regenerated. Those lines never reach the browser (the
// gateway's signed cookie carries the session); the app's other cookies do.
func TestPHPRawSessionIDCookieIsDropped(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"k":"A"}`)
	b := newTestBridge(t, m, id)
	b.noteID(id)
	b.path = "/t.php"
	b.scanner = newFrameScanner("00112233445566778899aabbccddeeff", testFrameKey)
	regenerated := strings.Repeat("b", len(id))
	if err := b.apply(message{Op: "open", ID: regenerated}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	w := &bridgeWriter{ResponseWriter: rec, req: httptest.NewRequest("GET", "/", nil), b: b}
	w.Header()["Set-Cookie"] = []string{
		"PHPSESSID=" + id + "; path=/",
		"theme=dark; path=/",
		"PHPSESSID=" + regenerated + "; path=/; HttpOnly",
		`sid="` + id + `"`,
		"note=" + id + "x",
	}
	_, _ = w.Write([]byte("ok"))
	var app []string
	for _, line := range rec.Result().Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, m.cookie.opts.Name+"=") {
			continue // the gateway's signed cookie
		}
		if _, value, _ := cookieNameValue(line); value == id || value == regenerated {
			t.Errorf("raw session ID left in a cookie: %q", line)
		}
		app = append(app, line)
	}
	if !slices.Contains(app, "theme=dark; path=/") || !slices.Contains(app, "note="+id+"x") {
		t.Errorf("the app's own cookies were dropped: %q", rec.Result().Header.Values("Set-Cookie"))
	}
	b.sess.Release(context.Background())
}

// A status outside the standard classes (an API's private 6xx/7xx, which
// the transport passes like nginx) is not a server error: a session change
// lost before the headers left must turn it into the 503 too, not leave
// the client believing the change was made.
func TestLostPHPChangeWithNonStandardStatusIs503(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"k":"A"}`)
	destroy := phpFrames(nonce, 0, "destroy", id, "", 800)
	for _, code := range []int{600, 799, 999} {
		b := newFramingBridge(t, m, id, nonce)
		b.onStderr([]byte(destroy[:len(destroy)-10])) // cut: never applied
		rec := httptest.NewRecorder()
		w := &bridgeWriter{ResponseWriter: rec, req: httptest.NewRequest("GET", "/", nil), b: b}
		w.WriteHeader(code)
		_, _ = w.Write([]byte("done"))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d with the change lost: client got %d %q", code, rec.Code, rec.Body.String())
		}
		b.sess.Release(context.Background())
		b.finish()
	}
}

// PHP's messages must take effect in the order PHP sent them (their seq),
// whichever channel carried them. The transport hands the bridge stderr
// records as it reads ahead, before the response headers: a write PHP made
// after its header-borne write (the prepend writes once more after object
// destructors, over stderr) arrives first and must not be overwritten by
// the older one.
func TestPHPMessagesApplyInSequenceAcrossChannels(t *testing.T) {
	const nonce = "00112233445566778899aabbccddeeff"
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		m := newTestManager(t, mode, nil)
		id := createSession(t, m, `{"k":"A"}`)
		b := newFramingBridge(t, m, id, nonce)
		if rest := b.onStderr([]byte(phpFrames(nonce, 1, "write", id, `a:1:{s:1:"k";s:1:"C";}`, 800))); len(rest) > 0 {
			t.Fatalf("%s: log text %q", mode, rest)
		}
		b.onFrameHeaders([]string{headerFrameValue(nonce, 0, "write", id, `a:1:{s:1:"k";s:1:"B";}`)})
		if err := b.failure(); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		b.sess.Release(context.Background())
		got := storedData(t, m, id)
		if got != `{"k":"C"}` {
			t.Fatalf("%s: stored %s, want the later write {\"k\":\"C\"}", mode, got)
		}
	}
}

// Stderr text that merely looks like the start of a frame (an app logging
// what a client typed, "@sg1:" with no end) is the app's log, not a session
// message: when the request ends it must be logged as stderr, and the
// gateway must not claim that a session change was lost.
func TestForeignFrameTextAtEndOfStderrIsLoggedNotCutShort(t *testing.T) {
	const nonce = framingTestNonce
	m, logs, id, b := newLoggedFramingBridge(t)
	rest := b.onStderr([]byte(phpFrames(nonce, 0, "write", id, `a:1:{s:1:"k";s:1:"B";}`, 800) + "; PHP message: login failed for @sg1:mallory"))
	rec := httptest.NewRecorder()
	w := &bridgeWriter{ResponseWriter: rec, req: httptest.NewRequest("GET", "/", nil), b: b}
	_, _ = w.Write([]byte("ok"))
	b.sess.Release(context.Background())
	b.finish()
	if rec.Code != http.StatusOK {
		t.Errorf("client got %d %q", rec.Code, rec.Body.String())
	}
	if strings.Contains(logs.String(), "cut short") {
		t.Errorf("foreign text reported as a lost session change:\n%s", logs.String())
	}
	if logged := string(rest) + logs.String(); !strings.Contains(logged, "@sg1:mallory") {
		t.Errorf("the app's stderr text was not logged:\n%s", logged)
	}
	if got := storedData(t, m, id); got != `{"k":"B"}` {
		t.Errorf("stored %s, want {\"k\":\"B\"}", got)
	}
}

// TestHeldStderrLoggedWithItsBackend: stderr text the bridge holds back
// until the end (it might have been the start of a session frame) is
// logged by the bridge, with the fields fcgi gives the rest of PHP's
// stderr: the backend was missing.
func TestHeldStderrLoggedWithItsBackend(t *testing.T) {
	_, logs, _, b := newLoggedFramingBridge(t)
	b.onPHPHeader(fcgi.HeaderInfo{Status: 200, Marked: true, Backend: "php:9000"})
	if rest := b.onStderr([]byte("; PHP message: held back @sg1:")); strings.Contains(string(rest), "@sg1:") {
		t.Fatalf("the frame-like end was not held back: %q", rest)
	}
	b.sess.Release(context.Background())
	b.finish()
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "@sg1:") {
			line = l
		}
	}
	if !strings.Contains(line, `msg="php stderr"`) || !strings.Contains(line, "backend=php:9000") {
		t.Errorf("the held text logged as %q, want a php stderr line naming the backend:\n%s", line, logs.String())
	}
}

// TestFrameLikeClientTextLogsBoundedWarnings: an app that logs what a
// client typed (error_log("login failed for $user")) made every "@sg1:" in
// it a "session frame from PHP rejected" warning: one 1 KiB message
// (php-fpm's log_limit) of them gave about 200 log lines, past the
// per-request stderr log budget, for every request the client sent.
func TestFrameLikeClientTextLogsBoundedWarnings(t *testing.T) {
	_, logs, _, b := newLoggedFramingBridge(t)
	for range 10 {
		b.onStderr([]byte("; PHP message: login failed for " + strings.Repeat("@sg1:", 200)))
		b.onStderr([]byte("; PHP message: login failed for " + strings.Repeat("@sg1:x:0:1:QQ==#", 60)))
	}
	b.sess.Release(context.Background())
	b.finish()
	if n := strings.Count(logs.String(), "\n"); n > 2*maxFrameWarnings {
		t.Errorf("%d log lines for frame-like stderr text, want at most %d:\n%.2000s", n, 2*maxFrameWarnings, logs.String())
	}
	if !strings.Contains(logs.String(), "more=") {
		t.Errorf("no count of the rejections left out of the log:\n%.2000s", logs.String())
	}
}

// A cookie PHP sets under the gateway's cookie name with a value of its own
// (an app whose session.name is the gateway's, choosing its own session ID;
// or its own cookie of that name) would replace the signed cookie in the
// browser whenever the gateway sends none, and log the user out: it is
// dropped. A deletion under that name (the PHP manual's logout recipe,
// setcookie(session_name(), ”, time() - 42000)) still reaches the browser,
// so a logout by cookie still logs out.
func TestPHPCookieUnderTheGatewaysNameIsDropped(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	id := createSession(t, m, `{"k":"A"}`)
	name := m.CookieName()
	for _, tc := range []struct {
		line string
		kept bool
	}{
		{name + "=sgcustomid0123456789abcdef; path=/; HttpOnly", false},
		{name + "=anything", false},
		{name + "=x; Max-Age=3600", false},
		{name + "=deleted; expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0; path=/", true},
		{name + "=; expires=Thu, 01 Jan 1970 00:00:01 GMT; path=/", true},
		{name + "=x; Max-Age=-1", true},
		{"other=1", true},
	} {
		b := newTestBridge(t, m, id)
		b.noteID(id)
		b.path = "/t.php"
		b.scanner = newFrameScanner("00112233445566778899aabbccddeeff", testFrameKey)
		rec := httptest.NewRecorder()
		w := &bridgeWriter{ResponseWriter: rec, req: httptest.NewRequest("GET", "/", nil), b: b}
		w.Header()["Set-Cookie"] = []string{tc.line}
		_, _ = w.Write([]byte("ok"))
		got := slices.Contains(rec.Result().Header.Values("Set-Cookie"), tc.line)
		if got != tc.kept {
			t.Errorf("%q: kept %v, want %v (Set-Cookie %q)", tc.line, got, tc.kept, rec.Result().Header.Values("Set-Cookie"))
		}
		b.sess.Release(context.Background())
	}
}

// Every PHP response that sets cookies (a CSRF token on each page) passes
// the Set-Cookie filters, twice: one that drops nothing must not copy the
// lines each time.
func TestDropSetCookiesKeepingAllDoesNotAllocate(t *testing.T) {
	h := http.Header{"Set-Cookie": {"XSRF-TOKEN=abc; Path=/", "theme=dark", "lang=en; Max-Age=3600"}}
	ids := []string{strings.Repeat("ab", 32)}
	allocs := testing.AllocsPerRun(100, func() {
		DropRawIDCookies(h, ids)
		DropSetCookies(h, func(n, _, _ string) bool { return n == "sessionid" })
	})
	if allocs != 0 {
		t.Errorf("%v allocations a response, want 0", allocs)
	}
	if len(h["Set-Cookie"]) != 3 {
		t.Errorf("lines: %q", h["Set-Cookie"])
	}
	// Dropping still works, from the first line, a middle one or the last.
	for i := range 3 {
		h := http.Header{"Set-Cookie": {"a=1", "b=2", "c=3"}}
		drop := string(rune('a' + i))
		got := DropSetCookies(h, func(n, _, _ string) bool { return n == drop })
		want := slices.DeleteFunc([]string{"a=1", "b=2", "c=3"}, func(l string) bool { return l[:1] == drop })
		if !slices.Equal(got, []string{drop}) || !slices.Equal(h["Set-Cookie"], want) {
			t.Errorf("dropping %s: dropped %q, left %q", drop, got, h["Set-Cookie"])
		}
	}
}

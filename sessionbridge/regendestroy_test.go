package sessionbridge

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// session_regenerate_id() (false: the old session stays) and then
// session_destroy() of the new session, in one request (a logout page that
// regenerates first): PHP's files handler sends the new ID's cookie, so the
// browser names a session that no longer exists and is logged out; the old
// session stays stored under the old ID only. The client must lose the
// session here too, not keep the cookie of the old one, logged in.
func TestPHPRegenerateKeepOldThenDestroyLogsOut(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		m := newTestManager(t, mode, nil)
		id := createSession(t, m, `{"user":"ana"}`)
		b := newTestBridge(t, m, id)
		newID := NewID()
		for _, msg := range []message{
			{Op: "write", ID: id, Payload: b.sent},
			{Op: "open", ID: newID, Payload: []byte("regenerate")},
			{Op: "destroy", ID: newID},
		} {
			if err := b.apply(msg); err != nil {
				t.Fatalf("%s %s: %v", mode, msg.Op, err)
			}
		}
		h := http.Header{}
		b.sess.SetCookie(h)
		b.sess.Release(context.Background())
		if c := h.Get("Set-Cookie"); !strings.Contains(c, "Max-Age=0") && !strings.Contains(c, "Max-Age=-1") {
			t.Errorf("%s: the browser keeps the old, logged-in session: Set-Cookie %q, want the cookie deleted", mode, c)
		}
		if got := storedData(t, m, newID); got != "{}" {
			t.Errorf("%s: destroyed new session stored: %s", mode, got)
		}
		// As PHP's files handler keeps the old session's file.
		if got := storedData(t, m, id); got != `{"user":"ana"}` {
			t.Errorf("%s: old session holds %s", mode, got)
		}
	}
}

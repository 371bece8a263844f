package sessionbridge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// A session PHP started before its output (an "open" message, so its cookie
// left with the headers) but first wrote after the output began (its
// end-of-request write once the output buffer was flushed, as phpMyAdmin's
// login page does) reached the client: the gateway must not log that the
// client cannot get its cookie. A session created after the headers without
// having been announced really is one the client never hears of.
func TestLateCreateOfAnnouncedSessionNotReportedLost(t *testing.T) {
	const warning = "the client cannot get its cookie"
	for _, announced := range []bool{true, false} {
		m := newTestManager(t, LockStrict, nil)
		var logs strings.Builder
		m.log = slog.New(slog.NewTextHandler(&logs, nil))
		ctx := context.Background()
		s, err := m.Open(ctx, requestWithCookie(t, m, ""), false)
		if err != nil {
			t.Fatal(err)
		}
		id := NewID()
		if announced {
			if err := s.Announce(id); err != nil {
				t.Fatal(err)
			}
		}
		h := http.Header{}
		s.SetCookie(h)
		if got := len(h["Set-Cookie"]) == 1; got != announced {
			t.Fatalf("announced %v: cookie %v", announced, h["Set-Cookie"])
		}
		if _, err := s.Write(ctx, id, json.RawMessage(`{"k":"v"}`), nil); err != nil {
			t.Fatal(err)
		}
		s.Release(ctx)
		if got := strings.Contains(logs.String(), warning); got == announced {
			t.Errorf("announced %v: warning logged %v:\n%s", announced, got, logs.String())
		}
	}
}

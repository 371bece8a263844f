package sessionbridge

import (
	"context"
	"encoding/json"
	"testing"
)

// TestMergeKeepsTheWritersKeyOrder: member order is PHP's array order,
// which every party preserves (docs/protocol.md, section 1). A write that
// only reorders the session's keys (PHP: unset a key, set it again, and it
// moves to the end), or moves a key it changes, with no other request
// changing the session meanwhile, must be stored in the writer's order, in
// merge mode and in strict mode after the request released its lock.
func TestMergeKeepsTheWritersKeyOrder(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []LockMode{LockMerge, LockStrict} {
		m := newTestManager(t, mode, nil)
		id := createSession(t, m, `{"a":1,"b":2,"c":3}`)
		s, err := m.Open(ctx, requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		if mode == LockStrict {
			// session_write_close(), then session_start() again: the
			// next write locks again and merges.
			if err := s.Touch(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{`{"b":2,"c":3,"a":1}`, `{"c":3,"a":1,"b":5}`} {
			if _, err := s.Write(ctx, id, json.RawMessage(want), nil); err != nil {
				t.Fatal(err)
			}
			s2, err := m.Open(ctx, requestWithCookie(t, m, id), false)
			if err != nil {
				t.Fatal(err)
			}
			got := string(s2.Data())
			s2.Release(ctx)
			if got != want {
				t.Errorf("%v: stored %s, want %s", mode, got, want)
			}
		}
		s.Release(ctx)
	}
}

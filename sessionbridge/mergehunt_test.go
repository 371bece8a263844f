package sessionbridge

import (
	"context"
	"encoding/json"
	"testing"
)

// Merge mode: request S loaded {"a":1,"b":1}; request R then deleted "a".
// S deletes "b" (its write merges to {}: "a" stays deleted, as R wanted),
// and then writes again from its own copy, adding "c" (PHP's session_start
// after session_write_close). That second write must not bring back "a",
// which R deleted and S never changed.
func TestMergeSecondWriteAfterAnEmptyMergeKeepsADeletion(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	id := createSession(t, m, `{"a":1,"b":1}`)
	s, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	r, _ := m.Open(ctx, requestWithCookie(t, m, id), false)
	if _, err := r.Write(ctx, id, json.RawMessage(`{"b":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, id, json.RawMessage(`{"a":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if got := storedData(t, m, id); got != `{}` {
		t.Fatalf("after S's first write: %s, want {}", got)
	}
	if _, err := s.Write(ctx, id, json.RawMessage(`{"a":1,"c":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := storedData(t, m, id), `{"c":1}`; got != want {
		t.Fatalf("after S's second write: %s, want %s (R's deletion of a undone)", got, want)
	}
}

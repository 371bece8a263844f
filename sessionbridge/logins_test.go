package sessionbridge

import (
	"context"
	"testing"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// onlyStore hides a store's optional interfaces (a store without a
// LoginRegistry).
type onlyStore struct{ store.Store }

// TestRevokedLogin: only a session whose top-level Django login names a
// user with recorded hashes that lack its own is revoked; anything else
// (no login, another shape, nothing recorded, a store without a registry)
// is left as it is.
func TestRevokedLogin(t *testing.T) {
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	m := newTestManager(t, LockStrict, mem)
	ctx := context.Background()
	if err := m.RecordLogins(ctx, "7", []string{"new", "fallback"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ data, want string }{
		{`{"_auth_user_id":"7","_auth_user_hash":"old","cart":[1]}`, "old"},
		{`{"_auth_user_id":"7","_auth_user_hash":"new"}`, ""},
		{`{"_auth_user_id":"7","_auth_user_hash":"fallback"}`, ""},
		{`{"_auth_user_id":"8","_auth_user_hash":"old"}`, ""},       // nothing recorded for 8
		{`{"_auth_user_id":7,"_auth_user_hash":"old"}`, ""},         // not Django's shape
		{`{"_auth_user_id":"7"}`, ""},                               // no hash
		{`{"x":{"_auth_user_id":"7","_auth_user_hash":"old"}}`, ""}, // nested: no login
		{`{"_auth_user_id":"{7}","_auth_user_hash":"old"}`, ""},     // no registry key
		{`{}`, ""},
	} {
		got, err := m.RevokedLogin(ctx, []byte(c.data))
		if err != nil || got != c.want {
			t.Errorf("RevokedLogin(%s) = %q, %v; want %q", c.data, got, err, c.want)
		}
	}

	plain := newTestManager(t, LockStrict, onlyStore{mem})
	if err := plain.RecordLogins(ctx, "9", []string{"new"}); err != nil {
		t.Fatalf("RecordLogins without a registry: %v", err)
	}
	if got, err := plain.RevokedLogin(ctx, []byte(`{"_auth_user_id":"7","_auth_user_hash":"old"}`)); got != "" || err != nil {
		t.Errorf("RevokedLogin without a registry: %q, %v", got, err)
	}
}

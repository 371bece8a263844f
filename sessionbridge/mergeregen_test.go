package sessionbridge

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
)

// Merge mode: another request (a second tab) stored a key in session X
// after the login request A loaded X and before A's
// session_regenerate_id(true) moved X's data to Y. The other request got
// its 200; its key must reach Y as if it had run before A (what strict
// mode's serial order gives), not vanish with X.
func TestMergePHPRegenerationKeepsAConcurrentWrite(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, LockMerge, nil)
	x := createSession(t, m, `{"user":"ana","n":1}`)
	a := newTestBridge(t, m, x)
	c, _ := m.Open(ctx, requestWithCookie(t, m, x), false)
	if _, err := c.Write(ctx, x, json.RawMessage(`{"user":"ana","n":1,"cart":3}`), nil); err != nil {
		t.Fatal(err)
	}
	y := NewID()
	payload, err := phpserial.EncodeSession(json.RawMessage(`{"user":"ana","n":2,"logged":true}`), phpserial.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []message{
		{Op: "destroy", ID: x, Payload: []byte("regenerate")},
		{Op: "open", ID: y},
		{Op: "write", ID: y, Payload: payload},
	} {
		if err := a.apply(msg); err != nil {
			t.Fatalf("A %s: %v", msg.Op, err)
		}
	}
	if got, want := storedData(t, m, y), `{"user":"ana","n":2,"cart":3,"logged":true}`; got != want {
		t.Fatalf("the new session holds %s, want %s", got, want)
	}
	// A second write of A's, from its own copy (no "cart"), keeps it.
	payload, _ = phpserial.EncodeSession(json.RawMessage(`{"user":"ana","n":3,"logged":true}`), phpserial.DefaultLimits())
	if err := a.apply(message{Op: "write", ID: y, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	a.sess.Release(ctx)
	if got, want := storedData(t, m, y), `{"user":"ana","n":3,"cart":3,"logged":true}`; got != want {
		t.Fatalf("after A's second write the new session holds %s, want %s", got, want)
	}
}

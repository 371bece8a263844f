package sessionbridge

import (
	"errors"
	"strings"
	"testing"
)

// A regeneration whose data the gateway then refuses (PHP nests it deeper
// than 64) fails the request, and the browser keeps its old cookie: the
// old session must still be there, as it was, in both lock modes.
func TestRegenerationWithRefusedDataKeepsTheOldSession(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		m := newTestManager(t, mode, nil)
		x := createSession(t, m, `{"user":"ana"}`)
		b := newTestBridge(t, m, x)
		y := NewID()
		deep := "s:6:\"bottom\";"
		for range 70 {
			deep = "a:1:{i:0;" + deep + "}"
		}
		for _, msg := range []message{
			{Op: "destroy", ID: x, Payload: []byte("regenerate")},
			{Op: "open", ID: y},
		} {
			if err := b.apply(msg); err != nil {
				t.Fatalf("%v %s: %v", mode, msg.Op, err)
			}
		}
		err := b.apply(message{Op: "write", ID: y, Payload: []byte(`a:2:{s:4:"user";s:3:"ana";s:4:"deep";` + deep + "}")})
		if !errors.Is(err, ErrUnstorable) {
			t.Fatalf("%v: write error %v, want ErrUnstorable", mode, err)
		}
		if err := b.retirePending(); err != nil {
			t.Fatal(err)
		}
		b.sess.Release(t.Context())
		if got := storedData(t, m, x); !strings.Contains(got, `"user":"ana"`) {
			t.Errorf("%v: the old session holds %s after the refused regeneration, want it as it was", mode, got)
		}
	}
}

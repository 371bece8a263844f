package sessionbridge

import (
	"context"
	"testing"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
)

// session_regenerate_id() moves the session PHP was given to a new ID: PHP
// writes $_SESSION there as it renders it. A member the script did not
// touch must keep the text another app stored, as it does for a write under
// the same ID: Django's empty dict {} must not come back as PHP's empty
// array [] (a list in Python, where the view's session['cart']['x'] = 1
// then fails), nor a dict with keys "0".."n-1" as a list.
func TestPHPRegenerateKeepsOtherAppsText(t *testing.T) {
	const data = `{"cart":{},"seen":{"0":"a","1":"b"},"user":"ana"}`
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		for _, del := range []bool{true, false} {
			m := newTestManager(t, mode, nil)
			id := createSession(t, m, data)
			b := newTestBridge(t, m, id)
			// PHP writes the session as it was given (the prepend's text),
			// unchanged, under the new ID.
			payload := string(b.sent)
			if _, err := phpserial.DecodeSession(b.sent, b.h.opts.Limits); err != nil {
				t.Fatal(err)
			}
			newID := NewID()
			var msgs []message
			if del {
				msgs = append(msgs, message{Op: "destroy", ID: id})
			} else {
				msgs = append(msgs, message{Op: "write", ID: id, Payload: []byte(payload)})
			}
			msgs = append(msgs, message{Op: "open", ID: newID}, message{Op: "write", ID: newID, Payload: []byte(payload)})
			for _, msg := range msgs {
				if err := b.apply(msg); err != nil {
					t.Fatalf("%s del=%v %s: %v", mode, del, msg.Op, err)
				}
			}
			b.sess.Release(context.Background())
			if got := storedData(t, m, newID); got != data {
				t.Errorf("%s session_regenerate_id(%v): new session holds %s, want %s", mode, del, got, data)
			}
		}
	}
}

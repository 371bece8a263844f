package sessionbridge

import (
	"context"
	"testing"

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
		s, err := m.Open(context.Background(), requestWithCookie(t, m, id), false)
		if err != nil {
			t.Fatal(err)
		}
		got := string(s.Data())
		s.Release(context.Background())
		if got != `{"k":"A","n":2}` {
			t.Fatalf("%s: stored %s, want {\"k\":\"A\",\"n\":2}", mode, got)
		}
	}
}

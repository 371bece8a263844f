package sessionbridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
)

// Merge mode: two requests' writes, each one PHP can read back, must not
// merge into a session PHP cannot be given (every later page of the
// session answers 500 "session data unreadable"): one over the codec's
// size limit (16 MiB), or one whose only key left is "__php__", which PHP
// would read as a tag (an error, or another session altogether). The
// second write is refused instead (500, its change lost and logged), and
// the session stays as the first one left it.
func TestMergeNeverStoresASessionPHPCannotRead(t *testing.T) {
	ctx := context.Background()
	big := func(c string) string { return strings.Repeat(c, 9<<20) }
	for _, c := range []struct {
		name, stored, theirs, ours string
	}{
		{"over the size limit", `{"a":1}`, `{"a":1,"big1":"` + big("x") + `"}`, `{"a":1,"big2":"` + big("y") + `"}`},
		{"a lone __php__ key", `{"__php__":"x","a":1,"b":2}`, `{"__php__":"x","a":1}`, `{"__php__":"x","b":2}`},
		{"a lone __php__ key holding a session", `{"__php__":"a:1:{s:5:\"admin\";b:1;}","a":1,"b":2}`, `{"__php__":"a:1:{s:5:\"admin\";b:1;}","a":1}`, `{"__php__":"a:1:{s:5:\"admin\";b:1;}","b":2}`},
	} {
		m := newTestManager(t, LockMerge, nil)
		// The write gives up as busy once LockTimeout has passed since it
		// began, and its first try (a merge of 9 MiB against the stale
		// copy) took longer than newTestManager's 2 s under -race on a
		// loaded machine: the refusal under test was never reached.
		m.o.LockTimeout = time.Minute
		x := createSession(t, m, c.stored)
		a := newTestBridge(t, m, x)
		other, err := m.Open(ctx, requestWithCookie(t, m, x), false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Write(ctx, x, json.RawMessage(c.theirs), nil); err != nil {
			t.Fatalf("%s: the other write: %v", c.name, err)
		}
		other.Release(ctx)
		payload, err := phpserial.EncodeSession(json.RawMessage(c.ours), phpserial.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		err = a.apply(message{Op: "write", ID: x, Payload: payload})
		a.sess.Release(ctx)
		stored := storedData(t, m, x)
		ms, _ := objectMembers([]byte(stored))
		loneTag := len(ms) == 1 && ms[0].Key == "__php__"
		if _, perr := phpserial.EncodeSession([]byte(stored), phpserial.DefaultLimits()); perr != nil || loneTag {
			t.Errorf("%s: stored a session PHP cannot be given (%v): %.80s", c.name, perr, stored)
		}
		if !errors.Is(err, ErrUnstorable) {
			t.Errorf("%s: the write whose merge PHP could not read gave %v, want ErrUnstorable", c.name, err)
		}
		if stored != c.theirs {
			t.Errorf("%s: the session holds %.80s, want it as the other write left it", c.name, stored)
		}
	}
}

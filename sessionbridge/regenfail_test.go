package sessionbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge/phpserial"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// failNewStore fails every Save that creates a record (expect 0) once
// armed, as a Redis that stalls right after the old session's tombstone
// went in would.
type failNewStore struct {
	store.Store
	mu    sync.Mutex
	armed bool
}

func (f *failNewStore) arm() {
	f.mu.Lock()
	f.armed = true
	f.mu.Unlock()
}

func (f *failNewStore) Save(ctx context.Context, id string, expect uint64, v []byte, ttl time.Duration) (uint64, error) {
	f.mu.Lock()
	armed := f.armed
	f.mu.Unlock()
	if armed && expect == 0 {
		return 0, fmt.Errorf("%w: i/o timeout", store.ErrUnavailable)
	}
	return f.Store.Save(ctx, id, expect, v, ttl)
}

// session_regenerate_id(true) whose new session the store then fails to
// create (Redis stalled): the request fails with a 503 and the browser
// keeps its old cookie, so the old session must still be there as it was,
// not a tombstone next to a new ID that holds nothing.
func TestRegenerationTheStoreFailsKeepsTheOldSession(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { mem.Close() })
		fs := &failNewStore{Store: mem}
		m := newTestManager(t, mode, fs)
		x := createSession(t, m, `{"user":"ana"}`)
		b := newTestBridge(t, m, x)
		fs.arm()
		y := NewID()
		payload, err := phpserial.EncodeSession(json.RawMessage(`{"user":"ana","logged":true}`), phpserial.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		for _, msg := range []message{
			{Op: "destroy", ID: x, Payload: []byte("regenerate")},
			{Op: "open", ID: y},
			{Op: "write", ID: y, Payload: payload},
		} {
			if err := b.apply(msg); err != nil {
				werr = err
			}
		}
		if !errors.Is(werr, ErrUnavailable) {
			t.Fatalf("%v: the failed regeneration gave %v, want ErrUnavailable (503)", mode, werr)
		}
		if err := b.retirePending(); err != nil {
			t.Fatal(err)
		}
		b.sess.Release(t.Context())
		if got := storedData(t, m, x); !strings.Contains(got, `"user":"ana"`) {
			t.Errorf("%v: after the failed regeneration the old cookie's session holds %s, want {\"user\":\"ana\"}", mode, got)
		}
	}
}

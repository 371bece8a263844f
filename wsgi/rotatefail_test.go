package wsgi

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
	"github.com/sessiongate/sessiongate/sessionbridge/store/memory"
)

// failCreateStore fails every Save that creates a record once armed, as a
// Redis that stalls right after the old session's tombstone went in.
type failCreateStore struct {
	store.Store
	armed atomic.Bool
}

func (f *failCreateStore) Save(ctx context.Context, id string, expect uint64, v []byte, ttl time.Duration) (uint64, error) {
	if f.armed.Load() && expect == 0 {
		return 0, fmt.Errorf("%w: i/o timeout", store.ErrUnavailable)
	}
	return f.Store.Save(ctx, id, expect, v, ttl)
}

// Django's cycle_key() at login (a write with X-Sessiongate-Rotate) whose
// new session the store then fails to create: the client gets a 503 and
// keeps its old cookie, whose session must still be there, not a
// tombstone next to a new ID that holds nothing.
func TestRotationTheStoreFailsKeepsTheOldSession(t *testing.T) {
	for _, mode := range []sessionbridge.LockMode{sessionbridge.LockStrict, sessionbridge.LockMerge} {
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { mem.Close() })
		fs := &failCreateStore{Store: mem}
		e := newEnv(t, envOpts{store: fs, mode: mode})
		e.respond(answer{op: "write", data: `{"cart":[1]}`})
		_, _, ck := e.do("GET", "/a/", "", nil)
		fs.armed.Store(true)
		e.respond(answer{op: "write", rotate: "1", data: `{"cart":[1],"_auth_user_id":"7"}`})
		res, _, set := e.do("POST", "/admin/login/", ck, nil)
		fs.armed.Store(false)
		if res.StatusCode != 503 || set != "" {
			t.Fatalf("%s: rotation the store failed: %d cookie %q, want 503 and no cookie", mode, res.StatusCode, set)
		}
		if _, data := e.open(ck); !strings.Contains(data, `"cart":[1]`) {
			t.Errorf("%s: the old cookie's session after the failed rotation holds %s, want {\"cart\":[1]}", mode, data)
		}
	}
}

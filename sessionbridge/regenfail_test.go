package sessionbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

// failIDStore fails every change of the session IDs it is told to, once
// they are armed: Saves, and lock releases that put a value.
type failIDStore struct {
	store.Store
	mu   sync.Mutex
	fail map[string]bool
}

func (f *failIDStore) failing(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[id]
}

func (f *failIDStore) setFailing(id string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]bool{}
	}
	f.fail[id] = on
}

func (f *failIDStore) Save(ctx context.Context, id string, expect uint64, v []byte, ttl time.Duration) (uint64, error) {
	if f.failing(id) {
		return 0, fmt.Errorf("%w: i/o timeout", store.ErrUnavailable)
	}
	return f.Store.Save(ctx, id, expect, v, ttl)
}

func (f *failIDStore) Lock(ctx context.Context, id string, lease time.Duration) (store.Lease, store.Record, error) {
	l, rec, err := f.Store.Lock(ctx, id, lease)
	if err != nil {
		return nil, rec, err
	}
	return failIDLease{l, f, id}, rec, nil
}

type failIDLease struct {
	store.Lease
	f  *failIDStore
	id string
}

func (l failIDLease) Unlock(ctx context.Context, mu store.Mutation) (uint64, error) {
	if mu.Kind == store.Put && l.f.failing(l.id) {
		_, _ = l.Lease.Unlock(ctx, store.Mutation{Kind: store.Keep})
		return 0, fmt.Errorf("%w: i/o timeout", store.ErrUnavailable)
	}
	return l.Lease.Unlock(ctx, mu)
}

// session_regenerate_id(true), then output that sends the headers (and
// the new cookie with them), then the write: the browser holds only the
// new cookie from then on. A store failing that write (Redis stalling) can
// no longer turn the response into an error, and loses that change, but
// the session must not be lost with it: the new cookie must name the old
// session's data, not nothing (the old ID already a tombstone). The same
// for session_regenerate_id(false), which keeps the old session, but the
// browser only the new cookie.
func TestRegenerationWrittenAfterTheHeadersKeepsTheSession(t *testing.T) {
	for _, c := range []struct {
		mode LockMode
		keep bool
	}{{LockStrict, false}, {LockMerge, false}, {LockStrict, true}, {LockMerge, true}} {
		mode := c.mode
		mem := memory.New(memory.Options{})
		t.Cleanup(func() { mem.Close() })
		fs := &failIDStore{Store: mem}
		m := newTestManager(t, mode, fs)
		x := createSession(t, m, `{"user":"ana"}`)
		b := newFramingBridge(t, m, x, "00112233445566778899aabbccddeeff")
		y := NewID()
		msgs := []message{
			{Op: "destroy", ID: x, Payload: []byte("regenerate")},
			{Op: "open", ID: y, Payload: []byte("regenerate")},
		}
		if c.keep {
			old, _ := phpserial.EncodeSession(json.RawMessage(`{"user":"ana"}`), phpserial.DefaultLimits())
			msgs[0] = message{Op: "write", ID: x, Payload: old}
		}
		for _, msg := range msgs {
			if err := b.apply(msg); err != nil {
				t.Fatalf("%v %s: %v", mode, msg.Op, err)
			}
		}
		b.onFrameHeaders(nil)
		if err := b.failure(); err != nil {
			t.Fatalf("%v: headers: %v", mode, err)
		}
		h := http.Header{}
		b.sess.SetCookie(h)
		if got := setCookieID(t, m, h); got != y {
			t.Fatalf("%v: cookie for %q, want the new session %q", mode, got, y)
		}
		fs.setFailing(y, true)
		payload, _ := phpserial.EncodeSession(json.RawMessage(`{"user":"ana","logged":true}`), phpserial.DefaultLimits())
		if err := b.apply(message{Op: "write", ID: y, Payload: payload}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%v: the failing write gave %v, want ErrUnavailable", mode, err)
		}
		b.finish()
		b.sess.Release(t.Context())
		fs.setFailing(y, false)
		if got := storedData(t, m, y); !strings.Contains(got, `"user":"ana"`) {
			t.Errorf("%v, keep %v: the new cookie's session holds %s after its write failed, want the old session's data", mode, c.keep, got)
		}
	}
}

// stallStore passes, once armed, one more change (a Save or a Delete), and
// fails every call after it: a Redis that stalls in the middle of a
// regeneration, as it does under a fork on a big dataset.
type stallStore struct {
	store.Store
	mu      sync.Mutex
	armed   bool
	changes int
}

func (f *stallStore) stalled(change bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		return false
	}
	if f.changes > 0 {
		return true
	}
	if change {
		f.changes++
	}
	return false
}

func (f *stallStore) arm(on bool) {
	f.mu.Lock()
	f.armed, f.changes = on, 0
	f.mu.Unlock()
}

var errStalled = fmt.Errorf("%w: i/o timeout", store.ErrUnavailable)

func (f *stallStore) Load(ctx context.Context, id string) (store.Record, error) {
	if f.stalled(false) {
		return store.Record{}, errStalled
	}
	return f.Store.Load(ctx, id)
}

func (f *stallStore) Save(ctx context.Context, id string, expect uint64, v []byte, ttl time.Duration) (uint64, error) {
	if f.stalled(true) {
		return 0, errStalled
	}
	return f.Store.Save(ctx, id, expect, v, ttl)
}

func (f *stallStore) Delete(ctx context.Context, id string) error {
	if f.stalled(true) {
		return errStalled
	}
	return f.Store.Delete(ctx, id)
}

// Merge mode: a Redis that stalls in the middle of a regeneration, after
// one of its writes: whichever it was, the old cookie, which the browser
// keeps on the 503, must still name the session.
func TestMergeRegenerationStallingKeepsTheOldSession(t *testing.T) {
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	fs := &stallStore{Store: mem}
	m := newTestManager(t, LockMerge, fs)
	x := createSession(t, m, `{"user":"ana"}`)
	b := newTestBridge(t, m, x)
	fs.arm(true)
	y := NewID()
	payload, _ := phpserial.EncodeSession(json.RawMessage(`{"user":"ana","logged":true}`), phpserial.DefaultLimits())
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
	b.sess.Release(t.Context())
	fs.arm(false)
	if !errors.Is(werr, ErrUnavailable) {
		t.Fatalf("the stalled regeneration gave %v, want ErrUnavailable (503)", werr)
	}
	if got := storedData(t, m, x); !strings.Contains(got, `"user":"ana"`) {
		t.Errorf("after the stalled regeneration the old cookie's session holds %s, want {\"user\":\"ana\"}", got)
	}
}

// Two session_regenerate_id(true) in one request (a login that
// regenerates, then a "remember me" step that does it again): the ID in
// between was never stored, and the session moves from the old ID to the
// last one as for one regeneration. A store failing that move must leave
// the old session, not have retired it at the second regeneration.
func TestDoubleRegenerationTheStoreFailsKeepsTheOldSession(t *testing.T) {
	for _, mode := range []LockMode{LockStrict, LockMerge} {
		for _, fail := range []bool{true, false} {
			mem := memory.New(memory.Options{})
			t.Cleanup(func() { mem.Close() })
			fs := &failNewStore{Store: mem}
			m := newTestManager(t, mode, fs)
			x := createSession(t, m, `{"user":"ana"}`)
			b := newTestBridge(t, m, x)
			if fail {
				fs.arm()
			}
			y, z := NewID(), NewID()
			payload, _ := phpserial.EncodeSession(json.RawMessage(`{"user":"ana","logged":true}`), phpserial.DefaultLimits())
			var werr error
			for _, msg := range []message{
				{Op: "destroy", ID: x, Payload: []byte("regenerate")},
				{Op: "open", ID: y, Payload: []byte("regenerate")},
				{Op: "destroy", ID: y, Payload: []byte("regenerate")},
				{Op: "open", ID: z, Payload: []byte("regenerate")},
				{Op: "write", ID: z, Payload: payload},
			} {
				if err := b.apply(msg); err != nil && werr == nil {
					werr = err
				}
			}
			h := http.Header{}
			if werr == nil {
				b.sess.SetCookie(h)
			}
			b.sess.Release(t.Context())
			fs.mu.Lock()
			fs.armed = false
			fs.mu.Unlock()
			if fail {
				if !errors.Is(werr, ErrUnavailable) {
					t.Fatalf("%v: the failed regeneration gave %v, want ErrUnavailable", mode, werr)
				}
				if got := storedData(t, m, x); !strings.Contains(got, `"user":"ana"`) {
					t.Errorf("%v: after the failed double regeneration the old cookie's session holds %s, want {\"user\":\"ana\"}", mode, got)
				}
				continue
			}
			if werr != nil {
				t.Fatalf("%v: %v", mode, werr)
			}
			if got := setCookieID(t, m, h); got != z {
				t.Errorf("%v: cookie for %q, want the last new ID", mode, got)
			}
			if got := storedData(t, m, z); got != `{"user":"ana","logged":true}` {
				t.Errorf("%v: the last new ID holds %s", mode, got)
			}
			for _, id := range []string{x, y} {
				if got := storedData(t, m, id); got != "{}" {
					t.Errorf("%v: %s holds %s after the double regeneration, want nothing", mode, shortID(id), got)
				}
			}
		}
	}
}

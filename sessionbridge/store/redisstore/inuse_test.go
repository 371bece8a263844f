package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// A use (Load, Lock) gives a record back the TTL its last write or refresh
// gave it (field t, recordInUse), and only that: it never shortens a
// longer TTL (one a gateway with a longer idle timeout gave it during a
// rolling change), and a record a gateway of an earlier release wrote,
// without t, keeps the TTL it has.
func TestUseRestoresOnlyAShorterTTLItGave(t *testing.T) {
	mr := miniredis.RunT(t)
	s := openTestStore(t, "redis://"+mr.Addr()+"/0", nil, Options{})
	ctx := context.Background()
	pttl := func(id string) time.Duration {
		t.Helper()
		return mr.TTL("test:{" + id + "}")
	}
	use := map[string]func(id string){
		"load": func(id string) {
			if _, err := s.Load(ctx, id); err != nil {
				t.Fatal(err)
			}
		},
		"lock": func(id string) {
			l, _, err := s.Lock(ctx, id, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep}); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, use := range use {
		t.Run(name, func(t *testing.T) {
			given := name + "-given"
			if _, err := s.Save(ctx, given, 0, []byte("x"), 10*time.Second); err != nil {
				t.Fatal(err)
			}
			mr.FastForward(9 * time.Second)
			use(given)
			if got := pttl(given); got != 10*time.Second {
				t.Errorf("a record saved with a 10 s TTL, used 9 s later, has %v left, want 10s", got)
			}

			longer := name + "-longer"
			if _, err := s.Save(ctx, longer, 0, []byte("x"), 10*time.Second); err != nil {
				t.Fatal(err)
			}
			mr.SetTTL("test:{"+longer+"}", time.Minute)
			use(longer)
			if got := pttl(longer); got != time.Minute {
				t.Errorf("a record with a minute left, last given 10 s, has %v left after a use, want 1m0s", got)
			}

			old := name + "-old"
			mr.HSet("test:{"+old+"}", "v", "7", "d", "x")
			mr.SetTTL("test:{"+old+"}", 10*time.Second)
			mr.FastForward(9 * time.Second)
			use(old)
			if got := pttl(old); got != time.Second {
				t.Errorf("a record without the TTL it was given has %v left after a use, want 1s as before", got)
			}
		})
	}
}

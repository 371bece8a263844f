package phproute

import (
	"os"
	"sync/atomic"
	"testing"
)

// TestRootAndRealPathAgreeUnderSwitches: a deploy followed at once by a
// rollback (dep rollback, cap deploy:rollback) repoints current twice. The
// router opened the root by the symlinked path and resolved that path again
// for RealPath: a switch between the two left it routing in one release
// while sending php-fpm DOCUMENT_ROOT of the other, and judging symlinks
// inside the root against the wrong tree (404 with a warning), until the
// next look a second later.
func TestRootAndRealPathAgreeUnderSwitches(t *testing.T) {
	_, current := releases(t, nil, nil)
	r := newRouter(t, current, "")
	lookEvery(t, 0)

	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			tmp := current + ".tmp"
			os.Remove(tmp)
			if err := os.Symlink("releases/"+string(rune('1'+i%2)), tmp); err != nil {
				return
			}
			os.Rename(tmp, current)
		}
	}()
	mismatches := 0
	for i := 0; i < 20000 && mismatches == 0; i++ {
		root := r.current().root
		have, err1 := root.Stat(".")
		real, err2 := os.Stat(r.open.Load().real)
		if err1 == nil && err2 == nil && !os.SameFile(have, real) {
			mismatches++
			t.Errorf("after %d looks: the open root is not the directory RealPath %s names", i, r.open.Load().real)
		}
	}
	stop.Store(true)
	<-done
}

package compress

import (
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingReader counts the reads of the file it stands for.
type countingReader struct {
	r     io.Reader
	reads *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.r.Read(p)
}

type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("a cached file was read again")
	return 0, io.EOF
}

func key(path, content string, mod int64) FileKey {
	return FileKey{Path: path, Size: int64(len(content)), ModNanos: mod, Dev: 1, Ino: 7}
}

func TestCacheHitAndVersions(t *testing.T) {
	c := NewCache(1 << 20)
	body := strings.Repeat("body{color:red}\n", 100)
	gz, err := c.Gzipped(key("a.css", body, 1), strings.NewReader(body))
	if err != nil || gunzip(t, gz) != body {
		t.Fatalf("first: %v", err)
	}
	again, err := c.Gzipped(key("a.css", body, 1), failReader{t})
	if err != nil || &again[0] != &gz[0] {
		t.Errorf("second request did not come from the cache: %v", err)
	}
	// The same path rewritten (mtime) or replaced (inode): another entry.
	v2 := body + "/* v2 */"
	gz2, err := c.Gzipped(key("a.css", v2, 2), strings.NewReader(v2))
	if err != nil || gunzip(t, gz2) != v2 {
		t.Fatalf("new version: %v", err)
	}
	k := key("a.css", v2, 2)
	k.Ino = 8
	var reads atomic.Int64
	if _, err := c.Gzipped(k, countingReader{strings.NewReader(v2), &reads}); err != nil || reads.Load() == 0 {
		t.Errorf("a replaced file (other inode) was not read: %v", err)
	}
	if n := c.Stats().Files; n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
}

func TestCacheChangedWhileRead(t *testing.T) {
	c := NewCache(1 << 20)
	body := strings.Repeat("x", 1000)
	// The file grew (or shrank) after its size was taken.
	for _, now := range []string{body + "more", body[:500]} {
		if _, err := c.Gzipped(key("a.txt", body, 1), strings.NewReader(now)); !errors.Is(err, errChanged) {
			t.Errorf("%d bytes for a %d-byte key: err %v", len(now), len(body), err)
		}
	}
	if n := c.Stats().Files; n != 0 {
		t.Errorf("a torn read was cached")
	}
}

func TestCacheStaysWithinBound(t *testing.T) {
	const max = 64 << 10
	c := NewCache(max)
	// Incompressible-ish distinct bodies of 4 KiB each.
	for i := 0; i < 100; i++ {
		b := make([]byte, 4096)
		for j := range b {
			b[j] = byte((i*7919 + j*j*31 + j>>3) % 251)
		}
		if _, err := c.Gzipped(FileKey{Path: "f", Size: 4096, ModNanos: int64(i)}, strings.NewReader(string(b))); err != nil {
			t.Fatal(err)
		}
		if used := c.Stats().Bytes; used > max {
			t.Fatalf("after %d files: %d bytes cached, bound %d", i+1, used, max)
		}
	}
	if st := c.Stats(); st.Files == 0 || st.Bytes == 0 {
		t.Errorf("nothing cached")
	}
	if c.Fits(max/8+1) || !c.Fits(max/8) {
		t.Errorf("Fits: an eighth of the cache is the largest file")
	}
	var nilCache *Cache
	if nilCache.Fits(1) {
		t.Errorf("a nil cache fits files")
	}
}

func TestCacheCompressesOnceForConcurrentMisses(t *testing.T) {
	c := NewCache(1 << 20)
	body := strings.Repeat("function f(){}\n", 4000)
	var reads atomic.Int64
	// A reader that blocks until every request has arrived, so they all
	// miss together.
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([][]byte, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := io.MultiReader(blockUntil(release), strings.NewReader(body))
			gz, err := c.Gzipped(key("app.js", body, 1), countingReader{r, &reads})
			if err != nil {
				t.Error(err)
			}
			results[i] = gz
		}(i)
	}
	close(release)
	wg.Wait()
	for i, gz := range results {
		if gunzip(t, gz) != body {
			t.Errorf("request %d got another body", i)
		}
	}
	// One reader consumed the file; the others waited for its result. The
	// reads of one reader are many (32 KiB at a time), so compare with one
	// file's worth.
	if perFile := int64(len(body)/(32<<10) + 3); reads.Load() > perFile+2 {
		t.Errorf("%d reads for 8 concurrent misses; one compression needs about %d", reads.Load(), perFile)
	}
}

type blocker chan struct{}

func blockUntil(ch chan struct{}) io.Reader { return blocker(ch) }

func (b blocker) Read([]byte) (int, error) {
	<-b
	return 0, io.EOF
}

// TestCacheFillsAreBounded: while maxFills files are being compressed,
// another file not cached is refused (ErrBusy: sent as it is) rather than
// compressed too; a copy already cached is still served.
func TestCacheFillsAreBounded(t *testing.T) {
	c := NewCache(1 << 20)
	body := strings.Repeat("a", 1000)
	if _, err := c.Gzipped(key("cached.txt", body, 1), strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < maxFills; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := io.MultiReader(blockUntil(release), strings.NewReader(body))
			if _, err := c.Gzipped(key("slow"+string(rune('a'+i)), body, 1), r); err != nil {
				t.Error(err)
			}
		}(i)
	}
	// Wait until both fills hold their slot.
	for deadline := time.Now().Add(5 * time.Second); len(c.fills) < maxFills; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the fills did not start")
		}
	}
	if _, err := c.Gzipped(key("third.txt", body, 1), strings.NewReader(body)); !errors.Is(err, ErrBusy) {
		t.Errorf("a third fill: %v, want ErrBusy", err)
	}
	if gz, err := c.Gzipped(key("cached.txt", body, 1), failReader{t}); err != nil || gz == nil {
		t.Errorf("a cached copy while busy: %v", err)
	}
	close(release)
	wg.Wait()
	if _, err := c.Gzipped(key("third.txt", body, 1), strings.NewReader(body)); err != nil {
		t.Errorf("after the fills: %v", err)
	}
}

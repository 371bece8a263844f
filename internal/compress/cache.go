package compress

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// FileKey names one version of a static file: the same path with another
// size, modification time, status change time or inode is another entry,
// so a deploy that rewrites or replaces a file is never answered from the
// old one, even when it keeps the size and mtime (a reproducible build's
// fixed mtime; a freed inode number reused for the new file).
type FileKey struct {
	Path        string
	Size        int64
	ModNanos    int64
	ChangeNanos int64
	Dev, Ino    uint64
}

// Cache keeps gzipped copies of static files in memory, least recently
// used out first. Compressing a 290 KB script at level 1 costs about 3 ms
// of CPU, on every request where nginx's gzip would pay it; from the cache
// a file is compressed once, at the default level (smaller than level 1),
// and then costs what sending its bytes costs. Safe for concurrent use.
type Cache struct {
	max      int64 // total bytes of compressed copies
	maxEntry int64 // largest file taken in (uncompressed)

	// fills bounds the compressions running at once: a client asking for
	// many large files it knows are not cached gets them uncompressed
	// (ErrBusy) rather than keeping every CPU compressing.
	fills chan struct{}

	hits, misses, busy, tooLarge, failed, uncached atomic.Int64

	mu       sync.Mutex
	used     int64
	lru      *list.List // of *cacheEntry, most recent first
	entries  map[FileKey]*list.Element
	inflight map[FileKey]*call
}

type cacheEntry struct {
	key FileKey
	gz  []byte
}

// call is one compression in progress, which concurrent misses for the
// same file wait for instead of compressing it again.
type call struct {
	done chan struct{}
	gz   []byte
	err  error
}

// NewCache returns a cache holding at most max bytes of compressed copies.
// Files larger than an eighth of it are not taken in, so that one of them
// cannot push out everything else.
func NewCache(max int64) *Cache {
	return &Cache{
		max:      max,
		maxEntry: max / 8,
		fills:    make(chan struct{}, maxFills),
		lru:      list.New(),
		entries:  make(map[FileKey]*list.Element),
		inflight: make(map[FileKey]*call),
	}
}

// maxFills is how many files may be compressed into the cache at once.
// Each holds a buffer of up to an eighth of the cache meanwhile, so this
// also bounds that memory.
const maxFills = 2

// ErrTooLarge is Gzipped's answer for a file over an eighth of the cache:
// send it uncompressed.
var ErrTooLarge = errors.New("compress: file too large for the cache")

// ErrBusy is Gzipped's answer when the file is not cached and maxFills
// other files are being compressed: send it uncompressed this time.
var ErrBusy = errors.New("compress: busy compressing other files")

// Cached returns the cached gzipped content of the file key names, or nil.
// The returned slice is shared: read it, never change it.
func (c *Cache) Cached(key FileKey) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		c.hits.Add(1)
		return el.Value.(*cacheEntry).gz
	}
	return nil
}

// Fits reports whether a file of size bytes may be cached.
func (c *Cache) Fits(size int64) bool { return c != nil && size <= c.maxEntry }

// NotCached counts a request that wanted a gzipped copy the cache did not
// have and was not to make (a revalidation answered 304): it got the 304
// without compressing the file.
func (c *Cache) NotCached() { c.uncached.Add(1) }

// Gzipped returns the gzipped content of the file key names, reading it
// from r (at most key.Size bytes) only when the cache does not have it.
// The returned slice is shared: read it, never change it.
func (c *Cache) Gzipped(key FileKey, r io.Reader) ([]byte, error) {
	if key.Size > c.maxEntry {
		c.tooLarge.Add(1)
		return nil, ErrTooLarge
	}
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		gz := el.Value.(*cacheEntry).gz
		c.mu.Unlock()
		c.hits.Add(1)
		return gz, nil
	}
	if cl, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-cl.done
		if cl.err == nil {
			c.hits.Add(1)
		}
		return cl.gz, cl.err
	}
	select {
	case c.fills <- struct{}{}:
	default:
		c.mu.Unlock()
		c.busy.Add(1)
		return nil, ErrBusy
	}

	cl := &call{done: make(chan struct{})}
	c.inflight[key] = cl
	c.mu.Unlock()

	cl.gz, cl.err = gzipAll(r, key.Size)
	<-c.fills

	if cl.err == nil {
		c.misses.Add(1)
	} else {
		c.failed.Add(1)
	}
	c.mu.Lock()
	delete(c.inflight, key)
	if cl.err == nil {
		c.add(key, cl.gz)
	}
	c.mu.Unlock()
	close(cl.done)
	return cl.gz, cl.err
}

// add stores gz under key, evicting the least recently used copies to stay
// within max. Called with mu held.
func (c *Cache) add(key FileKey, gz []byte) {
	size := int64(len(gz))
	if size > c.max {
		return
	}
	for c.used+size > c.max {
		oldest := c.lru.Back()
		e := oldest.Value.(*cacheEntry)
		c.lru.Remove(oldest)
		delete(c.entries, e.key)
		c.used -= int64(len(e.gz))
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, gz: gz})
	c.used += size
}

// CacheStats is what the cache reports for metrics.
type CacheStats struct {
	Files, Bytes, MaxBytes int64
	// Hits counts requests answered from a cached copy (or from one
	// another request was making), Misses the compressions that were
	// kept; the others were sent uncompressed: Busy because maxFills
	// compressions were running, TooLarge because the file was over an
	// eighth of the cache, Failed because it changed or could not be read
	// while it was compressed, Uncached because only a cached copy would
	// do (a revalidation answered 304) and there was none.
	Hits, Misses, Busy, TooLarge, Failed, Uncached int64
}

// Stats returns the cache's counts, for metrics taken at scrape time.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	st := CacheStats{Files: int64(len(c.entries)), Bytes: c.used, MaxBytes: c.max}
	c.mu.Unlock()
	st.Hits, st.Misses, st.Busy = c.hits.Load(), c.misses.Load(), c.busy.Load()
	st.TooLarge, st.Failed, st.Uncached = c.tooLarge.Load(), c.failed.Load(), c.uncached.Load()
	return st
}

// gzipAll compresses what r yields, which must be exactly size bytes: a
// file that changed while it was read is an error, not a cached copy of
// half of it. No random padding here: a static file holds no secret a
// BREACH attacker could be after.
func gzipAll(r io.Reader, size int64) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(int(size/3) + 64)
	zw, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
	n, err := io.Copy(zw, io.LimitReader(r, size+1))
	if err != nil {
		return nil, err
	}
	if n != size {
		return nil, errChanged
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(b.Bytes()), nil
}

var errChanged = errors.New("compress: the file changed size while it was read")

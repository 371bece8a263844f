package readahead

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// upstream is a fake upstream body: pieces arrive on a channel, as records
// arrive from php-fpm.
type upstream struct {
	mu      sync.Mutex
	pending []byte
	pieces  chan []byte
	fail    error // returned after the pieces, instead of io.EOF
	closed  chan struct{}
	once    sync.Once
	ended   chan struct{} // closed when Read returned the end
	endOnce sync.Once
}

func newUpstream(buffer int) *upstream {
	return &upstream{pieces: make(chan []byte, buffer), closed: make(chan struct{}), ended: make(chan struct{})}
}

func (u *upstream) Read(p []byte) (int, error) {
	u.mu.Lock()
	if len(u.pending) == 0 {
		u.mu.Unlock()
		select {
		case piece, ok := <-u.pieces:
			if !ok {
				u.endOnce.Do(func() { close(u.ended) })
				if u.fail != nil {
					return 0, u.fail
				}
				return 0, io.EOF
			}
			u.mu.Lock()
			u.pending = piece
		case <-u.closed:
			return 0, errors.New("upstream connection closed")
		}
	}
	n := copy(p, u.pending)
	u.pending = u.pending[n:]
	u.mu.Unlock()
	return n, nil
}

// sendAll sends data in pieces of piece() bytes (at most what is left),
// calling between (if set) after each, then ends the response.
func (u *upstream) sendAll(data []byte, piece func() int, between func()) {
	for len(data) > 0 {
		n := min(len(data), piece())
		u.pieces <- data[:n]
		data = data[n:]
		if between != nil {
			between()
		}
	}
	close(u.pieces)
}

func (u *upstream) Close() error {
	u.once.Do(func() { close(u.closed) })
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	return b
}

// A client that does not read does not hold the upstream: the whole response
// (memory, then the temp file) is read to its end meanwhile, and the client
// then gets it byte for byte, in order.
func TestSlowClientFreesUpstream(t *testing.T) {
	dir := t.TempDir()
	want := randomBytes(3<<20 + 12345)
	u := newUpstream(0)
	b := New(u, Options{Memory: 4 << 10, TempDir: dir})
	go u.sendAll(want, func() int { return 1 + rand.IntN(40<<10) }, nil)
	first := make([]byte, 10)
	if _, err := io.ReadFull(b, first); err != nil {
		t.Fatal(err)
	}
	select {
	case <-u.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream was not read to its end while the client waited")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("temp file left in the directory: %v", ents)
	}
	var got bytes.Buffer
	got.Write(first)
	p := make([]byte, 7000)
	for {
		n, err := b.Read(p[:1+rand.IntN(len(p)-1)])
		got.Write(p[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("got %d bytes, want %d, equal prefix %d", got.Len(), len(want), commonPrefix(got.Bytes(), want))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// The client and the upstream run at the same time, in turns: bytes are
// delivered in order across every switch between memory and the file.
func TestInterleavedReadsKeepOrder(t *testing.T) {
	for round := 0; round < 20; round++ {
		want := randomBytes(200<<10 + rand.IntN(100<<10))
		u := newUpstream(0)
		b := New(u, Options{Memory: 1 << 10, TempDir: t.TempDir()})
		go u.sendAll(want, func() int { return 1 + rand.IntN(3000) }, func() {
			if rand.IntN(4) == 0 {
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			}
		})
		var got bytes.Buffer
		p := make([]byte, 5000)
		for {
			n, err := b.Read(p[:1+rand.IntN(len(p)-1)])
			got.Write(p[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if rand.IntN(8) == 0 {
				time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			}
		}
		b.Close()
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("round %d: got %d bytes, want %d, equal prefix %d", round, got.Len(), len(want), commonPrefix(got.Bytes(), want))
		}
	}
}

// Past Max the upstream waits for the client again.
func TestMaxHoldsBackTheUpstream(t *testing.T) {
	u := newUpstream(0)
	b := New(u, Options{Memory: 1 << 10, Max: 64 << 10, TempDir: t.TempDir()})
	sent := make(chan int, 1)
	go func() {
		n := 0
		for i := 0; i < 64; i++ {
			u.pieces <- make([]byte, 4<<10)
			n += 4 << 10
		}
		sent <- n
		close(u.pieces)
	}()
	one := make([]byte, 1)
	if _, err := b.Read(one); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-sent:
		t.Fatalf("the upstream sent all %d bytes with 1 read by the client and a 64 KiB limit", n)
	case <-time.After(300 * time.Millisecond):
	}
	n, err := io.Copy(io.Discard, b)
	if err != nil || n != 256<<10-1 {
		t.Fatalf("rest: %d %v", n, err)
	}
	b.Close()
}

// A fast client gets each piece as soon as the upstream sends it, even while
// the upstream is still busy (PHP's flush()).
func TestPieceReachesClientAtOnce(t *testing.T) {
	u := newUpstream(0)
	b := New(u, Options{})
	go func() { u.pieces <- []byte("a") }()
	p := make([]byte, 100)
	done := make(chan string)
	go func() {
		n, _ := b.Read(p)
		done <- string(p[:n])
	}()
	select {
	case got := <-done:
		if got != "a" {
			t.Fatalf("got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first piece waited for more")
	}
	close(u.pieces)
	if _, err := b.Read(p); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	b.Close()
}

// An upstream that fails after some bytes: the client gets the bytes, then
// the error, never a clean end.
func TestUpstreamFailureReachesClient(t *testing.T) {
	cut := errors.New("worker died")
	u := newUpstream(0)
	u.fail = cut
	b := New(u, Options{Memory: 1 << 10, TempDir: t.TempDir()})
	go func() {
		u.pieces <- bytes.Repeat([]byte("x"), 5000)
		close(u.pieces)
	}()
	got, err := io.ReadAll(b)
	if !errors.Is(err, cut) || len(got) != 5000 {
		t.Fatalf("got %d bytes, err %v", len(got), err)
	}
	b.Close()
}

// Close while the read-ahead waits for the upstream (the client left):
// the upstream is closed, the goroutine ends, later reads fail.
func TestCloseStopsReadAhead(t *testing.T) {
	u := newUpstream(0)
	b := New(u, Options{})
	go func() { u.pieces <- []byte("part") }()
	p := make([]byte, 10)
	if n, err := b.Read(p); err != nil || string(p[:n]) != "part" {
		t.Fatalf("%q %v", p[:n], err)
	}
	reading := make(chan error, 1)
	go func() {
		_, err := b.Read(p)
		reading <- err
	}()
	time.Sleep(20 * time.Millisecond)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
	select {
	case <-u.closed:
	default:
		t.Fatal("the upstream was not closed")
	}
	if err := <-reading; err == nil || err == io.EOF {
		t.Fatalf("a read waiting during Close returned %v", err)
	}
	if _, err := b.Read(p); err != ErrClosed {
		t.Fatalf("read after Close: %v", err)
	}
}

// A temp directory that cannot be used costs the read-ahead its file, never
// the response: memory only, the upstream held back at Memory.
func TestTempFileFailureFallsBackToMemory(t *testing.T) {
	var reported []error
	want := randomBytes(300 << 10)
	u := newUpstream(0)
	b := New(u, Options{Memory: 8 << 10, TempDir: filepath.Join(t.TempDir(), "missing"),
		OnTempFileError: func(err error) { reported = append(reported, err) }})
	go u.sendAll(want, func() int { return 5000 }, nil)
	first := make([]byte, 1)
	if _, err := io.ReadFull(b, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	select {
	case <-u.ended:
		t.Fatal("read ahead past Memory without a temp file")
	default:
	}
	rest, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(append(first, rest...), want) {
		t.Fatalf("got %d bytes, err %v", len(rest)+1, err)
	}
	if len(reported) != 1 {
		t.Fatalf("temp file errors reported %d times, want once", len(reported))
	}
	b.Close()
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// fullFile is a temp file on a disk that fills after room bytes: a write
// past it stores what fits and fails with ENOSPC, as pwrite does.
type fullFile struct {
	mu   sync.Mutex
	data []byte
	room int
}

func (f *fullFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := min(len(p), max(0, f.room-int(off)))
	if need := int(off) + n; need > len(f.data) {
		f.data = append(f.data, make([]byte, need-len(f.data))...)
	}
	copy(f.data[off:], p[:n])
	if n < len(p) {
		return n, &os.PathError{Op: "write", Path: "spool", Err: syscall.ENOSPC}
	}
	return n, nil
}

func (f *fullFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	return copy(p, f.data[off:]), nil
}

func (f *fullFile) Close() error { return nil }

// A disk that fills while the temp file holds part of the response loses
// nothing: the rest waits in memory for the client, which gets the whole
// response, and the failure is reported once. Before, the response ended
// in an error there: the client got it cut short.
func TestTempFileFullMidResponseLosesNothing(t *testing.T) {
	f := &fullFile{room: 100<<10 + 123}
	defer func(o func(string) (spool, error)) { openTemp = o }(openTemp)
	openTemp = func(string) (spool, error) { return f, nil }
	var reported []error
	want := randomBytes(600 << 10)
	u := newUpstream(0)
	b := New(u, Options{Memory: 16 << 10, TempDir: t.TempDir(),
		OnTempFileError: func(err error) { reported = append(reported, err) }})
	go u.sendAll(want, func() int { return 7000 }, nil)
	first := make([]byte, 1)
	if _, err := io.ReadFull(b, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the reader-ahead fills the disk
	rest, err := io.ReadAll(b)
	got := append(first, rest...)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %d of %d bytes (first difference at %d), err %v", len(got), len(want), commonPrefix(got, want), err)
	}
	if len(reported) != 1 || !errors.Is(reported[0], syscall.ENOSPC) {
		t.Fatalf("reported %v, want one ENOSPC", reported)
	}
	b.Close()
}

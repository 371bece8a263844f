// Package readahead frees an upstream (a php-fpm worker, a gunicorn thread,
// the session lock PHP holds until its script ends) from a client that reads
// slowly, as nginx's fastcgi_buffering and proxy_buffering do.
//
// A Body's first read starts one goroutine that reads the upstream to its
// end into memory, then an unlinked temp file, while the caller writes to
// the client what has arrived. A fast client still gets each piece as soon
// as the upstream sends it (PHP's flush(), server-sent events); a slow one
// no longer holds the upstream until it has downloaded everything. Callers
// wrap only responses that did not arrive whole: the reader cannot tell a
// slow client from a fast one before it is too late (it is blocked in a
// write to the client, not in a read).
package readahead

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/sessiongate/sessiongate/internal/tempfile"
)

// Options bound what one response may hold.
type Options struct {
	// Memory is how many bytes are held in memory before the temp file is
	// used (default 64 KiB).
	Memory int
	// Max is the most bytes held at once; at that point the upstream waits
	// for the client, as without read-ahead (default 1 GiB, nginx's
	// fastcgi_max_temp_file_size).
	Max int64
	// TempDir holds the temp files (default os.TempDir()).
	TempDir string
	// OnTempFileError is told once when the temp file cannot be created or
	// written; the response then goes on with memory only (Max becomes
	// Memory), never failing because of the disk.
	OnTempFileError func(error)
	// Budget (may be nil) is shared with other bodies and bounds what
	// they hold together.
	Budget *Budget
}

const (
	defaultMemory = 64 << 10
	defaultMax    = 1 << 30
	chunkSize     = 32 << 10
)

// spool is the temp file; tests stand in a disk that fills.
type spool interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

var openTemp = func(dir string) (spool, error) {
	return tempfile.Unlinked(dir, "sessiongate-response-*")
}

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("readahead: read on closed body")

// Body reads src ahead of its consumer. Read and Close follow io.ReadCloser:
// one reader; Close may run while a Read waits.
type Body struct {
	src io.ReadCloser
	o   Options

	mu      sync.Mutex
	cond    sync.Cond
	started bool
	closed  bool
	// mem[memOff:], the file between fileR and fileW, then tail hold the
	// bytes read ahead, in that order: data goes to the file once mem is
	// full, and keeps going there until the file is drained, so the order
	// is kept; tail holds what came after the file failed (a full disk)
	// until the file is drained.
	mem          []byte
	memOff       int
	file         spool
	fileR, fileW int64
	tail         []byte
	noFile       bool // the temp file failed: memory only
	// charged is the part of held() counted in o.Budget, reserved the
	// part of the chunk being read; a chunk read with the budget spent
	// and nothing held is not counted.
	charged, reserved int64
	starved           bool  // the budget refused it once: the response is counted once
	end               error // src's end (io.EOF or its failure), once read ahead
	exited            chan struct{}
}

// New wraps src.
func New(src io.ReadCloser, o Options) *Body {
	if o.Memory <= 0 {
		o.Memory = defaultMemory
	}
	if o.Max <= 0 {
		o.Max = defaultMax
	}
	if o.Max < int64(o.Memory) {
		o.Max = int64(o.Memory)
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	b := &Body{src: src, o: o}
	b.cond.L = &b.mu
	return b
}

func (b *Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, ErrClosed
	}
	if !b.started {
		b.started = true
		b.exited = make(chan struct{})
		go b.readAhead()
	}
	defer b.mu.Unlock()
	for b.held() == 0 && b.end == nil && !b.closed {
		b.cond.Wait()
	}
	switch {
	case b.closed:
		return 0, ErrClosed
	case b.held() > 0:
		n, err := b.take(p)
		b.settle()
		b.cond.Broadcast() // room for the reader-ahead
		return n, err
	default:
		return 0, b.end
	}
}

// held is the number of bytes read ahead and not yet consumed; b.mu held.
func (b *Body) held() int64 {
	return int64(len(b.mem)-b.memOff) + b.fileW - b.fileR + int64(len(b.tail))
}

// limit is how much may be held before the reader-ahead waits; b.mu held.
func (b *Body) limit() int64 {
	if b.noFile {
		return int64(b.o.Memory)
	}
	return b.o.Max
}

// chunks recycles the reader-ahead's read buffers.
var chunks = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// readAhead reads src to its end (or until Close) into the spool.
func (b *Body) readAhead() {
	defer close(b.exited)
	bp := chunks.Get().(*[]byte)
	defer chunks.Put(bp)
	buf := *bp
	for {
		b.mu.Lock()
		for !b.closed {
			if b.held() < b.limit() && b.reserve() {
				break
			}
			b.cond.Wait()
		}
		closed := b.closed
		b.mu.Unlock()
		if closed {
			return
		}
		n, err := b.src.Read(buf)
		b.mu.Lock()
		if n > 0 {
			b.put(buf[:n])
		}
		if err != nil {
			b.end = err
		}
		b.reserved = 0
		b.settle()
		b.cond.Broadcast()
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// reserve takes a chunk from the budget before a read; b.mu held. With the
// budget spent, a body that holds nothing still reads one chunk, so its
// answer goes on at the client's pace; one that holds some waits for its
// client to take it.
func (b *Body) reserve() bool {
	if b.o.Budget == nil {
		return true
	}
	if b.o.Budget.take(chunkSize) {
		b.reserved = chunkSize
		b.charged += chunkSize
		return true
	}
	if !b.starved {
		b.starved = true
		b.o.Budget.refuse()
	}
	return b.held() == 0
}

// settle gives back to the budget what the body no longer holds; b.mu held.
func (b *Body) settle() {
	if over := b.charged - b.held() - b.reserved; over > 0 && b.o.Budget != nil {
		b.o.Budget.give(over)
		b.charged -= over
	}
}

// put appends p to the spool; b.mu held. A temp file that cannot be
// created or written (a full disk) turns the body into memory only, losing
// nothing: what the file holds is still read from it, and what comes after
// waits in tail until the file is drained.
func (b *Body) put(p []byte) {
	fileInUse := b.fileW > b.fileR
	if b.noFile && (fileInUse || len(b.tail) > 0) {
		b.tail = append(b.tail, p...)
		return
	}
	if !fileInUse && (b.noFile || len(b.mem)-b.memOff+len(p) <= b.o.Memory) {
		if b.memOff > 0 && b.memOff == len(b.mem) {
			b.mem, b.memOff = b.mem[:0], 0
		} else if b.memOff > 0 && len(b.mem)+len(p) > cap(b.mem) {
			b.mem = append(b.mem[:0], b.mem[b.memOff:]...)
			b.memOff = 0
		}
		b.mem = append(b.mem, p...)
		return
	}
	n, err := b.writeFile(p)
	if err == nil {
		return
	}
	if b.o.OnTempFileError != nil {
		b.o.OnTempFileError(err)
	}
	b.noFile = true
	if b.fileW > b.fileR {
		b.tail = append(b.tail, p[n:]...)
	} else {
		b.mem = append(b.mem, p[n:]...)
	}
}

// writeFile appends p to the temp file and says how much of it the file
// holds: a full disk may take part of it.
func (b *Body) writeFile(p []byte) (int, error) {
	if b.file == nil {
		f, err := openTemp(b.o.TempDir)
		if err != nil {
			return 0, err
		}
		b.file = f
	}
	n, err := b.file.WriteAt(p, b.fileW)
	b.fileW += int64(n)
	return n, err
}

// take moves held bytes into p, memory first; b.mu held.
func (b *Body) take(p []byte) (int, error) {
	if b.memOff < len(b.mem) {
		n := copy(p, b.mem[b.memOff:])
		b.memOff += n
		if b.memOff == len(b.mem) {
			b.mem, b.memOff = b.mem[:0], 0
		}
		return n, nil
	}
	if b.fileR == b.fileW {
		// Only tail is left: it becomes mem, read first from now on.
		b.mem, b.memOff, b.tail = b.tail, 0, nil
		return b.take(p)
	}
	n := int(min(int64(len(p)), b.fileW-b.fileR))
	n, err := b.file.ReadAt(p[:n], b.fileR)
	b.fileR += int64(n)
	if b.fileR == b.fileW {
		b.fileR, b.fileW = 0, 0
	}
	if err != nil && n == 0 {
		return 0, fmt.Errorf("readahead: temp file: %w", err)
	}
	return n, nil
}

// Close ends the body. Before src's end it closes src (for an upstream
// response: the upstream sees the abort), stops the reader-ahead and drops
// what it held.
func (b *Body) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.started
	b.cond.Broadcast()
	b.mu.Unlock()
	err := b.src.Close() // unblocks a reader-ahead waiting on the upstream
	if started {
		<-b.exited
	}
	b.mu.Lock()
	b.mem, b.memOff, b.tail = nil, 0, nil
	b.fileR, b.fileW = 0, 0
	b.reserved = 0
	b.settle()
	if b.file != nil {
		b.file.Close()
		b.file = nil
	}
	b.mu.Unlock()
	return err
}

package compress

import (
	"compress/gzip"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// MinSize is the smallest body worth compressing: below it, gzip's 18 bytes
// of framing and the CPU outweigh what is saved (h5bp's nginx settings use
// the same gzip_min_length).
const MinSize = 256

// maxPadding bounds the random bytes each compressed response carries in
// its gzip header, against BREACH: an attacker who can put chosen text
// into a page next to a secret (a CSRF token, a session-bound value) and
// watch the compressed size guesses the secret a byte at a time; a length
// that varies randomly per response makes that take many times more
// requests ("Heal the Breach", as Django 4.2's GZipMiddleware does with up
// to 100 bytes).
const maxPadding = 100

// maxFlushPadding bounds the random bytes added at each flush of a
// compressed body, after the first piece (whose padding is in the gzip
// header): enough that a flushed piece's size no longer tells one guess
// from the next in a single request, small enough that a stream of many
// flushed lines does not double in size.
const maxFlushPadding = 20

// Writer is an http.ResponseWriter that gzips the body when the client
// accepts gzip and the response is worth it (Compressible type, a status
// with a full body, no Content-Encoding of its own, no Cache-Control:
// no-transform, MinSize or more). Otherwise it passes everything through
// unchanged, adding only Vary: Accept-Encoding to every response of a
// compressible type, so that caches keep the two apart.
//
// A body of unknown length is held back until MinSize bytes, a Flush, or
// the end decide; a Flush from the app (PHP's flush(), a streamed Django
// response) always reaches the client, compressed as far as it went.
// Finish must be called once the handler has returned normally; after a
// panic (an aborted response) it must not be, so that a cut-short body
// never gets a clean gzip ending.
type Writer struct {
	rw      http.ResponseWriter
	accepts bool
	head    bool

	state   state
	status  int
	pending []byte
	gz      *gzip.Writer
	err     error
	// skip: the handler asked for no compression (SkipCompression).
	skip bool
	// ifNoneMatch is the If-None-Match of a GET or HEAD ("" otherwise).
	ifNoneMatch string

	// declared is the Content-Length the handler set before it was
	// removed for the compressed body (-1: none); written counts the
	// bytes the handler has given since.
	declared int64
	written  int64
}

// ErrShort is Finish's answer for a compressed body shorter than the
// Content-Length its handler declared. Handlers end such a response by
// returning (net/http then closes the connection, and the client sees a
// cut body); compressed, it would end with a clean gzip trailer and a last
// chunk, a truncated page or download the browser takes as whole. The
// caller must abort the response instead (panic(http.ErrAbortHandler)).
var ErrShort = errors.New("compress: the body ended before its declared Content-Length")

type state uint8

const (
	undecided  state = iota // WriteHeader not called yet
	holding                 // compressible, length unknown: pending holds the body so far
	passing                 // not compressing; headers are out
	gzipping                // compressing; headers are out
	finished                // Finish ended a compressed body
	discarding              // answered 304 for the app (notModified): its body is dropped
)

// ErrFinished is what a write after Finish gets.
var ErrFinished = errors.New("compress: write after the response was finished")

// NewWriter wraps rw for the request r.
func NewWriter(rw http.ResponseWriter, r *http.Request) *Writer {
	w := &Writer{
		rw:      rw,
		accepts: Accepted(r.Header)&Gzip != 0,
		head:    r.Method == http.MethodHead,
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		w.ifNoneMatch = r.Header.Get("If-None-Match")
	}
	return w
}

func (w *Writer) Header() http.Header { return w.rw.Header() }

// SkipCompression makes the response go out as the handler writes it,
// whatever its type: a static file the cache cannot take, sent with
// sendfile, its length and ranges, rather than compressed anew on every
// request. Call it before the header is written.
func (w *Writer) SkipCompression() { w.skip = true }

// SkipCompression calls SkipCompression on the compress.Writer in w's
// chain of wrappers (through Unwrap), if there is one.
func SkipCompression(w http.ResponseWriter) {
	if cw := writerIn(w); cw != nil {
		cw.SkipCompression()
	}
}

func writerIn(w http.ResponseWriter) *Writer {
	for w != nil {
		if cw, ok := w.(*Writer); ok {
			return cw
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// Unwrap lets http.ResponseController reach the connection's writer
// (write deadlines, hijacking for an upgrade).
func (w *Writer) Unwrap() http.ResponseWriter { return w.rw }

func (w *Writer) WriteHeader(code int) {
	if code < 200 {
		// 1xx: informational, any number of them, before the real one.
		w.rw.WriteHeader(code)
		return
	}
	if w.state != undecided {
		return // superfluous, as net/http ignores it
	}
	w.status = code
	h := w.rw.Header()
	if !w.worthIt(code, h) {
		w.pass()
		return
	}
	AddVary(h, "Accept-Encoding")
	if !w.accepts {
		w.pass()
		return
	}
	if code == http.StatusOK && w.revalidatesWeakened(h) {
		w.notModified(h)
		return
	}
	if cl := first(h["Content-Length"]); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && n < MinSize {
			w.pass()
			return
		}
		if w.head {
			// The headers a GET would get, and no body to compress.
			w.setGzipHeaders(h)
			w.pass()
			return
		}
		if err != nil {
			n = -1
		}
		w.startGzip(n)
		return
	}
	if w.head {
		// No length to go by: whether the GET's body would reach
		// MinSize is unknown, so the headers stay as the app sent them
		// rather than promise a coding the GET may not get.
		w.pass()
		return
	}
	w.state = holding
}

// worthIt reports whether a response with this status and these headers
// is one to compress for a client that accepts gzip.
func (w *Writer) worthIt(code int, h http.Header) bool {
	if w.skip {
		return false
	}
	switch code {
	case http.StatusNoContent, http.StatusPartialContent, http.StatusNotModified,
		http.StatusRequestedRangeNotSatisfiable:
		return false
	}
	// Direct map lookups: the keys are canonical (set through Header.Set,
	// or by the transports), and this runs on every response.
	if len(h["Content-Encoding"]) > 0 {
		// The app's own coding, "identity" included (a script asking
		// for its output as it is), as nginx leaves it.
		return false
	}
	if strings.HasPrefix(strings.TrimSpace(strings.ToLower(first(h["Content-Disposition"]))), "attachment") {
		// A download (a CSV or log export): its Content-Length gives the
		// browser a progress bar and Accept-Ranges a resume after a cut,
		// which a compressed body has neither of.
		return false
	}
	if len(h["Content-Range"]) > 0 {
		return false
	}
	for _, v := range h["Cache-Control"] {
		if strings.Contains(strings.ToLower(v), "no-transform") {
			return false
		}
	}
	return Compressible(first(h["Content-Type"]))
}

// revalidatesWeakened reports whether the request's If-None-Match holds
// the weak form of the app's strong tag, which only a compressed response
// of this Writer gave out (WeakETag). The app cannot match it: apps compare
// the header with their own tag as text (DokuWiki's
// http_conditionalRequest, WordPress's feeds), so each revalidation of a
// compressed page or feed would get the whole of it again, where behind a
// server that does not compress that type the app answers 304.
func (w *Writer) revalidatesWeakened(h http.Header) bool {
	if w.ifNoneMatch == "" {
		return false
	}
	tag := first(h["Etag"])
	if !strings.HasPrefix(tag, `"`) {
		return false
	}
	for _, t := range strings.Split(w.ifNoneMatch, ",") {
		if strings.TrimSpace(t) == "W/"+tag {
			return true
		}
	}
	return false
}

// notModified answers 304 in place of the app's 200, with the headers a
// 304 keeps (RFC 9110 15.4.5; what http.ServeContent keeps), the tag as the
// client holds it, and no body: what the app writes is dropped.
func (w *Writer) notModified(h http.Header) {
	WeakETag(h)
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Accept-Ranges", "Last-Modified"} {
		delete(h, k)
	}
	w.status = http.StatusNotModified
	w.state = discarding
	w.rw.WriteHeader(http.StatusNotModified)
}

func (w *Writer) pass() {
	w.state = passing
	w.rw.WriteHeader(w.status)
}

func (w *Writer) setGzipHeaders(h http.Header) {
	h.Del("Content-Length")
	// Ranges of the compressed body are not ranges of the file.
	h.Del("Accept-Ranges")
	h.Set("Content-Encoding", "gzip")
	WeakETag(h)
}

// startGzip sends the header of a compressed body whose handler declared
// declared bytes (-1: no Content-Length).
func (w *Writer) startGzip(declared int64) {
	h := w.rw.Header()
	w.declared = declared
	w.setGzipHeaders(h)
	w.state = gzipping
	w.rw.WriteHeader(w.status)
	w.gz = getGzip(w.rw)
	if len(w.pending) > 0 {
		_, w.err = w.gz.Write(w.pending)
		w.written += int64(len(w.pending))
	}
	w.pending = nil
}

func (w *Writer) Write(p []byte) (int, error) {
	if w.state == undecided {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case holding:
		w.pending = append(w.pending, p...)
		if len(w.pending) >= MinSize {
			w.startGzip(-1)
			if w.err != nil {
				return 0, w.err
			}
		}
		return len(p), nil
	case finished:
		return 0, ErrFinished
	case discarding:
		return len(p), nil
	case gzipping:
		if w.err != nil {
			return 0, w.err
		}
		n, err := w.gz.Write(p)
		w.written += int64(n)
		if err != nil {
			w.err = err
		}
		return n, err
	default:
		return w.rw.Write(p)
	}
}

// ReadFrom keeps sendfile for a static file that goes out as it is.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.state == undecided {
		w.WriteHeader(http.StatusOK)
	}
	if w.state == passing {
		if rf, ok := w.rw.(io.ReaderFrom); ok {
			return rf.ReadFrom(r)
		}
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	return io.CopyBuffer(writerOnly{w}, r, *bp)
}

// Flush sends what the app has written so far. A response that flushes
// before MinSize bytes is a stream of small pieces (progress output, long
// polling, a row at a time), which compression would make larger, not
// smaller (each flush costs the compressor's framing): it goes out as it
// is. Otherwise the compressor gives up what it buffered (a sync flush,
// which the client can decompress at once), padded like the header (see
// maxPadding): each flushed piece is a size an attacker could measure.
func (w *Writer) Flush() {
	if w.state == undecided {
		w.WriteHeader(http.StatusOK)
	}
	if w.state == holding && len(w.pending) == 0 && len(w.Header()["Trailer"]) == 0 {
		// Nothing written yet: no piece to send, and no sign of a stream
		// of small ones. httputil.ReverseProxy flushes a response of
		// unknown length (a Django page without Content-Length, a
		// StreamingHttpResponse) before its first byte; taken as "flushed
		// early", that response would never be compressed. Its header
		// goes out with the first bytes instead. Not one that announces
		// trailers: ReverseProxy puts their values in the header map once
		// it has flushed, taking the header for sent, and held, it would
		// carry them as header fields.
		return
	}
	if w.state == holding {
		if len(w.pending) < MinSize {
			if err := w.passPending(); err != nil {
				w.err = err
			}
		} else {
			w.startGzip(-1)
		}
	}
	if w.state == gzipping && w.err == nil {
		w.err = w.gz.Flush()
		// Each further flush adds an empty stored block: 5 bytes that
		// decompress to nothing. Up to 20 bytes, not maxPadding: a stream
		// of many small pieces pays it on every one.
		for n := randomBelow(maxFlushPadding/5 + 1); n > 0 && w.err == nil; n-- {
			w.err = w.gz.Flush()
		}
	}
	if f, ok := w.rw.(http.Flusher); ok {
		f.Flush()
	}
}

// Finish ends the response: a held body shorter than MinSize goes out as
// it is, a compressed one gets its gzip trailer.
func (w *Writer) Finish() error {
	switch w.state {
	case holding:
		return w.passPending()
	case gzipping:
		err := w.err
		if err == nil && w.declared >= 0 && w.written < w.declared {
			err = ErrShort
		} else if err == nil {
			err = w.gz.Close()
		}
		putGzip(w.gz)
		w.gz = nil
		w.state = finished
		return err
	}
	return nil
}

// Abort is Finish for a response the handler aborts (it panics, as
// ReverseProxy does when an upstream breaks off): a response still held
// goes out as far as it came, uncompressed, so that the client gets its
// header before the cut, as without compression, and not an empty reply,
// which a browser on a kept-alive connection answers by sending the
// request again. A compressed one is left without its trailer.
func (w *Writer) Abort() {
	if w.state == holding {
		_ = w.passPending()
	}
}

// passPending sends the held body as it is, uncompressed.
func (w *Writer) passPending() error {
	w.pass()
	var err error
	if len(w.pending) > 0 {
		_, err = w.rw.Write(w.pending)
	}
	w.pending = nil
	return err
}

func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

type writerOnly struct{ io.Writer }

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// gzip writers are reused: each holds about 800 KiB of compressor state,
// too much to allocate per response.
var gzipWriters sync.Pool

func getGzip(dst io.Writer) *gzip.Writer {
	gz, _ := gzipWriters.Get().(*gzip.Writer)
	if gz == nil {
		// BestSpeed, as nginx's default gzip_comp_level 1: most of the
		// saving at a fraction of the CPU of the higher levels.
		gz, _ = gzip.NewWriterLevel(dst, gzip.BestSpeed)
	} else {
		gz.Reset(dst)
	}
	gz.Header.Name = padding()
	return gz
}

func putGzip(gz *gzip.Writer) {
	gz.Reset(io.Discard)
	gzipWriters.Put(gz)
}

// randomBelow returns a random number in [0, n), n at most 256.
func randomBelow(n int) int {
	var b [1]byte
	rand.Read(b[:])
	return int(b[0]) % n
}

// padding returns 0 to maxPadding random letters for the gzip header's
// file name field, which decompressors ignore (see maxPadding).
func padding() string {
	var b [1 + maxPadding]byte
	rand.Read(b[:])
	n := int(b[0]) % (maxPadding + 1)
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	out := b[1 : 1+n]
	for i := range out {
		out[i] = letters[int(out[i])%len(letters)]
	}
	return string(out)
}

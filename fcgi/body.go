package fcgi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/sessiongate/sessiongate/internal/bodyread"
	"github.com/sessiongate/sessiongate/internal/tempfile"
)

// memBodyLimit is how much of a request body is held in memory; a larger
// one goes to a temp file, or, of known length and without
// Options.BufferBodies, streams to php-fpm as it arrives. Every body up to
// this size, and every chunked one, is read whole before a php-fpm
// connection is taken, so a slow client does not pin a worker for it and
// the request can be resent on a fresh connection.
const memBodyLimit = 64 << 10

// One byte more than memBodyLimit: a chunked body of exactly memBodyLimit
// bytes then reads as short of the buffer and stays in memory. The largest
// of the body buffers, and the scratch of a body sent from its temp file
// or as it arrives.
var bodyBufPool = sync.Pool{New: func() any { b := make([]byte, memBodyLimit+1); return &b }}

// smallBodyBufPools hold the buffers below bodyBufPool's, one pool a size:
// bodyread.StartSize<<i.
var smallBodyBufPools [4]sync.Pool

// getBodyBuf returns a pooled buffer of at least size bytes, size at most
// memBodyLimit+1.
func getBodyBuf(size int) *[]byte {
	for i := range smallBodyBufPools {
		if c := bodyread.StartSize << i; size <= c {
			if bp, ok := smallBodyBufPools[i].Get().(*[]byte); ok {
				return bp
			}
			b := make([]byte, c)
			return &b
		}
	}
	return bodyBufPool.Get().(*[]byte)
}

// putBodyBuf gives a buffer of getBodyBuf back to its pool.
func putBodyBuf(bp *[]byte) {
	for i := range smallBodyBufPools {
		if len(*bp) == bodyread.StartSize<<i {
			smallBodyBufPools[i].Put(bp)
			return
		}
	}
	bodyBufPool.Put(bp)
}

// readMem reads a body of at most limit bytes into pooled buffers
// (bodyread.Grow).
func readMem(r io.Reader, limit int) (*[]byte, int, error) {
	return bodyread.Grow(r, limit, getBodyBuf, putBodyBuf)
}

// requestBody is a request body made ready for the wire. Exactly one of mem,
// file or stream is set when size > 0; size < 0 means no body.
type requestBody struct {
	size   int64
	mem    []byte
	memBuf *[]byte   // pooled backing array of mem
	file   *os.File  // spooled body, already unlinked
	stream io.Reader // known-length body read while sending
	// consumed is set once stream has given up a byte: from then on the
	// request can no longer be resent.
	consumed bool
}

// replayable reports whether the body can be sent again.
func (b *requestBody) replayable() bool { return b.stream == nil || !b.consumed }

func (b *requestBody) release() {
	if b.memBuf != nil {
		putBodyBuf(b.memBuf)
		b.memBuf, b.mem = nil, nil
	}
	if b.file != nil {
		b.file.Close()
		b.file = nil
	}
}

// clientBodyError wraps a failure to read the request body from the client:
// 413 when a MaxBytesReader refused it, 499 when the client went away, 408
// when it was too slow (the server's read timeout, like nginx's
// client_body_timeout), otherwise 400 (truncated or malformed chunked
// encoding, an HTTP/2 body longer than its content-length).
func clientBodyError(ctx context.Context, err error) *Error {
	var mbe *http.MaxBytesError
	var ne interface{ Timeout() bool }
	switch {
	case errors.As(err, &mbe):
		return &Error{Status: http.StatusRequestEntityTooLarge, Op: "read request body", Err: err}
	case errors.As(err, &ne) && ne.Timeout():
		// Before the context: net/http cancels it when a body read fails,
		// its read deadline included, so a slow client would pass for
		// one that left (499, and nothing sent).
		return &Error{Status: http.StatusRequestTimeout, Op: "read request body", Err: err}
	case bodyread.Overlong(err):
		// Before the context too: net/http resets the stream of an
		// HTTP/2 body longer than its content-length, which ends it.
		return &Error{Status: http.StatusBadRequest, Op: "read request body", Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		// Before the context too: an HTTP/1 body ends short of its
		// Content-Length, or inside a chunk, only when the connection
		// ends, and net/http cancels the context on that read. nginx
		// logs such a body 400, the client's fault, not 499.
		return &Error{Status: http.StatusBadRequest, Op: "read request body", Err: err}
	case ctx.Err() != nil:
		return &Error{Status: classify(ctx.Err()), Op: "read request body", Err: fmt.Errorf("%w (%w)", err, ctx.Err())}
	}
	return &Error{Status: http.StatusBadRequest, Op: "read request body", Err: err}
}

func tooLarge(n, limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Op: "read request body",
		Err: fmt.Errorf("body of %d bytes or more exceeds the limit of %d bytes", n, limit)}
}

// prepareBody turns req.Body into something with an exact length, because
// php-fpm hangs a worker on a body without CONTENT_LENGTH. Bodies of unknown
// length (chunked) are buffered in memory up to memBodyLimit, then in an
// unlinked temp file, up to maxBody; beyond that 413. Known-length bodies
// above maxBody are refused at once; small ones are read into memory; large
// ones go to an unlinked temp file when buffer is set (nginx's
// fastcgi_request_buffering on), else they are streamed while sending.
func prepareBody(ctx context.Context, req *http.Request, maxBody int64, tempDir string, buffer bool) (requestBody, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return requestBody{size: -1}, nil
	}
	n := req.ContentLength
	switch {
	case n > maxBody:
		return requestBody{size: -1}, tooLarge(n, maxBody)
	case n > memBodyLimit && !buffer:
		return requestBody{size: n, stream: req.Body}, nil
	case n > memBodyLimit:
		f, err := spoolFile(tempDir)
		if err != nil {
			return requestBody{size: -1}, err
		}
		if _, err := io.CopyN(f, req.Body, n); err != nil {
			f.Close()
			return requestBody{size: -1}, spoolError(ctx, err)
		}
		return requestBody{size: n, file: f}, nil
	case n > 0:
		bp, m, err := readMem(req.Body, int(n))
		if m < int(n) {
			putBodyBuf(bp)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return requestBody{size: -1}, clientBodyError(ctx, err)
		}
		return requestBody{size: n, mem: (*bp)[:n], memBuf: bp}, nil
	}
	// Unknown length (ContentLength -1, or 0 with a body: "unknown" for
	// client requests).
	limit := memBodyLimit + 1
	if int64(limit)-1 > maxBody { // not maxBody+1: it overflows at math.MaxInt64
		limit = int(maxBody + 1)
	}
	bp, m, err := readMem(req.Body, limit)
	switch {
	case err == io.EOF:
		if int64(m) > maxBody {
			putBodyBuf(bp)
			return requestBody{size: -1}, tooLarge(int64(m), maxBody)
		}
		if m == 0 {
			putBodyBuf(bp)
			return requestBody{size: -1}, nil
		}
		return requestBody{size: int64(m), mem: (*bp)[:m], memBuf: bp}, nil
	case err != nil:
		putBodyBuf(bp)
		return requestBody{size: -1}, clientBodyError(ctx, err)
	}
	if int64(m) > maxBody {
		putBodyBuf(bp)
		return requestBody{size: -1}, tooLarge(int64(m), maxBody)
	}
	// The buffer is full: spill to disk.
	f, err := spoolFile(tempDir)
	if err != nil {
		putBodyBuf(bp)
		return requestBody{size: -1}, err
	}
	_, werr := f.Write((*bp)[:m])
	putBodyBuf(bp)
	if werr != nil {
		f.Close()
		return requestBody{size: -1}, &Error{Status: http.StatusInternalServerError, Op: "spool request body", Err: werr}
	}
	rest, err := io.Copy(f, io.LimitReader(req.Body, maxBody-int64(m)+1))
	total := int64(m) + rest
	if err != nil {
		f.Close()
		return requestBody{size: -1}, spoolError(ctx, err)
	}
	if total > maxBody {
		f.Close()
		return requestBody{size: -1}, tooLarge(total, maxBody)
	}
	return requestBody{size: total, file: f}, nil
}

// spoolFile creates the unlinked temp file a large body goes to.
func spoolFile(tempDir string) (*os.File, error) {
	f, err := tempfile.Unlinked(tempDir, "sessiongate-body-*")
	if err != nil {
		return nil, &Error{Status: http.StatusInternalServerError, Op: "spool request body", Err: err}
	}
	return f, nil
}

// spoolError maps a failed copy of the body to its file: the disk's fault
// (500) or the client's (clientBodyError; a body shorter than its
// Content-Length is io.EOF from io.CopyN).
func spoolError(ctx context.Context, err error) *Error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &Error{Status: http.StatusInternalServerError, Op: "spool request body", Err: err}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return clientBodyError(ctx, err)
}

// preparedBody is a request body ReadBody already read whole. RoundTrip
// sends it as it is; whoever called ReadBody frees it.
type preparedBody struct {
	b requestBody
	r io.Reader
}

func (p *preparedBody) Read(b []byte) (int, error) { return p.r.Read(b) }
func (p *preparedBody) Close() error               { return nil }

// NewReader reads the body again from its start, apart from what RoundTrip
// reads: for a caller that looks into the body first (ReadWholeBody).
func (p *preparedBody) NewReader() io.Reader {
	if p.b.mem != nil {
		return bytes.NewReader(p.b.mem)
	}
	return io.NewSectionReader(p.b.file, 0, p.b.size)
}

// ReadBody reads r's body as RoundTrip would (in memory, beyond 64 KiB in
// an unlinked temp file; 413 over MaxBody), and returns r with that body in
// its place and the function that frees it once the response is done. A
// caller that takes something before RoundTrip (the session lock) calls it
// first, so that a slow upload holds nothing: with nginx and PHP's files
// handler, the session is locked only once the script runs, after the body
// is in. A body RoundTrip would stream (known length over 64 KiB, without
// BufferBodies) is left as it is. Errors are *Error values, like
// RoundTrip's.
func (t *Transport) ReadBody(r *http.Request) (*http.Request, func(), error) {
	return t.readBody(r, false)
}

// ReadWholeBody is ReadBody for a caller that must see the whole body
// before the request goes on (the server reads WordPress's rest_route
// from a form body): a body ReadBody would leave to stream is spooled to
// a temp file too. The body of the request it returns, when there is one,
// has a NewReader method that reads it again from the start.
func (t *Transport) ReadWholeBody(r *http.Request) (*http.Request, func(), error) {
	return t.readBody(r, true)
}

func (t *Transport) readBody(r *http.Request, whole bool) (*http.Request, func(), error) {
	if _, ok := r.Body.(*preparedBody); ok {
		return r, func() {}, nil
	}
	if !whole && !t.o.BufferBodies && r.ContentLength > memBodyLimit && r.ContentLength <= t.o.MaxBody {
		return r, func() {}, nil
	}
	body, err := prepareBody(r.Context(), r, t.o.MaxBody, t.o.TempDir, true)
	if err != nil {
		return nil, nil, err
	}
	if body.size < 0 {
		return r, func() {}, nil
	}
	pb := &preparedBody{b: body}
	if body.mem != nil {
		pb.r = bytes.NewReader(body.mem)
	} else {
		pb.r = io.NewSectionReader(body.file, 0, body.size)
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Body = pb
	r2.ContentLength = body.size
	r2.TransferEncoding = nil
	return r2, body.release, nil
}

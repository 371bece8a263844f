package wsgi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"

	"github.com/sessiongate/sessiongate/internal/bodyread"
	"github.com/sessiongate/sessiongate/internal/tempfile"
)

// memBodyLimit is how much of a request body is held in memory; a larger
// one goes to a temp file.
const memBodyLimit = 64 << 10

// readMem reads a body of at most limit bytes (bodyread.Grow) into
// buffers of its own: the request keeps the last one.
func readMem(r io.Reader, limit int) ([]byte, error) {
	bp, m, err := bodyread.Grow(r, limit, func(size int) *[]byte { b := make([]byte, size); return &b }, func(*[]byte) {})
	return (*bp)[:m], err
}

// errClientBody wraps a failure to read a chunked request body from the
// client that is neither the size limit nor the client leaving: a
// malformed or truncated chunked encoding, 400.
type errClientBody struct{ err error }

func (e *errClientBody) Error() string { return "read request body: " + e.err.Error() }
func (e *errClientBody) Unwrap() error { return e.err }

// errSpool is a body the gateway could not keep (no temp dir, a full
// disk): its own failure, 500 as on the PHP path, not Django's 502.
type errSpool struct{ err error }

func (e *errSpool) Error() string { return "spool request body: " + e.err.Error() }
func (e *errSpool) Unwrap() error { return e.err }

// spoolBody reads a request body whole before anything else happens to the
// request, and gives r a body of known length in its place: in memory up
// to memBodyLimit, else in an unlinked temp file, as nginx does
// (proxy_request_buffering). A client that sends slowly then holds neither
// the session lock (taken after this) nor a gunicorn thread, and a chunked
// body reaches Django at all: Django reads a body only up to
// CONTENT_LENGTH, so a chunked one arrived empty and the request
// "succeeded". The size limit is the http.MaxBytesReader the server put
// around the body (SESSIONGATE_MAX_BODY). The returned function releases
// what the body holds.
func spoolBody(r *http.Request) (func(), error) {
	if n := r.ContentLength; n > 0 && n <= memBodyLimit {
		buf, err := readMem(r.Body, int(n))
		if len(buf) < int(n) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, clientBodyErr(err)
		}
		setBody(r, func() io.Reader { return bytes.NewReader(buf) }, n)
		return func() {}, nil
	}
	var (
		f   *os.File
		n   int64
		err error
	)
	if r.ContentLength > 0 {
		if f, err = spoolFile(); err != nil {
			return nil, err
		}
		n, err = io.CopyN(f, r.Body, r.ContentLength)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	} else {
		buf, rerr := readMem(r.Body, memBodyLimit+1)
		switch {
		case rerr == io.EOF:
			setBody(r, func() io.Reader { return bytes.NewReader(buf) }, int64(len(buf)))
			return func() {}, nil
		case rerr != nil:
			return nil, clientBodyErr(rerr)
		}
		if f, err = spoolFile(); err != nil {
			return nil, err
		}
		if _, err = f.Write(buf); err == nil {
			n, err = io.Copy(f, r.Body)
			n += int64(len(buf))
		}
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = &errSpool{err}
		} else {
			err = clientBodyErr(err)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	setBody(r, func() io.Reader { return io.NewSectionReader(f, 0, n) }, n)
	return func() { f.Close() }, nil
}

// spoolFile creates the unlinked temp file of a large body.
func spoolFile() (*os.File, error) {
	f, err := tempfile.Unlinked("", "sessiongate-django-body-*")
	if err != nil {
		return nil, &errSpool{err}
	}
	return f, nil
}

// clientBodyErr keeps the errors statusOf maps (413, the client gone) and
// marks any other read failure as the client's.
func clientBodyErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return &errClientBody{err}
}

// setBody gives r the body open returns, of n bytes, and GetBody, so that
// a request that may be sent twice (replayable), or that the backend never
// read (errUnread), is sent again from the start when a connection failed
// under it.
func setBody(r *http.Request, open func() io.Reader, n int64) {
	r.ContentLength = n
	r.TransferEncoding = nil
	if n == 0 {
		r.Body, r.GetBody = http.NoBody, nil
		return
	}
	r.Body = io.NopCloser(open())
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(open()), nil }
}

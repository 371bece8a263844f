package fcgi

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/sessiongate/sessiongate/internal/fdlimit"
)

// StatusClientClosedRequest is nginx's 499: the client went away before the
// response was complete. It is only ever logged, never sent.
const StatusClientClosedRequest = 499

// ErrNoScript is returned (inside an *Error with Status 500) when a request
// reaches the transport without a routing decision: the server must attach
// one with WithScript. It is a wiring bug, not an upstream failure.
var ErrNoScript = errors.New("request carries no fcgi.Script (fcgi.WithScript was not called)")

// Error is an upstream failure with the HTTP status the gateway answers
// (or logs) for it: 502 failure, 504 timeout, 499 client gone, 413 body too
// large, 400 unreadable request body, 431/414/500 for requests the wire
// cannot carry.
type Error struct {
	Status  int
	Op      string // what failed: "dial", "write request", "read response header", ...
	Backend string // php-fpm address, "" when no backend was involved
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("fcgi: ")
	b.WriteString(e.Op)
	if e.Backend != "" {
		b.WriteString(" ")
		b.WriteString(e.Backend)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// StatusOf maps an error from RoundTrip or from reading a response body to
// the HTTP status for the client and the access log: the Status of an
// *Error, 499 for context.Canceled, 504 for deadlines and timeouts, 500
// when the gateway had no file descriptor left, else 502. StatusOf(nil) is
// 0.
func StatusOf(err error) int {
	if err == nil {
		return 0
	}
	var fe *Error
	if errors.As(err, &fe) && fe.Status != 0 {
		return fe.Status
	}
	return classify(err)
}

// classify maps a low-level error to 499, 504, 500 or 502.
func classify(err error) int {
	switch {
	case errors.Is(err, context.Canceled):
		return StatusClientClosedRequest
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return 504
	case fdlimit.Reached(err):
		// The gateway's own shortage, not php-fpm's: nginx answers 500
		// when its socket() fails so.
		return 500
	case errors.Is(err, syscall.EAGAIN):
		// A unix socket whose listen queue is full refuses a connect
		// at once with EAGAIN, which calls itself a timeout: nothing
		// was waited for (nginx answers 502).
		return 502
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 504
	}
	return 502
}

// upstreamError builds an *Error whose status follows from err.
func upstreamError(op, backend string, err error) *Error {
	return &Error{Status: classify(err), Op: op, Backend: backend, Err: err}
}

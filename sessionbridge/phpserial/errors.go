package phpserial

import (
	"errors"
	"fmt"
	"math"
)

// Limits bounds the work and memory one conversion may use. Session data
// comes from applications and, through them, from users, so every size the
// input declares is checked against these before it is trusted.
//
// A zero (or negative) field means "use the default" so that Limits{} is a
// safe value.
type Limits struct {
	// MaxBytes bounds the input and the output of one call (at most 2 GiB).
	MaxBytes int
	// MaxDepth bounds how many arrays/objects may be open at once. The
	// outermost array (the session itself) counts as depth 1.
	MaxDepth int
	// MaxElements bounds the total number of values (every scalar, array,
	// object and reference, inside tags too) in one call.
	MaxElements int
	// MaxStringLen bounds the length in bytes of any one string: PHP
	// strings and array keys, class names, the payload of C: values and
	// JSON strings (after unescaping). The text of a tag is bounded only by
	// MaxBytes; the strings inside it are bounded by MaxStringLen.
	MaxStringLen int
}

// Default limit values.
const (
	DefaultMaxBytes     = 16 << 20
	DefaultMaxDepth     = 64
	DefaultMaxElements  = 1_000_000
	DefaultMaxStringLen = 16 << 20
)

// DefaultLimits returns the limits used for zero fields: 16 MiB, depth 64,
// one million values, 16 MiB strings.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:     DefaultMaxBytes,
		MaxDepth:     DefaultMaxDepth,
		MaxElements:  DefaultMaxElements,
		MaxStringLen: DefaultMaxStringLen,
	}
}

func (l Limits) norm() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	// Offsets and counts are kept in int32 to keep parse nodes small.
	l.MaxBytes = min(l.MaxBytes, math.MaxInt32-1)
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = DefaultMaxElements
	}
	l.MaxElements = min(l.MaxElements, math.MaxInt32-1)
	if l.MaxStringLen <= 0 {
		l.MaxStringLen = DefaultMaxStringLen
	}
	return l
}

// ErrLimit is wrapped by every error caused by a Limits bound, so callers
// can tell "too big" (a policy decision) from "malformed" (a bug or an
// attack) with errors.Is.
var ErrLimit = errors.New("phpserial: limit exceeded")

// ErrUnencodable is wrapped by errors for well-formed data that the target
// format cannot hold (see KeyError).
var ErrUnencodable = errors.New("phpserial: value cannot be encoded")

// SyntaxError reports malformed input: PHP serialize text, JSON text, or the
// PHP text inside a tag. Offset is a byte offset into the input of the call
// (for a tag: the offset of the tag's JSON string; Msg then says where in
// the tag text).
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("phpserial: syntax error at offset %d: %s", e.Offset, e.Msg)
}

// KeyError reports a session key the `php` session handler format cannot
// hold. It wraps ErrUnencodable.
type KeyError struct {
	Key    string
	Reason string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("phpserial: session key %q: %s", e.Key, e.Reason)
}

func (e *KeyError) Unwrap() error { return ErrUnencodable }

func limitErr(what string, got, max, off int) error {
	return fmt.Errorf("%w: %s %d exceeds %d (offset %d)", ErrLimit, what, got, max, off)
}

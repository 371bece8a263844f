package sessionbridge

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PHP talks back to the gateway in frames over two channels. While the
// script runs, FCGI_STDERR is the only one that reaches us: response headers
// set by PHP stay in its output buffer until the first flush, so a lock could
// not be released at session_write_close(). There the prepend writes each
// message with error_log($frame, 4) followed by flush(); php-fpm wraps every
// call in "PHP message: " ... "; " and may split them across records
// anywhere, so frames carry their own delimiters:
//
//	@sg1:<nonce>:<seq>:<last 0|1>:<base64 chunk>#
//
// When the request ends before its headers were sent (the common case: the
// session is written at shutdown, output still buffered), the prepend puts
// the whole message, as one frame, in a FrameHeader response header instead,
// unless it is over 1 MiB (fcgi caps PHP's header block at 8 MiB): it
// reaches us before anything goes to the client, needs no chunking, and
// stays out of php-fpm's worker log pipe (catch_workers_output copies every
// error_log() line through the master process).
//
// Chunks of one message (same seq) are concatenated and base64-decoded into
// iv(12) | tag(16) | AES-256-GCM ciphertext of "<op>\n<session id>\n<payload>"
// under the request's frame key. The nonce and the key are per request: only
// the PHP process serving this request knows them, and a log that copies
// PHP's stderr holds nothing readable.
const (
	framePrefix = "@sg1:"
	frameEnd    = '#'
	// maxMessage bounds one reassembled message (base64 text).
	maxMessage = 64 << 20
	// maxPending bounds an unterminated frame kept across records; a frame
	// is at most ~1 KiB (php-fpm's log_limit), so this is generous.
	maxPending = 64 << 10
	// phpMessage is php-fpm's prefix for every error_log() message.
	phpMessage = "PHP message: "
)

// FrameHeader is the response header that carries a frame when PHP ends the
// request before sending its headers. Like every X-Sessiongate- header it
// never reaches the client.
const FrameHeader = "X-Sessiongate-Frame"

// message is one decoded PHP -> gateway message.
type message struct {
	Seq     int    // PHP's order of the message within the request
	Op      string // open, write, touch, close, destroy
	ID      string
	Payload []byte
}

// frameScanner reassembles messages from the stderr stream of one request
// and returns what is not a frame, for the log.
type frameScanner struct {
	nonce   string
	key     [32]byte
	aead    cipher.AEAD // made on the first message
	pending []byte      // unterminated frame text carried to the next record
	seq     int         // seq of the message being assembled (-1: none)
	msg     []byte      // base64 text gathered for seq
	errs    []error
	// lost: a frame carrying this request's nonce was refused, so a
	// message PHP sent is gone. Foreign text that merely looks like a
	// frame (an app logging what a client sent) never sets it.
	lost bool
}

func newFrameScanner(nonce string, key [32]byte) *frameScanner {
	return &frameScanner{nonce: nonce, key: key, seq: -1}
}

// open authenticates and decrypts one message.
func (f *frameScanner) open(sealed []byte) ([]byte, error) {
	if f.aead == nil {
		block, err := aes.NewCipher(f.key[:])
		if err != nil {
			return nil, err
		}
		if f.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	ns := f.aead.NonceSize()
	if len(sealed) < ns+f.aead.Overhead() {
		return nil, errors.New("message too short")
	}
	// PHP's openssl_encrypt returns the tag separately; the prepend sends
	// iv | tag | ciphertext, Go expects ciphertext | tag.
	iv, tag, ct := sealed[:ns], sealed[ns:ns+16], sealed[ns+16:]
	return f.aead.Open(ct[:0], iv, append(ct, tag...), nil)
}

// feed consumes one stderr record. It returns the complete messages found,
// and the remaining text worth logging (php-fpm's separators around our
// frames removed).
func (f *frameScanner) feed(rec []byte) (msgs []message, rest []byte) {
	data := rec
	if len(f.pending) > 0 {
		data = append(f.pending, rec...)
		f.pending = nil
	}
	var logText []byte
	for len(data) > 0 {
		i := bytes.Index(data, []byte(framePrefix))
		if i < 0 {
			// Hold back a tail that could be the start of php-fpm's
			// wrapper around the next frame, so it never leaks to the log.
			keep := wrapperTail(data)
			logText = append(logText, data[:len(data)-keep]...)
			if keep > 0 {
				f.pending = append([]byte(nil), data[len(data)-keep:]...)
			}
			break
		}
		pre := bytes.TrimSuffix(data[:i], []byte(phpMessage))
		logText = append(logText, bytes.TrimSuffix(pre, []byte("; "))...)
		data = data[i:]
		end := bytes.IndexByte(data, frameEnd)
		next := bytes.Index(data[len(framePrefix):], []byte(framePrefix))
		if end < 0 || (next >= 0 && next+len(framePrefix) < end) {
			if next >= 0 {
				// A frame cut short (log_limit truncation): drop it.
				f.lost = f.lost || f.ours(data)
				f.fail(errors.New("truncated frame"))
				data = data[len(framePrefix)+next:]
				continue
			}
			if !f.mayBeOurs(data) {
				// Not this request's frame (an app logging what a client
				// typed): the app's stderr, returned now, to go through
				// the transport's per-request log budget like the rest,
				// rather than held to the end of the request. A tail
				// that may begin the wrapper of the next frame is held.
				keep := wrapperTail(data[len(framePrefix):])
				logText = append(logText, data[:len(data)-keep]...)
				if keep > 0 {
					f.pending = append([]byte(nil), data[len(data)-keep:]...)
				}
				break
			}
			if len(data) > maxPending {
				if f.ours(data) {
					f.lost = true
				} else {
					// Not PHP's frame but text that looks like one (an
					// app logging a client's input): the stderr held
					// behind it is the app's and goes to the log.
					logText = append(logText, data...)
				}
				f.fail(errors.New("unterminated frame"))
				break
			}
			f.pending = append([]byte(nil), data...)
			break
		}
		if m, ok := f.frame(data[len(framePrefix):end]); ok {
			msgs = append(msgs, m)
		}
		data = data[end+1:]
	}
	return msgs, cleanLog(logText)
}

// headerFrame decodes the frame in one FrameHeader value. Sequence numbers
// continue those of the stderr frames of the same request.
func (f *frameScanner) headerFrame(v string) (message, bool) {
	body, ok := strings.CutPrefix(v, framePrefix)
	if ok {
		body, ok = strings.CutSuffix(body, string(frameEnd))
	}
	if !ok {
		f.lost = f.lost || f.ours([]byte(v))
		f.fail(errors.New("malformed frame header"))
		return message{}, false
	}
	return f.frame([]byte(body))
}

func (f *frameScanner) fail(err error) {
	f.errs = append(f.errs, err)
	f.seq, f.msg = -1, nil
}

// ours reports whether frame text (starting at framePrefix) carries this
// request's nonce: then PHP sent it, and refusing it loses a message.
func (f *frameScanner) ours(b []byte) bool {
	rest, ok := bytes.CutPrefix(b, []byte(framePrefix))
	return ok && bytes.HasPrefix(rest, []byte(f.nonce+":"))
}

// mayBeOurs reports whether frame text (starting at framePrefix) may still
// turn out to carry this request's nonce: it does, or what has come of it
// so far agrees with it.
func (f *frameScanner) mayBeOurs(b []byte) bool {
	rest, ok := bytes.CutPrefix(b, []byte(framePrefix))
	if !ok {
		return false
	}
	want := f.nonce + ":"
	n := min(len(rest), len(want))
	return string(rest[:n]) == want[:n]
}

// cutShort reports whether a message of this request is still incomplete:
// called when PHP's output starts, after which none of its frames of the
// time before can arrive, it means that message was cut.
func (f *frameScanner) cutShort() bool {
	return f.seq >= 0 || f.ours(f.pending)
}

// frame handles "<nonce>:<seq>:<last>:<chunk>".
func (f *frameScanner) frame(b []byte) (message, bool) {
	parts := bytes.SplitN(b, []byte(":"), 4)
	if len(parts) != 4 || string(parts[0]) != f.nonce {
		f.fail(errors.New("frame with a foreign nonce ignored"))
		return message{}, false
	}
	// From here on the frame is PHP's: refusing it loses its message.
	defer func(n int) {
		if len(f.errs) > n {
			f.lost = true
		}
	}(len(f.errs))
	seq, err := strconv.Atoi(string(parts[1]))
	if err != nil || seq < 0 {
		f.fail(errors.New("bad frame sequence"))
		return message{}, false
	}
	if seq != f.seq {
		if f.seq >= 0 {
			f.fail(fmt.Errorf("message %d incomplete", f.seq))
		}
		f.seq, f.msg = seq, f.msg[:0]
	}
	if len(f.msg)+len(parts[3]) > maxMessage {
		f.fail(errors.New("message too large"))
		return message{}, false
	}
	f.msg = append(f.msg, parts[3]...)
	if string(parts[2]) != "1" {
		return message{}, false
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(f.msg)))
	n, err := base64.StdEncoding.Decode(raw, f.msg)
	f.seq, f.msg = -1, f.msg[:0]
	if err != nil {
		f.fail(fmt.Errorf("message %d: %w", seq, err))
		return message{}, false
	}
	raw, err = f.open(raw[:n])
	if err != nil {
		f.fail(fmt.Errorf("message %d: %w", seq, err))
		return message{}, false
	}
	op, rest, ok1 := bytes.Cut(raw, []byte("\n"))
	id, payload, ok2 := bytes.Cut(rest, []byte("\n"))
	if !ok1 || !ok2 {
		f.fail(fmt.Errorf("message %d: malformed", seq))
		return message{}, false
	}
	return message{Seq: seq, Op: string(op), ID: string(id), Payload: payload}, true
}

// wrapperTail is the length of the longest suffix of b that could be the
// beginning of a frame with php-fpm's wrapping ("; PHP message: @sg1:").
func wrapperTail(b []byte) int {
	best := 0
	for _, marker := range [...]string{"; " + phpMessage + framePrefix, phpMessage + framePrefix, framePrefix} {
		for n := min(len(marker)-1, len(b)); n > best; n-- {
			if bytes.Equal(b[len(b)-n:], []byte(marker[:n])) {
				best = n
				break
			}
		}
	}
	return best
}

// flushLog returns text held back by feed once no more records will come.
// An unterminated frame of this request stays pending (cutShort reports it);
// any other held text, frame-like text without our nonce included (an app
// logging what a client typed), is the app's stderr and is returned.
func (f *frameScanner) flushLog() []byte {
	if len(f.pending) == 0 || f.ours(f.pending) {
		return nil
	}
	rest := cleanLog(f.pending)
	f.pending = nil
	return rest
}

// cleanLog drops what php-fpm wrapped around our frames ("PHP message: ",
// "; ") so that only real messages reach the log.
func cleanLog(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	var out []byte
	for i, part := range bytes.Split(b, []byte(phpMessage)) {
		t := bytes.Trim(part, "; \n")
		if len(t) == 0 {
			continue
		}
		if len(out) > 0 {
			out = append(out, "; "...)
		}
		if i > 0 {
			out = append(out, phpMessage...)
		}
		out = append(out, t...)
	}
	return out
}

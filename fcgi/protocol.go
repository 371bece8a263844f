package fcgi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// FastCGI 1.0 wire constants (record types, role, flags, protocol status).
const (
	fcgiVersion = 1

	typeBeginRequest    = 1
	typeAbortRequest    = 2
	typeEndRequest      = 3
	typeParams          = 4
	typeStdin           = 5
	typeStdout          = 6
	typeStderr          = 7
	typeData            = 8
	typeGetValues       = 9
	typeGetValuesResult = 10
	typeUnknownType     = 11

	roleResponder = 1
	flagKeepConn  = 1

	statusRequestComplete = 0
	statusCantMpxConn     = 1
	statusOverloaded      = 2
	statusUnknownRole     = 3

	// requestID is the only id we use: php-fpm does not multiplex, so every
	// connection carries one request at a time and id 1 is always free.
	requestID = 1

	headerLen = 8
	// maxContent is the largest content a record can carry (16-bit length).
	maxContent = 65535
	// maxStdinChunk keeps STDIN records 8-byte aligned without padding.
	maxStdinChunk = 65528
)

// ErrProtocol marks a response that does not follow FastCGI 1.0 (bad
// version, unknown record type, wrong request id, malformed END_REQUEST).
// The connection it came from is never reused.
var ErrProtocol = errors.New("fastcgi protocol violation")

// errPairTooLarge: a name/value pair must sit inside ONE PARAMS record
// (php-fpm resets the connection when a pair spans two), so a pair whose
// encoding exceeds maxContent cannot be sent at all.
type errPairTooLarge struct {
	name string
	size int
}

func (e *errPairTooLarge) Error() string {
	return fmt.Sprintf("param %s is %d bytes encoded; a FastCGI param must fit one record (%d bytes)", e.name, e.size, maxContent)
}

// putHeader writes a record header for request id 1 into b[:8].
func putHeader(b []byte, typ uint8, contentLen, padding int) {
	b[0] = fcgiVersion
	b[1] = typ
	b[2] = 0
	b[3] = requestID
	b[4] = byte(contentLen >> 8)
	b[5] = byte(contentLen)
	b[6] = byte(padding)
	b[7] = 0
}

// appendBeginRequest appends FCGI_BEGIN_REQUEST (responder, keep-conn).
func appendBeginRequest(b []byte) []byte {
	var rec [16]byte
	putHeader(rec[:], typeBeginRequest, 8, 0)
	rec[8] = 0
	rec[9] = roleResponder
	rec[10] = flagKeepConn
	return append(b, rec[:]...)
}

// appendEmptyRecord appends a zero-length record, which ends a stream.
func appendEmptyRecord(b []byte, typ uint8) []byte {
	var h [headerLen]byte
	putHeader(h[:], typ, 0, 0)
	return append(b, h[:]...)
}

// recordHeader is a decoded record header.
type recordHeader struct {
	typ        uint8
	contentLen int
	padding    int
}

// parseHeader decodes and validates a record header sent by the server.
func parseHeader(p []byte) (recordHeader, error) {
	h := recordHeader{
		typ:        p[1],
		contentLen: int(binary.BigEndian.Uint16(p[4:6])),
		padding:    int(p[6]),
	}
	if p[0] != fcgiVersion {
		return h, fmt.Errorf("%w: record version %d", ErrProtocol, p[0])
	}
	if id := binary.BigEndian.Uint16(p[2:4]); id != requestID {
		return h, fmt.Errorf("%w: record for request id %d (type %d), want %d", ErrProtocol, id, h.typ, requestID)
	}
	switch h.typ {
	case typeStdout, typeStderr:
	case typeEndRequest:
		if h.contentLen != 8 {
			return h, fmt.Errorf("%w: END_REQUEST with %d content bytes", ErrProtocol, h.contentLen)
		}
	default:
		return h, fmt.Errorf("%w: unexpected record type %d", ErrProtocol, h.typ)
	}
	return h, nil
}

// lenSize is the size of a name/value length prefix: 1 byte below 128,
// else 4 bytes with the high bit set.
func lenSize(n int) int {
	if n < 128 {
		return 1
	}
	return 4
}

func appendLen(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return append(b, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
}

// paramEncoder packs name/value pairs into FCGI_PARAMS records appended to
// buf. Many pairs share a record, but a pair never straddles two records.
type paramEncoder struct {
	buf   []byte
	start int // offset of the open record's header, or -1
}

func newParamEncoder(buf []byte) paramEncoder { return paramEncoder{buf: buf, start: -1} }

// reserve makes room for a pair of n encoded bytes in the open record,
// closing it and opening a new one when the pair would not fit.
func (e *paramEncoder) reserve(name string, n int) error {
	if n > maxContent {
		return &errPairTooLarge{name: name, size: n}
	}
	if e.start >= 0 && len(e.buf)-e.start-headerLen+n > maxContent {
		e.closeRecord()
	}
	if e.start < 0 {
		e.start = len(e.buf)
		e.buf = append(e.buf, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	return nil
}

func (e *paramEncoder) closeRecord() {
	putHeader(e.buf[e.start:], typeParams, len(e.buf)-e.start-headerLen, 0)
	e.start = -1
}

// add appends name=value.
func (e *paramEncoder) add(name, value string) error {
	return e.add2(name, value, "")
}

// add2 appends name=v1+v2 without building the concatenation.
func (e *paramEncoder) add2(name, v1, v2 string) error {
	vlen := len(v1) + len(v2)
	if err := e.reserve(name, lenSize(len(name))+lenSize(vlen)+len(name)+vlen); err != nil {
		return err
	}
	e.buf = appendLen(e.buf, len(name))
	e.buf = appendLen(e.buf, vlen)
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, v1...)
	e.buf = append(e.buf, v2...)
	return nil
}

// addHeader appends HTTP_<NAME>=values joined by sep, where NAME is the
// header name upper-cased with '-' turned into '_'. The caller has already
// checked that name holds only letters, digits and '-'.
func (e *paramEncoder) addHeader(name string, values []string, sep string) error {
	nlen := len("HTTP_") + len(name)
	vlen := len(sep) * (len(values) - 1)
	for _, v := range values {
		vlen += len(v)
	}
	if err := e.reserve("HTTP_"+name, lenSize(nlen)+lenSize(vlen)+nlen+vlen); err != nil {
		return err
	}
	e.buf = appendLen(e.buf, nlen)
	e.buf = appendLen(e.buf, vlen)
	e.buf = append(e.buf, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		e.buf = append(e.buf, c)
	}
	for i, v := range values {
		if i > 0 {
			e.buf = append(e.buf, sep...)
		}
		e.buf = append(e.buf, v...)
	}
	return nil
}

// finish closes the open record and appends the empty PARAMS record that
// ends the stream.
func (e *paramEncoder) finish() []byte {
	if e.start >= 0 {
		e.closeRecord()
	}
	e.buf = appendEmptyRecord(e.buf, typeParams)
	return e.buf
}

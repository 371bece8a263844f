// Package testh2 sends HTTP/2 requests as raw frames, for the tests of
// what a client may put on the wire that Go's own client never sends: a
// :scheme of http over TLS, a :authority that is no host name, a Host
// field beside :authority.
package testh2

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// Field is one header field, name then value, pseudo-headers (":method",
// ...) included, sent as given.
type Field [2]string

// Response is what came back on the request's stream.
type Response struct {
	// Status is the response's :status, read from the first field of its
	// HEADERS frame as Go's encoder writes it on a new connection: from
	// HPACK's static table, or a literal with the static table's name
	// (Huffman coded or not). 0 when it came another way or not at all.
	Status int
	Body   string
	// Reset: the stream or the connection ended with RST_STREAM or
	// GOAWAY before the response did.
	Reset bool
}

// staticStatus maps HPACK static table entries 8 to 14 (RFC 7541
// appendix A), as the first byte of an indexed field, to their :status.
var staticStatus = map[byte]int{0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500}

// Do sends one request (fields, then body in one DATA frame unless it is
// nil) on a new TLS connection to addr, which must offer h2, and reads its
// response for up to 10 s.
func Do(t testing.TB, addr string, fields []Field, body []byte) Response {
	t.Helper()
	return do(t, addr, fields, body, false, nil, nil)
}

// DoSplit is Do with the body in DATA frames of 16 KiB (the default
// largest frame), sent once the server's SETTINGS and its first window
// update came: for bodies over 16 KiB, up to the server's flow-control
// window (net/http's: 1 MiB).
func DoSplit(t testing.TB, addr string, fields []Field, body []byte) Response {
	t.Helper()
	return do(t, addr, fields, body, true, nil, nil)
}

// DoThenMore is DoSplit with the stream left open after body: once
// between has returned (the app has read body, say), more goes in one
// last DATA frame, which ends the stream.
func DoThenMore(t testing.TB, addr string, fields []Field, body []byte, between func(), more []byte) Response {
	t.Helper()
	return do(t, addr, fields, body, true, between, more)
}

func do(t testing.TB, addr string, fields []Field, body []byte, split bool, between func(), more []byte) Response {
	t.Helper()
	c := dialH2(t, addr)
	defer c.Close()
	// HPACK literals without indexing, new names, no Huffman coding.
	var block []byte
	for _, f := range fields {
		block = append(block, 0)
		block = appendString(block, f[0])
		block = appendString(block, f[1])
	}
	out := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	out = append(out, frame(0x4, 0, 0, nil)...) // SETTINGS
	if body == nil {
		out = append(out, frame(0x1, 0x4|0x1, 1, block)...) // HEADERS, END_HEADERS|END_STREAM
	} else {
		out = append(out, frame(0x1, 0x4, 1, block)...)
		if !split {
			out = append(out, frame(0x0, 0x1, 1, body)...) // DATA, END_STREAM
		}
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var res Response
	if split && body != nil {
		for settings, window := false, false; !settings || !window; {
			var hdr [9]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				t.Fatalf("waiting for the server's SETTINGS: %v", err)
			}
			payload := make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
			if _, err := io.ReadFull(br, payload); err != nil {
				t.Fatalf("waiting for the server's SETTINGS: %v", err)
			}
			switch {
			case hdr[3] == 0x4 && hdr[4]&0x1 == 0:
				settings = true
				c.Write(frame(0x4, 0x1, 0, nil))
			case hdr[3] == 0x8 && binary.BigEndian.Uint32(hdr[5:]) == 0:
				window = true
			}
		}
		for len(body) > 0 {
			n := min(len(body), 16<<10)
			flags := byte(0)
			if n == len(body) && between == nil {
				flags = 0x1 // END_STREAM
			}
			if _, err := c.Write(frame(0x0, flags, 1, body[:n])); err != nil {
				break // the server reset the stream and closed
			}
			body = body[n:]
		}
		if between != nil {
			between()
			c.Write(frame(0x0, 0x1, 1, more))
		}
	}
	for {
		var hdr [9]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("reading the response: %v (so far %+v)", err, res)
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatalf("reading the response: %v (so far %+v)", err, res)
		}
		typ, flags, stream := hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:])&0x7fffffff
		switch {
		case typ == 0x4 && flags&0x1 == 0: // SETTINGS: acknowledge
			c.Write(frame(0x4, 0x1, 0, nil))
		case typ == 0x1 && stream == 1 && n > 0:
			res.Status = status(payload)
			if flags&0x1 != 0 {
				return res
			}
		case typ == 0x0 && stream == 1:
			res.Body += string(payload)
			if flags&0x1 != 0 {
				return res
			}
		case typ == 0x3 && stream == 1, typ == 0x7: // RST_STREAM, GOAWAY
			res.Reset = true
			return res
		}
	}
}

// status reads the :status field at the start of an HPACK header block:
// an indexed static entry, or a literal named by one of the static
// entries 8 to 14 (":status"), with indexing, without or never indexed.
func status(block []byte) int {
	if st, ok := staticStatus[block[0]]; ok {
		return st
	}
	name := block[0] & 0x0f
	if block[0]&0xc0 == 0x40 {
		name = block[0] & 0x3f
	} else if block[0]&0xe0 != 0 {
		return 0
	}
	if name < 8 || name > 14 || len(block) < 2 {
		return 0
	}
	huffman, n := block[1]&0x80 != 0, int(block[1]&0x7f)
	if len(block) < 2+n {
		return 0
	}
	v := block[2 : 2+n]
	digits := string(v)
	if huffman {
		digits = huffmanDigits(v)
	}
	code := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0
		}
		code = code*10 + int(c-'0')
	}
	if len(digits) != 3 {
		return 0
	}
	return code
}

// huffmanDigits decodes an HPACK Huffman string of decimal digits (RFC
// 7541 appendix B: 0 to 2 in 5 bits, 00000 to 00010; 3 to 9 in 6 bits,
// 011001 to 011111), up to the padding of ones; "" for anything else.
func huffmanDigits(b []byte) string {
	var out []byte
	var acc, bits uint
	take := func(n uint) (uint, bool) {
		if bits < n {
			return 0, false
		}
		return acc >> (bits - n) & (1<<n - 1), true
	}
	for _, c := range b {
		acc, bits = acc<<8|uint(c), bits+8
		for {
			if v, ok := take(5); ok && v <= 2 {
				out, bits = append(out, byte('0'+v)), bits-5
				continue
			}
			if v, ok := take(6); ok && v >= 0x19 && v <= 0x1f {
				out, bits = append(out, byte('3'+v-0x19)), bits-6
				continue
			}
			break
		}
	}
	if bits >= 8 {
		return ""
	}
	if v, _ := take(bits); v != 1<<bits-1 {
		return "" // not the padding of ones
	}
	return string(out)
}

// appendString appends s as an HPACK string literal without Huffman
// coding: its length as an integer with a 7-bit prefix, then its bytes.
func appendString(b []byte, s string) []byte {
	n := len(s)
	if n < 127 {
		b = append(b, byte(n))
	} else {
		b = append(b, 127)
		for n -= 127; n >= 128; n >>= 7 {
			b = append(b, byte(n&127|128))
		}
		b = append(b, byte(n))
	}
	return append(b, s...)
}

func frame(typ, flags byte, stream uint32, payload []byte) []byte {
	b := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[5:], stream)
	return append(b, payload...)
}

// dialH2 opens a TLS connection to addr that must agree on h2, for the
// exchanges that write their own preface.
func dialH2(t testing.TB, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		c.Close()
		t.Fatalf("negotiated %q, want h2", p)
	}
	return c
}

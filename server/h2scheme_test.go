package server

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net/http/httptest"
	"testing"
	"time"
)

// h2Get sends one GET over a new HTTP/2 connection to srv, with the
// pseudo-headers as given (the client decides :scheme, which Go's own
// client never sets to anything but https over TLS), and returns the
// response's :status byte as HPACK sent it (0 when none came in time).
func h2Get(t *testing.T, srv *httptest.Server, scheme, path string) byte {
	t.Helper()
	c, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	frame := func(typ, flags byte, stream uint32, payload []byte) []byte {
		b := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[5:], stream)
		return append(b, payload...)
	}
	// HPACK literals without indexing, new names, no Huffman coding.
	var block []byte
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", scheme}, {":authority", "example.com"}, {":path", path}} {
		block = append(block, 0, byte(len(f[0])))
		block = append(block, f[0]...)
		block = append(block, byte(len(f[1])))
		block = append(block, f[1]...)
	}
	out := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	out = append(out, frame(0x4, 0, 0, nil)...)         // SETTINGS
	out = append(out, frame(0x1, 0x4|0x1, 1, block)...) // HEADERS, END_HEADERS|END_STREAM
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for {
		var hdr [9]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return 0
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return 0
		}
		switch {
		case hdr[3] == 0x4 && hdr[4]&0x1 == 0: // SETTINGS: acknowledge
			c.Write(frame(0x4, 0x1, 0, nil))
		case hdr[3] == 0x1 && binary.BigEndian.Uint32(hdr[5:]) == 1 && n > 0:
			// The server's encoder sends a :status from HPACK's static
			// table (0x88 is 200) as its first field.
			return payload[0]
		case hdr[3] == 0x3 || hdr[3] == 0x7: // RST_STREAM, GOAWAY
			return 0
		}
	}
}

// TestHTTP2SchemeIsTheConnections: over TLS, a request whose :scheme says
// http is still an HTTPS request (net/http keeps :scheme out of the
// request; this guards that nothing reads the scheme elsewhere) for PHP (HTTPS=on, REQUEST_SCHEME) and
// Django (X-Forwarded-Proto), as behind nginx, whose $https comes from the
// connection: the pseudo-header is the client's to write, and an app told
// it is on plain HTTP may send a session cookie without Secure or
// redirect in a loop.
func TestHTTP2SchemeIsTheConnections(t *testing.T) {
	e := newEnv(t, nil)
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	for _, scheme := range []string{"https", "http"} {
		before := len(e.php.scripts)
		status := h2Get(t, ts, scheme, "/hello.php")
		if status == 0 && scheme == "https" {
			t.Fatalf(":scheme https over TLS got no response")
		}
		if status == 0 {
			// Refused outright: nothing reached PHP under a wrong scheme.
			t.Logf(":scheme %s refused", scheme)
			continue
		}
		e.php.mu.Lock()
		scripts := e.php.scripts[before:]
		e.php.mu.Unlock()
		if status != 0x88 || len(scripts) != 1 || !scripts[0].HTTPS {
			t.Errorf(":scheme %s over TLS: status field %#x, PHP ran %v; want 200 with HTTPS on", scheme, status, scripts)
		}
	}
}

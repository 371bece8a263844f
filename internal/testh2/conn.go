package testh2

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Frame types and flags the attack tests send (RFC 9113 section 6).
const (
	TypeData         = 0x0
	TypeHeaders      = 0x1
	TypeRSTStream    = 0x3
	TypeSettings     = 0x4
	TypePing         = 0x6
	TypeWindowUpdate = 0x8
	TypeContinuation = 0x9

	FlagEndStream  = 0x1
	FlagEndHeaders = 0x4
)

// Conn is a raw HTTP/2 connection for the attack tests: what it writes
// goes out as it is, and a goroutine reads every frame the server sends,
// acknowledging its SETTINGS only, so that the server never waits for the
// client to read (unless the test wants it to: its flow-control windows
// are the client's to open).
type Conn struct {
	c *tls.Conn

	mu        sync.Mutex
	frames    int
	bytes     int64
	goAway    bool
	goAwayErr uint32
	statuses  map[uint32]int
	ended     map[uint32]bool
	closed    chan struct{}
	acked     chan struct{} // closed once the server's SETTINGS were acknowledged
	readErr   error
}

// Dial opens a TLS connection to addr that must offer h2, sends the
// preface and a SETTINGS frame with settings (id, value pairs), starts
// reading and returns once the server's SETTINGS came and were
// acknowledged: the acknowledgement cannot then fall between the frames
// of a test's header block (a PROTOCOL_ERROR of the client's own).
func Dial(t testing.TB, addr string, settings ...uint32) *Conn {
	t.Helper()
	hc := dial(t, addr, true, settings...)
	go hc.read()
	select {
	case <-hc.acked:
	case <-hc.closed:
		t.Fatal("the server closed before its SETTINGS")
	case <-time.After(10 * time.Second):
		t.Fatal("no SETTINGS from the server in 10 s")
	}
	return hc
}

// DialUnread is Dial without the reading: what the server sends stays in
// the socket buffers (a client that never reads), and WaitClosed cannot
// tell when the server closes.
func DialUnread(t testing.TB, addr string, settings ...uint32) *Conn {
	t.Helper()
	return dial(t, addr, false, settings...)
}

func dial(t testing.TB, addr string, read bool, settings ...uint32) *Conn {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !read {
		// A small window: the server's writes block soon.
		raw.(*net.TCPConn).SetReadBuffer(4 << 10)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err := c.Handshake(); err != nil {
		raw.Close()
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		c.Close()
		t.Fatalf("negotiated %q, want h2", p)
	}
	var s []byte
	for i := 0; i+1 < len(settings); i += 2 {
		s = binary.BigEndian.AppendUint16(s, uint16(settings[i]))
		s = binary.BigEndian.AppendUint32(s, settings[i+1])
	}
	out := append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Frame(TypeSettings, 0, 0, s)...)
	if _, err := c.Write(out); err != nil {
		c.Close()
		t.Fatal(err)
	}
	hc := &Conn{c: c, statuses: map[uint32]int{}, ended: map[uint32]bool{}, closed: make(chan struct{}), acked: make(chan struct{})}
	t.Cleanup(func() { c.Close() })
	return hc
}

func (hc *Conn) read() {
	defer close(hc.closed)
	br := bufio.NewReaderSize(hc.c, 64<<10)
	for {
		var hdr [9]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			hc.mu.Lock()
			hc.readErr = err
			hc.mu.Unlock()
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			hc.mu.Lock()
			hc.readErr = err
			hc.mu.Unlock()
			return
		}
		typ, flags, stream := hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:])&0x7fffffff
		hc.mu.Lock()
		hc.frames++
		hc.bytes += int64(9 + n)
		switch {
		case typ == TypeSettings && flags&0x1 == 0:
			hc.c.Write(Frame(TypeSettings, 0x1, 0, nil))
			select {
			case <-hc.acked:
			default:
				close(hc.acked)
			}
		case typ == TypeHeaders && n > 0 && hc.statuses[stream] == 0:
			hc.statuses[stream] = status(payload)
		case typ == 0x7 && n >= 8: // GOAWAY
			hc.goAway = true
			hc.goAwayErr = binary.BigEndian.Uint32(payload[4:8])
		}
		if flags&FlagEndStream != 0 && (typ == TypeHeaders || typ == TypeData) || typ == TypeRSTStream {
			hc.ended[stream] = true
		}
		hc.mu.Unlock()
	}
}

// Write sends frames as they are; an error once the server has closed.
func (hc *Conn) Write(frames ...[]byte) error {
	var out []byte
	for _, f := range frames {
		out = append(out, f...)
	}
	hc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := hc.c.Write(out)
	return err
}

// Close closes the connection.
func (hc *Conn) Close() { hc.c.Close() }

// WaitClosed waits up to d for the server to close the connection and
// reports whether it did.
func (hc *Conn) WaitClosed(d time.Duration) bool {
	select {
	case <-hc.closed:
		return true
	case <-time.After(d):
		return false
	}
}

// Seen is what the server sent so far.
type Seen struct {
	Frames int
	Bytes  int64
	// GoAway: a GOAWAY frame came, with error code GoAwayCode.
	GoAway     bool
	GoAwayCode uint32
	// Statuses are the :status of each stream that got response headers
	// (0 when testh2 could not read it).
	Statuses map[uint32]int
	// Ended are the streams the server ended (END_STREAM or RST_STREAM).
	Ended int
}

// Seen reports what the server sent so far.
func (hc *Conn) Seen() Seen {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	s := Seen{Frames: hc.frames, Bytes: hc.bytes, GoAway: hc.goAway, GoAwayCode: hc.goAwayErr, Statuses: map[uint32]int{}, Ended: len(hc.ended)}
	for k, v := range hc.statuses {
		s.Statuses[k] = v
	}
	return s
}

// Frame is one HTTP/2 frame.
func Frame(typ, flags byte, stream uint32, payload []byte) []byte {
	return frame(typ, flags, stream, payload)
}

// Block is an HPACK header block of fields, each a literal without
// indexing with a new name and no Huffman coding.
func Block(fields []Field) []byte {
	var block []byte
	for _, f := range fields {
		block = append(block, 0)
		block = appendString(block, f[0])
		block = appendString(block, f[1])
	}
	return block
}

// Get is the header block of a GET of path on example.com over https.
func Get(path string) []byte {
	return Block([]Field{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", path}})
}

// RST is a RST_STREAM frame with CANCEL (0x8) for stream.
func RST(stream uint32) []byte {
	return frame(TypeRSTStream, 0, stream, []byte{0, 0, 0, 0x8})
}

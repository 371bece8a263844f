package testh2

import (
	"bufio"
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// Outcome is what came back for stream 1 of DoFrames.
type Outcome struct {
	Response
	// ResetCode is the error code of the RST_STREAM that ended stream 1
	// (1 PROTOCOL_ERROR, 8 CANCEL, ...), when one did.
	ResetCode uint32
	// GoAway: the server sent GOAWAY (then the connection's error code,
	// 0 for NO_ERROR) before stream 1 ended.
	GoAway     bool
	GoAwayCode uint32
	// Informational are the :status of the 1xx header blocks before the
	// final one.
	Informational []int
}

// DoFrames opens a TLS connection to addr, which must offer h2, sends the
// preface and an empty SETTINGS, then frames as they are (the request on
// stream 1, in any shape: trailers, a HEADERS without END_STREAM and no
// DATA, a pseudo-header out of place), and reads stream 1's answer for up
// to 10 s.
func DoFrames(t testing.TB, addr string, frames ...[]byte) Outcome {
	t.Helper()
	c := dialH2(t, addr)
	defer c.Close()
	out := append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(TypeSettings, 0, 0, nil)...)
	for _, f := range frames {
		out = append(out, f...)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var o Outcome
	for {
		var hdr [9]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("reading the response: %v (so far %+v)", err, o)
		}
		payload := make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatalf("reading the response: %v (so far %+v)", err, o)
		}
		typ, flags, stream := hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:])&0x7fffffff
		switch {
		case typ == TypeSettings && flags&0x1 == 0:
			c.Write(frame(TypeSettings, 0x1, 0, nil))
		case typ == TypeHeaders && stream == 1 && len(payload) > 0:
			if st := status(payload); st >= 100 && st < 200 {
				o.Informational = append(o.Informational, st)
				continue
			} else if o.Status == 0 {
				o.Status = st
			}
			if flags&FlagEndStream != 0 {
				return o
			}
		case typ == TypeData && stream == 1:
			o.Body += string(payload)
			if flags&FlagEndStream != 0 {
				return o
			}
		case typ == TypeRSTStream && stream == 1 && len(payload) == 4:
			o.Reset, o.ResetCode = true, binary.BigEndian.Uint32(payload)
			return o
		case typ == 0x7 && len(payload) >= 8: // GOAWAY
			o.GoAway, o.GoAwayCode = true, binary.BigEndian.Uint32(payload[4:8])
			if last := binary.BigEndian.Uint32(payload[:4]) & 0x7fffffff; last < 1 || o.GoAwayCode != 0 {
				o.Reset = true
				return o
			}
		}
	}
}

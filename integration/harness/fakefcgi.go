package harness

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// FakeFCGIAnswer is what a FakeFCGI sends for one request: Raw, byte for
// byte, then Later after LaterDelay (when not nil), then the connection is
// closed when Close is set or the request did not ask to keep it
// (FCGI_KEEP_CONN), else the next request is read from it.
type FakeFCGIAnswer struct {
	Raw        []byte
	Later      []byte
	LaterDelay time.Duration
	Close      bool
	// Dribble sends Raw a few bytes per write, so that records and their
	// headers arrive in pieces.
	Dribble bool
}

// FakeFCGI is a scripted FastCGI server: it reads whole requests (BEGIN_REQUEST,
// PARAMS, STDIN up to its empty record) and answers each with the raw bytes
// its script gives for the request's params, framed or misframed as they
// are. It stands for the FastCGI servers that are not php-fpm (a custom
// one, one killed mid-record, a proxy in between), which front servers are
// compared against.
type FakeFCGI struct {
	*fakeServer

	script func(params map[string]string) FakeFCGIAnswer
	served int // guarded by fakeServer.mu
}

// StartFakeFCGI listens on a free loopback port; t.Cleanup closes it and
// every connection it holds.
func StartFakeFCGI(t testing.TB, script func(params map[string]string) FakeFCGIAnswer) *FakeFCGI {
	t.Helper()
	f := &FakeFCGI{fakeServer: listenFake(t, "FastCGI"), script: script}
	f.serve(f.serveConn)
	return f
}

// Served is the number of requests read whole so far.
func (f *FakeFCGI) Served() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served
}

// serveConn answers the requests of one connection as the script says.
func (f *FakeFCGI) serveConn(c net.Conn, br *bufio.Reader) {
	for {
		params, keep, err := readFCGIRequest(br)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.served++
		f.mu.Unlock()
		a := f.script(params)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := writeAnswer(c, a); err != nil {
			return
		}
		if a.Later != nil {
			time.Sleep(a.LaterDelay)
			if _, err := c.Write(a.Later); err != nil {
				return
			}
		}
		if a.Close || !keep {
			return
		}
	}
}

// readFCGIRequest reads one request's records up to its empty STDIN and
// returns its params and whether BEGIN_REQUEST asked to keep the connection.
func readFCGIRequest(br *bufio.Reader) (params map[string]string, keep bool, err error) {
	var raw []byte
	for {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return nil, false, err
		}
		n, pad := int(binary.BigEndian.Uint16(h[4:6])), int(h[6])
		content := make([]byte, n+pad)
		if _, err := io.ReadFull(br, content); err != nil {
			return nil, false, err
		}
		switch h[1] {
		case 1: // BEGIN_REQUEST
			keep = n >= 3 && content[2]&1 != 0
		case 4: // PARAMS
			raw = append(raw, content[:n]...)
		case 5: // STDIN
			if n == 0 {
				params, err = decodeFCGIParams(raw)
				return params, keep, err
			}
		}
	}
}

func decodeFCGIParams(b []byte) (map[string]string, error) {
	m := map[string]string{}
	length := func() (int, error) {
		if len(b) == 0 {
			return 0, errors.New("short params")
		}
		if b[0] < 128 {
			n := int(b[0])
			b = b[1:]
			return n, nil
		}
		if len(b) < 4 {
			return 0, errors.New("short params")
		}
		n := int(binary.BigEndian.Uint32(b) & 0x7fffffff)
		b = b[4:]
		return n, nil
	}
	for len(b) > 0 {
		nl, err := length()
		if err != nil {
			return nil, err
		}
		vl, err := length()
		if err != nil {
			return nil, err
		}
		if len(b) < nl+vl {
			return nil, fmt.Errorf("param of %d+%d bytes in %d", nl, vl, len(b))
		}
		m[string(b[:nl])] = string(b[nl : nl+vl])
		b = b[nl+vl:]
	}
	return m, nil
}

// FCGIRecord is one record for request id 1 with the given padding.
func FCGIRecord(typ byte, content []byte, padding int) []byte {
	return FCGIRecordID(typ, 1, content, padding)
}

// FCGIRecordID is one version-1 record for request id, padded with zeros.
func FCGIRecordID(typ byte, id uint16, content []byte, padding int) []byte {
	b := []byte{1, typ, byte(id >> 8), byte(id), byte(len(content) >> 8), byte(len(content)), byte(padding), 0}
	b = append(b, content...)
	return append(b, make([]byte, padding)...)
}

// FCGIEnd is the END_REQUEST record with appStatus and protocolStatus.
func FCGIEnd(appStatus uint32, protocolStatus byte, padding int) []byte {
	var body [8]byte
	binary.BigEndian.PutUint32(body[:4], appStatus)
	body[4] = protocolStatus
	return FCGIRecord(3, body[:], padding)
}

func writeAnswer(c net.Conn, a FakeFCGIAnswer) error {
	if !a.Dribble {
		_, err := c.Write(a.Raw)
		return err
	}
	for p := a.Raw; len(p) > 0; {
		n := min(len(p), 3)
		if _, err := c.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		time.Sleep(200 * time.Microsecond)
	}
	return nil
}

package fcgi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// bytesConn is a net.Conn whose peer sends fixed bytes and then closes.
type bytesConn struct{ r *bytes.Reader }

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

func rec(typ uint8, content string, pad int) []byte {
	b := make([]byte, headerLen, headerLen+len(content)+pad)
	putHeader(b, typ, len(content), pad)
	b = append(b, content...)
	return append(b, make([]byte, pad)...)
}

func endRec(protoStatus byte) []byte {
	b := make([]byte, headerLen, headerLen+8)
	putHeader(b, typeEndRequest, 8, 0)
	return append(b, 0, 0, 0, 0, protoStatus, 0, 0, 0)
}

// FuzzResponseParser feeds arbitrary bytes as php-fpm's answer through the
// record reader, the CGI header parser and the streaming body. It must
// never panic or hang, and a response that ends without END_REQUEST must
// never read as a clean io.EOF.
func FuzzResponseParser(f *testing.F) {
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f.Add(join(rec(typeStdout, "Content-Type: text/plain\r\n\r\nhello", 3), rec(typeStdout, "", 0), endRec(0)))
	f.Add(join(rec(typeStderr, "PHP message: x", 2), rec(typeStdout, "Status: 404\n\nx", 0), endRec(0)))
	f.Add(join(rec(typeStdout, "Location: /a\r\n", 0), rec(typeStdout, "\r\nbody", 7), endRec(0)))
	f.Add(join(rec(typeStdout, "X: a\r\n continued\r\n\r\n", 0), endRec(statusOverloaded)))
	f.Add(join(rec(typeStdout, "Content-Type: a\r\n\r\npartial", 0)))
	f.Add([]byte{1, 6, 0, 1, 255, 255, 255, 0})
	f.Add([]byte{2, 6, 0, 1, 0, 0, 0, 0})
	f.Add(join(rec(typeStdout, "\r\n", 0), rec(typeStdout, "a", 0), rec(typeStderr, "", 0), endRec(0)))

	tr, err := NewTransport(Options{
		Backends:       []string{"127.0.0.1:9"},
		StderrLogLimit: 64,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	b := tr.backends[0]
	req := newReq(nil, "GET", "/", nil, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		nc := &bytesConn{r: bytes.NewReader(data)}
		b.mu.Lock()
		b.open++ // the slot this connection holds
		b.mu.Unlock()
		c := &conn{nc: nc, br: bufio.NewReaderSize(nc, 64), bw: bufio.NewWriter(nc), b: b}
		body := requestBody{size: -1}
		var handedOff bool
		resp, _, err := tr.exchange(context.Background(), req, testScript, c, appendBeginRequest(nil), &body, 0, func() {}, &handedOff)
		if err != nil {
			if s := StatusOf(err); s != 502 && s != 504 {
				t.Fatalf("status %d for %v", s, err)
			}
		} else {
			_, rerr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ended := bytes.Contains(data, []byte{1, typeEndRequest, 0, 1, 0, 8})
			if rerr == nil && !ended {
				t.Fatal("clean end of body without END_REQUEST")
			}
		}
		// Whatever happened, the slot was given back or the conn pooled.
		b.closeIdle(false)
		b.mu.Lock()
		open := b.open
		b.mu.Unlock()
		if open != 0 {
			t.Fatalf("slot leaked: open=%d", open)
		}
	})
}

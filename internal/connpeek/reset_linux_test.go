package connpeek

import (
	"io"
	"testing"
	"time"
)

// A request written after the peer closed is refused by the peer's
// kernel with a reset, which proves it unread; one the peer read before
// it closed gets none.
func TestClosedBeforeItRead(t *testing.T) {
	c, s := pair(t)
	s.Close()
	settle()
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the peer's close: %v, want EOF", err)
	}
	if !ClosedBeforeItRead(c, 5*time.Millisecond) {
		t.Error("a request written after the peer closed is not seen as unread")
	}

	c2, s2 := pair(t)
	c2.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	if _, err := io.ReadFull(s2, make([]byte, 18)); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	settle()
	if _, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the peer's close: %v, want EOF", err)
	}
	if ClosedBeforeItRead(c2, 5*time.Millisecond) {
		t.Error("a request the peer read before it closed is seen as unread")
	}
}

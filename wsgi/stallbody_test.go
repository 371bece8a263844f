package wsgi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testlog"
)

// A Django response with a Content-Length that stalls after part of its
// body (past SESSIONGATE_DJANGO_TIMEOUT) reached the client as nothing at
// all: net/http drops what it buffers of a response aborted with
// ErrAbortHandler, here the header and the part, while the access log
// said 504. On a kept-alive connection a browser takes an empty reply for
// a connection closed as it was reused and sends the request again: the
// view ran twice. nginx sends the header and the part, then cuts; so does
// the gateway now.
func TestStalledBodySendsWhatCame(t *testing.T) {
	part := strings.Repeat("p", 300)
	addr := rawBackend(t, func(_ int, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: "+req.URL.Query().Get("type")+"\r\nContent-Length: 1000\r\n\r\n"+part)
		// The rest never comes: the connection stays open until the
		// gateway gives up on it.
		io.Copy(io.Discard, c)
	})
	logs := &testlog.Buffer{}
	front := behindGateway(t, addr, 300*time.Millisecond, logs)

	for _, tc := range []struct{ name, path, head string }{
		{"as it came", "/admin/?type=application/octet-stream", "Content-Length: 1000"},
		// Compressed, the part left in the gzip writer: the header goes
		// out, and a chunked body without its end.
		{"compressed", "/admin/?type=text/html", "Transfer-Encoding: chunked"},
	} {
		before := len(logs.String())
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
		got, _ := io.ReadAll(c)
		c.Close()
		head, body, _ := strings.Cut(string(got), "\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/1.1 200 ") || !strings.Contains(head, tc.head) ||
			tc.name == "as it came" && body != part || strings.HasSuffix(body, "0\r\n\r\n") {
			t.Errorf("%s: client got %q, want the header and what came before the stall, then a cut", tc.name, got)
		}
		if !strings.Contains(logs.String()[before:], `"status":504`) {
			t.Errorf("%s: log %s, want 504", tc.name, logs.String()[before:])
		}
	}
}

// The same for a response of unknown length (a StreamingHttpResponse under
// ASGI, whose header Django sends at once) whose first byte does not come
// within SESSIONGATE_DJANGO_TIMEOUT: the header, then the cut. A client
// that accepts gzip got an empty reply for a compressible type: the
// gateway holds such a response until 256 bytes of body, to compress
// them, and the abort dropped what it held.
func TestStalledStreamSendsItsHeader(t *testing.T) {
	addr := rawBackend(t, func(_ int, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: "+req.URL.Query().Get("type")+"\r\nTransfer-Encoding: chunked\r\n\r\n")
		io.Copy(io.Discard, c) // the first chunk never comes
	})
	front := behindGateway(t, addr, 300*time.Millisecond, io.Discard)

	get := func(path string) string {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
		got, _ := io.ReadAll(c)
		return string(got)
	}
	// Not compressible: the header, then the cut.
	if got := get("/admin/?type=application/octet-stream"); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatalf("octet-stream: client got %q, want the header then the cut", got)
	}
	// Compressible (a CSV export, an HTML page streamed): the same expected.
	if got := get("/admin/?type=text/csv"); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Errorf("text/csv, Accept-Encoding: gzip: client got %q (an empty reply), want the header then the cut", got)
	}
}

package wsgi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// exchangeLog records, for each request a rawBackend read, its method and
// the connection (in accept order) and position on it.
type exchangeLog struct {
	mu  sync.Mutex
	got []string
}

func (l *exchangeLog) add(conn, i int, method string) {
	l.mu.Lock()
	l.got = append(l.got, fmt.Sprintf("%s %d/%d", method, conn, i))
	l.mu.Unlock()
}

func (l *exchangeLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) == 0 {
		return ""
	}
	return l.got[len(l.got)-1]
}

func roundTrip(t *testing.T, tr *h1Transport, method, url, body string) (int, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	res, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// A backend that closes every connection after its first answer without
// saying so (uWSGI's HTTP socket), a moment after the answer: a POST too
// large to be proven unread (over 4 KiB) that took such a connection
// before the close got 502, though the backend never read it. Once a
// kept-alive connection was seen closed after one answer, the POST takes
// a new connection.
func TestTransportLearnsABackendThatClosesAfterEveryAnswer(t *testing.T) {
	var log exchangeLog
	addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
		req := readRequest(t, br)
		if req == nil {
			return
		}
		log.add(n, 0, req.Method)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// The close comes after the next request went out on the
		// connection: a reset, the request unread.
		time.Sleep(50 * time.Millisecond)
	})
	tr := testTransport()
	t.Cleanup(tr.CloseIdleConnections) // before the backend's, which waits for its connections
	url := "http://" + addr + "/"
	if code, err := roundTrip(t, tr, "GET", url, ""); code != 200 {
		t.Fatalf("first GET: %d %v", code, err)
	}
	// Sent on the kept connection, the close meets it, and it goes
	// again on a new one.
	if code, err := roundTrip(t, tr, "GET", url, ""); code != 200 {
		t.Fatalf("GET on the connection closed after one answer: %d %v, want it sent again", code, err)
	}
	body := "a=" + strings.Repeat("x", 6000)
	if code, err := roundTrip(t, tr, "POST", url, body); code != 200 {
		t.Fatalf("POST of %d bytes after the backend was seen closing after one answer: %d %v, want it on a new connection", len(body), code, err)
	}
	if got := log.last(); got != "POST 2/0" {
		t.Errorf("the POST went as %q, want the third connection's first request", got)
	}
}

// Seen once, a close after one answer (a gunicorn closing a connection at
// its --keep-alive) sends requests that must not go twice on new
// connections only until a connection carries a second exchange.
func TestTransportForgetsTheCloseOnceAConnectionIsKept(t *testing.T) {
	var log exchangeLog
	addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			req := readRequest(t, br)
			if req == nil {
				return
			}
			log.add(n, i, req.Method)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			if n == 0 {
				return // the first connection only: closed after its answer
			}
		}
	})
	tr := testTransport()
	t.Cleanup(tr.CloseIdleConnections) // before the backend's, which waits for its connections
	url := "http://" + addr + "/"
	for _, step := range []struct {
		method, want string
	}{
		{"GET", "GET 0/0"},
		{"GET", "GET 1/0"},   // the first connection was closed
		{"POST", "POST 2/0"}, // seen closed after one answer: a new one
		{"GET", "GET 2/1"},   // kept: a second exchange
		{"POST", "POST 2/2"}, // the close is forgotten
	} {
		// The peek must see the first connection's close.
		time.Sleep(20 * time.Millisecond)
		body := ""
		if step.method == "POST" {
			body = "a=1"
		}
		if code, err := roundTrip(t, tr, step.method, url, body); code != 200 {
			t.Fatalf("%s: %d %v", step.method, code, err)
		}
		if got := log.last(); got != step.want {
			t.Fatalf("%s went as %q, want %q (all: %q)", step.method, got, step.want, log.got)
		}
	}
}

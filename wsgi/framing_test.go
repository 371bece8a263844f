package wsgi

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/server"
)

// behindGateway serves /admin/ from the backend at addr through the whole
// gateway (server, Proxy, balancer, transport), with readTimeout for
// SESSIONGATE_DJANGO_TIMEOUT and its log written to logs, and returns its
// address.
func behindGateway(t *testing.T, addr string, readTimeout time.Duration, logs io.Writer) string {
	t.Helper()
	p, err := New(Options{Backends: []string{"http://" + addr}, ReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=127.0.0.1:9",
		"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSION_KEYS=" + testSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.NewJSONHandler(logs, nil)), server.WithPHPBackend(noPHP{}),
		server.WithMount("django", []string{"/admin/"}, p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	front := httptest.NewServer(srv.Handler())
	t.Cleanup(front.Close)
	return front.Listener.Addr().String()
}

// A view can answer any request 101 (HttpResponse(status=101): gunicorn
// sends it with Connection: keep-alive and no Upgrade). ReverseProxy found
// the request's upgrade ("") and the answer's ("") equal and, the
// transport giving every 101 a read-write body, joined the client's
// connection to gunicorn's: what the client sent next went to gunicorn
// straight, past the gateway's routing, restricted paths and rate limits,
// with the X-Forwarded-For it chose (h2c smuggling's shape, without h2c).
// A 101 nobody asked for is a 502.
func TestUnaskedSwitchIs502(t *testing.T) {
	addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
		if readRequest(t, br) == nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
		for {
			req := readRequest(t, br)
			if req == nil {
				return
			}
			body := "backend saw " + req.Method + " " + req.URL.Path + " X-Forwarded-For=" + req.Header.Get("X-Forwarded-For")
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		}
	})
	c, err := net.Dial("tcp", behindGateway(t, addr, 2*time.Second, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "GET /admin/ HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	if res.StatusCode == http.StatusBadGateway {
		return
	}
	io.WriteString(c, "GET /not-django/secret HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
	var got string
	if res2, err := http.ReadResponse(br, nil); err == nil {
		b, _ := io.ReadAll(io.LimitReader(res2.Body, 200))
		got = string(b)
	}
	t.Fatalf("a 101 nobody asked for: client got %d, want 502; its next request then got %q", res.StatusCode, got)
}

// A 101 to another protocol than the one asked for (here none):
// ReverseProxy answers 502 without closing the answer's body, which held
// the backend connection until a garbage collection.
func TestRefusedSwitchClosesItsConnection(t *testing.T) {
	closed := make(chan struct{})
	addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
		if readRequest(t, br) == nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := br.ReadByte(); err == io.EOF {
			close(closed)
		}
	})
	front := proxyTo(t, testTransport(), addr)
	res, err := front.Client().Get(front.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatalf("the backend connection of a refused 101 (client got %d) is still open 3 s later", res.StatusCode)
	}
}

// Whitespace before the colon of a field that frames the answer
// ("Content-Length : 11"): net/http framed the answer without it, and the
// transport then gave it its name (RFC 9112 section 5.1), so the answer
// and its fields disagreed: two Content-Lengths of different values to
// the client, a body read up to a close a kept-alive backend never sends,
// chunk framing passed on as content. uWSGI's HTTP socket passes such a
// line from the app as it is. A 502, as from nginx.
func TestFramingFieldWithSpaceBeforeColonIs502(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\nContent-Length : 11\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
			for readRequest(t, br) != nil {
				io.WriteString(c, answer)
			}
		})
		c, err := net.Dial("tcp", behindGateway(t, addr, 2*time.Second, io.Discard))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /admin/ HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		var head []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%q: %v after %q", answer, err, head)
			}
			if line == "\r\n" {
				break
			}
			head = append(head, strings.TrimRight(line, "\r\n"))
		}
		c.Close()
		if !strings.Contains(head[0], " 502 ") {
			t.Errorf("%q: the gateway answered %q, want a 502", answer, head)
		}
	}
}

// RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has
// faulty framing, after which the connection must close (net/http frames
// it by its Content-Length, and its rest may still be on the connection).
// The transport kept it.
func TestHTTP10AnswerIsNotReused(t *testing.T) {
	var conns atomic.Int32
	addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		for readRequest(t, br) != nil {
			io.WriteString(c, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello")
		}
	})
	tr := testTransport()
	defer tr.CloseIdleConnections()
	for range 2 {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("an HTTP/1.0 answer left its connection reused: %d connections for 2 requests", n)
	}
}

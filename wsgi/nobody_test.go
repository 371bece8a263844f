package wsgi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// gunicorn writes the body Django gave a 204 or 304 (JsonResponse({},
// status=204), with the Content-Length CommonMiddleware adds) after the
// headers, in a second write, and keeps the connection alive. A client
// does not read a body after such a status: the bytes must not be taken
// for the start of the next response on that connection.
func TestTransportNoBodyStatusWithBodyDoesNotPoisonTheConnection(t *testing.T) {
	for _, status := range []int{204, 304} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
				for {
					req := readRequest(t, br)
					if req == nil {
						return
					}
					if req.URL.Path == "/nobody" {
						fmt.Fprintf(c, "HTTP/1.1 %d X\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", status)
						time.Sleep(20 * time.Millisecond)
						io.WriteString(c, "{}")
						continue
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			tr := testTransport()
			front := proxyTo(t, tr, addr)
			c := front.Client()
			if code, _ := mustGet(t, c, "GET", front.URL+"/nobody", ""); code != status {
				t.Fatalf("got %d, want %d", code, status)
			}
			time.Sleep(50 * time.Millisecond) // the body has arrived
			if code, got := mustGet(t, c, "GET", front.URL+"/next", ""); code != 200 || got != "ok" {
				t.Fatalf("the request after a %d with a body: %d %q, want 200 \"ok\"", status, code, got)
			}
		})
	}
}

// TestResetContentHasNoBody: RFC 9110 section 15.3.6 says a 205 has no
// content, but ReverseProxy passed on the body Django gave it
// (JsonResponse({}, status=205)), with Django's Content-Length or chunked.
// It is dropped now, as on the PHP path, and the response says
// Content-Length: 0.
func TestResetContentHasNoBody(t *testing.T) {
	for _, length := range []bool{true, false} {
		e := newEnv(t, envOpts{})
		e.app.handle = func(w http.ResponseWriter, r *http.Request, s seen) (answer, bool) {
			if length {
				w.Header().Set("Content-Length", "11")
			}
			w.WriteHeader(http.StatusResetContent)
			if !length {
				w.(http.Flusher).Flush() // chunked
			}
			io.WriteString(w, "BODY-OF-205")
			return answer{}, false
		}
		res, body, _ := e.do("GET", "/a/", "", nil)
		if res.StatusCode != http.StatusResetContent || body != "" || res.Header.Get("Content-Length") != "0" {
			t.Errorf("length %v: %d %q, Content-Length %q", length, res.StatusCode, body, res.Header.Get("Content-Length"))
		}
		if strings.Contains(e.logs.String(), "cut short") {
			t.Errorf("length %v: the dropped body counted as a cut:\n%s", length, e.logs.String())
		}
	}
}

package wsgi

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A request body that streams to Django (over 64 KiB with a known length,
// SESSIONGATE_REQUEST_BUFFERING=off) and does not go out whole, because the
// client left mid-upload or the backend stopped taking it, ends with a
// reset of the connection, not a clean close. gunicorn reads a body up to
// its Content-Length and takes an end of the connection before it for the
// end of the body: Django ran the view on the half it got (a file saved cut
// short), as behind nginx with proxy_request_buffering off. A reset makes
// gunicorn's read fail, and Django raises UnreadablePostError instead.
func TestUploadNotSentWholeResetsTheConnection(t *testing.T) {
	for _, c := range []struct {
		name  string
		stall bool // the backend stops reading the body (else the client leaves)
	}{{"client leaves", false}, {"backend stalls", true}} {
		t.Run(c.name, func(t *testing.T) {
			got := make(chan error, 1)
			addr := rawBackend(t, func(n int, conn net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					got <- err
					return
				}
				if c.stall {
					time.Sleep(time.Second) // past the gateway's timeout
				}
				_, err = io.Copy(io.Discard, req.Body)
				got <- err
			})
			e := newEnv(t, envOpts{
				backends: func(http.Handler) []string { return []string{"http://" + addr} },
				opts:     func(o *Options) { o.ReadTimeout = 300 * time.Millisecond },
			})
			conn, err := net.Dial("tcp", e.gw.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			const total = 64 << 20
			io.WriteString(conn, "POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: "+strconv.Itoa(total)+"\r\n\r\n")
			part := make([]byte, 256<<10)
			if c.stall {
				// More than the socket buffers hold, so the gateway's
				// write stalls; the client stays.
				go func() {
					for i := 0; i < 64; i++ {
						if _, err := conn.Write(part); err != nil {
							return
						}
					}
				}()
			} else {
				conn.Write(part)
				time.Sleep(200 * time.Millisecond)
				conn.Close()
			}
			select {
			case err := <-got:
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("the backend's read of a body not sent whole ended with %v, want a connection reset", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the backend's read of the body did not end")
			}
		})
	}
}

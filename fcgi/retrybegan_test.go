package fcgi

import (
	"bufio"
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testnet"
)

// TestNoRetryOnceTheScriptBeganAnswering: a request is sent again only
// when a reused connection failed before any answer. The write of a large
// body may fail after the script began answering (a STDERR record:
// error_log(), a session frame; or part of its header) and its worker
// died: the script has run, and even an idempotent PUT is not run again
// (OnStderr would see both runs' records, the session bridge apply both
// runs' frames).
func TestNoRetryOnceTheScriptBeganAnswering(t *testing.T) {
	t.Run("stderr", func(t *testing.T) { noRetryOnceBegan(t, false) })
	t.Run("stdout", func(t *testing.T) { noRetryOnceBegan(t, true) })
}

func noRetryOnceBegan(t *testing.T, stdout bool) {
	ln := testnet.SmallBufferListener(t)
	var puts atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br := bufio.NewReader(nc)
				c := &fakeConn{nc: nc, bw: bufio.NewWriter(nc)}
				for n := 1; ; n++ {
					params := map[string]string{}
					for {
						typ, p, err := readRecord(br)
						if err != nil {
							return
						}
						if typ == typeParams {
							if len(p) == 0 {
								break
							}
							pairs, _ := decodePairs(p)
							for _, kv := range pairs {
								params[kv.Name] = kv.Value
							}
						}
					}
					if params["REQUEST_METHOD"] == "PUT" {
						puts.Add(1)
						if n > 1 {
							// The script starts, says so on stderr, and
							// its worker is killed before it read the body.
							if stdout {
								// Part of its header block is out.
								c.Stdout("Content-Type: text/plain\r\nX-Run: first\r\n")
							} else {
								c.Stderr("PHP message: script started")
							}
							c.Flush()
							time.Sleep(50 * time.Millisecond)
							nc.(*net.TCPConn).SetLinger(0)
							return
						}
					}
					if readThrough(br, typeStdin) != nil {
						return
					}
					respond(c, "Content-Type: text/plain\r\n", "ok")
					if c.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	tr, _ := newTransport(t, Options{MaxBody: 64 << 20, TempDir: t.TempDir(), MaxConnsPerBackend: 1}, ln.Addr().String())
	// A first request leaves a kept-alive connection.
	if _, body, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil || body != "ok" {
		t.Fatalf("first request: %q %v", body, err)
	}
	var stderrs atomic.Int64
	s := *testScript
	s.OnStderr = func(msg []byte) []byte { stderrs.Add(1); return nil }
	body := chunkedReader{bytes.NewReader(make([]byte, 8<<20))} // spooled, written while the answer is read
	resp, err := tr.RoundTrip(newReq(nil, "PUT", "/", body, &s))
	if err == nil {
		resp.Body.Close()
	}
	if n := puts.Load(); n != 1 || err == nil {
		t.Fatalf("the PUT reached PHP %d times (OnStderr called %d times; error %v), though its first run had begun answering before it failed", n, stderrs.Load(), err)
	}
}

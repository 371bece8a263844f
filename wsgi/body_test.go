package wsgi

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testnet"

	"github.com/sessiongate/sessiongate/internal/bodyread"
)

// TestRequestBodiesReachDjangoWithTheirLength: every body reaches Django
// whole and with a Content-Length (Django reads no further), whether the
// client sent it chunked or not, small or spooled to a temp file.
func TestRequestBodiesReachDjangoWithTheirLength(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app.handle = func(w http.ResponseWriter, r *http.Request, _ seen) (answer, bool) {
		b, _ := io.ReadAll(r.Body)
		sum := md5.Sum(b)
		fmt.Fprintf(w, "%d %v %d %s", r.ContentLength, r.TransferEncoding, len(b), hex.EncodeToString(sum[:]))
		return answer{}, false
	}
	for _, size := range []int{1, 1000, memBodyLimit, memBodyLimit + 1, 300 << 10} {
		for _, chunked := range []bool{false, true} {
			payload := strings.Repeat("0123456789abcdef", size/16+1)[:size]
			var body io.Reader = strings.NewReader(payload)
			if chunked {
				body = io.NopCloser(body) // hides the length: sent chunked
			}
			sum := md5.Sum([]byte(payload))
			want := fmt.Sprintf("%d [] %d %s", size, size, hex.EncodeToString(sum[:]))
			if res, got, _ := e.do("POST", "/up", "", body); res.StatusCode != 200 || got != want {
				t.Errorf("%d bytes, chunked %v: %d %q, want %q", size, chunked, res.StatusCode, got, want)
			}
		}
	}
}

// TestBrokenRequestBodyIs400: a chunked body the client cuts short or
// garbles is the client's error (400), and Django never sees the request.
func TestBrokenRequestBodyIs400(t *testing.T) {
	e := newEnv(t, envOpts{})
	var calls atomic.Int32
	e.app.handle = func(http.ResponseWriter, *http.Request, seen) (answer, bool) {
		calls.Add(1)
		return answer{}, true
	}
	c, err := net.Dial("tcp", e.gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 400 ") {
		t.Errorf("garbled chunked body: %q", b)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("Django saw %d requests", n)
	}
}

// A chunked body whose connection ends inside it (net/http's chunked
// reader then says io.ErrUnexpectedEOF) is not a whole body: io.ReadFull
// says the same for a short one, and the part that came was taken for all
// of it, to go on to Django.
func TestChunkedBodyCutShortIsNotWhole(t *testing.T) {
	r := httptest.NewRequest("POST", "/up", io.MultiReader(strings.NewReader("abc"), errorReader{io.ErrUnexpectedEOF}))
	r.ContentLength = -1
	release, err := spoolBody(r)
	if err == nil {
		release()
		t.Fatalf("a body cut short was read as a whole one of %d bytes", r.ContentLength)
	}
	if got := statusOf(r, err); got != http.StatusBadRequest {
		t.Errorf("%v: status %d, want 400", err, got)
	}
}

// A body the client was too slow to send (the server's read timeout) is
// 408, like nginx's client_body_timeout; a garbled one 400.
func TestClientBodyErrorStatus(t *testing.T) {
	r := httptest.NewRequest("POST", "/", nil)
	if got := statusOf(r, clientBodyErr(os.ErrDeadlineExceeded)); got != http.StatusRequestTimeout {
		t.Errorf("read timeout: %d", got)
	}
	if got := statusOf(r, clientBodyErr(errors.New("malformed chunked encoding"))); got != http.StatusBadRequest {
		t.Errorf("garbled: %d", got)
	}
	if got := statusOf(r, clientBodyErr(&http.MaxBytesError{Limit: 1})); got != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d", got)
	}
}

// A body read ahead can be sent again from the start: spoolBody sets
// GetBody, without which a replayable request (a GET with a body, a POST
// with an Idempotency-Key) was never resent after a stale kept-alive
// connection and got a 502 instead.
func TestSpooledBodyCanBeSentAgain(t *testing.T) {
	for _, size := range []int{10, memBodyLimit + 1, 200 << 10} {
		for _, chunked := range []bool{false, true} {
			payload := strings.Repeat("x", size)
			r := httptest.NewRequest("POST", "/", strings.NewReader(payload))
			if chunked {
				r.ContentLength = -1
				r.Body = io.NopCloser(strings.NewReader(payload))
			}
			release, err := spoolBody(r)
			if err != nil {
				t.Fatal(err)
			}
			if r.GetBody == nil {
				t.Fatalf("%d bytes, chunked %v: no GetBody", size, chunked)
			}
			first, _ := io.ReadAll(r.Body)
			for i := 0; i < 2; i++ {
				b, err := r.GetBody()
				if err != nil {
					t.Fatal(err)
				}
				again, _ := io.ReadAll(b)
				if string(again) != payload || string(first) != payload {
					t.Fatalf("%d bytes, chunked %v: read %d then %d bytes", size, chunked, len(first), len(again))
				}
			}
			if !replayable(func() *http.Request { r.Method = "GET"; return r }()) {
				t.Errorf("%d bytes: a GET with a read-ahead body is not replayable", size)
			}
			release()
		}
	}
}

// The same through a real net/http server, whose ReadTimeout runs out:
// net/http cancels the request's context when a body read fails, its
// deadline included, and the slow client was taken for one that left
// (nothing answered, so "200 OK" with no body, and 499 in the log).
func TestSlowClientBodyThroughServerIs408(t *testing.T) {
	for _, buffer := range []bool{false, true} {
		e := newEnv(t, envOpts{opts: func(o *Options) { o.BufferBodies = buffer }})
		var calls atomic.Int32
		e.app.handle = func(w http.ResponseWriter, r *http.Request, _ seen) (answer, bool) {
			calls.Add(1)
			io.Copy(io.Discard, r.Body)
			return answer{}, true
		}
		front := httptest.NewUnstartedServer(e.proxy)
		front.Config.ReadTimeout = 300 * time.Millisecond
		front.Start()
		t.Cleanup(front.Close)
		for name, head := range map[string]string{
			"in memory": "Content-Length: 1000\r\n\r\nabc",
			"large":     "Content-Length: 204800\r\n\r\nabc",
			"chunked":   "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
		} {
			got := testnet.Exchange(t, front.Listener.Addr().String(), "POST /up HTTP/1.1\r\nHost: x\r\n"+head)
			if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
				t.Errorf("buffering %v, %s: a body stalled past the read timeout got %q, want a 408", buffer, name, got)
			}
		}
	}
}

// A body the gateway cannot keep (no temp dir, a full disk) is the
// gateway's failure, 500 as on the PHP path, not Django's (502), and
// the error says it was the request body's spool.
func TestSpoolFailureIsTheGateways(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()+"/missing")
	for _, n := range []int64{100 << 10, -1} {
		r := httptest.NewRequest("POST", "/up", strings.NewReader(strings.Repeat("u", 100<<10)))
		r.ContentLength = n
		release, err := spoolBody(r)
		if err == nil {
			release()
			t.Fatalf("length %d: spooled without a temp dir", n)
		}
		if got := statusOf(r, err); got != http.StatusInternalServerError || !strings.Contains(err.Error(), "spool request body") {
			t.Errorf("length %d: %v: status %d, want 500 naming the spool", n, err, got)
		}
	}
}

// TestChunkedRequestTrailersStayBehind: a chunked body reaches Django
// with a Content-Length, so no trailer can follow it: neither the
// trailer's fields nor the Trailer field that announced them (which
// Request.Write sends from Request.Trailer) reach Django.
func TestChunkedRequestTrailersStayBehind(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app.handle = func(w http.ResponseWriter, r *http.Request, _ seen) (answer, bool) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%q %d %q %q", b, r.ContentLength, r.Header["Trailer"], r.Trailer)
		return answer{}, false
	}
	c, err := net.Dial("tcp", e.gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nTrailer: X-Check, X-Sessiongate-Op\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
		"5\r\nhello\r\n0\r\nX-Check: 1\r\nX-Sessiongate-Op: delete\r\n\r\n")
	b, _ := io.ReadAll(c)
	if want := `"hello" 5 [] map[]`; !strings.HasPrefix(string(b), "HTTP/1.1 200 ") || !strings.HasSuffix(string(b), want) {
		t.Errorf("Django saw %q, want a body ending %s", b, want)
	}
}

// BenchmarkSpoolBody is a request body read ahead for Django that arrives
// at once, as most form posts do: the cost of the in-memory path per size
// and framing.
func BenchmarkSpoolBody(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 16 << 10, 60 << 10} {
		for _, chunked := range []bool{false, true} {
			name := fmt.Sprintf("%d", size)
			if chunked {
				name += "-chunked"
			}
			b.Run(name, func(b *testing.B) {
				payload := []byte(strings.Repeat("x", size))
				body := bytes.NewReader(payload)
				r := httptest.NewRequest("POST", "/up", nil)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					body.Reset(payload)
					r.Body, r.ContentLength = io.NopCloser(body), int64(size)
					if chunked {
						r.ContentLength = -1
					}
					release, err := spoolBody(r)
					if err != nil || r.ContentLength != int64(size) {
						b.Fatalf("%v, length %d", err, r.ContentLength)
					}
					release()
				}
			})
		}
	}
}

// TestStalledBodyHoldsLittleMemory: a request whose body has not sent a
// byte yet holds a small buffer, not the whole body's. spoolBody made a
// buffer of the declared length (up to 64 KiB), or of 64 KiB + 1 for a
// chunked body, before the first read: HTTP/2 streams that send HEADERS
// and never DATA held that much each until the read timeout. nginx holds
// client_body_buffer_size (16 KiB) at most.
func TestStalledBodyHoldsLittleMemory(t *testing.T) {
	const n = 200
	var base int64
	for _, mode := range []string{"unread", "chunked", "length"} {
		var wg sync.WaitGroup
		var pws []*io.PipeWriter
		runtime.GC()
		var before, during runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			pr, pw := io.Pipe()
			pws = append(pws, pw)
			r := httptest.NewRequest("POST", "/up", pr)
			r.ContentLength = memBodyLimit
			if mode == "chunked" {
				r.ContentLength = -1
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if mode == "unread" {
					// The same request blocked in a read of its own.
					var b [1]byte
					r.Body.Read(b[:])
					return
				}
				if release, err := spoolBody(r); err == nil {
					release()
				}
			}()
		}
		time.Sleep(200 * time.Millisecond) // all blocked in their first read
		runtime.GC()
		runtime.ReadMemStats(&during)
		held := int64(during.HeapAlloc) - int64(before.HeapAlloc)
		for _, pw := range pws {
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}
		wg.Wait()
		if mode == "unread" {
			base = held
			continue
		}
		if extra := held - base; extra > n*(16<<10) {
			t.Errorf("%s: %d requests that sent no body byte hold %d KiB more than the same requests unread, %d KiB each; want at most 16 KiB each",
				mode, n, extra>>10, extra/n>>10)
		}
	}
}

// pieceReader gives a body in reads of at most size bytes, as it arrives
// from a client over a while.
type pieceReader struct {
	r    io.Reader
	size int
}

func (p pieceReader) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.size)]) }

// TestBodyBufferGrowsWithWhatArrived: a body read into memory in pieces
// comes out whole, with its length, at every size around the buffer's
// steps, chunked or not; a short one is still the client's error.
func TestBodyBufferGrowsWithWhatArrived(t *testing.T) {
	for _, size := range []int{1, bodyread.StartSize - 1, bodyread.StartSize, bodyread.StartSize + 1, 3 * bodyread.StartSize, 5 * bodyread.StartSize, memBodyLimit - 1, memBodyLimit, memBodyLimit + 1} {
		for _, chunked := range []bool{false, true} {
			payload := strings.Repeat("0123456789abcdef", size/16+1)[:size]
			r := httptest.NewRequest("POST", "/up", pieceReader{strings.NewReader(payload), 1000})
			r.ContentLength = int64(size)
			if chunked {
				r.ContentLength = -1
			}
			release, err := spoolBody(r)
			if err != nil {
				t.Fatalf("%d bytes, chunked %v: %v", size, chunked, err)
			}
			got, _ := io.ReadAll(r.Body)
			if string(got) != payload || r.ContentLength != int64(size) {
				t.Errorf("%d bytes, chunked %v: read %d bytes (length %d), not the body", size, chunked, len(got), r.ContentLength)
			}
			release()
		}
	}
	r := httptest.NewRequest("POST", "/up", pieceReader{strings.NewReader(strings.Repeat("s", 5000)), 1000})
	r.ContentLength = 6000
	if release, err := spoolBody(r); err == nil {
		release()
		t.Fatal("a body 1000 bytes short of its length was read as a whole one")
	} else if got := statusOf(r, err); got != http.StatusBadRequest {
		t.Errorf("a body short of its length: %v, status %d, want 400", err, got)
	}
}

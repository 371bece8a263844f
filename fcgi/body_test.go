package fcgi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testnet"

	"github.com/sessiongate/sessiongate/internal/bodyread"
)

// MaxBody is an int64 and NewTransport accepts any non-negative value, so
// math.MaxInt64 is a natural "no limit". A chunked body must then pass whole,
// with its exact CONTENT_LENGTH, instead of panicking on maxBody+1.
func TestChunkedBodyMaxBodyMaxInt64(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	tr, _ := newTransport(t, Options{MaxBody: math.MaxInt64, TempDir: t.TempDir()}, srv.Addr())
	for _, size := range []int{1000, 200 << 10} {
		payload := bytes.Repeat([]byte("x"), size)
		req := newReq(nil, "POST", "/", chunkedReader{bytes.NewReader(payload)}, nil)
		req.ContentLength = -1
		resp, got, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if got != string(payload) || resp.Header.Get("X-Content-Length") != itoa(size) {
			t.Fatalf("%d bytes: PHP got %d bytes, CONTENT_LENGTH %q", size, len(got), resp.Header.Get("X-Content-Length"))
		}
	}
}

// A chunked body of exactly memBodyLimit bytes fits the memory buffer: it
// must not go through a temp file (it failed with 500 when TempDir was
// unusable, while one byte less passed). One byte more spills.
func TestChunkedBodyMemoryThreshold(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	missing := filepath.Join(t.TempDir(), "missing")
	tr, _ := newTransport(t, Options{MaxBody: 1 << 20, TempDir: missing}, srv.Addr())
	for _, tc := range []struct {
		size   int
		status int // 0: passes
	}{
		{memBodyLimit - 1, 0},
		{memBodyLimit, 0},
		{memBodyLimit + 1, 500}, // spills, and TempDir does not exist
	} {
		payload := bytes.Repeat([]byte("y"), tc.size)
		req := newReq(nil, "POST", "/", chunkedReader{bytes.NewReader(payload)}, nil)
		req.ContentLength = -1
		resp, got, err := roundTrip(t, tr, req)
		if tc.status != 0 {
			if StatusOf(err) != tc.status || !strings.Contains(err.Error(), missing) {
				t.Fatalf("%d bytes: err %v (status %d), want %d naming %s", tc.size, err, StatusOf(err), tc.status, missing)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d bytes: %v (status %d)", tc.size, err, StatusOf(err))
		}
		if got != string(payload) || resp.Header.Get("X-Content-Length") != itoa(tc.size) {
			t.Fatalf("%d bytes: PHP got %d bytes, CONTENT_LENGTH %q", tc.size, len(got), resp.Header.Get("X-Content-Length"))
		}
	}
}

// timeoutReader is a client body whose read deadline (SESSIONGATE_READ_TIMEOUT)
// ran out after a few bytes.
type timeoutReader struct{ n int }

func (r *timeoutReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

// A client too slow to send its body within the read timeout gets 408,
// like nginx's client_body_timeout, not a 400 that blames its encoding.
func TestClientBodyTimeoutIs408(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	tr, _ := newTransport(t, Options{MaxBody: 1 << 20, TempDir: t.TempDir()}, srv.Addr())
	for _, size := range []int64{1000, 200 << 10, -1} {
		req := newReq(nil, "POST", "/", &timeoutReader{n: 500}, nil)
		req.ContentLength = size
		if _, err := tr.RoundTrip(req); StatusOf(err) != http.StatusRequestTimeout {
			t.Errorf("Content-Length %d: %v (status %d), want 408", size, err, StatusOf(err))
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("php-fpm saw %d requests", n)
	}
}

// stoppableReader is a client body streamed to php-fpm as the server's
// streamedBody is (a BodyReadStopper), failing after n bytes with err, a
// while later (the transport waits for the answer meanwhile), as an HTTP/2
// body does: its read deadline running out, or END_STREAM before the
// declared Content-Length. Unlike HTTP/1, net/http then leaves the
// request's context alive.
type stoppableReader struct {
	n   int
	err error
}

func (r *stoppableReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		time.Sleep(20 * time.Millisecond)
		return 0, r.err
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func (r *stoppableReader) StopReading() {}
func (r *stoppableReader) Close() error { return nil }

// TestStreamedBodyFailureIsTheClients: a streamed body that fails while
// the context stays alive (HTTP/2) is the client's failure, 408 for a
// stalled body and 400 for a short one, as over HTTP/1. The write that
// failed closed the php-fpm connection before it reported why; the read of
// the answer, woken by that close, mostly came first, took the write for
// one cut on purpose (waitCut) and answered 502 with "use of closed network
// connection", blaming php-fpm for a client's stalled or short upload.
func TestStreamedBodyFailureIsTheClients(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	tr, _ := newTransport(t, Options{MaxBody: 1 << 20, TempDir: t.TempDir()}, srv.Addr())
	short := errors.New("request declared a Content-Length of 204800 but only wrote 500 bytes")
	for i := 0; i < 5; i++ {
		for err, want := range map[error]int{os.ErrDeadlineExceeded: http.StatusRequestTimeout, short: http.StatusBadRequest} {
			req := newReq(nil, "POST", "/", nil, nil)
			req.Body, req.ContentLength = &stoppableReader{n: 500, err: err}, 200<<10
			if _, got := tr.RoundTrip(req); StatusOf(got) != want {
				t.Fatalf("attempt %d, body failing with %v: %v (status %d), want %d", i, err, got, StatusOf(got), want)
			}
		}
	}
}

// Which body is read ahead and which streams: SESSIONGATE_REQUEST_BUFFERING
// off (the default) streams a known-length body over memBodyLimit to
// php-fpm as it arrives; on (BufferBodies) reads it into an unlinked temp
// file first, like nginx. Small bodies are always held in memory.
func TestBodyBufferingPolicy(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		size                int
		buffer              bool
		stream, file, inMem bool
	}{
		{1000, false, false, false, true},
		{memBodyLimit, false, false, false, true},
		{memBodyLimit + 1, false, true, false, false},
		{memBodyLimit + 1, true, false, true, false},
		{200 << 10, true, false, true, false},
	} {
		req, _ := http.NewRequest("POST", "/", bytes.NewReader(make([]byte, tc.size)))
		b, err := prepareBody(req.Context(), req, 1<<20, dir, tc.buffer)
		if err != nil {
			t.Fatal(err)
		}
		if (b.stream != nil) != tc.stream || (b.file != nil) != tc.file || (b.mem != nil) != tc.inMem || b.size != int64(tc.size) {
			t.Errorf("%d bytes, buffer %v: stream %v file %v mem %v size %d", tc.size, tc.buffer, b.stream != nil, b.file != nil, b.mem != nil, b.size)
		}
		if tc.file {
			got, _ := io.ReadAll(io.NewSectionReader(b.file, 0, b.size))
			if len(got) != tc.size {
				t.Errorf("temp file holds %d bytes, want %d", len(got), tc.size)
			}
		}
		b.release()
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("temp files left behind: %v", ents)
	}
}

// The same through a real net/http server, whose ReadTimeout is what runs
// out: net/http cancels the request's context when a body read fails, the
// deadline included, so the timeout must be recognised before the context.
// It was taken for a client that left: the client got "200 OK" with an
// empty body and the log said 499.
func TestSlowClientBodyThroughServerIs408(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	tr, _ := newTransport(t, Options{MaxBody: 1 << 20, TempDir: t.TempDir()}, srv.Addr())
	status := make(chan int, 1)
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := tr.RoundTrip(r.WithContext(WithScript(r.Context(), testScript)))
		if err == nil {
			res.Body.Close()
		}
		status <- StatusOf(err)
		if st := StatusOf(err); st != 0 && st != StatusClientClosedRequest {
			w.WriteHeader(st)
		}
	}))
	front.Config.ReadTimeout = 300 * time.Millisecond
	front.Start()
	t.Cleanup(front.Close)
	for name, head := range map[string]string{
		"in memory": "Content-Length: 1000\r\n\r\nabc",
		"streamed":  "Content-Length: 204800\r\n\r\nabc",
		"chunked":   "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
	} {
		got := testnet.Exchange(t, front.Listener.Addr().String(), "POST /upload.php HTTP/1.1\r\nHost: x\r\n"+head)
		if st := <-status; st != http.StatusRequestTimeout {
			t.Errorf("%s: a body stalled past the read timeout gave status %d, want 408", name, st)
		}
		if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
			t.Errorf("%s: the client got %q, want a 408", name, got)
		}
	}
}

// TestContentLengthZeroLikeNginx: a request that frames an empty body
// (Content-Length: 0, which browsers send with every POST that has no
// body, or an empty chunked body) gets CONTENT_LENGTH "0", as nginx's
// $content_length gives it; only a request with no body framing at all
// gets "". The gateway sent "" for all three, so Symfony's ServerBag
// (which drops an empty CONTENT_LENGTH) saw no Content-Length where
// behind nginx it saw "0".
func TestContentLengthZeroLikeNginx(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	tr, _ := newTransport(t, Options{}, srv.Addr())
	for raw, want := range map[string]string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n":                   "0",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n": "0",
		"POST / HTTP/1.1\r\nHost: x\r\n\r\n":                                        "",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n":                                         "",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc":                "3",
	} {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(WithScript(context.Background(), testScript))
		for _, read := range []bool{false, true} {
			r := req
			if read {
				// The server reads a body ahead first (ReadBody).
				r2, release, err := tr.ReadBody(req)
				if err != nil {
					t.Fatal(err)
				}
				defer release()
				r = r2
			}
			resp, _, err := roundTrip(t, tr, r)
			if err != nil {
				t.Fatal(err)
			}
			if cl := resp.Header.Get("X-Content-Length"); cl != want {
				t.Errorf("%q (read ahead: %v): CONTENT_LENGTH %q, want %q", raw, read, cl, want)
			}
			if !read {
				req, _ = http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
				req = req.WithContext(WithScript(context.Background(), testScript))
			}
		}
	}
}

// TestReadWholeBody: a body ReadBody leaves to stream (known length over
// 64 KiB, without BufferBodies) is read whole, spooled, by ReadWholeBody;
// its NewReader gives the body again from the start as often as asked,
// and php-fpm still gets it all.
func TestReadWholeBody(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	tr, _ := newTransport(t, Options{MaxBody: 1 << 20, TempDir: t.TempDir()}, srv.Addr())
	for _, size := range []int{10, 200 << 10} {
		body := strings.Repeat("0123456789", size/10)
		newReq := func() *http.Request {
			req := httptest.NewRequest("POST", "/", strings.NewReader(body))
			return req.WithContext(WithScript(req.Context(), testScript))
		}
		if req := newReq(); size > memBodyLimit {
			if r2, release, _ := tr.ReadBody(req); r2 != req {
				release()
				t.Fatalf("%d bytes: ReadBody read a body it leaves to stream", size)
			}
		}
		r2, release, err := tr.ReadWholeBody(newReq())
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		again, ok := r2.Body.(interface{ NewReader() io.Reader })
		if !ok {
			t.Fatalf("%d bytes: the body read whole has no NewReader", size)
		}
		for range 2 {
			if b, _ := io.ReadAll(again.NewReader()); string(b) != body {
				t.Errorf("%d bytes: NewReader gave %d bytes, want the body", size, len(b))
			}
		}
		_, got, err := roundTrip(t, tr, r2)
		if err != nil || got != body {
			t.Errorf("%d bytes: php-fpm got %d bytes (%v), want the body", size, len(got), err)
		}
	}
}

// TestStalledBodyHoldsLittleMemory: a request whose body has not sent a
// byte yet holds a small buffer, not the whole memBodyLimit. It held 64
// KiB from the first read, for a Content-Length up to 64 KiB and for any
// chunked body: HTTP/2 streams that send HEADERS and never DATA (250 a
// connection, a few KB) held 16 MiB a connection until the read timeout.
// nginx holds client_body_buffer_size (16 KiB) at most.
func TestStalledBodyHoldsLittleMemory(t *testing.T) {
	tr, err := NewTransport(Options{Backends: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	const n = 200
	var base int64
	for _, mode := range []string{"unread", "chunked", "length"} {
		var wg sync.WaitGroup
		var pws []*io.PipeWriter
		runtime.GC()
		runtime.GC() // sync.Pool's victim cache too
		var before, during runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			pr, pw := io.Pipe()
			pws = append(pws, pw)
			r := httptest.NewRequest("POST", "/index.php", pr)
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
				if _, release, err := tr.ReadBody(r); err == nil {
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
// comes out whole at every size around the buffer's steps, in a buffer at
// most twice its size (or the start size); chunked bodies too, up to the
// one byte over memBodyLimit that spills.
func TestBodyBufferGrowsWithWhatArrived(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{1, bodyread.StartSize - 1, bodyread.StartSize, bodyread.StartSize + 1, 3 * bodyread.StartSize, 5 * bodyread.StartSize, memBodyLimit - 1, memBodyLimit, memBodyLimit + 1} {
		for _, chunked := range []bool{false, true} {
			if size > memBodyLimit && !chunked {
				continue // streamed or spooled: TestBodyBufferingPolicy
			}
			payload := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
			req := httptest.NewRequest("POST", "/", pieceReader{bytes.NewReader(payload), 1000})
			req.ContentLength = int64(size)
			if chunked {
				req.ContentLength = -1
			}
			b, err := prepareBody(req.Context(), req, 1<<20, dir, true)
			if err != nil {
				t.Fatalf("%d bytes, chunked %v: %v", size, chunked, err)
			}
			var got []byte
			switch {
			case size > memBodyLimit:
				if b.file == nil {
					t.Errorf("%d bytes, chunked: held in memory, want spilled", size)
				} else {
					got, _ = io.ReadAll(io.NewSectionReader(b.file, 0, b.size))
				}
			case b.mem == nil:
				t.Errorf("%d bytes, chunked %v: not in memory", size, chunked)
			default:
				got = b.mem
				if held := len(*b.memBuf); held > max(bodyread.StartSize, 2*size) {
					t.Errorf("%d bytes, chunked %v: a buffer of %d bytes, want at most %d", size, chunked, held, max(bodyread.StartSize, 2*size))
				}
			}
			if !bytes.Equal(got, payload) || b.size != int64(size) {
				t.Errorf("%d bytes, chunked %v: read %d bytes (size %d), not the body", size, chunked, len(got), b.size)
			}
			b.release()
		}
	}
}

// TestShortClientBodyThroughServerIs400: a body that ends short of its
// framing (the client closed its side before the Content-Length, or
// inside a chunk) is the client's error, 400, like nginx's, read ahead or
// streamed. net/http cancels the request's context as the body read
// fails on the connection's end, and the failure was taken for a client
// that left: logged 499, and a client still reading (it only half-closed)
// got "200 OK" with an empty body.
func TestShortClientBodyThroughServerIs400(t *testing.T) {
	srv := newFakeServer(t, echoBody)
	for _, buffer := range []bool{false, true} {
		tr, _ := newTransport(t, Options{MaxBody: 1 << 20, TempDir: t.TempDir(), BufferBodies: buffer}, srv.Addr())
		status := make(chan int, 1)
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = r.WithContext(WithScript(r.Context(), testScript))
			r2, release, err := tr.ReadBody(r)
			if err == nil {
				defer release()
				var res *http.Response
				if res, err = tr.RoundTrip(r2); err == nil {
					res.Body.Close()
				}
			}
			status <- StatusOf(err)
			if st := StatusOf(err); st != 0 && st != StatusClientClosedRequest {
				w.WriteHeader(st)
			}
		}))
		t.Cleanup(front.Close)
		for name, req := range map[string]string{
			"in memory": "Content-Length: 1000\r\n\r\nabc",
			"large":     "Content-Length: 204800\r\n\r\n" + strings.Repeat("a", 100000),
			"chunked":   "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
			"in chunk":  "Transfer-Encoding: chunked\r\n\r\n10\r\nabc",
		} {
			c, err := net.Dial("tcp", front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "POST /upload.php HTTP/1.1\r\nHost: x\r\n"+req)
			c.(*net.TCPConn).CloseWrite()
			got, _ := io.ReadAll(c)
			c.Close()
			if st := <-status; st != http.StatusBadRequest {
				t.Errorf("buffering %v, %s: a body cut short gave status %d, want 400", buffer, name, st)
			}
			if !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
				t.Errorf("buffering %v, %s: the client got %.40q, want a 400", buffer, name, got)
			}
		}
	}
}

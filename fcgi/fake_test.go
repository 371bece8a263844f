package fcgi

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/fdlimit"
	"github.com/sessiongate/sessiongate/internal/testlog"
	"github.com/sessiongate/sessiongate/internal/testnet"
)

// fakeRequest is what the fake php-fpm received.
type fakeRequest struct {
	Params   map[string]string
	Order    []Param
	Stdin    []byte
	KeepConn bool
	N        int // 1-based index of this request on its connection
}

// fakeConn lets a handler write records back.
type fakeConn struct {
	nc net.Conn
	bw *bufio.Writer
	// Pad makes every record carry padding up to a multiple of 8 bytes.
	Pad bool
}

func (c *fakeConn) record(typ uint8, p []byte) {
	pad := 0
	if c.Pad {
		pad = (8 - len(p)%8) % 8
		if pad == 0 {
			pad = 8 // padding even when already aligned
		}
	}
	var h [8]byte
	putHeader(h[:], typ, len(p), pad)
	c.bw.Write(h[:])
	c.bw.Write(p)
	c.bw.Write(make([]byte, pad))
}

// Retire does what a php-fpm worker past pm.max_requests does with the
// request it will not run: it shuts down its sending side and reads (and
// drops) what comes until the other side closes.
func (c *fakeConn) Retire() {
	c.nc.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c.nc)
}

// Stdout writes p as STDOUT records of at most 65535 bytes.
func (c *fakeConn) Stdout(p string) {
	for len(p) > 0 {
		n := min(len(p), maxContent)
		c.record(typeStdout, []byte(p[:n]))
		p = p[n:]
	}
}
func (c *fakeConn) Stderr(p string) { c.record(typeStderr, []byte(p)) }
func (c *fakeConn) End() {
	c.record(typeStdout, nil)
	c.record(typeEndRequest, []byte{0, 0, 0, 0, statusRequestComplete, 0, 0, 0})
}
func (c *fakeConn) Flush() error { return c.bw.Flush() }
func (c *fakeConn) Raw(p []byte) { c.bw.Write(p) }

// fakeHandler answers one request. It returns false to close the
// connection afterwards (as php-fpm does when a worker is recycled).
type fakeHandler func(c *fakeConn, r *fakeRequest) (keep bool)

// fakeServer is an in-process FastCGI server that speaks enough of the
// protocol to test the client: it records what it received and counts
// connections.
type fakeServer struct {
	t       testing.TB
	ln      net.Listener
	handler fakeHandler

	mu       sync.Mutex
	requests []*fakeRequest

	accepted, open, maxOpen, served atomic.Int64
	// probes counts the FCGI_GET_VALUES records answered.
	probes atomic.Int64
	// frozen: connections are accepted (by the kernel and by serve) but
	// nothing is read or answered until it is cleared, as with a php-fpm
	// whose processes are stopped or whose master spins.
	frozen atomic.Bool
	// workers, when set, is php-fpm's pm.max_children: a connection is
	// served by one worker from accept to close, so connections beyond
	// it wait, unread, as in php-fpm's listen queue.
	workers chan struct{}
	stop    chan struct{} // closed by Close
	closed  atomic.Bool
	wg      sync.WaitGroup
	conns   sync.Map
}

func newFakeServer(t testing.TB, h fakeHandler) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFake(t, ln, h, 0)
}

// newSmallBufferFakeServer is newFakeServer on sockets with
// testnet.SmallBuffers, for tests that fill them.
func newSmallBufferFakeServer(t testing.TB, h fakeHandler) *fakeServer {
	t.Helper()
	return serveFake(t, testnet.SmallBufferListener(t), h, 0)
}

// newWorkersFakeServer is newFakeServer with n workers (fakeServer.workers).
func newWorkersFakeServer(t testing.TB, h fakeHandler, n int) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFake(t, ln, h, n)
}

// serveFake serves ln; workers 0 serves every connection at once.
func serveFake(t testing.TB, ln net.Listener, h fakeHandler, workers int) *fakeServer {
	s := &fakeServer{t: t, ln: ln, handler: h, stop: make(chan struct{})}
	if workers > 0 {
		s.workers = make(chan struct{}, workers)
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *fakeServer) Addr() string { return s.ln.Addr().String() }

func (s *fakeServer) Close() {
	if s.closed.Swap(true) {
		return
	}
	close(s.stop)
	s.ln.Close()
	s.conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	s.wg.Wait()
}

func (s *fakeServer) Requests() []*fakeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*fakeRequest(nil), s.requests...)
}

func (s *fakeServer) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			// A test that uses up the process's descriptors
			// (testfd.Exhaust) shares them with this server, which
			// php-fpm, a process of its own, would not: wait them out,
			// as a real server does, instead of stopping for good.
			if fdlimit.Reached(err) && !s.closed.Load() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return
		}
		s.accepted.Add(1)
		n := s.open.Add(1)
		for {
			m := s.maxOpen.Load()
			if n <= m || s.maxOpen.CompareAndSwap(m, n) {
				break
			}
		}
		s.conns.Store(nc, nil)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.open.Add(-1)
			defer s.conns.Delete(nc)
			defer nc.Close()
			s.serveConn(nc)
		}()
	}
}

func (s *fakeServer) serveConn(nc net.Conn) {
	if s.workers != nil {
		select {
		case s.workers <- struct{}{}:
			defer func() { <-s.workers }()
		case <-s.stop:
			return
		}
	}
	br := bufio.NewReader(nc)
	c := &fakeConn{nc: nc, bw: bufio.NewWriter(nc)}
	for n := 1; ; n++ {
		r, err := readFakeRequest(br)
		for s.frozen.Load() {
			if s.closed.Load() {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err == errGetValues {
			// What php-fpm answers, keeping the connection open.
			// Counted before it goes out: once it is out, the client
			// may return and its test read the count before this
			// goroutine runs again.
			s.probes.Add(1)
			c.record(typeGetValuesResult, []byte("\x0f\x01FCGI_MPXS_CONNS0"))
			if c.Flush() != nil {
				return
			}
			n--
			continue
		}
		if err != nil {
			return
		}
		r.N = n
		s.mu.Lock()
		s.requests = append(s.requests, r)
		s.mu.Unlock()
		keep := s.handler(c, r)
		s.served.Add(1) // before the answer goes out, as probes above
		if c.Flush() != nil {
			return
		}
		if !keep || !r.KeepConn {
			return
		}
	}
}

// readRecord reads one record (any id) and returns type and content.
func readRecord(br *bufio.Reader) (uint8, []byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0] != 1 {
		return 0, nil, fmt.Errorf("version %d", h[0])
	}
	if id := binary.BigEndian.Uint16(h[2:]); id != requestID && h[1] != typeGetValues {
		return 0, nil, fmt.Errorf("request id %d", id)
	}
	n := int(binary.BigEndian.Uint16(h[4:]))
	p := make([]byte, n+int(h[6]))
	if _, err := io.ReadFull(br, p); err != nil {
		return 0, nil, err
	}
	return h[1], p[:n], nil
}

// readThrough reads records up to the empty one of type typ that ends a
// stream (typeParams: a request's BEGIN_REQUEST and params; typeStdin:
// its body).
func readThrough(br *bufio.Reader, typ uint8) error {
	for {
		t, p, err := readRecord(br)
		if err != nil {
			return err
		}
		if t == typ && len(p) == 0 {
			return nil
		}
	}
}

// errGetValues: what came was an FCGI_GET_VALUES record, not a request.
var errGetValues = errors.New("FCGI_GET_VALUES")

func readFakeRequest(br *bufio.Reader) (*fakeRequest, error) {
	typ, p, err := readRecord(br)
	if err != nil {
		return nil, err
	}
	if typ == typeGetValues {
		if pairs, err := decodePairs(p); err != nil || len(pairs) != 1 || pairs[0].Name != "FCGI_MPXS_CONNS" || pairs[0].Value != "" {
			return nil, fmt.Errorf("FCGI_GET_VALUES %q: %v", p, err)
		}
		return nil, errGetValues
	}
	if typ != typeBeginRequest || len(p) != 8 || p[1] != roleResponder {
		return nil, fmt.Errorf("want BEGIN_REQUEST responder, got type %d", typ)
	}
	r := &fakeRequest{Params: map[string]string{}, KeepConn: p[2]&flagKeepConn != 0}
	for {
		typ, p, err := readRecord(br)
		if err != nil {
			return nil, err
		}
		if typ != typeParams {
			return nil, fmt.Errorf("want PARAMS, got %d", typ)
		}
		if len(p) == 0 {
			break
		}
		// Each record must hold whole pairs: php-fpm resets otherwise.
		pairs, err := decodePairs(p)
		if err != nil {
			return nil, err
		}
		for _, kv := range pairs {
			r.Params[kv.Name] = kv.Value
			r.Order = append(r.Order, kv)
		}
	}
	for {
		typ, p, err := readRecord(br)
		if err != nil {
			return nil, err
		}
		if typ != typeStdin {
			return nil, fmt.Errorf("want STDIN, got %d", typ)
		}
		if len(p) == 0 {
			break
		}
		r.Stdin = append(r.Stdin, p...)
	}
	return r, nil
}

// decodePairs decodes the content of one PARAMS record, refusing a pair
// that does not end inside it.
func decodePairs(p []byte) ([]Param, error) {
	var out []Param
	readLen := func() (int, error) {
		if len(p) == 0 {
			return 0, errors.New("truncated length")
		}
		if p[0] < 128 {
			n := int(p[0])
			p = p[1:]
			return n, nil
		}
		if len(p) < 4 {
			return 0, errors.New("truncated length")
		}
		n := int(binary.BigEndian.Uint32(p) & 0x7fffffff)
		p = p[4:]
		return n, nil
	}
	for len(p) > 0 {
		nl, err := readLen()
		if err != nil {
			return nil, err
		}
		vl, err := readLen()
		if err != nil {
			return nil, err
		}
		if nl+vl > len(p) {
			return nil, errors.New("pair straddles a record boundary")
		}
		out = append(out, Param{string(p[:nl]), string(p[nl : nl+vl])})
		p = p[nl+vl:]
	}
	return out, nil
}

// respond writes a full CGI response and END_REQUEST.
func respond(c *fakeConn, header, body string) {
	c.Stdout(header + "\r\n" + body)
	c.End()
}

func helloHandler(c *fakeConn, r *fakeRequest) bool {
	respond(c, "Content-Type: text/plain\r\n", "hello")
	return true
}

func newTransport(t testing.TB, o Options, addrs ...string) (*Transport, *testlog.Buffer) {
	t.Helper()
	lb := &testlog.Buffer{}
	o.Backends = addrs
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tr, err := NewTransport(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, lb
}

var testScript = &Script{
	DocumentRoot: "/srv/www",
	ScriptName:   "/index.php",
	RemoteAddr:   "192.0.2.7:54321",
}

// newReq builds a request carrying s (testScript when nil).
func newReq(ctx context.Context, method, target string, body io.Reader, s *Script) *http.Request {
	if s == nil {
		s = testScript
	}
	if ctx == nil {
		ctx = context.Background()
	}
	r := httptest.NewRequest(method, target, body)
	return r.WithContext(WithScript(ctx, s))
}

// roundTrip performs req and reads the whole body.
func roundTrip(t testing.TB, tr *Transport, req *http.Request) (*http.Response, string, error) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// getAtOnce sends n GETs for "/" at once and waits for their answers.
func getAtOnce(t testing.TB, tr *Transport, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package harness

import (
	"bufio"
	"net"
	"sync"
	"testing"
)

// fakeServer is what the scripted servers (FakeFCGI, FakeHTTP) share: a
// loopback listener, the connections it holds, and an accept loop that
// runs the server's own exchange on each connection.
type fakeServer struct {
	Addr string

	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// listenFake listens on a free loopback port for a scripted server; what
// names it in a failure. t.Cleanup closes the listener and every
// connection; serve starts accepting.
func listenFake(t testing.TB, what string) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: fake %s: %v", what, err)
	}
	f := &fakeServer{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	t.Cleanup(f.Close)
	return f
}

// serve runs serveConn on every connection accepted from now on; the
// connection is closed when serveConn returns.
func (f *fakeServer) serve(serveConn func(c net.Conn, br *bufio.Reader)) {
	f.wg.Add(1)
	go f.accept(serveConn)
}

// Close stops the listener and closes every connection.
func (f *fakeServer) Close() {
	f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeServer) accept(serveConn func(c net.Conn, br *bufio.Reader)) {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[c] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() {
				c.Close()
				f.mu.Lock()
				delete(f.conns, c)
				f.mu.Unlock()
			}()
			serveConn(c, bufio.NewReader(c))
		}()
	}
}

package wsgi

import (
	"io"
	"net/http"
	"sync"
	"testing"
)

// trailerSource ends its body the way net/http's does for a chunked
// response with trailers: the trailer values land in res.Trailer as the
// last read returns io.EOF. Like h1Body, Close waits for a Read in
// progress.
type trailerSource struct {
	res    *http.Response
	mu     sync.Mutex
	closed bool
}

func (s *trailerSource) Read([]byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errBodyClosed
	}
	s.res.Trailer.Set("X-Sessiongate-Op", "delete")
	s.res.Trailer.Set("X-Accel-Buffering", "no")
	s.res.Trailer.Set("X-Check", "yes")
	return 0, io.EOF
}

func (s *trailerSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// With ReadAhead, the last read of a Django body runs on the reader-ahead's
// goroutine while the handler may close the body (its client's write
// failed as the body ended): both cleaned res.Trailer, and a map written
// from two goroutines at once is a data race, which Go may end the process
// for. Run with -race.
func TestTrailerFilterReadAndCloseRaceFree(t *testing.T) {
	p := &Proxy{}
	for range 50 {
		res := &http.Response{Trailer: http.Header{}}
		f := &trailerFilter{ReadCloser: &trailerSource{res: res}, res: res, clean: p.cleanHeader}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); f.Read(make([]byte, 8)) }()
		go func() { defer wg.Done(); f.Close() }()
		wg.Wait()
		if res.Trailer.Get("X-Sessiongate-Op") != "" || res.Trailer.Get("X-Accel-Buffering") != "" {
			t.Fatalf("trailers after the filter: %v", res.Trailer)
		}
	}
}

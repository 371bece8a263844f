package wsgi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// failingWriter is a client connection whose writes fail while the
// request's context stays alive. net/http's own servers cancel the context
// when a write fails, which breaks the upstream read before the body is
// closed; this stands for any other way a handler closes the body early.
type failingWriter struct {
	h http.Header
}

func (w *failingWriter) Header() http.Header { return w.h }
func (w *failingWriter) WriteHeader(int)     {}
func (w *failingWriter) Write([]byte) (int, error) {
	return 0, errors.New("write tcp: i/o timeout")
}
func (w *failingWriter) Flush() {}

// A streamed Django response read ahead of its client (ReadAhead) and
// closed early while Django is quiet between two pieces (a server-sent
// event stream, a long poll) ends at once, as readahead.Body.Close expects
// of its source: the reader-ahead held the body's lock while it waited for
// Django's next bytes, so the close waited for them, or for the read
// timeout, with the handler and the connection to gunicorn.
func TestCutClientWriteDoesNotWaitForDjango(t *testing.T) {
	gone := make(chan struct{})
	e := newEnv(t, envOpts{
		backends: func(http.Handler) []string {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write([]byte("data: first\n\n"))
				w.(http.Flusher).Flush()
				select { // quiet until the gateway lets go (or the test ends)
				case <-r.Context().Done():
					close(gone)
				case <-time.After(30 * time.Second):
				}
			}))
			t.Cleanup(up.Close)
			return []string{up.URL}
		},
		opts: func(o *Options) {
			o.Sessions, o.Secrets = nil, nil
			o.ReadAhead, o.TempDir = true, t.TempDir()
			o.ReadTimeout = 30 * time.Second
		},
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.proxy.ServeHTTP(&failingWriter{h: http.Header{}}, httptest.NewRequest("GET", "/events", nil))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler still waits for Django 10 s after the client's write failed")
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection to Django is still open after the handler ended")
	}
}

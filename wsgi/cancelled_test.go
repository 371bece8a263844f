package wsgi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// A request whose context ended before it was sent never reaches Django,
// even with a kept-alive idle connection at hand: before, the write raced
// the deadline the cancel set, and gunicorn often ran the view for nobody
// (an HTTP/2 stream reset while its request waited, as in a rapid reset).
func TestCancelledRequestIsNotSent(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	tr := testTransport()
	defer tr.CloseIdleConnections()
	get := func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", backend.URL+"/", nil)
		res, err := tr.RoundTrip(req)
		if err == nil {
			io.ReadAll(res.Body)
			res.Body.Close()
		}
		return err
	}
	for i := range 20 {
		if err := get(context.Background()); err != nil {
			t.Fatal(err)
		}
		// An idle connection is now at hand.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := get(ctx); err == nil {
			t.Fatalf("request %d, cancelled: no error", i)
		}
	}
	if got := hits.Load(); got != 20 {
		t.Errorf("Django got %d cancelled requests of 20", got-20)
	}
}

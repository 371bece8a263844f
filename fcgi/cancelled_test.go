package fcgi

import (
	"context"
	"testing"
)

// A request whose context ended before it was sent never reaches
// php-fpm, even when an idle connection is at hand: before, the write
// raced the close the cancel caused, and php-fpm often ran the script.
func TestCancelledRequestIsNotSent(t *testing.T) {
	srv := newFakeServer(t, helloHandler)
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: 1}, srv.Addr())
	if _, _, err := roundTrip(t, tr, newReq(nil, "GET", "/", nil, nil)); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := tr.RoundTrip(newReq(ctx, "GET", "/", nil, nil)); StatusOf(err) != StatusClientClosedRequest {
			t.Fatalf("request %d, cancelled: %v (status %d), want 499", i, err, StatusOf(err))
		}
	}
	if got := len(srv.Requests()); got != 1 {
		t.Errorf("php-fpm got %d cancelled requests", got-1)
	}
}

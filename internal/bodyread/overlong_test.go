package bodyread

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/internal/testh2"
)

// The text Overlong matches is what a real net/http HTTP/2 server gives a
// handler reading a body longer than its content-length, and the error of
// a body that ends short is not taken for it.
func TestOverlongMatchesNetHTTP(t *testing.T) {
	errs := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		errs <- err
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	send := func(body string) error {
		t.Helper()
		testh2.Do(t, addr, []testh2.Field{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/"},
			{"content-length", "3"}}, []byte(body))
		return <-errs
	}
	if err := send("abcdef"); !Overlong(err) {
		t.Errorf("net/http's error for a body longer than its content-length is %v, which Overlong does not match: update overlongText", err)
	}
	if err := send("ab"); err == nil || Overlong(err) {
		t.Errorf("a body ending short: %v, taken for an overlong one: %v", err, Overlong(err))
	}
	if Overlong(nil) || Overlong(io.ErrUnexpectedEOF) {
		t.Error("Overlong matches nil or io.ErrUnexpectedEOF")
	}
}

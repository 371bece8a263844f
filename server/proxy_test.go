package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPHPNoBodyStatus: PHP output after a 204 or 304 status (whitespace
// after a closing ?>, a template rendered anyway) is dropped, as nginx
// does, instead of aborting the response the client should get.
func TestPHPNoBodyStatus(t *testing.T) {
	for _, code := range []int{http.StatusNoContent, http.StatusNotModified} {
		e := newEnv(t, nil)
		e.php.respond = func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: code, Header: http.Header{"Etag": {`"x"`}}, Body: io.NopCloser(strings.NewReader("\n\n")), ContentLength: 2, Request: r}, nil
		}
		srv := httptest.NewServer(e.srv.Handler())
		res, err := http.Get(srv.URL + "/hello.php")
		if err != nil {
			t.Errorf("%d with a PHP body: %v", code, err)
		} else {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != code || res.Header.Get("Etag") != `"x"` {
				t.Errorf("%d with a PHP body: got %d %v", code, res.StatusCode, res.Header)
			}
		}
		srv.Close()
	}
}

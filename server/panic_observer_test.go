package server

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A handler that panics before answering (a bug) leaves the client with a
// closed connection and no response: the metrics and the access log must
// not count it as a 200, which is what net/http would have sent for a
// handler that wrote nothing, but as the server error it is.
func TestObserverOnPanicBeforeAnyResponse(t *testing.T) {
	var o observations
	e := newEnv(t, nil, WithObserver(o.observe),
		WithMount("django", []string{"/admin/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var m map[string]int
			m["boom"]++ // a nil map: a runtime error
		})))
	srv := httptest.NewUnstartedServer(e.srv.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // net/http's panic trace
	srv.Start()
	defer srv.Close()
	if res, err := http.Get(srv.URL + "/admin/x"); err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		t.Logf("client got %s", res.Status)
	}
	var got []observed
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got = o.all(); len(got) > 0 {
			break
		}
	}
	if len(got) != 1 || got[0].upstream != "django" || got[0].status != http.StatusInternalServerError {
		t.Errorf("observations %+v, want one django 500", got)
	}
}

package sessionbridge

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/fcgi"
)

// A PHP response aborted mid-body (the client gone, a worker killed while
// it streamed: the proxy panics with http.ErrAbortHandler) still ends the
// bridge: a session message PHP was sending when it broke off is reported
// as a change not saved, as for a response that ends. The bridge's end ran
// only after the handler returned, so the operator was told nothing of the
// lost change.
func TestAbortedPHPResponseReportsCutMessage(t *testing.T) {
	m := newTestManager(t, LockStrict, nil)
	logs := captureLog(m)
	id := createSession(t, m, `{"k":"A"}`)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := fcgi.ScriptFrom(r.Context())
		nonce := ""
		for _, p := range s.Extra {
			if p.Name == "SESSIONGATE_NONCE" {
				nonce = p.Value
			}
		}
		w.Write([]byte("first part of the page"))
		// PHP's end-of-request write after its output, cut after its
		// first chunk.
		s.OnStderr([]byte(fmt.Sprintf("PHP message: @sg1:%s:0:0:QUJDREVG#", nonce)))
		panic(http.ErrAbortHandler)
	})
	h := m.PHPHandler(next, PHPOptions{})
	r := requestWithCookie(t, m, id)
	r = r.WithContext(fcgi.WithScript(r.Context(), &fcgi.Script{ScriptName: "/t.php"}))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("panic %v, want http.ErrAbortHandler passed on", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	if !strings.Contains(logs.String(), "PHP session message cut short; change not saved") {
		t.Errorf("the change cut short with the response is not reported:\n%s", logs.String())
	}
}

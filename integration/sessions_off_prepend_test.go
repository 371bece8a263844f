package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// SESSIONGATE_SESSIONS=off with the prepend left in the pool
// (php_admin_value[auto_prepend_file], README's way to install it): the
// gateway sends no SESSIONGATE_NONCE, so the prepend's handler stores
// nothing. Its line said the request "did not come through the gateway
// (php CLI, php -S, or a direct FastCGI request)", sending the operator
// looking for a bypass that does not exist; it now names the setting and
// what to do.
func TestSessionsOffWithThePrependInThePoolSaysWhy(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{prependInPool: true, env: []string{"SESSIONGATE_SESSIONS=off"}})
	resp, err := http.Get(s.gws[0].URL + "/counter.php")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !poll(5*time.Second, func() bool {
		return strings.Contains(s.gws[0].Logs.String(), "or a gateway with SESSIONGATE_SESSIONS=off, which leaves PHP its own sessions only once the pool no longer loads this file")
	}) {
		t.Errorf("the prepend's line does not name SESSIONGATE_SESSIONS=off:\n%s", s.gws[0].Logs.String())
	}
}

package integration

import (
	"strings"
	"testing"
)

// TestDjangoRequestWithoutHost: an HTTP/1.0 request without Host (a load
// balancer's health check) reaches the real Django with the address the
// client connected to, which the example's ALLOWED_HOSTS (127.0.0.1)
// accepts, as it does for PHP. The placeholder host the gateway pools
// Django backends under made Django answer 400 (DisallowedHost).
func TestDjangoRequestWithoutHost(t *testing.T) {
	t.Parallel()
	s := startDjangoStack(t)
	addr := strings.TrimPrefix(s.gws[0].URL, "http://")
	resp, _ := raw(t, addr, "GET /accounts/whoami/ HTTP/1.0\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.0 200 ") || !strings.Contains(resp, `"user": null`) {
		t.Errorf("HTTP/1.0 without Host to Django: %.300q", resp)
	}
}

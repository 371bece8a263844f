package integration

// Response headers the gateway adds in place of nginx's add_header and
// expires (SESSIONGATE_HSTS, SESSIONGATE_STATIC_MAX_AGE), against the real
// php-fpm and gunicorn.

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

const testHSTS = "max-age=63072000; includeSubDomains"

// getHeaders sends GET target with hdr (name, value pairs) and returns the
// response headers.
func getHeaders(t *testing.T, base, target string, hdr ...string) http.Header {
	t.Helper()
	req, err := http.NewRequest("GET", base+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := rawClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.Header
}

func TestHSTSAndStaticMaxAgePHP(t *testing.T) {
	t.Parallel()
	g := startGW(t, func(c *config.Config) {
		c.HSTS = testHSTS
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("127.0.0.1/32")}
		c.StaticMaxAge = 24 * time.Hour
	})
	writeTree(t, g.Root, map[string]string{"own-hsts.php": `<?php header('Strict-Transport-Security: max-age=5'); echo 'x';`})
	viaTLSProxy := []string{"X-Forwarded-Proto", "https"}
	for _, target := range []string{"/info.php", "/own-hsts.php", "/style.css", "/no-such-dir/.env"} {
		h := getHeaders(t, g.URL, target, viaTLSProxy...)
		if got := h.Values("Strict-Transport-Security"); strings.Join(got, "|") != testHSTS {
			t.Errorf("%s over HTTPS: Strict-Transport-Security %q", target, got)
		}
	}
	if got := getHeaders(t, g.URL, "/info.php").Values("Strict-Transport-Security"); len(got) != 0 {
		t.Errorf("plain HTTP: Strict-Transport-Security %q", got)
	}
	if got := getHeaders(t, g.URL, "/own-hsts.php").Get("Strict-Transport-Security"); got != "max-age=5" {
		t.Errorf("plain HTTP, the app's own: %q", got)
	}
	if got := getHeaders(t, g.URL, "/style.css").Get("Cache-Control"); got != "public, max-age=86400" {
		t.Errorf("style.css Cache-Control %q", got)
	}
	if got := getHeaders(t, g.URL, "/docs/").Get("Cache-Control"); got != "no-cache" {
		t.Errorf("/docs/ (index.html) Cache-Control %q", got)
	}
	if got := getHeaders(t, g.URL, "/info.php").Get("Cache-Control"); strings.Contains(got, "max-age=86400") {
		t.Errorf("/info.php Cache-Control %q", got)
	}
}

func TestHSTSDjango(t *testing.T) {
	t.Parallel()
	gw := startBodyDjango(t, "SESSIONGATE_HSTS="+testHSTS, "SESSIONGATE_TRUSTED_PROXIES=127.0.0.1")
	h := getHeaders(t, gw.URL, "/dj/hsts/", "X-Forwarded-Proto", "https", "Accept-Encoding", "gzip")
	if got := h.Values("Strict-Transport-Security"); strings.Join(got, "|") != testHSTS {
		t.Errorf("Django page over HTTPS: Strict-Transport-Security %q", got)
	}
	if got := getHeaders(t, gw.URL, "/dj/hsts/").Values("Strict-Transport-Security"); strings.Join(got, "|") != "max-age=5" {
		t.Errorf("Django page over HTTP: Strict-Transport-Security %q", got)
	}
}

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestServerNames: SESSIONGATE_SERVER_NAMES keeps forged Host headers away
// from the apps, through the real php-fpm and gunicorn. A password-reset
// page that builds its link from the Host (as many PHP apps do) only ever
// sees a listed name; PHP's SERVER_NAME is that name, as nginx sends its
// server_name; Django is not reached for another Host either.
func TestServerNames(t *testing.T) {
	t.Parallel()
	// The test client counts as a trusted proxy: the hosts it forwards
	// must be listed too.
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_SERVER_NAMES=shop.example.com,*.shop.example.com,127.0.0.1", "SESSIONGATE_TRUSTED_PROXIES=127.0.0.1")
	gw := s.gws[0]
	src := `<?php echo 'https://' . $_SERVER['HTTP_HOST'] . '/reset?token=42 ' . $_SERVER['SERVER_NAME'];`
	if err := os.WriteFile(filepath.Join(s.fpm.DocRoot, "reset.php"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, body string
	}{
		{"Shop.Example.com", "https://Shop.Example.com/reset?token=42 shop.example.com"},
		{"de.shop.example.com:8443", "https://de.shop.example.com:8443/reset?token=42 de.shop.example.com"},
		{"", ""}, // the test client's own Host, 127.0.0.1:port
	} {
		var hdr []string
		if tc.host != "" {
			hdr = []string{"Host", tc.host}
		}
		res, body, _ := gw.get(t, "/reset.php", "", hdr...)
		if res.StatusCode != 200 || (tc.body != "" && body != tc.body) || (tc.body == "" && !strings.HasSuffix(body, " 127.0.0.1")) {
			t.Errorf("Host %q: %d %q, want 200 %q", tc.host, res.StatusCode, body, tc.body)
		}
	}
	for _, host := range []string{"evil.example", "shop.example.com.evil.example", "example.com"} {
		for _, target := range []string{"/reset.php", "/accounts/api/whoami/", "/get.php"} {
			res, body, _ := gw.get(t, target, "", "Host", host)
			if res.StatusCode != 421 || strings.Contains(body, "evil") || strings.Contains(body, "{") {
				t.Errorf("Host %q %s: %d %q, want 421 from the gateway", host, target, res.StatusCode, body)
			}
		}
	}
	// Laravel's and Symfony's trusted-proxy settings build links from
	// X-Forwarded-Host: a forged one is refused like a forged Host.
	for _, hdr := range [][]string{{"X-Forwarded-Host", "evil.example"}, {"Forwarded", "host=evil.example;proto=https"}} {
		res, body, _ := gw.get(t, "/reset.php", "", append([]string{"Host", "shop.example.com"}, hdr...)...)
		if res.StatusCode != 421 || strings.Contains(body, "evil") {
			t.Errorf("%v through the trusted proxy: %d %q, want 421", hdr, res.StatusCode, body)
		}
	}
	if res, body, _ := gw.get(t, "/reset.php", "", "Host", "shop.example.com", "X-Forwarded-Host", "de.shop.example.com"); res.StatusCode != 200 {
		t.Errorf("a listed X-Forwarded-Host: %d %q", res.StatusCode, body)
	}
	// The listed names reach Django too (ALLOWED_HOSTS has 127.0.0.1).
	if res, body, _ := gw.get(t, "/accounts/api/whoami/", ""); res.StatusCode != 200 {
		t.Errorf("Django with a listed Host: %d %q", res.StatusCode, body)
	}
}

// TestCanonicalName: with SESSIONGATE_CANONICAL_NAME, www.example.com
// moves to example.com (the same path, query and port) before PHP or Django
// runs, through the real php-fpm and gunicorn, and a browser following the
// redirect lands on the page PHP renders for the canonical name.
func TestCanonicalName(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_SERVER_NAMES=www.shop.example.com,shop.example.com,127.0.0.1", "SESSIONGATE_CANONICAL_NAME=shop.example.com")
	gw := s.gws[0]
	ran := filepath.Join(harness.PHPTempDir(t), "ran")
	src := `<?php file_put_contents('` + ran + `', $_SERVER['REQUEST_URI'] . "\n", FILE_APPEND); echo $_SERVER['HTTP_HOST'] . ' ' . $_SERVER['SERVER_NAME'] . ' ' . $_SERVER['REQUEST_URI'];`
	if err := os.WriteFile(filepath.Join(s.fpm.DocRoot, "product.php"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(gw.URL, "http://"), ":")
	res, _, _ := gw.get(t, "/product.php?id=7&ref=a%2Fb", "", "Host", "www.shop.example.com:"+port)
	want := "http://shop.example.com:" + port + "/product.php?id=7&ref=a%2Fb"
	if res.StatusCode != 301 || res.Header.Get("Location") != want {
		t.Errorf("www: %d %q, want 301 %q", res.StatusCode, res.Header.Get("Location"), want)
	}
	if res, _, _ := gw.get(t, "/accounts/api/whoami/", "", "Host", "www.shop.example.com"); res.StatusCode != 301 {
		t.Errorf("www, a Django path: %d, want 301", res.StatusCode)
	}
	if b, _ := os.ReadFile(ran); len(b) != 0 {
		t.Errorf("PHP ran for a redirected request: %q", b)
	}
	// Where the redirect leads (the client sends the canonical Host).
	res, body, _ := gw.get(t, "/product.php?id=7&ref=a%2Fb", "", "Host", "shop.example.com:"+port)
	if res.StatusCode != 200 || body != "shop.example.com:"+port+" shop.example.com /product.php?id=7&ref=a%2Fb" {
		t.Errorf("canonical: %d %q", res.StatusCode, body)
	}
	// An address (a load balancer's health check) is served as it is.
	if res, body, _ := gw.get(t, "/product.php", ""); res.StatusCode != 200 || !strings.HasPrefix(body, "127.0.0.1:") {
		t.Errorf("by address: %d %q", res.StatusCode, body)
	}
}

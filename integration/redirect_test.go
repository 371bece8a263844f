package integration

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testtls"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// TestRedirectListener runs the real binary with TLS and
// SESSIONGATE_HTTP_REDIRECT_LISTEN in front of a real php-fpm, as a site
// that dropped nginx's port-80 server block would: plain HTTP answers with
// a redirect to the TLS listener, serves the ACME file certbot --webroot
// wrote, and following the redirect reaches PHP over TLS.
func TestRedirectListener(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	bin := buildGateway(t)
	root := gwSite(t)
	const token = "Xq9_tok-EN1"
	if err := os.WriteFile(filepath.Join(root, ".well-known", "acme-challenge", token), []byte(token+".thumbprint"), 0o644); err != nil {
		t.Fatal(err)
	}
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2})
	cert, key := testtls.Pair(t)
	plain := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	p := startBinary(t, bin, []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_TLS_CERT=" + cert,
		"SESSIONGATE_TLS_KEY=" + key,
		"SESSIONGATE_HTTP_REDIRECT_LISTEN=" + plain,
	})
	tlsAddr := strings.TrimPrefix(p.URL, "http://")
	tlsPort := tlsAddr[strings.LastIndexByte(tlsAddr, ':'):] // not 443: kept in the Location

	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(transport.CloseIdleConnections)
	noFollow := &http.Client{Timeout: 10 * time.Second, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	follow := &http.Client{Timeout: 10 * time.Second, Transport: transport}

	do := func(c *http.Client, method, url, body string) (*http.Response, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, url, rd)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}

	t.Run("GET301", func(t *testing.T) {
		res, _ := do(noFollow, "GET", "http://"+plain+"/info.php?a=1&b=%2F", "")
		want := "https://127.0.0.1" + tlsPort + "/info.php?a=1&b=%2F"
		if res.StatusCode != 301 || res.Header.Get("Location") != want {
			t.Fatalf("%d Location %q, want 301 %q", res.StatusCode, res.Header.Get("Location"), want)
		}
	})

	t.Run("POST308", func(t *testing.T) {
		res, _ := do(noFollow, "POST", "http://"+plain+"/echo.php", "0123456789")
		want := "https://127.0.0.1" + tlsPort + "/echo.php"
		if res.StatusCode != 308 || res.Header.Get("Location") != want {
			t.Fatalf("%d Location %q, want 308 %q", res.StatusCode, res.Header.Get("Location"), want)
		}
	})

	t.Run("ACMEChallenge", func(t *testing.T) {
		res, body := do(noFollow, "GET", "http://"+plain+"/.well-known/acme-challenge/"+token, "")
		if res.StatusCode != 200 || body != token+".thumbprint" {
			t.Fatalf("%d %q", res.StatusCode, body)
		}
		// Only challenge files: the site's other files are redirected.
		if res, body := do(noFollow, "GET", "http://"+plain+"/style.css", ""); res.StatusCode != 301 || strings.Contains(body, "color") {
			t.Errorf("/style.css over plain HTTP: %d %q", res.StatusCode, body)
		}
		if res, _ := do(noFollow, "GET", "http://"+plain+"/.well-known/acme-challenge/missing", ""); res.StatusCode != 404 {
			t.Errorf("missing token: %d", res.StatusCode)
		}
	})

	t.Run("FollowToPHPOverTLS", func(t *testing.T) {
		res, body := do(follow, "GET", "http://"+plain+"/info.php?x=y", "")
		if res.StatusCode != 200 || res.Request.URL.Scheme != "https" {
			t.Fatalf("%d at %s: %q", res.StatusCode, res.Request.URL, body)
		}
		d := phpDump(t, "/info.php", body)
		if d["HTTPS"] != "on" || d["REQUEST_URI"] != "/info.php?x=y" || !strings.HasSuffix(d["_file"], "/info.php") {
			t.Errorf("PHP over TLS after the redirect: HTTPS=%q REQUEST_URI=%q _file=%q", d["HTTPS"], d["REQUEST_URI"], d["_file"])
		}
		// A 308 has the client send its POST again, body included.
		res, body = do(follow, "POST", "http://"+plain+"/echo.php", "0123456789")
		if res.StatusCode != 200 || body != "len=10" || res.Request.URL.Scheme != "https" {
			t.Errorf("POST after 308: %d at %s: %q", res.StatusCode, res.Request.URL, body)
		}
	})

	// net/http's own refusal on the port-80 listener (here a head over its
	// 32 KiB bound) is counted and logged under upstream "redirect", as
	// every other answer of that listener, not mixed with the TLS site's.
	t.Run("RefusalUnderRedirect", func(t *testing.T) {
		req, err := http.NewRequest("GET", "http://"+plain+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Big", strings.Repeat("a", 40<<10))
		res, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 431 {
			t.Fatalf("40 KiB header on the redirect listener: %d, want 431", res.StatusCode)
		}
		m := metricstest.Scrape(t, p.Admin+"/metrics")
		if got := m[`sessiongate_http_requests_total{code="431",upstream="redirect"}`]; got != 1 {
			t.Errorf(`431 under upstream "redirect": %v, want 1 (under "gateway": %v)`, got, m[`sessiongate_http_requests_total{code="431",upstream="gateway"}`])
		}
	})

	t.Run("AccessLogAndShutdown", func(t *testing.T) {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if c := p.wait(t, 10*time.Second); c != 0 {
			t.Errorf("exit %d after SIGTERM", c)
		}
		redirects, acme, refused := 0, 0, 0
		started := false
		sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			if m["msg"] == "sessiongate started" && m["http_redirect"] == plain {
				started = true
			}
			if m["msg"] != "request" || m["upstream"] != "redirect" {
				continue
			}
			switch {
			case m["path"] == "/.well-known/acme-challenge/"+token && m["status"] == float64(200):
				acme++
			case m["status"] == float64(301) || m["status"] == float64(308):
				redirects++
			case m["status"] == float64(431):
				refused++
			}
		}
		if !started || acme != 1 || redirects != 5 || refused != 1 {
			t.Errorf("start line with http_redirect %v, ACME lines %d (want 1), redirect lines %d (want 5), 431 lines %d (want 1):\n%s", started, acme, redirects, refused, p.stderr.String())
		}
	})
}

// A redirect listener that cannot listen stops the gateway at start with
// exit status 1 and the address in the message, as the admin listener
// does. The port taken is the mistake of a first start beside a web server
// still running (nginx, Apache on 80): the message says what to do.
func TestRedirectListenerListenFailure(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	bin := buildGateway(t)
	root := gwSite(t)
	cert, key := testtls.Pair(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{
		fmt.Sprintf("SESSIONGATE_LISTEN=127.0.0.1:%d", harness.FreePort(t)),
		"SESSIONGATE_PHP_FPM=127.0.0.1:1",
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_TLS_CERT=" + cert,
		"SESSIONGATE_TLS_KEY=" + key,
		"SESSIONGATE_HTTP_REDIRECT_LISTEN=" + taken.Addr().String(),
		"PATH=" + os.Getenv("PATH"),
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	failOnRace(t, string(out))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), "cannot listen") || !strings.Contains(string(out), taken.Addr().String()) ||
		!strings.Contains(string(out), "SESSIONGATE_HTTP_REDIRECT_LISTEN") {
		t.Errorf("the message does not name the address and the variable:\n%s", out)
	}
	if !strings.Contains(string(out), "another process holds the port") || !strings.Contains(string(out), "ss -ltnp") {
		t.Errorf("the message does not say what to do about a port in use:\n%s", out)
	}
}

// TestRedirectListenerToPickedPort: with SESSIONGATE_LISTEN on port 0 the
// kernel picks the TLS port at start, and the redirect listener must send
// visitors there: it sent them to https://host:0/, a URL no browser can
// open.
func TestRedirectListenerToPickedPort(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	root := gwSite(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 1})
	cert, key := testtls.Pair(t)
	plain := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	p := startBinary(t, buildGateway(t), []string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_TLS_CERT=" + cert,
		"SESSIONGATE_TLS_KEY=" + key,
		"SESSIONGATE_LISTEN=127.0.0.1:0", // after startBinary's own: this one counts
		"SESSIONGATE_HTTP_REDIRECT_LISTEN=" + plain,
	})
	var started struct{ Listen string }
	if err := json.Unmarshal([]byte(waitForLog(t, p.stderr, `"sessiongate started"`)), &started); err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(started.Listen)
	if err != nil || port == "0" {
		t.Fatalf("started on %q", started.Listen)
	}
	c := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get("http://" + plain + "/info.php?a=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := "https://127.0.0.1:" + port + "/info.php?a=1"; res.StatusCode != 301 || res.Header.Get("Location") != want {
		t.Fatalf("%d Location %q, want 301 %q", res.StatusCode, res.Header.Get("Location"), want)
	}
}

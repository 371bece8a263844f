package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestAccelRedirect: protected downloads the way PHP and Django apps send
// them to nginx, through the real php-fpm, gunicorn and Redis. WooCommerce
// (its X-Accel-Redirect method, chosen because SERVER_SOFTWARE names
// nginx) and django-sendfile2 check the shared session, count the download
// in it and answer with an empty body and X-Accel-Redirect; the gateway
// sends the file from an internal location clients cannot open themselves,
// with the app's headers, ranges, and the session already saved and
// unlocked while the file goes out.
func TestAccelRedirect(t *testing.T) {
	t.Parallel()
	private := t.TempDir()
	s, _ := startDjangoAPIStack(t, "SESSIONGATE_INTERNAL_PATHS=/wp-content/uploads/woocommerce_uploads/,/protected/="+private)
	gw := s.gws[0]
	uploads := filepath.Join(s.fpm.DocRoot, "wp-content/uploads/woocommerce_uploads")
	if err := os.MkdirAll(uploads, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for name, size := range map[string]int{"song.mp3": 3 << 20, "my album.zip": 1000, "big.bin": 32 << 20} {
		b := make([]byte, size)
		rand.Read(b)
		files[name] = b
		if err := os.WriteFile(filepath.Join(uploads, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	invoice := []byte("%PDF-1.7 invoice 42")
	if err := os.WriteFile(filepath.Join(private, "invoice 42.pdf"), invoice, 0o644); err != nil {
		t.Fatal(err)
	}
	hidden := func(t *testing.T, res *http.Response) {
		t.Helper()
		for name, v := range res.Header {
			if strings.HasPrefix(name, "X-Accel-") {
				t.Errorf("%s: %q reached the client", name, v)
			}
		}
	}

	// Without a session both apps refuse, and the files cannot be fetched
	// directly.
	if res, body, _ := gw.get(t, "/accel_download.php?file=song.mp3", ""); res.StatusCode != 403 || body != "log in first" {
		t.Fatalf("PHP without a session: %d %q", res.StatusCode, body)
	}
	if res, body, _ := gw.get(t, "/accounts/api/protected/invoice%2042.pdf", ""); res.StatusCode != 403 || body != "log in first" {
		t.Fatalf("Django without a session: %d %q", res.StatusCode, body)
	}
	for _, target := range []string{"/wp-content/uploads/woocommerce_uploads/song.mp3", "/wp-content/uploads//woocommerce_uploads/song.mp3", "/protected/invoice%2042.pdf"} {
		if res, body, _ := gw.get(t, target, ""); res.StatusCode != 404 || len(body) > 100 {
			t.Errorf("%s: %d, %d bytes; want 404", target, res.StatusCode, len(body))
		}
	}

	ck := s.newSession(t)
	for _, name := range []string{"song.mp3", "my album.zip"} {
		res, body, _ := gw.get(t, "/accel_download.php?file="+strings.ReplaceAll(name, " ", "%20"), ck)
		hidden(t, res)
		if res.StatusCode != 200 || !bytes.Equal([]byte(body), files[name]) {
			t.Fatalf("PHP %s: %d, %d bytes (want %d)", name, res.StatusCode, len(body), len(files[name]))
		}
		for hdr, want := range map[string]string{
			"Content-Type":        "application/octet-stream",
			"Content-Disposition": `attachment; filename="` + name + `";`,
			"Content-Length":      strconv.Itoa(len(files[name])),
			"X-Robots-Tag":        "noindex, nofollow",
			"Accept-Ranges":       "bytes",
		} {
			if got := res.Header.Get(hdr); got != want {
				t.Errorf("PHP %s: %s %q, want %q", name, hdr, got, want)
			}
		}
	}
	res, body, _ := gw.get(t, "/accel_download.php?file=song.mp3", ck, "Range", "bytes=100-199")
	if res.StatusCode != 206 || body != string(files["song.mp3"][100:200]) {
		t.Errorf("PHP range: %d, %d bytes", res.StatusCode, len(body))
	}
	res, body, _ = gw.get(t, "/accounts/api/protected/invoice%2042.pdf?size="+strconv.Itoa(len(invoice)), ck)
	hidden(t, res)
	if res.StatusCode != 200 || body != string(invoice) || res.Header.Get("Content-Type") != "application/pdf" ||
		res.Header.Get("Content-Disposition") != `inline; filename="invoice 42.pdf"` {
		t.Fatalf("Django: %d %q %v", res.StatusCode, body, res.Header)
	}
	// Every download counted in the one session, by PHP and Django.
	if d := gw.dump(t, ck); !strings.Contains(string(d.Data), `"downloads":4`) {
		t.Fatalf("session after 3 PHP and 1 Django downloads: %s", d.Data)
	}
	if !strings.Contains(gw.Logs.String(), `"internal_redirect":"/wp-content/uploads/woocommerce_uploads/song.mp3"`) ||
		!strings.Contains(gw.Logs.String(), `"internal_redirect":"/protected/invoice%2042.pdf"`) {
		t.Errorf("the access log does not name the internal redirects:\n%s", gw.Logs.String())
	}

	// A download the client reads slowly holds no session lock: the same
	// user's next page answers meanwhile, and sees the count.
	req, _ := http.NewRequest("GET", gw.URL+"/accel_download.php?file=big.bin", nil)
	req.Header.Set("Cookie", "sessionid="+ck)
	slow, err := sessionClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	first := make([]byte, 10)
	if _, err := io.ReadFull(slow.Body, first); err != nil || slow.StatusCode != 200 {
		t.Fatalf("big download: %d %v", slow.StatusCode, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next, _ := http.NewRequestWithContext(ctx, "GET", gw.URL+"/get.php", nil)
	next.Header.Set("Cookie", "sessionid="+ck)
	nres, err := sessionClient.Do(next)
	if err != nil {
		t.Fatalf("next page while the download waits: %v", err)
	}
	nbody, _ := io.ReadAll(nres.Body)
	nres.Body.Close()
	if nres.StatusCode != 200 || !strings.Contains(string(nbody), `"downloads":5`) {
		t.Fatalf("next page: %d %s", nres.StatusCode, nbody)
	}
	rest, err := io.ReadAll(slow.Body)
	if err != nil || !bytes.Equal(append(first, rest...), files["big.bin"]) {
		t.Fatalf("big download: %d bytes of %d, %v", len(first)+len(rest), len(files["big.bin"]), err)
	}
}

// requireSymfony returns the autoload file of Debian's Symfony
// HttpFoundation, having checked that it and the other components named are
// installed (in CI a missing one fails the test).
func requireSymfony(t *testing.T, others ...string) string {
	t.Helper()
	const dir = "/usr/share/php/Symfony/Component/"
	for _, c := range append([]string{"HttpFoundation"}, others...) {
		pkg := "php-symfony-" + strings.ToLower(strings.ReplaceAll(c, "Foundation", "-foundation"))
		if _, err := os.Stat(dir + c + "/autoload.php"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("Debian's %s is missing (scripts/deps.sh test installs it): %v", pkg, err)
			}
			t.Skipf("%s not installed: %v", pkg, err)
		}
	}
	return dir + "HttpFoundation/autoload.php"
}

// TestAccelRedirectSymfony: Symfony's BinaryFileResponse (Laravel's
// response()->download too) sends X-Accel-Redirect when the app trusts
// X-Sendfile-Type and the server says which directory maps to which
// internal URL, which nginx configurations do with fastcgi_param and a
// php-fpm pool does with env[]. Debian's Symfony 5.4 runs the download;
// the gateway sends the file, ranges included, from the alias directory.
func TestAccelRedirectSymfony(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2")
	// HttpFoundation's autoload loads Mime when present; without it
	// BinaryFileResponse::prepare() throws instead of guessing the type.
	autoload := requireSymfony(t, "Mime")
	private := t.TempDir()
	report := make([]byte, 100<<10)
	rand.Read(report)
	if err := os.WriteFile(filepath.Join(private, "report 2026.pdf"), report, 0o644); err != nil {
		t.Fatal(err)
	}
	root := gwSite(t)
	src := `<?php
require '` + autoload + `';
use Symfony\Component\HttpFoundation\BinaryFileResponse;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\ResponseHeaderBag;
BinaryFileResponse::trustXSendfileTypeHeader();
$request = Request::createFromGlobals();
$response = new BinaryFileResponse(getenv('PRIVATE_DIR') . '/report 2026.pdf');
$response->setContentDisposition(ResponseHeaderBag::DISPOSITION_ATTACHMENT);
$response->prepare($request);
$response->send();
`
	if err := os.WriteFile(filepath.Join(root, "report.php"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 2, Env: map[string]string{
		"PRIVATE_DIR":          private,
		"HTTP_X_SENDFILE_TYPE": "X-Accel-Redirect",
		"HTTP_X_ACCEL_MAPPING": private + "/=/private-files/",
	}})
	g := startGWOn(t, fpm, root, func(c *config.Config) {
		c.InternalPaths = []string{"/private-files/=" + private}
	})
	res, body := g.get(t, "/report.php")
	if res.StatusCode != 200 || body != string(report) {
		t.Fatalf("download: %d, %d bytes (want %d); %v", res.StatusCode, len(body), len(report), res.Header)
	}
	if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="report 2026.pdf"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if _, ok := logLine(g.Logs, `"internal_redirect":"/private-files/report 2026.pdf"`); !ok {
		t.Errorf("not sent through X-Accel-Redirect:\n%s", g.Logs.String())
	}
	res, body = g.get(t, "/report.php", "Range", "bytes=-10")
	if res.StatusCode != 206 || body != string(report[len(report)-10:]) {
		t.Errorf("range: %d %d bytes", res.StatusCode, len(body))
	}
	// A client's own X-Sendfile-Type would have Symfony send the file's
	// path on disk back; its own mapping, point the redirect elsewhere.
	res, body = g.get(t, "/report.php", "X-Sendfile-Type", "X-Sendfile", "X-Accel-Mapping", private+"/=/elsewhere/")
	if res.StatusCode != 200 || body != string(report) || res.Header.Get("X-Sendfile") != "" {
		t.Errorf("with a client's X-Sendfile-Type and X-Accel-Mapping: %d, %d bytes, %v", res.StatusCode, len(body), res.Header)
	}
	if res, _ := g.get(t, "/private-files/report%202026.pdf"); res.StatusCode != 404 {
		t.Errorf("the internal URL answered a client: %d", res.StatusCode)
	}
}

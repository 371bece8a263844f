package integration

// A differential test of HTTPS termination: Debian 12's nginx 1.22 as a
// PHP shop configures it (listen ... ssl http2, certbot's fullchain.pem and
// privkey.pem under /etc/letsencrypt/live, Debian's nginx.conf lines for
// ssl_protocols and ssl_prefer_server_ciphers, nginx's default ciphers,
// fastcgi_params with its HTTPS) and the gateway on the same files
// (SESSIONGATE_TLS_CERT, SESSIONGATE_TLS_KEY), both in front of one
// php-fpm. The same handshakes go to each, with Go clients pinned to one
// protocol version, one cipher suite, an ALPN list or a server name, and
// openssl s_client and curl where Go's client cannot say it (an IP address
// as the server name, HTTP/1.0 in ALPN); then plain HTTP, garbage and a
// stalled handshake on the TLS port, session resumption, the certificate
// chain sent, what PHP sees, and certbot's renewals (the live symlinks
// moved, a certificate written before its key).

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/metrics/metricstest"
)

// tlsDiffCA is a root and an intermediate, as ISRG Root X1 and R3 are for
// a Let's Encrypt certificate: clients trust the root only, so the
// intermediate must come in the chain the server sends.
type tlsDiffCA struct {
	pool     *x509.CertPool
	roots    []*x509.Certificate
	inter    *x509.Certificate
	interKey crypto.Signer
	serial   int64
}

func newTLSDiffCA(t *testing.T) *tlsDiffCA {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root X1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	interTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test R3"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(interDER)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &tlsDiffCA{pool: pool, roots: []*x509.Certificate{root}, inter: inter, interKey: interKey, serial: 100}
}

// issue returns the PEM of a certificate for names (IP addresses among
// them as such) followed by the intermediate, as certbot's fullchain.pem
// is, and its key as PKCS#8, as certbot's privkey.pem is; an RSA key or
// an ECDSA one (certbot's default since 2.0).
func (ca *tlsDiffCA) issue(t *testing.T, rsaKey bool, names ...string) certbotFiles {
	t.Helper()
	var key crypto.Signer
	var err error
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(20 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if rsaKey {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.inter, key.Public(), ca.interKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certbotFiles{
		fullchain: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.inter.Raw})...),
		privkey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
	}
}

// certbotFiles are a fullchain.pem and its privkey.pem.
type certbotFiles struct{ fullchain, privkey []byte }

// certbotLineage is /etc/letsencrypt for one certificate name: the files
// under archive/NAME/ numbered by renewal, and live/NAME/'s symlinks to
// the current ones, which servers are configured with.
type certbotLineage struct {
	dir, name string
	gen       int
}

// live is the path servers are configured with: live/NAME/file.
func (l *certbotLineage) live(file string) string {
	return filepath.Join(l.dir, "live", l.name, file)
}

// deploy writes a renewal's files to the archive and moves the live
// symlinks to them, one after the other, as certbot does.
func (l *certbotLineage) deploy(t *testing.T, f certbotFiles) {
	t.Helper()
	l.gen++
	archive := filepath.Join(l.dir, "archive", l.name)
	live := filepath.Join(l.dir, "live", l.name)
	for _, d := range []string{archive, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for file, b := range map[string][]byte{"fullchain": f.fullchain, "privkey": f.privkey} {
		name := fmt.Sprintf("%s%d.pem", file, l.gen)
		if err := os.WriteFile(filepath.Join(archive, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(live, file+".pem.new")
		if err := os.Symlink(filepath.Join("..", "..", "archive", l.name, name), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(live, file+".pem")); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsDiffNginxSSL are the ssl lines of Debian 12's /etc/nginx/nginx.conf
// (nginx 1.22 defaults to the same protocols; its ssl_ciphers default,
// HIGH:!aNULL:!MD5, stays).
const tlsDiffNginxSSL = `
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE
    ssl_prefer_server_ciphers on;
`

// tlsDiffSite is one site served by nginx and by the gateway from the same
// certbot lineage.
type tlsDiffSite struct {
	name      string
	nginx, gw string // addresses
	gwProc    *gwProc
	lineage   *certbotLineage
}

// tlsDiffSetup is nginx, php-fpm and the gateways of the comparison.
type tlsDiffSetup struct {
	rsa, ec   tlsDiffSite
	named     tlsDiffSite // rsa's files, with SESSIONGATE_SERVER_NAMES and nginx's server_name
	ng        *harness.Nginx
	accessLog string // nginx's
	ca        *tlsDiffCA
}

// tlsDiffTimeout is the handshake timeout of both: nginx's
// client_header_timeout, SESSIONGATE_READ_HEADER_TIMEOUT.
const tlsDiffTimeout = 3 * time.Second

// startTLSDiff starts php-fpm, nginx and three gateways on two certbot
// lineages under one CA: an RSA site and an ECDSA one (nginx's first and
// second server, a gateway each), and the RSA site with server names
// (nginx's third, with a default_server answering 421, and a gateway
// with SESSIONGATE_SERVER_NAMES). The access logs are on, and the
// handshake timeout of both is tlsDiffTimeout.
func startTLSDiff(t *testing.T) *tlsDiffSetup {
	t.Helper()
	harness.Require(t, "php-fpm8.2", "nginx", "openssl", "curl")
	s := &tlsDiffSetup{ca: newTLSDiffCA(t)}
	root := nginxDiffSite(t, harness.PHPTempDir(t))
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	le := t.TempDir()
	rsaLineage := &certbotLineage{dir: le, name: "shop.example"}
	rsaLineage.deploy(t, s.ca.issue(t, true, "shop.example", "localhost", "127.0.0.1"))
	ecLineage := &certbotLineage{dir: le, name: "ec.shop.example"}
	ecLineage.deploy(t, s.ca.issue(t, false, "ec.shop.example", "localhost", "127.0.0.1"))
	s.accessLog = filepath.Join(t.TempDir(), "access.log")
	s.ng = harness.StartNginx(t, 3, func(addrs []string) string {
		site := func(addr string, l *certbotLineage) string {
			return nginxPHPShop(addr+" ssl http2", root, fpm.Addr, fmt.Sprintf(`ssl_certificate %s;
        ssl_certificate_key %s;
        client_header_timeout %ds;
        access_log %s;`, l.live("fullchain.pem"), l.live("privkey.pem"), int(tlsDiffTimeout/time.Second), s.accessLog), "")
		}
		// named: the site's names, and a default_server that refuses
		// the rest with 421, as SESSIONGATE_SERVER_NAMES does.
		named := strings.Replace(site(addrs[2], rsaLineage), "server_name shop.example;", "server_name shop.example localhost;", 1)
		return tlsDiffNginxSSL + site(addrs[0], rsaLineage) + site(addrs[1], ecLineage) + named + fmt.Sprintf(`
    server {
        listen %s ssl http2 default_server;
        server_name _;
        ssl_certificate %s;
        ssl_certificate_key %s;
        return 421;
    }
`, addrs[2], rsaLineage.live("fullchain.pem"), rsaLineage.live("privkey.pem"))
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", s.ng.Log())
		}
	})
	bin := buildGateway(t)
	start := func(l *certbotLineage, env ...string) *gwProc {
		return startBinary(t, bin, append([]string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
			"SESSIONGATE_SESSIONS=off", "SESSIONGATE_ACCESS_LOG=on", "SESSIONGATE_PHP_MAX_CONNS=1",
			"SESSIONGATE_READ_HEADER_TIMEOUT=" + tlsDiffTimeout.String(),
			"SESSIONGATE_TLS_CERT=" + l.live("fullchain.pem"), "SESSIONGATE_TLS_KEY=" + l.live("privkey.pem")}, env...))
	}
	addr := func(p *gwProc) string { return strings.TrimPrefix(p.URL, "http://") }
	g := start(rsaLineage)
	s.rsa = tlsDiffSite{name: "rsa", nginx: s.ng.Addrs[0], gw: addr(g), gwProc: g, lineage: rsaLineage}
	g = start(ecLineage)
	s.ec = tlsDiffSite{name: "ecdsa", nginx: s.ng.Addrs[1], gw: addr(g), gwProc: g, lineage: ecLineage}
	g = start(rsaLineage, "SESSIONGATE_SERVER_NAMES=shop.example,localhost")
	s.named = tlsDiffSite{name: "named", nginx: s.ng.Addrs[2], gw: addr(g), gwProc: g, lineage: rsaLineage}
	return s
}

// tlsDiff is one probe whose outcome differs: the site, what was tried,
// and what each said.
type tlsDiff struct {
	site, probe, nginx, gw string
}

func (d tlsDiff) String() string {
	return fmt.Sprintf("%s %s: nginx %q, gateway %q", d.site, d.probe, d.nginx, d.gw)
}

// tlsHandshake dials addr with cfg and returns the version and ALPN
// protocol agreed (and with suite the cipher suite), or why the handshake
// failed.
func tlsHandshake(addr string, cfg *tls.Config, suite bool) string {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "refused: " + tlsErrText(err)
	}
	defer c.Close()
	st := c.ConnectionState()
	out := tls.VersionName(st.Version)
	if suite {
		out += " " + tls.CipherSuiteName(st.CipherSuite)
	}
	return out + fmt.Sprintf(" alpn=%q", st.NegotiatedProtocol)
}

// tlsErrText is a handshake error without the addresses in it.
func tlsErrText(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return err.Error()
}

// client is a client config for the comparison's sites: it trusts
// the test root and names localhost, unless the probe changes that.
func (s *tlsDiffSetup) client(mod func(*tls.Config)) *tls.Config {
	c := &tls.Config{RootCAs: s.ca.pool, ServerName: "localhost"}
	if mod != nil {
		mod(c)
	}
	return c
}

// probes are the handshakes compared: each protocol version
// offered alone, each cipher suite of TLS 1.2 offered alone, ALPN lists,
// server names (SNI).
func (s *tlsDiffSetup) probes() []struct {
	name  string
	cfg   *tls.Config
	suite bool
} {
	type probe = struct {
		name  string
		cfg   *tls.Config
		suite bool
	}
	var ps []probe
	// The suite each side picks is compared where the client's offer
	// leaves a choice between suites (versions) or none (suites).
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
		ps = append(ps, probe{"version " + tls.VersionName(v), s.client(func(c *tls.Config) { c.MinVersion, c.MaxVersion = v, v }), true})
	}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if !slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
			continue
		}
		ps = append(ps, probe{"suite " + cs.Name, s.client(func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{cs.ID}
		}), true})
	}
	for _, alpn := range [][]string{nil, {"h2"}, {"http/1.1"}, {"h2", "http/1.1"}, {"http/1.0"}, {"spdy/3", "http/1.1"}, {"acme-tls/1"}, {"foo"}} {
		ps = append(ps, probe{fmt.Sprintf("alpn %q", alpn), s.client(func(c *tls.Config) { c.NextProtos = alpn }), false})
	}
	for _, sni := range []string{"", "localhost", "shop.example", "unknown.example"} {
		ps = append(ps, probe{fmt.Sprintf("sni %q", sni), s.client(func(c *tls.Config) {
			// Go sends no server name for "", and verifies against
			// this one.
			c.ServerName = sni
			c.InsecureSkipVerify = true
		}), false})
	}
	return ps
}

// TestNginxTLSHandshakeDiff compares the handshakes of probes on the RSA
// and the ECDSA site.
func TestNginxTLSHandshakeDiff(t *testing.T) {
	t.Parallel()
	s := startTLSDiff(t)
	var diffs []tlsDiff
	for _, site := range []tlsDiffSite{s.rsa, s.ec} {
		for _, p := range s.probes() {
			n, g := tlsHandshake(site.nginx, p.cfg, p.suite), tlsHandshake(site.gw, p.cfg, p.suite)
			if n != g {
				diffs = append(diffs, tlsDiff{site.name, p.name, n, g})
			}
		}
	}
	seen := map[string]int{}
	judgeDiffs(t, diffs, tlsKnownDiffs, seen, "")
	knownAllSeen(t, tlsKnownDiffs, seen)
}

// tlsKnownDiffs are the differences the gateway means to make: Go's
// crypto/tls defaults, stricter than nginx's HIGH:!aNULL:!MD5.
var tlsKnownDiffs = []knownDiff[tlsDiff]{
	{"TLS 1.0 and 1.1 are refused by both; nginx (OpenSSL 3.0 at security level 1, which allows no SHA-1 signature these versions need) says internal_error, the gateway protocol_version", func(d tlsDiff) bool {
		return (d.probe == "version TLS 1.0" || d.probe == "version TLS 1.1") &&
			d.nginx == "refused: tls: internal error" && d.gw == "refused: tls: protocol version not supported"
	}},
	{"RSA key exchange (TLS_RSA_*, no forward secrecy, ROBOT) is refused: Go's default since 1.22, where nginx's HIGH accepts it", func(d tlsDiff) bool {
		return d.site == "rsa" && strings.HasPrefix(d.probe, "suite TLS_RSA_WITH_AES_") &&
			d.nginx == "TLS 1.2 "+strings.TrimPrefix(d.probe, "suite ")+` alpn=""` && d.gw == "refused: tls: handshake failure"
	}},
	{"CBC with HMAC-SHA256 (ECDHE_*_AES_128_CBC_SHA256, Lucky13) is refused: Go enables it only on request, nginx's HIGH accepts it", func(d tlsDiff) bool {
		return strings.HasPrefix(d.probe, "suite TLS_ECDHE_") && strings.HasSuffix(d.probe, "_AES_128_CBC_SHA256") &&
			d.nginx == "TLS 1.2 "+strings.TrimPrefix(d.probe, "suite ")+` alpn=""` && d.gw == "refused: tls: handshake failure"
	}},
	{"offered every suite, nginx (ssl_prefer_server_ciphers on) picks AES-256-GCM, the gateway AES-128-GCM, as Go orders them on hardware with AES instructions", func(d tlsDiff) bool {
		alg := map[string]string{"rsa": "RSA", "ecdsa": "ECDSA"}[d.site]
		return d.probe == "version TLS 1.2" && d.nginx == "TLS 1.2 TLS_ECDHE_"+alg+`_WITH_AES_256_GCM_SHA384 alpn=""` && d.gw == "TLS 1.2 TLS_ECDHE_"+alg+`_WITH_AES_128_GCM_SHA256 alpn=""` ||
			d.probe == "version TLS 1.3" && d.nginx == `TLS 1.3 TLS_AES_256_GCM_SHA384 alpn=""` && d.gw == `TLS 1.3 TLS_AES_128_GCM_SHA256 alpn=""`
	}},
}

// tlsDiffCase is one exchange on a fresh connection to a site, by its
// address, whose outcome is compared.
type tlsDiffCase struct {
	name string
	run  func(t *testing.T, site tlsDiffSite, addr string) string
}

// curlOutcome runs curl on https://localhost:PORT/path (trusting the
// test root, resolving localhost to addr) with args and returns the
// protocol and status it got, or curl's exit code.
func (s *tlsDiffSetup) curlOutcome(t *testing.T, addr, path string, args ...string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	caFile := filepath.Join(t.TempDir(), "root.pem")
	var roots bytes.Buffer
	for _, c := range s.ca.roots {
		pem.Encode(&roots, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	if err := os.WriteFile(caFile, roots.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("curl", append([]string{"-sS", "-o", "/dev/null", "--max-time", "10", "--cacert", caFile,
		"--resolve", "localhost:" + port + ":127.0.0.1", "-w", "%{http_version} %{http_code}"}, args...)...)
	cmd.Args = append(cmd.Args, "https://localhost:"+port+path)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Sprintf("curl exit %d", ee.ExitCode())
	} else if err != nil {
		t.Fatal(err)
	}
	return "HTTP/" + string(out)
}

// rawOutcome sends b on a plain TCP connection and describes what comes
// back within 10 s: an HTTP status line, a TLS alert, or the close.
func rawOutcome(t *testing.T, addr string, b []byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if len(b) > 0 {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := io.ReadAll(c)
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	var out string
	switch {
	case bytes.HasPrefix(got, []byte("HTTP/")):
		line, _, _ := bytes.Cut(got, []byte("\r\n"))
		code, _, _ := bytes.Cut(line[len("HTTP/1.x "):], []byte(" "))
		out = "HTTP " + string(code)
	case len(got) >= 7 && got[0] == 0x15:
		out = fmt.Sprintf("TLS alert %d", got[6])
	case len(got) > 0:
		out = fmt.Sprintf("%d other bytes", len(got))
	default:
		out = "nothing"
	}
	if timedOut {
		return out + ", still open after 10 s"
	}
	return out + ", closed"
}

// clientHelloStart is the first bytes of a real ClientHello: a handshake
// that stops there.
func clientHelloStart(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, &tls.Config{ServerName: "localhost"}).Handshake()
	buf := make([]byte, 64)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

// resumed reports whether a second handshake with the session of the
// first resumes it, at version v: TLS 1.3 sends its ticket after the
// handshake, so a request is answered on the first connection first.
func (s *tlsDiffSetup) resumed(t *testing.T, addr string, v uint16) string {
	t.Helper()
	cfg := s.client(func(c *tls.Config) {
		c.MaxVersion = v
		c.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		c.NextProtos = []string{"http/1.1"}
	})
	var out []string
	for range 2 {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return "refused: " + tlsErrText(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /docs/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		out = append(out, fmt.Sprintf("resumed=%v", c.ConnectionState().DidResume))
		c.Close()
	}
	return strings.Join(out, " then ")
}

// chainSent lists the subjects of the certificates a handshake gets, in
// order, and whether they verify against the root alone.
func (s *tlsDiffSetup) chainSent(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, s.client(nil))
	if err != nil {
		return "refused: " + tlsErrText(err)
	}
	defer c.Close()
	var names []string
	for _, cert := range c.ConnectionState().PeerCertificates {
		names = append(names, cert.Subject.CommonName)
	}
	return strings.Join(names, " < ") + ", verified"
}

// opensslSNI runs openssl s_client with servername as the SNI (an IP
// address, which Go's client never sends) and returns the verification
// result and the ALPN it got.
func (s *tlsDiffSetup) opensslSNI(t *testing.T, addr, servername string) string {
	t.Helper()
	args := []string{"s_client", "-connect", addr, "-alpn", "h2,http/1.1", "-brief"}
	if servername == "" {
		args = append(args, "-noservername")
	} else {
		args = append(args, "-servername", servername)
	}
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok && (k == "Protocol version" || k == "ALPN protocol" || k == "Peer certificate") {
			got = append(got, k+"="+strings.TrimSpace(v))
		}
	}
	if len(got) == 0 {
		return "failed: " + strings.TrimSpace(string(out))
	}
	return strings.Join(got, ", ")
}

// phpSees is what PHP got of the scheme, host and port for a request
// over client, each side's own port written PORT.
func phpSees(t *testing.T, client *http.Client, addr string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	res, err := client.Get("https://localhost:" + port + "/info.php")
	if err != nil {
		return "failed: " + err.Error()
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := phpDump(t, "/info.php", string(b))
	var out []string
	for _, k := range []string{"HTTPS", "REQUEST_SCHEME", "SERVER_PORT", "HTTP_HOST", "SERVER_PROTOCOL", "SSL_PROTOCOL", "SSL_CIPHER"} {
		out = append(out, k+"="+strings.ReplaceAll(m[k], port, "PORT"))
	}
	return res.Proto + " " + strings.Join(out, " ")
}

// httpClient is an HTTP client for a site: it trusts the test root,
// dials addr for every host, and speaks HTTP/2 when h2 is set.
func (s *tlsDiffSetup) httpClient(addr string, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: s.client(nil), ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: tr}
}

// cases are the exchanges TestNginxTLSConnectionDiff compares.
func (s *tlsDiffSetup) cases(t *testing.T) []tlsDiffCase {
	hello := clientHelloStart(t)
	return []tlsDiffCase{
		{"curl", func(t *testing.T, _ tlsDiffSite, addr string) string { return s.curlOutcome(t, addr, "/info.php") }},
		{"curl --http1.1", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return s.curlOutcome(t, addr, "/info.php", "--http1.1")
		}},
		{"curl --http1.0", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return s.curlOutcome(t, addr, "/info.php", "--http1.0")
		}},
		{"curl --tlsv1.3 --tls-max 1.3", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return s.curlOutcome(t, addr, "/docs/", "--tlsv1.3", "--tls-max", "1.3")
		}},
		{"curl --tls-max 1.1", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return s.curlOutcome(t, addr, "/docs/", "--tlsv1", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0")
		}},
		{"plain HTTP request", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return rawOutcome(t, addr, []byte("GET /info.php HTTP/1.1\r\nHost: localhost\r\n\r\n"))
		}},
		{"plain HTTP/1.0 HEAD", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return rawOutcome(t, addr, []byte("HEAD / HTTP/1.0\r\n\r\n"))
		}},
		{"garbage", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return rawOutcome(t, addr, []byte("\x00\x01\x02\x03\xff\xfe garbage\r\n\r\n"))
		}},
		{"TLS record of garbage", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return rawOutcome(t, addr, []byte("\x16\x03\x01\x00\x10garbage-garbage!"))
		}},
		{"silent client", func(t *testing.T, _ tlsDiffSite, addr string) string { return rawOutcome(t, addr, nil) }},
		{"ClientHello cut short", func(t *testing.T, _ tlsDiffSite, addr string) string { return rawOutcome(t, addr, hello) }},
		{"TLS 1.2 resumption", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return s.resumed(t, addr, tls.VersionTLS12)
		}},
		{"TLS 1.3 resumption", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return s.resumed(t, addr, tls.VersionTLS13)
		}},
		{"chain", func(t *testing.T, _ tlsDiffSite, addr string) string { return s.chainSent(t, addr) }},
		{"openssl no SNI", func(t *testing.T, _ tlsDiffSite, addr string) string { return s.opensslSNI(t, addr, "") }},
		{"openssl SNI 127.0.0.1", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return s.opensslSNI(t, addr, "127.0.0.1")
		}},
		{"openssl SNI unknown.example", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return s.opensslSNI(t, addr, "unknown.example")
		}},
		{"PHP over HTTP/2", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return phpSees(t, s.httpClient(addr, true), addr)
		}},
		{"PHP over HTTP/1.1", func(t *testing.T, _ tlsDiffSite, addr string) string {
			return phpSees(t, s.httpClient(addr, false), addr)
		}},
	}
}

// TestNginxTLSConnectionDiff compares curl's requests, plain HTTP and
// garbage on the TLS port, stalled and cut handshakes, resumption, the
// chain sent, server names by openssl and what PHP sees.
func TestNginxTLSConnectionDiff(t *testing.T) {
	t.Parallel()
	s := startTLSDiff(t)
	// The sites, and both sides of each, at once: the stalled cases wait
	// out the handshake timeout. A probe's t.Fatal ends its goroutine,
	// whose deferred send still reports it.
	run := func(c tlsDiffCase, site tlsDiffSite, addr string, out chan<- string) {
		got := "the probe stopped (t.Fatal)"
		defer func() { out <- got }()
		got = c.run(t, site, addr)
	}
	cases := s.cases(t)
	sites := []tlsDiffSite{s.rsa, s.ec}
	perSite := make([][]tlsDiff, len(sites))
	done := make(chan struct{}, len(sites))
	for i, site := range sites {
		go func() {
			defer func() { done <- struct{}{} }()
			for _, c := range cases {
				n, g := make(chan string, 1), make(chan string, 1)
				go run(c, site, site.nginx, n)
				go run(c, site, site.gw, g)
				if n, g := <-n, <-g; n != g {
					perSite[i] = append(perSite[i], tlsDiff{site.name, c.name, n, g})
				}
			}
		}()
	}
	for range sites {
		<-done
	}
	diffs := slices.Concat(perSite...)
	seen := map[string]int{}
	judgeDiffs(t, diffs, tlsConnKnownDiffs, seen, "")
	knownAllSeen(t, tlsConnKnownDiffs, seen)
}

var tlsConnKnownDiffs = []knownDiff[tlsDiff]{
	{"an HTTP/1.0 request is answered in HTTP/1.0 (net/http), nginx answers in HTTP/1.1; either is valid (RFC 9110 section 2.5)", func(d tlsDiff) bool {
		return d.probe == "curl --http1.0" && d.nginx == "HTTP/1.1 200" && d.gw == "HTTP/1 200"
	}},
	{"bytes that are neither TLS nor HTTP get the connection closed; nginx reads them as a plain-HTTP request and answers 400", func(d tlsDiff) bool {
		return d.probe == "garbage" && d.nginx == "HTTP 400, closed" && d.gw == "nothing, closed"
	}},
	{"a TLS record that holds no ClientHello is refused by both: OpenSSL's alert is unexpected_message (10), Go's internal_error (80)", func(d tlsDiff) bool {
		return d.probe == "TLS record of garbage" && d.nginx == "TLS alert 10, closed" && d.gw == "TLS alert 80, closed"
	}},
	{"HTTP_HOST is the Host as sent, with its port; Debian's fastcgi_params sends $host, without it (README, nginx_diff_test.go)", func(d tlsDiff) bool {
		return strings.HasPrefix(d.probe, "PHP over ") && strings.Replace(d.gw, "HTTP_HOST=localhost:PORT ", "HTTP_HOST=localhost ", 1) == d.nginx
	}},
}

// TestNginxTLSPlainHTTPLogged: a plain-HTTP request sent to the TLS port
// (a health check or a link with http:// and the TLS port) gets 400 from
// both, and nginx writes it to its access log ("The plain HTTP request was
// sent to HTTPS port"); the gateway's access log and request metrics
// must show it too.
func TestNginxTLSPlainHTTPLogged(t *testing.T) {
	t.Parallel()
	s := startTLSDiff(t)
	// Any method, and the absolute form: the gateway answered only the
	// starts crypto/tls knows ("GET /", "POST ", ...) and closed the
	// others without a word or a log line.
	reqs := []string{
		"GET /plain.php HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"DELETE /plain.php HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET http://localhost/plain.php HTTP/1.1\r\nHost: localhost\r\n\r\n",
	}
	for _, addr := range []string{s.rsa.nginx, s.rsa.gw} {
		for _, req := range reqs {
			if got := rawOutcome(t, addr, []byte(req)); got != "HTTP 400, closed" {
				t.Errorf("%s: plain HTTP on the TLS port (%.20q): %s, want HTTP 400, closed", addr, req, got)
			}
		}
	}
	if log, ok := textWhen(func() string { b, _ := os.ReadFile(s.accessLog); return string(b) }, func(log string) bool {
		return strings.Contains(log, `"GET /plain.php HTTP/1.1" 400 `) && strings.Contains(log, `"DELETE /plain.php HTTP/1.1" 400 `)
	}); !ok {
		t.Errorf("nginx's access log has no 400 for the plain-HTTP request:\n%s", log)
	}
	since := func() string { return s.rsa.gwProc.stderr.String() }
	if log, ok := textWhen(since, func(log string) bool {
		n := 0
		for l := range strings.SplitSeq(log, "\n") {
			if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"status":400`) && strings.Contains(l, "plain-HTTP") {
				n++
			}
		}
		return n == len(reqs)
	}); !ok {
		t.Errorf("the gateway's access log has no 400 for the plain-HTTP request:\n%s", log)
	}
	m := metricstest.Scrape(t, s.rsa.gwProc.Admin+"/metrics")
	if got := m[`sessiongate_http_requests_total{code="400",upstream="gateway"}`]; got != float64(len(reqs)) {
		t.Errorf("plain-HTTP 400s counted %v times, want %d", got, len(reqs))
	}
}

// statusFor returns the status of GET / for host (URL and Host, or
// :authority) on a connection to addr whose SNI is sni, over HTTP/2 or
// HTTP/1.1.
func (s *tlsDiffSetup) statusFor(addr, sni, host string, h2 bool) string {
	client := s.httpClient(addr, h2)
	tr := client.Transport.(*http.Transport)
	tr.TLSClientConfig.ServerName = sni
	tr.TLSClientConfig.InsecureSkipVerify = true
	res, err := client.Get("https://" + host + "/docs/")
	if err != nil {
		return "failed: " + tlsErrText(err)
	}
	res.Body.Close()
	return res.Proto + " " + strconv.Itoa(res.StatusCode)
}

// TestNginxTLSServerNamesDiff: with SESSIONGATE_SERVER_NAMES (nginx: the
// site's server_name and a default_server that answers 421), the name in
// the handshake (SNI) and the Host of the request disagree: the Host
// decides for both, over HTTP/1.1 and HTTP/2.
func TestNginxTLSServerNamesDiff(t *testing.T) {
	t.Parallel()
	s := startTLSDiff(t)
	var diffs []tlsDiff
	for _, c := range []struct{ sni, host string }{
		{"localhost", "localhost"},
		{"shop.example", "localhost"},
		{"unknown.example", "localhost"},
		{"", "localhost"},
		{"localhost", "unknown.example"},
		{"unknown.example", "unknown.example"},
		{"", "127.0.0.1"},
	} {
		for _, h2 := range []bool{false, true} {
			name := fmt.Sprintf("SNI %q Host %q h2=%v", c.sni, c.host, h2)
			n := s.statusFor(s.named.nginx, c.sni, c.host, h2)
			g := s.statusFor(s.named.gw, c.sni, c.host, h2)
			t.Logf("%s: nginx %s | gateway %s", name, n, g)
			if n != g {
				diffs = append(diffs, tlsDiff{"named", name, n, g})
			}
		}
	}
	judgeDiffs(t, diffs, nil, map[string]int{}, "")
}

// servedCert describes the certificate addr serves: the lineage
// generation whose serial it has (serials), and whether it verifies for
// localhost.
func (s *tlsDiffSetup) servedCert(addr string, serials map[string]string) string {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, s.client(func(c *tls.Config) { c.InsecureSkipVerify = true }))
	if err != nil {
		return "refused: " + tlsErrText(err)
	}
	defer c.Close()
	certs := c.ConnectionState().PeerCertificates
	name := serials[certs[0].SerialNumber.String()]
	if name == "" {
		name = "serial " + certs[0].SerialNumber.String()
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: "localhost", Roots: s.ca.pool, Intermediates: inter}); err != nil {
		return name + ", not valid for localhost"
	}
	return name + ", valid for localhost"
}

// reloadNginx sends nginx SIGHUP and waits until it has reloaded or
// refused the new configuration; it says which.
func (s *tlsDiffSetup) reloadNginx(t *testing.T) string {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(filepath.Dir(s.ng.ConfPath), "nginx.pid"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil {
		t.Fatal(err)
	}
	count := func(log, what string) int { return strings.Count(log, what) }
	before := s.ng.Log()
	if err := syscall.Kill(n, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var out string
	if _, ok := textWhen(s.ng.Log, func(log string) bool {
		switch {
		case count(log, "[emerg]") > count(before, "[emerg]"):
			out = "refused"
		case count(log, "start worker process") > count(before, "start worker process"):
			out = "reloaded"
		}
		return out != ""
	}); !ok {
		t.Fatalf("nginx did not reload:\n%s", s.ng.Log())
	}
	return out
}

// reloadGateway sends p SIGHUP and waits for its log to say whether it
// reloaded.
func reloadGateway(t *testing.T, p *gwProc) string {
	t.Helper()
	before := p.stderr.String()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var out string
	if _, ok := textWhen(p.stderr.String, func(log string) bool {
		log = log[len(before):]
		switch {
		case strings.Contains(log, "TLS certificate not reloaded"):
			out = "refused"
		case strings.Contains(log, "TLS certificate reloaded"):
			out = "reloaded"
		}
		return out != ""
	}); !ok {
		t.Fatalf("the gateway said nothing of SIGHUP:\n%s", p.stderr.String())
	}
	return out
}

// TestNginxTLSRenewalDiff renews the RSA site's certificate as certbot
// does, with nginx and the gateway reloaded by SIGHUP (certbot's
// --deploy-hook): the live symlinks moved to a new archive generation; a
// hook that installs the certificate before its key and signals in
// between (the pair mismatched: the site must stay up on the old one);
// then the key; then a renewal for other names only (certbot --cert-name
// after a domain was dropped). After each step: did each reload, and what
// does it serve.
func TestNginxTLSRenewalDiff(t *testing.T) {
	t.Parallel()
	s := startTLSDiff(t)
	l := s.rsa.lineage
	serials := map[string]string{}
	issue := func(gen string, names ...string) certbotFiles {
		f := s.ca.issue(t, true, names...)
		serials[strconv.FormatInt(s.ca.serial, 10)] = gen
		return f
	}
	serials[strconv.FormatInt(s.ca.serial-1, 10)] = "gen1" // the RSA site's, issued first
	var diffs []tlsDiff
	do := func(name string, install func()) {
		install()
		n, g := s.reloadNginx(t), reloadGateway(t, s.rsa.gwProc)
		// nginx's old worker may take a connection or two more.
		var nServed string
		poll(5*time.Second, func() bool {
			nServed = s.servedCert(s.rsa.nginx, serials)
			return n == "refused" || strings.HasPrefix(nServed, serials[strconv.FormatInt(s.ca.serial, 10)]+",")
		})
		nOut, gOut := n+": "+nServed, g+": "+s.servedCert(s.rsa.gw, serials)
		t.Logf("%s: nginx %s | gateway %s", name, nOut, gOut)
		if nOut != gOut {
			diffs = append(diffs, tlsDiff{"rsa", name, nOut, gOut})
		}
	}
	if n, g := s.servedCert(s.rsa.nginx, serials), s.servedCert(s.rsa.gw, serials); n != "gen1, valid for localhost" || g != n {
		t.Fatalf("at start: nginx %s, gateway %s", n, g)
	}
	do("certbot renew (live symlinks moved)", func() { l.deploy(t, issue("gen2", "shop.example", "localhost")) })
	gen3 := issue("gen3", "shop.example", "localhost")
	do("certificate installed before its key", func() {
		b, err := os.ReadFile(l.live("privkey.pem"))
		if err != nil {
			t.Fatal(err)
		}
		l.deploy(t, certbotFiles{gen3.fullchain, b})
	})
	do("then the key", func() {
		if err := os.WriteFile(l.live("privkey.pem"), gen3.privkey, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	do("renewed for other names only", func() { l.deploy(t, issue("gen4", "other.example")) })
	seen := map[string]int{}
	judgeDiffs(t, diffs, tlsRenewalKnownDiffs, seen, "")
	knownAllSeen(t, tlsRenewalKnownDiffs, seen)
}

var tlsRenewalKnownDiffs = []knownDiff[tlsDiff]{
	{"a certificate for none of the names of the one in use (another site's) is refused at SIGHUP and the site keeps its own; nginx takes it and every browser refuses the site", func(d tlsDiff) bool {
		return d.probe == "renewed for other names only" && d.nginx == "reloaded: gen4, not valid for localhost" && d.gw == "refused: gen3, valid for localhost"
	}},
}

// nginxConfigTest runs nginx -t on a TLS server with cert and key and
// returns "ok", or "refused: " and nginx's message about the files.
func nginxConfigTest(t *testing.T, cert, key string) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`pid %s/nginx.pid;
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
    }
}
`, dir, harness.FreePort(t), cert, key)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nginx", "-t", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	// No controlling terminal: OpenSSL would ask it for the passphrase
	// of an encrypted key.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.CombinedOutput()
	if err == nil {
		return "ok"
	}
	for _, l := range strings.Split(string(out), "\n") {
		if _, msg, ok := strings.Cut(l, "[emerg] "); ok {
			return "refused: " + msg
		}
	}
	return "refused: " + string(out)
}

// gatewayStartError starts the gateway binary on cert and key and returns
// its exit status and the lines of its configuration error.
func gatewayStartError(t *testing.T, cert, key string) (int, string) {
	t.Helper()
	cmd := exec.Command(buildGateway(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SESSIONGATE_LISTEN=127.0.0.1:" + strconv.Itoa(harness.FreePort(t)),
		"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(), "SESSIONGATE_SESSIONS=off",
		"SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + key}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("the gateway did not stop on cert %s key %s:\n%s", cert, key, out.String())
	}
	failOnRace(t, out.String())
	return cmd.ProcessState.ExitCode(), out.String()
}

// TestNginxTLSStartErrorsDiff: certificate and key files nginx refuses at
// start (nginx -t) stop the gateway's start too, with its configuration
// status (78) and a message naming the variable whose file is at fault
// and saying what is wrong with it: a key of another certificate, an
// encrypted key (nginx asks a terminal for the passphrase, and fails
// without one), a chain with the intermediate first, the two files
// swapped, a missing key, a directory for the key, an empty certificate.
func TestNginxTLSStartErrorsDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "nginx", "openssl")
	ca := newTLSDiffCA(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	site := ca.issue(t, true, "shop.example", "localhost")
	other := ca.issue(t, true, "shop.example", "localhost")
	otherType := ca.issue(t, false, "shop.example", "localhost")
	cert, key := write("fullchain.pem", site.fullchain), write("privkey.pem", site.privkey)
	openssl := func(name string, args ...string) string {
		out := filepath.Join(dir, name)
		if b, err := exec.Command("openssl", append(args, "-in", key, "-out", out, "-passout", "pass:secret")...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, b)
		}
		return out
	}
	leaf, inter, _ := bytes.Cut(site.fullchain, []byte("-----END CERTIFICATE-----\n"))
	leaf = append(leaf, "-----END CERTIFICATE-----\n"...)
	for _, c := range []struct {
		name      string
		cert, key string
		vars      []string // the variables the message names
		says      string   // and what it says
		// nginx -t passes a key of another type than the certificate's
		// (OpenSSL keeps one pair per key type): nginx starts, and every
		// handshake fails. The gateway refuses to start.
		nginxStarts bool
	}{
		{"key of another certificate", cert, write("other-key.pem", other.privkey), []string{"SESSIONGATE_TLS_CERT", "SESSIONGATE_TLS_KEY"}, "does not match", false},
		{"ECDSA key for an RSA certificate", cert, write("ec-key.pem", otherType.privkey), []string{"SESSIONGATE_TLS_CERT", "SESSIONGATE_TLS_KEY"}, "does not match", true},
		{"chain with the intermediate (ECDSA) first", write("reversed.pem", append(inter, leaf...)), key, []string{"SESSIONGATE_TLS_CERT"}, "must come first", true},
		{"encrypted key, PKCS#8", cert, openssl("enc8.pem", "pkey", "-aes256"), []string{"SESSIONGATE_TLS_KEY"}, "encrypted", false},
		{"encrypted key, traditional", cert, openssl("encrsa.pem", "rsa", "-aes256", "-traditional"), []string{"SESSIONGATE_TLS_KEY"}, "encrypted", false},
		{"files swapped", key, cert, []string{"SESSIONGATE_TLS_CERT", "SESSIONGATE_TLS_KEY"}, "switched", false},
		{"key missing", cert, filepath.Join(dir, "missing.pem"), []string{"SESSIONGATE_TLS_KEY"}, "does not exist", false},
		{"key path a directory", cert, t.TempDir(), []string{"SESSIONGATE_TLS_KEY"}, "directory", false},
		{"certificate empty", write("empty.pem", nil), key, []string{"SESSIONGATE_TLS_CERT"}, "any PEM data", false},
	} {
		n := nginxConfigTest(t, c.cert, c.key)
		code, out := gatewayStartError(t, c.cert, c.key)
		if c.nginxStarts != (n == "ok") {
			t.Errorf("%s: nginx -t %s, want it to pass: %v", c.name, n, c.nginxStarts)
		}
		if code != 78 {
			t.Errorf("%s: the gateway exited %d, want 78:\n%s", c.name, code, out)
		}
		for _, v := range []string{"SESSIONGATE_TLS_CERT", "SESSIONGATE_TLS_KEY"} {
			if named := strings.Contains(out, "  "+v+"="); named != slices.Contains(c.vars, v) {
				t.Errorf("%s: %s named: %v, want %v:\n%s", c.name, v, named, !named, out)
			}
		}
		if !strings.Contains(out, c.says) {
			t.Errorf("%s: the message does not say %q:\n%s", c.name, c.says, out)
		}
	}
}

// TestNginxTLSAppViewDiff compares what the applications see of HTTPS
// and what the browser is told: Django behind nginx's documented
// proxy_set_header X-Forwarded-Proto $scheme and behind the gateway, the
// session cookie PHP's session_start() gives (nginx: PHP's own handler;
// the gateway: its session bridge) and Strict-Transport-Security, over
// HTTP/1.1 and HTTP/2.
func TestNginxTLSAppViewDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "nginx", "gunicorn")
	s := &tlsDiffSetup{ca: newTLSDiffCA(t)}
	saveDir := harness.PHPTempDir(t)
	root := nginxDiffSite(t, harness.PHPTempDir(t))
	writeTree(t, root, map[string]string{"sess.php": `<?php session_save_path('` + saveDir + `'); session_start(); $_SESSION['n'] = 1; echo 'ok';`})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "echoapp.py"), []byte(echoWSGI), 0o644); err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: dir, App: "echoapp:application", Workers: 1, Threads: 2})
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 3})
	l := &certbotLineage{dir: t.TempDir(), name: "shop.example"}
	l.deploy(t, s.ca.issue(t, false, "shop.example", "localhost"))
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return tlsDiffNginxSSL + nginxPHPShop(addrs[0]+" ssl http2", root, fpm.Addr, fmt.Sprintf(`ssl_certificate %s;
        ssl_certificate_key %s;
        location /dj/ {
            proxy_pass %s;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }`, l.live("fullchain.pem"), l.live("privkey.pem"), g.URL()), "")
	})
	gw := startBinary(t, buildGateway(t), []string{"SESSIONGATE_PHP_FPM=" + fpm.Addr, "SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_DJANGO_URL=" + g.URL(), "SESSIONGATE_DJANGO_PATHS=/dj/",
		"SESSIONGATE_SESSION_DEV=on", "SESSIONGATE_PHP_PREPEND=" + writePrepend(t),
		"SESSIONGATE_TLS_CERT=" + l.live("fullchain.pem"), "SESSIONGATE_TLS_KEY=" + l.live("privkey.pem")})
	gwAddr := strings.TrimPrefix(gw.URL, "http://")

	view := func(addr string, h2 bool) map[string]string {
		_, port, _ := net.SplitHostPort(addr)
		client := s.httpClient(addr, h2)
		get := func(path string) (*http.Response, string) {
			res, err := client.Get("https://localhost:" + port + path)
			if err != nil {
				t.Fatalf("%s %s: %v", addr, path, err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return res, strings.ReplaceAll(string(b), port, "PORT")
		}
		out := map[string]string{}
		_, body := get("/dj/")
		dj := phpDump(t, "/dj/", body)
		for _, k := range []string{"HTTP_X_FORWARDED_PROTO", "wsgi.url_scheme", "HTTP_HOST", "SERVER_PORT"} {
			out["Django "+k] = dj[k]
		}
		res, _ := get("/sess.php")
		for _, c := range res.Cookies() {
			out["session cookie"] = fmt.Sprintf("%s Secure=%v HttpOnly=%v", c.Name, c.Secure, c.HttpOnly)
		}
		res, _ = get("/docs/")
		out["Strict-Transport-Security"] = res.Header.Get("Strict-Transport-Security")
		return out
	}
	var diffs []tlsDiff
	for _, h2 := range []bool{false, true} {
		n, gv := view(ng.Addrs[0], h2), view(gwAddr, h2)
		for _, k := range slices.Sorted(maps.Keys(n)) {
			t.Logf("h2=%v %s: nginx %q | gateway %q", h2, k, n[k], gv[k])
			if n[k] != gv[k] {
				diffs = append(diffs, tlsDiff{fmt.Sprintf("h2=%v", h2), k, n[k], gv[k]})
			}
		}
	}
	seen := map[string]int{}
	judgeDiffs(t, diffs, tlsAppKnownDiffs, seen, "")
	knownAllSeen(t, tlsAppKnownDiffs, seen)
}

var tlsAppKnownDiffs = []knownDiff[tlsDiff]{
	{"the session cookie is the gateway's, Secure and HttpOnly over TLS; behind nginx PHP's own is neither (php.ini's session.cookie_secure and session.cookie_httponly are off)", func(d tlsDiff) bool {
		return d.probe == "session cookie" && d.nginx == "PHPSESSID Secure=false HttpOnly=false" && d.gw == "sessionid Secure=true HttpOnly=true"
	}},
}

// TestNginxTLSLeafOnlyDiff: configured with certbot's cert.pem (the
// site's certificate alone) where fullchain.pem belongs, both serve the
// certificate without its intermediate, and clients that do not fetch it
// themselves (curl, Go, Python) refuse both, while browsers show the
// site. nginx says nothing; the gateway warns at start, naming the
// variable and what to name instead.
func TestNginxTLSLeafOnlyDiff(t *testing.T) {
	t.Parallel()
	harness.Require(t, "nginx", "curl")
	s := &tlsDiffSetup{ca: newTLSDiffCA(t)}
	f := s.ca.issue(t, false, "shop.example", "localhost")
	dir := t.TempDir()
	leaf, _, _ := bytes.Cut(f.fullchain, []byte("-----END CERTIFICATE-----\n"))
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "privkey.pem")
	for p, b := range map[string][]byte{cert: append(leaf, "-----END CERTIFICATE-----\n"...), key: f.privkey} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ng := harness.StartNginx(t, 1, func(addrs []string) string {
		return tlsDiffNginxSSL + fmt.Sprintf(`
    server {
        listen %s ssl http2;
        ssl_certificate %s;
        ssl_certificate_key %s;
        location / { return 204; }
    }
`, addrs[0], cert, key)
	})
	gw := startBinary(t, buildGateway(t), []string{"SESSIONGATE_PHP_FPM=127.0.0.1:9", "SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
		"SESSIONGATE_SESSIONS=off", "SESSIONGATE_TLS_CERT=" + cert, "SESSIONGATE_TLS_KEY=" + key})
	gwAddr := strings.TrimPrefix(gw.URL, "http://")
	for _, probe := range []struct {
		name string
		run  func(addr string) string
	}{
		{"curl", func(addr string) string { return s.curlOutcome(t, addr, "/") }},
		{"Go", func(addr string) string { return tlsHandshake(addr, s.client(nil), false) }},
		{"chain", func(addr string) string {
			return s.chainSent(t, addr)
		}},
	} {
		if n, g := probe.run(ng.Addrs[0]), probe.run(gwAddr); n != g {
			t.Errorf("%s: nginx %q, gateway %q", probe.name, n, g)
		} else if strings.HasPrefix(n, "HTTP/") || strings.HasPrefix(n, "TLS") {
			t.Errorf("%s: served to a client that trusts the root only: %q", probe.name, n)
		}
	}
	line := waitForLog(t, gw.stderr, "TLS certificate chain incomplete")
	if !strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, "SESSIONGATE_TLS_CERT") || !strings.Contains(line, "fullchain.pem") {
		t.Errorf("warning at start: %s", line)
	}
}

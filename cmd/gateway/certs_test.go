package main

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testtls"
)

// copyPair writes the certificate and key files of another pair over
// cert and key, as a renewal hook does.
func copyPair(t *testing.T, cert, key, fromCert, fromKey string) {
	t.Helper()
	for dst, src := range map[string]string{cert: fromCert, key: fromKey} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCertReloadRefusesExpired: a renewal hook that copies the wrong
// files (an old one from certbot's archive, a backup) and sends SIGHUP
// swapped an expired certificate in for a valid one, which every browser
// then refused until the next reload, while the log said "reloaded". The
// expired pair is refused, naming the variable and the date, and the
// valid one stays; a valid pair after it is taken.
func TestCertReloadRefusesExpired(t *testing.T) {
	cert, key := testtls.Pair(t)
	c, err := loadCertFiles(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	first := c.current.Load()
	expiredCert, expiredKey := testtls.PairValid(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	copyPair(t, cert, key, expiredCert, expiredKey)
	err = c.reload()
	if err == nil || !strings.Contains(err.Error(), "SESSIONGATE_TLS_CERT") || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("reload of an expired certificate: %v, want an error naming SESSIONGATE_TLS_CERT and the expiry", err)
	}
	if c.current.Load() != first {
		t.Fatal("the expired certificate replaced the valid one")
	}
	// Nor one valid only from tomorrow: browsers would refuse it today.
	laterCert, laterKey := testtls.PairValid(t, time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour))
	copyPair(t, cert, key, laterCert, laterKey)
	err = c.reload()
	if err == nil || !strings.Contains(err.Error(), "SESSIONGATE_TLS_CERT") || !strings.Contains(err.Error(), "valid only from") {
		t.Fatalf("reload of a certificate not valid yet: %v, want an error naming SESSIONGATE_TLS_CERT and the date", err)
	}
	if c.current.Load() != first {
		t.Fatal("a certificate not valid yet replaced the valid one")
	}
	freshCert, freshKey := testtls.Pair(t)
	copyPair(t, cert, key, freshCert, freshKey)
	if err := c.reload(); err != nil {
		t.Fatalf("reload of a valid certificate: %v", err)
	}
	if c.current.Load() == first {
		t.Fatal("the valid renewal was not taken")
	}
}

// TestCertExpiredAtStartStillServes: an expired certificate at start is
// loaded (the plain-HTTP listener must still answer the ACME challenge that
// renews it) and reported by expired, for the warning at start.
func TestCertExpiredAtStartStillServes(t *testing.T) {
	cert, key := testtls.PairValid(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	c, err := loadCertFiles(cert, key)
	if err != nil {
		t.Fatalf("an expired certificate at start: %v", err)
	}
	if err := c.expired(time.Now()); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired() = %v", err)
	}
	valid, validKey := testtls.Pair(t)
	if c, err = loadCertFiles(valid, validKey); err != nil || c.expired(time.Now()) != nil {
		t.Errorf("a valid certificate: %v, expired() = %v", err, c.expired(time.Now()))
	}
}

// TestPublicTLSConfigALPN: a client offering only "http/1.0" in ALPN
// (curl --http1.0) was refused with no_application_protocol, where nginx
// serves it; h2 and http/1.1 are agreed as before, and a protocol that is
// no HTTP is still refused.
func TestPublicTLSConfigALPN(t *testing.T) {
	cert, key := testtls.Pair(t)
	certs, err := loadCertFiles(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		offer []string
		want  string // "" = refused
	}{
		{[]string{"http/1.0"}, "http/1.0"},
		{[]string{"http/1.1", "http/1.0"}, "http/1.1"},
		{[]string{"h2", "http/1.1"}, "h2"},
		{[]string{"acme-tls/1"}, ""},
	} {
		a, b := net.Pipe()
		srv := tls.Server(a, publicTLSConfig(certs))
		go srv.Handshake()
		cl := tls.Client(b, &tls.Config{InsecureSkipVerify: true, NextProtos: c.offer})
		cl.SetDeadline(time.Now().Add(5 * time.Second))
		err := cl.Handshake()
		switch {
		case c.want == "" && err == nil:
			t.Errorf("ALPN %q: agreed on %q, want a refusal", c.offer, cl.ConnectionState().NegotiatedProtocol)
		case c.want != "" && err != nil:
			t.Errorf("ALPN %q: %v, want %q", c.offer, err, c.want)
		case c.want != "" && cl.ConnectionState().NegotiatedProtocol != c.want:
			t.Errorf("ALPN %q: agreed on %q, want %q", c.offer, cl.ConnectionState().NegotiatedProtocol, c.want)
		}
		a.Close()
		b.Close()
	}
}

// TestCertReloadRefusesOtherNames: a renewal hook that installs the
// certificate of another site (certbot's other lineage, --cert-name
// reused for another domain) swapped it in on SIGHUP, and every browser
// then refused the site, as behind nginx. A certificate valid for none of
// the names of the one in use is refused, naming them; one that keeps a
// name (a name added or dropped, one under a wildcard in use) is taken.
func TestCertReloadRefusesOtherNames(t *testing.T) {
	cert, _, key := testtls.ChainFor(t, "shop.example", "www.shop.example", "*.cdn.shop.example")
	c, err := loadCertFiles(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	first := c.current.Load()
	for _, names := range [][]string{{"other.example"}, {"127.0.0.1"}, {"cdn.shop.example"}, {}} {
		otherCert, otherKey := testtls.PairFor(t, names...)
		copyPair(t, cert, key, otherCert, otherKey)
		err = c.reload()
		if err == nil || !strings.Contains(err.Error(), "SESSIONGATE_TLS_CERT") || !strings.Contains(err.Error(), "www.shop.example") {
			t.Errorf("reload of a certificate for %v: %v, want an error naming SESSIONGATE_TLS_CERT and the site's names", names, err)
		}
		if c.current.Load() != first {
			t.Fatalf("the certificate for %v replaced the site's", names)
		}
	}
	// A name under the wildcard in use too: a move from a DNS-01
	// wildcard to certbot --webroot, which cannot issue wildcards.
	for _, names := range [][]string{{"www.shop.example", "new.example"}, {"*.shop.example"}, {"*.cdn.shop.example"}, {"img.cdn.shop.example"}} {
		cert, _, key := testtls.ChainFor(t, "shop.example", "www.shop.example", "*.cdn.shop.example")
		c, err := loadCertFiles(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		keptCert, keptKey := testtls.PairFor(t, names...)
		copyPair(t, cert, key, keptCert, keptKey)
		if err := c.reload(); err != nil {
			t.Errorf("reload of a certificate for %v: %v", names, err)
		}
	}
}

// TestCertChainIncomplete: a certificate file holding the site's
// certificate alone (certbot's cert.pem named instead of fullchain.pem)
// is served without a word by nginx and was by the gateway: browsers
// fetch the missing intermediate and show the site, while curl, Python,
// Java and Android apps refuse it. It is reported, naming the variable
// and the issuer, and so is a file where no certificate after the site's
// is its issuer; a full chain and a self-signed certificate are not.
func TestCertChainIncomplete(t *testing.T) {
	chain, leafOnly, key := testtls.Chain(t)
	c, err := loadCertFiles(leafOnly, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.incomplete(); err == nil || !strings.Contains(err.Error(), "SESSIONGATE_TLS_CERT") || !strings.Contains(err.Error(), "Test Intermediate") {
		t.Errorf("the site's certificate alone: %v, want an error naming SESSIONGATE_TLS_CERT and the issuer", err)
	}
	// The site's certificate and another (the root, say) after it.
	self, selfKey := testtls.Pair(t)
	withOther := filepath.Join(t.TempDir(), "leaf-and-other.pem")
	leafPEM, err := os.ReadFile(leafOnly)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(withOther, append(leafPEM, otherPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = loadCertFiles(withOther, key); err != nil || c.incomplete() == nil {
		t.Errorf("the site's certificate and an unrelated one: %v, incomplete() = nil, want an error", err)
	}
	if c, err = loadCertFiles(chain, key); err != nil || c.incomplete() != nil {
		t.Errorf("the full chain: %v, incomplete() = %v", err, c.incomplete())
	}
	if c, err = loadCertFiles(self, selfKey); err != nil || c.incomplete() != nil {
		t.Errorf("a self-signed certificate: %v, incomplete() = %v", err, c.incomplete())
	}
}

// TestCertReloadAfterPlaceholder: a self-signed placeholder (Debian's
// snakeoil certificate, made for the host's own name) serves until
// certbot, answered on port 80, has the site's certificate; an expired
// certificate is no site's any more. Either is replaced on SIGHUP by a
// certificate for other names, as nginx reloads it: there are no names
// of a working site to keep.
func TestCertReloadAfterPlaceholder(t *testing.T) {
	snakeoil, snakeoilKey := testtls.PairFor(t, "build-host-7")
	expired, expiredKey := testtls.PairValid(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	for name, old := range map[string][2]string{"self-signed": {snakeoil, snakeoilKey}, "expired": {expired, expiredKey}} {
		c, err := loadCertFiles(old[0], old[1])
		if err != nil {
			t.Fatal(err)
		}
		site, _, siteKey := testtls.ChainFor(t, "shop.example")
		copyPair(t, old[0], old[1], site, siteKey)
		if err := c.reload(); err != nil {
			t.Errorf("%s, then the site's certificate: %v", name, err)
		}
	}
}

// TestCertUncoveredServerNames: a certificate that does not cover a name
// of SESSIONGATE_SERVER_NAMES (a placeholder before certbot's, a renewal
// hook that copied another site's files, a name added to the list and
// not to the certificate) was served without a word, and every browser
// visiting that name refused the site. uncovered names them: the exact
// names and a wildcard's subdomains the certificate does not cover, and
// not the addresses and dotless names listed for health checks and
// services, which browsers do not visit over HTTPS.
func TestCertUncoveredServerNames(t *testing.T) {
	cert, key := testtls.Pair(t) // localhost, example.com, 127.0.0.1, ::1
	c, err := loadCertFiles(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c.names = []string{"example.com", "www.example.com", "*.example.com", "example.org", "localhost", "gateway", "10.0.0.5", "[::1]"}
	if got, want := strings.Join(c.uncovered(), ","), "www.example.com,*.example.com,example.org"; got != want {
		t.Errorf("uncovered() = %q, want %q", got, want)
	}
	c.names = []string{"example.com", "localhost"}
	if got := c.uncovered(); len(got) != 0 {
		t.Errorf("uncovered() = %q, want none", got)
	}
}

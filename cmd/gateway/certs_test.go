package main

import (
	"os"
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

// TestCertWithoutItsChain: certbot writes cert.pem (the site's
// certificate alone) next to fullchain.pem, and
// SESSIONGATE_TLS_CERT=.../cert.pem loaded without a word: clients that
// do not fetch the missing intermediate themselves (curl, most API
// clients, many Android versions) refuse the site, while the browser the
// operator checks with may not. chainMissing reports a certificate a CA
// issued that comes without any other; a self-signed one and a full
// chain are fine.
func TestCertWithoutItsChain(t *testing.T) {
	for _, c := range []struct {
		name    string
		files   func() (string, string)
		missing bool
	}{
		{"leaf alone", func() (string, string) { return testtls.IssuedPair(t, false) }, true},
		{"leaf and its CA", func() (string, string) { return testtls.IssuedPair(t, true) }, false},
		{"self-signed", func() (string, string) { return testtls.Pair(t) }, false},
	} {
		cert, key := c.files()
		cf, err := loadCertFiles(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.chainMissing(); got != c.missing {
			t.Errorf("%s: chainMissing() = %v, want %v", c.name, got, c.missing)
		}
	}
}

// Package testtls makes the self-signed certificate files the tests of
// TLS settings need (the configuration checks, the real binary serving
// HTTPS, the example systemd environment).
package testtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Pair writes a fresh self-signed certificate and its key as PEM files in
// a temporary directory of t and returns their paths. The certificate is
// valid for an hour either side of now, for localhost, example.com,
// 127.0.0.1 and ::1, so a client can trust it by adding it as a root and
// reach a loopback listener by name or address.
func Pair(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	return PairValid(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// PairValid is Pair with a certificate valid from notBefore to notAfter:
// an expired one, for the tests of a renewal gone wrong.
func PairValid(t testing.TB, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	return write(t, notBefore, notAfter, []string{"localhost", "example.com"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
}

// PairFor is Pair with a certificate for names alone (host names, and
// IP addresses as such): a renewal for other names than the site's.
func PairFor(t testing.TB, names ...string) (certFile, keyFile string) {
	t.Helper()
	var dns []string
	var ips []net.IP
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return write(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), dns, ips)
}

func write(t testing.TB, notBefore, notAfter time.Time, dns []string, ips []net.IP) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

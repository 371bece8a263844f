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
	dns, ips := splitNames(names)
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

// Chain writes a certificate for localhost and 127.0.0.1 signed by an
// intermediate ("Test Intermediate") that a root signs, as a public CA
// issues one, and returns the file with the certificate and the
// intermediate (certbot's fullchain.pem), the one with the certificate
// alone (cert.pem) and the key.
func Chain(t testing.TB) (fullchain, leafOnly, keyFile string) {
	t.Helper()
	return ChainFor(t, "localhost", "127.0.0.1")
}

// ChainFor is Chain with a certificate for names (host names, and IP
// addresses as such).
func ChainFor(t testing.TB, names ...string) (fullchain, leafOnly, keyFile string) {
	t.Helper()
	dns, ips := splitNames(names)
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	issue := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	now := time.Now()
	ca := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}
	}
	rootKey, interKey, leafKey := newKey(), newKey(), newKey()
	rootTmpl := ca(1, "Test Root")
	root := issue(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	inter := issue(ca(2, "Test Intermediate"), root, &interKey.PublicKey, rootKey)
	leaf := issue(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: dns,
		IPAddresses: ips}, inter, &leafKey.PublicKey, interKey)
	kb, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := func(cs ...*x509.Certificate) []byte {
		var b []byte
		for _, c := range cs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return b
	}
	dir := t.TempDir()
	fullchain, leafOnly, keyFile = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "privkey.pem")
	for path, b := range map[string][]byte{fullchain: certPEM(leaf, inter), leafOnly: certPEM(leaf),
		keyFile: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return fullchain, leafOnly, keyFile
}

// splitNames sorts a certificate's names into host names and IP
// addresses, as x509 keeps them apart.
func splitNames(names []string) (dns []string, ips []net.IP) {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

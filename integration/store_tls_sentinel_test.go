package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/sessionbridge/store/redisstore"
)

// selfSigned writes a self-signed certificate for dns and ips, and its key,
// into dir; it returns their paths and the PEM of the certificate.
func selfSigned(t *testing.T, dir, name string, dns []string, ips []net.IP) (certFile, keyFile string, certPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: dns, IPAddresses: ips,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, certPEM
}

// TestStoreRedisTLSSentinelChecksFirstHost: README "Store": with
// rediss-sentinel:// every node's certificate is checked against the
// first host of the URL. A master whose certificate names only itself
// (here 127.0.0.1, where the URL names the Sentinel as localhost) cannot
// be reached from the start, not only after a failover.
func TestStoreRedisTLSSentinelChecksFirstHost(t *testing.T) {
	t.Parallel()
	harness.Require(t, "redis-server")
	dir := t.TempDir()
	sCert, sKey, sPEM := selfSigned(t, dir, "sentinel", []string{"localhost"}, nil)
	mCert, mKey, mPEM := selfSigned(t, dir, "master", nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, append(append([]byte{}, sPEM...), mPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	m := harness.StartRedis(t)
	mPort := harness.FreePort(t)
	for _, kv := range [][2]string{{"tls-cert-file", mCert}, {"tls-key-file", mKey}, {"tls-ca-cert-file", ca}, {"tls-auth-clients", "no"}, {"tls-port", strconv.Itoa(mPort)}} {
		if out, err := m.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
			t.Skipf("CONFIG SET %s: %v %s (redis-server without TLS?)", kv[0], err, out)
		}
	}
	sPort := harness.FreePort(t)
	conf := fmt.Sprintf("port 0\ntls-port %d\nbind 127.0.0.1\ndir %s\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\ntls-replication yes\nsentinel monitor mymaster 127.0.0.1 %d 1\n",
		sPort, dir, sCert, sKey, ca, mPort)
	confPath := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(harness.Bin(t, "redis-server"), confPath, "--sentinel")
	log, err := os.Create(filepath.Join(dir, "sentinel.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sPEM)
	pool.AppendCertsFromPEM(mPEM)
	url := "rediss-sentinel://localhost:" + strconv.Itoa(sPort) + "?master=mymaster"
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		rc, oerr := redisstore.OpenClient(url, redisstore.WithTimeouts(time.Second, time.Second, time.Second), redisstore.WithTLSConfig(&tls.Config{RootCAs: pool}))
		if oerr != nil {
			t.Fatal(oerr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = rc.Ping(ctx).Err()
		cancel()
		rc.Close()
		if err != nil && strings.Contains(err.Error(), "certificate") {
			break
		}
		t.Logf("ping: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "wanted to match localhost") {
		t.Fatalf("master whose certificate does not name the URL's first host: ping %v, want a certificate error naming localhost", err)
	}

	// The README's remedy: the master's certificate names that host too.
	shared, sharedKey, sharedPEM := selfSigned(t, dir, "shared", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if out, err := m.Do("CONFIG", "SET", "tls-cert-file", shared, "tls-key-file", sharedKey); err != nil {
		t.Fatalf("CONFIG SET tls-cert-file tls-key-file: %v %s", err, out)
	}
	pool.AppendCertsFromPEM(sharedPEM)
	rc, err := redisstore.OpenClient(url, redisstore.WithTimeouts(time.Second, time.Second, time.Second), redisstore.WithTLSConfig(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("master certificate naming the URL's first host: %v", err)
	}
}

package integration

import (
	"bytes"
	"crypto/tls"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testtls"
)

// TestTLSExpiredCertificate runs the real binary: an expired certificate at
// start is served, with a warning naming the variable (the plain-HTTP
// listener must still answer the ACME challenge that renews it, as nginx
// starts with one); a valid one then comes with SIGHUP; an expired one
// after it, as a renewal hook copying an old file from certbot's archive
// would leave, is refused with the date in the log, and the valid one
// stays in use, as it does when a certificate valid only from tomorrow
// comes. Before, SIGHUP swapped the expired certificate in and logged
// "reloaded", and every browser refused the site.
func TestTLSExpiredCertificate(t *testing.T) {
	t.Parallel()
	cert, key := testtls.PairValid(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	p, addr, _ := startPHPBinary(t, "SESSIONGATE_TLS_CERT="+cert, "SESSIONGATE_TLS_KEY="+key)
	served := func() []byte {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	install := func(fromCert, fromKey string) {
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
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	if line := waitForLog(t, p.stderr, "TLS certificate expired"); !strings.Contains(line, "SESSIONGATE_TLS_CERT") || !strings.Contains(line, `"level":"WARN"`) {
		t.Errorf("warning at start: %s", line)
	}
	expired := served()

	validCert, validKey := testtls.Pair(t)
	install(validCert, validKey)
	waitForLog(t, p.stderr, "TLS certificate reloaded")
	valid := served()
	if bytes.Equal(valid, expired) {
		t.Fatal("still the expired certificate after a valid renewal")
	}

	oldCert, oldKey := testtls.PairValid(t, time.Now().Add(-72*time.Hour), time.Now().Add(-time.Minute))
	install(oldCert, oldKey)
	line := waitForLog(t, p.stderr, "TLS certificate not reloaded")
	if !strings.Contains(line, "SESSIONGATE_TLS_CERT") || !strings.Contains(line, "expired on") {
		t.Errorf("refused reload logged as %s", line)
	}
	if !bytes.Equal(served(), valid) {
		t.Error("an expired certificate replaced the valid one on SIGHUP")
	}
	laterCert, laterKey := testtls.PairValid(t, time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour))
	install(laterCert, laterKey)
	line = waitForLog(t, p.stderr, "valid only from")
	if !strings.Contains(line, "TLS certificate not reloaded") || !strings.Contains(line, "SESSIONGATE_TLS_CERT") {
		t.Errorf("refused reload of a certificate not valid yet logged as %s", line)
	}
	if !bytes.Equal(served(), valid) {
		t.Error("a certificate not valid yet replaced the valid one on SIGHUP")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if c := p.wait(t, 10*time.Second); c != 0 {
		t.Errorf("exit %d", c)
	}
}

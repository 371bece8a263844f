package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// certFiles serves the TLS certificate and key files and reads them again
// on SIGHUP: certbot, acme.sh and lego renew the files in place and then
// signal the server, as nginx reloads on SIGHUP. A pair that fails to load,
// or whose certificate has expired, is logged and the one in use stays, so
// a broken renewal never takes the site down.
type certFiles struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
	// names are SESSIONGATE_SERVER_NAMES as config.HostNames spells
	// them, for uncovered.
	names []string
}

// loadCertFiles loads the pair to start with. An expired certificate is
// loaded all the same (see expired): without it the plain-HTTP listener
// would not run to answer the ACME challenge that renews it.
func loadCertFiles(certFile, keyFile string) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile}
	pair, err := c.load()
	if err != nil {
		return nil, err
	}
	c.current.Store(pair)
	return c, nil
}

// reload replaces the pair in use with the files' current contents, unless
// they fail to load or the certificate has expired: a renewal hook that
// copied an old certificate from certbot's archive, or a backup, swapped
// it in for a valid one, which every browser then refused. Nor one not
// valid yet while the one in use is (a certificate issued for a later
// date, or this machine's clock behind): browsers would refuse it until
// then.
func (c *certFiles) reload() error {
	pair, err := c.load()
	if err != nil {
		return err
	}
	now := time.Now()
	if err := c.pairExpired(pair, now); err != nil {
		return err
	}
	if now.Before(pair.Leaf.NotBefore) && c.pairExpired(c.current.Load(), now) == nil {
		return fmt.Errorf("SESSIONGATE_TLS_CERT=%q: the new certificate is valid only from %s, and this machine's clock says %s; send SIGHUP again once it is valid",
			c.certFile, pair.Leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if err := c.namesLost(c.current.Load(), pair); err != nil {
		return err
	}
	c.current.Store(pair)
	return nil
}

// namesLost refuses a pair valid for none of the names (host names and
// addresses) the one in use is valid for: a renewal hook that installed
// another site's certificate (another certbot lineage, --cert-name reused
// for another domain) made every browser refuse the site, as nginx
// reloads it. A pair that keeps one of them (a name added or dropped,
// a wildcard's name under it) is taken; a site that moves to other names
// restarts the gateway. A self-signed certificate in use (a placeholder
// such as Debian's snakeoil, until certbot has the site's) or an expired
// one has no names of a working site to keep: any pair replaces it.
func (c *certFiles) namesLost(old, pair *tls.Certificate) error {
	names := certNames(old.Leaf)
	if len(names) == 0 || selfSigned(old.Leaf) || c.pairExpired(old, time.Now()) != nil {
		return nil
	}
	for _, n := range names {
		if pair.Leaf.VerifyHostname(coveredBy(n)) == nil {
			return nil
		}
	}
	// Or a name of the new pair the one in use covers: a move from a
	// wildcard (DNS-01) to one of its names (certbot --webroot, which
	// cannot issue wildcards) keeps that site's name.
	for _, n := range certNames(pair.Leaf) {
		if old.Leaf.VerifyHostname(coveredBy(n)) == nil {
			return nil
		}
	}
	now := strings.Join(certNames(pair.Leaf), ", ")
	if now == "" {
		now = "no host name (no Subject Alternative Name)"
	}
	return fmt.Errorf("SESSIONGATE_TLS_CERT=%q: the new certificate is for %s, none of the names of the one in use (%s), which browsers would then refuse; restart the gateway to move the site to other names",
		c.certFile, now, strings.Join(names, ", "))
}

// coveredBy is a host name that a certificate valid for name must cover:
// name itself, or for a wildcard one of the names under it.
func coveredBy(name string) string {
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		return "sessiongate-check." + rest
	}
	return name
}

// selfSigned reports a certificate that is its own issuer: a placeholder
// or a test's, with no chain to send and no site's names to keep.
func selfSigned(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, cert.RawSubject)
}

// certNames are the host names and addresses cert is valid for.
func certNames(cert *x509.Certificate) []string {
	names := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

func (c *certFiles) load() (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// crypto/tls errors name files and PEM block types, never key bytes.
		return nil, fmt.Errorf("SESSIONGATE_TLS_CERT=%q, SESSIONGATE_TLS_KEY=%q: %w", c.certFile, c.keyFile, err)
	}
	if pair.Leaf == nil {
		// Set by LoadX509KeyPair unless GODEBUG x509keypairleaf=0.
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("SESSIONGATE_TLS_CERT=%q: %w", c.certFile, err)
		}
	}
	return &pair, nil
}

// expired reports the certificate in use as expired at now, or returns
// nil, for the warning at start.
func (c *certFiles) expired(now time.Time) error {
	return c.pairExpired(c.current.Load(), now)
}

// incomplete reports a certificate file without the intermediate that
// signs the site's certificate (certbot's cert.pem named where
// fullchain.pem belongs, or the site's certificate followed by the root
// alone), or returns nil. Browsers fetch a missing intermediate
// themselves and show the site, so it looks fine; curl, Python, Java,
// Android apps and API clients refuse it. nginx serves such a file
// without a word.
func (c *certFiles) incomplete() error {
	pair := c.current.Load()
	leaf := pair.Leaf
	if selfSigned(leaf) {
		return nil // no issuer to send
	}
	for _, der := range pair.Certificate[1:] {
		if cert, err := x509.ParseCertificate(der); err == nil && bytes.Equal(cert.RawSubject, leaf.RawIssuer) {
			return nil
		}
	}
	return fmt.Errorf("SESSIONGATE_TLS_CERT=%q lacks the certificate of %q, the issuer of the site's certificate, which must follow it", c.certFile, leaf.Issuer.CommonName)
}

func (c *certFiles) pairExpired(pair *tls.Certificate, now time.Time) error {
	if now.After(pair.Leaf.NotAfter) {
		return fmt.Errorf("SESSIONGATE_TLS_CERT=%q: the certificate expired on %s", c.certFile, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// publicTLSConfig is the public listener's TLS configuration. "h2" in
// NextProtos has Serve set HTTP/2 up, as ServeTLS does. "http/1.0" is
// there for the clients that offer it alone (curl --http1.0, curl -0):
// crypto/tls refuses a client whose ALPN list it has no entry of
// (no_application_protocol), where nginx, which lists it, serves them.
// net/http serves it as the HTTP/1.x it is.
func publicTLSConfig(certs *certFiles) *tls.Config {
	return &tls.Config{GetCertificate: certs.getCertificate, NextProtos: []string{"h2", "http/1.1", "http/1.0"}}
}

// uncovered returns the names of c.names the certificate in use does not
// cover, for a warning at start and after a reload: every browser refuses
// HTTPS there. A wildcard's subdomains count as one name. Addresses and
// names without a dot (health checks, services between containers) are
// left out: browsers do not visit them over HTTPS. Not a refusal: a
// placeholder certificate is what a site starts with until certbot's
// first one, which the port-80 listener's ACME challenge needs it running
// for.
func (c *certFiles) uncovered() []string {
	leaf := c.current.Load().Leaf
	var out []string
	for _, n := range c.names {
		host := coveredBy(n)
		if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil || !strings.Contains(host, ".") {
			continue
		}
		if leaf.VerifyHostname(host) != nil {
			out = append(out, n)
		}
	}
	return out
}

// warnMisfit logs what clients will refuse about the certificate in
// use: names of SESSIONGATE_SERVER_NAMES it does not cover (uncovered),
// and a file without the chain (incomplete).
func (c *certFiles) warnMisfit(log *slog.Logger) {
	if names := c.uncovered(); len(names) > 0 {
		log.Warn("the TLS certificate does not cover these names of SESSIONGATE_SERVER_NAMES: browsers refuse HTTPS on them",
			"cert", c.certFile, "names", strings.Join(names, ","))
	}
	if err := c.incomplete(); err != nil {
		log.Warn("TLS certificate chain incomplete: browsers cope, but curl, Python, Java and mobile apps refuse HTTPS; name the full chain (certbot's fullchain.pem, not cert.pem)", "error", err.Error())
	}
}

func (c *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// reloadOnHangup handles the SIGHUPs hup receives until ctx ends. Go's
// default for SIGHUP is to exit without draining, which a renewal hook or
// a closed terminal would trigger; here it reloads the certificate (certs
// may be nil: no TLS) and nothing else, since the rest of the
// configuration is read once.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, certs *certFiles, log *slog.Logger) {
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			if certs == nil {
				log.Info("SIGHUP: no TLS certificate to reload; other settings take a restart")
				continue
			}
			if err := certs.reload(); err != nil {
				log.Error("SIGHUP: TLS certificate not reloaded; the previous one stays in use", "error", err.Error())
				continue
			}
			log.Info("SIGHUP: TLS certificate reloaded", "cert", certs.certFile, "not_after", certs.current.Load().Leaf.NotAfter)
			certs.warnMisfit(log)
		}
	}()
}

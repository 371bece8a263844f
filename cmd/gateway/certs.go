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
// it in for a valid one, which every browser then refused.
func (c *certFiles) reload() error {
	pair, err := c.load()
	if err != nil {
		return err
	}
	if err := c.pairExpired(pair, time.Now()); err != nil {
		return err
	}
	c.current.Store(pair)
	return nil
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

func (c *certFiles) pairExpired(pair *tls.Certificate, now time.Time) error {
	if now.After(pair.Leaf.NotAfter) {
		return fmt.Errorf("SESSIONGATE_TLS_CERT=%q: the certificate expired on %s", c.certFile, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
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
		host := n
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			host = "sessiongate-check." + rest
		}
		if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil || !strings.Contains(host, ".") {
			continue
		}
		if leaf.VerifyHostname(host) != nil {
			out = append(out, n)
		}
	}
	return out
}

// chainMissing reports a certificate in use that a CA issued and that
// comes alone, without the certificates of its issuers: certbot's
// cert.pem where fullchain.pem was meant. Browsers that fetch the missing
// intermediate themselves show the site; curl, Go's and most API clients,
// and many Android versions refuse it. A self-signed certificate (a
// placeholder, a test) needs no chain.
func (c *certFiles) chainMissing() bool {
	pair := c.current.Load()
	return len(pair.Certificate) == 1 && !bytes.Equal(pair.Leaf.RawIssuer, pair.Leaf.RawSubject)
}

// warnMisfit logs what clients will refuse about the certificate in
// use: uncovered's names, and a missing chain.
func (c *certFiles) warnMisfit(log *slog.Logger) {
	if names := c.uncovered(); len(names) > 0 {
		log.Warn("the TLS certificate does not cover these names of SESSIONGATE_SERVER_NAMES: browsers refuse HTTPS on them",
			"cert", c.certFile, "names", strings.Join(names, ","))
	}
	if c.chainMissing() {
		log.Warn("SESSIONGATE_TLS_CERT holds the site's certificate alone, without the intermediate certificates of its issuer: "+
			"clients that do not fetch them (curl, API clients, many Android versions) refuse HTTPS; give the whole chain, certbot's fullchain.pem rather than cert.pem",
			"cert", c.certFile, "issuer", c.current.Load().Leaf.Issuer.String())
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

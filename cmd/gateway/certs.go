package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
)

// certFiles serves the TLS certificate and key files and reads them again
// on SIGHUP: certbot, acme.sh and lego renew the files in place and then
// signal the server, as nginx reloads on SIGHUP. A pair that fails to load
// is logged and the one in use stays, so a broken renewal never takes the
// site down.
type certFiles struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

func loadCertFiles(certFile, keyFile string) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certFiles) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// crypto/tls errors name files and PEM block types, never key bytes.
		return fmt.Errorf("SESSIONGATE_TLS_CERT=%q, SESSIONGATE_TLS_KEY=%q: %w", c.certFile, c.keyFile, err)
	}
	c.current.Store(&pair)
	return nil
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
			attrs := []any{"cert", certs.certFile}
			if leaf := certs.current.Load().Leaf; leaf != nil {
				attrs = append(attrs, "not_after", leaf.NotAfter)
			}
			log.Info("SIGHUP: TLS certificate reloaded", attrs...)
		}
	}()
}

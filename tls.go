package bulkhead

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// certReloader serves the certificate of a pair of PEM files and replaces
// it when asked to reload them: a renewed certificate is picked up without
// a restart. A reload that fails (a missing file, a key that does not
// match, a certificate already expired) keeps the certificate it had.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	c, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert.Store(c)
	return r, nil
}

// load reads and checks the pair.
func (r *certReloader) load() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		c.Leaf = leaf
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, fmt.Errorf("TLS certificate: expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &c, nil
}

// reload replaces the served certificate with the files' current pair, or
// logs why it cannot and keeps the old one.
func (r *certReloader) reload() error {
	c, err := r.load()
	if err != nil {
		r.log.Error("TLS certificate not reloaded; still serving the previous one", "cert_file", r.certFile, "err", err)
		return err
	}
	r.cert.Store(c)
	r.log.Info("TLS certificate reloaded", "cert_file", r.certFile, "subject", c.Leaf.Subject.String(),
		"not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := r.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no TLS certificate")
}

// tlsConfig is the server's TLS configuration: TLS 1.2 and 1.3 only, with
// the forward-secret AEAD suites of TLS 1.2 (TLS 1.3's are all of that
// kind and not configurable), and HTTP/2.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
}

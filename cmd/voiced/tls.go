package main

import (
	"crypto/tls"
	"fmt"
	"sync"
)

// certificate holds the server's TLS certificate and reloads it from its
// files on request (SIGHUP), so that a renewed certificate is served
// without a restart; live connections keep the one they started with.
// Safe for concurrent use.
type certificate struct {
	certFile, keyFile string

	mu   sync.RWMutex
	cert *tls.Certificate
}

func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again; on error the previous certificate stays.
func (c *certificate) reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c.mu.Lock()
	c.cert = &cert
	c.mu.Unlock()
	return nil
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

// config returns a TLS configuration serving the current certificate.
// It offers HTTP/1.1 only: the WebSocket upgrade needs it, and the server
// behind tls.NewListener does not speak HTTP/2.
func (c *certificate) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get, NextProtos: []string{"http/1.1"}}
}

// sipConfig returns a TLS configuration for SIP over TLS serving the
// current certificate.
func (c *certificate) sipConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}
}

// sipCertificate loads the certificate of [sip] tls_listen: [sip]'s own,
// else [server]'s (nil when SIP over TLS is not configured).
func sipCertificate(sipCert, sipKey, serverCert, serverKey, listen string) (*certificate, error) {
	if listen == "" {
		return nil, nil
	}
	if sipCert == "" {
		sipCert, sipKey = serverCert, serverKey
	}
	if sipCert == "" {
		return nil, fmt.Errorf("sip.tls_listen %q: no certificate (sip.tls_cert and sip.tls_key, or --tls-cert and --tls-key)", listen)
	}
	return loadCertificate(sipCert, sipKey)
}

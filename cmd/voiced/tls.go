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

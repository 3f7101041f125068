package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for cn and returns its files.
func writeCert(t *testing.T, dir, cn string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{cn}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cf, kf
}

func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	cf, kf := writeCert(t, dir, "one.example")
	c, err := loadCertificate(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	name := func() string {
		t.Helper()
		got, err := c.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(got.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if n := name(); n != "one.example" {
		t.Fatalf("serving %q", n)
	}
	writeCert(t, dir, "two.example")
	if err := c.reload(); err != nil {
		t.Fatal(err)
	}
	if n := name(); n != "two.example" {
		t.Fatalf("after reload serving %q, want two.example", n)
	}
	os.WriteFile(cf, []byte("garbage"), 0o600)
	if err := c.reload(); err == nil {
		t.Fatal("reload of a broken file succeeded")
	}
	if n := name(); n != "two.example" {
		t.Fatalf("a failed reload replaced the certificate: %q", n)
	}
}

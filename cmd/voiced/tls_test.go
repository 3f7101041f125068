package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
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

// TestTLSServes: a client trusting the certificate gets HTTPS from an
// http.Server on the certificate's listener, as serve builds it.
func TestTLSServes(t *testing.T) {
	cf, kf := writeCert(t, t.TempDir(), "localhost")
	c, err := loadCertificate(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })}
	go srv.Serve(tls.NewListener(ln, c.config()))
	defer srv.Close()
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cf)
	pool.AppendCertsFromPEM(pem)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, ForceAttemptHTTP2: true}}
	resp, err := cl.Get("https://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "HTTP/1.1" {
		t.Fatalf("served %q, want HTTP/1.1 (WebSocket upgrades need it)", b)
	}
}

// SIP over TLS serves [sip]'s own certificate, else the server's, and
// refuses to start with neither.
func TestSIPCertificate(t *testing.T) {
	sipDir, srvDir := t.TempDir(), t.TempDir()
	scf, skf := writeCert(t, sipDir, "sip.example")
	hcf, hkf := writeCert(t, srvDir, "www.example")
	cn := func(c *certificate) string {
		t.Helper()
		got, err := c.sipConfig().GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(got.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if c, err := sipCertificate(scf, skf, hcf, hkf, "127.0.0.1:5061"); err != nil || cn(c) != "sip.example" {
		t.Errorf("own certificate: %v", err)
	}
	if c, err := sipCertificate("", "", hcf, hkf, "127.0.0.1:5061"); err != nil || cn(c) != "www.example" {
		t.Errorf("server's certificate: %v", err)
	}
	if _, err := sipCertificate("", "", "", "", "127.0.0.1:5061"); err == nil {
		t.Error("no certificate accepted")
	}
	if c, err := sipCertificate(scf, skf, "", "", ""); c != nil || err != nil {
		t.Errorf("no tls_listen: %v, %v", c, err)
	}
}

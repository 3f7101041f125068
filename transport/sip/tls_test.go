package sip

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/transport"
)

// testCertificate makes a CA and a server certificate for 127.0.0.1 and
// "localhost" signed by it, for an hour. It returns the server's
// certificate and the path of the CA's PEM file (for the peer to trust).
func testCertificate(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "voiced test CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, caFile
}

// Listening for TLS without a certificate is refused with a reason.
func TestListenTLSNeedsCertificate(t *testing.T) {
	s, err := NewServer(Config{}, newFactory().run)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	if _, err := s.Listen(t.Context(), "tls", "127.0.0.1:0"); err == nil {
		t.Fatal("listening for TLS without a certificate succeeded")
	}
}

// tlsUAC is a caller over one TLS connection: SIP messages are framed by
// Content-Length on the stream.
type tlsUAC struct {
	t    *testing.T
	conn *tls.Conn
	r    *bufio.Reader
}

func (u *tlsUAC) send(msg string) {
	u.t.Helper()
	if _, err := u.conn.Write([]byte(strings.ReplaceAll(msg, "\n", "\r\n"))); err != nil {
		u.t.Fatal(err)
	}
}

// read returns the next message's start line and whole text.
func (u *tlsUAC) read(d time.Duration) (string, string) {
	u.t.Helper()
	u.conn.SetReadDeadline(time.Now().Add(d))
	var head strings.Builder
	size := 0
	for {
		line, err := u.r.ReadString('\n')
		if err != nil {
			u.t.Fatalf("reading a message: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if head.Len() <= 2 { // keep-alive CRLF
				head.Reset()
				continue
			}
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && (strings.EqualFold(k, "Content-Length") || k == "l") {
			size, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(u.r, body); err != nil {
		u.t.Fatal(err)
	}
	msg := head.String() + string(body)
	start, _, _ := strings.Cut(msg, "\r\n")
	return start, msg
}

func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// A call over TLS is answered with a Contact that says transport=tls, and
// when voiced ends the call its BYE comes back over the caller's own TLS
// connection (a caller behind NAT has no other way in).
func TestTLSCallEndedByVoiced(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := testCertificate(t, dir)
	pool := x509.NewCertPool()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	ended := make(chan error, 1)
	// The session ends by itself half a second after the answer.
	run := func(ctx context.Context, s *transport.Session) error {
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		err := runSession(ctx, s, s.Input, s.Output)
		ended <- err
		return nil
	}
	srv, _ := startServer(t, Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}, run)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := srv.Listen(ctx, "tls", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", addr.String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	u := &tlsUAC{t: t, conn: conn, r: bufio.NewReader(conn)}
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtp.Close()
	local := conn.LocalAddr().String()
	body := strings.ReplaceAll(offerSDP(rtp.LocalAddr().(*net.UDPAddr).AddrPort(), "0"), "\n", "\r\n")
	u.send(fmt.Sprintf(`INVITE sip:demo@%[1]s;transport=tls SIP/2.0
Via: SIP/2.0/TLS %[2]s;branch=z9hG4bK-tls-1
Max-Forwards: 70
From: <sip:uac@127.0.0.1>;tag=tls1
To: <sip:demo@%[1]s>
Call-ID: tls-call-1@test
CSeq: 1 INVITE
Contact: <sip:uac@%[2]s;transport=tls>
Content-Type: application/sdp
Content-Length: %[3]d

`, addr, local, len(body)) + strings.ReplaceAll(body, "\r\n", "\n"))
	var ok string
	for {
		start, msg := u.read(5 * time.Second)
		if strings.HasPrefix(start, "SIP/2.0 1") {
			continue
		}
		if start != "SIP/2.0 200 OK" {
			t.Fatalf("INVITE answered %q", start)
		}
		ok = msg
		break
	}
	if c := header(ok, "Contact"); !strings.Contains(c, "transport=tls") {
		t.Errorf("Contact %q of the answer does not say transport=tls", c)
	}
	u.send(fmt.Sprintf(`ACK sip:demo@%[1]s;transport=tls SIP/2.0
Via: SIP/2.0/TLS %[2]s;branch=z9hG4bK-tls-2
Max-Forwards: 70
From: <sip:uac@127.0.0.1>;tag=tls1
To: %[3]s
Call-ID: tls-call-1@test
CSeq: 1 ACK
Content-Length: 0

`, addr, local, header(ok, "To")))
	start, bye := u.read(5 * time.Second)
	if !strings.HasPrefix(start, "BYE ") {
		t.Fatalf("got %q from voiced, want its BYE", start)
	}
	if v := header(bye, "Via"); !strings.Contains(v, "SIP/2.0/TLS") {
		t.Errorf("BYE's Via %q: not sent over TLS", v)
	}
	u.send(fmt.Sprintf("SIP/2.0 200 OK\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %s\nContent-Length: 0\n\n",
		header(bye, "Via"), header(bye, "From"), header(bye, "To"), header(bye, "Call-ID"), header(bye, "CSeq")))
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the session did not end")
	}
}

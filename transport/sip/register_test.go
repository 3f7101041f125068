package sip

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// voiced registers as extension 7001 with a sipp registrar that refuses
// the first REGISTER (voiced retries), challenges every one (MD5 digest,
// checked by verifyauth), grants 2 s and expects the refresh in time; at
// Shutdown voiced removes the binding (Expires: 0).
func TestSippRegister(t *testing.T) {
	bin := requireBinary(t, "sipp", "sip-tester")
	port := freePort(t)
	dir := t.TempDir()
	scenario, err := filepath.Abs("testdata/uas_register.xml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-sf", scenario, "-m", "1", "-i", "127.0.0.1", "-p", itoa(port),
		"-timeout", "40s", "-timeout_error", "-trace_err", "-error_file", filepath.Join(dir, "err.log"), "-nostdin")
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for range 200 { // until sipp has bound its port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+itoa(port))
		if err != nil {
			break
		}
		pc.Close()
		time.Sleep(20 * time.Millisecond)
	}
	s, _ := startServer(t, Config{}, newFactory().run)
	if err := s.Register(context.Background(), Registration{Registrar: "127.0.0.1:" + itoa(port), User: "7001",
		Password: "s3cret", RetryMin: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	// Registered, then refreshed: the binding's end moves on.
	var first time.Time
	deadline := time.After(20 * time.Second)
	for {
		st := s.Registrations()[0]
		if st.Registered && first.IsZero() {
			first = st.Expires
		}
		if st.Registered && !first.IsZero() && st.Expires.After(first) {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("not registered and refreshed: %+v\n%s", st, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sipp: %v\n%s", err, out.String())
	}
}

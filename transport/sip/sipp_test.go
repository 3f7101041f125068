package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
)

func itoa(n int) string { return strconv.Itoa(n) }

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// sipp runs one sipp scenario against addr and returns its output.
func sipp(t *testing.T, ctx context.Context, addr netip.AddrPort, transportMode, scenario, user string, extra ...string) (string, error) {
	t.Helper()
	bin := requireBinary(t, "sipp", "sip-tester")
	dir := t.TempDir()
	scenario, err := filepath.Abs(scenario)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-sf", scenario, "-s", user, "-m", "1",
		"-i", "127.0.0.1", "-p", itoa(freePort(t)), "-mi", "127.0.0.1", "-mp", itoa(freePort(t)),
		"-t", transportMode, "-timeout", "40s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"),
		"-nostdin",
	}
	args = append(args, extra...)
	args = append(args, addr.String())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	logs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
	text := string(out) + "\n" + string(logs)
	if err != nil {
		return text, fmt.Errorf("sipp: %w", err)
	}
	return text, nil
}

// A caller (sipp) speaks PCMA, presses 1 2 # in RFC 4733 events and hangs
// up: the pipeline hears the speech at 16 kHz, gets each key once and the
// entry as a transcript, and the session ends on the caller's BYE.
func TestSippInboundPCMAandDTMF(t *testing.T) {
	for _, mode := range []string{"u1", "t1"} {
		t.Run(mode, func(t *testing.T) {
			fa := newFactory()
			_, addr := startServer(t, Config{}, fa.run)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := sipp(t, ctx, addr, mode, "testdata/uac_pcma_dtmf.xml", "demo")
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var r *record
			select {
			case r = <-fa.started:
			default:
				t.Fatal("no session started")
			}
			select {
			case <-r.done:
			case <-time.After(5 * time.Second):
				t.Fatal("session still running after the caller's BYE")
			}
			if !errors.Is(r.err, ErrHangup) {
				t.Errorf("session ended with %v, want %v", r.err, ErrHangup)
			}
			pcm, digits, texts := r.snapshot()
			// g711a.pcap holds 7.08 s of speech.
			if got := time.Duration(len(pcm)) * time.Second / 16000; got < 6500*time.Millisecond || got > 12*time.Second {
				t.Errorf("pipeline heard %v of audio, want about 7 s of speech and the silence after", got)
			}
			if db := audio.DBFS(pcm); db < -40 {
				t.Errorf("pipeline audio at %.1f dBFS: the speech did not arrive", db)
			}
			if digits != "12#" {
				t.Errorf("DTMF frames %q, want %q", digits, "12#")
			}
			if len(texts) != 1 || texts[0] != "DTMF: 12#" {
				t.Errorf("transcripts %q, want [%q]", texts, "DTMF: 12#")
			}
		})
	}
}

// A caller (sipp) from an allowed network authenticates with MD5 digest
// after a 401 and is answered (sipp knows no SHA-256, so the server offers
// MD5 alone); a caller from outside the allowlist gets
// 403 and no session starts.
func TestSippInboundAuth(t *testing.T) {
	for _, tc := range []struct {
		name     string
		allow    []string
		algs     []string
		scenario string
		started  bool
	}{
		{"digest md5", []string{"127.0.0.0/8"}, []string{"MD5"}, "testdata/uac_auth.xml", true},
		{"not allowed", []string{"10.0.0.0/8", "::1/128"}, nil, "testdata/uac_refused.xml", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allow, err := ParsePrefixes(tc.allow)
			if err != nil {
				t.Fatal(err)
			}
			fa := newFactory()
			_, addr := startServer(t, Config{Auth: Auth{Allow: allow, Algorithms: tc.algs,
				Users: map[string]string{"pbx": "s3cret"}}}, fa.run)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := sipp(t, ctx, addr, "u1", tc.scenario, "demo", "-au", "pbx", "-ap", "s3cret")
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			select {
			case r := <-fa.started:
				if !tc.started {
					t.Fatal("a session started for a refused caller")
				}
				<-r.done
				if !errors.Is(r.err, ErrHangup) {
					t.Errorf("session ended with %v, want %v", r.err, ErrHangup)
				}
			default:
				if tc.started {
					t.Fatal("no session started")
				}
			}
		})
	}
}

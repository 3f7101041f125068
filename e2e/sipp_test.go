package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/internal/bench"
)

// TestE2ESippPCMUSpeech is an inbound call from sipp offering PCMU only,
// whose caller speaks a sentence the test synthesized (flite, 8 kHz,
// μ-law RTP in a capture file the test writes and sipp replays with
// play_pcap_audio), to the real server: the call is answered in PCMU, the
// caller's 8 kHz audio is upsampled and reaches the recognizer, and the
// agent gets a transcript with the caller's words.
func TestE2ESippPCMUSpeech(t *testing.T) {
	bin := requireTool(t, "sipp", "sip-tester")
	dir := t.TempDir()
	said := "Hello there. What can you do for me?"
	rs, err := audio.NewResampler(16000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	pcm := append(make([]int16, 8000), rs.Process(nil, speech(t, said))...)
	pcm = append(pcm, make([]int16, 8000)...)
	capture := filepath.Join(dir, "pcmu.pcap")
	if err := os.WriteFile(capture, bench.PCMUCapture(audio.EncodeULaw(nil, pcm)), 0o644); err != nil {
		t.Fatal(err)
	}
	playMs := len(pcm) / 8 // 8 samples a millisecond
	scenario := filepath.Join(dir, "uac_pcmu.xml")
	if err := os.WriteFile(scenario, []byte(fmt.Sprintf(bench.SippCallerScenario, capture, playMs+3000)), 0o644); err != nil {
		t.Fatal(err)
	}

	seen, sipAddr := startSIP(t, 32000, 32999)

	sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer scancel()
	cmd := exec.CommandContext(sctx, bin, "-sf", scenario, "-s", "demo", "-m", "1",
		"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "-mi", "127.0.0.1", "-mp", fmt.Sprint(freePort(t)),
		"-t", "u1", "-timeout", "40s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"), "-nostdin", sipAddr)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
		t.Fatalf("sipp: %v\n%s\n%s", err, out, logs)
	}

	seen.mu.Lock()
	formats, heard := seen.formats, strings.Join(seen.heard, " ")
	seen.mu.Unlock()
	t.Logf("the agent heard %q (caller audio in formats %v)", heard, formats)
	if len(formats) == 0 {
		t.Fatal("no caller audio reached the pipeline")
	}
	if overlap(said, heard) < 2 {
		t.Errorf("the agent heard %q, want words of %q", heard, said)
	}
}

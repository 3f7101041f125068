package bench

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/testenv"
)

// TestSIPBenchSmoke runs `voiced bench sip` small against the real server
// and sipp: one voice-to-voice turn each way and one level of three calls
// of one turn. Every call and turn must be answered, and the SIP calls'
// input lateness must reach the builder's hook.
func TestSIPBenchSmoke(t *testing.T) {
	testenv.RequireModels(t)
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatal("sipp not installed (Debian package sip-tester: make deps)")
		}
		t.Skip("sipp not installed (Debian package sip-tester: make deps)")
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := RunSIP(ctx, SIPConfig{Levels: []int{3}, Rounds: 1, Rate: 10, Turns: 1, Answer: 2500 * time.Millisecond, V2V: 1,
		Speech: testenv.Speech(t, "Hello, what is the weather like today in Paris?"), Sipp: sipp, Dir: t.TempDir(),
		Logger: log, ServerLogger: log})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.SIPV2V) != 1 || len(r.WSV2V) != 1 || len(r.V2VFailures) != 0 {
		t.Errorf("voice-to-voice: SIP %v, WebSocket %v, failures %v; want one turn each", r.SIPV2V, r.WSV2V, r.V2VFailures)
	}
	for _, d := range append(r.SIPV2V, r.WSV2V...) {
		// The VAD's stop duration alone is 500 ms.
		if d < 300*time.Millisecond || d > 5*time.Second {
			t.Errorf("voice-to-voice %v, want a real turn's", d)
		}
	}
	if len(r.Levels) != 1 {
		t.Fatalf("%d levels, want 1", len(r.Levels))
	}
	lv := r.Levels[0]
	t.Logf("level: %+v", lv)
	if lv.Successful != lv.Offered || lv.Failed != 0 {
		t.Errorf("sipp: %d of %d calls successful, %d failed", lv.Successful, lv.Offered, lv.Failed)
	}
	if lv.TurnsAnswered != lv.Offered {
		t.Errorf("%d turns answered, want %d", lv.TurnsAnswered, lv.Offered)
	}
	if lv.Lateness.N != lv.Offered || lv.Frames == 0 {
		t.Errorf("input lateness from %d calls (%d frames), want %d calls", lv.Lateness.N, lv.Frames, lv.Offered)
	}
	if lv.InviteOK.N != lv.Offered {
		t.Errorf("%d INVITE → 200 OK times, want %d", lv.InviteOK.N, lv.Offered)
	}
}

package vad_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/vad"
)

// run feeds the script's chunks in real time (fake clock), pushing extra
// frames before the chunk index they are keyed by, and returns the frames
// out and the pipeline's final turn.
func run(t *testing.T, cfg vad.Config, script []float32, before map[int]frame.Frame) (*recorder, uint32) {
	t.Helper()
	m := &fakeModel{t: t, script: script, signal: ramp}
	var rec recorder
	p := pipeline.New(pipeline.Options{Sink: rec.Sink}, vad.NewDetector(m, rate, cfg))
	ctx := context.Background()
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	for i := range script {
		if f, ok := before[i]; ok {
			p.Push(ctx, f)
		}
		pcm := make([]int16, chunk)
		for j := range pcm {
			pcm[j] = ramp(i*chunk + j)
		}
		p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: pcm})
		time.Sleep(chunkD)
	}
	p.Push(ctx, &frame.End{})
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return &rec, p.Turn()
}

// TestUserSpeaking: the detector does not interrupt, and reports the voiced
// time of the user's speech on each voiced chunk.
func TestUserSpeaking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 7 voiced chunks start the turn; 8 more follow, then a pause.
		rec, turn := run(t, vad.Config{}, expand(seg{0, 5}, seg{0.9, 15}, seg{0.1, 20}), nil)
		if turn != 1 {
			t.Errorf("turn = %d, want 1: the detector must not interrupt", turn)
		}
		if n := len(find[*frame.Interruption](rec)); n != 0 {
			t.Errorf("%d Interruption frames, want 0", n)
		}
		if n := len(find[*frame.UserStartedSpeaking](rec)); n != 1 {
			t.Errorf("%d UserStartedSpeaking, want 1", n)
		}
		sp := find[*frame.UserSpeaking](rec)
		if len(sp) != 8 {
			t.Fatalf("%d UserSpeaking, want 8 (one per voiced chunk after the start)", len(sp))
		}
		for i, f := range sp {
			if want := time.Duration(8+i) * chunkD; f.Voiced != want {
				t.Errorf("UserSpeaking[%d].Voiced = %v, want %v", i, f.Voiced, want)
			}
		}
		if n := len(find[*frame.UserStoppedSpeaking](rec)); n != 1 {
			t.Errorf("%d UserStoppedSpeaking, want 1", n)
		}
	})
}

// TestBotThresholds: while the bot speaks, starting a turn needs
// BotConfidence; once it stops, Confidence again.
func TestBotThresholds(t *testing.T) {
	cfg := vad.Config{BotConfidence: 0.8}
	for _, tc := range []struct {
		name   string
		before map[int]frame.Frame
		starts int
	}{
		{"bot silent", nil, 1},
		{"bot speaking", map[int]frame.Frame{0: &frame.BotStartedSpeaking{}}, 0},
		{"bot stopped", map[int]frame.Frame{0: &frame.BotStartedSpeaking{}, 3: &frame.BotStoppedSpeaking{}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// 0.7: over Confidence (0.5), under BotConfidence.
				rec, _ := run(t, cfg, expand(seg{0, 5}, seg{0.7, 15}, seg{0, 20}), tc.before)
				if n := len(find[*frame.UserStartedSpeaking](rec)); n != tc.starts {
					t.Errorf("%d UserStartedSpeaking, want %d", n, tc.starts)
				}
				passed := len(find[*frame.BotStartedSpeaking](rec)) + len(find[*frame.BotStoppedSpeaking](rec))
				if passed != len(tc.before) {
					t.Errorf("%d bot events passed on, want %d", passed, len(tc.before))
				}
			})
		})
	}
}

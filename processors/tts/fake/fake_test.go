package fake_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/processors/tts/fake"
)

// TestTimeline: the first chunk comes FirstAudio after the call, the rest
// at the real-time factor, and the audio is as long as the text says.
func TestTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fake.New(fake.Config{FirstAudio: 150 * time.Millisecond, RTF: 0.5, PerChar: 50 * time.Millisecond})
		text := "Hello there." // 12 characters: 600 ms, 30 chunks
		start := time.Now()
		var at []time.Duration
		var n int
		err := s.Synthesize(context.Background(), text, "", func(pcm []int16) error {
			if len(pcm) != 320 {
				t.Errorf("chunk of %d samples", len(pcm))
			}
			if slices.Contains(pcm, fake.Poison) {
				t.Error("chunk holds poison")
			}
			at = append(at, time.Since(start))
			n += len(pcm)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != 600*16 || n != s.Samples(text) {
			t.Fatalf("%d samples, want %d", n, 600*16)
		}
		for k, d := range at {
			want := 150*time.Millisecond + time.Duration(k)*10*time.Millisecond
			if d != want {
				t.Fatalf("chunk %d at %v, want %v", k, d, want)
			}
		}
		if st := s.Stats(); st != (fake.Stats{Calls: 1, Chars: 12, Samples: int64(n)}) {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestAudible: the tone is loud enough for a VAD and leading-silence
// trimming, and has no long silent stretch.
func TestAudible(t *testing.T) {
	s := fake.New(fake.Config{})
	var all []int16
	s.Synthesize(context.Background(), "A sentence of some length.", "", func(pcm []int16) error {
		all = append(all, pcm...)
		return nil
	})
	for i := 0; i+320 <= len(all)-160; i += 320 {
		peak := 0
		for _, v := range all[i : i+320] {
			peak = max(peak, int(v), -int(v))
		}
		if peak < 2000 {
			t.Fatalf("chunk at %d: peak %d", i, peak)
		}
	}
}

// TestRetainedBufferIsPoisoned: a caller that keeps pcm past emit sees the
// poison pattern, so retaining is caught.
func TestRetainedBufferIsPoisoned(t *testing.T) {
	s := fake.New(fake.Config{})
	var kept []int16
	s.Synthesize(context.Background(), "Hi.", "", func(pcm []int16) error {
		if kept == nil {
			kept = pcm
		}
		return nil
	})
	if kept[0] != fake.Poison {
		t.Errorf("kept buffer starts with %d, want poison", kept[0])
	}
}

func TestChecks(t *testing.T) {
	s := fake.New(fake.Config{Voices: []string{"anna"}})
	ctx := context.Background()
	nop := func([]int16) error { return nil }
	if err := s.Synthesize(ctx, "  ", "", nop); !errors.Is(err, fake.ErrEmptyText) {
		t.Errorf("blank text: %v", err)
	}
	if err := s.Synthesize(ctx, "Hi.", "bob", nop); !errors.Is(err, fake.ErrUnknownVoice) {
		t.Errorf("unknown voice: %v", err)
	}
	if err := s.Synthesize(ctx, "Hi.", "anna", nop); err != nil {
		t.Errorf("known voice: %v", err)
	}
	boom := errors.New("boom")
	if err := s.Synthesize(ctx, "Hi.", "", func([]int16) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("emit error: %v", err)
	}
}

// TestCancel: barge-in stops synthesis at once; no chunk after the cancel.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := fake.New(fake.Config{RTF: 1})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(105*time.Millisecond, cancel)
		chunks := 0
		err := s.Synthesize(ctx, "A long answer that would take seconds to say.", "", func([]int16) error {
			chunks++
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
		if chunks != 6 { // chunks due at 0, 20, ..., 100 ms
			t.Errorf("%d chunks before the cancel, want 6", chunks)
		}
		if s.Stats().Cancelled != 1 {
			t.Errorf("stats %+v", s.Stats())
		}
	})
}

// TestConcurrent: many sessions at once (run with -race).
func TestConcurrent(t *testing.T) {
	s := fake.New(fake.Config{})
	done := make(chan int)
	for range 8 {
		go func() {
			n := 0
			s.Synthesize(context.Background(), "Twelve chars", "", func(pcm []int16) error { n += len(pcm); return nil })
			done <- n
		}()
	}
	for range 8 {
		if n := <-done; n != s.Samples("Twelve chars") {
			t.Errorf("%d samples", n)
		}
	}
}

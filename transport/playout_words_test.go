package transport

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
)

func TestPlayedWords(t *testing.T) {
	const s = "I can tell you a story about a fox"
	// 34 characters; "story" spans 17..22, its middle at 19.5.
	for _, tc := range []struct {
		played float64
		want   string
	}{
		{0, ""},
		{0.01, ""},
		{0.5 / 34, "I"}, // half of "I"
		{19.4 / 34, "I can tell you a"},
		{19.5 / 34, "I can tell you a story"},
		{1, s},
		{2, s},
	} {
		if got := PlayedWords(s, tc.played); got != tc.want {
			t.Errorf("PlayedWords(%.3f) = %q, want %q", tc.played, got, tc.want)
		}
	}
	if got := PlayedWords("  ", 1); got != "" {
		t.Errorf("PlayedWords(blank) = %q", got)
	}
}

// TestPlayoutInterruptedWords: an Interruption reports the words heard of
// the sentence being played, in proportion to its audio, in its turn.
func TestPlayoutInterruptedWords(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ended bool // the sentence's last chunk was queued
		at    time.Duration
		want  []string
	}{
		// Sentence 1 "one two" plays 0-200 ms; sentence 2 (31 characters)
		// 200-1200 ms. At 700 ms half of it played (15 characters: up to the
		// middle of "gamma"); unended, 550 of the 800 ms queued (20.6).
		{"before the middle of the first word", true, 210 * time.Millisecond, []string{"one two"}},
		{"mid sentence", true, 700 * time.Millisecond, []string{"one two", "alpha beta gamma"}},
		{"unended", false, 750 * time.Millisecond, []string{"one two", "alpha beta gamma delta"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, PlayoutConfig{Format: frame.Mono16k})
				ctx := context.Background()
				h.p.Process(ctx, &frame.TTSText{Meta: frame.Meta{Turn: 1}, Text: "one two"}, h.tape)
				h.play(1, 3200, 1, "one two")
				const second = "alpha beta gamma delta epsilon" // 30 characters
				h.p.Process(ctx, &frame.TTSText{Meta: frame.Meta{Turn: 1}, Text: second}, h.tape)
				if tc.ended {
					h.play(1, 16000, 1, second)
				} else {
					// Only 800 ms queued of it so far: the estimate uses
					// that as its length.
					h.play(1, 12800, 1, "")
				}
				time.Sleep(tc.at - time.Since(h.tape.start))
				h.rt.Interrupt("test")
				h.p.Process(ctx, &frame.Interruption{Meta: frame.Meta{Turn: 2}}, h.tape)
				h.stop()
				var got []string
				for _, x := range h.tape.all() {
					if s, ok := x.f.(*frame.BotSpoke); ok {
						got = append(got, s.Text)
						if s.Turn != 1 {
							t.Errorf("BotSpoke %q in turn %d, want 1", s.Text, s.Turn)
						}
						if x.dir != "up" {
							t.Errorf("BotSpoke sent %s", x.dir)
						}
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("spoke %q, want %q", got, tc.want)
				}
			})
		})
	}
}

type tapRec struct {
	mu  sync.Mutex
	n   int
	ats []time.Time
}

func (r *tapRec) Played(pcm []int16, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n += len(pcm)
	r.ats = append(r.ats, at)
}

// TestPlayoutTap: the tap gets every sample written, each chunk with the
// time it is due to play at the client.
func TestPlayoutTap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		rt := &fakeRuntime{ctx: ctx}
		rt.turn.Store(1)
		tp := &tape{start: time.Now()}
		p := NewPlayout(tp, PlayoutConfig{Format: frame.Mono16k})
		var rec tapRec
		p.SetTap(&rec)
		p.Start(ctx, rt, tp)
		p.Process(ctx, &frame.OutputAudio{Meta: frame.Meta{Turn: 1}, Format: frame.Mono16k, Samples: make([]int16, 8000)}, tp)
		time.Sleep(time.Second)
		cancel()
		rt.wg.Wait()
		if rec.n != 8000 {
			t.Errorf("tap got %d samples, want 8000", rec.n)
		}
		for i, at := range rec.ats {
			if want := tp.start.Add(time.Duration(i) * 20 * time.Millisecond); !at.Equal(want) {
				t.Errorf("chunk %d due at +%v, want +%v", i, at.Sub(tp.start), want.Sub(tp.start))
			}
		}
	})
}

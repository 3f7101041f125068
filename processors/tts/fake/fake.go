// Package fake is a speech synthesizer for tests and benchmarks: it speaks
// any text as a voiced-sounding tone of plausible length, taking a
// configured time to the first audio and a configured real-time factor for
// the rest, like a streaming cloud synthesizer would.
//
// It checks what it is sent: text must not be empty or blank, the voice must
// be one it knows, and emit must not keep pcm (the buffer is overwritten
// with a poison pattern after each emit returns, so a caller that keeps it
// hears garbage and a golden test catches it).
package fake

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/tts"
)

var (
	// ErrEmptyText is returned by Synthesize for blank text.
	ErrEmptyText = errors.New("tts/fake: empty text")
	// ErrUnknownVoice is returned by Synthesize for a voice not in
	// Config.Voices.
	ErrUnknownVoice = errors.New("tts/fake: unknown voice")
)

// Poison is the sample value written over a chunk after emit returns.
const Poison = -12345

// Config sets how the synthesizer sounds and how long it takes. The zero
// value speaks instantly at 16 kHz, 20 ms chunks, 60 ms of audio per
// character.
type Config struct {
	// FirstAudio is the time from the call to the first chunk (default 0).
	FirstAudio time.Duration
	// RTF is the real-time factor of the rest: producing d of audio takes
	// RTF*d (default 0: all of it at once after FirstAudio).
	RTF float64
	// PerChar is the audio length per character of text (default 60 ms,
	// about 165 words a minute).
	PerChar time.Duration
	// Chunk is the length of each emitted chunk (default 20 ms).
	Chunk time.Duration
	// SampleRate of the audio (default 16000).
	SampleRate int
	// Voices are the accepted voice names; "" is always accepted. Default:
	// "fake".
	Voices []string
}

// Synthesizer is a fake tts.Synthesizer. It is safe for concurrent use.
type Synthesizer struct {
	cfg Config

	calls, chars, samples, cancelled atomic.Int64
}

var _ tts.Synthesizer = (*Synthesizer)(nil)

// New returns a synthesizer configured by cfg.
func New(cfg Config) *Synthesizer {
	if cfg.PerChar <= 0 {
		cfg.PerChar = 60 * time.Millisecond
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = 20 * time.Millisecond
	}
	if cfg.SampleRate <= 0 {
		cfg.SampleRate = 16000
	}
	if cfg.RTF < 0 {
		cfg.RTF = 0
	}
	if len(cfg.Voices) == 0 {
		cfg.Voices = []string{"fake"}
	}
	return &Synthesizer{cfg: cfg}
}

// Format implements tts.Synthesizer: mono at Config.SampleRate.
func (s *Synthesizer) Format() frame.Format {
	return frame.Format{SampleRate: s.cfg.SampleRate, Channels: 1}
}

// Stats counts the synthesizer's work over all calls.
type Stats struct {
	Calls     int64 // Synthesize calls
	Chars     int64 // characters of text spoken
	Samples   int64 // samples emitted
	Cancelled int64 // calls stopped by their context
}

// Stats returns the counters so far.
func (s *Synthesizer) Stats() Stats {
	return Stats{Calls: s.calls.Load(), Chars: s.chars.Load(), Samples: s.samples.Load(), Cancelled: s.cancelled.Load()}
}

// Samples returns how many samples Synthesize produces for text: PerChar
// per character, whole chunks, at least one chunk.
func (s *Synthesizer) Samples(text string) int {
	chunk := s.chunkSamples()
	n := int(int64(utf8.RuneCountInString(strings.TrimSpace(text))) * int64(s.cfg.PerChar) * int64(s.cfg.SampleRate) / int64(time.Second))
	return max(1, (n+chunk-1)/chunk) * chunk
}

func (s *Synthesizer) chunkSamples() int {
	return max(1, int(int64(s.cfg.Chunk)*int64(s.cfg.SampleRate)/int64(time.Second)))
}

// Synthesize implements tts.Synthesizer. The first chunk comes FirstAudio
// after the call, chunk k (audio up to time t) at FirstAudio+RTF*t. It
// returns ctx's error as soon as ctx ends, and emit's error if emit fails.
func (s *Synthesizer) Synthesize(ctx context.Context, text, voice string, emit func(pcm []int16) error) error {
	if strings.TrimSpace(text) == "" {
		return ErrEmptyText
	}
	if voice != "" && !slices.Contains(s.cfg.Voices, voice) {
		return fmt.Errorf("%w: %q (have %s)", ErrUnknownVoice, voice, strings.Join(s.cfg.Voices, ", "))
	}
	s.calls.Add(1)
	s.chars.Add(int64(utf8.RuneCountInString(text)))
	start := time.Now()
	total, chunk := s.Samples(text), s.chunkSamples()
	buf := make([]int16, chunk)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for pos := 0; pos < total; pos += chunk {
		audioT := time.Duration(int64(pos) * int64(time.Second) / int64(s.cfg.SampleRate))
		due := start.Add(s.cfg.FirstAudio + time.Duration(s.cfg.RTF*float64(audioT)))
		if wait := time.Until(due); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-ctx.Done():
				s.cancelled.Add(1)
				return ctx.Err()
			case <-timer.C:
			}
		} else if err := ctx.Err(); err != nil {
			s.cancelled.Add(1)
			return err
		}
		tone(buf, pos, total, s.cfg.SampleRate)
		if err := emit(buf); err != nil {
			return err
		}
		s.samples.Add(int64(len(buf)))
		for i := range buf {
			buf[i] = Poison
		}
	}
	return nil
}

// tone fills buf with the samples from pos of a total-sample utterance: a
// 180 Hz tone with harmonics, modulated at 4 Hz like syllables, never
// silent (it starts at full level, so leading-silence trimming keeps it),
// with 5 ms fades at the ends.
func tone(buf []int16, pos, total, rate int) {
	fade := rate / 200
	for i := range buf {
		n := pos + i
		t := float64(n) / float64(rate)
		env := 0.6 + 0.4*math.Cos(2*math.Pi*4*t)
		if n < fade {
			env *= 0.5 + 0.5*float64(n)/float64(fade)
		}
		if r := total - n; r < fade {
			env *= float64(r) / float64(fade)
		}
		v := math.Sin(2*math.Pi*180*t) + 0.5*math.Sin(2*math.Pi*360*t) + 0.25*math.Sin(2*math.Pi*540*t)
		buf[i] = int16(env * v * 8000)
	}
}

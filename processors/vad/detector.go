package vad

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Config tunes the turn state machine. The zero value gives defaults.
type Config struct {
	// Confidence is the speech probability at or above which a chunk is
	// voiced (default 0.5). A speaking user stays speaking until the
	// probability falls below Confidence-0.15.
	Confidence float32 `toml:"confidence"`
	// StartDuration of voiced audio starts a turn (default 200 ms).
	StartDuration time.Duration `toml:"start_duration"`
	// StopDuration of unvoiced audio ends it (default 500 ms).
	StopDuration time.Duration `toml:"stop_duration"`
	// MinVolume is the RMS level in dBFS below which a chunk is never
	// voiced, whatever the model says (default -50).
	MinVolume float64 `toml:"min_volume"`
	// BotConfidence and BotMinVolume, when set, replace Confidence and
	// MinVolume for starting a user turn while the bot speaks (as published
	// in pipeline.State by the output stage): a guard against the residue of
	// the bot's own voice coming back through the user's microphone.
	BotConfidence float32 `toml:"bot_confidence"`
	BotMinVolume  float64 `toml:"bot_min_volume"`
	// ResetEvery is how often the analyzer's recurrent state is reset while
	// the user is quiet (default 5 s). Silero's state drifts over long
	// silences (digital silence especially) until it stops hearing speech
	// onsets; a reset between turns costs nothing.
	ResetEvery time.Duration `toml:"reset_every"`
}

func (c *Config) defaults() {
	if c.ResetEvery <= 0 {
		c.ResetEvery = 5 * time.Second
	}
	if c.Confidence <= 0 {
		c.Confidence = 0.5
	}
	if c.StartDuration <= 0 {
		c.StartDuration = 200 * time.Millisecond
	}
	if c.StopDuration <= 0 {
		c.StopDuration = 500 * time.Millisecond
	}
	if c.MinVolume == 0 {
		c.MinVolume = -50
	}
}

// ErrFormat is returned (wrapped) for input audio the detector cannot score:
// it must be mono at the sample rate given to NewDetector.
var ErrFormat = errors.New("vad: unsupported input format")

// State is where the turn state machine is.
type State uint8

const (
	Quiet    State = iota // user silent
	Starting              // voiced audio, not yet long enough to start a turn
	Speaking              // in a user turn
	Stopping              // unvoiced audio, not yet long enough to end the turn
)

// Detector is the speech-detection stage: it only reports speech, and never
// interrupts the bot (the turn-taking stage, processors/turntaking, owns
// barge-in). It passes every frame on, scores input audio in the analyzer's
// chunk size, and emits UserStartedSpeaking once StartDuration of voiced
// audio is heard, UserSpeaking on each voiced chunk after it (with the voiced
// time of the user's speech so far, StartDuration included), and
// UserStoppedSpeaking after StopDuration of unvoiced audio. While the bot
// speaks (Runtime.State), starting a user turn takes BotConfidence and
// BotMinVolume. Input audio must be mono at the analyzer's rate; other audio
// fails the pipeline with ErrFormat.
type Detector struct {
	cfg   Config
	model Model
	rate  int

	an      Analyzer
	buf     []int16
	chunkD  time.Duration
	state   State
	acc     time.Duration   // time in the Starting or Stopping state
	lastVoi time.Time       // wall time of the last voiced chunk
	quiet   time.Duration   // time Quiet since the analyzer was last reset
	voiced  time.Duration   // voiced audio in the current user speech
	shared  *pipeline.State // the conversation state, read for the echo guard
	now     func() time.Time
}

// NewDetector returns a turn detector using model at sampleRate.
func NewDetector(model Model, sampleRate int, cfg Config) *Detector {
	cfg.defaults()
	return &Detector{cfg: cfg, model: model, rate: sampleRate, now: time.Now}
}

// Name implements pipeline.Namer.
func (p *Detector) Name() string { return "vad" }

// State returns the state machine's state (stage goroutine only).
func (p *Detector) State() State { return p.state }

// Start implements pipeline.Starter.
func (p *Detector) Start(_ context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	an, err := p.model.NewAnalyzer(p.rate)
	if err != nil {
		return fmt.Errorf("vad: %w", err)
	}
	if an.ChunkSamples() <= 0 {
		an.Close()
		return fmt.Errorf("vad: analyzer chunk of %d samples", an.ChunkSamples())
	}
	p.an, p.shared = an, rt.State()
	p.buf = make([]int16, 0, an.ChunkSamples())
	p.chunkD = time.Duration(an.ChunkSamples()) * time.Second / time.Duration(p.rate)
	return nil
}

// Close implements io.Closer.
func (p *Detector) Close() error {
	if p.an != nil {
		return p.an.Close()
	}
	return nil
}

// Process implements pipeline.Processor.
func (p *Detector) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	a, ok := f.(*frame.InputAudio)
	if !ok {
		out.Pass(f)
		return nil
	}
	if a.Format.SampleRate != p.rate || a.Format.Channels != 1 {
		return fmt.Errorf("%w: %+v, want mono %d Hz", ErrFormat, a.Format, p.rate)
	}
	out.Pass(f)
	n := cap(p.buf)
	s := a.Samples
	for len(s) > 0 {
		k := min(n-len(p.buf), len(s))
		p.buf = append(p.buf, s[:k]...)
		s = s[k:]
		if len(p.buf) < n {
			break
		}
		level := Level(p.buf) // before Speech, which may use buf as scratch
		prob, err := p.an.Speech(p.buf)
		if err != nil {
			return fmt.Errorf("vad: %w", err)
		}
		p.step(prob, level, out)
		p.buf = p.buf[:0]
		p.quiet += p.chunkD
		if p.state != Quiet {
			p.quiet = 0
		} else if p.quiet >= p.cfg.ResetEvery {
			p.an.Reset()
			p.quiet = 0
		}
	}
	return nil
}

func (p *Detector) step(prob float32, level float64, out pipeline.Emitter) {
	loud := level >= p.cfg.MinVolume
	voiced := loud && prob >= p.cfg.Confidence
	holding := loud && prob >= p.cfg.Confidence-0.15
	starts := voiced
	if p.shared.BotSpeaking() {
		conf, vol := max(p.cfg.Confidence, p.cfg.BotConfidence), p.cfg.MinVolume
		if p.cfg.BotMinVolume != 0 {
			vol = max(vol, p.cfg.BotMinVolume)
		}
		starts = level >= vol && prob >= conf
	}
	now := p.now()
	switch p.state {
	case Quiet:
		if starts {
			p.state, p.acc = Starting, p.chunkD
			p.lastVoi = now
		}
	case Starting:
		if !starts {
			p.state = Quiet
			break
		}
		p.lastVoi = now
		p.acc += p.chunkD
	case Speaking:
		if holding {
			p.lastVoi = now
			if voiced {
				p.voiced += p.chunkD
			}
			out.Emit(&frame.UserSpeaking{Voiced: p.voiced})
			break
		}
		p.state, p.acc = Stopping, p.chunkD
	case Stopping:
		if holding {
			p.state, p.lastVoi = Speaking, now
			break
		}
		p.acc += p.chunkD
	}
	switch {
	case p.state == Starting && p.acc >= p.cfg.StartDuration:
		p.state = Speaking
		p.voiced = p.acc
		out.Emit(&frame.UserStartedSpeaking{Confidence: prob})
	case p.state == Stopping && p.acc >= p.cfg.StopDuration:
		p.state = Quiet
		out.Emit(&frame.UserStoppedSpeaking{At: p.lastVoi})
	}
}

// Level returns the RMS level of pcm in dBFS (-inf for digital silence is
// reported as -120).
func Level(pcm []int16) float64 {
	if rms := audio.RMS(pcm); rms > 1e-6 {
		return 20 * math.Log10(rms)
	}
	return -120
}

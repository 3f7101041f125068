// Package aec removes the bot's own voice from the user's audio when the
// client does not cancel its echo (a phone on speaker, a laptop without
// headphones), so the bot does not hear, and interrupt, itself.
//
// The canceller is speexdsp's (Debian libspeexdsp-dev, through cgo): an
// adaptive filter that learns the echo path from the audio the output stage
// played (a Reference) and subtracts its estimate, followed by speexdsp's
// residual echo suppressor. The client's playback and capture delays are
// unknown: the filter's Tail must cover them, less any known Delay.
package aec

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// ErrConfig is returned (wrapped) for an invalid configuration.
var ErrConfig = errors.New("echo: invalid configuration")

// Config tunes the canceller. The zero value gives the defaults.
type Config struct {
	// Tail is the longest echo delay the adaptive filter covers (default
	// 300 ms): client playout buffering, the room, capture buffering and
	// the uplink. Longer tails adapt more slowly and cost more CPU.
	Tail time.Duration `toml:"tail"`
	// Delay is a known bulk delay of the echo, taken off the reference's
	// timing before the filter (default 0).
	Delay time.Duration `toml:"delay"`
	// Suppress is the residual echo suppression in dB, negative (default
	// -40; while the user also speaks, half of it).
	Suppress int `toml:"suppress_db"`
	// Frame is the canceller's block (default 20 ms).
	Frame time.Duration `toml:"frame"`
	// Warmup is how much of the bot's audio the filter hears before it is
	// trusted (default 2 s, negative for none): until then, the user's
	// audio is muted while the bot's plays (half duplex), since an
	// unconverged filter (5-10 dB in its first second) lets enough echo
	// through for the bot to interrupt itself. Barge-in is impossible
	// during the first Warmup of bot speech of a session.
	Warmup time.Duration `toml:"warmup"`
}

func (c *Config) defaults() {
	if c.Tail <= 0 {
		c.Tail = 300 * time.Millisecond
	}
	if c.Suppress == 0 {
		c.Suppress = -40
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Frame <= 0 {
		c.Frame = 20 * time.Millisecond
	}
}

// resync is how far the capture clock may drift from the wall clock.
const resync = 60 * time.Millisecond

// Processor is the echo-cancelling stage; it goes right after the
// transport's input stage. It replaces each InputAudio (mono, at the rate
// given to New) with the same audio less the echo of what the Reference
// says was playing when it was captured (less Delay): the capture time
// advances with the input's sample count from the wall time of the first
// frame, re-anchored when it drifts more than 60 ms from the time frames
// are processed. Audio is processed in Frame blocks, so up to a
// block of it may be held until the next InputAudio. While nothing has
// played for Tail, audio passes untouched. Other frames are passed on.
// Close frees the canceller.
type Processor struct {
	cfg  Config
	ref  *Reference
	rate int
	now  func() time.Time

	c        *canceller
	n        int // samples per block
	mic, far []int16
	active   time.Time // when the reference last had sound
	clock    time.Time // capture time of the end of the last input
	heard    int       // samples of reference sound the filter has seen
}

// New returns an echo stage for mono audio at rate, cancelling ref.
func New(ref *Reference, rate int, cfg Config) (*Processor, error) {
	cfg.defaults()
	if ref == nil || rate <= 0 || ref.rate != rate || cfg.Suppress > 0 {
		return nil, fmt.Errorf("%w: reference %v, rate %d, suppress %d dB", ErrConfig, ref != nil, rate, cfg.Suppress)
	}
	return &Processor{cfg: cfg, ref: ref, rate: rate, now: time.Now, n: int(cfg.Frame.Seconds() * float64(rate))}, nil
}

// Name implements pipeline.Namer.
func (p *Processor) Name() string { return "aec" }

// Close implements io.Closer.
func (p *Processor) Close() error {
	if p.c != nil {
		p.c.close()
	}
	return nil
}

// Process implements pipeline.Processor.
func (p *Processor) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	a, ok := f.(*frame.InputAudio)
	if !ok || a.Format.SampleRate != p.rate || a.Format.Channels != 1 {
		out.Pass(f)
		return nil
	}
	now := p.now()
	// The capture clock: the input's own sample count, anchored to the
	// wall clock and re-anchored only when they drift apart by more than
	// Resync, so that scheduling jitter does not move the echo under the
	// adaptive filter.
	p.clock = p.clock.Add(time.Duration(len(a.Samples)) * time.Second / time.Duration(p.rate))
	if d := now.Sub(p.clock); p.clock.IsZero() || d > resync || d < -resync {
		p.clock = now
	}
	k := len(p.far)
	p.far = append(p.far, make([]int16, len(a.Samples))...)
	sound := p.ref.Read(p.far[k:], p.clock.Add(-p.cfg.Delay))
	if sound {
		p.active = now
	}
	if k == 0 && now.Sub(p.active) > p.cfg.Tail {
		p.far = p.far[:0]
		out.Pass(f) // nothing to cancel
		return nil
	}
	if p.c == nil {
		p.c = newCanceller(p.n, int(p.cfg.Tail.Seconds()*float64(p.rate)), p.rate, p.cfg.Suppress)
	}
	p.mic = append(p.mic, a.Samples...)
	done := 0
	res := make([]int16, len(p.mic)/p.n*p.n)
	for ; done+p.n <= len(p.mic); done += p.n {
		p.c.process(p.mic[done:done+p.n], p.far[done:done+p.n], res[done:done+p.n])
	}
	if sound && p.cfg.Warmup > 0 && p.heard < int(p.cfg.Warmup.Seconds()*float64(p.rate)) {
		p.heard += len(a.Samples)
		clear(res) // still converging: half duplex
	}
	p.mic = p.mic[:copy(p.mic, p.mic[done:])]
	p.far = p.far[:copy(p.far, p.far[done:])]
	if len(res) > 0 {
		out.Emit(&frame.InputAudio{Meta: frame.Meta{Turn: a.Turn, PTS: a.PTS}, Format: a.Format, Samples: res})
	}
	return nil
}

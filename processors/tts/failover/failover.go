// Package failover is a tts.Synthesizer that speaks with the first healthy
// of several synthesizers: a sentence whose synthesis fails is retried, then
// spoken again, from its start, by the next synthesizer in order. The
// caller hears at worst a short pause (and, when a provider failed part-way
// through a sentence, that sentence's beginning twice).
//
// Its settings mirror the models' [llm.resilience]: retries with a doubling
// backoff, a per-attempt timeout and a circuit breaker per synthesizer.
package failover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/tts"
)

// Config is [tts.resilience] in voiced.toml, named as the models'
// [llm.resilience] are. The zero value
// tries each synthesizer once, with no timeout and no breaker.
type Config struct {
	// Failover names the providers tried after the primary, in order. It
	// is read by the configuration loader, which builds the Members; New
	// ignores it.
	Failover []string `toml:"failover"`
	// Retries is how many more times a synthesizer is tried after a
	// retryable failure before the next one is (default 0).
	Retries int `toml:"retries"`
	// Backoff is the wait before the first retry, doubled for each
	// further one (default 200ms).
	Backoff time.Duration `toml:"backoff"`
	// Timeout bounds one attempt at one sentence (0: none).
	Timeout time.Duration `toml:"timeout"`
	// BreakerFailures is how many retryable failures in a row open a
	// synthesizer's circuit: it is skipped until BreakerCooldown (default
	// 30s) has passed (0: no breaker).
	BreakerFailures int           `toml:"breaker_failures"`
	BreakerCooldown time.Duration `toml:"breaker_cooldown"`

	// Logger receives a warning for each failover (default: discard).
	Logger *slog.Logger `toml:"-"`
}

// Member is one synthesizer of the failover order.
//
// Voice names (the configured voice, agents' voices) belong to the first
// member. A later member speaks voice Voices[voice], or its own default
// voice when the map has no entry: another provider's voice names mean
// nothing to it.
type Member struct {
	Name        string // for logs and errors ("openai", "flite")
	Synthesizer tts.Synthesizer
	Voices      map[string]string
}

// ErrConfig is wrapped by the errors of New.
var ErrConfig = errors.New("tts/failover: bad config")

// ErrAllFailed is wrapped by the error of a sentence that no synthesizer
// could speak; the members' errors are joined to it.
var ErrAllFailed = errors.New("tts/failover: every synthesizer failed")

// ErrTimeout is wrapped, in a retryable *provider.Error, by the error of an
// attempt cut by Config.Timeout.
var ErrTimeout = errors.New("tts/failover: attempt timed out")

type member struct {
	Member
	breaker *provider.Breaker
	rate    int
}

// Synthesizer is a failover tts.Synthesizer. It is safe for concurrent use.
type Synthesizer struct {
	cfg     Config
	members []member
	format  frame.Format
}

var _ tts.WordSynthesizer = (*Synthesizer)(nil)

// New returns a synthesizer that tries members in order. Its Format is the
// first member's; the audio of members at other rates is resampled to it.
func New(cfg Config, members ...Member) (*Synthesizer, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("%w: no synthesizers", ErrConfig)
	}
	if cfg.Retries < 0 || cfg.BreakerFailures < 0 || cfg.Backoff < 0 || cfg.Timeout < 0 || cfg.BreakerCooldown < 0 {
		return nil, fmt.Errorf("%w: negative setting", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Synthesizer{cfg: cfg, format: members[0].Synthesizer.Format()}
	for _, m := range members {
		f := m.Synthesizer.Format()
		if f.Channels != 1 {
			return nil, fmt.Errorf("%w: %s: %d channels", ErrConfig, m.Name, f.Channels)
		}
		if f.SampleRate != s.format.SampleRate && (!audio.SupportedRate(f.SampleRate) || !audio.SupportedRate(s.format.SampleRate)) {
			return nil, fmt.Errorf("%w: %s: cannot convert %d Hz to %d Hz", ErrConfig, m.Name, f.SampleRate, s.format.SampleRate)
		}
		mm := member{Member: m, rate: f.SampleRate}
		if cfg.BreakerFailures > 0 {
			mm.breaker = provider.NewBreaker(cfg.BreakerFailures, cfg.BreakerCooldown)
		}
		s.members = append(s.members, mm)
	}
	return s, nil
}

// Format implements tts.Synthesizer.
func (s *Synthesizer) Format() frame.Format { return s.format }

// emitError marks an error of the caller's emit, which ends the sentence.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }

// Synthesize implements tts.Synthesizer. A member's error moves on to the
// next member (after Retries more tries for a retryable one); the caller's
// cancellation and emit's errors end the call at once.
func (s *Synthesizer) Synthesize(ctx context.Context, text, voice string, emit func(pcm []int16) error) error {
	return s.SynthesizeWords(ctx, text, voice, emit, nil)
}

// SynthesizeWords implements tts.WordSynthesizer: the word timings of the
// member speaking, if it reports them (a member that does not reports
// none). When a member failed part-way through the sentence, the audio it
// emitted stays in the sentence and the next one starts the sentence again:
// its timings are moved past that audio, and the words already reported are
// not reported again (each word once, in order). words may be nil.
func (s *Synthesizer) SynthesizeWords(ctx context.Context, text, voice string, emit func(pcm []int16) error, words func([]frame.Word)) error {
	var errs []error
	sent := 0 // samples emitted by earlier attempts at the sentence
	told := 0 // words reported
	counted := func(pcm []int16) error {
		sent += len(pcm)
		return emit(pcm)
	}
	for i := range s.members {
		m := &s.members[i]
		for n := 0; ; n++ {
			probe, ok := m.breaker.Admit()
			if !ok {
				errs = append(errs, &provider.Error{Provider: m.Name, Op: "synthesize", Retryable: true, Err: provider.ErrCircuitOpen})
				break
			}
			v := voice
			if i > 0 {
				v = m.Voices[voice]
			}
			var mw func([]frame.Word)
			if words != nil {
				base, seen := s.format.Duration(sent), 0
				mw = func(ws []frame.Word) {
					var moved []frame.Word
					for _, w := range ws {
						if seen++; seen <= told {
							continue // said again after a failure
						}
						moved = append(moved, frame.Word{Text: w.Text, Start: w.Start + base, End: w.End + base})
					}
					if len(moved) > 0 {
						told += len(moved)
						words(moved)
					}
				}
			}
			err := s.attempt(ctx, m, text, v, counted, mw)
			if ctx.Err() != nil {
				m.breaker.Done(probe, nil) // not the provider's failure
				return context.Cause(ctx)
			}
			var ee *emitError
			if errors.As(err, &ee) {
				m.breaker.Done(probe, nil)
				return ee.err
			}
			m.breaker.Done(probe, err)
			if err == nil {
				return nil
			}
			errs = append(errs, err)
			if !provider.IsRetryable(err) || n >= s.cfg.Retries {
				break
			}
			if err := sleep(ctx, provider.Backoff(s.cfg.Backoff, n)); err != nil {
				return err
			}
		}
		if i+1 < len(s.members) {
			s.cfg.Logger.Warn("tts: failing over", "from", m.Name, "to", s.members[i+1].Name, "err", errs[len(errs)-1])
		}
	}
	return fmt.Errorf("%w: %w", ErrAllFailed, errors.Join(errs...))
}

func (s *Synthesizer) attempt(ctx context.Context, m *member, text, voice string, emit func([]int16) error, words func([]frame.Word)) error {
	if d := s.cfg.Timeout; d > 0 {
		actx, cancel := context.WithTimeoutCause(ctx, d, ErrTimeout)
		defer cancel()
		err := s.speak(actx, m, text, voice, emit, words)
		if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), ErrTimeout) {
			return &provider.Error{Provider: m.Name, Op: "synthesize", Retryable: true, Err: fmt.Errorf("%w after %v", ErrTimeout, d)}
		}
		return err
	}
	return s.speak(ctx, m, text, voice, emit, words)
}

func (s *Synthesizer) speak(ctx context.Context, m *member, text, voice string, emit func([]int16) error, words func([]frame.Word)) error {
	out := emit
	var rs *audio.Resampler
	if m.rate != s.format.SampleRate {
		var err error
		if rs, err = audio.NewResampler(m.rate, s.format.SampleRate); err != nil {
			return err
		}
		var conv []int16
		out = func(pcm []int16) error {
			conv = rs.Process(conv[:0], pcm)
			return emit(conv)
		}
	}
	wrapped := func(pcm []int16) error {
		if err := out(pcm); err != nil {
			return &emitError{err}
		}
		return nil
	}
	var err error
	if ws, ok := m.Synthesizer.(tts.WordSynthesizer); ok && words != nil {
		err = ws.SynthesizeWords(ctx, text, voice, wrapped, words)
	} else {
		err = m.Synthesizer.Synthesize(ctx, text, voice, wrapped)
	}
	if err == nil && rs != nil {
		if tail := rs.Flush(nil); len(tail) > 0 {
			if err := emit(tail); err != nil {
				return &emitError{err}
			}
		}
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Warm implements provider.Warmer: it warms every member that keeps
// connections, the backups too (a failover should not pay a handshake).
func (s *Synthesizer) Warm() {
	for _, m := range s.members {
		if w, ok := m.Synthesizer.(provider.Warmer); ok {
			w.Warm()
		}
	}
}

// Close closes the members that hold resources (those implementing
// io.Closer: warm connections), and returns their errors joined.
func (s *Synthesizer) Close() error {
	var errs []error
	for _, m := range s.members {
		if c, ok := m.Synthesizer.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

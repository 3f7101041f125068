// Package failover is an stt.Recognizer that recognizes with the first
// healthy of several recognizers. It keeps the audio of the utterance in
// progress; when the current recognizer fails, at any point of the
// utterance (opening, sending, finishing, or waiting for the final
// result), the audio is sent again, from the utterance's start, to the next
// recognizer, which carries on. The caller sees at worst a late final
// transcript.
//
// Its settings mirror the models' [llm.resilience]: retries with a doubling
// backoff, a timeout for the final result and a circuit breaker per
// recognizer.
package failover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/stt"
)

// Config is [stt.resilience] in voiced.toml, named as the models'
// [llm.resilience] are. The zero value
// tries each recognizer once, with no timeout and no breaker.
type Config struct {
	// Failover names the providers tried after the primary, in order. It
	// is read by the configuration loader, which builds the Members; New
	// ignores it.
	Failover []string `toml:"failover"`
	// Retries is how many more times a recognizer is tried after a
	// retryable failure before the next one is (default 0).
	Retries int `toml:"retries"`
	// Backoff is the wait before the first retry, doubled for each
	// further one (default 200ms).
	Backoff time.Duration `toml:"backoff"`
	// Timeout bounds the wait for the final result after Finish (0: none).
	Timeout time.Duration `toml:"timeout"`
	// BreakerFailures is how many retryable failures in a row open a
	// recognizer's circuit: it is skipped until BreakerCooldown (default
	// 30s) has passed (0: no breaker).
	BreakerFailures int           `toml:"breaker_failures"`
	BreakerCooldown time.Duration `toml:"breaker_cooldown"`
	// MaxReplay bounds the audio kept for a replay (default 2m): an
	// utterance longer than that cannot fail over once it is past it.
	MaxReplay time.Duration `toml:"max_replay"`

	// Logger receives a warning for each failover (default: discard).
	Logger *slog.Logger `toml:"-"`
}

// Member is one recognizer of the failover order.
type Member struct {
	Name       string // for logs and errors ("deepgram", "openai")
	Recognizer stt.Recognizer
}

var (
	// ErrConfig is wrapped by the errors of New.
	ErrConfig = errors.New("stt/failover: bad config")
	// ErrAllFailed is wrapped by the error of an utterance that no
	// recognizer could recognize; the members' errors are joined to it.
	ErrAllFailed = errors.New("stt/failover: every recognizer failed")
	// ErrFinished is returned by Send after Finish.
	ErrFinished = errors.New("stt/failover: send after finish")
	// ErrTimeout is wrapped, in a retryable *provider.Error, by the error
	// of a final result later than Config.Timeout.
	ErrTimeout = errors.New("stt/failover: final result timed out")
)

type member struct {
	Member
	breaker *provider.Breaker
	rate    int
}

// Recognizer is a failover stt.Recognizer. It is safe for concurrent use.
type Recognizer struct {
	cfg     Config
	members []member
	format  frame.Format
}

var _ stt.Recognizer = (*Recognizer)(nil)

// New returns a recognizer that tries members in order. Its Format is the
// first member's; audio for members at other rates is resampled.
func New(cfg Config, members ...Member) (*Recognizer, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("%w: no recognizers", ErrConfig)
	}
	if cfg.Retries < 0 || cfg.BreakerFailures < 0 || cfg.Backoff < 0 || cfg.Timeout < 0 || cfg.BreakerCooldown < 0 || cfg.MaxReplay < 0 {
		return nil, fmt.Errorf("%w: negative setting", ErrConfig)
	}
	if cfg.MaxReplay == 0 {
		cfg.MaxReplay = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recognizer{cfg: cfg, format: members[0].Recognizer.Format()}
	for _, m := range members {
		f := m.Recognizer.Format()
		if f.Channels != r.format.Channels {
			return nil, fmt.Errorf("%w: %s: %d channels, not %d", ErrConfig, m.Name, f.Channels, r.format.Channels)
		}
		if f.SampleRate != r.format.SampleRate && (f.Channels != 1 || !audio.SupportedRate(f.SampleRate) || !audio.SupportedRate(r.format.SampleRate)) {
			return nil, fmt.Errorf("%w: %s: cannot convert %d Hz to %d Hz", ErrConfig, m.Name, r.format.SampleRate, f.SampleRate)
		}
		mm := member{Member: m, rate: f.SampleRate}
		if cfg.BreakerFailures > 0 {
			mm.breaker = provider.NewBreaker(cfg.BreakerFailures, cfg.BreakerCooldown)
		}
		r.members = append(r.members, mm)
	}
	return r, nil
}

// Format implements stt.Recognizer.
func (r *Recognizer) Format() frame.Format { return r.format }

// Warm implements provider.Warmer: it warms every member that keeps
// connections, the backups too (a failover should not pay a handshake).
func (r *Recognizer) Warm() {
	for _, m := range r.members {
		if w, ok := m.Recognizer.(provider.Warmer); ok {
			w.Warm()
		}
	}
}

// Open implements stt.Recognizer: it opens the first member that opens.
// The stream's later failovers open members under ctx.
func (r *Recognizer) Open(ctx context.Context) (stt.Stream, error) {
	s := &stream{r: r, ctx: ctx, idx: -1, closing: make(chan struct{}), wake: make(chan struct{}), late: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failover(nil); err != nil {
		return nil, err
	}
	return s, nil
}

// stream is one utterance. Send and Finish run on the caller's goroutine,
// Recv on another; a failover may start on either, under mu.
type stream struct {
	r   *Recognizer
	ctx context.Context

	mu       sync.Mutex
	idx      int // current member
	tries    int // attempts at the current member
	probe    bool
	cur      stt.Stream
	gen      int // incremented at each failover
	rs       *audio.Resampler
	conv     []int16
	kept     []int16 // the utterance so far, in r.format
	overflow bool    // kept no longer holds the whole utterance
	finished bool
	closed   bool
	errs     []error
	finalErr error         // every member failed
	closing  chan struct{} // closed by Close
	wake     chan struct{} // closed and replaced when cur is set
	late     chan struct{} // closed when cur's final is later than Timeout
	timer    *time.Timer   // closes late
}

// arm starts the wait for cur's final result, at Finish. s.mu is held.
func (s *stream) arm() {
	d := s.r.cfg.Timeout
	if d <= 0 {
		return
	}
	late := s.late
	s.timer = time.AfterFunc(d, func() { close(late) })
}

// disarm stops the wait and gives the next stream its own. s.mu is held.
func (s *stream) disarm() {
	if s.timer != nil {
		if !s.timer.Stop() {
			s.late = make(chan struct{}) // it fired: the old one is closed
		}
		s.timer = nil
	}
}

// setCur makes st the current stream and wakes a Recv waiting for one.
// s.mu is held.
func (s *stream) setCur(st stt.Stream) {
	s.cur = st
	close(s.wake)
	s.wake = make(chan struct{})
}

// failover closes the current stream (after failure cause, nil at Open) and
// opens the next member that accepts the utterance. s.mu is held.
func (s *stream) failover(cause error) error {
	s.disarm()
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
		m := &s.r.members[s.idx]
		m.breaker.Done(s.probe, cause)
		s.probe = false
		s.errs = append(s.errs, cause)
	}
	if s.overflow {
		s.finalErr = fmt.Errorf("%w: utterance longer than max_replay: %w", ErrAllFailed, errors.Join(s.errs...))
		s.setCur(nil)
		return s.finalErr
	}
	for {
		if s.idx >= 0 && cause != nil && provider.IsRetryable(cause) && s.tries <= s.r.cfg.Retries {
			// Retry the same member after a backoff.
			s.mu.Unlock()
			err := sleep(s.ctx, s.closing, provider.Backoff(s.r.cfg.Backoff, s.tries-1))
			s.mu.Lock()
			if err != nil {
				return err
			}
		} else {
			if s.idx >= 0 && s.idx+1 < len(s.r.members) {
				s.r.cfg.Logger.Warn("stt: failing over", "from", s.r.members[s.idx].Name, "to", s.r.members[s.idx+1].Name, "err", cause)
			}
			s.idx++
			s.tries = 0
			if s.idx >= len(s.r.members) {
				s.finalErr = fmt.Errorf("%w: %w", ErrAllFailed, errors.Join(s.errs...))
				s.setCur(nil)
				return s.finalErr
			}
		}
		if s.closed {
			return stt.ErrClosed
		}
		s.tries++
		s.gen++
		cause = s.start()
		if cause == nil {
			return nil
		}
		if s.ctx.Err() != nil {
			return context.Cause(s.ctx)
		}
		s.errs = append(s.errs, cause)
	}
}

// start opens the current member and replays the utterance to it. s.mu is
// held.
func (s *stream) start() error {
	m := &s.r.members[s.idx]
	probe, ok := m.breaker.Admit()
	if !ok {
		return &provider.Error{Provider: m.Name, Op: "open", Retryable: true, Err: provider.ErrCircuitOpen}
	}
	st, err := m.Recognizer.Open(s.ctx)
	if err != nil {
		m.breaker.Done(probe, err)
		return err
	}
	s.rs = nil
	if m.rate != s.r.format.SampleRate {
		if s.rs, err = audio.NewResampler(s.r.format.SampleRate, m.rate); err != nil {
			st.Close()
			return err
		}
	}
	s.cur, s.probe = st, probe
	defer func() {
		if s.cur != nil {
			s.setCur(s.cur) // wake Recv
		}
	}()
	if len(s.kept) > 0 {
		if err = s.send(s.kept); err != nil {
			return s.abandon(err)
		}
	}
	if s.finished {
		if err = s.finish(); err != nil {
			return s.abandon(err)
		}
		s.arm()
	}
	return nil
}

// abandon closes the stream start opened, recording err against its member.
func (s *stream) abandon(err error) error {
	s.cur.Close()
	s.cur = nil
	s.r.members[s.idx].breaker.Done(s.probe, err)
	s.probe = false
	return err
}

// send sends pcm (in r.format) to the current stream. s.mu is held.
func (s *stream) send(pcm []int16) error {
	if s.rs != nil {
		s.conv = s.rs.Process(s.conv[:0], pcm)
		pcm = s.conv
	}
	if len(pcm) == 0 {
		return nil
	}
	return s.cur.Send(s.ctx, pcm)
}

// finish flushes a resampler's tail and finishes the current stream.
func (s *stream) finish() error {
	if s.rs != nil {
		if tail := s.rs.Flush(s.conv[:0]); len(tail) > 0 {
			if err := s.cur.Send(s.ctx, tail); err != nil {
				return err
			}
		}
	}
	return s.cur.Finish(s.ctx)
}

// Send implements stt.Stream.
func (s *stream) Send(ctx context.Context, pcm []int16) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return stt.ErrClosed
	case s.finished:
		return ErrFinished
	case s.finalErr != nil:
		return s.finalErr
	}
	if !s.overflow {
		if len(s.kept)+len(pcm) > s.r.format.Samples(s.r.cfg.MaxReplay) {
			s.overflow, s.kept = true, nil
		} else {
			s.kept = append(s.kept, pcm...)
		}
	}
	if s.cur == nil {
		return nil // a failover is backing off; it replays what is kept
	}
	if err := s.send(pcm); err != nil {
		if ctx.Err() != nil || s.ctx.Err() != nil {
			return err
		}
		return s.failover(err) // the replay includes pcm
	}
	return nil
}

// Finish implements stt.Stream.
func (s *stream) Finish(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return stt.ErrClosed
	case s.finalErr != nil:
		return s.finalErr
	}
	s.finished = true
	if s.cur == nil {
		return nil // the failover in progress finishes its stream
	}
	if err := s.finish(); err != nil {
		if ctx.Err() != nil || s.ctx.Err() != nil {
			return err
		}
		return s.failover(err)
	}
	s.arm()
	return nil
}

// Recv implements stt.Stream. Interim results of a member that then failed
// have been delivered; the next member's follow them.
func (s *stream) Recv(ctx context.Context) (stt.Result, error) {
	for {
		s.mu.Lock()
		cur, gen, idx, ferr := s.cur, s.gen, s.idx, s.finalErr
		closed, wake, late := s.closed, s.wake, s.late
		s.mu.Unlock()
		switch {
		case closed:
			return stt.Result{}, stt.ErrClosed
		case ferr != nil:
			return stt.Result{}, ferr
		case cur == nil: // a failover is backing off
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return stt.Result{}, context.Cause(ctx)
			}
		}
		res, err, timedOut := recvBefore(ctx, cur, late)
		if err == nil {
			if res.Final {
				s.mu.Lock()
				if s.gen == gen {
					s.r.members[idx].breaker.Done(s.probe, nil)
					s.probe = false
				}
				s.mu.Unlock()
			}
			return res, nil
		}
		if err == io.EOF || ctx.Err() != nil {
			return stt.Result{}, err
		}
		if timedOut {
			err = &provider.Error{Provider: s.r.members[idx].Name, Op: "recognize", Retryable: true,
				Err: fmt.Errorf("%w after %v", ErrTimeout, s.r.cfg.Timeout)}
		}
		s.mu.Lock()
		if s.gen == gen && !s.closed && s.finalErr == nil {
			if ferr := s.failover(err); ferr != nil && !errors.Is(ferr, ErrAllFailed) {
				s.mu.Unlock()
				return stt.Result{}, ferr
			}
		}
		s.mu.Unlock()
	}
}

// recvBefore receives from cur, giving up when late is closed first.
func recvBefore(ctx context.Context, cur stt.Stream, late <-chan struct{}) (stt.Result, error, bool) {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-late:
			cancel(ErrTimeout)
		case <-done:
		}
	}()
	res, err := cur.Recv(rctx)
	timedOut := err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), ErrTimeout)
	return res, err, timedOut
}

// errAbandoned records a stream closed before its result: neither a
// success nor a failure of its member.
var errAbandoned = errors.New("stt/failover: stream closed before its result")

// Close implements stt.Stream. Idempotent.
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.closing)
	s.disarm()
	if s.probe {
		s.r.members[s.idx].breaker.Done(true, errAbandoned)
		s.probe = false
	}
	if s.cur != nil {
		err := s.cur.Close()
		s.cur = nil
		return err
	}
	return nil
}

func sleep(ctx context.Context, closing <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-closing:
		return stt.ErrClosed
	case <-t.C:
		return nil
	}
}

// Close closes the members that hold resources (those implementing
// io.Closer: warm connections), and returns their errors joined.
func (r *Recognizer) Close() error {
	var errs []error
	for _, m := range r.members {
		if c, ok := m.Recognizer.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Package fake is a speech recognizer for tests and benchmarks: it hears
// nothing, answers every utterance with a configured transcript, and takes a
// configured time to do it, like a streaming cloud recognizer would.
//
// It checks what it is sent: audio must be in its Format's frame sizes
// (non-empty), nothing may be sent after Finish, Finish needs some audio
// first, and a closed stream refuses everything. Counters (Stats) let a test
// assert how much audio reached the recognizer.
package fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/stt"
)

var (
	// ErrEmptyAudio is returned by Send for a call without samples.
	ErrEmptyAudio = errors.New("stt/fake: empty audio")
	// ErrFinished is returned by Send or Finish after Finish.
	ErrFinished = errors.New("stt/fake: stream already finished")
	// ErrNoAudio is returned by Finish on a stream that was sent no audio.
	ErrNoAudio = errors.New("stt/fake: finish without audio")
)

// Config sets what the recognizer says and how long it takes. The zero
// value answers instantly with DefaultTranscript at 16 kHz.
type Config struct {
	// Transcript is the final text of every utterance (default
	// DefaultTranscript).
	Transcript string
	// FirstInterim is the time from the first audio sent to the first
	// interim result (default 0: as soon as audio arrives).
	FirstInterim time.Duration
	// InterimEvery is the time between later interim results, each one
	// word longer (default 0: a single interim result).
	InterimEvery time.Duration
	// Final is the time from Finish to the final result (default 0).
	Final time.Duration
	// Format is the audio format Send expects (default frame.Mono16k).
	Format frame.Format
}

// DefaultTranscript is the final text when Config.Transcript is empty.
const DefaultTranscript = "what is the weather like today"

// Stats counts what a Recognizer was sent, over all its streams.
type Stats struct {
	Opens    int64 // streams opened
	Samples  int64 // samples sent
	Finishes int64 // streams finished
	Finals   int64 // final results delivered
}

// Recognizer is a fake stt.Recognizer. It is safe for concurrent use.
type Recognizer struct {
	cfg   Config
	words []string

	opens, samples, finishes, finals atomic.Int64
}

var _ stt.Recognizer = (*Recognizer)(nil)

// New returns a recognizer configured by cfg.
func New(cfg Config) *Recognizer {
	if cfg.Transcript == "" {
		cfg.Transcript = DefaultTranscript
	}
	if cfg.Format == (frame.Format{}) {
		cfg.Format = frame.Mono16k
	}
	return &Recognizer{cfg: cfg, words: strings.Fields(cfg.Transcript)}
}

// Format implements stt.Recognizer.
func (r *Recognizer) Format() frame.Format { return r.cfg.Format }

// Stats returns the counters so far.
func (r *Recognizer) Stats() Stats {
	return Stats{Opens: r.opens.Load(), Samples: r.samples.Load(), Finishes: r.finishes.Load(), Finals: r.finals.Load()}
}

// Open implements stt.Recognizer. The stream's timers run on the wall clock
// (the fake clock under testing/synctest); ctx only bounds Open itself.
func (r *Recognizer) Open(ctx context.Context) (stt.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("stt/fake: open: %w", err)
	}
	r.opens.Add(1)
	return &Stream{r: r, wake: make(chan struct{})}, nil
}

// Stream is one utterance. Send and Finish may be called from one goroutine
// while Recv runs on another.
type Stream struct {
	r *Recognizer

	mu        sync.Mutex
	wake      chan struct{} // closed and replaced on every state change
	firstAt   time.Time     // first audio
	finishAt  time.Time     // Finish
	samples   int64
	interims  int // interim results delivered
	finished  bool
	delivered bool // final delivered
	closed    bool
}

// changed wakes a waiting Recv; s.mu is held.
func (s *Stream) changed() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// Send implements stt.Stream. pcm is read, not retained: only its length
// counts.
func (s *Stream) Send(ctx context.Context, pcm []int16) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return stt.ErrClosed
	case s.finished:
		return ErrFinished
	case len(pcm) == 0:
		return ErrEmptyAudio
	case len(pcm)%max(s.r.cfg.Format.Channels, 1) != 0:
		return fmt.Errorf("stt/fake: %d samples is not a whole number of %d-channel frames", len(pcm), s.r.cfg.Format.Channels)
	}
	if s.samples == 0 {
		s.firstAt = time.Now()
		s.changed()
	}
	s.samples += int64(len(pcm))
	s.r.samples.Add(int64(len(pcm)))
	return nil
}

// Finish implements stt.Stream: the final result follows after Config.Final.
func (s *Stream) Finish(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return stt.ErrClosed
	case s.finished:
		return ErrFinished
	case s.samples == 0:
		return ErrNoAudio
	}
	s.finished, s.finishAt = true, time.Now()
	s.r.finishes.Add(1)
	s.changed()
	return nil
}

// Recv implements stt.Stream: interim results (a growing prefix of the
// transcript, never all of it) while audio comes, the final transcript
// Config.Final after Finish, then io.EOF. It returns ctx's error if ctx ends
// first and stt.ErrClosed once the stream is closed.
func (s *Stream) Recv(ctx context.Context) (stt.Result, error) {
	cfg := &s.r.cfg
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return stt.Result{}, stt.ErrClosed
		}
		if s.delivered {
			s.mu.Unlock()
			return stt.Result{}, io.EOF
		}
		now := time.Now()
		var due time.Time // zero: wait for a change
		switch {
		case s.finished:
			due = s.finishAt.Add(cfg.Final)
			if !now.Before(due) {
				s.delivered = true
				s.r.finals.Add(1)
				s.mu.Unlock()
				return stt.Result{Text: cfg.Transcript, Final: true}, nil
			}
		case s.samples > 0 && s.interims < len(s.r.words)-1 && (s.interims == 0 || cfg.InterimEvery > 0):
			due = s.firstAt.Add(cfg.FirstInterim + time.Duration(s.interims)*cfg.InterimEvery)
			if !now.Before(due) {
				s.interims++
				text := strings.Join(s.r.words[:s.interims], " ")
				s.mu.Unlock()
				return stt.Result{Text: text}, nil
			}
		}
		wake := s.wake
		s.mu.Unlock()
		var t *time.Timer
		var timer <-chan time.Time
		if !due.IsZero() {
			t = time.NewTimer(due.Sub(now))
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if err := ctx.Err(); err != nil {
			return stt.Result{}, err
		}
	}
}

// Close implements stt.Stream. Idempotent; a blocked Recv returns
// stt.ErrClosed.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.changed()
	}
	return nil
}

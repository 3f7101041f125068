package sphinx

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/voiced-dev/voiced/processors/stt"
)

// Stream recognizes one utterance on a decoder borrowed from its Recognizer.
//
// Send and Finish are called from one goroutine; Recv may be called from
// another, and Close from any. Send never waits for Recv: results wait in a
// queue where a newer interim hypothesis replaces an older one not yet
// received, so the queue holds at most one interim and the final result.
type Stream struct {
	r *Recognizer

	// decMu guards the decoder; Send, Finish and Close hold it while they
	// call into pocketsphinx.
	decMu      sync.Mutex
	dec        *decoder // nil once returned to the pool
	inUtt      bool     // ps_start_utt called, ps_end_utt not yet
	finished   bool
	pending    int // samples since the last interim check
	lastInterm string
	audio      []int16 // the utterance so far, for the spotting pass (nil: too long, or none)
	spotting   bool

	mu      sync.Mutex
	queue   []stt.Result
	eof     bool          // after the queue drains, Recv returns io.EOF
	closed  bool          // Recv returns stt.ErrClosed
	wake    chan struct{} // capacity 1: a result, EOF or Close happened
	closeCh chan struct{} // closed by Close
}

var _ stt.Stream = (*Stream)(nil)

func newStream(r *Recognizer, d *decoder, spotting bool) *Stream {
	return &Stream{
		r:        r,
		dec:      d,
		inUtt:    true,
		wake:     make(chan struct{}, 1),
		closeCh:  make(chan struct{}),
		spotting: spotting,
	}
}

// Send decodes pcm (16 kHz mono) and, each time the configured InterimEvery
// of audio has passed, queues the current hypothesis as an interim Result if
// it differs from the last one queued. pcm is not retained. Decoding runs on
// the caller's goroutine; ctx is checked before it starts.
func (s *Stream) Send(ctx context.Context, pcm []int16) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sphinx: send: %w", err)
	}
	s.decMu.Lock()
	defer s.decMu.Unlock()
	if s.dec == nil {
		return fmt.Errorf("sphinx: send: %w", stt.ErrClosed)
	}
	if s.finished {
		return fmt.Errorf("sphinx: send: %w", ErrFinished)
	}
	if err := s.dec.process(pcm); err != nil {
		return fmt.Errorf("sphinx: send: %w", err)
	}
	if s.spotting {
		if len(s.audio)+len(pcm) <= s.r.spotMax {
			s.audio = append(s.audio, pcm...)
		} else {
			s.spotting, s.audio = false, nil
		}
	}
	s.pending += len(pcm)
	if s.pending < s.r.interimEvery {
		return nil
	}
	s.pending = 0
	if h := s.dec.hyp(); h != s.lastInterm {
		s.lastInterm = h
		s.push(stt.Result{Text: h}, false)
	}
	return nil
}

// Finish ends the utterance and queues the final Result (Final is true even
// when Text is empty), after which Recv returns io.EOF. ctx is checked
// before the decoder is touched.
func (s *Stream) Finish(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sphinx: finish: %w", err)
	}
	s.decMu.Lock()
	defer s.decMu.Unlock()
	if s.dec == nil {
		return fmt.Errorf("sphinx: finish: %w", stt.ErrClosed)
	}
	if s.finished {
		return fmt.Errorf("sphinx: finish: %w", ErrFinished)
	}
	s.finished = true
	s.inUtt = false
	if err := s.dec.end(); err != nil {
		// The decoder's state is unknown: do not pool it.
		s.dec.free()
		s.dec = nil
		s.setEOF()
		return fmt.Errorf("sphinx: finish: %w", err)
	}
	res := stt.Result{Text: s.dec.hyp(), Final: true}
	if s.spotting && len(s.audio) > 0 {
		words, err := s.dec.spotWords(s.audio)
		s.audio = nil
		if err != nil {
			// The decoder may be left on the wrong search: do not
			// pool it.
			s.dec.free()
			s.dec = nil
			s.setEOF()
			return fmt.Errorf("sphinx: finish: %w", err)
		}
		res.Spotted = words
	}
	s.push(res, true)
	return nil
}

// Recv returns the next queued Result, blocking until one is queued, the
// stream reaches its end (io.EOF after the final Result), the stream is
// closed (stt.ErrClosed, even with results pending) or ctx is done.
func (s *Stream) Recv(ctx context.Context) (stt.Result, error) {
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return stt.Result{}, fmt.Errorf("sphinx: recv: %w", stt.ErrClosed)
		case len(s.queue) > 0:
			res := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return res, nil
		case s.eof:
			s.mu.Unlock()
			return stt.Result{}, io.EOF
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.closeCh:
		case <-ctx.Done():
			return stt.Result{}, fmt.Errorf("sphinx: recv: %w", context.Cause(ctx))
		}
	}
}

// Close abandons pending results, wakes a blocked Recv and returns the
// decoder to the Recognizer's pool, ending the utterance first if Finish was
// not called. It is idempotent and safe to call from any goroutine; it waits
// for a Send or Finish in progress to return.
func (s *Stream) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.queue = nil
		close(s.closeCh)
	}
	s.mu.Unlock()

	s.decMu.Lock()
	defer s.decMu.Unlock()
	d := s.dec
	if d == nil {
		return nil
	}
	s.dec = nil
	if s.inUtt {
		s.inUtt = false
		if err := d.end(); err != nil {
			d.free()
			return fmt.Errorf("sphinx: close: %w", err)
		}
	}
	s.r.put(d)
	return nil
}

// push queues res. An interim replaces a queued interim that Recv has not
// taken yet (only the newest matters); final marks the end of the stream.
func (s *Stream) push(res stt.Result, final bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if n := len(s.queue); !res.Final && n > 0 && !s.queue[n-1].Final {
		s.queue[n-1] = res
	} else {
		s.queue = append(s.queue, res)
	}
	if final {
		s.eof = true
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Stream) setEOF() {
	s.mu.Lock()
	s.eof = true
	s.mu.Unlock()
	s.signal()
}

func (s *Stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

package stt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Resampler converts audio between rates; audio.Resampler implements it.
type Resampler interface {
	Process(dst, src []int16) []int16
}

// ProcessorConfig configures a Processor. The zero value works.
type ProcessorConfig struct {
	// PreRoll is how much audio from before UserStartedSpeaking is sent to
	// the recognizer (default 500 ms): the turn detector reports a start only
	// after StartDuration of speech, and the words' onsets are in it.
	PreRoll time.Duration
	// Resampler, if set, converts pipeline audio to the recognizer's rate.
	// It is needed only when they differ.
	Resampler Resampler
	// PassAudio passes InputAudio on downstream. By default the stage
	// consumes it: no later stage needs the user's audio, and a stream of
	// system frames through stages busy with an answer (synthesis) would
	// delay the interruption frames queued behind it.
	PassAudio bool
}

// Processor is the speech-recognition stage. Between UserStartedSpeaking and
// UserStoppedSpeaking it streams input audio to a Recognizer (opened under the
// session context, so barge-in does not cut recognition), starting with up to
// PreRoll of the audio heard before the start, and emits Transcript frames:
// interim ones as they come, and the final one after the user stops. Results
// are received on a goroutine of the pipeline's (Runtime.Go) and stamped with
// the pipeline's current turn. Every frame is passed on. Failures of the
// recognizer are emitted as *frame.Error and never fail the pipeline.
//
// At End (Drain) an open utterance is finished and its final transcript is
// emitted before End moves on; a stream still open when the session is
// cancelled is closed.
type Processor struct {
	rec Recognizer
	cfg ProcessorConfig

	ctx context.Context
	rt  pipeline.Runtime
	out pipeline.Emitter

	pre     []int16 // ring of recent audio, oldest first once full
	preN    int
	stream  Stream
	conv    []int16
	pending []chan struct{} // closed when a stream's receiver is done
}

// NewProcessor returns a recognition stage for rec.
func NewProcessor(rec Recognizer, cfg ProcessorConfig) *Processor {
	if cfg.PreRoll <= 0 {
		cfg.PreRoll = 500 * time.Millisecond
	}
	return &Processor{rec: rec, cfg: cfg}
}

// Name implements pipeline.Namer.
func (p *Processor) Name() string { return "stt" }

// Start implements pipeline.Starter.
func (p *Processor) Start(ctx context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	p.ctx, p.rt, p.out = ctx, rt, out
	p.pre = make([]int16, max(1, p.rec.Format().Samples(p.cfg.PreRoll)))
	return nil
}

// Close implements io.Closer: it abandons an open utterance.
func (p *Processor) Close() error {
	if p.stream != nil {
		err := p.stream.Close()
		p.stream = nil
		return err
	}
	return nil
}

// Drain implements pipeline.Drainer: it finishes an open utterance and waits
// until the final results of every utterance have been emitted.
func (p *Processor) Drain(ctx context.Context, out pipeline.Emitter) error {
	p.finish(out)
	for _, done := range p.pending {
		select {
		case <-done:
		case <-ctx.Done():
			return nil
		}
	}
	p.pending = nil
	return nil
}

// Process implements pipeline.Processor.
func (p *Processor) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	if _, audio := f.(*frame.InputAudio); !audio || p.cfg.PassAudio {
		out.Pass(f)
	}
	switch f := f.(type) {
	case *frame.InputAudio:
		p.audio(f)
	case *frame.UserStartedSpeaking:
		p.open()
	case *frame.UserStoppedSpeaking:
		p.finish(out)
	}
	return nil
}

// finish ends the open utterance's audio; its receiver closes the stream
// after the final result.
func (p *Processor) finish(out pipeline.Emitter) {
	if p.stream == nil {
		return
	}
	s := p.stream
	p.stream = nil
	if err := s.Finish(p.ctx); err != nil {
		out.Emit(&frame.Error{Err: fmt.Errorf("stt: finish: %w", err)})
		s.Close()
	}
}

func (p *Processor) audio(a *frame.InputAudio) {
	pcm := a.Samples
	if p.cfg.Resampler != nil {
		p.conv = p.cfg.Resampler.Process(p.conv[:0], pcm)
		pcm = p.conv
	}
	if p.stream != nil {
		if err := p.stream.Send(p.ctx, pcm); err != nil {
			p.out.Emit(&frame.Error{Err: fmt.Errorf("stt: send: %w", err)})
			p.stream.Close()
			p.stream = nil
		}
		return
	}
	// Keep the pre-roll.
	if len(pcm) > len(p.pre) {
		p.preN += len(pcm) - len(p.pre)
		pcm = pcm[len(pcm)-len(p.pre):]
	}
	for len(pcm) > 0 {
		k := copy(p.pre[p.preN%len(p.pre):], pcm)
		p.preN += k
		pcm = pcm[k:]
	}
}

func (p *Processor) open() {
	if p.stream != nil {
		return
	}
	s, err := p.rec.Open(p.ctx)
	if err != nil {
		p.out.Emit(&frame.Error{Err: fmt.Errorf("stt: open: %w", err)})
		return
	}
	// Send the pre-roll, oldest first.
	if n := len(p.pre); p.preN < n {
		err = send(p.ctx, s, p.pre[:p.preN])
	} else {
		i := p.preN % n
		if err = send(p.ctx, s, p.pre[i:]); err == nil {
			err = send(p.ctx, s, p.pre[:i])
		}
	}
	p.preN = 0
	if err != nil {
		p.out.Emit(&frame.Error{Err: fmt.Errorf("stt: send: %w", err)})
		s.Close()
		return
	}
	p.stream = s
	live := p.pending[:0]
	for _, done := range p.pending {
		select {
		case <-done:
		default:
			live = append(live, done)
		}
	}
	done := make(chan struct{})
	p.pending = append(live, done)
	rt, out := p.rt, p.out
	rt.Go(func(ctx context.Context) {
		defer close(done)
		receive(ctx, s, rt, out)
	})
}

// send sends pcm unless it is empty.
func send(ctx context.Context, s Stream, pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	return s.Send(ctx, pcm)
}

// receive emits the stream's results until EOF, then closes it.
func receive(ctx context.Context, s Stream, rt pipeline.Runtime, out pipeline.Emitter) {
	defer s.Close()
	for {
		r, err := s.Recv(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				out.Emit(&frame.Error{Err: fmt.Errorf("stt: recv: %w", err)})
			}
			return
		}
		text := strings.TrimSpace(r.Text)
		if text == "" && !r.Final {
			continue
		}
		// User speech belongs to the current turn: stamping it with the
		// turn of whatever the stage happens to be processing could mark
		// it stale after a barge-in, and it would be dropped.
		out.Emit(&frame.Transcript{Meta: frame.Meta{Turn: rt.Turn()}, Text: text, Final: r.Final})
	}
}

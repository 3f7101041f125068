package stt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/provider"
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
	// Queue is how many recognizer calls (20 ms audio frames, mostly) may
	// wait for the worker (default 256, about 5 s of audio).
	Queue int
}

// ErrBehind is emitted (wrapped, in a *frame.Error) when the recognizer
// falls so far behind that the audio of an utterance is dropped.
var ErrBehind = errors.New("stt: recognizer too slow")

// Processor is the speech-recognition stage. Between UserStartedSpeaking and
// UserStoppedSpeaking it streams input audio to a Recognizer (opened under the
// session context, so barge-in does not cut recognition: the speech that
// interrupts the bot is the next thing to answer), starting with up to
// PreRoll of the audio heard before the start, and emits Transcript frames:
// interim ones as they come, and the final one after the user stops. Results
// are received on a goroutine of the pipeline's (Runtime.Go) and stamped with
// the pipeline's current turn. Every frame is passed on. Failures of the
// recognizer are emitted as *frame.Error and never fail the pipeline.
//
// Recognizer I/O (Open, Send, Finish) runs off the stage goroutine, on a
// worker of the processor's fed by a bounded queue (Queue), so a slow
// recognizer never holds up the system frames the stage routes. Should the
// recognizer fall so far behind that the queue is full, the audio of that
// utterance is dropped, with one *frame.Error saying so, rather than stall
// the stage.
//
// At End (Drain) an open utterance is finished and its final transcript is
// emitted before End moves on; a stream still open when the session is
// cancelled is closed.
type Processor struct {
	rec Recognizer
	cfg ProcessorConfig

	rt   pipeline.Runtime
	out  pipeline.Emitter
	jobs chan sttJob

	// Stage goroutine only.
	pre     []int16 // ring of recent audio, oldest first once full
	preN    int
	open    bool // an utterance is open
	dropped bool // audio of the open utterance was dropped
	conv    []int16

	// Worker only.
	stream  Stream
	pending []chan struct{} // closed when a stream's receiver is done
}

// sttJob is one unit of the worker's queue.
type sttJob struct {
	kind jobKind
	pcm  []int16       // jobOpen: the pre-roll; jobAudio: the audio (owned by the job)
	utt  uint64        // jobOpen: the utterance's UserStartedSpeaking ID
	spot bool          // jobOpen: the bot was speaking: spot words (Spotter)
	done chan struct{} // jobDrain: closed once every final has been emitted
}

type jobKind uint8

const (
	jobOpen jobKind = iota
	jobAudio
	jobFinish
	jobDrain
)

// NewProcessor returns a recognition stage for rec.
func NewProcessor(rec Recognizer, cfg ProcessorConfig) *Processor {
	if cfg.PreRoll <= 0 {
		cfg.PreRoll = 500 * time.Millisecond
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 256
	}
	return &Processor{rec: rec, cfg: cfg, jobs: make(chan sttJob, cfg.Queue)}
}

// Name implements pipeline.Namer.
func (p *Processor) Name() string { return "stt" }

// Start implements pipeline.Starter: it starts the recognizer worker.
func (p *Processor) Start(ctx context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	p.rt, p.out = rt, out
	p.pre = make([]int16, max(1, p.rec.Format().Samples(p.cfg.PreRoll)))
	if w, ok := p.rec.(provider.Warmer); ok {
		w.Warm() // the first utterance finds a connection open
	}
	rt.Go(p.work)
	return nil
}

// Close implements io.Closer: it abandons an open utterance. The worker,
// which owns the stream, has stopped by then (Run waits for it).
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
func (p *Processor) Drain(ctx context.Context, _ pipeline.Emitter) error {
	p.finish()
	done := make(chan struct{})
	select {
	case p.jobs <- sttJob{kind: jobDrain, done: done}:
	case <-ctx.Done():
		return nil
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
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
		p.start(f.ID)
	case *frame.UserStoppedSpeaking:
		p.finish()
	}
	return nil
}

// queue hands j to the worker without waiting; it reports false when the
// queue is full. Stage goroutine only.
func (p *Processor) queue(j sttJob) bool {
	select {
	case p.jobs <- j:
		return true
	default:
		return false
	}
}

// finish ends the open utterance's audio; its receiver closes the stream
// after the final result.
func (p *Processor) finish() {
	if !p.open {
		return
	}
	p.open = false
	if !p.queue(sttJob{kind: jobFinish}) {
		// Not even room to finish: the utterance is lost; a later
		// open closes its stream.
		p.overrun()
	}
}

func (p *Processor) overrun() {
	if !p.dropped {
		p.dropped = true
		p.out.Emit(&frame.Error{Err: fmt.Errorf("%w: audio dropped", ErrBehind)})
	}
}

func (p *Processor) audio(a *frame.InputAudio) {
	pcm := a.Samples
	if p.cfg.Resampler != nil {
		p.conv = p.cfg.Resampler.Process(p.conv[:0], pcm)
		pcm = p.conv
	}
	if p.open {
		if !p.queue(sttJob{kind: jobAudio, pcm: slices.Clone(pcm)}) {
			p.overrun()
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

// start opens the utterance begun by the UserStartedSpeaking with ID utt,
// handing the worker the pre-roll, oldest first.
func (p *Processor) start(utt uint64) {
	if p.open {
		return
	}
	var pre []int16
	if n := len(p.pre); p.preN < n {
		pre = slices.Clone(p.pre[:p.preN])
	} else {
		i := p.preN % n
		pre = append(slices.Clone(p.pre[i:]), p.pre[:i]...)
	}
	p.preN = 0
	p.dropped = false
	// Speech over the bot is judged by what the recognizer spots in it.
	spot := p.rt.State().BotSpeaking()
	if !p.queue(sttJob{kind: jobOpen, pcm: pre, utt: utt, spot: spot}) {
		p.overrun()
		return
	}
	p.open = true
}

// work runs the recognizer calls until the session ends, then closes a
// stream still open.
func (p *Processor) work(ctx context.Context) {
	defer p.Close()
	for {
		var j sttJob
		select {
		case <-ctx.Done():
			return
		case j = <-p.jobs:
		}
		switch j.kind {
		case jobOpen:
			p.openStream(ctx, j.pcm, j.utt, j.spot)
		case jobAudio:
			if p.stream == nil {
				break // the open failed: the utterance is lost
			}
			if err := send(ctx, p.stream, j.pcm); err != nil {
				p.out.Emit(&frame.Error{Err: fmt.Errorf("stt: send: %w", err)})
				p.stream.Close()
				p.stream = nil
			}
		case jobFinish:
			if p.stream == nil {
				break
			}
			s := p.stream
			p.stream = nil
			if err := s.Finish(ctx); err != nil {
				p.out.Emit(&frame.Error{Err: fmt.Errorf("stt: finish: %w", err)})
				s.Close()
			}
		case jobDrain:
			for _, done := range p.pending {
				select {
				case <-done:
				case <-ctx.Done():
					return
				}
			}
			p.pending = nil
			close(j.done)
		}
	}
}

// openStream opens a stream for utterance utt (a spotting one if spot and
// the recognizer is a Spotter), sends it the pre-roll and starts its
// receiver. Worker only.
func (p *Processor) openStream(ctx context.Context, pre []int16, utt uint64, spot bool) {
	if p.stream != nil {
		// The previous utterance never got its finish (the queue was
		// full): abandon it.
		p.stream.Close()
		p.stream = nil
	}
	open := p.rec.Open
	if sp, ok := p.rec.(Spotter); ok && spot {
		open = sp.OpenSpotting
	}
	s, err := open(ctx)
	if err != nil {
		p.out.Emit(&frame.Error{Err: fmt.Errorf("stt: open: %w", err)})
		return
	}
	if err := send(ctx, s, pre); err != nil {
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
		receive(ctx, s, utt, rt, out)
	})
}

// send sends pcm unless it is empty.
func send(ctx context.Context, s Stream, pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	return s.Send(ctx, pcm)
}

// receive emits the stream's results, as transcripts of utterance utt,
// until EOF, then closes it.
func receive(ctx context.Context, s Stream, utt uint64, rt pipeline.Runtime, out pipeline.Emitter) {
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
		out.Emit(&frame.Transcript{Meta: frame.Meta{Turn: rt.Turn()}, Text: text, Final: r.Final, Utterance: utt, Spotted: r.Spotted})
	}
}

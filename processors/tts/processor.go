package tts

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/provider"
)

// Resampler converts audio between rates; audio.Resampler implements it.
type Resampler interface {
	Process(dst, src []int16) []int16
	Reset()
}

// ProcessorConfig configures a Processor.
type ProcessorConfig struct {
	Voice string // "" for the synthesizer's default
	// Output is the format of the emitted audio (default: the
	// synthesizer's). When it differs, Resampler must convert to it.
	Output    frame.Format
	Resampler Resampler
	// ChunkDuration is the size of emitted audio frames (default 20 ms).
	ChunkDuration int // milliseconds
	// TrimLeadingSilence drops the silence a synthesizer puts before the
	// first sentence of each answer (flite's voices start with about 200 ms
	// of it), keeping 10 ms before the first audible sample: the answer is
	// heard that much sooner. Later sentences keep their pauses.
	TrimLeadingSilence bool
	// Queue is how many sentences and frames may wait for the synthesis
	// worker (default 32).
	Queue int
}

// trimLevel is the sample magnitude (about -45 dBFS) below which leading
// audio counts as silence.
const trimLevel = 184

// Flusher is implemented by resamplers that delay their output
// (audio.Resampler): Flush appends the tail still inside the filter to dst
// and resets for a new stream. The Processor flushes after each sentence so
// the sentence's last milliseconds are not cut off.
type Flusher interface {
	Flush(dst []int16) []int16
}

// Processor is the speech-synthesis stage. It gathers LLMText into sentences
// and, for each, emits a TTSText then the sentence's audio as OutputAudio
// frames of exactly ChunkDuration (the last one padded with silence and
// carrying the sentence as Spoken). A Handoff switches to the new agent's
// voice. The text of a TextOnly answer (frame.LLMResponseStart) is dropped
// unsynthesized: observers have seen its LLMText. Other frames pass on.
// When the synthesizer is a WordSynthesizer, the audio frames carry its
// word timings (OutputAudio.Words), shifted by whatever leading silence was
// trimmed, so that the playout can report exactly the words played of a
// sentence cut off.
//
// Synthesis runs off the stage goroutine, on a worker of the processor's
// (Runtime.Go), fed by a bounded queue (Queue) of sentences to speak and of
// the frames of the answer that follow them (LLMResponseStart,
// LLMResponseEnd, Handoff, TTSText and OutputAudio keep their order with the
// audio). The stage goroutine itself only routes: every other frame (the
// bot's and the user's speaking events, interruptions, transcripts, frames
// travelling upstream) passes at once, however long a synthesis call takes.
// A full queue makes Process wait (back-pressure), until the turn is
// interrupted.
//
// Each sentence is synthesized under the turn context of the text it came
// from, so barge-in (the turn context cancelled with pipeline.ErrInterrupted)
// stops the call in flight mid-sentence, and no audio of the interrupted turn
// is emitted after that; queued sentences and frames of the cut-off turn are
// dropped unbroken (frames that frame.Survives are still passed on). An
// Interruption, or text of a newer turn, drops the text held for the old
// one. At End (Drain), the text left is spoken and the queue played out
// before End moves on. The Processor must run in a pipeline (its worker is
// started by Start).
type Processor struct {
	syn   Synthesizer
	cfg   ProcessorConfig
	chunk int // samples per emitted frame
	jobs  chan job

	// Stage goroutine only.
	fresh  bool // the next sentence is the first of an answer
	shown  bool // the answer of turn shownT is text-only
	shownT uint32
	voice  string // the active agent's voice
	sent   Sentences
	turn   uint32 // turn of the text in sent
	sess   context.Context
	rt     pipeline.Runtime

	// Worker only.
	out     pipeline.Emitter
	conv    []int16
	hold    []int16      // audio not yet emitted
	words   []frame.Word // word timings not yet emitted, in the synthesizer's time
	trimmed int          // leading samples the trim dropped from the sentence
}

// job is one unit of the worker's queue: a sentence to speak (text set), a
// frame to pass on (f set), or a barrier to signal (done set).
type job struct {
	ctx   context.Context // the turn's context (the session's, for Drain)
	turn  uint32
	text  string
	voice string
	fresh bool
	f     frame.Frame
	done  chan struct{}
}

// ErrFormat is returned by NewProcessor for an output format it cannot make.
var ErrFormat = errors.New("tts: unsupported output format")

// NewProcessor returns a synthesis stage.
func NewProcessor(syn Synthesizer, cfg ProcessorConfig) (*Processor, error) {
	in := syn.Format()
	if cfg.Output == (frame.Format{}) {
		cfg.Output = in
	}
	if cfg.Output.Channels != 1 || in.Channels != 1 || cfg.Output.SampleRate <= 0 || in.SampleRate <= 0 {
		return nil, fmt.Errorf("%w: %+v from %+v", ErrFormat, cfg.Output, in)
	}
	if cfg.Output.SampleRate != in.SampleRate && cfg.Resampler == nil {
		return nil, fmt.Errorf("%w: %d Hz needs a resampler from %d Hz", ErrFormat, cfg.Output.SampleRate, in.SampleRate)
	}
	if cfg.ChunkDuration <= 0 {
		cfg.ChunkDuration = 20
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 32
	}
	chunk := cfg.Output.SampleRate * cfg.ChunkDuration / 1000
	if chunk <= 0 {
		return nil, fmt.Errorf("%w: %d ms chunks at %d Hz", ErrFormat, cfg.ChunkDuration, cfg.Output.SampleRate)
	}
	return &Processor{syn: syn, cfg: cfg, chunk: chunk, voice: cfg.Voice, jobs: make(chan job, cfg.Queue)}, nil
}

// Name implements pipeline.Namer.
func (p *Processor) Name() string { return "tts" }

// Start implements pipeline.Starter: it starts the synthesis worker.
func (p *Processor) Start(ctx context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	p.sess, p.rt, p.out = ctx, rt, out
	if w, ok := p.syn.(provider.Warmer); ok {
		w.Warm() // the first sentence finds a connection open
	}
	rt.Go(p.work)
	return nil
}

// Process implements pipeline.Processor.
func (p *Processor) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	switch f := f.(type) {
	case *frame.LLMText:
		if p.shown && f.Turn == p.shownT {
			return nil // shown, not spoken
		}
		p.own(f.Turn)
		for _, s := range p.sent.Add(f.Text) {
			p.say(ctx, f.Turn, s)
		}
		return nil
	case *frame.LLMResponseEnd:
		p.own(f.Turn)
		if s := p.sent.Flush(); s != "" {
			p.say(ctx, f.Turn, s)
		}
	case *frame.LLMResponseStart:
		p.fresh = true
		p.shown, p.shownT = f.TextOnly, f.Turn
	case *frame.Handoff:
		// Text the previous agent said is spoken in its voice; what
		// follows in the new agent's (or the default).
		if s := p.sent.Flush(); s != "" {
			p.say(ctx, f.Turn, s)
		}
		p.voice = f.Voice
		if p.voice == "" {
			p.voice = p.cfg.Voice
		}
	case *frame.Interruption:
		p.sent.Reset()
	}
	switch f.(type) {
	case *frame.LLMResponseStart, *frame.LLMResponseEnd, *frame.Handoff, *frame.TTSText, *frame.OutputAudio:
		// Part of an answer: it keeps its place after the audio of the
		// sentences before it.
		p.enqueue(ctx, job{ctx: ctx, turn: f.Header().Turn, f: f})
	default:
		out.Pass(f) // never behind a synthesis
	}
	return nil
}

// say queues a sentence. Stage goroutine only.
func (p *Processor) say(ctx context.Context, turn uint32, text string) {
	p.enqueue(ctx, job{ctx: ctx, turn: turn, text: text, voice: p.voice, fresh: p.fresh})
	p.fresh = false
}

// enqueue queues j, waiting while the queue is full until j's turn is cut
// off (then j is dropped, unless it is a frame that survives interruptions,
// which waits for the session instead).
func (p *Processor) enqueue(ctx context.Context, j job) {
	select {
	case p.jobs <- j:
		return
	default:
	}
	if j.f != nil && frame.Survives(j.f) {
		ctx = p.sess
	}
	select {
	case p.jobs <- j:
	case <-ctx.Done():
	}
}

// own drops held text of a turn older than turn.
func (p *Processor) own(turn uint32) {
	if turn != p.turn {
		p.sent.Reset()
		p.turn = turn
	}
}

// Drain implements pipeline.Drainer: it speaks what text is left and waits
// until the worker has emitted everything queued.
func (p *Processor) Drain(ctx context.Context, _ pipeline.Emitter) error {
	if s := p.sent.Flush(); s != "" {
		p.enqueue(ctx, job{ctx: ctx, turn: p.rt.Turn(), text: s, voice: p.voice, fresh: p.fresh})
		p.fresh = false
	}
	done := make(chan struct{})
	p.enqueue(ctx, job{ctx: ctx, done: done})
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// work runs the queue until the session ends.
func (p *Processor) work(sess context.Context) {
	for {
		var j job
		select {
		case <-sess.Done():
			return
		case j = <-p.jobs:
		}
		switch {
		case j.done != nil:
			close(j.done)
		case j.f != nil:
			if j.ctx.Err() == nil || frame.Survives(j.f) {
				p.out.Emit(j.f)
			}
		case j.ctx.Err() == nil: // a sentence of a turn still current
			p.speak(j)
		}
	}
}

// speak synthesizes one sentence. Worker only.
func (p *Processor) speak(j job) {
	ctx, turn, text, out := j.ctx, j.turn, j.text, p.out
	out.Emit(&frame.TTSText{Meta: frame.Meta{Turn: turn}, Text: text})
	resample := p.cfg.Output.SampleRate != p.syn.Format().SampleRate
	if resample {
		p.cfg.Resampler.Reset()
	}
	p.hold, p.words, p.trimmed = p.hold[:0], p.words[:0], 0
	trim := p.cfg.TrimLeadingSilence && j.fresh
	keep := p.cfg.Output.SampleRate / 100 // 10 ms before the onset
	emit := func(pcm []int16) error {
		if ctx.Err() != nil {
			return context.Cause(ctx) // nothing of a cut-off turn goes out
		}
		if resample {
			p.conv = p.cfg.Resampler.Process(p.conv[:0], pcm)
			pcm = p.conv
		}
		if trim {
			i := slices.IndexFunc(pcm, func(v int16) bool { return v > trimLevel || v < -trimLevel })
			if i < 0 {
				p.trimmed += len(pcm)
				return nil
			}
			p.trimmed += max(0, i-keep)
			pcm, trim = pcm[max(0, i-keep):], false
		}
		p.hold = append(p.hold, pcm...)
		p.send(turn, out)
		return nil
	}
	var err error
	if ws, ok := p.syn.(WordSynthesizer); ok {
		err = ws.SynthesizeWords(ctx, text, j.voice, emit, func(w []frame.Word) { p.words = append(p.words, w...) })
	} else {
		err = p.syn.Synthesize(ctx, text, j.voice, emit)
	}
	if err != nil {
		p.hold, p.words = p.hold[:0], p.words[:0]
		if ctx.Err() == nil {
			out.Emit(&frame.Error{Err: fmt.Errorf("tts: %w", err)})
		}
		return
	}
	if fl, ok := p.cfg.Resampler.(Flusher); ok && resample {
		p.hold = fl.Flush(p.hold)
	}
	p.send(turn, out)
	// The rest, padded to a whole chunk, carries the sentence; when the
	// audio ended on a chunk boundary, an empty frame carries it.
	var last []int16
	if len(p.hold) > 0 {
		last = make([]int16, p.chunk)
		copy(last, p.hold)
	}
	p.hold = p.hold[:0]
	out.Emit(&frame.OutputAudio{Meta: frame.Meta{Turn: turn}, Format: p.cfg.Output, Samples: last, Spoken: text, Words: p.timings()})
}

// timings returns the word timings not yet emitted, moved to the time of
// the emitted audio (less the trimmed silence), and forgets them.
func (p *Processor) timings() []frame.Word {
	if len(p.words) == 0 {
		return nil
	}
	shift := p.cfg.Output.Duration(p.trimmed)
	ws := make([]frame.Word, len(p.words))
	for i, w := range p.words {
		ws[i] = frame.Word{Text: w.Text, Start: max(0, w.Start-shift), End: max(0, w.End-shift)}
	}
	p.words = p.words[:0]
	return ws
}

// send emits the whole chunks of held audio at once (the first chunk of an
// answer is not held back waiting for more).
func (p *Processor) send(turn uint32, out pipeline.Emitter) {
	i := 0
	for ; len(p.hold)-i >= p.chunk; i += p.chunk {
		s := make([]int16, p.chunk)
		copy(s, p.hold[i:])
		out.Emit(&frame.OutputAudio{Meta: frame.Meta{Turn: turn}, Format: p.cfg.Output, Samples: s, Words: p.timings()})
	}
	if i > 0 {
		p.hold = append(p.hold[:0], p.hold[i:]...)
	}
}

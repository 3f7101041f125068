package stt_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/pipelinetest"
	"github.com/voiced-dev/voiced/processors/stt"
)

const frameN = 300 // samples per input frame: an awkward size

// ramp is the test signal: sample k of the input stream.
func ramp(k int) int16 { return int16(k%30000 + 1) }

// span is what a recognizer should receive: ramp(step*m) for m in [from, to).
func span(from, to, step int) []int16 {
	var s []int16
	for m := from; m < to; m++ {
		s = append(s, ramp(step*m))
	}
	return s
}

// fakeRec hands out fakeStreams. Each stream produces an interim result
// "heard N" each time another 3200 samples have been sent, and after Finish
// a blank interim (to be skipped) and the final " final <samples> ", then
// io.EOF.
type fakeRec struct {
	t       testing.TB
	format  frame.Format
	openErr []error       // errors for the first opens
	sendErr int           // the Send call (1-based, per stream) that fails; 0 for none
	recvErr error         // returned by Recv instead of the final result
	hold    bool          // queue the final result only on release
	block   chan struct{} // if set, Send waits for it to close (or ctx)

	mu      sync.Mutex
	streams []*fakeStream
}

var (
	errOpen = errors.New("no recognizer today")
	errSend = errors.New("connection reset")
	errRecv = errors.New("recognizer crashed")
)

func (r *fakeRec) Format() frame.Format { return r.format }

func (r *fakeRec) Open(ctx context.Context) (stt.Stream, error) {
	if ctx.Err() != nil {
		r.t.Errorf("Open with a done context")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.openErr) > 0 {
		err := r.openErr[0]
		r.openErr = r.openErr[1:]
		return nil, err
	}
	s := &fakeStream{r: r, wake: make(chan struct{}, 1)}
	r.streams = append(r.streams, s)
	return s, nil
}

// release queues the held final results.
func (r *fakeRec) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.streams {
		if s.finished > 0 && !s.eof {
			s.final()
		}
	}
}

type fakeStream struct {
	r    *fakeRec
	wake chan struct{}

	// guarded by r.mu
	sent     []int16
	sends    int
	finished int
	closed   int
	queue    []stt.Result
	eof      bool
	failed   bool
	spot     bool // opened with OpenSpotting (spotRec)
}

func (s *fakeStream) push(res stt.Result) {
	s.queue = append(s.queue, res)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *fakeStream) final() {
	s.push(stt.Result{Text: "  "})
	res := stt.Result{Text: fmt.Sprintf(" final %d ", len(s.sent)), Final: true}
	if s.spot {
		res.Spotted = []frame.Word{{Text: "stop", End: 300 * time.Millisecond}}
	}
	s.push(res)
	s.eof = true
}

func (s *fakeStream) Send(ctx context.Context, pcm []int16) error {
	t := s.r.t
	if s.r.block != nil {
		select {
		case <-s.r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		t.Errorf("Send with a done context")
	case s.closed > 0:
		t.Errorf("Send after Close")
	case s.finished > 0:
		t.Errorf("Send after Finish")
	case s.failed:
		t.Errorf("Send after a failed Send")
	case len(pcm) == 0:
		t.Errorf("Send of no audio")
	}
	s.sends++
	if s.sends == s.r.sendErr {
		s.failed = true
		return errSend
	}
	before := len(s.sent) / 3200
	s.sent = append(s.sent, pcm...)
	if n := len(s.sent) / 3200; n > before {
		s.push(stt.Result{Text: fmt.Sprintf("heard %d", n)})
	}
	return nil
}

func (s *fakeStream) Finish(ctx context.Context) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.closed > 0 {
		s.r.t.Errorf("Finish after Close")
	}
	s.finished++
	if s.finished > 1 {
		s.r.t.Errorf("Finish called %d times", s.finished)
	}
	if s.r.recvErr != nil {
		s.push(stt.Result{}) // wakes Recv, which fails
		return nil
	}
	if !s.r.hold {
		s.final()
	}
	return nil
}

func (s *fakeStream) Recv(ctx context.Context) (stt.Result, error) {
	for {
		s.r.mu.Lock()
		switch {
		case s.closed > 0:
			s.r.mu.Unlock()
			return stt.Result{}, stt.ErrClosed
		case s.finished > 0 && s.r.recvErr != nil:
			s.r.mu.Unlock()
			return stt.Result{}, s.r.recvErr
		case len(s.queue) > 0:
			res := s.queue[0]
			s.queue = s.queue[1:]
			s.r.mu.Unlock()
			return res, nil
		case s.eof:
			s.r.mu.Unlock()
			return stt.Result{}, io.EOF
		}
		s.r.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return stt.Result{}, ctx.Err()
		}
	}
}

func (s *fakeStream) Close() error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.closed++
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// decimator is a fake Resampler halving the rate by keeping the samples at
// even stream positions; it checks the stream it is given is continuous.
type decimator struct {
	t testing.TB
	k int // stream position of the next input sample
}

func (d *decimator) Process(dst, src []int16) []int16 {
	for _, v := range src {
		if v != ramp(d.k) {
			d.t.Errorf("resampler input sample %d = %d, want %d", d.k, v, ramp(d.k))
		}
		if d.k%2 == 0 {
			dst = append(dst, v)
		}
		d.k++
	}
	return dst
}

type recorder = pipelinetest.Recorder

// feeder pushes a script into a pipeline: "3a" is three audio frames of the
// ramp, "start"/"stop" the VAD events, "end" End. It waits for the pipeline
// to settle after every frame so the output order is deterministic.
type feeder struct {
	p *pipeline.Pipeline
	k int // next sample of the ramp
}

func (fd *feeder) run(t *testing.T, script string) {
	ctx := context.Background()
	for _, w := range strings.Fields(script) {
		switch w {
		case "start":
			fd.push(t, &frame.UserStartedSpeaking{Confidence: 0.9})
		case "stop":
			fd.push(t, &frame.UserStoppedSpeaking{At: time.Now()})
		case "end":
			if err := fd.p.Push(ctx, &frame.End{}); err != nil {
				t.Fatal(err)
			}
		default:
			var n int
			if _, err := fmt.Sscanf(w, "%da", &n); err != nil {
				t.Fatalf("bad script word %q", w)
			}
			for range n {
				pcm := make([]int16, frameN)
				for j := range pcm {
					pcm[j] = ramp(fd.k + j)
				}
				fd.k += frameN
				fd.push(t, &frame.InputAudio{Format: frame.Mono16k, Samples: pcm})
			}
		}
	}
}

func (fd *feeder) push(t *testing.T, f frame.Frame) {
	if err := fd.p.Push(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	synctest.Wait()
}

func TestGolden(t *testing.T) {
	pre := 100 * time.Millisecond // 1600 samples at 16 kHz
	for _, tc := range []struct {
		name   string
		rec    *fakeRec
		cfg    stt.ProcessorConfig
		script string
		want   string
		sent   [][]int16 // per stream, what the recognizer received
		errs   []error   // what the Error frames wrap
	}{{
		// 3300 samples before the start: the ring wrapped, the pre-roll is
		// the last 1600, oldest first, then the live audio.
		name:   "pre-roll wraps",
		script: "11a start 16a stop 3a end",
		want:   "A300*11 Start A300*6 T(heard 1) A300*10 T(heard 2) Stop F(final 6400) A300*3 End",
		sent:   [][]int16{span(1700, 8100, 1)},
	}, {
		name:   "short pre-roll",
		script: "3a start 6a stop end",
		want:   "A300*3 Start A300*6 Stop F(final 2700) End",
		sent:   [][]int16{span(0, 2700, 1)},
	}, {
		name:   "no pre-roll",
		script: "start 2a stop end",
		want:   "Start A300*2 Stop F(final 600) End",
		sent:   [][]int16{span(0, 600, 1)},
	}, {
		// The second pre-roll is taken from the audio after the first stop.
		name:   "two utterances",
		script: "2a start 4a stop 8a start 2a stop end",
		want:   "A300*2 Start A300*4 Stop F(final 1800) A300*8 Start A300*2 Stop F(final 2200) End",
		sent:   [][]int16{span(0, 1800, 1), span(2600, 4800, 1)},
	}, {
		name:   "stray events",
		script: "stop 2a start 2a start 2a stop stop 1a end",
		want:   "Stop A300*2 Start A300*2 Start A300*2 Stop F(final 1800) Stop A300 End",
		sent:   [][]int16{span(0, 1800, 1)},
	}, {
		// The first open fails: an Error frame, the session goes on; that
		// utterance is lost, and the next one has its own pre-roll.
		name:   "open error",
		rec:    &fakeRec{openErr: []error{errOpen}},
		script: "2a start 2a stop 2a start 2a stop end",
		want:   "A300*2 Start E A300*2 Stop A300*2 Start A300*2 Stop F(final 1200) End",
		sent:   [][]int16{span(1200, 2400, 1)},
		errs:   []error{errOpen},
	}, {
		// The third Send (the second live frame, after the pre-roll and
		// the first) fails: the stream is closed and nothing more is sent
		// to it.
		name:   "send error",
		rec:    &fakeRec{sendErr: 3},
		script: "11a start 3a stop 1a end",
		want:   "A300*11 Start A300*2 E A300 Stop A300 End",
		sent:   [][]int16{span(1700, 3600, 1)},
		errs:   []error{errSend},
	}, {
		name:   "recv error",
		rec:    &fakeRec{recvErr: errRecv},
		script: "2a start 2a stop 1a end",
		want:   "A300*2 Start A300*2 Stop E A300 End",
		sent:   [][]int16{span(0, 1200, 1)},
		errs:   []error{errRecv},
	}, {
		// End in mid-utterance: Drain finishes it and the final transcript
		// leaves before End.
		name:   "end while speaking",
		script: "3a start 3a end",
		want:   "A300*3 Start A300*3 F(final 1800) End",
		sent:   [][]int16{span(0, 1800, 1)},
	}, {
		// A recognizer at 8 kHz behind a resampler: the pre-roll is counted
		// in the recognizer's samples (800), and all audio goes through the
		// resampler in order.
		name:   "resampled",
		rec:    &fakeRec{format: frame.Format{SampleRate: 8000, Channels: 1}},
		cfg:    stt.ProcessorConfig{Resampler: &decimator{}},
		script: "11a start 4a stop end",
		want:   "A300*11 Start A300*4 Stop F(final 1400) End",
		sent:   [][]int16{span(850, 2250, 2)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := tc.rec
				if rec == nil {
					rec = &fakeRec{}
				}
				rec.t = t
				if rec.format == (frame.Format{}) {
					rec.format = frame.Mono16k
				}
				if d, ok := tc.cfg.Resampler.(*decimator); ok {
					d.t = t
				}
				cfg := tc.cfg
				cfg.PreRoll = pre
				cfg.PassAudio = true // the goldens show where audio falls between events
				var out recorder
				p := pipeline.New(pipeline.Options{Sink: out.Sink}, stt.NewProcessor(rec, cfg))
				ctx := context.Background()
				done := make(chan error)
				go func() { done <- p.Run(ctx) }()
				(&feeder{p: p}).run(t, tc.script)
				if err := <-done; err != nil {
					t.Fatalf("Run: %v", err)
				}
				if got := out.Golden(); got != tc.want {
					t.Errorf("frames out =\n %q\nwant\n %q", got, tc.want)
				}
				checkStreams(t, rec, tc.sent)
				var errs []error
				for _, f := range out.Frames() {
					if e, ok := f.(*frame.Error); ok {
						errs = append(errs, e.Err)
						if e.Fatal {
							t.Errorf("fatal error frame %v", e.Err)
						}
					}
				}
				if len(errs) != len(tc.errs) {
					t.Fatalf("error frames %v, want %v", errs, tc.errs)
				}
				for i := range errs {
					if !errors.Is(errs[i], tc.errs[i]) {
						t.Errorf("error frame %d = %v, want %v", i, errs[i], tc.errs[i])
					}
				}
			})
		})
	}
}

// checkStreams asserts each stream received exactly want, was finished at
// most once and is closed.
func checkStreams(t *testing.T, rec *fakeRec, want [][]int16) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.streams) != len(want) {
		t.Fatalf("%d streams opened, want %d", len(rec.streams), len(want))
	}
	for i, s := range rec.streams {
		if !slices.Equal(s.sent, want[i]) {
			n := 0
			for n < min(len(s.sent), len(want[i])) && s.sent[n] == want[i][n] {
				n++
			}
			t.Errorf("stream %d got %d samples, want %d; first difference at %d", i, len(s.sent), len(want[i]), n)
		}
		if s.closed == 0 {
			t.Errorf("stream %d was not closed", i)
		}
	}
}

// TestCancelClosesStream cancels the session in mid-utterance: the open
// stream is closed, not finished, and no goroutine is left (synctest fails
// the test if the receiver were still blocked).
func TestCancelClosesStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &fakeRec{t: t, format: frame.Mono16k}
		p := pipeline.New(pipeline.Options{}, stt.NewProcessor(rec, stt.ProcessorConfig{}))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		(&feeder{p: p}).run(t, "3a start 3a")
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		checkStreams(t, rec, [][]int16{span(0, 1800, 1)})
		if f := rec.streams[0].finished; f != 0 {
			t.Errorf("stream finished %d times after a cancel", f)
		}
	})
}

// TestFinalSurvivesBargeIn: a final transcript arriving after the pipeline
// moved to a new turn is the user's speech of that turn, and must not be
// dropped as stale on its way downstream.
func TestFinalSurvivesBargeIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &fakeRec{t: t, format: frame.Mono16k, hold: true}
		var out recorder
		pass := pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
			out.Pass(f)
			return nil
		})
		p := pipeline.New(pipeline.Options{Sink: out.Sink}, stt.NewProcessor(rec, stt.ProcessorConfig{PassAudio: true}), pass)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		fd := &feeder{p: p}
		fd.run(t, "2a start 2a stop")
		p.Interrupt("barge-in")
		rec.release()
		synctest.Wait()
		fd.run(t, "end")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := out.Golden(), "A300*2 Start A300*2 Stop F(final 1200) End"; got != want {
			t.Fatalf("frames out =\n %q\nwant\n %q", got, want)
		}
		for _, f := range out.Frames() {
			if tr, ok := f.(*frame.Transcript); ok && tr.Turn != 2 {
				t.Errorf("transcript stamped turn %d, want 2", tr.Turn)
			}
		}
	})
}

// TestConsumesAudioByDefault: the user's audio stops at this stage unless
// PassAudio is set, so busy later stages never queue it.
func TestConsumesAudioByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &fakeRec{t: t, format: frame.Mono16k}
		var out recorder
		p := pipeline.New(pipeline.Options{Sink: out.Sink}, stt.NewProcessor(rec, stt.ProcessorConfig{}))
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		(&feeder{p: p}).run(t, "2a start 2a stop end")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := out.Golden(), "Start Stop F(final 1200) End"; got != want {
			t.Fatalf("frames out =\n %q\nwant\n %q", got, want)
		}
	})
}

// BenchmarkAudio measures the per-frame cost of keeping the pre-roll while
// the user is silent (the common case: every 20 ms frame of a session).
func BenchmarkAudio(b *testing.B) {
	rec := &fakeRec{t: b, format: frame.Mono16k}
	p := stt.NewProcessor(rec, stt.ProcessorConfig{})
	var out nopEmitter
	ctx, cancel := context.WithCancel(context.Background())
	rt := &benchRuntime{}
	defer func() { cancel(); rt.wg.Wait() }()
	if err := p.Start(ctx, rt.with(ctx), out); err != nil {
		b.Fatal(err)
	}
	a := &frame.InputAudio{Format: frame.Mono16k, Samples: span(0, 320, 1)}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Process(ctx, a, out); err != nil {
			b.Fatal(err)
		}
	}
}

type nopEmitter struct{}

func (nopEmitter) Emit(frame.Frame)   {}
func (nopEmitter) EmitUp(frame.Frame) {}
func (nopEmitter) Pass(frame.Frame)   {}

// benchRuntime runs a stage's goroutines outside a pipeline.
type benchRuntime struct {
	ctx   context.Context
	wg    sync.WaitGroup
	state pipeline.State
}

func (r *benchRuntime) with(ctx context.Context) *benchRuntime { r.ctx = ctx; return r }

func (r *benchRuntime) Interrupt(string) uint32 { return 1 }
func (r *benchRuntime) Turn() uint32            { return 1 }
func (r *benchRuntime) State() *pipeline.State  { return &r.state }
func (r *benchRuntime) Logger() *slog.Logger    { return slog.New(slog.DiscardHandler) }
func (r *benchRuntime) Go(fn func(ctx context.Context)) {
	r.wg.Add(1)
	go func() { defer r.wg.Done(); fn(r.ctx) }()
}

// TestBlockedRecognizerDoesNotHoldFrames: while the recognizer is stuck in
// Send, the stage goes on routing frames (system frames at once), keeps the
// audio queued for it in order, and emits the final once it recovers.
func TestBlockedRecognizerDoesNotHoldFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &fakeRec{t: t, format: frame.Mono16k, block: make(chan struct{})}
		var out recorder
		p := pipeline.New(pipeline.Options{Sink: out.Sink}, stt.NewProcessor(rec, stt.ProcessorConfig{PreRoll: 100 * time.Millisecond}))
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		fd := &feeder{p: p}
		fd.run(t, "2a start 3a")
		p.Push(ctx, &frame.BotStartedSpeaking{})
		synctest.Wait()
		if got, want := out.Golden(), "Start BotStart"; got != want {
			t.Fatalf("frames out while the recognizer is stuck = %q, want %q", got, want)
		}
		close(rec.block)
		fd.run(t, "stop end")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := out.Golden(), "Start BotStart Stop F(final 1500) End"; got != want {
			t.Fatalf("frames out = %q, want %q", got, want)
		}
		checkStreams(t, rec, [][]int16{span(0, 1500, 1)})
	})
}

// TestRecognizerFarBehind: with the worker stuck and its queue full, the
// stage drops the utterance's audio with one ErrBehind error instead of
// stalling, and goes on routing frames.
func TestRecognizerFarBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &fakeRec{t: t, format: frame.Mono16k, block: make(chan struct{})}
		var out recorder
		p := pipeline.New(pipeline.Options{Sink: out.Sink}, stt.NewProcessor(rec, stt.ProcessorConfig{Queue: 2}))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		// The open takes the worker (stuck in the pre-roll's Send); two
		// frames fill the queue; the rest are dropped.
		(&feeder{p: p}).run(t, "2a start 6a stop")
		p.Push(ctx, &frame.BotStartedSpeaking{})
		synctest.Wait()
		var errs []error
		for _, f := range out.Frames() {
			if e, ok := f.(*frame.Error); ok {
				errs = append(errs, e.Err)
			}
		}
		if len(errs) != 1 || !errors.Is(errs[0], stt.ErrBehind) {
			t.Errorf("error frames %v, want one ErrBehind", errs)
		}
		if got := pipelinetest.Find[*frame.BotStartedSpeaking](&out); len(got) != 1 {
			t.Errorf("the stage stalled: %s", out.Golden())
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
	})
}

// TestTranscriptsNameTheirUtterance: each transcript carries the ID of the
// UserStartedSpeaking that opened its speech, even when it comes out after
// the next utterance began (a recognizer that is behind).
func TestTranscriptsNameTheirUtterance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &fakeRec{t: t, format: frame.Mono16k, hold: true}
		var out recorder
		p := pipeline.New(pipeline.Options{Sink: out.Sink}, stt.NewProcessor(rec, stt.ProcessorConfig{}))
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		fd := &feeder{p: p}
		fd.run(t, "2a start 2a stop 1a start 4a")
		rec.release()
		synctest.Wait()
		fd.run(t, "stop")
		rec.release()
		synctest.Wait()
		fd.run(t, "end")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var starts []uint64
		got := map[string]uint64{}
		for _, f := range out.Frames() {
			switch f := f.(type) {
			case *frame.UserStartedSpeaking:
				starts = append(starts, f.ID)
			case *frame.Transcript:
				got[f.Text] = f.Utterance
			}
		}
		if len(starts) != 2 || starts[0] == 0 || starts[0] == starts[1] {
			t.Fatalf("starts %v", starts)
		}
		want := map[string]uint64{"final 1200": starts[0], "final 1500": starts[1]}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("transcripts' utterances %v, want %v", got, want)
		}
	})
}

// spotRec is a fakeRec that is an stt.Spotter: its spotting streams'
// finals carry a spotted "stop".
type spotRec struct{ *fakeRec }

func (r spotRec) OpenSpotting(ctx context.Context) (stt.Stream, error) {
	st, err := r.Open(ctx)
	if err == nil {
		r.mu.Lock()
		st.(*fakeStream).spot = true
		r.mu.Unlock()
	}
	return st, err
}

// TestSpotsOverTheBot: a Spotter's spotting streams are opened for speech
// that starts while the bot speaks, and their spotted words reach the
// transcript; other speech is opened plainly (the second pass would only
// delay its final).
func TestSpotsOverTheBot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := spotRec{&fakeRec{t: t, format: frame.Mono16k}}
		var out recorder
		p := pipeline.New(pipeline.Options{Sink: out.Sink}, stt.NewProcessor(rec, stt.ProcessorConfig{}))
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		fd := &feeder{p: p}
		fd.run(t, "2a start 2a stop")
		synctest.Wait()
		if err := p.Push(ctx, &frame.BotStartedSpeaking{}); err != nil {
			t.Fatal(err)
		}
		fd.run(t, "start 2a stop")
		synctest.Wait()
		fd.run(t, "end")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range out.Frames() {
			if tr, ok := f.(*frame.Transcript); ok && tr.Final {
				got = append(got, fmt.Sprintf("%s %v", tr.Text, tr.Spotted))
			}
		}
		want := []string{"final 1200 []", "final 600 [{stop 0s 300ms}]"} // the second without pre-roll
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("finals %q, want %q", got, want)
		}
	})
}

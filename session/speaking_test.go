package session_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/idle"
	"github.com/voiced-dev/voiced/processors/stt"
	"github.com/voiced-dev/voiced/processors/tts"
	"github.com/voiced-dev/voiced/processors/turntaking"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/transport"
)

// The test of this file runs the conversation's stages with slow providers:
// a synthesizer at real-time speed (a 2 s sentence takes 2 s) and a
// recognizer whose Send blocks for good. The stages before synthesis must
// learn that the bot speaks as its first sample is played, not a sentence
// later, and judge the user's speech against that.

const frameMs = 20 // input audio and synthesis chunk, in milliseconds

// realtimeSynth speaks each sentence as 2 s of audio, made in real time.
type realtimeSynth struct {
	mu     sync.Mutex
	texts  []string
	causes []error
}

func (*realtimeSynth) Format() frame.Format { return frame.Mono16k }

func (s *realtimeSynth) Synthesize(ctx context.Context, text, voice string, emit func([]int16) error) error {
	s.mu.Lock()
	s.texts = append(s.texts, text)
	s.mu.Unlock()
	if voice != "" {
		return fmt.Errorf("voice %q, want the default", voice)
	}
	pcm := make([]int16, frame.Mono16k.Samples(frameMs*time.Millisecond))
	for i := range pcm {
		pcm[i] = 4000
	}
	for range 2000 / frameMs {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.causes = append(s.causes, context.Cause(ctx))
			s.mu.Unlock()
			return ctx.Err()
		case <-time.After(frameMs * time.Millisecond):
		}
		if err := emit(pcm); err != nil {
			return err
		}
	}
	return nil
}

// stuckRecognizer opens streams whose Send blocks until the session ends.
type stuckRecognizer struct {
	mu      sync.Mutex
	opened  int
	entered int // Send calls entered
}

func (*stuckRecognizer) Format() frame.Format { return frame.Mono16k }

func (r *stuckRecognizer) Open(ctx context.Context) (stt.Stream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened++
	return &stuckStream{r: r}, nil
}

type stuckStream struct{ r *stuckRecognizer }

func (s *stuckStream) Send(ctx context.Context, pcm []int16) error {
	if len(pcm) == 0 {
		return errors.New("empty send")
	}
	s.r.mu.Lock()
	s.r.entered++
	s.r.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

func (s *stuckStream) Finish(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

func (s *stuckStream) Recv(ctx context.Context) (stt.Result, error) {
	<-ctx.Done()
	return stt.Result{}, ctx.Err()
}

func (s *stuckStream) Close() error { return nil }

// scheduleModel scores speech by the fake clock, from a schedule relative to
// t0: the test's user.
type scheduleModel struct {
	t0    time.Time
	sched []window
}

type window struct {
	from, to time.Duration
	prob     float32
}

func (m *scheduleModel) NewAnalyzer(int) (vad.Analyzer, error) { return m, nil }
func (m *scheduleModel) ChunkSamples() int                     { return frame.Mono16k.Samples(frameMs * time.Millisecond) }
func (m *scheduleModel) Reset()                                {}
func (m *scheduleModel) Close() error                          { return nil }

func (m *scheduleModel) Speech([]int16) (float32, error) {
	at := time.Since(m.t0)
	for _, w := range m.sched {
		if at >= w.from && at < w.to {
			return w.prob, nil
		}
	}
	return 0.05, nil
}

// probe passes every frame on and records when it first saw the bot start
// speaking (travelling upstream, so after the stage that follows it).
type probe struct {
	name string
	mu   sync.Mutex
	seen time.Time
}

func (p *probe) Name() string { return "probe " + p.name }

func (p *probe) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	if _, ok := f.(*frame.BotStartedSpeaking); ok {
		p.mu.Lock()
		if p.seen.IsZero() {
			p.seen = time.Now()
		}
		p.mu.Unlock()
	}
	out.Pass(f)
	return nil
}

// stateWriter is the client: it records when the first sample was played
// and what the conversation state said then.
type stateWriter struct {
	state   func() *pipeline.State
	mu      sync.Mutex
	first   time.Time
	botThen bool
	written int
}

func (w *stateWriter) WriteAudio(pcm []int16) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first.IsZero() {
		w.first = time.Now()
		w.botThen = w.state().BotSpeaking()
	}
	w.written += len(pcm)
	return nil
}

// TestBotSpeakingReachesEveryStageWithSlowProviders: the stages before a
// synthesizer busy with a 2 s sentence, and behind a recognizer stuck in
// Send, learn that the bot speaks within 40 ms of its first played sample;
// the user's speech during synthesis is judged against it (the echo guard
// holds; a short burst over the bot does not interrupt it).
func TestBotSpeakingReachesEveryStageWithSlowProviders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		model := &scheduleModel{t0: t0, sched: []window{
			// The user asks (the bot is silent): a turn, and an
			// interruption of whatever was being prepared.
			{0, 300 * time.Millisecond, 0.95},
			// While the bot speaks: the echo of its voice, over
			// Confidence but under BotConfidence.
			{1500 * time.Millisecond, 2000 * time.Millisecond, 0.7},
			// While the bot speaks: a 300 ms cough, over BotConfidence.
			{2500 * time.Millisecond, 2800 * time.Millisecond, 0.95},
		}}
		rec := &stuckRecognizer{}
		syn := &realtimeSynth{}
		synth, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		turns, err := turntaking.New(turntaking.Config{})
		if err != nil {
			t.Fatal(err)
		}
		var p *pipeline.Pipeline
		w := &stateWriter{state: func() *pipeline.State { return p.State() }}
		probes := map[string]*probe{"vad": {name: "vad"}, "stt": {name: "stt"}, "turn-taking": {name: "turn-taking"}, "idle": {name: "idle"}}
		var mu sync.Mutex
		var starts, interruptions int
		obs := pipeline.ObserverFunc(func(h pipeline.Hop) {
			if !h.First {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch h.Frame.(type) {
			case *frame.UserStartedSpeaking:
				starts++
			case *frame.Interruption:
				interruptions++
			}
		})
		p = pipeline.New(pipeline.Options{Observers: []pipeline.Observer{obs}},
			probes["vad"], vad.NewDetector(model, 16000, vad.Config{BotConfidence: 0.85}),
			probes["stt"], stt.NewProcessor(rec, stt.ProcessorConfig{}),
			probes["turn-taking"], turns,
			probes["idle"], idle.New(idle.Config{Timeout: time.Second}),
			synth,
			transport.NewPlayout(w, transport.PlayoutConfig{}),
		)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()

		// The user's microphone: 20 ms frames in real time.
		fed := make(chan struct{})
		go func() {
			defer close(fed)
			pcm := make([]int16, frame.Mono16k.Samples(frameMs*time.Millisecond))
			for i := range pcm {
				pcm[i] = int16(3000 - 6000*(i%2))
			}
			for ctx.Err() == nil {
				if p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: pcm}) != nil {
					return
				}
				time.Sleep(frameMs * time.Millisecond)
			}
		}()

		// The answer, one second in (the agent stands aside: its frames
		// are pushed in the current turn).
		time.Sleep(time.Second)
		for _, f := range []frame.Frame{
			&frame.LLMResponseStart{},
			&frame.LLMText{Text: "The first sentence is here. "},
			&frame.LLMText{Text: "The second one follows."},
			&frame.LLMResponseEnd{},
		} {
			if err := p.Push(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		// In the second sentence, the bot still speaks.
		time.Sleep(3 * time.Second)
		speaking := p.State().BotSpeaking()
		// Both sentences play (to about 5.1 s), short of the idle
		// prompt.
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		cancel()
		<-fed
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}

		w.mu.Lock()
		first, botThen, written := w.first, w.botThen, w.written
		w.mu.Unlock()
		if first.IsZero() {
			t.Fatal("nothing was played")
		}
		if !botThen {
			t.Error("pipeline.State says the bot is silent as its first sample is played")
		}
		if !speaking {
			t.Error("pipeline.State says the bot is silent in its second sentence")
		}
		for name, pr := range probes {
			pr.mu.Lock()
			seen := pr.seen
			pr.mu.Unlock()
			switch {
			case seen.IsZero():
				t.Errorf("the %s stage never saw the bot start speaking", name)
			case seen.Sub(first) > 40*time.Millisecond:
				t.Errorf("the %s stage saw the bot start speaking %v after its first sample, want <= 40ms", name, seen.Sub(first))
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if starts != 2 {
			t.Errorf("%d user turns started, want 2 (the question and the cough; the echo is guarded)", starts)
		}
		if interruptions != 1 || p.Turn() != 2 {
			t.Errorf("%d interruptions, turn %d; want 1 (the question, bot silent), turn 2", interruptions, p.Turn())
		}
		syn.mu.Lock()
		defer syn.mu.Unlock()
		if len(syn.causes) != 0 || len(syn.texts) != 2 {
			t.Errorf("synthesized %q, cancelled %v; want both sentences, none cancelled", syn.texts, syn.causes)
		}
		if want := frame.Mono16k.Samples(4 * time.Second); written < want {
			t.Errorf("played %d samples, want at least %d", written, want)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.opened != 1 || rec.entered != 1 {
			t.Errorf("recognizer: %d streams opened, %d sends entered; want 1 and 1 (stuck in the first)", rec.opened, rec.entered)
		}
	})
}

package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// pass is a stage that passes everything on.
var pass = pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	out.Pass(f)
	return nil
})

// recorder collects the frames leaving the pipeline.
type recorder struct {
	mu     sync.Mutex
	frames []frame.Frame
}

func (r *recorder) sink(f frame.Frame) {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

// names renders frames as a compact golden string.
func (r *recorder) names() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b []string
	for _, f := range r.frames {
		b = append(b, describe(f))
	}
	return strings.Join(b, " ")
}

func describe(f frame.Frame) string {
	switch f := f.(type) {
	case *frame.Transcript:
		return "T(" + f.Text + ")"
	case *frame.LLMText:
		return "L(" + f.Text + ")"
	case *frame.InputAudio:
		return fmt.Sprintf("A%d", len(f.Samples))
	case *frame.End:
		return "End"
	case *frame.Interruption:
		return "Int"
	case *frame.BotSpoke:
		return "Spoke(" + f.Text + ")"
	default:
		return fmt.Sprintf("%T", f)
	}
}

func TestGoldenPassThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		var hops []pipeline.Hop
		var mu sync.Mutex
		obs := pipeline.ObserverFunc(func(h pipeline.Hop) { mu.Lock(); hops = append(hops, h); mu.Unlock() })
		p := pipeline.New(pipeline.Options{Sink: rec.sink, Observers: []pipeline.Observer{obs}}, pass, pass, pass)
		ctx := context.Background()
		in := []frame.Frame{
			&frame.InputAudio{Format: frame.Mono16k, Samples: make([]int16, 320)},
			&frame.Transcript{Text: "hi", Final: true},
			&frame.LLMText{Text: "hello"},
			&frame.End{},
		}
		for _, f := range in {
			if err := p.Push(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got, want := rec.names(), "A320 T(hi) L(hello) End"; got != want {
			t.Fatalf("frames out = %q, want %q", got, want)
		}
		seen := map[uint64]bool{}
		for _, f := range rec.frames {
			h := f.Header()
			if h.ID == 0 || seen[h.ID] || h.Turn != 1 {
				t.Fatalf("bad stamp on %s: %+v", describe(f), *h)
			}
			seen[h.ID] = true
		}
		// Every frame makes 4 hops: push → 0 → 1 → 2 → out.
		if len(hops) != 4*len(in) {
			t.Fatalf("observer saw %d hops, want %d", len(hops), 4*len(in))
		}
		first := 0
		for _, h := range hops {
			if h.First {
				first++
				if h.From != -1 || h.To != 0 {
					t.Fatalf("first hop %d→%d, want -1→0", h.From, h.To)
				}
			}
		}
		if first != len(in) {
			t.Fatalf("%d first hops, want %d", first, len(in))
		}
	})
}

// gate blocks its stage on the first data frame until released.
type gate struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
	mu      sync.Mutex
	seen    []string
}

func newGate() *gate { return &gate{release: make(chan struct{}), entered: make(chan struct{})} }

func (g *gate) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	g.mu.Lock()
	g.seen = append(g.seen, describe(f))
	g.mu.Unlock()
	if f.Class() != frame.System {
		g.once.Do(func() {
			close(g.entered)
			<-g.release
		})
	}
	out.Pass(f)
	return nil
}

func TestSystemFramesOvertakeData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		g := newGate()
		p := pipeline.New(pipeline.Options{Sink: rec.sink}, pass, g)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		p.Push(ctx, &frame.Transcript{Text: "block"})
		<-g.entered
		p.Push(ctx, &frame.LLMText{Text: "a"})
		p.Push(ctx, &frame.LLMText{Text: "b"})
		p.Push(ctx, &frame.InputAudio{Samples: make([]int16, 2)})
		synctest.Wait() // everything is queued at the gate
		close(g.release)
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := rec.names(), "T(block) A2 L(a) L(b) End"; got != want {
			t.Fatalf("frames out = %q, want %q", got, want)
		}
	})
}

// barger interrupts the turn when it sees the transcript "stop".
type barger struct{ rt pipeline.Runtime }

func (b *barger) Start(_ context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	b.rt = rt
	return nil
}

func (b *barger) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	if t, ok := f.(*frame.Transcript); ok && t.Text == "stop" {
		b.rt.Interrupt("user spoke")
		out.Emit(&frame.Interruption{Reason: "user spoke"})
		return nil
	}
	out.Pass(f)
	return nil
}

// talker answers a transcript with ten words, one every 100 ms, under the
// turn context.
type talker struct {
	mu     sync.Mutex
	causes []error
}

func (tk *talker) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	t, ok := f.(*frame.Transcript)
	if !ok || !t.Final {
		out.Pass(f)
		return nil
	}
	for i := range 10 {
		select {
		case <-ctx.Done():
			tk.mu.Lock()
			tk.causes = append(tk.causes, context.Cause(ctx))
			tk.mu.Unlock()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		out.Emit(&frame.LLMText{Text: fmt.Sprint(i)})
	}
	return nil
}

func TestInterruptCancelsTurnAndDropsStaleFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		tk := &talker{}
		g := newGate() // holds the talker's output so some of it is queued when the interruption comes
		p := pipeline.New(pipeline.Options{Sink: rec.sink}, &barger{}, tk, g, pass)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()

		p.Push(ctx, &frame.Transcript{Text: "question", Final: true})
		time.Sleep(350 * time.Millisecond) // three words out, the gate holds them
		p.Push(ctx, &frame.Transcript{Text: "stop"})
		synctest.Wait()
		if p.Turn() != 2 {
			t.Fatalf("turn = %d, want 2", p.Turn())
		}
		close(g.release)
		p.Push(ctx, &frame.Transcript{Text: "again", Final: true})
		time.Sleep(1100 * time.Millisecond)
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// The first word was inside the gate when the turn ended and is
		// dropped at the next hop; words 1 and 2 were queued behind it and are
		// dropped as stale; the second answer is complete. The talker
		// consumes final transcripts.
		want := "Int L(0) L(1) L(2) L(3) L(4) L(5) L(6) L(7) L(8) L(9) End"
		if got := rec.names(); got != want {
			t.Fatalf("frames out =\n %q\nwant\n %q", got, want)
		}
		if len(tk.causes) != 1 || !errors.Is(tk.causes[0], pipeline.ErrInterrupted) {
			t.Fatalf("talker cancellations = %v, want one ErrInterrupted", tk.causes)
		}
		for _, f := range rec.frames {
			if _, ok := f.(*frame.LLMText); ok && f.Header().Turn != 2 {
				t.Fatalf("stale frame %s of turn 1 left the pipeline", describe(f))
			}
		}
	})
}

// holder keeps LLM text until it is drained.
type holder struct{ held []string }

func (h *holder) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	if l, ok := f.(*frame.LLMText); ok {
		h.held = append(h.held, l.Text)
		return nil
	}
	out.Pass(f)
	return nil
}

func (h *holder) Drain(ctx context.Context, out pipeline.Emitter) error {
	time.Sleep(time.Second) // like playing out queued audio
	out.Emit(&frame.LLMText{Text: strings.Join(h.held, "+")})
	return nil
}

func TestEndDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		p := pipeline.New(pipeline.Options{Sink: rec.sink}, pass, &holder{}, pass)
		ctx := context.Background()
		for _, f := range []frame.Frame{&frame.LLMText{Text: "a"}, &frame.LLMText{Text: "b"}, &frame.End{}} {
			p.Push(ctx, f)
		}
		start := time.Now()
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := rec.names(), "L(a+b) End"; got != want {
			t.Fatalf("frames out = %q, want %q", got, want)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("drain took %v, want exactly the 1s the drainer needed", d)
		}
	})
}

func TestCancelStopsNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		blocked := pipeline.ProcessorFunc(func(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
			<-ctx.Done() // a provider call that only ends with its context
			return ctx.Err()
		})
		var bg int
		starter := &goStarter{fn: func(ctx context.Context) { <-ctx.Done(); bg++ }}
		p := pipeline.New(pipeline.Options{}, starter, blocked, pass)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		p.Push(ctx, &frame.Transcript{Text: "x"})
		p.Push(ctx, &frame.End{})
		time.Sleep(time.Second)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		if bg != 1 {
			t.Fatalf("background goroutine did not finish before Run returned")
		}
		if err := p.Push(context.Background(), &frame.End{}); !errors.Is(err, pipeline.ErrStopped) {
			t.Fatalf("Push after Run = %v, want ErrStopped", err)
		}
	})
}

type goStarter struct{ fn func(ctx context.Context) }

func (g *goStarter) Start(_ context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	rt.Go(g.fn)
	return nil
}
func (g *goStarter) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	out.Pass(f)
	return nil
}

func TestStageErrorFailsPipeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		failing := pipeline.ProcessorFunc(func(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
			if _, ok := f.(*frame.Transcript); ok {
				return boom
			}
			out.Pass(f)
			return nil
		})
		p := pipeline.New(pipeline.Options{}, pass, failing, pass)
		ctx := context.Background()
		p.Push(ctx, &frame.Transcript{Text: "x"})
		err := p.Run(ctx)
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "pipeline:") {
			t.Fatalf("Run = %v, want wrapped boom", err)
		}
	})
}

func TestUpstreamFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []string
		var mu sync.Mutex
		first := pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
			if s, ok := f.(*frame.BotSpoke); ok {
				mu.Lock()
				got = append(got, s.Text)
				mu.Unlock()
				return nil
			}
			out.Pass(f)
			return nil
		})
		last := pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
			if l, ok := f.(*frame.LLMText); ok {
				out.EmitUp(&frame.BotSpoke{Text: l.Text})
			}
			out.Pass(f)
			return nil
		})
		var rec recorder
		p := pipeline.New(pipeline.Options{Sink: rec.sink}, first, pass, last)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		p.Push(ctx, &frame.LLMText{Text: "played"})
		synctest.Wait()
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != "played" {
			t.Fatalf("first stage got %v upstream, want [played]", got)
		}
		if rec.names() != "L(played) End" {
			t.Fatalf("downstream = %q", rec.names())
		}
	})
}

// BenchmarkPipeline pushes 20 ms frames of 16 kHz audio through N
// pass-through stages with up to 64 frames in flight.
func BenchmarkPipeline(b *testing.B) {
	for _, n := range []int{0, 1, 5, 10} {
		b.Run(fmt.Sprintf("stages=%d", n), func(b *testing.B) {
			benchStages(b, n)
		})
	}
}

func benchStages(b *testing.B, n int) {
	const inFlight = 64
	procs := make([]pipeline.Processor, max(n, 1))
	for i := range procs {
		procs[i] = pass
	}
	// Stage count 0 is measured as one stage with a sink: the floor.
	recv := make(chan struct{}, inFlight)
	p := pipeline.New(pipeline.Options{QueueSize: inFlight, Sink: func(frame.Frame) { recv <- struct{}{} }}, procs...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	ring := make([]frame.InputAudio, 2*inFlight)
	pcm := make([]int16, 320)
	for i := range ring {
		ring[i] = frame.InputAudio{Format: frame.Mono16k, Samples: pcm}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i >= inFlight {
			<-recv
		}
		f := &ring[i%len(ring)]
		f.Meta = frame.Meta{}
		if err := p.Push(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
	for i := max(0, b.N-inFlight); i < b.N; i++ {
		<-recv
	}
	b.StopTimer()
	cancel()
	<-done
}

// TestEndFromAStage: a stage that emits End ends the pipeline; the stages
// after it drain, the ones before it stop, and Run returns nil.
func TestEndFromAStage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		ender := pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
			if tr, ok := f.(*frame.Transcript); ok && tr.Text == "bye" {
				out.Emit(&frame.LLMText{Text: "goodbye"})
				out.Emit(&frame.End{Reason: "idle"})
				return nil
			}
			out.Pass(f)
			return nil
		})
		p := pipeline.New(pipeline.Options{Sink: rec.sink}, pass, ender, &holder{}, pass)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		p.Push(ctx, &frame.Transcript{Text: "bye"})
		if err := <-done; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if got, want := rec.names(), "L(goodbye) End"; got != want {
			t.Fatalf("frames out = %q, want %q", got, want)
		}
	})
}

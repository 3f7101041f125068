package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// fakeRuntime is the pipeline as the playout sees it: a turn counter and a
// goroutine group the test waits for.
type fakeRuntime struct {
	ctx   context.Context
	turn  atomic.Uint32
	wg    sync.WaitGroup
	state pipeline.State
}

func (r *fakeRuntime) Interrupt(string) uint32 { return r.turn.Add(1) }
func (r *fakeRuntime) Turn() uint32            { return r.turn.Load() }
func (r *fakeRuntime) Go(fn func(context.Context)) {
	r.wg.Go(func() { fn(r.ctx) })
}
func (r *fakeRuntime) Logger() *slog.Logger   { return slog.New(slog.DiscardHandler) }
func (r *fakeRuntime) State() *pipeline.State { return &r.state }

// happening is one thing the playout did, at a fake-clock time since the
// test started: a write (pcm set) or a frame sent (down, up or passed).
type happening struct {
	at  time.Duration
	pcm []int16
	f   frame.Frame
	dir string // "down", "up" or "pass"
}

// tape is the playout's AudioWriter and Emitter: it records everything in
// order with its time.
type tape struct {
	start time.Time
	mu    sync.Mutex
	log   []happening
}

func (tp *tape) add(h happening) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	h.at = time.Since(tp.start)
	tp.log = append(tp.log, h)
}

func (tp *tape) WriteAudio(pcm []int16) error {
	tp.add(happening{pcm: append([]int16(nil), pcm...)})
	return nil
}
func (tp *tape) Emit(f frame.Frame)   { tp.add(happening{f: f, dir: "down"}) }
func (tp *tape) EmitUp(f frame.Frame) { tp.add(happening{f: f, dir: "up"}) }
func (tp *tape) Pass(f frame.Frame)   { tp.add(happening{f: f, dir: "pass"}) }

func (tp *tape) all() []happening {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]happening(nil), tp.log...)
}

func (tp *tape) writes() []happening {
	var w []happening
	for _, h := range tp.all() {
		if h.pcm != nil {
			w = append(w, h)
		}
	}
	return w
}

// frames returns the frames sent, described as "dir Type@ms".
func (tp *tape) frames() []string {
	var out []string
	for _, h := range tp.all() {
		if h.f == nil {
			continue
		}
		d := fmt.Sprintf("%s %T@%d", h.dir, h.f, h.at.Milliseconds())
		switch f := h.f.(type) {
		case *frame.BotStoppedSpeaking:
			if f.Interrupted {
				d += " interrupted"
			}
		case *frame.BotSpoke:
			d += " " + f.Text
		}
		out = append(out, d)
	}
	return out
}

// harness is a started Playout inside a synctest bubble.
type harness struct {
	t      *testing.T
	p      *Playout
	rt     *fakeRuntime
	tape   *tape
	cancel context.CancelFunc
}

func start(t *testing.T, cfg PlayoutConfig) *harness {
	ctx, cancel := context.WithCancel(context.Background())
	rt := &fakeRuntime{ctx: ctx}
	rt.turn.Store(1)
	tp := &tape{start: time.Now()}
	p := NewPlayout(tp, cfg)
	if err := p.Start(ctx, rt, tp); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, p: p, rt: rt, tape: tp, cancel: cancel}
	return h
}

// stop ends the session and waits for the pacing goroutine.
func (h *harness) stop() {
	h.cancel()
	h.rt.wg.Wait()
}

// play hands the playout n samples of value v in turn turn, ending a
// sentence if spoken is set.
func (h *harness) play(turn uint32, n int, v int16, spoken string) {
	h.t.Helper()
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = v
	}
	f := &frame.OutputAudio{Meta: frame.Meta{Turn: turn}, Format: h.p.cfg.Format, Samples: pcm, Spoken: spoken}
	if err := h.p.Process(context.Background(), f, h.tape); err != nil {
		h.t.Fatal(err)
	}
	synctest.Wait()
}

// ceilTo rounds d up to a multiple of step.
func ceilTo(d, step time.Duration) time.Duration {
	return (d + step - 1) / step * step
}

// schedule is when the playout should write each chunk of n samples queued
// at time 0: a chunk goes out at the first tick (every Chunk/2) at which the
// audio sent, with it, is at most Lead ahead of real time since the first
// write. It returns the end (in samples) and time of each write.
func schedule(cfg PlayoutConfig, n int) (ends []int, at []time.Duration) {
	rate := int64(cfg.Format.SampleRate * cfg.Format.Channels)
	chunk, lead := cfg.Format.Samples(cfg.Chunk), int64(cfg.Format.Samples(cfg.Lead))
	for end := 0; end < n; {
		end = min(end+chunk, n)
		var t time.Duration
		if ahead := int64(end) - lead; ahead > 0 {
			// The first instant at which ahead samples have played.
			t = time.Duration((ahead*int64(time.Second) + rate - 1) / rate)
		}
		ends = append(ends, end)
		at = append(at, ceilTo(t, cfg.Chunk/2))
	}
	return ends, at
}

func TestPlayoutPacing(t *testing.T) {
	cases := []struct {
		cfg PlayoutConfig
		n   int
	}{
		{PlayoutConfig{Format: frame.Mono16k}, 16000 + 100},
		{PlayoutConfig{Format: frame.Format{SampleRate: 22050, Channels: 1}}, 22050},
		{PlayoutConfig{Format: frame.Format{SampleRate: 48000, Channels: 2}}, 48000},
		{PlayoutConfig{Format: frame.Format{SampleRate: 8000, Channels: 1}, Chunk: 40 * time.Millisecond, Lead: 200 * time.Millisecond, Grace: 300 * time.Millisecond}, 8000},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%+v", tc.cfg), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, tc.cfg)
				cfg := h.p.cfg // with defaults
				h.play(1, tc.n, 7, "")
				time.Sleep(2 * time.Second)
				h.stop()

				ends, at := schedule(cfg, tc.n)
				w := h.tape.writes()
				if len(w) != len(ends) {
					t.Fatalf("%d writes, want %d", len(w), len(ends))
				}
				rate := int64(cfg.Format.SampleRate * cfg.Format.Channels)
				lead := int64(cfg.Format.Samples(cfg.Lead))
				sent := 0
				for i, wr := range w {
					sent += len(wr.pcm)
					if sent != ends[i] || wr.at != at[i] {
						t.Errorf("write %d: %d samples in all at %v, want %d at %v", i, sent, wr.at, ends[i], at[i])
					}
					if played := int64(wr.at) * rate / int64(time.Second); int64(sent)-played > lead {
						t.Errorf("write %d at %v is %d samples ahead, over the lead of %d", i, wr.at, int64(sent)-played, lead)
					}
				}
				end := cfg.Format.Duration(tc.n)
				want := []string{
					"down *frame.BotStartedSpeaking@0",
					"up *frame.BotStartedSpeaking@0",
					fmt.Sprintf("down *frame.BotStoppedSpeaking@%d", ceilTo(end+cfg.Grace, cfg.Chunk/2).Milliseconds()),
					fmt.Sprintf("up *frame.BotStoppedSpeaking@%d", ceilTo(end+cfg.Grace, cfg.Chunk/2).Milliseconds()),
				}
				if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("frames %q, want %q", got, want)
				}
				if all := h.tape.all(); all[0].f == nil {
					t.Error("audio written before BotStartedSpeaking")
				}
			})
		})
	}
}

// TestPlayoutSpoke: each sentence is reported upstream when its last sample
// has played, not when it was sent.
func TestPlayoutSpoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.play(1, 3200, 1, "one")   // ends at 200 ms
		h.play(1, 4000, 2, "two")   // ends at 450 ms
		h.play(1, 1600, 3, "three") // ends at 550 ms
		time.Sleep(time.Second)
		h.stop()
		want := []string{
			"down *frame.BotStartedSpeaking@0",
			"up *frame.BotStartedSpeaking@0",
			"up *frame.BotSpoke@200 one",
			"up *frame.BotSpoke@450 two",
			"up *frame.BotSpoke@550 three",
			"down *frame.BotStoppedSpeaking@650",
			"up *frame.BotStoppedSpeaking@650",
		}
		if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames\n%q, want\n%q", got, want)
		}
		for _, x := range h.tape.all() {
			if s, ok := x.f.(*frame.BotSpoke); ok && s.Turn != 1 {
				t.Errorf("BotSpoke %q in turn %d, want 1", s.Text, s.Turn)
			}
		}
	})
}

// TestPlayoutInterruption: an Interruption clears the queue at once; nothing
// of the old turn is written after it, unplayed sentences are never
// reported, and the next turn plays normally.
func TestPlayoutInterruption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.play(1, 3200, 1, "one") // ends at 200 ms
		h.play(1, 3200, 1, "two") // ends at 400 ms, sent by 300 ms
		h.play(1, 9600, 1, "three")
		time.Sleep(350 * time.Millisecond)

		h.rt.Interrupt("barge-in")
		intr := &frame.Interruption{Meta: frame.Meta{Turn: 2}, Reason: "barge-in"}
		if err := h.p.Process(context.Background(), intr, h.tape); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// Drain has nothing to wait for.
		if err := h.p.Drain(context.Background(), h.tape); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(h.tape.start); d != 350*time.Millisecond {
			t.Errorf("Drain after the interruption returned at %v", d)
		}
		time.Sleep(time.Second)
		h.play(1, 3200, 1, "late") // the old turn's: stale
		h.play(2, 1600, 2, "new")
		time.Sleep(time.Second)
		h.stop()

		want := []string{
			"down *frame.BotStartedSpeaking@0",
			"up *frame.BotStartedSpeaking@0",
			"up *frame.BotSpoke@200 one",
			"down *frame.BotStoppedSpeaking@350 interrupted",
			"up *frame.BotStoppedSpeaking@350 interrupted",
			"up *frame.BotSpoke@350 two", // three quarters of it played
			"pass *frame.Interruption@350",
			"down *frame.BotStartedSpeaking@1350",
			"up *frame.BotStartedSpeaking@1350",
			"up *frame.BotSpoke@1450 new",
			"down *frame.BotStoppedSpeaking@1550",
			"up *frame.BotStoppedSpeaking@1550",
		}
		if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames\n%q, want\n%q", got, want)
		}
		old, sent := 0, 0
		for _, w := range h.tape.writes() {
			switch w.pcm[0] {
			case 1:
				old += len(w.pcm)
				if w.at > 350*time.Millisecond {
					t.Errorf("old turn's audio written at %v, after the interruption", w.at)
				}
			case 2:
				sent += len(w.pcm)
			}
		}
		// The last write before 350 ms was at 340 ms, taking the audio
		// sent to 340 ms + Lead.
		if old != 16*440 || sent != 1600 {
			t.Errorf("wrote %d samples of the old turn and %d of the new, want %d and 1600", old, sent, 16*440)
		}
	})
}

// TestPlayoutInterruptionWhenSilent: an Interruption with nothing playing
// is passed on without a BotStoppedSpeaking.
func TestPlayoutInterruptionWhenSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.play(1, 320, 1, "")
		time.Sleep(500 * time.Millisecond) // played and stopped
		if err := h.p.Process(context.Background(), &frame.Interruption{}, h.tape); err != nil {
			t.Fatal(err)
		}
		h.stop()
		want := []string{
			"down *frame.BotStartedSpeaking@0",
			"up *frame.BotStartedSpeaking@0",
			"down *frame.BotStoppedSpeaking@120",
			"up *frame.BotStoppedSpeaking@120",
			"pass *frame.Interruption@500",
		}
		if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames %q, want %q", got, want)
		}
	})
}

// TestPlayoutStale: audio of an older turn than the pipeline's is dropped,
// not passed on.
func TestPlayoutStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.rt.turn.Store(3)
		h.play(2, 3200, 2, "stale")
		if err := h.p.Drain(context.Background(), h.tape); err != nil {
			t.Fatal(err)
		}
		h.play(3, 320, 3, "")
		time.Sleep(time.Second)
		h.stop()
		for _, w := range h.tape.writes() {
			if w.pcm[0] != 3 {
				t.Fatalf("stale audio written: %v", w.pcm[:4])
			}
		}
		want := []string{
			"down *frame.BotStartedSpeaking@0", "up *frame.BotStartedSpeaking@0",
			"down *frame.BotStoppedSpeaking@120", "up *frame.BotStoppedSpeaking@120",
		}
		if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames %q, want %q", got, want)
		}
	})
}

// TestPlayoutNewTurnReplacesQueue: audio of a newer turn replaces what is
// queued of the old one even before the Interruption arrives.
func TestPlayoutNewTurnReplacesQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.play(1, 16000, 1, "old")
		time.Sleep(95 * time.Millisecond) // between ticks

		h.rt.turn.Store(2)
		h.play(2, 320, 2, "new")
		time.Sleep(time.Second)
		h.stop()
		old := 0
		for _, w := range h.tape.writes() {
			if w.pcm[0] == 1 {
				old += len(w.pcm)
			}
		}
		if old != 16*180 {
			t.Errorf("%d samples of the old turn written, want the %d sent by 95 ms", old, 16*180)
		}
		// The new audio continues the episode once the old audio sent
		// has played down to the lead: 3200 samples in all play by 200 ms.
		want := []string{
			"down *frame.BotStartedSpeaking@0",
			"up *frame.BotStartedSpeaking@0",
			"up *frame.BotSpoke@200 new",
			"down *frame.BotStoppedSpeaking@300",
			"up *frame.BotStoppedSpeaking@300",
		}
		if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames %q, want %q", got, want)
		}
	})
}

// TestPlayoutUnderrun: audio arriving after the client ran dry, within
// Grace, continues the same speaking episode and restarts the clock.
func TestPlayoutUnderrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.play(1, 1600, 1, "a") // plays until 100 ms
		time.Sleep(150 * time.Millisecond)
		h.play(1, 3200, 2, "b") // sent from 150 ms, plays until 350 ms
		time.Sleep(time.Second)
		h.stop()
		want := []string{
			"down *frame.BotStartedSpeaking@0",
			"up *frame.BotStartedSpeaking@0",
			"up *frame.BotSpoke@100 a",
			"up *frame.BotSpoke@350 b",
			"down *frame.BotStoppedSpeaking@450",
			"up *frame.BotStoppedSpeaking@450",
		}
		if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames %q, want %q", got, want)
		}
		ends, at := schedule(h.p.cfg, 3200)
		var second []happening
		for _, w := range h.tape.writes() {
			if w.pcm[0] == 2 {
				second = append(second, w)
			}
		}
		if len(second) != len(ends) {
			t.Fatalf("%d writes of the second part, want %d", len(second), len(ends))
		}
		for i, w := range second {
			if w.at != 150*time.Millisecond+at[i] {
				t.Errorf("write %d at %v, want %v", i, w.at, 150*time.Millisecond+at[i])
			}
		}
	})
}

// TestPlayoutDrain: Drain returns once the queue has played and the bot has
// stopped speaking; it gives up with its context.
func TestPlayoutDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.play(1, 4800, 1, "end") // 300 ms
		if err := h.p.Drain(context.Background(), h.tape); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(h.tape.start); d != 400*time.Millisecond {
			t.Errorf("Drain returned at %v, want 400ms (300 ms played + Grace)", d)
		}
		want := []string{
			"down *frame.BotStartedSpeaking@0",
			"up *frame.BotStartedSpeaking@0",
			"up *frame.BotSpoke@300 end",
			"down *frame.BotStoppedSpeaking@400",
			"up *frame.BotStoppedSpeaking@400",
		}
		if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames %q, want %q", got, want)
		}

		h.play(1, 16000, 1, "")
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := h.p.Drain(ctx, h.tape); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Drain = %v, want %v", err, context.DeadlineExceeded)
		}
		h.stop()
	})
}

// TestPlayoutMarkerOnly: a frame with a sentence and no samples is reported
// once what precedes it has played, and does not hold Drain up.
func TestPlayoutMarkerOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.play(1, 0, 0, "silent")
		if err := h.p.Drain(context.Background(), h.tape); err != nil {
			t.Fatal(err)
		}
		h.play(1, 1600, 1, "")
		h.play(1, 0, 0, "after audio")
		if err := h.p.Drain(context.Background(), h.tape); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		h.stop()
		want := []string{
			"up *frame.BotSpoke@0 silent",
			"down *frame.BotStartedSpeaking@0",
			"up *frame.BotStartedSpeaking@0",
			"up *frame.BotSpoke@100 after audio",
			"down *frame.BotStoppedSpeaking@200",
			"up *frame.BotStoppedSpeaking@200",
		}
		got := h.tape.frames()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames %q, want %q", got, want)
		}
	})
}

// TestPlayoutZeroFormat: a zero Format means 16 kHz mono, and a missing
// channel count means mono, rather than a pacing loop that never ends.
func TestPlayoutZeroFormat(t *testing.T) {
	for _, f := range []frame.Format{{}, {SampleRate: 16000}} {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, PlayoutConfig{Format: f})
			h.play(1, 640, 1, "")
			h.stop()
			w := h.tape.writes()
			if len(w) != 2 || len(w[0].pcm) != 320 {
				t.Errorf("format %+v: %d writes, want 2 of 320 samples", f, len(w))
			}
		})
	}
}

// TestPlayoutPipeline runs the playout as the last stage of a real
// pipeline: End waits for the queue to play out and BotSpoke reaches the
// stage before it.
func TestPlayoutPipeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tp := &tape{start: time.Now()}
		play := NewPlayout(tp, PlayoutConfig{Format: frame.Mono16k})
		var mu sync.Mutex
		var spoke []string
		up := pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
			if s, ok := f.(*frame.BotSpoke); ok {
				mu.Lock()
				spoke = append(spoke, fmt.Sprintf("%s@%d", s.Text, time.Since(tp.start).Milliseconds()))
				mu.Unlock()
				return nil
			}
			out.Pass(f)
			return nil
		})
		var sunk []string
		p := pipeline.New(pipeline.Options{Sink: func(f frame.Frame) {
			mu.Lock()
			sunk = append(sunk, fmt.Sprintf("%T@%d", f, time.Since(tp.start).Milliseconds()))
			mu.Unlock()
		}}, up, play)
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		for i := range 3 {
			p.Push(ctx, &frame.OutputAudio{Format: frame.Mono16k, Samples: make([]int16, 3200), Spoken: fmt.Sprint("s", i)})
		}
		time.Sleep(500 * time.Millisecond)
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := []string{"*frame.BotStartedSpeaking@0", "*frame.BotStoppedSpeaking@700", "*frame.End@700"}
		if fmt.Sprint(sunk) != fmt.Sprint(want) {
			t.Errorf("sink got %q, want %q", sunk, want)
		}
		// The last sentence is spoken while End drains, when the stage
		// before has finished: only the first two reach it.
		if want := []string{"s0@200", "s1@400"}; fmt.Sprint(spoke) != fmt.Sprint(want) {
			t.Errorf("BotSpoke %q, want %q", spoke, want)
		}
		total := 0
		for _, w := range tp.writes() {
			total += len(w.pcm)
		}
		if total != 9600 {
			t.Errorf("wrote %d samples, want 9600", total)
		}
	})
}

func BenchmarkPlayout(b *testing.B) {
	tp := &tape{start: time.Now()}
	p := NewPlayout(discard{}, PlayoutConfig{Format: frame.Mono16k})
	p.rt, p.out = &fakeRuntime{}, tp
	f := &frame.OutputAudio{Format: frame.Mono16k, Samples: make([]int16, 320)}
	buf := make([]int16, 320)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		p.Process(context.Background(), f, tp)
		now = now.Add(20 * time.Millisecond)
		p.tick(now, buf)
	}
}

type discard struct{}

func (discard) WriteAudio([]int16) error { return nil }

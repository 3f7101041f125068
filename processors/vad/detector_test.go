package vad_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/pipelinetest"
	"github.com/voiced-dev/voiced/processors/vad"
)

const (
	rate   = 16000
	chunk  = 512 // samples per analyzer call: 32 ms at 16 kHz
	chunkD = 32 * time.Millisecond
)

// ramp is the test signal: sample k of the stream. It is loud (about -8
// dBFS) and never repeats within a chunk, so a dropped, doubled or
// reordered sample shows.
func ramp(k int) int16 { return int16(k%20000 + 5000) }

// hum is a quiet signal, about -70 dBFS.
func hum(k int) int16 { return int16(10 - 20*(k%2)) }

// seg is a run of chunks with one speech probability.
type seg struct {
	p float32
	n int
}

func expand(segs ...seg) []float32 {
	var ps []float32
	for _, s := range segs {
		for range s.n {
			ps = append(ps, s.p)
		}
	}
	return ps
}

// fakeModel hands out one fakeAnalyzer that replays a script of
// probabilities and checks every chunk it is given against the signal.
type fakeModel struct {
	t      testing.TB
	script []float32
	signal func(k int) int16
	size   int // chunk size, default chunk

	mu     sync.Mutex
	an     *fakeAnalyzer
	failAt int // chunk index whose Speech fails, 0 for never
}

func (m *fakeModel) NewAnalyzer(sampleRate int) (vad.Analyzer, error) {
	if sampleRate != rate {
		m.t.Errorf("NewAnalyzer(%d), want %d", sampleRate, rate)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.an != nil {
		m.t.Errorf("NewAnalyzer called twice")
	}
	size := m.size
	if size == 0 {
		size = chunk
	}
	m.an = &fakeAnalyzer{m: m, size: size}
	return m.an, nil
}

type fakeAnalyzer struct {
	m      *fakeModel
	size   int
	chunks int // chunks scored
	closed int
	resets []int // chunks scored at each Reset
}

func (a *fakeAnalyzer) ChunkSamples() int { return a.size }
func (a *fakeAnalyzer) Reset()            { a.resets = append(a.resets, a.chunks) }
func (a *fakeAnalyzer) Close() error      { a.closed++; return nil }

func (a *fakeAnalyzer) Speech(c []int16) (float32, error) {
	t := a.m.t
	i := a.chunks
	a.chunks++
	if len(c) != a.size {
		t.Errorf("chunk %d has %d samples, want %d", i, len(c), a.size)
		return 0, nil
	}
	for j, v := range c {
		if want := a.m.signal(i*a.size + j); v != want {
			t.Errorf("chunk %d sample %d = %d, want %d (stream sample %d)", i, j, v, want, i*a.size+j)
			break
		}
	}
	if a.m.failAt != 0 && i == a.m.failAt {
		return 0, errBroken
	}
	// Scribble on the chunk: the processor must not care (the analyzer
	// owns it for the call) and must not have handed out the frame's own
	// samples.
	for j := range c {
		c[j] = -1
	}
	if i < len(a.m.script) {
		return a.m.script[i], nil
	}
	return 0, nil
}

var errBroken = errors.New("analyzer broken")

type recorder = pipelinetest.Recorder

func find[T frame.Frame](r *recorder) []T { return pipelinetest.Find[T](r) }

// TestDetectorGolden: the detector reports speech and never interrupts (the
// pipeline's turn stays 1). UserSpeaking frames are left out of the goldens
// (TestUserSpeaking checks them).
func TestDetectorGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    vad.Config
		script []float32
		chunks int // chunks of audio fed, one 512-sample frame each
		signal func(int) int16
		want   string
		turn   uint32 // the pipeline's turn at the end
		stopAt int    // index of the chunk UserStoppedSpeaking.At names, -1 for no stop
	}{{
		name:   "silence",
		script: expand(seg{0.1, 30}),
		chunks: 30, want: "A512*30 End", turn: 1, stopAt: -1,
	}, {
		// 6 voiced chunks are 192 ms, short of the 200 ms StartDuration.
		name:   "blip",
		script: expand(seg{0, 5}, seg{0.9, 6}, seg{0, 20}),
		chunks: 31, want: "A512*31 End", turn: 1, stopAt: -1,
	}, {
		// Start after 7 voiced chunks (224 ms), the 12th chunk; stop after
		// 16 unvoiced ones (512 ms).
		name:   "speech",
		script: expand(seg{0, 5}, seg{0.9, 15}, seg{0.1, 20}),
		chunks: 40, want: "A512*12 Start A512*24 Stop A512*4 End", turn: 1, stopAt: 19,
	}, {
		// A probability just under Confidence does not start a turn...
		name:   "below confidence",
		script: expand(seg{0.45, 30}),
		chunks: 30, want: "A512*30 End", turn: 1, stopAt: -1,
	}, {
		// ...but keeps a speaking user speaking (hysteresis), down to
		// Confidence-0.15.
		name:   "hysteresis",
		script: expand(seg{0.9, 8}, seg{0.45, 20}, seg{0.36, 20}, seg{0.3, 16}, seg{0, 2}),
		chunks: 66, want: "A512*7 Start A512*57 Stop A512*2 End", turn: 1, stopAt: 47,
	}, {
		// A pause shorter than StopDuration does not end the turn.
		name:   "pause",
		script: expand(seg{0.9, 8}, seg{0.1, 15}, seg{0.9, 3}, seg{0, 16}),
		chunks: 42, want: "A512*7 Start A512*35 Stop End", turn: 1, stopAt: 25,
	}, {
		name:   "custom durations",
		cfg:    vad.Config{Confidence: 0.8, StartDuration: 64 * time.Millisecond, StopDuration: 96 * time.Millisecond},
		script: expand(seg{0.7, 4}, seg{0.85, 3}, seg{0.7, 3}, seg{0.5, 5}),
		chunks: 15, want: "A512*6 Start A512*7 Stop A512*2 End", turn: 1, stopAt: 9,
	}, {
		// The model is sure, but the audio is too quiet to be the user.
		name:   "min volume",
		script: expand(seg{0.99, 30}),
		signal: hum,
		chunks: 30, want: "A512*30 End", turn: 1, stopAt: -1,
	}, {
		name:   "min volume lowered",
		cfg:    vad.Config{MinVolume: -80},
		script: expand(seg{0.99, 10}, seg{0, 16}),
		signal: hum,
		chunks: 26, want: "A512*7 Start A512*19 Stop End", turn: 1, stopAt: 9,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				if tc.signal == nil {
					tc.signal = ramp
				}
				m := &fakeModel{t: t, script: tc.script, signal: tc.signal}
				var rec recorder
				p := pipeline.New(pipeline.Options{Sink: rec.Sink}, vad.NewDetector(m, rate, tc.cfg))
				ctx := context.Background()
				done := make(chan error)
				go func() { done <- p.Run(ctx) }()
				t0 := time.Now()
				for i := range tc.chunks {
					pcm := make([]int16, chunk)
					for j := range pcm {
						pcm[j] = tc.signal(i*chunk + j)
					}
					if err := p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: pcm}); err != nil {
						t.Fatal(err)
					}
					time.Sleep(chunkD) // real time: the analyzer sees chunk i at t0+i*32ms
				}
				p.Push(ctx, &frame.End{})
				if err := <-done; err != nil {
					t.Fatalf("Run: %v", err)
				}
				var frames []frame.Frame
				for _, f := range rec.Frames() {
					if _, ok := f.(*frame.UserSpeaking); !ok {
						frames = append(frames, f)
					}
				}
				if got := pipelinetest.Golden(frames); got != tc.want {
					t.Errorf("frames out =\n %q\nwant\n %q", got, tc.want)
				}
				if p.Turn() != tc.turn {
					t.Errorf("turn = %d, want %d", p.Turn(), tc.turn)
				}
				if got := m.an.chunks; got != tc.chunks {
					t.Errorf("analyzer scored %d chunks, want %d", got, tc.chunks)
				}
				if m.an.closed != 1 {
					t.Errorf("analyzer closed %d times, want 1", m.an.closed)
				}
				// Every input frame comes out untouched.
				for i, a := range find[*frame.InputAudio](&rec) {
					for j, v := range a.Samples {
						if v != tc.signal(i*chunk+j) {
							t.Fatalf("input frame %d sample %d = %d: modified", i, j, v)
						}
					}
				}
				for _, f := range find[*frame.UserStartedSpeaking](&rec) {
					if f.Confidence < 0.5 {
						t.Errorf("UserStartedSpeaking.Confidence = %v", f.Confidence)
					}
				}
				stops := find[*frame.UserStoppedSpeaking](&rec)
				if tc.stopAt < 0 {
					if len(stops) != 0 {
						t.Errorf("unexpected UserStoppedSpeaking")
					}
					return
				}
				if len(stops) != 1 {
					t.Fatalf("%d UserStoppedSpeaking, want 1", len(stops))
				}
				if want := t0.Add(time.Duration(tc.stopAt) * chunkD); !stops[0].At.Equal(want) {
					t.Errorf("UserStoppedSpeaking.At = t0+%v, want t0+%v (chunk %d)", stops[0].At.Sub(t0), want.Sub(t0), tc.stopAt)
				}
			})
		})
	}
}

// TestChunking feeds frames of awkward sizes: the analyzer must see the
// stream exactly, in whole chunks, across frame boundaries.
func TestChunking(t *testing.T) {
	for _, size := range []int{256, 480} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := &fakeModel{t: t, signal: ramp, size: size}
				var rec recorder
				p := pipeline.New(pipeline.Options{Sink: rec.Sink}, vad.NewDetector(m, rate, vad.Config{}))
				ctx := context.Background()
				sizes := []int{100, 333, 512, 1000, 1, 7, 0, 2048, 320}
				k := 0
				var want []string
				for range 5 {
					for _, n := range sizes {
						pcm := make([]int16, n)
						for j := range pcm {
							pcm[j] = ramp(k + j)
						}
						k += n
						p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: pcm})
						want = append(want, fmt.Sprintf("A%d", n))
					}
				}
				p.Push(ctx, &frame.End{})
				if err := p.Run(ctx); err != nil {
					t.Fatal(err)
				}
				if got := m.an.chunks; got != k/size {
					t.Errorf("analyzer scored %d chunks of %d, want %d", got, size, k/size)
				}
				var got []string
				for _, f := range rec.Frames() {
					got = append(got, pipelinetest.Describe(f))
				}
				if g, w := strings.Join(got, " "), strings.Join(append(want, "End"), " "); g != w {
					t.Errorf("frames out =\n %s\nwant\n %s", g, w)
				}
			})
		})
	}
}

func TestBadInput(t *testing.T) {
	for _, f := range []frame.Format{{SampleRate: 8000, Channels: 1}, {SampleRate: rate, Channels: 2}, {}} {
		t.Run(fmt.Sprint(f), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := &fakeModel{t: t, signal: ramp}
				p := pipeline.New(pipeline.Options{}, vad.NewDetector(m, rate, vad.Config{}))
				ctx := context.Background()
				p.Push(ctx, &frame.InputAudio{Format: f, Samples: make([]int16, 640)})
				err := p.Run(ctx)
				if !errors.Is(err, vad.ErrFormat) {
					t.Fatalf("Run = %v, want ErrFormat", err)
				}
				if m.an.chunks != 0 {
					t.Errorf("analyzer scored %d chunks of bad audio", m.an.chunks)
				}
			})
		})
	}
}

func TestAnalyzerError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &fakeModel{t: t, signal: ramp, failAt: 2}
		p := pipeline.New(pipeline.Options{}, vad.NewDetector(m, rate, vad.Config{}))
		ctx := context.Background()
		for i := range 4 {
			pcm := make([]int16, chunk)
			for j := range pcm {
				pcm[j] = ramp(i*chunk + j)
			}
			p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: pcm})
		}
		if err := p.Run(ctx); !errors.Is(err, errBroken) {
			t.Fatalf("Run = %v, want the analyzer's error", err)
		}
		if m.an.closed != 1 {
			t.Errorf("analyzer closed %d times, want 1", m.an.closed)
		}
	})
}

func TestLevel(t *testing.T) {
	square := func(a int16) []int16 {
		s := make([]int16, 100)
		for i := range s {
			s[i] = a - 2*a*int16(i%2)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		pcm  []int16
		want float64 // dBFS, to within 0.01
	}{
		{"empty", nil, -120},
		{"silence", make([]int16, 100), -120},
		{"full scale", square(32767), -0.0003},
		{"half", square(16384), -6.02},
		{"hum", square(10), -70.31},
		{"one lsb", square(1), -90.31},
	} {
		got := vad.Level(tc.pcm)
		if d := got - tc.want; d > 0.01 || d < -0.01 {
			t.Errorf("%s: Level = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeRuntime lets a benchmark drive Process without a pipeline.
type fakeRuntime struct {
	turn  uint32
	state pipeline.State
}

func (r *fakeRuntime) Interrupt(string) uint32         { r.turn++; return r.turn }
func (r *fakeRuntime) Turn() uint32                    { return r.turn }
func (r *fakeRuntime) Go(fn func(ctx context.Context)) { go fn(context.Background()) }
func (r *fakeRuntime) Logger() *slog.Logger            { return slog.New(slog.DiscardHandler) }
func (r *fakeRuntime) State() *pipeline.State          { return &r.state }

type countEmitter struct{ n int }

func (e *countEmitter) Emit(frame.Frame)   { e.n++ }
func (e *countEmitter) EmitUp(frame.Frame) { e.n++ }
func (e *countEmitter) Pass(frame.Frame)   { e.n++ }

// constModel scores chunks by a fixed cycle of speech and silence, so the
// state machine goes through all its transitions.
type constModel struct{}

func (constModel) NewAnalyzer(int) (vad.Analyzer, error) { return &cycleAnalyzer{}, nil }

type cycleAnalyzer struct{ i int }

func (a *cycleAnalyzer) ChunkSamples() int { return chunk }
func (a *cycleAnalyzer) Reset()            {}
func (a *cycleAnalyzer) Close() error      { return nil }
func (a *cycleAnalyzer) Speech([]int16) (float32, error) {
	a.i++
	if a.i%60 < 30 {
		return 0.9, nil
	}
	return 0.1, nil
}

// BenchmarkProcess measures the turn detector's own cost per 20 ms input
// frame (buffering, level, state machine), with a trivial analyzer.
func BenchmarkProcess(b *testing.B) {
	p := vad.NewDetector(constModel{}, rate, vad.Config{})
	var out countEmitter
	if err := p.Start(context.Background(), &fakeRuntime{turn: 1}, &out); err != nil {
		b.Fatal(err)
	}
	pcm := make([]int16, 320)
	for i := range pcm {
		pcm[i] = ramp(i)
	}
	a := &frame.InputAudio{Format: frame.Mono16k, Samples: pcm}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Process(ctx, a, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// TestResetWhileQuiet: the analyzer's state is reset every ResetEvery of
// quiet, never during a user turn.
func TestResetWhileQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 32 ms chunks: 200 quiet (6.4 s), 100 voiced (a turn), 200 quiet.
		script := expand(seg{0, 200}, seg{0.9, 100}, seg{0, 200})
		m := &fakeModel{t: t, script: script, signal: func(k int) int16 { return int16(k%2000 + 1000) }}
		p := pipeline.New(pipeline.Options{}, vad.NewDetector(m, rate, vad.Config{ResetEvery: 2 * time.Second}))
		ctx := context.Background()
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		pcm := make([]int16, len(script)*chunk)
		for k := range pcm {
			pcm[k] = m.signal(k)
		}
		p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: pcm})
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// 2 s is 62.5 chunks: resets after chunks 63, 126, 189 while quiet;
		// the turn (chunks 200..~315 with the stop) holds none; then every
		// 63 chunks of quiet again.
		got := m.an.resets
		if len(got) < 4 || got[0] != 63 || got[1] != 126 || got[2] != 189 {
			t.Fatalf("resets after chunks %v", got)
		}
		for _, r := range got {
			if r > 200 && r < 300+16 {
				t.Fatalf("reset after chunk %d, inside the user's turn (resets %v)", r, got)
			}
		}
	})
}

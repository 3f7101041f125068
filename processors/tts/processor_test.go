package tts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/pipelinetest"
	"github.com/voiced-dev/voiced/processors/tts"
)

// ramp is the audio the fake synthesizer makes: sample j of a sentence.
// It is never zero, so padding shows.
func ramp(j int) int16 { return int16(j%20000 + 1) }

// awkward are the sizes of the chunks the fake synthesizer emits, in turn.
var awkward = []int{1, 7, 100, 333, 1000, 29}

// fakeSynth records what it is asked to say and speaks size(text) samples
// of the ramp in awkward chunks. Text containing "fail" fails after 700
// samples. With pace set, it makes one awkward chunk per pace of time and
// stops when ctx is cancelled.
type fakeSynth struct {
	t      testing.TB
	format frame.Format
	voice  string
	size   func(text string) int
	pace   time.Duration

	mu     sync.Mutex
	texts  []string
	causes []error // of cancelled syntheses
}

var errSynth = errors.New("synthesis failed")

func sizeOf(text string) int { return 1000 + 37*len(text) }

func (s *fakeSynth) Format() frame.Format { return s.format }

func (s *fakeSynth) Synthesize(ctx context.Context, text, voice string, emit func(pcm []int16) error) error {
	t := s.t
	if ctx.Err() != nil {
		t.Errorf("Synthesize(%q) with a done context", text)
	}
	if text == "" || strings.TrimSpace(text) != text {
		t.Errorf("Synthesize(%q): blank or untrimmed text", text)
	}
	if voice != s.voice {
		t.Errorf("Synthesize(%q) voice %q, want %q", text, voice, s.voice)
	}
	s.mu.Lock()
	s.texts = append(s.texts, text)
	s.mu.Unlock()
	if strings.Contains(text, "fail") {
		if err := emit(span(0, 700)); err != nil {
			return err
		}
		return errSynth
	}
	size := sizeOf
	if s.size != nil {
		size = s.size
	}
	n := size(text)
	for j, i := 0, 0; j < n; i++ {
		if s.pace > 0 {
			select {
			case <-ctx.Done():
				s.mu.Lock()
				s.causes = append(s.causes, context.Cause(ctx))
				s.mu.Unlock()
				// A careless provider might still emit: the processor
				// must refuse audio of a cut-off turn.
				if emit(span(j, j+10)) == nil {
					t.Errorf("emit accepted audio after the turn was cut off")
				}
				return ctx.Err()
			case <-time.After(s.pace):
			}
		}
		k := min(awkward[i%len(awkward)], n-j)
		pcm := span(j, j+k)
		if err := emit(pcm); err != nil {
			return err
		}
		clear(pcm) // emit must not retain pcm
		j += k
	}
	return nil
}

func (s *fakeSynth) said() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.texts)
}

func span(from, to int) []int16 {
	s := make([]int16, 0, to-from)
	for j := from; j < to; j++ {
		s = append(s, ramp(j))
	}
	return s
}

type recorder = pipelinetest.Recorder

var (
	golden = pipelinetest.Golden
	pass   = pipelinetest.Pass
)

// run builds [tts, pass] with a recorder and runs it in the background.
func run(t *testing.T, proc *tts.Processor) (*pipeline.Pipeline, *recorder, chan error) {
	var rec recorder
	p := pipeline.New(pipeline.Options{Sink: rec.Sink}, proc, pass)
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	return p, &rec, done
}

func push(t *testing.T, p *pipeline.Pipeline, fs ...frame.Frame) {
	t.Helper()
	for _, f := range fs {
		if err := p.Push(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
}

func texts(ts ...string) []frame.Frame {
	var fs []frame.Frame
	for _, s := range ts {
		fs = append(fs, &frame.LLMText{Text: s})
	}
	return fs
}

// checkAudio asserts each sentence's audio is the synthesizer's (want(text)),
// cut into frames of exactly n samples of format f, padded with zeros, the
// last one carrying Spoken; and that TTSText precedes it.
func checkAudio(t *testing.T, frames []frame.Frame, f frame.Format, n int, want func(text string) []int16) {
	t.Helper()
	var cur string
	var got []int16
	for _, fr := range frames {
		switch fr := fr.(type) {
		case *frame.TTSText:
			if got != nil {
				t.Errorf("TTSText %q before the end of %q", fr.Text, cur)
			}
			cur, got = fr.Text, []int16{}
		case *frame.OutputAudio:
			if got == nil {
				t.Fatalf("OutputAudio before any TTSText")
			}
			// Every frame is a whole chunk, but for the empty one that
			// carries Spoken when a sentence ended on a chunk boundary.
			if fr.Format != f || len(fr.Samples) != n && !(len(fr.Samples) == 0 && fr.Spoken != "") {
				t.Fatalf("OutputAudio of %d samples %+v, want %d %+v", len(fr.Samples), fr.Format, n, f)
			}
			got = append(got, fr.Samples...)
			if fr.Spoken == "" {
				continue
			}
			if fr.Spoken != cur {
				t.Errorf("Spoken = %q, want %q", fr.Spoken, cur)
			}
			w := want(cur)
			if len(got) < len(w) || len(got)-len(w) >= n && len(w) > 0 || !slices.Equal(got[:len(w)], w) {
				t.Errorf("audio of %q: %d samples, want %d then padding", cur, len(got), len(w))
			} else if slices.ContainsFunc(got[len(w):], func(v int16) bool { return v != 0 }) {
				t.Errorf("audio of %q: padding is not silence", cur)
			}
			got = nil
		}
	}
	if got != nil {
		t.Errorf("the audio of %q has no frame carrying Spoken", cur)
	}
}

func TestGoldenStreaming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := &fakeSynth{t: t, format: frame.Mono16k, voice: "anna"}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{Voice: "anna"})
		if err != nil {
			t.Fatal(err)
		}
		p, rec, done := run(t, proc)
		push(t, p, &frame.LLMResponseStart{})
		push(t, p, texts("Hello", " there.", " How")...)
		synctest.Wait()
		// Speech starts before the answer is complete.
		if got := syn.said(); !slices.Equal(got, []string{"Hello there."}) {
			t.Fatalf("before the answer's end, synthesized %q, want the first sentence", got)
		}
		if got, want := golden(rec.Frames()), "RS S(Hello there.) O320*4 O320[Hello there.]"; got != want {
			t.Fatalf("before the answer's end, frames out =\n %q\nwant\n %q", got, want)
		}
		push(t, p, texts(" are you?", " Fine")...)
		push(t, p, &frame.LLMResponseEnd{}, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// sizeOf: 1444 samples for 12 bytes (4 frames + 164), 1148 for 4.
		want := "RS S(Hello there.) O320*4 O320[Hello there.] S(How are you?) O320*4 O320[How are you?] S(Fine) O320*3 O320[Fine] RE End"
		if got := golden(rec.Frames()); got != want {
			t.Errorf("frames out =\n %q\nwant\n %q", got, want)
		}
		if got := syn.said(); !slices.Equal(got, []string{"Hello there.", "How are you?", "Fine"}) {
			t.Errorf("synthesized %q", got)
		}
		checkAudio(t, rec.Frames(), frame.Mono16k, 320, func(text string) []int16 { return span(0, sizeOf(text)) })
		for _, f := range rec.Frames() {
			if f.Header().Turn != 1 {
				t.Errorf("%s stamped turn %d", pipelinetest.Describe(f), f.Header().Turn)
			}
		}
	})
}

// TestChunkEdges: audio is sent as soon as it fills a frame; a sentence that
// ends on a frame boundary (or has no audio) reports Spoken with an empty
// frame rather than a frame of padding.
func TestChunkEdges(t *testing.T) {
	for _, tc := range []struct {
		size int
		want string
	}{
		{960, "S(One.) O320*3 O0[One.] End"},
		{961, "S(One.) O320*3 O320[One.] End"},
		{1, "S(One.) O320[One.] End"},
		{0, "S(One.) O0[One.] End"},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				syn := &fakeSynth{t: t, format: frame.Mono16k, size: func(string) int { return tc.size }}
				proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
				if err != nil {
					t.Fatal(err)
				}
				p, rec, done := run(t, proc)
				push(t, p, texts("One. ")...)
				push(t, p, &frame.End{})
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if got := golden(rec.Frames()); got != tc.want {
					t.Errorf("frames out = %q, want %q", got, tc.want)
				}
				checkAudio(t, rec.Frames(), frame.Mono16k, 320, func(string) []int16 { return span(0, tc.size) })
			})
		})
	}
}

// TestResampled: 16 kHz synthesis played at 48 kHz comes out in 960-sample
// frames, and is exactly what one resampler makes of the whole sentence,
// tail included.
func TestResampled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := &fakeSynth{t: t, format: frame.Mono16k}
		rs, err := audio.NewResampler(16000, 48000)
		if err != nil {
			t.Fatal(err)
		}
		out := frame.Format{SampleRate: 48000, Channels: 1}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{Output: out, Resampler: rs})
		if err != nil {
			t.Fatal(err)
		}
		p, rec, done := run(t, proc)
		push(t, p, texts("First one. Second", " one is longer.")...)
		push(t, p, &frame.LLMResponseEnd{}, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := func(text string) []int16 {
			ref, err := audio.NewResampler(16000, 48000)
			if err != nil {
				t.Fatal(err)
			}
			return ref.Flush(ref.Process(nil, span(0, sizeOf(text))))
		}
		checkAudio(t, rec.Frames(), out, 960, want)
		if got, w := len(want("First one.")), 3*sizeOf("First one."); got <= w {
			t.Errorf("reference has %d samples for %d input: no tail?", got, w)
		}
		if got := syn.said(); !slices.Equal(got, []string{"First one.", "Second one is longer."}) {
			t.Errorf("synthesized %q", got)
		}
	})
}

// TestInterruptionDropsHeldText: text held for an interrupted answer is not
// spoken as part of the next one.
func TestInterruptionDropsHeldText(t *testing.T) {
	for _, withFrame := range []bool{true, false} {
		t.Run(fmt.Sprintf("frame=%v", withFrame), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				syn := &fakeSynth{t: t, format: frame.Mono16k, size: func(string) int { return 320 }}
				proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
				if err != nil {
					t.Fatal(err)
				}
				p, rec, done := run(t, proc)
				push(t, p, texts("Hello there. And then")...)
				synctest.Wait()
				p.Interrupt("barge-in")
				if withFrame {
					push(t, p, &frame.Interruption{Reason: "barge-in"})
				}
				push(t, p, texts("Sure", " thing.")...)
				push(t, p, &frame.LLMResponseEnd{}, &frame.End{})
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if got, want := syn.said(), []string{"Hello there.", "Sure thing."}; !slices.Equal(got, want) {
					t.Errorf("synthesized %q, want %q", got, want)
				}
				want := "S(Hello there.) O320 O0[Hello there.] S(Sure thing.) O320 O0[Sure thing.] RE End"
				if withFrame {
					want = "S(Hello there.) O320 O0[Hello there.] Int S(Sure thing.) O320 O0[Sure thing.] RE End"
				}
				if got := golden(rec.Frames()); got != want {
					t.Errorf("frames out =\n %q\nwant\n %q", got, want)
				}
			})
		})
	}
}

// TestInterruptionThenEnd: text held when the answer is interrupted is not
// spoken by Drain either.
func TestInterruptionThenEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := &fakeSynth{t: t, format: frame.Mono16k, size: func(string) int { return 320 }}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		p, rec, done := run(t, proc)
		push(t, p, texts("Hello there. And then")...)
		synctest.Wait()
		p.Interrupt("barge-in")
		push(t, p, &frame.Interruption{Reason: "barge-in"})
		synctest.Wait()
		push(t, p, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := golden(rec.Frames()), "S(Hello there.) O320 O0[Hello there.] Int End"; got != want {
			t.Errorf("frames out =\n %q\nwant\n %q", got, want)
		}
	})
}

// TestBargeIn: three sentences to a slow synthesizer, then the user barges
// in 100 ms into the first. The synthesis is cancelled once with
// ErrInterrupted, no audio of the old turn leaves the pipeline after the
// interruption, and the next answer is spoken in full.
func TestBargeIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := &fakeSynth{t: t, format: frame.Mono16k, pace: 20 * time.Millisecond}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		p, rec, done := run(t, proc)
		push(t, p, &frame.LLMResponseStart{})
		push(t, p, texts("The first sentence is long. ", "The second one. ", "The third one.")...)
		push(t, p, &frame.LLMResponseEnd{})
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		heard := len(rec.Frames())
		if heard < 2 {
			t.Fatalf("only %d frames out 100 ms into the first sentence", heard)
		}
		p.Interrupt("user started speaking")
		push(t, p, &frame.Interruption{Reason: "user started speaking"})
		synctest.Wait()
		push(t, p, &frame.LLMResponseStart{})
		push(t, p, texts("New answer.")...)
		push(t, p, &frame.LLMResponseEnd{}, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := syn.said(), []string{"The first sentence is long.", "New answer."}; !slices.Equal(got, want) {
			t.Errorf("synthesized %q, want %q", got, want)
		}
		if len(syn.causes) != 1 || !errors.Is(syn.causes[0], pipeline.ErrInterrupted) {
			t.Errorf("synthesis cancellations = %v, want one ErrInterrupted", syn.causes)
		}
		frames := rec.Frames()
		i := slices.IndexFunc(frames, func(f frame.Frame) bool { _, ok := f.(*frame.Interruption); return ok })
		if i < 0 {
			t.Fatalf("no Interruption out: %s", golden(frames))
		}
		for _, f := range frames[i+1:] {
			if a, ok := f.(*frame.OutputAudio); ok && a.Turn != 2 {
				t.Fatalf("audio of turn %d left after the interruption: %s", a.Turn, golden(frames))
			}
		}
		// Before: the start of the first sentence, cut off (no Spoken).
		// After: the new answer, whole. 1000+37*11 = 1407 samples.
		if got := golden(frames[:i]); !strings.HasPrefix(got, "RS S(The first sentence is long.) O320") || strings.Contains(got, "[") {
			t.Errorf("frames before the interruption = %q", got)
		}
		if got, want := golden(frames[i:]), "Int RS S(New answer.) O320*4 O320[New answer.] RE End"; got != want {
			t.Errorf("frames from the interruption =\n %q\nwant\n %q", got, want)
		}
	})
}

// TestDrain: text left when End arrives without LLMResponseEnd is spoken.
func TestDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := &fakeSynth{t: t, format: frame.Mono16k, size: func(string) int { return 700 }}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		p, rec, done := run(t, proc)
		push(t, p, texts("Done. Unfinished", " thought")...)
		push(t, p, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := "S(Done.) O320*2 O320[Done.] S(Unfinished thought) O320*2 O320[Unfinished thought] End"
		if got := golden(rec.Frames()); got != want {
			t.Errorf("frames out =\n %q\nwant\n %q", got, want)
		}
	})
}

// TestSynthError: a failed sentence becomes an Error frame without Spoken,
// and the answer goes on.
func TestSynthError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := &fakeSynth{t: t, format: frame.Mono16k, size: func(string) int { return 320 }}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		p, rec, done := run(t, proc)
		push(t, p, texts("This will fail. Next.")...)
		push(t, p, &frame.LLMResponseEnd{}, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// 700 samples then the error: two whole frames were out already.
		// The Error frame is a system frame, free to overtake the audio
		// queued at the next stage, so it is checked on its own.
		var data []frame.Frame
		var errs []error
		for _, f := range rec.Frames() {
			if e, ok := f.(*frame.Error); ok {
				errs = append(errs, e.Err)
				continue
			}
			data = append(data, f)
		}
		want := "S(This will fail.) O320*2 S(Next.) O320 O0[Next.] RE End"
		if got := golden(data); got != want {
			t.Errorf("frames out =\n %q\nwant\n %q", got, want)
		}
		if len(errs) != 1 || !errors.Is(errs[0], errSynth) {
			t.Errorf("error frames %v, want one %v", errs, errSynth)
		}
	})
}

func TestNewProcessorFormats(t *testing.T) {
	rs, err := audio.NewResampler(16000, 48000)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   frame.Format
		cfg  tts.ProcessorConfig
		ok   bool
	}{
		{"default", frame.Mono16k, tts.ProcessorConfig{}, true},
		{"same rate", frame.Mono16k, tts.ProcessorConfig{Output: frame.Mono16k}, true},
		{"resampled", frame.Mono16k, tts.ProcessorConfig{Output: frame.Format{SampleRate: 48000, Channels: 1}, Resampler: rs}, true},
		{"no resampler", frame.Mono16k, tts.ProcessorConfig{Output: frame.Format{SampleRate: 48000, Channels: 1}}, false},
		{"stereo out", frame.Mono16k, tts.ProcessorConfig{Output: frame.Format{SampleRate: 16000, Channels: 2}}, false},
		{"stereo in", frame.Format{SampleRate: 16000, Channels: 2}, tts.ProcessorConfig{}, false},
		{"no rate", frame.Format{Channels: 1}, tts.ProcessorConfig{}, false},
	} {
		_, err := tts.NewProcessor(&fakeSynth{t: t, format: tc.in}, tc.cfg)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, tts.ErrFormat) {
			t.Errorf("%s: NewProcessor = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// silentStart speaks 200 ms of silence, then 100 ms of a tone, in 500-sample
// chunks.
type silentStart struct{}

func (silentStart) Format() frame.Format { return frame.Mono16k }
func (silentStart) Synthesize(ctx context.Context, text, voice string, emit func([]int16) error) error {
	pcm := make([]int16, 3200+1600)
	for i := 3200; i < len(pcm); i++ {
		pcm[i] = 1000
	}
	for i := 0; i < len(pcm); i += 500 {
		if err := emit(pcm[i:min(i+500, len(pcm))]); err != nil {
			return err
		}
	}
	return nil
}

// TestTrimLeadingSilence: the first sentence of each answer starts 10 ms
// before its first audible sample; later sentences keep their silence.
func TestTrimLeadingSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		proc, err := tts.NewProcessor(silentStart{}, tts.ProcessorConfig{TrimLeadingSilence: true})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var sentences [][]int16
		var cur []int16
		sink := func(f frame.Frame) {
			if a, ok := f.(*frame.OutputAudio); ok {
				mu.Lock()
				cur = append(cur, a.Samples...)
				if a.Spoken != "" {
					sentences = append(sentences, cur)
					cur = nil
				}
				mu.Unlock()
			}
		}
		p := pipeline.New(pipeline.Options{Sink: sink}, proc)
		ctx := context.Background()
		for _, f := range []frame.Frame{
			&frame.LLMResponseStart{}, &frame.LLMText{Text: "One. Two."}, &frame.LLMResponseEnd{},
			&frame.LLMResponseStart{}, &frame.LLMText{Text: "Three."}, &frame.LLMResponseEnd{},
			&frame.End{},
		} {
			p.Push(ctx, f)
		}
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if len(sentences) != 3 {
			t.Fatalf("%d sentences", len(sentences))
		}
		onset := func(s []int16) int { return slices.IndexFunc(s, func(v int16) bool { return v != 0 }) }
		for i, want := range []int{160, 3200, 160} {
			if got := onset(sentences[i]); got != want {
				t.Errorf("sentence %d: first audible sample at %d, want %d", i, got, want)
			}
		}
	})
}

// TestHandoffSwitchesVoice: text before a handoff is spoken in the old voice,
// text after it in the new agent's voice, and an empty voice means the
// default.
func TestHandoffSwitchesVoice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := &voiceLog{}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{Voice: "slt"})
		if err != nil {
			t.Fatal(err)
		}
		p := pipeline.New(pipeline.Options{}, proc)
		ctx := context.Background()
		for _, f := range []frame.Frame{
			&frame.LLMResponseStart{},
			&frame.LLMText{Text: "One moment, please"},
			&frame.Handoff{From: "triage", To: "billing", Voice: "awb"},
			&frame.LLMText{Text: "Billing here. "},
			&frame.Handoff{From: "billing", To: "triage"},
			&frame.LLMText{Text: "Back to triage."},
			&frame.LLMResponseEnd{},
			&frame.End{},
		} {
			p.Push(ctx, f)
		}
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		want := []string{"slt:One moment, please", "awb:Billing here.", "slt:Back to triage."}
		if !slices.Equal(syn.calls, want) {
			t.Fatalf("synthesized %q, want %q", syn.calls, want)
		}
	})
}

// voiceLog records voice:text of each synthesis and makes 20 ms of audio.
type voiceLog struct{ calls []string }

func (v *voiceLog) Format() frame.Format { return frame.Mono16k }
func (v *voiceLog) Synthesize(ctx context.Context, text, voice string, emit func([]int16) error) error {
	v.calls = append(v.calls, voice+":"+text)
	return emit(make([]int16, 320))
}

// blockingSynth blocks in Synthesize until released or cancelled.
type blockingSynth struct {
	entered chan string
	release chan struct{}
}

func (blockingSynth) Format() frame.Format { return frame.Mono16k }
func (s blockingSynth) Synthesize(ctx context.Context, text, _ string, emit func([]int16) error) error {
	s.entered <- text
	select {
	case <-s.release:
		return emit(make([]int16, 320))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestSystemFramesOvertakeSynthesis: while a synthesis call is in flight,
// system frames pass the stage at once, both ways, and the data frames
// behind the sentence keep their order with its audio.
func TestSystemFramesOvertakeSynthesis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := blockingSynth{entered: make(chan string, 4), release: make(chan struct{})}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		var up []frame.Frame
		first := pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
			if _, ok := f.(*frame.BotStartedSpeaking); ok {
				up = append(up, f)
				return nil
			}
			out.Pass(f)
			return nil
		})
		var rec recorder
		var last pipeline.Emitter
		tail := &emitterGrab{grab: func(out pipeline.Emitter) { last = out }}
		p := pipeline.New(pipeline.Options{Sink: rec.Sink}, first, proc, tail)
		ctx := context.Background()
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		push(t, p, texts("Hello there. ")...)
		push(t, p, &frame.LLMResponseEnd{})
		if got := <-syn.entered; got != "Hello there." {
			t.Fatalf("synthesizing %q", got)
		}
		push(t, p, &frame.UserStartedSpeaking{})
		last.EmitUp(&frame.BotStartedSpeaking{})
		synctest.Wait()
		// Start is a system frame: it may overtake the TTSText at the
		// last stage.
		if got := golden(rec.Frames()); got != "S(Hello there.) Start" && got != "Start S(Hello there.)" {
			t.Errorf("frames out during synthesis = %q, want the sentence's TTSText and Start", got)
		}
		if len(up) != 1 {
			t.Errorf("%d upstream frames past the synthesizing stage, want 1", len(up))
		}
		close(syn.release)
		push(t, p, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var data []frame.Frame
		for _, f := range rec.Frames() {
			if f.Class() != frame.System {
				data = append(data, f)
			}
		}
		if got, want := golden(data), "S(Hello there.) O320 O0[Hello there.] RE End"; got != want {
			t.Errorf("frames out =\n %q\nwant\n %q", got, want)
		}
	})
}

// emitterGrab passes frames on and hands out its Emitter.
type emitterGrab struct{ grab func(pipeline.Emitter) }

func (g *emitterGrab) Start(_ context.Context, _ pipeline.Runtime, out pipeline.Emitter) error {
	g.grab(out)
	return nil
}

func (g *emitterGrab) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	out.Pass(f)
	return nil
}

// TestFullQueueGivesWayToInterruption: with the worker busy and its queue
// full, Process waits (back-pressure) only until the turn is cut off; the
// queued sentences of the old turn are then dropped unspoken.
func TestFullQueueGivesWayToInterruption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := blockingSynth{entered: make(chan string, 8), release: make(chan struct{})}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{Queue: 1})
		if err != nil {
			t.Fatal(err)
		}
		p, rec, done := run(t, proc)
		push(t, p, texts("One. Two. Three. Four. ")...)
		if got := <-syn.entered; got != "One." {
			t.Fatalf("synthesizing %q", got)
		}
		synctest.Wait() // "Two." queued, the stage waits to queue "Three."
		p.Interrupt("barge-in")
		push(t, p, &frame.Interruption{Reason: "barge-in"})
		synctest.Wait()
		if got := golden(rec.Frames()); got != "S(One.) Int" && got != "Int S(One.)" {
			t.Errorf("frames out after the interruption = %q", got)
		}
		push(t, p, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		select {
		case text := <-syn.entered:
			t.Errorf("%q of the cut-off turn was synthesized", text)
		default:
		}
	})
}

// TestTextOnlyAnswerIsNotSpoken: the text of a TextOnly answer is not
// synthesized (no TTSText, no audio); the spoken answer after it is.
func TestTextOnlyAnswerIsNotSpoken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		syn := &fakeSynth{t: t, format: frame.Mono16k}
		proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		p, rec, done := run(t, proc)
		push(t, p, &frame.LLMResponseStart{TextOnly: true})
		push(t, p, texts("Shown.", " Not spoken")...)
		push(t, p, &frame.LLMResponseEnd{}, &frame.LLMResponseStart{})
		push(t, p, texts("Spoken.")...)
		push(t, p, &frame.LLMResponseEnd{}, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := syn.said(); !slices.Equal(got, []string{"Spoken."}) {
			t.Errorf("synthesized %q, want only the spoken answer", got)
		}
		if got, want := golden(rec.Frames()), "RS RE RS S(Spoken.) O320*3 O320[Spoken.] RE End"; got != want {
			t.Errorf("frames out =\n %q\nwant\n %q", got, want)
		}
	})
}

// timedStart is silentStart that reports when its one word is spoken: at
// 200–300 ms of its audio, told before the audio (as a vendor may).
type timedStart struct{ silentStart }

func (s timedStart) SynthesizeWords(ctx context.Context, text, voice string, emit func([]int16) error, words func([]frame.Word)) error {
	words([]frame.Word{{Text: text, Start: 200 * time.Millisecond, End: 300 * time.Millisecond}})
	return s.Synthesize(ctx, text, voice, emit)
}

// TestWordTimings: the audio frames carry the synthesizer's word timings,
// once each, moved by the leading silence trimmed from the first sentence
// of an answer (190 ms: 10 ms are kept) and not from later ones.
func TestWordTimings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		proc, err := tts.NewProcessor(timedStart{}, tts.ProcessorConfig{TrimLeadingSilence: true})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got []string
		sink := func(f frame.Frame) {
			if a, ok := f.(*frame.OutputAudio); ok {
				mu.Lock()
				for _, w := range a.Words {
					got = append(got, fmt.Sprintf("%s %v-%v", w.Text, w.Start, w.End))
				}
				mu.Unlock()
			}
		}
		p := pipeline.New(pipeline.Options{Sink: sink}, proc)
		ctx := context.Background()
		for _, f := range []frame.Frame{&frame.LLMResponseStart{}, &frame.LLMText{Text: "One. Two."}, &frame.LLMResponseEnd{}, &frame.End{}} {
			p.Push(ctx, f)
		}
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		want := []string{"One. 10ms-110ms", "Two. 200ms-300ms"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("word timings %q, want %q", got, want)
		}
	})
}

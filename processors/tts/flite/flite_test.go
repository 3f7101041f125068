package flite

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
)

const (
	sentence      = "The quick brown fox jumps over the lazy dog."
	threeSentence = "Good morning, and thank you for calling. " +
		"Your appointment is on Tuesday at ten thirty. " +
		"Is there anything else I can help you with today?"
)

func newSynth(tb testing.TB, cfg Config) *Synthesizer {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("New(%+v): %v", cfg, err)
	}
	return s
}

// collect synthesizes text and returns copies of the chunks emitted.
func collect(tb testing.TB, s *Synthesizer, text, voice string) [][]int16 {
	tb.Helper()
	var chunks [][]int16
	err := s.Synthesize(context.Background(), text, voice, func(pcm []int16) error {
		chunks = append(chunks, append([]int16(nil), pcm...))
		return nil
	})
	if err != nil {
		tb.Fatalf("Synthesize(%q, %q): %v", text, voice, err)
	}
	return chunks
}

func concat(chunks [][]int16) []int16 {
	var all []int16
	for _, c := range chunks {
		all = append(all, c...)
	}
	return all
}

func rms(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

func TestNewDefaultsAndValidates(t *testing.T) {
	s := newSynth(t, Config{})
	if s.voice != DefaultVoice {
		t.Errorf("default voice = %q, want %q", s.voice, DefaultVoice)
	}
	if got := s.Format(); got != frame.Mono16k {
		t.Errorf("Format() = %+v, want %+v", got, frame.Mono16k)
	}
	if got, want := strings.Join(s.Voices(), ","), "awb,rms,slt"; got != want {
		t.Errorf("Voices() = %s, want %s", got, want)
	}
	for _, name := range []string{"kal", "SLT", "nope"} {
		if _, err := New(Config{Voice: name}); !errors.Is(err, ErrUnknownVoice) {
			t.Errorf("New(Voice %q) error = %v, want ErrUnknownVoice", name, err)
		}
	}
}

func TestVoicesSpeakAudibly(t *testing.T) {
	s := newSynth(t, Config{})
	lengths := map[string]int{}
	for _, voice := range []string{"slt", "awb", "rms"} {
		t.Run(voice, func(t *testing.T) {
			pcm := concat(collect(t, s, sentence, voice))
			d := s.Format().Duration(len(pcm))
			// Nine words take a speaker roughly two to four seconds.
			if d < time.Second || d > 6*time.Second {
				t.Errorf("%q lasts %v, want 1s..6s", sentence, d)
			}
			// Silence is 0; speech at a normal level is in the thousands.
			if r := rms(pcm); r < 300 {
				t.Errorf("RMS = %.0f, want audible speech (> 300)", r)
			}
			lengths[voice] = len(pcm)
			// Durations are deterministic: the same voice gives the same
			// length again (the waveform itself has random excitation).
			if again := len(concat(collect(t, s, sentence, voice))); again != len(pcm) {
				t.Errorf("second synthesis has %d samples, first %d", again, len(pcm))
			}
		})
	}
	// The voice argument is honoured: each voice has its own timing.
	if lengths["slt"] == lengths["awb"] || lengths["slt"] == lengths["rms"] || lengths["awb"] == lengths["rms"] {
		t.Errorf("voices produced identical lengths %v; voice selection ignored?", lengths)
	}
	// "" is the configured default.
	awb := newSynth(t, Config{Voice: "awb"})
	if got := len(concat(collect(t, awb, sentence, ""))); got != lengths["awb"] {
		t.Errorf("default voice awb gave %d samples, want %d (awb's)", got, lengths["awb"])
	}
}

func TestStreamsInSmallChunks(t *testing.T) {
	s := newSynth(t, Config{})
	chunks := collect(t, s, threeSentence, "")
	whole := concat(chunks)
	if len(chunks) < 3 {
		t.Fatalf("got %d chunks for three sentences, want streaming (many)", len(chunks))
	}
	// Streaming means no chunk holds a sentence: each is a small slice of
	// the utterance (flite emits about 20 ms at a time).
	limit := s.Format().Samples(250 * time.Millisecond)
	for i, c := range chunks {
		if len(c) == 0 || len(c) > limit {
			t.Errorf("chunk %d has %d samples, want 1..%d", i, len(c), limit)
		}
	}
	if d := s.Format().Duration(len(whole)); d < 5*time.Second {
		t.Errorf("three sentences last %v, want > 5s", d)
	}
	// The text is split into sentences that are synthesized one after
	// another (so audio starts after the first one): the whole lasts exactly
	// as long as its sentences spoken alone, one after another.
	sum := 0
	for _, sent := range []string{
		"Good morning, and thank you for calling.",
		"Your appointment is on Tuesday at ten thirty.",
		"Is there anything else I can help you with today?",
	} {
		sum += len(concat(collect(t, s, sent, "")))
	}
	if len(whole) != sum {
		t.Errorf("three sentences gave %d samples, the sentences alone %d", len(whole), sum)
	}
}

func TestCancelInEmitStops(t *testing.T) {
	s := newSynth(t, Config{})
	errBargeIn := errors.New("barge-in")
	tests := []struct {
		name   string
		cancel func(context.CancelCauseFunc)
		want   error
	}{
		{"cause", func(c context.CancelCauseFunc) { c(errBargeIn) }, errBargeIn},
		{"plain", func(c context.CancelCauseFunc) { c(nil) }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			emits := 0
			err := s.Synthesize(ctx, threeSentence, "", func(pcm []int16) error {
				emits++
				if emits == 1 {
					tt.cancel(cancel)
				}
				return nil
			})
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if emits != 1 {
				t.Errorf("emit called %d times, want 1 (nothing after cancel)", emits)
			}
		})
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	s := newSynth(t, Config{})
	errHangup := errors.New("hang-up")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errHangup)
	err := s.Synthesize(ctx, sentence, "", func([]int16) error {
		t.Error("emit called on a cancelled context")
		return nil
	})
	if !errors.Is(err, errHangup) {
		t.Errorf("err = %v, want %v", err, errHangup)
	}
}

func TestCancelFromAnotherGoroutine(t *testing.T) {
	// Cancelling from another goroutine (as the pipeline does on barge-in)
	// stops synthesis: no chunk follows the one during which it happened.
	s := newSynth(t, Config{})
	full := len(collect(t, s, threeSentence, ""))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emits := 0
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Synthesize(ctx, threeSentence, "", func([]int16) error {
			emits++
			if emits == 1 {
				// Hold the stream until the canceller has run.
				close(started)
				<-ctx.Done()
			}
			return nil
		})
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if emits != 1 {
		t.Errorf("emitted %d chunks of %d, want 1", emits, full)
	}
}

func TestEmitErrorPropagates(t *testing.T) {
	s := newSynth(t, Config{})
	errWrite := errors.New("transport closed")
	emits := 0
	err := s.Synthesize(context.Background(), threeSentence, "rms", func([]int16) error {
		emits++
		if emits == 3 {
			return errWrite
		}
		return nil
	})
	if err != errWrite {
		t.Errorf("err = %v, want emit's error itself", err)
	}
	if emits != 3 {
		t.Errorf("emit called %d times, want 3", emits)
	}
}

func TestEmitPanicIsReraised(t *testing.T) {
	s := newSynth(t, Config{})
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		_ = s.Synthesize(context.Background(), sentence, "", func([]int16) error { panic("boom") })
		t.Error("Synthesize returned after emit panicked")
	}()
	// flite is still usable afterwards.
	if pcm := concat(collect(t, s, "Still here.", "")); len(pcm) == 0 {
		t.Error("no audio after a panic")
	}
}

func TestUnknownVoice(t *testing.T) {
	s := newSynth(t, Config{})
	err := s.Synthesize(context.Background(), sentence, "kal", func([]int16) error {
		t.Error("emit called for an unknown voice")
		return nil
	})
	if !errors.Is(err, ErrUnknownVoice) {
		t.Errorf("err = %v, want ErrUnknownVoice", err)
	}
}

func TestEmptyTextIsSilent(t *testing.T) {
	s := newSynth(t, Config{})
	for _, text := range []string{"", " ", "\n\t  \r\n", "\x00"} {
		err := s.Synthesize(context.Background(), text, "", func([]int16) error {
			t.Errorf("emit called for %q", text)
			return nil
		})
		if err != nil {
			t.Errorf("Synthesize(%q) = %v, want nil", text, err)
		}
	}
}

func TestOddTextDoesNotFail(t *testing.T) {
	s := newSynth(t, Config{})
	for _, text := range []string{
		"...", "?!", "Dr. Smith paid $45.20 on Jan 3rd, 2021 at 10:30am.",
		"Zorblaxian quixotry", "nul\x00inside", "日本語", "\xff\xfe", "a",
		strings.Repeat("word ", 250), // no sentence break; over the 200-token utterance cap
	} {
		err := s.Synthesize(context.Background(), text, "", func(pcm []int16) error {
			if len(pcm) == 0 {
				t.Errorf("%q: empty chunk emitted", text)
			}
			return nil
		})
		if err != nil {
			t.Errorf("Synthesize(%q) = %v", text, err)
		}
	}
}

func TestConcurrentSynthesis(t *testing.T) {
	s := newSynth(t, Config{})
	voices := []string{"slt", "awb", "rms"}
	want := map[string]int{}
	for _, v := range voices {
		want[v] = len(concat(collect(t, s, sentence, v)))
	}
	before := runtime.NumGoroutine()

	var wg sync.WaitGroup
	for i := range 6 {
		voice := voices[i%len(voices)]
		wg.Go(func() {
			for range 2 {
				pcm := concat(collect(t, s, sentence, voice))
				if len(pcm) != want[voice] {
					t.Errorf("voice %s: %d samples concurrently, %d alone", voice, len(pcm), want[voice])
				}
				if r := rms(pcm); r < 300 {
					t.Errorf("voice %s: RMS %.0f concurrently", voice, r)
				}
			}
		})
	}
	wg.Wait()
	waitGoroutines(t, before)
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines left, want %d", runtime.NumGoroutine(), want)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rssBytes reads the resident set size of this process (Linux).
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatalf("statm %q: %v", b, err)
	}
	return pages * int64(os.Getpagesize())
}

func TestNoCMemoryLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("200 syntheses")
	}
	s := newSynth(t, Config{})
	run := func(n int) {
		for i := range n {
			ctx, cancel := context.WithCancel(context.Background())
			emits := 0
			_ = s.Synthesize(ctx, sentence, Voices()[i%3], func([]int16) error {
				emits++
				if i%4 == 0 && emits == 5 {
					cancel() // the interrupted path must free too
				}
				return nil
			})
			cancel()
		}
	}
	run(20) // warm up allocator arenas and Go heap
	runtime.GC()
	start := rssBytes(t)
	run(200)
	runtime.GC()
	grown := rssBytes(t) - start
	// One leaked utterance holds its ~100 KB wave and more; 200 of them
	// would add tens of MB.
	t.Logf("RSS %d KB before, grew %d KB over 200 syntheses", start/1024, grown/1024)
	if grown > 8<<20 {
		t.Errorf("RSS grew %d KB over 200 syntheses: C memory leak?", grown/1024)
	}
}

func FuzzSynthesize(f *testing.F) {
	for _, seed := range []string{
		sentence, "", "...", "1,234.56 $7 10:30pm 3rd", "e-mail: a@b.c",
		"\x00\xff", "A.B.C. & D", "((( )))", "\n\n\n", "x\ny\n\nz",
	} {
		f.Add(seed)
	}
	s := newSynth(f, Config{})
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 200 {
			text = text[:200]
		}
		err := s.Synthesize(context.Background(), text, "", func(pcm []int16) error {
			if len(pcm) == 0 {
				t.Error("empty chunk emitted")
			}
			return nil
		})
		if err != nil {
			t.Errorf("Synthesize(%q) = %v", text, err)
		}
	})
}

// errFirstChunk stops synthesis once the first chunk has arrived.
var errFirstChunk = errors.New("first chunk")

func BenchmarkFirstChunk(b *testing.B) {
	s := newSynth(b, Config{})
	b.ReportAllocs()
	for b.Loop() {
		err := s.Synthesize(context.Background(), sentence, "", func([]int16) error { return errFirstChunk })
		if err != errFirstChunk {
			b.Fatal(err)
		}
	}
}

func BenchmarkSynthesize(b *testing.B) {
	for _, voice := range []string{"slt", "awb", "rms"} {
		b.Run(voice, func(b *testing.B) {
			s := newSynth(b, Config{})
			var samples int
			b.ReportAllocs()
			for b.Loop() {
				samples = 0
				err := s.Synthesize(context.Background(), sentence, voice, func(pcm []int16) error {
					samples += len(pcm)
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			audio := s.Format().Duration(samples)
			perOp := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(audio.Seconds(), "audio-s/op")
			b.ReportMetric(perOp.Seconds()/audio.Seconds(), "RTF")
		})
	}
}

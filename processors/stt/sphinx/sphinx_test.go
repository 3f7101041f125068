package sphinx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/stt"
)

// chunk is 20 ms of 16 kHz mono audio, what a microphone delivers.
const chunk = 320

// needModels skips the test when the Debian model package is not installed.
func needModels(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{DefaultHMM, DefaultLM, DefaultDict} {
		if _, err := os.Stat(p); err != nil {
			tb.Skipf("pocketsphinx model missing (install pocketsphinx-en-us): %v", err)
		}
	}
}

var synthCache sync.Map // text → []int16

// synth speaks text with the flite command-line synthesizer and returns its
// 16 kHz mono samples. Tests that need it skip when flite is not installed.
func synth(tb testing.TB, text string) []int16 {
	tb.Helper()
	if v, ok := synthCache.Load(text); ok {
		return v.([]int16)
	}
	bin, err := exec.LookPath("flite")
	if err != nil {
		tb.Skip("flite not installed; it synthesizes the test speech")
	}
	out := filepath.Join(tb.TempDir(), "speech.wav")
	if b, err := exec.Command(bin, "-voice", "slt", "-t", text, "-o", out).CombinedOutput(); err != nil {
		tb.Fatalf("flite %q: %v: %s", text, err, b)
	}
	f, samples, err := audio.LoadWAV(out)
	if err != nil {
		tb.Fatalf("flite output: %v", err)
	}
	if f.SampleRate != 16000 || f.Channels != 1 {
		tb.Fatalf("flite wrote %d Hz × %d channels, want 16 kHz mono", f.SampleRate, f.Channels)
	}
	if len(samples) < 16000/2 {
		tb.Fatalf("flite wrote only %d samples for %q", len(samples), text)
	}
	synthCache.Store(text, samples)
	return samples
}

func newRecognizer(tb testing.TB, cfg Config) *Recognizer {
	tb.Helper()
	needModels(tb)
	r, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// overlap is the fraction of want's words found in got (case-insensitive,
// each word of got used once).
func overlap(want, got string) float64 {
	ww := strings.Fields(strings.ToLower(want))
	left := map[string]int{}
	for _, w := range strings.Fields(strings.ToLower(got)) {
		left[w]++
	}
	hit := 0
	for _, w := range ww {
		if left[w] > 0 {
			left[w]--
			hit++
		}
	}
	if len(ww) == 0 {
		return 0
	}
	return float64(hit) / float64(len(ww))
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		want, got string
		score     float64
	}{
		{"what is the weather today", "what is the weather today", 1},
		{"one two three four", "one to three four", 0.75},
		{"the the cat", "the cat", 2.0 / 3},
		{"Hello", "hello", 1},
		{"hello", "", 0},
		{"", "anything", 0},
	}
	for _, tc := range tests {
		if got := overlap(tc.want, tc.got); got != tc.score {
			t.Errorf("overlap(%q, %q) = %v, want %v", tc.want, tc.got, got, tc.score)
		}
	}
}

// received is what a reader goroutine saw on one stream.
type received struct {
	interims []stt.Result // before the final
	final    stt.Result
	finals   int
	err      error // the error that ended the reading (io.EOF on success)
	after    error // a second Recv after the end
}

// reader drains s on its own goroutine. Every interim is also offered on
// interim (non-blocking) so the caller can wait for one.
func reader(s stt.Stream, interim chan<- stt.Result) <-chan received {
	done := make(chan received, 1)
	go func() {
		var rc received
		for {
			res, err := s.Recv(context.Background())
			if err != nil {
				rc.err = err
				_, rc.after = s.Recv(context.Background())
				done <- rc
				return
			}
			if res.Final {
				rc.final = res
				rc.finals++
				continue
			}
			rc.interims = append(rc.interims, res)
			select {
			case interim <- res:
			default:
			}
		}
	}()
	return done
}

// opener opens a stream: a Recognizer, or spotting (its OpenSpotting).
type opener interface {
	Open(ctx context.Context) (stt.Stream, error)
}

// spotting opens a Recognizer's streams with OpenSpotting.
type spotting struct{ r *Recognizer }

func (s spotting) Open(ctx context.Context) (stt.Stream, error) { return s.r.OpenSpotting(ctx) }

// send feeds pcm to s in 20 ms chunks.
func send(tb testing.TB, s stt.Stream, pcm []int16) {
	tb.Helper()
	for i := 0; i < len(pcm); i += chunk {
		if err := s.Send(context.Background(), pcm[i:min(i+chunk, len(pcm))]); err != nil {
			tb.Fatalf("Send at sample %d: %v", i, err)
		}
	}
}

// transcribe runs one utterance like the pipeline does: a reader goroutine,
// audio in 20 ms chunks, then Finish. It waits for an interim result before
// calling Finish, so it fails if no interim appears while audio is sent. It
// may run on any goroutine.
func transcribe(r opener, pcm []int16) (received, error) {
	ctx := context.Background()
	s, err := r.Open(ctx)
	if err != nil {
		return received{}, err
	}
	defer s.Close()
	interim := make(chan stt.Result, 1)
	done := reader(s, interim)
	for i := 0; i < len(pcm); i += chunk {
		if err := s.Send(ctx, pcm[i:min(i+chunk, len(pcm))]); err != nil {
			return received{}, fmt.Errorf("Send at sample %d: %w", i, err)
		}
	}
	select {
	case <-interim:
	case rc := <-done:
		return rc, fmt.Errorf("stream ended before Finish: %+v", rc)
	}
	if err := s.Finish(ctx); err != nil {
		return received{}, err
	}
	rc := <-done
	if rc.err != io.EOF || rc.after != io.EOF {
		return rc, fmt.Errorf("stream ended with %v, then %v; want io.EOF twice", rc.err, rc.after)
	}
	if rc.finals != 1 {
		return rc, fmt.Errorf("%d final results, want 1", rc.finals)
	}
	return rc, nil
}

func mustTranscribe(tb testing.TB, r opener, pcm []int16) received {
	tb.Helper()
	rc, err := transcribe(r, pcm)
	if err != nil {
		tb.Fatal(err)
	}
	return rc
}

func TestTranscribe(t *testing.T) {
	r := newRecognizer(t, Config{})
	tests := []struct {
		say      string
		keywords []string // must all be in the final transcript
		minScore float64  // word overlap of the final with say
	}{
		{"what is the weather today", []string{"weather", "today"}, 0.8},
		{"turn on the lights in the kitchen", []string{"lights", "kitchen"}, 0.8},
		{"hello how are you", []string{"hello"}, 0.75},
		{"one two three four five", []string{"three", "four", "five"}, 0.6},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.say, " ", "_"), func(t *testing.T) {
			rc := mustTranscribe(t, r, synth(t, tc.say))
			final := rc.final.Text
			t.Logf("interims %q, final %q", texts(rc.interims), final)
			if s := overlap(tc.say, final); s < tc.minScore {
				t.Errorf("final %q overlaps %q by %.2f, want ≥ %.2f", final, tc.say, s, tc.minScore)
			}
			for _, k := range tc.keywords {
				if overlap(k, final) != 1 {
					t.Errorf("final %q lacks %q", final, k)
				}
			}
			for i, res := range rc.interims {
				if res.Text == "" {
					t.Errorf("interim %d is empty", i)
				}
				if i > 0 && res.Text == rc.interims[i-1].Text {
					t.Errorf("interim %d repeats %q", i, res.Text)
				}
			}
		})
	}
}

func texts(rs []stt.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Text)
	}
	return out
}

// noise is low-level microphone hiss: no speech.
func noise(n int, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, seed))
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(rng.IntN(61) - 30)
	}
	return pcm
}

func TestSilence(t *testing.T) {
	r := newRecognizer(t, Config{})
	for name, pcm := range map[string][]int16{
		"digital zero": make([]int16, 2*16000),
		"hiss":         noise(2*16000, 1),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := r.Open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			done := reader(s, nil)
			send(t, s, pcm)
			if err := s.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
			rc := <-done
			if rc.err != io.EOF || rc.finals != 1 || !rc.final.Final {
				t.Fatalf("got %+v, want one final result then io.EOF", rc)
			}
			t.Logf("final %q", rc.final.Text)
			if n := len(strings.Fields(rc.final.Text)); n > 1 {
				t.Errorf("silence transcribed as %q (%d words)", rc.final.Text, n)
			}
		})
	}
}

func TestSlowReaderKeepsNewestInterim(t *testing.T) {
	r := newRecognizer(t, Config{InterimEvery: 100 * time.Millisecond})
	s, err := r.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Nobody reads while the whole utterance is sent: Send must not block,
	// and the interims pile up into one.
	send(t, s, synth(t, "turn on the lights in the kitchen"))
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc := <-reader(s, nil)
	if rc.err != io.EOF || rc.finals != 1 {
		t.Fatalf("got %+v, want results then io.EOF", rc)
	}
	if len(rc.interims) != 1 {
		t.Fatalf("got interims %q, want exactly the newest one", texts(rc.interims))
	}
	// The newest interim hypothesis covers most of the utterance.
	if s := overlap("turn on the lights in the", rc.interims[0].Text); s < 0.6 {
		t.Errorf("queued interim %q is not the latest hypothesis", rc.interims[0].Text)
	}
}

func TestInterimEvery(t *testing.T) {
	pcm := synth(t, "what is the weather today")
	r := newRecognizer(t, Config{InterimEvery: time.Minute})
	s, err := r.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := reader(s, nil)
	send(t, s, pcm)
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc := <-done
	if len(rc.interims) != 0 || rc.finals != 1 {
		t.Fatalf("InterimEvery of a minute, 1.6 s of audio: got interims %q and %d finals, want only the final", texts(rc.interims), rc.finals)
	}
	if overlap("weather today", rc.final.Text) != 1 {
		t.Errorf("final %q", rc.final.Text)
	}
}

func TestStreamLifecycle(t *testing.T) {
	r := newRecognizer(t, Config{})
	ctx := context.Background()
	pcm := synth(t, "hello")

	t.Run("after close", func(t *testing.T) {
		s, err := r.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		send(t, s, pcm)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := s.Recv(ctx); !errors.Is(err, stt.ErrClosed) {
			t.Errorf("Recv after Close: %v, want stt.ErrClosed", err)
		}
		if err := s.Send(ctx, pcm[:chunk]); !errors.Is(err, stt.ErrClosed) {
			t.Errorf("Send after Close: %v, want stt.ErrClosed", err)
		}
		if err := s.Finish(ctx); !errors.Is(err, stt.ErrClosed) {
			t.Errorf("Finish after Close: %v, want stt.ErrClosed", err)
		}
	})

	t.Run("close wakes blocked recv", func(t *testing.T) {
		s, err := r.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := s.Recv(ctx)
			errc <- err
		}()
		s.Close()
		if err := <-errc; !errors.Is(err, stt.ErrClosed) {
			t.Errorf("blocked Recv returned %v, want stt.ErrClosed", err)
		}
	})

	t.Run("close drops pending results", func(t *testing.T) {
		s, err := r.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		send(t, s, pcm)
		if err := s.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := s.Recv(ctx); !errors.Is(err, stt.ErrClosed) {
			t.Errorf("Recv with a pending final after Close: %v, want stt.ErrClosed", err)
		}
	})

	t.Run("after finish", func(t *testing.T) {
		s, err := r.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		send(t, s, pcm)
		if err := s.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, pcm[:chunk]); !errors.Is(err, ErrFinished) {
			t.Errorf("Send after Finish: %v, want ErrFinished", err)
		}
		if err := s.Finish(ctx); !errors.Is(err, ErrFinished) {
			t.Errorf("second Finish: %v, want ErrFinished", err)
		}
		rc := <-reader(s, nil)
		if rc.finals != 1 || rc.err != io.EOF || rc.after != io.EOF {
			t.Errorf("got %+v, want one final then io.EOF", rc)
		}
	})

	t.Run("context", func(t *testing.T) {
		s, err := r.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Recv(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Recv with nothing queued, cancelled ctx: %v", err)
		}
		if err := s.Send(cctx, pcm[:chunk]); !errors.Is(err, context.Canceled) {
			t.Errorf("Send with cancelled ctx: %v", err)
		}
		if _, err := r.Open(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Open with cancelled ctx: %v", err)
		}
	})
}

func TestDecoderReuse(t *testing.T) {
	r := newRecognizer(t, Config{Pool: 1})
	if n := r.Idle(); n != 1 {
		t.Fatalf("New left %d idle decoders, want the warmed one", n)
	}
	ctx := context.Background()
	first := synth(t, "what is the weather today")
	second := synth(t, "turn on the lights in the kitchen")

	s, err := r.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dec := s.(*Stream).dec
	if r.Idle() != 0 {
		t.Fatal("open stream did not take the idle decoder")
	}
	// An utterance abandoned halfway must not leak into the next one.
	send(t, s, first[:len(first)*2/3])
	s.Close()
	if r.Idle() != 1 {
		t.Fatal("Close did not return the decoder")
	}

	for _, tc := range []struct {
		say, not string
		pcm      []int16
	}{
		{"turn on the lights in the kitchen", "weather", second},
		{"what is the weather today", "kitchen", first},
	} {
		s, err := r.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.(*Stream).dec; got != dec {
			t.Fatal("pool of one did not reuse its decoder")
		}
		s.Close()
		rc := mustTranscribe(t, r, tc.pcm)
		if sc := overlap(tc.say, rc.final.Text); sc < 0.8 {
			t.Errorf("reused decoder heard %q, want %q", rc.final.Text, tc.say)
		}
		if overlap(tc.not, rc.final.Text) != 0 {
			t.Errorf("final %q carries %q over from an earlier utterance", rc.final.Text, tc.not)
		}
	}
	if r.Idle() != 1 {
		t.Errorf("%d idle decoders, want 1", r.Idle())
	}
}

func TestConcurrentStreams(t *testing.T) {
	r := newRecognizer(t, Config{Pool: 2})
	phrases := []string{"what is the weather today", "turn on the lights in the kitchen"}
	pcms := make([][]int16, len(phrases))
	for i, p := range phrases {
		pcms[i] = synth(t, p)
	}
	before := runtime.NumGoroutine()

	// Two sessions at once, each with its own reader goroutine; the second
	// needs a decoder loaded on demand.
	var wg sync.WaitGroup
	finals := make([]string, len(phrases))
	errs := make([]error, len(phrases))
	for i := range phrases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rc received
			rc, errs[i] = transcribe(r, pcms[i])
			finals[i] = rc.final.Text
		}()
	}
	wg.Wait()
	for i, p := range phrases {
		if errs[i] != nil {
			t.Fatalf("stream %d: %v", i, errs[i])
		}
		if s := overlap(p, finals[i]); s < 0.8 {
			t.Errorf("stream %d heard %q, want %q", i, finals[i], p)
		}
	}
	if n := r.Idle(); n != 2 {
		t.Errorf("%d idle decoders after two streams with Pool 2, want 2", n)
	}
	waitGoroutines(t, before)
}

// waitGoroutines fails if goroutines started by the test are still running.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRecognizerClose(t *testing.T) {
	r := newRecognizer(t, Config{})
	ctx := context.Background()
	s, err := r.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Open(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close: %v, want ErrClosed", err)
	}
	// A stream open at Close keeps working, and its decoder is freed, not
	// pooled, when it closes.
	done := reader(s, nil)
	send(t, s, synth(t, "hello"))
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	rc := <-done
	if rc.finals != 1 || overlap("hello", rc.final.Text) != 1 {
		t.Errorf("stream open across Recognizer.Close: %+v", rc)
	}
	s.Close()
	if r.Idle() != 0 {
		t.Errorf("closed recognizer pooled a decoder")
	}
}

func TestNewErrors(t *testing.T) {
	needModels(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		cfg  Config
		is   error
	}{
		{"missing hmm", Config{HMM: missing}, fs.ErrNotExist},
		{"missing lm", Config{LM: missing}, fs.ErrNotExist},
		{"missing dict", Config{Dict: missing}, fs.ErrNotExist},
		{"hmm is a file", Config{HMM: DefaultLM}, nil},
		{"lm is a directory", Config{LM: dir}, nil},
		{"negative interim", Config{InterimEvery: -time.Second}, nil},
		{"negative pool", Config{Pool: -1}, nil},
		{"unreadable model", Config{HMM: dir}, ErrDecoder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.cfg)
			if err == nil {
				r.Close()
				t.Fatal("New succeeded")
			}
			if !strings.HasPrefix(err.Error(), "sphinx: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	r := newRecognizer(t, Config{})
	if f := r.Format(); f != frame.Mono16k {
		t.Errorf("Format() = %+v, want 16 kHz mono", f)
	}
}

// BenchmarkFinish measures the final-transcript latency: Finish plus the
// Recv of the final result, after 1.4 to 2 s of speech was sent. What is left
// for Finish to do is the search of the last few feature frames, which the
// front end holds back until it sees later audio; how many there are depends
// on where the audio's end falls on the 10 ms frame grid, and they are
// expensive right after a word ends (many word exits to score against the
// language model). In the pipeline Finish follows the turn detector's stop
// time, so the "pause" cases, with 300 ms of low hiss after the speech, are
// the realistic ones.
// With spot, the final waits for the spotting pass over the utterance
// (a short one's: under SpotMax).
func BenchmarkFinish(b *testing.B) {
	r := newRecognizer(b, Config{})
	spot := newRecognizer(b, Config{Spot: []string{"stop", "wait", "no", "mm", "mhm", "uh-huh", "uh", "um", "ah", "oh", "yeah", "yes", "okay", "right", "sure"}})
	for _, say := range []string{
		"turn on the lights in the kitchen",
		"please call my mother",
		"hello how are you",
	} {
		speech := synth(b, say)
		paused := append(append([]int16{}, speech...), noise(16000*3/10, 2)...)
		for _, c := range []struct {
			name string
			pcm  []int16
		}{{"end", speech}, {"pause", paused}} {
			b.Run(strings.ReplaceAll(say, " ", "_")+"/"+c.name, func(b *testing.B) {
				benchFinish(b, r, c.pcm)
			})
			b.Run(strings.ReplaceAll(say, " ", "_")+"/"+c.name+"/spot", func(b *testing.B) {
				benchFinish(b, spotting{spot}, c.pcm)
			})
		}
	}
}

func benchFinish(b *testing.B, r opener, pcm []int16) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		s, err := r.Open(ctx)
		if err != nil {
			b.Fatal(err)
		}
		send(b, s, pcm)
		// Take the queued interim (all of them coalesce into one) so the
		// Recv below returns the final.
		if res, err := s.Recv(ctx); err != nil || res.Final {
			b.Fatalf("interim before Finish: %+v, %v", res, err)
		}
		b.StartTimer()
		if err := s.Finish(ctx); err != nil {
			b.Fatal(err)
		}
		res, err := s.Recv(ctx)
		if err != nil || !res.Final {
			b.Fatalf("Recv after Finish: %+v, %v", res, err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkSend20ms measures decoding one 20 ms chunk of speech.
func BenchmarkSend20ms(b *testing.B) {
	r := newRecognizer(b, Config{})
	pcm := synth(b, "turn on the lights in the kitchen")
	ctx := context.Background()
	s, err := r.Open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	drain := func() {
		for {
			if _, err := s.Recv(ctx); err != nil {
				return
			}
		}
	}
	off := 0
	b.ResetTimer()
	for range b.N {
		if off+chunk > len(pcm) {
			b.StopTimer()
			s.Finish(ctx)
			drain()
			s.Close()
			if s, err = r.Open(ctx); err != nil {
				b.Fatal(err)
			}
			off = 0
			b.StartTimer()
		}
		if err := s.Send(ctx, pcm[off:off+chunk]); err != nil {
			b.Fatal(err)
		}
		off += chunk
	}
	b.StopTimer()
	s.Close()
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(20*time.Millisecond), "xRT")
}

// TestSpot: with Spot, the final result of a stream opened with
// OpenSpotting carries what a search limited to those words heard, and
// when; words missing from the dictionary are left out, a hyphenated one
// taken by its parts; streams opened with Open, utterances over SpotMax,
// and recognizers without Spot get no second pass.
func TestSpot(t *testing.T) {
	spot := []string{"stop", "wait", "no", "mm-hm", "uh-huh", "uh", "um", "ah", "mm", "frobnicatez"}
	rec := newRecognizer(t, Config{Spot: spot})
	r := spotting{rec}
	pcm := append(append(noise(8000, 1), synth(t, "wait")...), noise(4800, 2)...)
	// Twice: the second time on a decoder that has decoded before (its
	// frame count goes on), and on a pooled one that spotted.
	for range 2 {
		rc := mustTranscribe(t, r, pcm)
		var words []string
		for _, w := range rc.final.Spotted {
			words = append(words, w.Text)
			if w.End <= w.Start || w.End > time.Duration(len(pcm))*time.Second/16000 {
				t.Errorf("spotted %q from %v to %v, outside the %v utterance", w.Text, w.Start, w.End, time.Duration(len(pcm))*time.Second/16000)
			}
		}
		t.Logf("final %q, spotted %q", rc.final.Text, words)
		if !slices.Contains(words, "wait") {
			t.Errorf("spotted %q, want wait", words)
		}
		for _, res := range rc.interims {
			if res.Spotted != nil {
				t.Errorf("interim %q has spotted words", res.Text)
			}
		}
	}
	// The decoder went back to the language model: the next utterance
	// on it is recognized in full.
	if rc := mustTranscribe(t, r, synth(t, "what is the weather today")); overlap("what is the weather today", rc.final.Text) < 0.8 {
		t.Errorf("after spotting, final %q", rc.final.Text)
	}

	if rc := mustTranscribe(t, rec, pcm); rc.final.Spotted != nil {
		t.Errorf("opened with Open: spotted %v", rc.final.Spotted)
	}
	short := newRecognizer(t, Config{Spot: spot, SpotMax: 100 * time.Millisecond})
	if rc := mustTranscribe(t, spotting{short}, pcm); rc.final.Spotted != nil {
		t.Errorf("over SpotMax: spotted %v", rc.final.Spotted)
	}
	none := newRecognizer(t, Config{})
	if rc := mustTranscribe(t, spotting{none}, pcm); rc.final.Spotted != nil {
		t.Errorf("without Spot: spotted %v", rc.final.Spotted)
	}
}

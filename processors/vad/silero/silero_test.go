package silero

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/processors/vad"
)

const fetchHint = "run scripts/fetch-models.sh to install the Silero model and ONNX Runtime"

// requireAssets reports whether missing test assets must fail the test
// instead of skipping it.
func requireAssets() bool { return os.Getenv("VOICED_REQUIRE_MODELS") == "1" }

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if requireAssets() {
		t.Fatalf("VOICED_REQUIRE_MODELS=1: "+format, args...)
	}
	t.Skipf(format, args...)
}

// defaultConfig returns the default Config with its paths resolved, skipping
// (or failing) the test when the files are absent.
func defaultConfig(t testing.TB) Config {
	t.Helper()
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, p := range []string{cfg.ModelPath, cfg.LibraryPath} {
		if _, err := os.Stat(p); err != nil {
			missing(t, "%s not available (%v); %s", p, err, fetchHint)
		}
	}
	return cfg
}

func newModel(t testing.TB) *Model {
	t.Helper()
	m, err := New(defaultConfig(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newAnalyzer(t testing.TB, m *Model, rate int) vad.Analyzer {
	t.Helper()
	a, err := m.NewAnalyzer(rate)
	if err != nil {
		t.Fatalf("NewAnalyzer(%d): %v", rate, err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// synth speaks text with flite's "slt" voice and returns 16 kHz PCM16.
func synth(t testing.TB, text string) []int16 {
	t.Helper()
	flite, err := exec.LookPath("flite")
	if err != nil {
		missing(t, "flite not installed; the speech tests synthesize their input with it")
	}
	out := filepath.Join(t.TempDir(), "speech.wav")
	if b, err := exec.Command(flite, "-voice", "slt", "-t", text, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("flite: %v: %s", err, b)
	}
	f, samples, err := audio.LoadWAV(out)
	if err != nil {
		t.Fatalf("flite output: %v", err)
	}
	if f.SampleRate != 16000 {
		t.Fatalf("flite wrote %d Hz, want 16000", f.SampleRate)
	}
	if len(samples) < 16000 {
		t.Fatalf("flite wrote only %d samples", len(samples))
	}
	return samples
}

const sentence = "The quick brown fox jumps over the lazy dog. Voice agents must listen while they speak."

// noise returns n samples of white noise of the given peak amplitude from a
// fixed seed.
func noise(n int, peak int16, seed uint64) []int16 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(r.IntN(2*int(peak)+1) - int(peak))
	}
	return s
}

// decimate halves the sample rate, averaging pairs as a crude low-pass.
func decimate(s []int16) []int16 {
	out := make([]int16, len(s)/2)
	for i := range out {
		out[i] = int16((int32(s[2*i]) + int32(s[2*i+1])) / 2)
	}
	return out
}

// run scores every whole chunk of pcm.
func run(t testing.TB, a vad.Analyzer, pcm []int16) []float32 {
	t.Helper()
	n := a.ChunkSamples()
	probs := make([]float32, 0, len(pcm)/n)
	for i := 0; i+n <= len(pcm); i += n {
		p, err := a.Speech(pcm[i : i+n])
		if err != nil {
			t.Fatalf("Speech chunk %d: %v", i/n, err)
		}
		if p < 0 || p > 1 || math.IsNaN(float64(p)) {
			t.Fatalf("chunk %d: probability %v out of range", i/n, p)
		}
		probs = append(probs, p)
	}
	return probs
}

// rmsDBFS is the level of s relative to full scale.
func rmsDBFS(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	rms := math.Sqrt(sum/float64(len(s))) / 32768
	return 20 * math.Log10(rms+1e-12)
}

// frac returns the fraction of probs (restricted to the chunks where keep
// is true) that satisfy ok, and how many chunks were considered.
func frac(probs []float32, keep func(i int) bool, ok func(p float32) bool) (float64, int) {
	n, good := 0, 0
	for i, p := range probs {
		if !keep(i) {
			continue
		}
		n++
		if ok(p) {
			good++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(good) / float64(n), n
}

func TestSpeechThenSilence(t *testing.T) {
	m := newModel(t)
	speech16 := synth(t, sentence)
	for _, tc := range []struct {
		rate   int
		speech []int16
	}{
		{16000, speech16},
		{8000, decimate(speech16)},
	} {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			a := newAnalyzer(t, m, tc.rate)
			n := a.ChunkSamples()
			if want := tc.rate * 32 / 1000; n != want {
				t.Fatalf("ChunkSamples = %d, want %d (32 ms)", n, want)
			}
			pcm := append(slices.Clone(tc.speech), make([]int16, tc.rate)...)
			probs := run(t, a, pcm)

			// Speech frames: chunks of the synthesized part that carry
			// voice-level energy. Quiet gaps between words are left out.
			loud := func(i int) bool {
				return (i+1)*n <= len(tc.speech) && rmsDBFS(pcm[i*n:(i+1)*n]) > -35
			}
			// Silence frames: chunks wholly inside the appended second.
			silent := func(i int) bool { return i*n >= len(tc.speech) }

			f, cnt := frac(probs, loud, func(p float32) bool { return p > 0.5 })
			if cnt < 50 || f < 0.9 {
				t.Errorf("speech: %.0f%% of %d loud chunks above 0.5, want >= 90%%", 100*f, cnt)
			}
			f, cnt = frac(probs, silent, func(p float32) bool { return p < 0.2 })
			if cnt < 25 || f < 0.9 {
				t.Errorf("silence: %.0f%% of %d chunks below 0.2, want >= 90%%", 100*f, cnt)
			}
		})
	}
}

func TestWhiteNoise(t *testing.T) {
	m := newModel(t)
	for _, rate := range []int{16000, 8000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			a := newAnalyzer(t, m, rate)
			pcm := noise(3*rate, 300, uint64(rate)) // about -45 dBFS
			probs := run(t, a, pcm)
			f, cnt := frac(probs, func(int) bool { return true }, func(p float32) bool { return p < 0.2 })
			if f < 0.9 {
				t.Errorf("%.0f%% of %d noise chunks below 0.2, want >= 90%%", 100*f, cnt)
			}
		})
	}
}

func TestResetRepeatable(t *testing.T) {
	m := newModel(t)
	speech := synth(t, sentence)
	pcm := append(slices.Clone(speech), make([]int16, 8000)...)

	a := newAnalyzer(t, m, 16000)
	first := run(t, a, pcm)
	a.Reset()
	if again := run(t, a, pcm); !slices.Equal(first, again) {
		t.Fatalf("after Reset the same input gave different probabilities:\n%v\n%v", first, again)
	}

	// Without Reset, state left by earlier speech changes the results;
	// with it, it does not.
	b := newAnalyzer(t, m, 16000)
	run(t, b, speech[:len(speech)/2])
	if dirty := run(t, b, pcm); slices.Equal(first, dirty) {
		t.Fatal("state carried from earlier speech had no effect; is the state fed back?")
	}
	run(t, b, speech[:len(speech)/2])
	b.Reset()
	if clean := run(t, b, pcm); !slices.Equal(first, clean) {
		t.Fatal("Reset after speech did not restore the initial state")
	}
}

// TestConcurrentAnalyzers runs several streams at once on one Model and
// checks each against the same stream scored alone: analyzers must not share
// state, and the shared session must be safe for concurrent Run.
func TestConcurrentAnalyzers(t *testing.T) {
	m := newModel(t)
	speech := synth(t, sentence)
	type stream struct {
		rate int
		pcm  []int16
	}
	rotate := func(s []int16, k int) []int16 { return append(slices.Clone(s[k:]), s[:k]...) }
	streams := []stream{
		{16000, speech},
		{16000, rotate(speech, len(speech)/3)},
		{16000, noise(len(speech), 2000, 7)},
		{8000, decimate(speech)},
		{8000, rotate(decimate(speech), len(speech)/5)},
		{16000, append(make([]int16, 16000), speech...)},
	}
	want := make([][]float32, len(streams))
	for i, s := range streams {
		want[i] = run(t, newAnalyzer(t, m, s.rate), s.pcm)
	}

	got := make([][]float32, len(streams))
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		a := newAnalyzer(t, m, s.rate)
		wg.Go(func() {
			n := a.ChunkSamples()
			for j := 0; j+n <= len(s.pcm); j += n {
				p, err := a.Speech(s.pcm[j : j+n])
				if err != nil {
					errs[i] = err
					return
				}
				got[i] = append(got[i], p)
			}
		})
	}
	wg.Wait()
	for i := range streams {
		if errs[i] != nil {
			t.Fatalf("stream %d: %v", i, errs[i])
		}
		if !slices.Equal(want[i], got[i]) {
			t.Errorf("stream %d: concurrent probabilities differ from sequential", i)
		}
	}
}

// osThreads returns the process's thread count.
func osThreads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("Threads line %q: %v", l, err)
			}
			return n
		}
	}
	t.Skip("no Threads line in /proc/self/status")
	return 0
}

// TestConcurrentInferencesHoldFewThreads scores 64 streams at once through
// a Model bounded to 2 inferences: a goroutine inside a cgo call holds an OS
// thread, which the Go runtime keeps for good, so without the bound the
// process would end with about one thread per stream (measured: 200 streams
// left 198 threads and 23 MiB more RSS).
func TestConcurrentInferencesHoldFewThreads(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.Concurrent = 2
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	speech := synth(t, sentence)
	before := osThreads(t)
	const streams = 64
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	start := make(chan struct{})
	for i := range streams {
		a, err := m.NewAnalyzer(16000)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		wg.Go(func() {
			<-start
			n := a.ChunkSamples()
			off := (i * n) % (len(speech) - 40*n)
			for j := range 40 {
				if _, err := a.Speech(speech[off+j*n : off+(j+1)*n]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The bound leaves room for the runtime's own threads (sysmon, a
	// spare M, the race detector's); 64 unbounded streams add ~60.
	if after := osThreads(t); after-before > 16 {
		t.Errorf("threads %d before, %d after scoring %d streams 2 at a time: the bound does not hold", before, after, streams)
	}
}

func TestAnalyzerErrors(t *testing.T) {
	m := newModel(t)
	for _, rate := range []int{0, -16000, 11025, 22050, 44100, 48000} {
		if _, err := m.NewAnalyzer(rate); !errors.Is(err, ErrSampleRate) {
			t.Errorf("NewAnalyzer(%d): err = %v, want ErrSampleRate", rate, err)
		}
	}

	pcm := noise(16000, 3000, 3)
	want := run(t, newAnalyzer(t, m, 16000), pcm)

	// A wrong-sized chunk is refused and leaves the state alone.
	a := newAnalyzer(t, m, 16000)
	n := a.ChunkSamples()
	var got []float32
	for i := 0; i+n <= len(pcm); i += n {
		if i == 5*n {
			for _, bad := range [][]int16{nil, pcm[i : i+n-1], pcm[i : i+n+1], pcm[i : i+n/2]} {
				if _, err := a.Speech(bad); !errors.Is(err, ErrChunkSize) {
					t.Fatalf("Speech(%d samples): err = %v, want ErrChunkSize", len(bad), err)
				}
			}
		}
		p, err := a.Speech(pcm[i : i+n])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if !slices.Equal(want, got) {
		t.Error("a refused chunk changed later probabilities")
	}

	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Speech(pcm[:n]); !errors.Is(err, ErrClosed) {
		t.Errorf("Speech after Close: err = %v, want ErrClosed", err)
	}
	a.Reset() // must not panic on a closed analyzer
}

func TestModelClose(t *testing.T) {
	m, err := New(defaultConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.NewAnalyzer(16000)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	chunk := noise(a.ChunkSamples(), 1000, 5)
	if _, err := a.Speech(chunk); err != nil {
		t.Fatalf("Speech: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Speech(chunk); !errors.Is(err, ErrClosed) {
		t.Errorf("Speech after Model.Close: err = %v, want ErrClosed", err)
	}
	if _, err := m.NewAnalyzer(16000); !errors.Is(err, ErrClosed) {
		t.Errorf("NewAnalyzer after Close: err = %v, want ErrClosed", err)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := New(Config{ModelPath: filepath.Join(dir, "absent.onnx"), LibraryPath: filepath.Join(dir, "absent.so")})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing model: err = %v, want ErrNotFound", err)
	}
	if _, err := New(Config{ModelPath: dir}); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("model path is a directory: err = %v, want a non-ErrNotFound error", err)
	}

	// Once the runtime is loaded, another library path is refused.
	cfg := defaultConfig(t)
	newModel(t)
	other := filepath.Join(dir, "libonnxruntime.so")
	if err := os.WriteFile(other, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{ModelPath: cfg.ModelPath, LibraryPath: other}); !errors.Is(err, ErrLibraryMismatch) {
		t.Errorf("second library: err = %v, want ErrLibraryMismatch", err)
	}
	// The same library by a relative path is accepted.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, cfg.LibraryPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{ModelPath: cfg.ModelPath, LibraryPath: rel})
	if err != nil {
		t.Fatalf("same library by relative path %s: %v", rel, err)
	}
	m.Close()

	// A file that is not an ONNX model is a runtime error.
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{ModelPath: bad, LibraryPath: cfg.LibraryPath}); !errors.Is(err, ErrRuntime) {
		t.Errorf("garbage model: err = %v, want ErrRuntime", err)
	}
}

func TestDefaults(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	for _, tc := range []struct {
		name               string
		cache, model, lib  string
		in                 Config
		wantModel, wantLib string
		wantThreads        int
	}{
		{
			name:      "zero",
			wantModel: filepath.Join(home, ".cache/voiced", ModelFile),
			wantLib:   filepath.Join(home, ".cache/voiced", LibraryFile),
		},
		{
			name:      "cache env",
			cache:     "/c",
			wantModel: "/c/" + ModelFile,
			wantLib:   "/c/" + LibraryFile,
		},
		{
			name:      "file env beats cache",
			cache:     "/c",
			model:     "/m/vad.onnx",
			lib:       "/l/ort.so",
			wantModel: "/m/vad.onnx",
			wantLib:   "/l/ort.so",
		},
		{
			name:        "config beats env",
			cache:       "/c",
			model:       "/m/vad.onnx",
			lib:         "/l/ort.so",
			in:          Config{ModelPath: "/x.onnx", LibraryPath: "/y.so", Threads: 3},
			wantModel:   "/x.onnx",
			wantLib:     "/y.so",
			wantThreads: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvCache, tc.cache)
			t.Setenv(EnvModel, tc.model)
			t.Setenv(EnvLibrary, tc.lib)
			got, err := tc.in.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantThreads == 0 {
				tc.wantThreads = 1
			}
			want := Config{ModelPath: tc.wantModel, LibraryPath: tc.wantLib, Threads: tc.wantThreads, Concurrent: runtime.GOMAXPROCS(0)}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func benchmarkSpeech(b *testing.B, rate int) {
	m := newModel(b)
	a := newAnalyzer(b, m, rate)
	// Two seconds of input, cycled, so the state keeps changing.
	pcm := noise(2*rate, 3000, 11)
	n := a.ChunkSamples()
	chunks := len(pcm) / n
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i % chunks
		if _, err := a.Speech(pcm[k*n : (k+1)*n]); err != nil {
			b.Fatal(err)
		}
	}
	// How many real-time streams one core could score at this speed.
	perChunk := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(32e6/perChunk, "streams/core")
}

// BenchmarkSpeech measures one 32 ms chunk on one analyzer.
func BenchmarkSpeech(b *testing.B) {
	b.Run("16000", func(b *testing.B) { benchmarkSpeech(b, 16000) })
	b.Run("8000", func(b *testing.B) { benchmarkSpeech(b, 8000) })
}

// BenchmarkSpeechParallel measures per-chunk throughput with one analyzer
// per goroutine sharing one Model.
func BenchmarkSpeechParallel(b *testing.B) {
	m := newModel(b)
	pcm := noise(32000, 3000, 13)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		a, err := m.NewAnalyzer(16000)
		if err != nil {
			b.Error(err)
			return
		}
		defer a.Close()
		n := a.ChunkSamples()
		for i := 0; pb.Next(); i++ {
			k := i % (len(pcm) / n)
			if _, err := a.Speech(pcm[k*n : (k+1)*n]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestContextCarried checks the input layout: each inference sees the last
// context samples of the previous chunk followed by the new chunk, and
// Reset zeroes the carried samples.
func TestContextCarried(t *testing.T) {
	m := newModel(t)
	for _, tc := range []struct{ rate, chunk, context int }{{16000, 512, 64}, {8000, 256, 32}} {
		va := newAnalyzer(t, m, tc.rate)
		a := va.(*Analyzer)
		if a.chunk != tc.chunk || a.context != tc.context || len(a.buf) != tc.chunk+tc.context {
			t.Fatalf("%d Hz: chunk %d context %d buf %d", tc.rate, a.chunk, a.context, len(a.buf))
		}
		for _, v := range a.buf[:tc.context] {
			if v != 0 {
				t.Fatalf("%d Hz: fresh analyzer has non-zero context", tc.rate)
			}
		}
		pcm := noise(2*tc.chunk, 8000, 17)
		for k := range 2 {
			chunk := pcm[k*tc.chunk : (k+1)*tc.chunk]
			if _, err := a.Speech(chunk); err != nil {
				t.Fatal(err)
			}
			for i, v := range a.buf[:tc.context] {
				if want := float32(chunk[tc.chunk-tc.context+i]) / 32768; v != want {
					t.Fatalf("%d Hz chunk %d: context[%d] = %v, want %v", tc.rate, k, i, v, want)
				}
			}
			if got, want := a.buf[len(a.buf)-1], float32(chunk[tc.chunk-1])/32768; got != want {
				t.Fatalf("%d Hz chunk %d: last input sample %v, want %v", tc.rate, k, got, want)
			}
		}
		a.Reset()
		for _, v := range a.buf {
			if v != 0 {
				t.Fatalf("%d Hz: Reset left input samples", tc.rate)
			}
		}
	}
}

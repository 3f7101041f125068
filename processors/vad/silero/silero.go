// Package silero is the in-process Silero VAD v5 provider for vad.Model. It
// runs the Silero v5 ONNX model through ONNX Runtime, loaded at run time from
// a shared library (github.com/yalue/onnxruntime_go), and returns the model's
// raw speech probability for every chunk.
//
// The model file and the runtime library are not embedded. Run
// scripts/fetch-models.sh to install them into DefaultCacheDir, or point
// Config (or the VOICED_VAD_MODEL and VOICED_ONNXRUNTIME_LIB environment
// variables) at other copies.
//
// Model I/O (Silero v5): inputs "input" float32 [1, context+chunk], "state"
// float32 [2, 1, 128] and "sr" int64; outputs "output" float32 [1, 1] (the
// probability) and "stateN" float32 [2, 1, 128]. At 16 kHz a chunk is 512
// samples (32 ms) preceded by the last 64 samples of the previous input; at
// 8 kHz it is 256 samples preceded by 32.
package silero

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/voiced-dev/voiced/processors/vad"
)

// File names inside the cache directory, as installed by scripts/fetch-models.sh.
const (
	ModelFile   = "silero_vad_v5.onnx"
	LibraryFile = "libonnxruntime.so"
)

// Environment variables that override the default paths.
const (
	EnvCache   = "VOICED_CACHE"
	EnvModel   = "VOICED_VAD_MODEL"
	EnvLibrary = "VOICED_ONNXRUNTIME_LIB"
)

var (
	// ErrSampleRate is returned by NewAnalyzer for rates other than 8000 and 16000.
	ErrSampleRate = errors.New("silero: unsupported sample rate (want 8000 or 16000)")
	// ErrChunkSize is returned by Speech when len(chunk) != ChunkSamples().
	ErrChunkSize = errors.New("silero: wrong chunk size")
	// ErrClosed is returned after the Analyzer or its Model has been closed.
	ErrClosed = errors.New("silero: closed")
	// ErrNotFound is returned by New when the model or the library file is
	// missing; the wrapping error names the file.
	ErrNotFound = errors.New("silero: file not found (run scripts/fetch-models.sh)")
	// ErrLibraryMismatch is returned by New when ONNX Runtime was already
	// loaded in this process from a different library path.
	ErrLibraryMismatch = errors.New("silero: ONNX Runtime already loaded from another library")
	// ErrRuntime wraps failures reported by ONNX Runtime.
	ErrRuntime = errors.New("silero: onnxruntime")
)

// Tensor names of the Silero v5 graph.
var (
	inputNames  = []string{"input", "state", "sr"}
	outputNames = []string{"output", "stateN"}
)

// Config selects the model and runtime files. The zero value uses the
// defaults described on each field.
type Config struct {
	// ModelPath is the Silero v5 ONNX file. Default: $VOICED_VAD_MODEL, else
	// DefaultCacheDir()/silero_vad_v5.onnx.
	ModelPath string `toml:"model"`
	// LibraryPath is the ONNX Runtime shared library (API version 17 or
	// later). Default: $VOICED_ONNXRUNTIME_LIB, else
	// DefaultCacheDir()/libonnxruntime.so. The runtime is loaded once per
	// process; every Model in a process must use the same library.
	LibraryPath string `toml:"onnxruntime"`
	// Threads is ONNX Runtime's intra-op thread count per inference.
	// Default 1, which suits a model this small: concurrency comes from many
	// analyzers running at once, not from splitting one inference.
	Threads int `toml:"threads"`
	// Concurrent bounds the inferences running at once across every
	// analyzer of the Model (default GOMAXPROCS at New). More would not run
	// sooner, and each goroutine inside a cgo call holds an OS thread of
	// its own: without the bound, 200 sessions scoring at the same moment
	// leave the process about 200 threads it never gives back (≈ 120 KiB of
	// RSS each, measured), where waiting on the bound holds none.
	Concurrent int `toml:"concurrent"`
}

// DefaultCacheDir returns the directory scripts/fetch-models.sh installs
// into: $VOICED_CACHE if set, else $HOME/.cache/voiced.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("silero: cache dir: %w", err)
	}
	return filepath.Join(home, ".cache", "voiced"), nil
}

// withDefaults fills the empty fields of c.
func (c Config) withDefaults() (Config, error) {
	if c.ModelPath == "" {
		c.ModelPath = os.Getenv(EnvModel)
	}
	if c.LibraryPath == "" {
		c.LibraryPath = os.Getenv(EnvLibrary)
	}
	if c.ModelPath == "" || c.LibraryPath == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return c, err
		}
		if c.ModelPath == "" {
			c.ModelPath = filepath.Join(dir, ModelFile)
		}
		if c.LibraryPath == "" {
			c.LibraryPath = filepath.Join(dir, LibraryFile)
		}
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
	if c.Concurrent <= 0 {
		c.Concurrent = runtime.GOMAXPROCS(0)
	}
	return c, nil
}

// ortEnv holds the process-wide ONNX Runtime environment. The environment
// is initialized at most once per process, under mu (like a sync.Once, except
// that a failed attempt, say a wrong path, may be retried), and is never
// destroyed: sessions of other Models may still use it.
var ortEnv struct {
	mu      sync.Mutex
	loaded  bool
	libPath string
}

func loadRuntime(libPath string) error {
	abs, err := filepath.Abs(libPath)
	if err != nil {
		return fmt.Errorf("silero: library path: %w", err)
	}
	ortEnv.mu.Lock()
	defer ortEnv.mu.Unlock()
	if ortEnv.loaded {
		if ortEnv.libPath != abs {
			return fmt.Errorf("%w: loaded %s, asked for %s", ErrLibraryMismatch, ortEnv.libPath, abs)
		}
		return nil
	}
	if ort.IsInitialized() {
		// Another package of this process loaded the runtime through
		// onnxruntime_go; its library path is unknown, so use it as is.
		ortEnv.loaded = true
		ortEnv.libPath = abs
		return nil
	}
	if err := checkFile(abs, "ONNX Runtime library"); err != nil {
		return err
	}
	ort.SetSharedLibraryPath(abs)
	if err := ort.InitializeEnvironment(); err != nil {
		return fmt.Errorf("%w: load %s: %w", ErrRuntime, abs, err)
	}
	ortEnv.loaded = true
	ortEnv.libPath = abs
	return nil
}

func checkFile(path, what string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s %s", ErrNotFound, what, path)
	}
	if err != nil {
		return fmt.Errorf("silero: %s: %w", what, err)
	}
	if st.IsDir() {
		return fmt.Errorf("silero: %s %s is a directory", what, path)
	}
	return nil
}

// Model is a loaded Silero v5 network: one ONNX Runtime session shared by
// all of its analyzers. It is safe for concurrent use; ONNX Runtime runs
// concurrent inferences on one session.
type Model struct {
	// mu is held for reading during each inference and for writing by
	// Close, so Close waits for inferences in flight.
	mu      sync.RWMutex
	session *ort.DynamicAdvancedSession // nil after Close
	// slots bounds the inferences in flight (Config.Concurrent).
	slots chan struct{}
}

var _ vad.Model = (*Model)(nil)

// New loads ONNX Runtime (once per process) and the model. It fails with
// ErrNotFound if a file is missing and ErrLibraryMismatch if the runtime was
// already loaded from a different path.
func New(cfg Config) (*Model, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkFile(cfg.ModelPath, "Silero VAD model"); err != nil {
		return nil, err
	}
	if err := loadRuntime(cfg.LibraryPath); err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: session options: %w", ErrRuntime, err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(cfg.Threads); err != nil {
		return nil, fmt.Errorf("%w: intra-op threads: %w", ErrRuntime, err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("%w: inter-op threads: %w", ErrRuntime, err)
	}
	s, err := ort.NewDynamicAdvancedSession(cfg.ModelPath, inputNames, outputNames, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: load model %s: %w", ErrRuntime, cfg.ModelPath, err)
	}
	return &Model{session: s, slots: make(chan struct{}, cfg.Concurrent)}, nil
}

// NewAnalyzer returns an analyzer with fresh state for mono PCM16 at
// sampleRate, which must be 16000 or 8000 (else ErrSampleRate). The
// analyzer must be closed to free its tensors.
func (m *Model) NewAnalyzer(sampleRate int) (vad.Analyzer, error) {
	var chunk, context int
	switch sampleRate {
	case 16000:
		chunk, context = 512, 64
	case 8000:
		chunk, context = 256, 32
	default:
		return nil, fmt.Errorf("%w: %d Hz", ErrSampleRate, sampleRate)
	}
	m.mu.RLock()
	closed := m.session == nil
	m.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	a := &Analyzer{model: m, chunk: chunk, context: context}
	if err := a.alloc(int64(sampleRate)); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close releases the ONNX Runtime session after waiting for inferences in
// flight. Analyzers of a closed Model return ErrClosed from Speech; they
// should still be closed. The process-wide runtime stays loaded. Close is
// idempotent.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.session == nil {
		return nil
	}
	err := m.session.Destroy()
	m.session = nil
	if err != nil {
		return fmt.Errorf("%w: destroy session: %w", ErrRuntime, err)
	}
	return nil
}

// run performs one inference. It returns ErrClosed once Close has begun.
func (m *Model) run(inputs, outputs []ort.ArbitraryTensor) error {
	m.slots <- struct{}{}
	defer func() { <-m.slots }()
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.session == nil {
		return ErrClosed
	}
	if err := m.session.Run(inputs, outputs); err != nil {
		return fmt.Errorf("%w: run: %w", ErrRuntime, err)
	}
	return nil
}

// Analyzer scores the chunks of one audio stream. It carries the model's
// recurrent state and the last context samples of the previous chunk from
// one Speech call to the next. It is not safe for concurrent use; use one
// analyzer per stream.
//
// All tensors are allocated by NewAnalyzer and reused: the input tensor's
// buffer holds [context | chunk], and the two state tensors alternate as
// input and output so the new state never overwrites the one being read.
type Analyzer struct {
	model   *Model
	chunk   int
	context int

	input   *ort.Tensor[float32] // [1, context+chunk]
	states  [2]*ort.Tensor[float32]
	sr      *ort.Tensor[int64]
	prob    *ort.Tensor[float32] // [1, 1]
	inputs  [2][]ort.ArbitraryTensor
	outputs [2][]ort.ArbitraryTensor
	cur     int // index of the state tensor that is the current input state
	buf     []float32
	closed  bool
}

func (a *Analyzer) alloc(sampleRate int64) error {
	var err error
	a.buf = make([]float32, a.context+a.chunk)
	if a.input, err = ort.NewTensor(ort.NewShape(1, int64(a.context+a.chunk)), a.buf); err != nil {
		return fmt.Errorf("%w: input tensor: %w", ErrRuntime, err)
	}
	for i := range a.states {
		if a.states[i], err = ort.NewEmptyTensor[float32](ort.NewShape(2, 1, 128)); err != nil {
			return fmt.Errorf("%w: state tensor: %w", ErrRuntime, err)
		}
	}
	// "sr" is a scalar in the graph; onnxruntime_go cannot build rank-0
	// tensors, and ONNX Runtime accepts a one-element tensor in its place.
	if a.sr, err = ort.NewTensor(ort.NewShape(1), []int64{sampleRate}); err != nil {
		return fmt.Errorf("%w: sr tensor: %w", ErrRuntime, err)
	}
	if a.prob, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1)); err != nil {
		return fmt.Errorf("%w: output tensor: %w", ErrRuntime, err)
	}
	for i := range 2 {
		a.inputs[i] = []ort.ArbitraryTensor{a.input, a.states[i], a.sr}
		a.outputs[i] = []ort.ArbitraryTensor{a.prob, a.states[1-i]}
	}
	return nil
}

// ChunkSamples returns 512 at 16 kHz and 256 at 8 kHz (32 ms).
func (a *Analyzer) ChunkSamples() int { return a.chunk }

// Speech returns the probability (0..1) that chunk contains speech and
// advances the analyzer's state. len(chunk) must equal ChunkSamples (else
// ErrChunkSize). chunk is read, not retained. On error the state is left as
// it was before the call.
func (a *Analyzer) Speech(chunk []int16) (float32, error) {
	if a.closed {
		return 0, ErrClosed
	}
	if len(chunk) != a.chunk {
		return 0, fmt.Errorf("%w: got %d samples, want %d", ErrChunkSize, len(chunk), a.chunk)
	}
	in := a.buf[a.context:]
	for i, s := range chunk {
		in[i] = float32(s) * (1.0 / 32768)
	}
	if err := a.model.run(a.inputs[a.cur], a.outputs[a.cur]); err != nil {
		return 0, err
	}
	a.cur = 1 - a.cur
	copy(a.buf[:a.context], a.buf[len(a.buf)-a.context:])
	return a.prob.GetData()[0], nil
}

// Reset clears the recurrent state and the carried context, so the next
// Speech call behaves like the first call of a new analyzer.
func (a *Analyzer) Reset() {
	if a.closed {
		return
	}
	clear(a.buf)
	for _, s := range a.states {
		s.ZeroContents()
	}
	a.cur = 0
}

// Close frees the analyzer's tensors. It does not close the Model.
// Idempotent; Speech returns ErrClosed afterwards.
func (a *Analyzer) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	for _, t := range []*ort.Tensor[float32]{a.input, a.states[0], a.states[1], a.prob} {
		if t != nil {
			t.Destroy()
		}
	}
	if a.sr != nil {
		a.sr.Destroy()
	}
	return nil
}

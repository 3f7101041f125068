package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/voiced-dev/voiced/agents/llm/fake"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	sttfake "github.com/voiced-dev/voiced/processors/stt/fake"
	ttsfake "github.com/voiced-dev/voiced/processors/tts/fake"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/session"
)

// DensityConfig bounds the density run.
type DensityConfig struct {
	// Levels are the session counts tried, in order (default 10, 25, 50,
	// 75, 100, 150, 200, 300, 400).
	Levels []int
	// Duration of each level (default 12 s), of which Warmup (default 2 s)
	// is not measured.
	Duration, Warmup time.Duration
	// Limit is the lateness p99 that ends the run (default 20 ms).
	Limit time.Duration
	// Budget bounds the whole run (default 3 min): no level starts after it.
	Budget time.Duration
	// Speech is the user's utterance (16 kHz mono); each session loops it
	// followed by Silence (default 2.5 s), from its own offset.
	Speech  []int16
	Silence time.Duration
	// VAD is the speech model (the real Silero model).
	VAD    vad.Model
	Logger *slog.Logger
	// SessionLogger is given to the sessions (default: discard).
	SessionLogger *slog.Logger
}

// DensityLevel is the measurement of K concurrent sessions.
type DensityLevel struct {
	Sessions int `json:"sessions"`
	// InputLate is how late each 32 ms VAD chunk was scored after its
	// audio was due (the end of the chunk in real time); OutputLate how late
	// each 20 ms of the bot's audio was written after the client needed
	// it (0 while the playout runs ahead).
	InputLate  Dist `json:"input_late"`
	OutputLate Dist `json:"output_late"`
	// CPU is the process's CPU time over the measured window per second
	// of wall time (1 = one core busy).
	CPU            float64 `json:"cpu"`
	RSSBytes       int64   `json:"rss_bytes"`        // process RSS during the level
	RSSPerSession  int64   `json:"rss_per_session"`  // (RSS − RSS before the level) / K
	HeapPerSession int64   `json:"heap_per_session"` // (Go heap − heap before) / K
	Goroutines     int     `json:"goroutines"`
	Answers        int     `json:"answers"` // bot answers started
	Errors         int     `json:"errors"`  // frame.Error frames in the measured window
	Load1          float64 `json:"load1"`   // load average at the end
	FirstError     string  `json:"first_error,omitempty"`
	// Retried marks a failed attempt that was run again; Retry the second
	// attempt.
	Retried bool `json:"retried,omitempty"`
	// Startup is how long the K sessions took to start (their VAD
	// analyzers created); the measured window begins Warmup after it.
	Startup time.Duration `json:"startup"`
	Retry   bool          `json:"retry,omitempty"`
	Pass    bool          `json:"pass"`
}

// P99 is the worse of the input and output lateness p99.
func (l DensityLevel) P99() time.Duration { return max(l.InputLate.P99, l.OutputLate.P99) }

// RunDensity raises the number of concurrent real-time sessions through the
// levels until lateness p99 passes the limit (twice: a failing level is run
// again once), the levels run out, or the budget is spent.
func RunDensity(ctx context.Context, cfg DensityConfig) ([]DensityLevel, error) {
	if len(cfg.Levels) == 0 {
		cfg.Levels = []int{10, 25, 50, 75, 100, 150, 200, 300, 400}
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 12 * time.Second
	}
	if cfg.Warmup <= 0 || cfg.Warmup >= cfg.Duration {
		cfg.Warmup = min(2*time.Second, cfg.Duration/4)
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 20 * time.Millisecond
	}
	if cfg.Budget <= 0 {
		cfg.Budget = 3 * time.Minute
	}
	if cfg.Silence <= 0 {
		cfg.Silence = 2500 * time.Millisecond
	}
	if cfg.VAD == nil || len(cfg.Speech) == 0 {
		return nil, errors.New("bench: density needs a VAD model and speech")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionLogger == nil {
		cfg.SessionLogger = slog.New(slog.DiscardHandler)
	}
	// The looped pattern, cut into 20 ms frames shared by every session.
	pattern := append(append([]int16(nil), cfg.Speech...), make([]int16, frame.Mono16k.Samples(cfg.Silence))...)
	var frames [][]int16
	for i := 0; i+320 <= len(pattern); i += 320 {
		frames = append(frames, pattern[i:i+320])
	}
	deadline := time.Now().Add(cfg.Budget)
	var out []DensityLevel
	for _, k := range cfg.Levels {
		if time.Now().Add(cfg.Duration).After(deadline) {
			cfg.Logger.Info("density: budget spent", "next", k)
			break
		}
		lv, err := runLevel(ctx, cfg, k, frames)
		if err != nil {
			return out, err
		}
		lv.Pass = lv.P99() <= cfg.Limit
		if !lv.Pass && time.Now().Add(cfg.Duration).Before(deadline) {
			// On a shared machine one stall of the whole process (another
			// program's build) decides a p99: a failing level gets a
			// second try, and both are reported.
			cfg.Logger.Info("density level failed, retrying once", "sessions", k, "input_p99", lv.InputLate.P99, "output_p99", lv.OutputLate.P99)
			lv.Retried = true
			out = append(out, lv)
			if lv, err = runLevel(ctx, cfg, k, frames); err != nil {
				return out, err
			}
			lv.Pass = lv.P99() <= cfg.Limit
			lv.Retry = true
		}
		cfg.Logger.Info("density level", "sessions", k, "input_p99", lv.InputLate.P99, "output_p99", lv.OutputLate.P99,
			"cpu", lv.CPU, "rss_mb", lv.RSSBytes>>20, "answers", lv.Answers, "errors", lv.Errors, "first_error", lv.FirstError)
		out = append(out, lv)
		if !lv.Pass {
			break
		}
	}
	return out, nil
}

// lateRec keeps one session's lateness samples; each slice has one writer
// and is read after the session ends.
type lateRec struct {
	from, until atomic.Int64 // measured window, Unix nanoseconds (0: not yet)
	in, out     []time.Duration
}

func (r *lateRec) measuring(now time.Time) bool {
	from, n := r.from.Load(), now.UnixNano()
	return from != 0 && n > from && n < r.until.Load()
}

func (r *lateRec) over(now time.Time) bool {
	u := r.until.Load()
	return u != 0 && now.UnixNano() >= u
}

// timedModel wraps the VAD model: each analyzer records how late every chunk
// is scored relative to when the input frame completing it was due (frame i
// of a session is due at start+(i+1)*20 ms, when all its audio has
// arrived).
type timedModel struct {
	m       vad.Model
	start   time.Time // when sample 0 was due
	rec     *lateRec
	started func() // called once the analyzer exists, if set
}

func (t timedModel) NewAnalyzer(rate int) (vad.Analyzer, error) {
	a, err := t.m.NewAnalyzer(rate)
	if err != nil {
		return nil, err
	}
	if t.started != nil {
		t.started()
	}
	return &timedAnalyzer{Analyzer: a, t: t, rate: rate}, nil
}

type timedAnalyzer struct {
	vad.Analyzer
	t       timedModel
	rate    int
	samples int64
}

func (a *timedAnalyzer) Speech(chunk []int16) (float32, error) {
	p, err := a.Analyzer.Speech(chunk)
	a.samples += int64(len(chunk))
	now := time.Now()
	if a.t.rec.measuring(now) {
		// The chunk could be scored once the 20 ms frame holding its last
		// sample had arrived.
		per := int64(a.rate) * int64(frameDur) / int64(time.Second)
		due := a.t.start.Add(time.Duration((a.samples+per-1)/per) * frameDur)
		a.t.rec.in = append(a.t.rec.in, max(0, now.Sub(due)))
	}
	return p, err
}

// pacedWriter measures output pacing: within a speaking episode the client
// plays 20 ms per 20 ms from the first chunk, and a chunk written after its
// play time is late (the client ran dry and restarts its clock from there).
type pacedWriter struct {
	rec     *lateRec
	mu      sync.Mutex
	fresh   bool // next write starts an episode
	base    time.Time
	written time.Duration
}

func (w *pacedWriter) episode() {
	w.mu.Lock()
	w.fresh = true
	w.mu.Unlock()
}

func (w *pacedWriter) WriteAudio(pcm []int16) error {
	now := time.Now()
	d := time.Duration(len(pcm)) * time.Second / 16000
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fresh || w.base.IsZero() {
		w.fresh, w.base, w.written = false, now, 0
	}
	due := w.base.Add(w.written)
	late := max(0, now.Sub(due))
	if late > 0 {
		w.base = now.Add(-w.written) // the client restarts from here
	}
	w.written += d
	if w.rec.measuring(now) {
		w.rec.out = append(w.rec.out, late)
	}
	return nil
}

type densityProbe struct {
	w       *pacedWriter
	mu      sync.Mutex
	answers int
	errs    int
	first   string
}

func (p *densityProbe) OnHop(h pipeline.Hop) {
	if !h.First {
		return
	}
	switch f := h.Frame.(type) {
	case *frame.BotStartedSpeaking:
		p.w.episode()
		p.mu.Lock()
		p.answers++
		p.mu.Unlock()
	case *frame.Error:
		if !p.w.rec.measuring(h.At) {
			return // teardown: streams cut off by the session's end
		}
		p.mu.Lock()
		if p.errs == 0 && f.Err != nil {
			p.first = f.Err.Error()
		}
		p.errs++
		p.mu.Unlock()
	}
}

func runLevel(ctx context.Context, cfg DensityConfig, k int, frames [][]int16) (DensityLevel, error) {
	runtime.GC()
	rss0, heap0 := rss(), heapBytes()
	lv := DensityLevel{Sessions: k}
	prof := Cloud("density", 0, 0)
	model := fake.New(fake.Config{Reply: Reply, FirstToken: prof.LLMFirst, TokensPerSecond: prof.TokensPerSecond})
	syn := ttsfake.New(ttsfake.Config{FirstAudio: prof.TTSFirst, RTF: prof.TTSRTF})
	recog := sttfake.New(sttfake.Config{Transcript: Transcript, Final: prof.STTFinal})

	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Duration+5*time.Second)
	defer cancel()
	begin := time.Now()
	// The measured window starts Warmup after the last session started.
	var nstarted atomic.Int32
	allStarted := make(chan struct{})
	started := func() {
		if nstarted.Add(1) == int32(k) {
			close(allStarted)
		}
	}
	recs := make([]*lateRec, k)
	probes := make([]*densityProbe, k)
	errc := make(chan error, k)
	var wg sync.WaitGroup
	for i := range k {
		rec := &lateRec{}
		w := &pacedWriter{rec: rec}
		probe := &densityProbe{w: w}
		recs[i], probes[i] = rec, probe
		// Sessions start 20 ms/k apart and at different places in the
		// pattern, like unrelated callers.
		start := begin.Add(time.Duration(i) * frameDur / time.Duration(k))
		offset := (i * 7919) % len(frames)
		conn, err := newConn(fmt.Sprintf("density-%d-%d", k, i), start, w, probe, func(ctx context.Context, f *feeder) error {
			for j := offset; ; j++ {
				if rec.over(time.Now()) {
					return io.EOF
				}
				if _, err := f.push(ctx, frames[j%len(frames)]); err != nil {
					return err
				}
			}
		})
		if err != nil {
			return lv, err
		}
		b := &session.Builder{VAD: timedModel{m: cfg.VAD, start: start, rec: rec, started: started}, STT: recog, TTS: syn, Model: model, Logger: cfg.SessionLogger}
		wg.Go(func() {
			if err := b.Run(ctx, conn); err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
				errc <- err
			}
		})
	}
	select {
	case <-allStarted:
	case <-time.After(cfg.Duration):
		cfg.Logger.Warn("density: sessions slow to start", "sessions", k, "started", nstarted.Load())
	case <-ctx.Done():
	}
	lv.Startup = time.Since(begin)
	from := time.Now().Add(cfg.Warmup)
	until := from.Add(cfg.Duration - cfg.Warmup)
	for _, r := range recs {
		r.until.Store(until.UnixNano())
		r.from.Store(from.UnixNano())
	}
	// Sample CPU, memory and goroutines over the measured window.
	time.Sleep(time.Until(from))
	cpu0 := cpuTime()
	time.Sleep(time.Until(until.Add(-200 * time.Millisecond)))
	lv.CPU = float64(cpuTime()-cpu0) / float64(time.Since(from))
	lv.RSSBytes = rss()
	lv.RSSPerSession = (lv.RSSBytes - rss0) / int64(k)
	lv.HeapPerSession = int64(heapBytes()-heap0) / int64(k)
	lv.Goroutines = runtime.NumGoroutine()
	lv.Load1 = loadAvg()
	wg.Wait()
	close(errc)
	var in, out []time.Duration
	for i := range k {
		in = append(in, recs[i].in...)
		out = append(out, recs[i].out...)
		probes[i].mu.Lock()
		lv.Answers += probes[i].answers
		lv.Errors += probes[i].errs
		if lv.FirstError == "" {
			lv.FirstError = probes[i].first
		}
		probes[i].mu.Unlock()
	}
	lv.InputLate, lv.OutputLate = Summarize(in), Summarize(out)
	if err := <-errc; err != nil {
		return lv, fmt.Errorf("bench: density %d sessions: %w", k, err)
	}
	return lv, nil
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is the process's resident set size from /proc/self/statm (0 where
// there is none).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func heapBytes() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// loadAvg is the 1-minute load average (0 where unknown).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

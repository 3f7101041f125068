package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/processors/tts/flite"
	"github.com/voiced-dev/voiced/processors/vad/silero"
)

// Usage is the command line of Command.
const Usage = `usage: voiced bench [--quick] [--out DIR] [--micro FILE] [--e2e FILE] [--levels N,N,...] [--no-density]
  Measures the pipeline's per-frame overhead, turn latency with fake
  providers (instant and cloud-like), and session density with the real
  Silero VAD, then writes DIR/README.md, DIR/*.svg and DIR/results.json.
  --micro and --e2e add go test -bench output and the e2e tests' JSON.
` + SoakUsage + "\n" + SIPUsage

// Command runs the harness: it is `voiced bench`.
// Progress goes to stderr; the report's path to stdout.
func Command(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "soak" {
		return SoakCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "soak-clients" {
		return SoakClientsCommand(os.Stdin, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "sip" {
		return SIPCommand(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, Usage) }
	quick := fs.Bool("quick", false, "short run (about a minute)")
	out := fs.String("out", "bench/results", "output directory")
	microPath := fs.String("micro", "", "go test -bench output to include")
	e2ePath := fs.String("e2e", "", "e2e results JSON to include (VOICED_E2E_RESULTS)")
	levelsFlag := fs.String("levels", "", "density session counts, comma-separated")
	noDensity := fs.Bool("no-density", false, "skip the density run (needs the Silero model)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("bench: unexpected arguments %q\n%s", fs.Args(), Usage)
	}
	var levels []int
	if *levelsFlag != "" {
		var err error
		if levels, err = parseCounts(*levelsFlag); err != nil {
			return fmt.Errorf("bench: --levels: %w", err)
		}
	}
	var micro []byte
	var e2e *E2E
	if *microPath != "" {
		b, err := os.ReadFile(*microPath)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		micro = b
	}
	if *e2ePath != "" {
		b, err := os.ReadFile(*e2ePath)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		e2e = new(E2E)
		if err := json.Unmarshal(b, e2e); err != nil {
			return fmt.Errorf("bench: %s: %w", *e2ePath, err)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Sessions log per turn at Info; only their warnings are of interest.
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	r := &Results{Quick: *quick, Limit: 20 * time.Millisecond}
	r.machine()

	// a. Per-frame overhead.
	frames := 200000
	if *quick {
		frames = 50000
	}
	for _, impl := range []func(n, frames, inFlight int) FrameResult{MeasurePipeline, MeasureChannels} {
		for _, n := range []int{0, 1, 5, 10} {
			f := impl(n, frames, 64)
			log.Info("frames", "impl", f.Impl, "stages", n, "ns_per_frame", int(f.NsPerFrame), "allocs", f.AllocsPerFrame,
				"idle_p50", f.IdleDist.P50, "idle_p99", f.IdleDist.P99)
			r.Frames = append(r.Frames, f)
		}
	}

	// b. Turn latency.
	turns, cloud := 20, 10
	if *quick {
		turns, cloud = 5, 4
	}
	for _, prof := range []Profile{Instant(turns), Cloud("cloud", 0, cloud), Cloud("cloud-fast-stop", 200*time.Millisecond, cloud), CloudProtocol("cloud-protocol", cloud)} {
		log.Info("turns", "profile", prof.Name, "turns", prof.Turns)
		run, err := RunTurns(ctx, prof, quiet.With("profile", prof.Name))
		if err != nil {
			return err
		}
		var over []time.Duration
		for _, t := range run.Turns {
			over = append(over, t.Overhead)
		}
		d := Summarize(over)
		log.Info("turns done", "profile", prof.Name, "turns", len(run.Turns), "missed", run.Missed, "overhead_p50", d.P50, "overhead_p99", d.P99)
		r.Turns = append(r.Turns, run)
	}

	// c. Density.
	if *noDensity {
		r.DensityErr = "skipped (--no-density)"
	} else if err := density(ctx, r, levels, *quick, log, quiet); err != nil {
		if ctx.Err() != nil {
			return err
		}
		r.DensityErr = err.Error()
		log.Error("density", "err", err)
	}

	r.LoadAfter = loadLine()
	if err := WriteReport(*out, r, micro, e2e); err != nil {
		return fmt.Errorf("bench: report: %w", err)
	}
	fmt.Fprintln(stdout, *out+"/README.md")
	return nil
}

func density(ctx context.Context, r *Results, levels []int, quick bool, log, quiet *slog.Logger) error {
	m, err := silero.New(silero.Config{})
	if err != nil {
		return fmt.Errorf("silero VAD (run make models): %w", err)
	}
	defer m.Close()
	speech, err := utterance(ctx)
	if err != nil {
		return err
	}
	cfg := DensityConfig{Levels: levels, Speech: speech, VAD: m, Logger: log, SessionLogger: quiet, Limit: r.Limit}
	if quick {
		cfg.Duration, cfg.Warmup, cfg.Budget = 6*time.Second, 1500*time.Millisecond, time.Minute
		if len(cfg.Levels) == 0 {
			cfg.Levels = []int{10, 50, 100, 200, 300}
		}
	}
	r.Density, err = RunDensity(ctx, cfg)
	return err
}

// utterance is the user's question the density and soak runs speak:
// flite's, 16 kHz mono.
func utterance(ctx context.Context) ([]int16, error) {
	syn, err := flite.New(flite.Config{})
	if err != nil {
		return nil, fmt.Errorf("flite: %w", err)
	}
	if f := syn.Format(); f.SampleRate != 16000 || f.Channels != 1 {
		return nil, fmt.Errorf("flite speaks %+v, want 16 kHz mono", f)
	}
	var speech []int16
	if err := syn.Synthesize(ctx, "Hello, what is the weather like today in Paris?", "", func(pcm []int16) error {
		speech = append(speech, pcm...)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("flite: %w", err)
	}
	return speech, nil
}

// parseCounts reads a comma-separated list of positive counts ("25,50,100").
func parseCounts(list string) ([]int, error) {
	var counts []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad count %q", s)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

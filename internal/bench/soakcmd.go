package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"
)

// SoakUsage is the command line of SoakCommand.
const SoakUsage = `usage: voiced bench soak [--sessions N] [--duration D] [--turns N] [--out DIR] [--note TEXT] [--client-nice N] [--trace-dir DIR]
  Serves voiced on 127.0.0.1 with the real Silero VAD and fast fake
  STT, model and TTS, and keeps N well-behaved WebSocket sessions talking
  (each hangs up after a few turns and is replaced) for D, beside clients
  that misbehave; the clients run in a second process (voiced bench
  soak-clients) at nice N (default 10, standing in for callers on other
  machines). Then it checks goroutines and RSS against their baseline,
  every session's input lateness p99, that every turn was answered and
  that every bad client was cut off as documented. Writes DIR/soak.md and
  DIR/soak.json; exits non-zero when a criterion fails.`

// SoakCommand runs the soak: it is `voiced bench soak`.
func SoakCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, SoakUsage) }
	sessions := fs.Int("sessions", 200, "concurrent well-behaved sessions")
	duration := fs.Duration("duration", 10*time.Minute, "how long the sessions churn")
	turns := fs.Int("turns", 3, "most turns per session")
	out := fs.String("out", "bench/results", "output directory")
	note := fs.String("note", "", "a note for the top of the report")
	traceDir := fs.String("trace-dir", "", "keep a flight recorder of the server's execution trace and write it here when frames run late")
	nice := fs.Int("client-nice", 10, "the client process's nice value (0: level with the server)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("bench soak: unexpected arguments %q\n%s", fs.Args(), SoakUsage)
	}
	if *sessions <= 0 || *duration <= 0 || *turns <= 0 {
		return fmt.Errorf("bench soak: --sessions, --duration and --turns must be positive\n%s", SoakUsage)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	speech, err := utterance(ctx)
	if err != nil {
		return fmt.Errorf("bench soak: %w", err)
	}
	log.Info("soak", "sessions", *sessions, "duration", *duration)
	r, err := RunSoak(ctx, SoakConfig{Sessions: *sessions, Duration: *duration, Turns: *turns, Speech: speech,
		TraceDir: *traceDir, ClientNice: *nice, ClientLog: stderr, Logger: log, ServerLogger: log.With("from", "server")})
	if err != nil {
		return err
	}
	for _, c := range r.Criteria() {
		log.Info("soak criterion", "name", c.Name, "want", c.Want, "got", c.Got, "pass", c.Pass)
	}
	if err := WriteSoakReport(*out, r, *note); err != nil {
		return fmt.Errorf("bench soak: report: %w", err)
	}
	fmt.Fprintln(stdout, *out+"/soak.md")
	if !r.Pass() {
		return fmt.Errorf("bench soak: failed (see %s/soak.md)", *out)
	}
	return nil
}

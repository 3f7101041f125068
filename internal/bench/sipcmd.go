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

// SIPUsage is the command line of SIPCommand.
const SIPUsage = `usage: voiced bench sip [--levels N,N,...] [--rate R] [--turns N] [--v2v N] [--out DIR] [--note TEXT] [--cpuprofile FILE]
  Serves voiced on 127.0.0.1 (SIP over UDP, WebSocket) with the real
  Silero VAD and fast fake STT, model and TTS. Measures voice-to-voice at
  the caller, N turns one call at a time over SIP (a small Go caller,
  PCMU) and over the WebSocket; then, for each level, sipp places calls
  that speak a flite sentence --turns times (play_pcap_audio), at most
  N at once, and reports calls up, per-call input lateness p99, RSS per
  call, CPU (voiced's and sipp's), INVITE → 200 OK and failed calls.
  Needs sipp (Debian package sip-tester) and the models (make models).
  Rewrites the end of DIR/sip.md and writes DIR/sip.json.`

// SIPCommand runs the SIP benchmark: it is `voiced bench sip`.
func SIPCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench sip", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, SIPUsage) }
	levelsFlag := fs.String("levels", "25,50,100,150", "concurrent call counts, comma-separated")
	rate := fs.Int("rate", 20, "sipp's call rate (calls a second)")
	turns := fs.Int("turns", 2, "turns each sipp call speaks")
	v2v := fs.Int("v2v", 10, "voice-to-voice turns measured over SIP and over the WebSocket each")
	out := fs.String("out", "bench/results", "output directory")
	note := fs.String("note", "", "a note for the top of the report")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the concurrent calls to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("bench sip: unexpected arguments %q\n%s", fs.Args(), SIPUsage)
	}
	levels, err := parseCounts(*levelsFlag)
	if err != nil {
		return fmt.Errorf("bench sip: --levels: %w", err)
	}
	if *rate <= 0 || *turns <= 0 || *v2v <= 0 {
		return fmt.Errorf("bench sip: --rate, --turns and --v2v must be positive\n%s", SIPUsage)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	speech, err := utterance(ctx)
	if err != nil {
		return fmt.Errorf("bench sip: %w", err)
	}
	begin := time.Now()
	r, err := RunSIP(ctx, SIPConfig{Levels: levels, Rate: *rate, Turns: *turns, V2V: *v2v, Speech: speech,
		CPUProfile: *cpuProfile, Logger: log, ServerLogger: log.With("from", "server")})
	if err != nil {
		return fmt.Errorf("bench sip: %w", err)
	}
	log.Info("bench sip: done", "took", time.Since(begin).Round(time.Second))
	if err := WriteSIPReport(*out, r, *note); err != nil {
		return fmt.Errorf("bench sip: report: %w", err)
	}
	fmt.Fprintln(stdout, *out+"/sip.md")
	return nil
}

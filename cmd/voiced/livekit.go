package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/voiced-dev/voiced/internal/assembly"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/livekit"
)

// The LiveKit subcommands:
//
//	voiced token  --room R --identity I [--ttl D] [--dispatch AGENT] [--api-key K --api-secret S]
//	voiced agent  --url URL --room R [--identity I] [--per-participant] [--api-key K --api-secret S] [--config FILE]
//	voiced worker --url URL [--agent-name N] [--max-jobs N] [--per-participant] [--drain-timeout D] [--api-key K --api-secret S] [--config FILE]
//
// Keys and URL default to LIVEKIT_API_KEY, LIVEKIT_API_SECRET and LIVEKIT_URL.
const livekitUsage = `  voiced token --room R --identity I [--ttl 6h] [--name N] [--dispatch AGENT] [--api-key K] [--api-secret S]
  voiced agent --url ws://HOST:7880 --room R [--identity voiced] [--per-participant] [--config FILE] [--api-key K] [--api-secret S]
  voiced worker --url ws://HOST:7880 [--agent-name N] [--max-jobs 4] [--per-participant] [--drain-timeout 10m] [--config FILE] [--api-key K] [--api-secret S]
  (keys and URL default to $LIVEKIT_API_KEY, $LIVEKIT_API_SECRET, $LIVEKIT_URL)`

// lkFlags are the flags the LiveKit subcommands share.
type lkFlags struct {
	url, key, secret  string
	cfgPath, level    string
	perParticipant    bool
	withURL, withPipe bool
}

func (f *lkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.key, "api-key", os.Getenv("LIVEKIT_API_KEY"), "LiveKit API key (default $LIVEKIT_API_KEY)")
	fs.StringVar(&f.secret, "api-secret", os.Getenv("LIVEKIT_API_SECRET"), "LiveKit API secret (default $LIVEKIT_API_SECRET)")
	if f.withURL {
		fs.StringVar(&f.url, "url", os.Getenv("LIVEKIT_URL"), "LiveKit server URL (default $LIVEKIT_URL)")
	}
	if f.withPipe {
		fs.StringVar(&f.cfgPath, "config", "", "configuration file (default: built-in demo)")
		fs.StringVar(&f.level, "log-level", "info", "log level: debug, info, warn, error")
		fs.BoolVar(&f.perParticipant, "per-participant", false, "one conversation per participant instead of per room")
	}
}

func (f *lkFlags) check() error {
	if f.key == "" || f.secret == "" {
		return errors.New("--api-key and --api-secret (or LIVEKIT_API_KEY and LIVEKIT_API_SECRET) are required")
	}
	if f.withURL && f.url == "" {
		return errors.New("--url (or LIVEKIT_URL) is required")
	}
	return nil
}

// pipeline loads the configured providers, agents and orchestration
// (internal/assembly, no HTTP server) and returns them with the agent
// configuration.
func (f *lkFlags) pipeline(stderr io.Writer) (*assembly.Assembly, livekit.Config, *slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(f.level)); err != nil {
		return nil, livekit.Config{}, nil, fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	cfg := config.Default()
	if f.cfgPath != "" {
		var err error
		if cfg, err = config.Load(f.cfgPath); err != nil {
			return nil, livekit.Config{}, nil, err
		}
	}
	asm, err := assembly.Load(context.Background(), cfg, assembly.Options{Logger: log})
	if err != nil {
		return nil, livekit.Config{}, nil, err
	}
	// The program serves only LiveKit sessions: they alone share the limit.
	ac := livekit.Config{Logger: log, Admission: transport.NewAdmission(cfg.Server.MaxSessions)}
	if f.perParticipant {
		ac.Mode = livekit.PerParticipant
	}
	return asm, ac, log, nil
}

// tokenCmd prints a participant's join token.
func tokenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf lkFlags
	lf.register(fs)
	var tc livekit.TokenConfig
	fs.StringVar(&tc.Room, "room", "", "room to join (required)")
	fs.StringVar(&tc.Identity, "identity", "", "participant identity (required)")
	fs.StringVar(&tc.Name, "name", "", "display name (default: the identity)")
	fs.DurationVar(&tc.TTL, "ttl", 6*time.Hour, "validity")
	fs.StringVar(&tc.Dispatch, "dispatch", "", "agent name to dispatch to the room when this join creates it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := lf.check(); err != nil {
		return err
	}
	tc.APIKey, tc.APISecret = lf.key, lf.secret
	jwt, err := livekit.NewToken(tc)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, jwt)
	return nil
}

// agentCmd joins one room as the agent and serves it until the
// conversation ends or a signal arrives.
func agentCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lf := lkFlags{withURL: true, withPipe: true}
	lf.register(fs)
	room := fs.String("room", "", "room to join (required)")
	identity := fs.String("identity", "voiced", "the agent's identity in the room")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := lf.check(); err != nil {
		return err
	}
	if *room == "" {
		return errors.New("--room is required")
	}
	jwt, err := livekit.NewToken(livekit.TokenConfig{APIKey: lf.key, APISecret: lf.secret, Room: *room, Identity: *identity, AsAgent: true, TTL: 24 * time.Hour})
	if err != nil {
		return err
	}
	asm, ac, _, err := lf.pipeline(stderr)
	if err != nil {
		return err
	}
	defer asm.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = livekit.NewAgent(ac, asm.Builder.Run).Join(ctx, lf.url, jwt)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// workerCmd runs an agent worker. The first SIGTERM or interrupt drains it
// (no new jobs; running conversations finish, up to --drain-timeout); a
// second one stops it at once.
func workerCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lf := lkFlags{withURL: true, withPipe: true}
	lf.register(fs)
	name := fs.String("agent-name", "", "agent name for explicit dispatch (default: every room)")
	maxJobs := fs.Int("max-jobs", 4, "conversations run at once")
	drain := fs.Duration("drain-timeout", 10*time.Minute, "how long a drain waits for running conversations")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := lf.check(); err != nil {
		return err
	}
	asm, ac, log, err := lf.pipeline(stderr)
	if err != nil {
		return err
	}
	defer asm.Close()
	host, _ := os.Hostname()
	w, err := livekit.NewWorker(livekit.WorkerConfig{
		URL: lf.url, APIKey: lf.key, APISecret: lf.secret,
		AgentName: *name, MaxJobs: *maxJobs, Agent: ac, Logger: log,
		Attributes: map[string]string{"voiced.worker": fmt.Sprintf("%s/%d", host, os.Getpid())},
	}, asm.Builder.Run)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		log.Info("signal: draining", "timeout", *drain)
		dctx, dcancel := context.WithTimeout(ctx, *drain)
		defer dcancel()
		go func() {
			select {
			case <-sigs:
				log.Info("second signal: stopping now")
				cancel()
			case <-dctx.Done():
			}
		}()
		w.Drain(dctx)
	}()
	err = w.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Package assembly builds, from the configuration, what a voiced program
// serves conversations with: telemetry, the VAD, STT and TTS providers
// (chosen from the tables in providers.go), the models, agents and their
// orchestration, the durable workflow engine, and the session builder that
// combines them. It knows nothing of HTTP: internal/server serves an
// Assembly's builder over WebSocket and WebRTC, and the LiveKit commands
// over a room.
package assembly

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/demo"
	"github.com/voiced-dev/voiced/internal/orchestration"
	"github.com/voiced-dev/voiced/processors/turntaking"
	"github.com/voiced-dev/voiced/session"
	"github.com/voiced-dev/voiced/telemetry"
)

// Options are what Load needs besides the configuration.
type Options struct {
	// Logger receives the providers', agents' and sessions' logs (default:
	// discarded).
	Logger *slog.Logger
	// Tools are tools agents may name, by name, beside the demo tools
	// (which they replace on a name clash).
	Tools map[string]agents.Tool
}

// Assembly is a loaded configuration. Builder and Telemetry are shared by
// every session; Close releases them once no session runs.
type Assembly struct {
	// Builder runs one conversation over a transport session
	// (Builder.Run is a transport.Factory).
	Builder *session.Builder
	// Telemetry exports traces and metrics; its Handler serves /metrics.
	Telemetry *telemetry.Telemetry
	// Mode and Entry are the orchestration in force, for logs.
	Mode, Entry string
	// Workflows is the durable workflow engine, nil when the configuration
	// declares no [[workflows]] and no agent uses a workflow tool.
	Workflows durable.Backend

	closers []func() error
}

// Load builds everything cfg names. On error, what was built is released.
func Load(ctx context.Context, cfg config.Config, opts Options) (a *Assembly, err error) {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := Check(cfg); err != nil {
		return nil, err
	}
	a = &Assembly{}
	defer func() {
		if err != nil {
			a.Close()
			a = nil
		}
	}()
	tel, err := telemetry.Setup(ctx, cfg.Telemetry, log)
	if err != nil {
		return nil, fmt.Errorf("assembly: telemetry: %w", err)
	}
	a.Telemetry = tel
	a.closers = append(a.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return tel.Shutdown(ctx)
	})
	vm, err := provide(a, "vad", cfg.VAD.Provider, vadProviders, cfg.VAD)
	if err != nil {
		return nil, err
	}
	obs, err := tel.ProviderObserver()
	if err != nil {
		return nil, fmt.Errorf("assembly: telemetry: %w", err)
	}
	sc := cfg.STT
	if sc.Sphinx.Spot == nil {
		// The embedded recognizer spots the turn stage's interrupt
		// words and backchannels in short utterances, for its judgment
		// of speech over the bot.
		sc.Sphinx.Spot = cfg.Turn.SpotWords()
	}
	rec, err := recognizer(a, sc, obs, log)
	if err != nil {
		return nil, err
	}
	syn, err := synthesizer(a, cfg, obs, log)
	if err != nil {
		return nil, err
	}

	tools := demo.Tools(nil)
	declared, toolsets, err := a.declaredTools(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	maps.Copy(tools, declared)
	maps.Copy(tools, opts.Tools)
	var dur *durableRuntime
	if needsDurable(cfg) {
		if dur, err = openDurable(cfg.Durable, log); err != nil {
			return nil, fmt.Errorf("assembly: durable: %w", err)
		}
		a.closers = append(a.closers, dur.Close)
		if err := dur.register(cfg, tools, toolsets); err != nil {
			return nil, fmt.Errorf("assembly: %w", err)
		}
		a.Workflows = dur.engine
	}
	orch, err := orchestration.Build(cfg, orchestration.Options{
		Tools:     tools,
		Toolsets:  toolsets,
		WrapModel: tel.TraceModel,
		WrapAgent: tel.TraceRunnable,
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, orch.Close)
	if dur != nil {
		if err := dur.setAgents(cfg, orch.Members); err != nil {
			return nil, fmt.Errorf("assembly: %w", err)
		}
		n, err := dur.engine.Resume(ctx)
		if err != nil {
			return nil, fmt.Errorf("assembly: durable: resume: %w", err)
		}
		if n > 0 {
			log.Info("durable runs resumed", "runs", n)
		}
	}
	a.Mode, a.Entry = orch.Mode, orch.Entry
	a.Builder = &session.Builder{
		VAD: vm, STT: rec, TTS: syn,
		Agents: orch.Agents, Entry: orch.Entry, Voices: orch.Voices,
		Logger:    log,
		Telemetry: tel,
		OnMetrics: func(_ string, m frame.TurnMetrics) { tel.RecordTurn(context.Background(), m) },
		Config:    SessionConfig(cfg),
	}
	log.Info("models loaded", "took", time.Since(start).Round(time.Millisecond),
		"agents", len(orch.Agents), "mode", orch.Mode, "entry", orch.Entry)
	return a, nil
}

// SessionConfig is the per-session part of cfg.
func SessionConfig(cfg config.Config) session.Config {
	turn := cfg.Turn
	if cfg.VAD.NoInterrupt {
		turn.Interruption = turntaking.Never
	}
	return session.Config{
		VAD:   cfg.VAD.Config,
		Voice: cfg.TTS.Voice,
		Agent: session.AgentConfig{Name: cfg.Agent.Name, System: cfg.Agent.System, MaxHistory: cfg.Agent.MaxHistory, MaxHistoryBytes: cfg.Agent.MaxHistoryBytes,
			Apology: cfg.Agent.Apology, StallTimeout: cfg.Agent.StallTimeout},
		Turn:                  turn,
		ImmediateInterruption: cfg.Session.ImmediateInterruption,
		EchoCancel:            cfg.Session.EchoCancel,
		Echo:                  cfg.Echo,
		IdleEnabled:           cfg.Session.IdleEnabled,
		Idle:                  cfg.Idle,
		Limit:                 cfg.SessionLimit,
	}
}

// needsDurable reports whether cfg needs the workflow engine: it declares
// workflows, or an agent uses a tool that starts or controls one.
func needsDurable(cfg config.Config) bool {
	if len(cfg.Workflows) > 0 {
		return true
	}
	for _, name := range []string{"start_returns", durable.SignalToolName, durable.StatusToolName, durable.CancelToolName} {
		if usesTool(cfg, name) {
			return true
		}
	}
	return false
}

func usesTool(cfg config.Config, name string) bool {
	for _, a := range cfg.Agents {
		if a.IsEnabled() && slices.Contains(a.Tools, name) {
			return true
		}
	}
	return false
}

// Close releases the providers, the durable engine and telemetry, in the
// reverse order of their making, and returns their errors joined. Call it
// after every session has ended, from one goroutine; a second Close does
// nothing.
func (a *Assembly) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// Package session assembles one conversation's pipeline from its parts:
// the transport's input and output stages, turn detection, recognition, the
// agent stage and synthesis, plus observers for client events and latency.
// The same code serves every transport.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/cmem"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/turns"
	"github.com/voiced-dev/voiced/processors/aec"
	"github.com/voiced-dev/voiced/processors/agent"
	"github.com/voiced-dev/voiced/processors/idle"
	"github.com/voiced-dev/voiced/processors/sessionlimit"
	"github.com/voiced-dev/voiced/processors/stt"
	"github.com/voiced-dev/voiced/processors/tts"
	"github.com/voiced-dev/voiced/processors/turntaking"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/telemetry"
	"github.com/voiced-dev/voiced/transport"
)

// Config holds per-session settings.
type Config struct {
	VAD   vad.Config
	Voice string // TTS voice, "" for the synthesizer's default
	Agent AgentConfig
	// Turn configures the turn-taking stage between recognition and the
	// agent, which owns barge-in: its interruption policy,
	// false-interruption rules and endpointing. The stage is always in the
	// pipeline.
	Turn turntaking.Config
	// ImmediateInterruption sets Turn.Interruption to turntaking.Immediate:
	// every start of user speech interrupts the bot (no minimum duration or
	// words). Endpointing still applies.
	ImmediateInterruption bool
	// EchoCancel adds server-side echo cancellation for clients that do
	// not cancel their own echo, configured by Echo. Its residual guard
	// sets VAD.BotConfidence to DefaultBotConfidence unless set.
	EchoCancel bool
	Echo       aec.Config
	// Idle, when IdleEnabled, prompts a user who has gone quiet and ends
	// the session after Idle.MaxPrompts prompts.
	IdleEnabled bool
	Idle        idle.Config
	// Limit ends a session at its maximum length, and when Builder.Draining
	// is closed, warning the user and saying goodbye. The stage is always
	// in the pipeline.
	Limit sessionlimit.Config
}

// DefaultBotConfidence is the VAD confidence needed to start a user turn
// while the bot speaks when echo cancellation is on.
const DefaultBotConfidence = 0.85

// tapper is implemented by output stages that can copy what they play
// (transport.Playout).
type tapper interface {
	SetTap(t transport.AudioTap)
}

// AgentConfig describes the session's agent.
type AgentConfig struct {
	Name       string
	System     string
	MaxHistory int
	// MaxHistoryBytes bounds the history's text (agent.Config).
	MaxHistoryBytes int
	// Apology is said when an answer fails or stalls for StallTimeout
	// (agent.Config).
	Apology      string
	StallTimeout time.Duration
}

// Builder makes pipelines. Its providers are shared by all sessions and must
// be safe for concurrent use.
type Builder struct {
	VAD vad.Model
	STT stt.Recognizer
	TTS tts.Synthesizer
	// Agents are the agents each session hosts (shared, safe for concurrent
	// use); Entry names the first active one (default: the first) and
	// Voices their TTS voices. Without Agents, Model answers alone as
	// Config.Agent.
	Agents []agents.Runnable
	Entry  string
	Voices map[string]string
	Model  agents.ChatModel
	Config Config
	Logger *slog.Logger
	// Observers are added to every session's pipeline.
	Observers []pipeline.Observer
	// OnMetrics, if set, also receives every turn's latency breakdown.
	OnMetrics func(sessionID string, m frame.TurnMetrics)
	// Telemetry, if set, traces every session, labelled with its
	// transport (transport.Session.Kind).
	Telemetry *telemetry.Telemetry
	// Draining, if set, is closed when the server begins to shut down
	// (transport.Admission.Draining): each session finishes its answer,
	// says Config.Limit.ShutdownGoodbye and ends with shutting_down.
	Draining <-chan struct{}
	// Load, if set, is told every session's input lateness (how long
	// input audio waits at the turn detector), for load-aware admission.
	Load *transport.LoadMeter
	// OnInputLateness, if set, is also told each input frame's lateness
	// (the measurement Load gets), with its session's ID (voiced bench
	// soak keeps it per session).
	OnInputLateness func(sessionID string, d time.Duration)
}

// Run implements transport.Factory: it runs one conversation over s.
func (b *Builder) Run(ctx context.Context, s *transport.Session) (err error) {
	log := b.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("session", s.ID, "transport", s.Kind)
	// What the session's native stages freed goes back to the system.
	defer cmem.Trim()
	procs, ends, err := b.stages(s)
	if err != nil {
		s.Close(err)
		return err
	}
	// A stage that ended the session politely (its goodbye said) gives
	// the reason the client is closed with.
	ended := func(err error) error {
		if err != nil {
			return err
		}
		return ends.err()
	}
	sess, close := *s, s.Close
	sess.Close = func(err error) { close(ended(err)) }
	s = &sess
	// One tracker follows the turns for the latency breakdown and the
	// trace.
	tracker := turns.New()
	NewLatency(tracker, func(m frame.TurnMetrics) {
		if s.Notify != nil {
			s.Notify(&frame.Metrics{Latency: m})
		}
		if b.OnMetrics != nil {
			b.OnMetrics(s.ID, m)
		}
		log.Info("turn", "turn", m.Turn, "voice_to_voice", m.VoiceToVoice, "stt_final", m.STTFinal,
			"llm_first", m.LLMFirst, "tts_first", m.TTSFirst)
	})
	obs := append([]pipeline.Observer{tracker}, b.Observers...)
	if observe := b.lateness(s.ID); observe != nil {
		obs = append(obs, &lateness{stage: ends.vad, observe: observe, arrived: map[uint64]time.Time{}})
	}
	if s.Observer != nil {
		obs = append(obs, s.Observer)
	}
	var p *pipeline.Pipeline
	if b.Telemetry != nil {
		st := b.Telemetry.SessionObserver(ctx, telemetry.SessionInfo{ID: s.ID, Transport: s.Kind, StageName: func(i int) string { return p.StageName(i) }, Turns: tracker})
		obs = append(obs, st)
		ctx = st.Context(ctx)
		defer func() { st.End(err) }()
	}
	p = pipeline.New(pipeline.Options{Observers: obs, Logger: log}, procs...)
	return ended(transport.Run(ctx, s, p))
}

// lateness returns what is told a session's input lateness: Load and
// OnInputLateness, or nil for neither.
func (b *Builder) lateness(id string) func(time.Duration) {
	load, on := b.Load, b.OnInputLateness
	switch {
	case load != nil && on != nil:
		return func(d time.Duration) { load.ObserveLateness(d); on(id, d) }
	case load != nil:
		return load.ObserveLateness
	case on != nil:
		return func(d time.Duration) { on(id, d) }
	}
	return nil
}

// enders are the stages that may end a session politely, and where the
// turn detector is.
type enders struct {
	limit *sessionlimit.Processor
	idle  *idle.Processor // nil unless Config.IdleEnabled
	vad   int             // the detector's index among the stages
}

// err is the error of a session that a stage ended (transport.Ended), or
// nil.
func (e enders) err() error {
	switch r := e.limit.Reason(); r {
	case sessionlimit.ReasonMaxDuration:
		return transport.Ended(r, "the session reached its maximum length")
	case sessionlimit.ReasonShutdown:
		return transport.Ended(r, "the server is shutting down")
	}
	if e.idle != nil && e.idle.Ended() {
		return transport.Ended("user_idle", "the user did not answer")
	}
	return nil
}

func (b *Builder) stages(s *transport.Session) ([]pipeline.Processor, enders, error) {
	var e enders
	if b.VAD == nil || b.STT == nil || b.TTS == nil || (b.Model == nil && len(b.Agents) == 0) {
		return nil, e, errors.New("session: builder needs VAD, STT, TTS and agents or a model")
	}
	scfg := agent.Config{
		Agents:          b.Agents,
		Entry:           b.Entry,
		Voices:          b.Voices,
		MaxHistory:      b.Config.Agent.MaxHistory,
		MaxHistoryBytes: b.Config.Agent.MaxHistoryBytes,
		Apology:         b.Config.Agent.Apology,
		StallTimeout:    b.Config.Agent.StallTimeout,
		SessionID:       s.ID,
		Metadata:        s.Metadata,
		Start:           s.Start,
	}
	if len(b.Agents) == 0 {
		name := b.Config.Agent.Name
		if name == "" {
			name = "assistant"
		}
		a, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: name, Instructions: b.Config.Agent.System, Model: b.Model})
		if err != nil {
			return nil, e, fmt.Errorf("session: %w", err)
		}
		scfg.Agents = []agents.Runnable{a}
	}
	agent, err := agent.New(scfg)
	if err != nil {
		return nil, e, err
	}
	pf := frame.Mono16k
	var sttCfg stt.ProcessorConfig
	if r := b.STT.Format().SampleRate; r != pf.SampleRate {
		rs, err := audio.NewResampler(pf.SampleRate, r)
		if err != nil {
			return nil, e, fmt.Errorf("session: stt: %w", err)
		}
		sttCfg.Resampler = rs
	}
	ttsCfg := tts.ProcessorConfig{Voice: b.Config.Voice, Output: s.Out, TrimLeadingSilence: true}
	if in := b.TTS.Format().SampleRate; in != s.Out.SampleRate {
		rs, err := audio.NewResampler(in, s.Out.SampleRate)
		if err != nil {
			return nil, e, fmt.Errorf("session: tts: %w", err)
		}
		ttsCfg.Resampler = rs
	}
	synth, err := tts.NewProcessor(b.TTS, ttsCfg)
	if err != nil {
		return nil, e, err
	}
	vcfg := b.Config.VAD
	procs := []pipeline.Processor{s.Input}
	if b.Config.EchoCancel {
		t, ok := s.Output.(tapper)
		if !ok {
			return nil, e, fmt.Errorf("session: echo: output stage %T cannot share what it plays", s.Output)
		}
		ref, err := aec.NewReference(s.Out, pf.SampleRate, 2*time.Second)
		if err != nil {
			return nil, e, fmt.Errorf("session: %w", err)
		}
		ec, err := aec.New(ref, pf.SampleRate, b.Config.Echo)
		if err != nil {
			return nil, e, fmt.Errorf("session: %w", err)
		}
		t.SetTap(ref)
		procs = append(procs, ec)
		if vcfg.BotConfidence == 0 {
			vcfg.BotConfidence = DefaultBotConfidence
		}
	}
	tcfg := b.Config.Turn
	if b.Config.ImmediateInterruption {
		tcfg.Interruption = turntaking.Immediate
	}
	turns, err := turntaking.New(tcfg)
	if err != nil {
		return nil, e, fmt.Errorf("session: %w", err)
	}
	e.vad = len(procs)
	procs = append(procs,
		vad.NewDetector(b.VAD, pf.SampleRate, vcfg),
		stt.NewProcessor(b.STT, sttCfg),
		turns,
		agent,
	)
	e.limit = sessionlimit.New(b.Config.Limit, b.Draining)
	procs = append(procs, e.limit)
	if b.Config.IdleEnabled {
		e.idle = idle.New(b.Config.Idle)
		procs = append(procs, e.idle)
	}
	return append(procs, synth, s.Output), e, nil
}

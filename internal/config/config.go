// Package config reads voiced.toml: a typed file decoded strictly (unknown
// keys are errors, reported with their line). The zero Config, after
// Defaults, runs the offline demo.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/voiced-dev/voiced/agents/llm/scripted"
	"github.com/voiced-dev/voiced/telemetry"
)

// Duration is a time.Duration written as a string ("200ms", "1.5s").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Config is the whole file.
type Config struct {
	Server Server `toml:"server"`
	VAD    VAD    `toml:"vad"`
	STT    STT    `toml:"stt"`
	TTS    TTS    `toml:"tts"`
	Agent  Agent  `toml:"agent"`
	LLM    LLM    `toml:"llm"`
	// Models are extra named models, for agents, routers, supervisors and
	// failover ([llm] is the model named "default").
	Models []NamedModel `toml:"models"`
	// Agents declares the agents; none means one agent from [agent].
	Agents        []AgentSpec   `toml:"agents"`
	Orchestration Orchestration `toml:"orchestration"`
	Durable       Durable       `toml:"durable"`
	Telemetry     Telemetry     `toml:"telemetry"`
	Session       Session       `toml:"session"`
	Turn          Turn          `toml:"turn"`
	Echo          Echo          `toml:"echo"`
	Idle          Idle          `toml:"idle"`
	SIP           SIP           `toml:"sip"`
}

// Session switches the optional turn-taking stages.
type Session struct {
	// ImmediateInterruption interrupts the bot on every start of user
	// speech (no false-interruption rules, no STT-aware endpointing).
	ImmediateInterruption bool `toml:"immediate_interruption"`
	EchoCancel            bool `toml:"echo_cancel"`  // server-side echo cancellation
	IdleEnabled           bool `toml:"idle_enabled"` // prompt quiet users, then end
}

// Turn configures interruptions and endpointing (processors/turntaking).
type Turn struct {
	MinDuration   Duration `toml:"min_duration"`
	MinWords      int      `toml:"min_words"`
	Backchannels  []string `toml:"backchannels"`
	FinalWait     Duration `toml:"final_wait"`
	Hold          Duration `toml:"hold"`
	Continuations []string `toml:"continuations"`
}

// Echo configures echo cancellation (processors/aec).
type Echo struct {
	Tail       Duration `toml:"tail"`
	Delay      Duration `toml:"delay"`
	SuppressDB int      `toml:"suppress_db"`
	Frame      Duration `toml:"frame"`
	Warmup     Duration `toml:"warmup"`
}

// Idle configures idle prompts (processors/idle).
type Idle struct {
	Timeout    Duration `toml:"timeout"`
	Prompt     string   `toml:"prompt"`
	MaxPrompts int      `toml:"max_prompts"`
	Goodbye    string   `toml:"goodbye"`
}

// Server is the HTTP side.
type Server struct {
	Addr        string   `toml:"addr"`         // default ":8080"
	Origins     []string `toml:"origins"`      // extra allowed WebSocket origins
	MaxSessions int      `toml:"max_sessions"` // default 200
}

// SIP configures the SIP transport (transport/sip): phone calls from a PBX,
// a trunk or a softphone.
type SIP struct {
	// Listen is host:port for SIP over UDP and TCP ("" for no SIP).
	Listen string `toml:"listen"`
	// ExternalIP is the address put in SDP and Contact (behind NAT).
	ExternalIP string `toml:"external_ip"`
	// RTPPortMin and RTPPortMax bound the RTP ports (default 10000-20000).
	RTPPortMin int `toml:"rtp_port_min"`
	RTPPortMax int `toml:"rtp_port_max"`
	// MediaTimeout ends a call without RTP (default 15 s).
	MediaTimeout Duration `toml:"media_timeout"`
	// Routes maps a dialed user part to the agent a call starts with
	// (billing = "billing": sip:billing@host starts with billing).
	Routes map[string]string `toml:"routes"`
}

// VAD configures turn detection.
type VAD struct {
	Model         string   `toml:"model"`       // silero_vad_v5.onnx path; default from the cache
	ONNXRuntime   string   `toml:"onnxruntime"` // libonnxruntime.so path; default from the cache
	Confidence    float32  `toml:"confidence"`
	StartDuration Duration `toml:"start_duration"`
	StopDuration  Duration `toml:"stop_duration"`
	MinVolume     float64  `toml:"min_volume"`
	NoInterrupt   bool     `toml:"no_interrupt"`
	ResetEvery    Duration `toml:"reset_every"`
	// BotConfidence and BotMinVolume replace Confidence and MinVolume
	// while the bot speaks (a guard against residual echo).
	BotConfidence float32 `toml:"bot_confidence"`
	BotMinVolume  float64 `toml:"bot_min_volume"`
}

// STT configures recognition.
type STT struct {
	Provider string `toml:"provider"` // "sphinx"
	HMM      string `toml:"hmm"`
	LM       string `toml:"lm"`
	Dict     string `toml:"dict"`
}

// TTS configures synthesis.
type TTS struct {
	Provider string `toml:"provider"` // "flite"
	Voice    string `toml:"voice"`    // slt, awb, rms
}

// Agent is the session's agent.
type Agent struct {
	Name       string `toml:"name"`
	System     string `toml:"system"`
	MaxHistory int    `toml:"max_history"`
}

// LLM is a chat model: the default one ([llm]) or a named one ([[models]]).
type LLM struct {
	Provider   string     `toml:"provider"` // "scripted" or "openai"
	Scripted   Scripted   `toml:"scripted"`
	OpenAI     OpenAI     `toml:"openai"`
	Resilience Resilience `toml:"resilience"`
}

// NamedModel is an entry of [[models]].
type NamedModel struct {
	Name string `toml:"name"`
	LLM
}

// Scripted configures the offline scripted model.
type Scripted struct {
	Fallback        string   `toml:"fallback"`
	ToolFallback    string   `toml:"tool_fallback"`
	TokenDelay      Duration `toml:"token_delay"`
	FirstTokenDelay Duration `toml:"first_token_delay"`
	Rules           []Rule   `toml:"rules"`
}

// Rule is a scripted pattern → reply, tool calls or a handoff
// (see agents/llm/scripted.Rule).
type Rule = scripted.Rule

// OpenAI configures an OpenAI-compatible endpoint.
type OpenAI struct {
	BaseURL string `toml:"base_url"` // default https://api.openai.com/v1
	Model   string `toml:"model"`
	// APIKeyEnv names the environment variable holding the key (keys do
	// not belong in files); default OPENAI_API_KEY for api.openai.com.
	APIKeyEnv string            `toml:"api_key_env"`
	Timeout   Duration          `toml:"timeout"`
	Headers   map[string]string `toml:"headers"`
}

// Resilience wraps a model with retries, a timeout, a circuit breaker and
// failover.
type Resilience struct {
	Retries         int      `toml:"retries"`          // default 0: none
	Backoff         Duration `toml:"backoff"`          // first retry's wait (default 200ms)
	Timeout         Duration `toml:"timeout"`          // per call, 0: none
	BreakerFailures int      `toml:"breaker_failures"` // 0: no breaker
	BreakerCooldown Duration `toml:"breaker_cooldown"` // default 30s
	Failover        []string `toml:"failover"`         // named models to fall back to
}

// AgentSpec declares one agent of [[agents]].
type AgentSpec struct {
	Name string `toml:"name"`
	// Role describes the agent to others: its handoff tool, its route, its
	// job as a worker.
	Role     string   `toml:"role"`
	System   string   `toml:"system"`
	Model    string   `toml:"model"` // a [[models]] name; "" for [llm]
	Tools    []string `toml:"tools"`
	Handoffs []string `toml:"handoffs"`
	Voice    string   `toml:"voice"`
	Enabled  *bool    `toml:"enabled"` // default true
	MaxSteps int      `toml:"max_steps"`
	// Rules give the agent its own scripted model (with the model's other
	// scripted settings) when its model is scripted.
	Rules []Rule `toml:"rules"`
}

// IsEnabled reports whether the agent is on.
func (a AgentSpec) IsEnabled() bool { return a.Enabled == nil || *a.Enabled }

// Orchestration says how the agents answer together.
type Orchestration struct {
	// Mode: "handoff" (default: agents hand the conversation to each
	// other), "route", "collaborative", "sequential", "loop", "mixed",
	// "supervisor".
	Mode   string   `toml:"mode"`
	Entry  string   `toml:"entry"`  // handoff: the first active agent
	Agents []string `toml:"agents"` // members (default: every enabled agent)
	Model  string   `toml:"model"`  // router, supervisor, synthesis model ("" for [llm])
	// Timeout bounds one answer (default none).
	Timeout       Duration `toml:"timeout"`
	MaxIterations int      `toml:"max_iterations"` // loop (default 3)
	Until         string   `toml:"until"`          // loop: stop once the output matches this pattern
	Parallel      bool     `toml:"parallel"`       // supervisor: delegate in parallel
	// Stages, for mixed: agents of a stage run in parallel, stages in
	// sequence.
	Stages [][]string `toml:"stages"`
	// Synthesize combines parallel results with the model (collaborative,
	// mixed); otherwise they are joined.
	Synthesize *bool `toml:"synthesize"`
}

// Durable configures durable workflows.
type Durable struct {
	Store string `toml:"store"` // "bbolt" (default) or "redis"
	Path  string `toml:"path"`  // bbolt: directory of durable.db (default $VOICED_DATA, else ~/.local/share/voiced)
	Redis string `toml:"redis"` // redis address host:port
	// AutoApprove is how long the returns workflow waits for an approval
	// signal before approving by itself (default 1m).
	AutoApprove Duration `toml:"auto_approve"`
}

// Telemetry configures traces and metrics (see telemetry.Config).
type Telemetry = telemetry.Config

//go:embed default.toml
var defaultFile []byte

// Default returns the embedded default configuration (the offline demo).
func Default() Config {
	c, err := Parse(defaultFile)
	if err != nil {
		panic("config: embedded default.toml: " + err.Error())
	}
	return c
}

// ErrInvalid wraps every configuration error.
var ErrInvalid = errors.New("config: invalid")

// Load reads a file. Keys it does not set keep the embedded defaults, except
// that a file's [[llm.scripted.rules]] replace the default rules.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := parseOver(Default(), b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes b over the built-in defaults and validates the result.
func Parse(b []byte) (Config, error) {
	var c Config
	c.applyDefaults()
	return parseOver(c, b)
}

func parseOver(c Config, b []byte) (Config, error) {
	if len(bytes.TrimSpace(b)) > 0 {
		rules := c.LLM.Scripted.Rules
		c.LLM.Scripted.Rules = nil
		d := toml.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&c); err != nil {
			var sme *toml.StrictMissingError
			if errors.As(err, &sme) {
				return c, fmt.Errorf("%w: %s", ErrInvalid, sme.String())
			}
			var de *toml.DecodeError
			if errors.As(err, &de) {
				row, col := de.Position()
				return c, fmt.Errorf("%w: line %d column %d: %s", ErrInvalid, row, col, de.Error())
			}
			return c, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if c.LLM.Scripted.Rules == nil {
			c.LLM.Scripted.Rules = rules
		}
	}
	c.applyDefaults()
	return c, c.Validate()
}

func (c *Config) applyDefaults() {
	if c.Server.Addr == "" {
		c.Server.Addr = ":8080"
	}
	if c.STT.Provider == "" {
		c.STT.Provider = "sphinx"
	}
	if c.TTS.Provider == "" {
		c.TTS.Provider = "flite"
	}
	if c.LLM.Provider == "" {
		c.LLM.Provider = "scripted"
	}
	if c.Agent.Name == "" {
		c.Agent.Name = "assistant"
	}
}

// Validate checks values that decoding cannot.
func (c Config) Validate() error {
	var errs []error
	if c.STT.Provider != "sphinx" {
		errs = append(errs, fmt.Errorf("stt.provider %q: want \"sphinx\"", c.STT.Provider))
	}
	if c.TTS.Provider != "flite" {
		errs = append(errs, fmt.Errorf("tts.provider %q: want \"flite\"", c.TTS.Provider))
	}
	errs = append(errs, c.validateModels()...)
	errs = append(errs, c.validateAgents()...)
	if c.VAD.Confidence < 0 || c.VAD.Confidence > 1 {
		errs = append(errs, fmt.Errorf("vad.confidence %v: want 0..1", c.VAD.Confidence))
	}
	if p := c.SIP; p.RTPPortMin < 0 || p.RTPPortMax < 0 || p.RTPPortMax > 65535 ||
		(p.RTPPortMax != 0 && p.RTPPortMax <= p.RTPPortMin) {
		errs = append(errs, fmt.Errorf("sip.rtp_port_min %d, sip.rtp_port_max %d: want 0 < min < max <= 65535", p.RTPPortMin, p.RTPPortMax))
	}
	if c.Server.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("server.max_sessions %d: want >= 0", c.Server.MaxSessions))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

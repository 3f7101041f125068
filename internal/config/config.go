// Package config reads voiced.toml: a typed file decoded strictly (unknown
// keys are errors, reported with their line). Each section that configures
// one stage or provider is that package's own Config type (vad.Config,
// turntaking.Config, sphinx.Config, …), so a setting is defined once, where it is
// used. Default is the offline demo; Load reads a file over it.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/agents/httptool"
	"github.com/voiced-dev/voiced/agents/llm/openai"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
	"github.com/voiced-dev/voiced/agents/mcp"
	"github.com/voiced-dev/voiced/processors/aec"
	"github.com/voiced-dev/voiced/processors/idle"
	"github.com/voiced-dev/voiced/processors/sessionlimit"
	sttdeepgram "github.com/voiced-dev/voiced/processors/stt/deepgram"
	sttfailover "github.com/voiced-dev/voiced/processors/stt/failover"
	sttopenai "github.com/voiced-dev/voiced/processors/stt/openai"
	"github.com/voiced-dev/voiced/processors/stt/sphinx"
	"github.com/voiced-dev/voiced/processors/tts/cartesia"
	"github.com/voiced-dev/voiced/processors/tts/elevenlabs"
	ttsfailover "github.com/voiced-dev/voiced/processors/tts/failover"
	ttsopenai "github.com/voiced-dev/voiced/processors/tts/openai"
	"github.com/voiced-dev/voiced/processors/turntaking"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/processors/vad/silero"
	"github.com/voiced-dev/voiced/telemetry"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/carrier"
)

// Config is the whole file. Sections that configure one processor or
// provider are that package's own Config type, decoded as it is (its toml
// tags are the file's keys); durations are written as strings ("200ms").
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
	Agents []AgentSpec `toml:"agents"`
	// Tools declares HTTP tools that agents name in their tools.
	Tools []HTTPTool `toml:"tools"`
	// MCP declares MCP servers whose tools agents get by naming the
	// server in their mcp list.
	MCP           []MCPServer       `toml:"mcp"`
	Orchestration Orchestration     `toml:"orchestration"`
	Durable       Durable           `toml:"durable"`
	Telemetry     Telemetry         `toml:"telemetry"`
	Session       Session           `toml:"session"`
	Turn          turntaking.Config `toml:"turn"`
	Echo          aec.Config        `toml:"echo"`
	Idle          idle.Config       `toml:"idle"`
	// SessionLimit ends sessions at their maximum length (and on
	// shutdown) with a warning and a goodbye.
	SessionLimit sessionlimit.Config `toml:"session_limit"`
	SIP          SIP                 `toml:"sip"`
	WebRTC       WebRTC              `toml:"webrtc"`
	// Carriers names how to reach each carrier's call control (REST
	// hang-up) for /carrier/{vendor}.
	Carriers carrier.APIs `toml:"carriers"`
	// Workflows declares durable workflows (docs/workflows.md).
	Workflows []Workflow `toml:"workflows"`
	// Hooks declares audit endpoints told of agents' runs, tool calls and
	// handoffs (orchestration.go).
	Hooks []Hook `toml:"hooks"`
	// RTVI configures the edges of Pipecat's clients (docs/rtvi.md).
	RTVI RTVI `toml:"rtvi"`
}

// RTVI is [rtvi]: Pipecat's start convention (POST /start) and its
// WebSocket transport (/rtvi/ws).
type RTVI struct {
	// OutputSampleRate is the rate of the bot's audio on /rtvi/ws: the
	// client's player rate (default 24000, client-js's default
	// playerSampleRate; the client does not read the frames' rate).
	OutputSampleRate int `toml:"output_sample_rate"`
	// InputSampleRate is the client's recording rate when its first frame
	// is not audio (default 16000, client-js's default).
	InputSampleRate int `toml:"input_sample_rate"`
	// StartTTL is how long a /start waits for its connection (default
	// 30s); until then it counts against server.max_sessions.
	StartTTL time.Duration `toml:"start_ttl"`
	// ICEServers are the URLs (stun:, turn:) a WebRTC start's iceConfig
	// lists; none by default.
	ICEServers []string `toml:"ice_servers"`
}

// Session switches the optional turn-taking stages.
type Session struct {
	// ImmediateInterruption interrupts the bot on every start of user
	// speech (no false-interruption rules, no STT-aware endpointing).
	ImmediateInterruption bool `toml:"immediate_interruption"`
	EchoCancel            bool `toml:"echo_cancel"`  // server-side echo cancellation
	IdleEnabled           bool `toml:"idle_enabled"` // prompt quiet users, then end
}

// Server is the HTTP side. Zero durations take their defaults
// (docs/configuration.md); negative ones are refused.
type Server struct {
	Addr    string   `toml:"addr"`    // default "127.0.0.1:8080"
	Origins []string `toml:"origins"` // extra allowed WebSocket origins
	// AllowedHosts are the host names (Host header, without port) the
	// server answers to besides IP addresses and loopback names; "*"
	// allows any. A name not listed is refused (DNS rebinding).
	AllowedHosts []string `toml:"allowed_hosts"`
	MaxSessions  int      `toml:"max_sessions"` // default 200; 0 is refused
	// MetricsAddr serves /metrics on its own (private) address instead of
	// the main one.
	MetricsAddr string     `toml:"metrics_addr"`
	Auth        ServerAuth `toml:"auth"`
	// TLSCert and TLSKey serve HTTPS and WSS (--tls-cert, --tls-key).
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`

	ReadHeaderTimeout time.Duration `toml:"read_header_timeout"` // default 10s
	ReadTimeout       time.Duration `toml:"read_timeout"`        // a whole request, body included; default 30s
	IdleTimeout       time.Duration `toml:"idle_timeout"`        // keep-alive connections; default 60s
	MaxBodyBytes      int64         `toml:"max_body_bytes"`      // request bodies; default 65536
	// StartTimeout bounds the wait for a WebSocket's first message
	// (default 30s); InputIdleTimeout ends a session whose client sends
	// nothing for that long (default 60s).
	StartTimeout     time.Duration `toml:"start_timeout"`
	InputIdleTimeout time.Duration `toml:"input_idle_timeout"`
	// InputBurst is how far ahead of real time a client's audio may run
	// before it is paced (default 1s); InputMaxAhead is how much pacing a
	// session may need before it is cut off as too fast (default 10s).
	InputBurst    time.Duration `toml:"input_burst"`
	InputMaxAhead time.Duration `toml:"input_max_ahead"`

	// MaxSessionsPerAddr bounds one client address's live sessions
	// (default 20; -1: no bound); SessionsPerAddrRate and
	// SessionsPerAddrBurst how fast it may start them (default 1 a second,
	// 10 at once; a rate of -1: no bound). Loopback clients are exempt.
	MaxSessionsPerAddr   int     `toml:"max_sessions_per_addr"`
	SessionsPerAddrRate  float64 `toml:"sessions_per_addr_rate"`
	SessionsPerAddrBurst int     `toml:"sessions_per_addr_burst"`
	// MaxCPUUtilization refuses new sessions while the process uses more
	// than this fraction of its cores (default 0.9; 1: not checked);
	// MaxInputLateness while more than 1% of input audio waits longer than
	// this at the turn detector (default 100ms).
	MaxCPUUtilization float64       `toml:"max_cpu_utilization"`
	MaxInputLateness  time.Duration `toml:"max_input_lateness"`
	// ShutdownGrace is how long a shutdown lets sessions finish their
	// answers and say goodbye before they are closed (default 10s).
	ShutdownGrace time.Duration `toml:"shutdown_grace"`
}

// ServerAuth is [server.auth]. Authentication is on when the API key
// variable or the token secret variable is set, or Required is true. The
// keys themselves never go in the file.
type ServerAuth struct {
	// Required refuses to start without a key or secret in the
	// environment.
	Required bool `toml:"required"`
	// APIKeyEnv names the variable holding the API keys, comma-separated
	// (default VOICED_API_KEY).
	APIKeyEnv string `toml:"api_key_env"`
	// TokenSecretEnv names the variable holding the access tokens' HS256
	// secret (default VOICED_TOKEN_SECRET).
	TokenSecretEnv string `toml:"token_secret_env"`
	// Audience is the aud claim tokens must carry (default "voiced").
	Audience string `toml:"audience"`
}

// SIP configures the SIP transport (transport/sip): phone calls from a PBX,
// a trunk or a softphone.
type SIP struct {
	// Listen is host:port for SIP over UDP and TCP ("" for no SIP).
	Listen string `toml:"listen"`
	// TLSListen is host:port for SIP over TLS (usually port 5061; "" for
	// none), with the certificate TLSCert and TLSKey (PEM files; default
	// [server]'s), reloaded on SIGHUP like the HTTPS one.
	TLSListen string `toml:"tls_listen"`
	TLSCert   string `toml:"tls_cert"`
	TLSKey    string `toml:"tls_key"`
	// ExternalIP is the address put in SDP and Contact (behind NAT).
	ExternalIP string `toml:"external_ip"`
	// RTPPortMin and RTPPortMax bound the RTP ports (default 10000-20000).
	RTPPortMin int `toml:"rtp_port_min"`
	RTPPortMax int `toml:"rtp_port_max"`
	// MediaTimeout ends a call without RTP (default 15 s).
	MediaTimeout time.Duration `toml:"media_timeout"`
	// Routes maps a dialed user part to the agent a call starts with
	// (billing = "billing": sip:billing@host starts with billing).
	Routes map[string]string `toml:"routes"`
	// Auth guards inbound calls ([sip.auth]).
	Auth SIPAuth `toml:"auth"`
	// Trunk is the trunk outbound calls go through ([sip.trunk]); Trunks
	// lists several ([[sip.trunks]]), the first being the default.
	Trunk  *SIPTrunk  `toml:"trunk"`
	Trunks []SIPTrunk `toml:"trunks"`
	// TransferTargets names the lines the transfer_call tool may hand a
	// caller to (sales = "sip:sales@pbx.example.net").
	// A +E.164 number (+15550123) works on carrier calls only.
	TransferTargets map[string]string `toml:"transfer_targets"`
	// Registrations make voiced an extension of a PBX
	// ([[sip.registrations]]).
	Registrations []SIPRegistration `toml:"registrations"`
}

// SIPRegistration is one [[sip.registrations]] entry: voiced REGISTERs
// sip:user@domain with the registrar and keeps the binding fresh.
type SIPRegistration struct {
	Registrar   string        `toml:"registrar"`    // host:port (port default 5060)
	Transport   string        `toml:"transport"`    // "udp" (default) or "tcp"
	User        string        `toml:"user"`         // the extension
	Domain      string        `toml:"domain"`       // default the registrar's host
	Username    string        `toml:"username"`     // digest username (default user)
	PasswordEnv string        `toml:"password_env"` // the variable holding the password
	Expires     time.Duration `toml:"expires"`      // asked for (default 5m)
}

// SIPAuth is [sip.auth]: who may call voiced.
type SIPAuth struct {
	// Allow lists the addresses and CIDR prefixes calls may come from
	// (default: any).
	Allow []string `toml:"allow"`
	// Users turns on digest authentication: each caller's username and
	// the variable holding its password.
	Users []SIPUser `toml:"users"`
	// Realm is the digest realm (default "voiced").
	Realm string `toml:"realm"`
	// Algorithms are the digest algorithms offered, in order (default
	// ["MD5"]; ["SHA-256", "MD5"] for RFC 8760 callers).
	Algorithms []string `toml:"algorithms"`
	// NonceTTL is how long a nonce is good for (default 5m).
	NonceTTL time.Duration `toml:"nonce_ttl"`
	// Proxy challenges with 407 instead of 401.
	Proxy bool `toml:"proxy"`
}

// SIPUser is one [[sip.auth.users]] entry.
type SIPUser struct {
	Username    string `toml:"username"`
	PasswordEnv string `toml:"password_env"` // the variable holding the password
}

// SIPTrunk is a SIP trunk or proxy outbound calls go through.
type SIPTrunk struct {
	// Name picks the trunk of a call (default "default" for [sip.trunk]).
	Name string `toml:"name"`
	// Address is the trunk's host:port (port default 5060).
	Address string `toml:"address"`
	// Transport is "udp" (default) or "tcp".
	Transport string `toml:"transport"`
	// Username and the variable holding the password answer the
	// trunk's digest challenges (401/407).
	Username    string `toml:"username"`
	PasswordEnv string `toml:"password_env"`
	// From is the caller ID: a user part or a SIP URI (default the
	// username, else "voiced").
	From string `toml:"from"`
}

// WebRTC is [webrtc]: how peers beyond loopback reach the WebRTC transport
// (docs/configuration.md, docs/protocol.md "WebRTC").
type WebRTC struct {
	// ICEServers are STUN and TURN servers for the server's own ICE and
	// for pages (GET /webrtc/ice-servers).
	ICEServers []ICEServer `toml:"ice_servers"`
	// PublicIPs are announced in place of the host's addresses (1:1 NAT).
	PublicIPs []string `toml:"public_ips"`
	// UDPPortMin and UDPPortMax bound ICE's UDP ports (0: any).
	UDPPortMin int `toml:"udp_port_min"`
	UDPPortMax int `toml:"udp_port_max"`
	// UDPPort carries every session's ICE on one UDP port (0: none).
	UDPPort int `toml:"udp_port"`
	// Limits on what one peer asks of the server's ICE.
	MaxCandidates      int `toml:"max_candidates"`       // default 50
	MaxMediaSections   int `toml:"max_media_sections"`   // default 4
	MaxBindingRequests int `toml:"max_binding_requests"` // default 7
	// PlayoutLead is how far ahead of real time the bot's audio is sent
	// (default 40ms; webrtc.Config.PlayoutLead).
	PlayoutLead time.Duration `toml:"playout_lead"`
}

// ICEServer is one [[webrtc.ice_servers]] entry. A TURN server's
// username and credential are read from the environment variables named
// here; they never go in the file.
type ICEServer struct {
	URLs          []string `toml:"urls"`
	UsernameEnv   string   `toml:"username_env"`
	CredentialEnv string   `toml:"credential_env"`
}

func (w WebRTC) validate() []error {
	var errs []error
	if w.UDPPortMin < 0 || w.UDPPortMax < 0 || w.UDPPortMax > 65535 || w.UDPPortMin > 65535 ||
		(w.UDPPortMin == 0) != (w.UDPPortMax == 0) || w.UDPPortMax < w.UDPPortMin {
		errs = append(errs, fmt.Errorf("webrtc.udp_port_min %d, webrtc.udp_port_max %d: want both 0, or 0 < min <= max <= 65535", w.UDPPortMin, w.UDPPortMax))
	}
	if w.UDPPort < 0 || w.UDPPort > 65535 {
		errs = append(errs, fmt.Errorf("webrtc.udp_port %d: want 0 (none) or 1..65535", w.UDPPort))
	}
	for _, l := range []struct {
		key string
		v   int
	}{{"max_candidates", w.MaxCandidates}, {"max_media_sections", w.MaxMediaSections}, {"max_binding_requests", w.MaxBindingRequests}} {
		if l.v < 1 {
			errs = append(errs, fmt.Errorf("webrtc.%s %d: want >= 1", l.key, l.v))
		}
	}
	if w.PlayoutLead < 0 || w.PlayoutLead > time.Second {
		errs = append(errs, fmt.Errorf("webrtc.playout_lead %v: want 0 (the default, 40ms) to 1s", w.PlayoutLead))
	}
	if w.MaxBindingRequests > 65535 {
		errs = append(errs, fmt.Errorf("webrtc.max_binding_requests %d: want <= 65535", w.MaxBindingRequests))
	}
	for _, ip := range w.PublicIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("webrtc.public_ips %q: want an IP address", ip))
		}
	}
	for i, s := range w.ICEServers {
		if len(s.URLs) == 0 {
			errs = append(errs, fmt.Errorf("webrtc.ice_servers[%d]: no urls", i))
		}
		if (s.UsernameEnv == "") != (s.CredentialEnv == "") {
			errs = append(errs, fmt.Errorf("webrtc.ice_servers[%d]: set both username_env and credential_env, or neither", i))
		}
	}
	return errs
}

// Silero and Sphinx name the built-in providers' Config types so that
// [vad] and [stt] can embed them beside other types called Config: their
// keys sit directly in the section, as they always have.
type (
	Silero = silero.Config
	Sphinx = sphinx.Config
)

// VAD is [vad]: the turn detector's settings (vad.Config) and the Silero
// model's (model, onnxruntime, threads).
type VAD struct {
	Provider string `toml:"provider"` // "silero" (default)
	vad.Config
	Silero
	// NoInterrupt keeps the user from barging in by speaking: the
	// turn-taking stage's Never policy (the detector only reports speech).
	NoInterrupt bool `toml:"no_interrupt"`
}

// STT is [stt]: the provider and its settings. The built-in pocketsphinx
// provider's keys (hmm, lm, dict, …) sit in [stt] itself; another
// provider's go in a table named after it ([stt.NAME]).
type STT struct {
	Provider string `toml:"provider"` // "sphinx" (default), "openai", "deepgram"
	Sphinx
	OpenAI   sttopenai.Config   `toml:"openai"`
	Deepgram sttdeepgram.Config `toml:"deepgram"`
	// Failover names the providers tried after Provider, in order: the
	// same list as [stt.resilience] failover, which it may replace (one
	// of the two, not both).
	Failover []string `toml:"failover"`
	// Resilience is [stt.resilience]: retries, a timeout, a circuit
	// breaker and the providers to fail over to, named as the models' are.
	Resilience sttfailover.Config `toml:"resilience"`
}

// Backups returns the providers tried after Provider: failover, or
// [stt.resilience] failover.
func (c STT) Backups() []string { return backups(c.Failover, c.Resilience.Failover) }

// TTS is [tts]: the provider and its default voice (an agent's voice
// replaces it). Each provider's own settings go in a table named after it
// ([tts.NAME]), with the voice it speaks when [tts] voice is unset or it
// is a backup: a voice name means something to one provider only.
type TTS struct {
	Provider string `toml:"provider"` // "flite" (default), "openai", "elevenlabs", "cartesia"
	// Voice is the provider's voice ("": its table's voice; flite: slt).
	Voice      string             `toml:"voice"`
	Flite      TTSFlite           `toml:"flite"`
	OpenAI     ttsopenai.Config   `toml:"openai"`
	ElevenLabs elevenlabs.Config  `toml:"elevenlabs"`
	Cartesia   cartesia.Config    `toml:"cartesia"`
	Failover   []string           `toml:"failover"`   // as [stt] failover
	Resilience ttsfailover.Config `toml:"resilience"` // as [stt.resilience]
}

// Backups returns the providers tried after Provider: failover, or
// [tts.resilience] failover.
func (c TTS) Backups() []string { return backups(c.Failover, c.Resilience.Failover) }

// TTSFlite is [tts.flite].
type TTSFlite struct {
	Voice string `toml:"voice"` // slt (default), awb, rms
}

// FliteVoice is the voice flite speaks: [tts] voice when flite is the
// provider and it is set, else [tts.flite] voice.
func (c TTS) FliteVoice() string {
	if c.Provider == "flite" && c.Voice != "" {
		return c.Voice
	}
	return c.Flite.Voice
}

// AgentVoice is the voice agent a speaks with provider: its voices entry
// for it, else (for [tts] provider) its voice; "" for the provider's
// default.
func (c Config) AgentVoice(a AgentSpec, provider string) string {
	if v := a.Voices[provider]; v != "" {
		return v
	}
	if provider == c.TTS.Provider {
		return a.Voice
	}
	return ""
}

func backups(direct, resilience []string) []string {
	if len(direct) > 0 {
		return direct
	}
	return resilience
}

// Agent is the session's agent.
type Agent struct {
	Name       string `toml:"name"`
	System     string `toml:"system"`
	MaxHistory int    `toml:"max_history"`
	// MaxHistoryBytes bounds the text of the history (default 65536).
	MaxHistoryBytes int `toml:"max_history_bytes"`
	// Apology is said when an answer fails or stalls for StallTimeout
	// (processors/agent.Config).
	Apology      string        `toml:"apology"`
	StallTimeout time.Duration `toml:"stall_timeout"`
}

// LLM is a chat model: the default one ([llm]) or a named one ([[models]]).
type LLM struct {
	Provider   string          `toml:"provider"` // "scripted" or "openai"
	Scripted   scripted.Config `toml:"scripted"`
	OpenAI     OpenAI          `toml:"openai"`
	Resilience Resilience      `toml:"resilience"`
}

// NamedModel is an entry of [[models]].
type NamedModel struct {
	Name string `toml:"name"`
	LLM
}

// Rule is a scripted pattern → reply, tool calls or a handoff
// (see agents/llm/scripted.Rule).
type Rule = scripted.Rule

// OpenAI configures an OpenAI-compatible endpoint: openai.Config
// (base_url, model, organization, timeout, extra_headers) and the
// environment variable that holds the key. The key itself does not belong
// in the file: api_key is refused.
type OpenAI struct {
	openai.Config
	// APIKeyEnv names the environment variable holding the key; default
	// OPENAI_API_KEY for api.openai.com.
	APIKeyEnv string `toml:"api_key_env"`
}

// Resilience wraps a model with retries, a timeout, a circuit breaker and
// failover.
type Resilience struct {
	Retries         int           `toml:"retries"`          // default 0: none
	Backoff         time.Duration `toml:"backoff"`          // first retry's wait (default 200ms)
	Timeout         time.Duration `toml:"timeout"`          // per call, 0: none
	BreakerFailures int           `toml:"breaker_failures"` // 0: no breaker
	BreakerCooldown time.Duration `toml:"breaker_cooldown"` // default 30s
	Failover        []string      `toml:"failover"`         // named models to fall back to
}

// AgentSpec declares one agent of [[agents]].
type AgentSpec struct {
	Name string `toml:"name"`
	// Role describes the agent to others: its handoff tool, its route, its
	// job as a worker.
	Role   string   `toml:"role"`
	System string   `toml:"system"`
	Model  string   `toml:"model"` // a [[models]] name; "" for [llm]
	Tools  []string `toml:"tools"`
	// MCP names [[mcp]] servers whose tools the agent gets.
	MCP      []string `toml:"mcp"`
	Handoffs []string `toml:"handoffs"`
	// Voice is the agent's voice on [tts] provider; Voices its voice on
	// each provider by name (the backups of [tts] failover, or the
	// provider itself, where it replaces Voice).
	Voice    string            `toml:"voice"`
	Voices   map[string]string `toml:"voices"`
	Enabled  *bool             `toml:"enabled"` // default true
	MaxSteps int               `toml:"max_steps"`
	// Rules give the agent its own scripted model (with the model's other
	// scripted settings) when its model is scripted.
	Rules []Rule `toml:"rules"`
	// AgentWiring: handoff conditions, filters and actions, and event-bus
	// topics (orchestration.go).
	AgentWiring
}

// IsEnabled reports whether the agent is on.
func (a AgentSpec) IsEnabled() bool { return a.Enabled == nil || *a.Enabled }

// Orchestration says how the agents answer together.
type Orchestration struct {
	// Mode: "handoff" (default: agents hand the conversation to each
	// other), "route", "collaborative", "sequential", "loop", "mixed",
	// "supervisor", "planner", "graph".
	Mode   string   `toml:"mode"`
	Entry  string   `toml:"entry"`  // handoff: the first active agent
	Agents []string `toml:"agents"` // members (default: every enabled agent)
	Model  string   `toml:"model"`  // router, supervisor, synthesis model ("" for [llm])
	// Timeout bounds one answer (default none).
	Timeout       time.Duration `toml:"timeout"`
	MaxIterations int           `toml:"max_iterations"` // loop (default 3)
	Until         string        `toml:"until"`          // loop: stop once the output matches this pattern
	Parallel      bool          `toml:"parallel"`       // supervisor: delegate in parallel
	// Stages, for mixed: agents of a stage run in parallel, stages in
	// sequence.
	Stages [][]string `toml:"stages"`
	// Synthesize combines parallel results with the model (collaborative,
	// mixed); otherwise they are joined.
	Synthesize *bool `toml:"synthesize"`
	// Planner and Graph configure those modes (orchestration.go).
	Planner PlannerMode `toml:"planner"`
	Graph   GraphMode   `toml:"graph"`
}

// Durable configures durable workflows.
type Durable struct {
	Store string `toml:"store"` // "bbolt" (default) or "redis"
	Path  string `toml:"path"`  // bbolt: directory of durable.db (default $VOICED_DATA, else ~/.local/share/voiced)
	Redis string `toml:"redis"` // redis address host:port
	// AutoApprove is how long the returns workflow waits for an approval
	// signal before approving by itself (default 1m).
	AutoApprove time.Duration `toml:"auto_approve"`
	// LeaseTTL, with store redis, is how long a server's lease on a run
	// lasts without renewal: a dead server's runs are taken over by
	// another between LeaseTTL and 4/3 of it later (default 15s).
	LeaseTTL time.Duration `toml:"lease_ttl"`
	// Engine runs the workflows: "builtin" (default: voiced itself, on
	// Store) or "temporal" (a Temporal cluster; voiced is a worker).
	Engine            string `toml:"engine"`
	TemporalAddress   string `toml:"temporal_address"`    // default 127.0.0.1:7233
	TemporalNamespace string `toml:"temporal_namespace"`  // default "default"
	TemporalTaskQueue string `toml:"temporal_task_queue"` // default "voiced"
}

// HTTPTool is an entry of [[tools]] (see agents/httptool.Config).
type HTTPTool = httptool.Config

// MCPServer is an entry of [[mcp]] (see agents/mcp.Config).
type MCPServer = mcp.Config

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

// Defaults of [server].
const (
	DefaultAddr        = "127.0.0.1:8080"
	DefaultMaxSessions = 200
)

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
	// Before decoding: an explicit 0 is refused.
	c.Server.MaxSessions = DefaultMaxSessions
	c.Server.MaxSessionsPerAddr = transport.DefaultMaxPerAddr
	c.Server.SessionsPerAddrRate = transport.DefaultAddrRate
	return parseOver(c, b)
}

func parseOver(c Config, b []byte) (Config, error) {
	if len(bytes.TrimSpace(b)) > 0 {
		rules := c.LLM.Scripted.Rules
		c.LLM.Scripted.Rules = nil
		if err := decode(b, &c); err != nil {
			return c, err
		}
		if c.LLM.Scripted.Rules == nil {
			c.LLM.Scripted.Rules = rules
		}
	}
	c.applyDefaults()
	return c, c.validate(b)
}

func (c *Config) applyDefaults() {
	if c.Server.Addr == "" {
		c.Server.Addr = DefaultAddr
	}
	sv := &c.Server
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{
		{&sv.ReadHeaderTimeout, 10 * time.Second},
		{&sv.ReadTimeout, 30 * time.Second},
		{&sv.IdleTimeout, 60 * time.Second},
		{&sv.StartTimeout, 30 * time.Second},
		{&sv.InputIdleTimeout, 60 * time.Second},
		{&sv.InputBurst, time.Second},
		{&sv.InputMaxAhead, 10 * time.Second},
		{&sv.MaxInputLateness, transport.DefaultMaxLateness},
		{&sv.ShutdownGrace, 10 * time.Second},
	} {
		if *d.p == 0 {
			*d.p = d.v
		}
	}
	if sv.SessionsPerAddrBurst == 0 {
		sv.SessionsPerAddrBurst = transport.DefaultAddrBurst
	}
	if sv.MaxCPUUtilization == 0 {
		sv.MaxCPUUtilization = transport.DefaultMaxCPU
	}
	if sv.MaxBodyBytes == 0 {
		sv.MaxBodyBytes = 64 << 10
	}
	if sv.Auth.APIKeyEnv == "" {
		sv.Auth.APIKeyEnv = "VOICED_API_KEY"
	}
	if sv.Auth.TokenSecretEnv == "" {
		sv.Auth.TokenSecretEnv = "VOICED_TOKEN_SECRET"
	}
	if len(sv.AllowedHosts) == 0 {
		sv.AllowedHosts = []string{"localhost"}
	}
	if c.WebRTC.MaxCandidates == 0 {
		c.WebRTC.MaxCandidates = 50
	}
	if c.WebRTC.MaxMediaSections == 0 {
		c.WebRTC.MaxMediaSections = 4
	}
	if c.WebRTC.MaxBindingRequests == 0 {
		c.WebRTC.MaxBindingRequests = 7
	}
	if c.VAD.Provider == "" {
		c.VAD.Provider = "silero"
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
	if c.RTVI.OutputSampleRate == 0 {
		c.RTVI.OutputSampleRate = 24000
	}
	if c.RTVI.InputSampleRate == 0 {
		c.RTVI.InputSampleRate = 16000
	}
	if c.RTVI.StartTTL == 0 {
		c.RTVI.StartTTL = 30 * time.Second
	}
}

// Validate checks values that decoding cannot. Provider names are checked
// against the provider tables by the program that loads them
// (internal/assembly), not here.
func (c Config) Validate() error { return c.validate(nil) }

// validate is Validate; file, if not nil, is the file decoded last, in
// which the errors of [[tools]] and [[mcp]] entries find their line.
func (c Config) validate(file []byte) error {
	var errs []error
	errs = append(errs, c.validateTools(file)...)
	errs = append(errs, c.validateWorkflows(file)...)
	errs = append(errs, c.validateModels()...)
	errs = append(errs, c.validateAgents()...)
	errs = append(errs, c.validateWiring(file)...)
	if c.VAD.Confidence < 0 || c.VAD.Confidence > 1 {
		errs = append(errs, fmt.Errorf("vad.confidence %v: want 0..1", c.VAD.Confidence))
	}
	if p := c.SIP; p.RTPPortMin < 0 || p.RTPPortMax < 0 || p.RTPPortMax > 65535 ||
		(p.RTPPortMax != 0 && p.RTPPortMax <= p.RTPPortMin) {
		errs = append(errs, fmt.Errorf("sip.rtp_port_min %d, sip.rtp_port_max %d: want 0 < min < max <= 65535", p.RTPPortMin, p.RTPPortMax))
	}
	errs = append(errs, c.SIP.validate()...)
	if c.SIP.TLSListen != "" && c.SIP.TLSCert == "" && c.Server.TLSCert == "" {
		errs = append(errs, fmt.Errorf("sip.tls_listen %q: needs a certificate (sip.tls_cert and sip.tls_key, or server.tls_cert and server.tls_key)", c.SIP.TLSListen))
	}
	if l := c.SessionLimit; l.MaxDuration < 0 || l.WarnBefore < 0 || l.AnswerGrace < 0 {
		errs = append(errs, fmt.Errorf("session_limit: max_duration %v, warn_before %v, answer_grace %v: want >= 0", l.MaxDuration, l.WarnBefore, l.AnswerGrace))
	}
	if c.Agent.StallTimeout < 0 {
		errs = append(errs, fmt.Errorf("agent.stall_timeout %v: want > 0", c.Agent.StallTimeout))
	}
	if c.Agent.MaxHistory < 0 || c.Agent.MaxHistoryBytes < 0 {
		errs = append(errs, fmt.Errorf("agent.max_history %d, agent.max_history_bytes %d: want >= 0", c.Agent.MaxHistory, c.Agent.MaxHistoryBytes))
	}
	for _, s := range []struct {
		name               string
		direct, resilience []string
	}{{"stt", c.STT.Failover, c.STT.Resilience.Failover}, {"tts", c.TTS.Failover, c.TTS.Resilience.Failover}} {
		if len(s.direct) > 0 && len(s.resilience) > 0 {
			errs = append(errs, fmt.Errorf("%s.failover and %s.resilience.failover are both set: keep one (they mean the same)", s.name, s.name))
		}
	}
	errs = append(errs, c.Server.validate()...)
	errs = append(errs, c.RTVI.validate()...)
	errs = append(errs, c.WebRTC.validate()...)
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

func (r RTVI) validate() []error {
	var errs []error
	for _, k := range []struct {
		key string
		v   int
	}{{"output_sample_rate", r.OutputSampleRate}, {"input_sample_rate", r.InputSampleRate}} {
		switch k.v {
		case 8000, 16000, 22050, 24000, 44100, 48000:
		default:
			errs = append(errs, fmt.Errorf("rtvi.%s %d: want one of 8000, 16000, 22050, 24000, 44100, 48000", k.key, k.v))
		}
	}
	if r.StartTTL < 0 {
		errs = append(errs, fmt.Errorf("rtvi.start_ttl %v: want > 0", r.StartTTL))
	}
	for _, u := range r.ICEServers {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			errs = append(errs, fmt.Errorf("rtvi.ice_servers %q: want a stun:, turn: or turns: URL", u))
		}
	}
	return errs
}

func (p SIP) validate() []error {
	var errs []error
	if (p.TLSCert == "") != (p.TLSKey == "") {
		errs = append(errs, fmt.Errorf("sip.tls_cert and sip.tls_key: set both or neither"))
	}
	for i, u := range p.Auth.Users {
		if u.Username == "" || u.PasswordEnv == "" {
			errs = append(errs, fmt.Errorf("sip.auth.users[%d]: want username and password_env", i))
		}
	}
	for _, a := range p.Auth.Algorithms {
		if a != "SHA-256" && a != "MD5" {
			errs = append(errs, fmt.Errorf("sip.auth.algorithms: %q: want SHA-256 or MD5", a))
		}
	}
	for name, uri := range p.TransferTargets {
		if !carrier.ValidTarget(uri) {
			errs = append(errs, fmt.Errorf("sip.transfer_targets.%s: %q: want a sip: URI or a +E.164 number", name, uri))
		}
	}
	for i, r := range p.Registrations {
		if r.Registrar == "" || r.User == "" {
			errs = append(errs, fmt.Errorf("sip.registrations[%d]: want registrar and user", i))
		}
		if r.Transport != "" && r.Transport != "udp" && r.Transport != "tcp" {
			errs = append(errs, fmt.Errorf("sip.registrations[%d]: transport %q: want udp or tcp", i, r.Transport))
		}
		if r.Expires < 0 {
			errs = append(errs, fmt.Errorf("sip.registrations[%d]: expires %v: want > 0", i, r.Expires))
		}
	}
	trunks := p.Trunks
	if p.Trunk != nil {
		trunks = append([]SIPTrunk{*p.Trunk}, trunks...)
	}
	names := map[string]bool{}
	for i, t := range trunks {
		name := t.Name
		if name == "" {
			name = "default"
		}
		if names[name] {
			errs = append(errs, fmt.Errorf("sip.trunks[%d]: name %q used twice", i, name))
		}
		names[name] = true
		if t.Address == "" {
			errs = append(errs, fmt.Errorf("sip.trunk %q: address is required", name))
		}
		if t.Transport != "" && t.Transport != "udp" && t.Transport != "tcp" {
			errs = append(errs, fmt.Errorf("sip.trunk %q: transport %q: want udp or tcp", name, t.Transport))
		}
		if t.PasswordEnv != "" && t.Username == "" {
			errs = append(errs, fmt.Errorf("sip.trunk %q: password_env without username", name))
		}
	}
	return errs
}

func (s Server) validate() []error {
	var errs []error
	if s.MaxSessions < 1 {
		errs = append(errs, fmt.Errorf("server.max_sessions %d: want >= 1 (there is no unlimited: set the number the machine can serve)", s.MaxSessions))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"read_header_timeout", s.ReadHeaderTimeout},
		{"read_timeout", s.ReadTimeout},
		{"idle_timeout", s.IdleTimeout},
		{"start_timeout", s.StartTimeout},
		{"input_idle_timeout", s.InputIdleTimeout},
		{"input_burst", s.InputBurst},
		{"input_max_ahead", s.InputMaxAhead},
		{"max_input_lateness", s.MaxInputLateness},
		{"shutdown_grace", s.ShutdownGrace},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("server.%s %v: want > 0", d.key, d.v))
		}
	}
	if s.MaxSessionsPerAddr == 0 || s.MaxSessionsPerAddr < -1 {
		errs = append(errs, fmt.Errorf("server.max_sessions_per_addr %d: want >= 1, or -1 for no bound", s.MaxSessionsPerAddr))
	}
	if s.SessionsPerAddrRate == 0 || s.SessionsPerAddrRate < 0 && s.SessionsPerAddrRate != -1 {
		errs = append(errs, fmt.Errorf("server.sessions_per_addr_rate %v: want > 0 (sessions a second), or -1 for no bound", s.SessionsPerAddrRate))
	}
	if s.SessionsPerAddrBurst < 0 {
		errs = append(errs, fmt.Errorf("server.sessions_per_addr_burst %d: want >= 1", s.SessionsPerAddrBurst))
	}
	if s.MaxCPUUtilization < 0 || s.MaxCPUUtilization > 1 {
		errs = append(errs, fmt.Errorf("server.max_cpu_utilization %v: want 0..1 (1: not checked)", s.MaxCPUUtilization))
	}
	if s.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("server.max_body_bytes %d: want > 0", s.MaxBodyBytes))
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		errs = append(errs, fmt.Errorf("server.tls_cert and server.tls_key: set both or neither"))
	}
	for _, h := range s.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ :") && !strings.HasPrefix(h, "[") {
			errs = append(errs, fmt.Errorf("server.allowed_hosts %q: want a host name without scheme or port", h))
		}
	}
	return errs
}

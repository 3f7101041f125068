// Package server is voiced's HTTP server: the demo page at /, the WebSocket
// protocol at /ws, /healthz and /metrics, with the providers, agents and
// orchestration named by the configuration. cmd/voiced and the end-to-end
// tests share it.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/demo"
	"github.com/voiced-dev/voiced/internal/orchestration"
	"github.com/voiced-dev/voiced/processors/aec"
	"github.com/voiced-dev/voiced/processors/idle"
	"github.com/voiced-dev/voiced/processors/stt/sphinx"
	"github.com/voiced-dev/voiced/processors/tts/flite"
	"github.com/voiced-dev/voiced/processors/turntaking"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/processors/vad/silero"
	"github.com/voiced-dev/voiced/session"
	"github.com/voiced-dev/voiced/telemetry"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/sip"
	"github.com/voiced-dev/voiced/transport/webrtc"
	"github.com/voiced-dev/voiced/transport/websocket"
	webdemo "github.com/voiced-dev/voiced/web-demo"
)

// Server serves voiced over HTTP. Until Load succeeds, /healthz and /ws
// answer 503.
type Server struct {
	cfg config.Config
	log *slog.Logger
	mux *http.ServeMux

	adm     *transport.Admission // one session limit for every edge
	ws      atomic.Pointer[websocket.Handler]
	rtc     atomic.Pointer[webrtc.Handler]
	sip     atomic.Pointer[sip.Server] // set by ListenSIP
	tel     atomic.Pointer[telemetry.Telemetry]
	builder *session.Builder
	durable *durableRuntime
	tools   map[string]agents.Tool // added with AddTool
	closers []func() error
}

// AddTool registers a tool agents may name in the configuration. Call it
// before Load.
func (s *Server) AddTool(t agents.Tool) {
	if s.tools == nil {
		s.tools = map[string]agents.Tool{}
	}
	s.tools[t.Spec().Name] = t
}

// New returns a server for cfg; it loads nothing yet.
func New(cfg config.Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), adm: transport.NewAdmission(cfg.Server.MaxSessions)}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.ws.Load() == nil {
			http.Error(w, "loading models", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		h := s.ws.Load()
		if h == nil {
			http.Error(w, "loading models", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	s.mux.HandleFunc("POST /webrtc/offer", func(w http.ResponseWriter, r *http.Request) {
		h := s.rtc.Load()
		if h == nil {
			http.Error(w, "loading models", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	s.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		t := s.tel.Load()
		if t == nil {
			http.Error(w, "loading", http.StatusServiceUnavailable)
			return
		}
		t.Handler().ServeHTTP(w, r)
	})
	s.mux.Handle("GET /", http.FileServerFS(webdemo.FS()))
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Builder returns the session builder, nil before Load.
func (s *Server) Builder() *session.Builder { return s.builder }

// Load builds telemetry, the providers, the agents and their orchestration,
// and opens /ws.
func (s *Server) Load() error {
	start := time.Now()
	cfg := s.cfg
	tel, err := telemetry.Setup(context.Background(), cfg.Telemetry, s.log)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	s.tel.Store(tel)
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return tel.Shutdown(ctx)
	})
	vm, err := silero.New(silero.Config{ModelPath: cfg.VAD.Model, LibraryPath: cfg.VAD.ONNXRuntime})
	if err != nil {
		return fmt.Errorf("vad: %w (run `make models` to fetch the model)", err)
	}
	s.closers = append(s.closers, vm.Close)
	rec, err := sphinx.New(sphinx.Config{HMM: cfg.STT.HMM, LM: cfg.STT.LM, Dict: cfg.STT.Dict})
	if err != nil {
		return fmt.Errorf("stt: %w", err)
	}
	s.closers = append(s.closers, rec.Close)
	syn, err := flite.New(flite.Config{Voice: cfg.TTS.Voice})
	if err != nil {
		return fmt.Errorf("tts: %w", err)
	}

	tools := demo.Tools(nil)
	for name, t := range s.tools {
		tools[name] = t
	}
	if usesTool(cfg, "start_returns") {
		d, err := s.openDurable()
		if err != nil {
			return fmt.Errorf("durable: %w", err)
		}
		s.durable = d
		s.closers = append(s.closers, d.Close)
		tools[d.tool.Spec().Name] = d.tool
	}
	orch, err := orchestration.Build(cfg, orchestration.Options{
		Tools:     tools,
		WrapModel: tel.TraceModel,
		WrapAgent: tel.TraceRunnable,
		Logger:    s.log,
	})
	if err != nil {
		return err
	}
	if s.durable != nil {
		if n, err := s.durable.engine.Resume(context.Background()); err != nil {
			return fmt.Errorf("durable: resume: %w", err)
		} else if n > 0 {
			s.log.Info("durable runs resumed", "runs", n)
		}
	}

	s.builder = &session.Builder{
		VAD: vm, STT: rec, TTS: syn,
		Agents: orch.Agents, Entry: orch.Entry, Voices: orch.Voices,
		Logger:    s.log,
		Telemetry: tel,
		OnMetrics: func(_ string, m frame.TurnMetrics) { tel.RecordTurn(context.Background(), m) },
		Config:    sessionConfig(cfg),
	}
	h := websocket.NewHandler(websocket.Config{
		Origins:   cfg.Server.Origins,
		Admission: s.adm,
		Logger:    s.log,
	}, s.builder.Run)
	s.ws.Store(h)
	s.rtc.Store(webrtc.NewHandler(webrtc.Config{
		Origins:   cfg.Server.Origins,
		Admission: s.adm,
		Loopback:  webrtc.LoopbackAddr(cfg.Server.Addr),
		Logger:    s.log,
	}, s.builder.Run))
	s.log.Info("models loaded", "took", time.Since(start).Round(time.Millisecond),
		"agents", len(orch.Agents), "mode", orch.Mode, "entry", orch.Entry)
	return nil
}

func usesTool(cfg config.Config, name string) bool {
	for _, a := range cfg.Agents {
		if a.IsEnabled() && slices.Contains(a.Tools, name) {
			return true
		}
	}
	return false
}

// interruption maps vad.no_interrupt onto the turn-taking stage's policy
// (the detector only reports speech).
func interruption(cfg config.Config) turntaking.Interruption {
	if cfg.VAD.NoInterrupt {
		return turntaking.Never
	}
	return ""
}

// sessionConfig maps the file's keys onto the session's settings.
func sessionConfig(cfg config.Config) session.Config {
	return session.Config{
		VAD: vad.Config{
			Confidence:    cfg.VAD.Confidence,
			StartDuration: time.Duration(cfg.VAD.StartDuration),
			StopDuration:  time.Duration(cfg.VAD.StopDuration),
			MinVolume:     cfg.VAD.MinVolume,
			ResetEvery:    time.Duration(cfg.VAD.ResetEvery),
			BotConfidence: cfg.VAD.BotConfidence,
			BotMinVolume:  cfg.VAD.BotMinVolume,
		},
		Voice: cfg.TTS.Voice,
		Agent: session.AgentConfig{Name: cfg.Agent.Name, System: cfg.Agent.System, MaxHistory: cfg.Agent.MaxHistory},
		Turn: turntaking.Config{
			Interruption:  interruption(cfg),
			MinDuration:   time.Duration(cfg.Turn.MinDuration),
			MinWords:      cfg.Turn.MinWords,
			Backchannels:  cfg.Turn.Backchannels,
			FinalWait:     time.Duration(cfg.Turn.FinalWait),
			Hold:          time.Duration(cfg.Turn.Hold),
			Continuations: cfg.Turn.Continuations,
		},
		ImmediateInterruption: cfg.Session.ImmediateInterruption,
		EchoCancel:            cfg.Session.EchoCancel,
		Echo: aec.Config{
			Tail:     time.Duration(cfg.Echo.Tail),
			Delay:    time.Duration(cfg.Echo.Delay),
			Suppress: cfg.Echo.SuppressDB,
			Frame:    time.Duration(cfg.Echo.Frame),
			Warmup:   time.Duration(cfg.Echo.Warmup),
		},
		IdleEnabled: cfg.Session.IdleEnabled,
		Idle: idle.Config{
			Timeout:    time.Duration(cfg.Idle.Timeout),
			Prompt:     cfg.Idle.Prompt,
			MaxPrompts: cfg.Idle.MaxPrompts,
			Goodbye:    cfg.Idle.Goodbye,
		},
	}
}

// Admission returns the server's one limit on live sessions, shared by
// every edge (server.max_sessions); an edge the program adds (LiveKit)
// takes it too.
func (s *Server) Admission() *transport.Admission { return s.adm }

// Shutdown refuses new sessions on every edge, ends live ones (an error
// event with code shutting_down; WebSocket close code 1001) and waits for
// them, up to ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.adm.Shutdown(ctx)
	if h := s.sip.Load(); h != nil {
		h.Shutdown(ctx) // its calls ended above: this closes the listeners
	}
	return err
}

// Close releases the providers. Call it after Shutdown.
func (s *Server) Close() error {
	var first error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	s.closers = nil
	return first
}

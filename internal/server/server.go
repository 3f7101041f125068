// Package server is voiced's HTTP server: the demo page at /, the WebSocket
// protocol at /ws and /healthz, with the providers named by the
// configuration. cmd/voiced and the end-to-end tests share it.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/agents/llm/scripted"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/processors/stt/sphinx"
	"github.com/voiced-dev/voiced/processors/tts/flite"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/processors/vad/silero"
	"github.com/voiced-dev/voiced/session"
	"github.com/voiced-dev/voiced/transport/websocket"
	webdemo "github.com/voiced-dev/voiced/web-demo"
)

// Server serves voiced over HTTP. Until Load succeeds, /healthz and /ws
// answer 503.
type Server struct {
	cfg config.Config
	log *slog.Logger
	mux *http.ServeMux

	ws      atomic.Pointer[websocket.Handler]
	builder *session.Builder
	closers []func() error
}

// New returns a server for cfg; it loads nothing yet.
func New(cfg config.Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux()}
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
	s.mux.Handle("GET /", http.FileServerFS(webdemo.FS()))
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Builder returns the session builder, nil before Load.
func (s *Server) Builder() *session.Builder { return s.builder }

// Load builds the providers and opens /ws.
func (s *Server) Load() error {
	start := time.Now()
	cfg := s.cfg
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
	rules := make([]scripted.Rule, len(cfg.LLM.Scripted.Rules))
	for i, r := range cfg.LLM.Scripted.Rules {
		rules[i] = scripted.Rule{Match: r.Match, Reply: r.Reply}
	}
	model, err := scripted.New(scripted.Config{
		Rules:           rules,
		Fallback:        cfg.LLM.Scripted.Fallback,
		TokenDelay:      time.Duration(cfg.LLM.Scripted.TokenDelay),
		FirstTokenDelay: time.Duration(cfg.LLM.Scripted.FirstTokenDelay),
	})
	if err != nil {
		return fmt.Errorf("llm: %w", err)
	}
	s.builder = &session.Builder{
		VAD: vm, STT: rec, TTS: syn, Model: model, Logger: s.log,
		Config: session.Config{
			VAD: vad.Config{
				Confidence:    cfg.VAD.Confidence,
				StartDuration: time.Duration(cfg.VAD.StartDuration),
				StopDuration:  time.Duration(cfg.VAD.StopDuration),
				MinVolume:     cfg.VAD.MinVolume,
				NoInterrupt:   cfg.VAD.NoInterrupt,
				ResetEvery:    time.Duration(cfg.VAD.ResetEvery),
			},
			Voice: cfg.TTS.Voice,
			Agent: session.AgentConfig{Name: cfg.Agent.Name, System: cfg.Agent.System, MaxHistory: cfg.Agent.MaxHistory},
		},
	}
	h := websocket.NewHandler(websocket.Config{
		Origins:     cfg.Server.Origins,
		MaxSessions: cfg.Server.MaxSessions,
		Logger:      s.log,
	}, s.builder.Run)
	s.ws.Store(h)
	s.log.Info("models loaded", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Shutdown ends live sessions (close code 1001) and waits for them, up to
// ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	if h := s.ws.Load(); h != nil {
		return h.Shutdown(ctx)
	}
	return nil
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

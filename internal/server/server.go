// Package server is voiced's HTTP server: the demo page at /, the WebSocket
// protocol at /ws, WebRTC signaling at /webrtc/offer, /healthz and
// /metrics, carrier media streams at /carrier/{vendor}, serving the sessions of what internal/assembly loads from the
// configuration. cmd/voiced and the end-to-end tests share it.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/assembly"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/session"
	"github.com/voiced-dev/voiced/telemetry"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/carrier"
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
	carrier atomic.Pointer[map[string]*carrier.Handler] // by vendor name
	sip     atomic.Pointer[sip.Server]                  // set by ListenSIP
	tel     atomic.Pointer[telemetry.Telemetry]
	builder *session.Builder
	asm     *assembly.Assembly
	tools   map[string]agents.Tool // added with AddTool
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
	// Carrier media streams (docs/carriers.md): GET /carrier/twilio, …
	s.mux.HandleFunc("GET /carrier/{vendor}", func(w http.ResponseWriter, r *http.Request) {
		hs := s.carrier.Load()
		if hs == nil {
			http.Error(w, "loading models", http.StatusServiceUnavailable)
			return
		}
		h, ok := (*hs)[r.PathValue("vendor")]
		if !ok {
			http.NotFound(w, r)
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

// Load builds telemetry, the providers, the agents and their orchestration
// (internal/assembly), and opens /ws and /webrtc/offer.
func (s *Server) Load() error {
	a, err := assembly.Load(context.Background(), s.cfg, assembly.Options{Logger: s.log, Tools: s.tools})
	if err != nil {
		return err
	}
	cfg := s.cfg
	s.asm = a
	s.tel.Store(a.Telemetry)
	s.builder = a.Builder
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
	hs := map[string]*carrier.Handler{}
	for _, v := range carrier.Vendors {
		hs[v.Name] = carrier.NewHandler(v, carrier.Config{
			Admission: s.adm,
			API:       cfg.Carriers.For(v.Name),
			Logger:    s.log,
		}, s.builder.Run)
	}
	s.carrier.Store(&hs)
	return nil
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
	if s.asm == nil {
		return nil
	}
	return s.asm.Close()
}

// Package server is voiced's HTTP server: the demo page at /, the WebSocket
// protocol at /ws, WebRTC signaling at /webrtc/offer, /healthz and
// /metrics, carrier media streams at /carrier/{vendor}, Pipecat's clients
// (POST /start, SmallWebRTC at /api/offer and /sessions/{id}/api/offer,
// RTVI over WebSocket at /rtvi/ws), the durable workflow API at
// /workflows, serving the sessions of what internal/assembly loads from the
// configuration. cmd/voiced and the end-to-end tests share it.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/internal/assembly"
	"github.com/voiced-dev/voiced/internal/auth"
	"github.com/voiced-dev/voiced/internal/calltools"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/session"
	"github.com/voiced-dev/voiced/telemetry"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/carrier"
	"github.com/voiced-dev/voiced/transport/rtvi"
	"github.com/voiced-dev/voiced/transport/sip"
	"github.com/voiced-dev/voiced/transport/webrtc"
	"github.com/voiced-dev/voiced/transport/websocket"
	webdemo "github.com/voiced-dev/voiced/web-demo"
)

// Server serves voiced over HTTP. Until Load succeeds, /healthz and /ws
// answer 503.
//
// Every request, to every route (those added later too), passes the
// server's middleware before the mux: a Host check against
// server.allowed_hosts (DNS rebinding), authentication when it is on
// (internal/auth: 401 before any handler runs), a bound on request bodies
// (server.max_body_bytes) and security headers.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler // mux behind the middleware
	guard   *auth.Guard
	authErr error // a bad [server.auth] or key: every request is refused

	adm      *transport.Admission // one session limit for every edge
	load     *transport.LoadMeter // CPU and input lateness, for adm
	draining atomic.Bool          // Shutdown began: /healthz says so
	ws       atomic.Pointer[websocket.Handler]
	rtc      atomic.Pointer[webrtc.Handler]
	small    atomic.Pointer[webrtc.SmallHandler] // Pipecat's SmallWebRTC offers
	rtviWS   atomic.Pointer[rtvi.WSHandler]
	rtviReg  *rtvi.Registry                              // starts of POST /start (Pipecat's clients)
	sip      atomic.Pointer[sip.Server]                  // set by ListenSIP
	carrier  atomic.Pointer[map[string]*carrier.Handler] // by vendor name
	tel      atomic.Pointer[telemetry.Telemetry]
	engine   atomic.Pointer[durable.Backend] // the workflow API's; nil without workflows
	loaded   atomic.Bool                     // Load succeeded
	builder  *session.Builder
	asm      *assembly.Assembly
	tools    map[string]agents.Tool // added with AddTool
	calls    callBook               // outbound calls placed over HTTP
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
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux()}
	s.load, s.adm = NewAdmission(cfg.Server)
	s.guard, s.authErr = NewGuard(cfg.Server.Auth, os.Getenv)
	s.rtviReg = rtvi.NewRegistry(s.adm, cfg.RTVI.StartTTL)
	s.handler = s.middleware(s.mux)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
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
	s.mux.HandleFunc("GET /webrtc/offer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an SDP offer", http.StatusMethodNotAllowed)
	})
	// WebRTC (WHIP-style): the offer, its session resource (trickled
	// candidates, DELETE) and the ICE servers for pages, each with its
	// CORS preflight.
	rtc := func(serve func(*webrtc.Handler, http.ResponseWriter, *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			h := s.rtc.Load()
			if h == nil {
				http.Error(w, "loading models", http.StatusServiceUnavailable)
				return
			}
			serve(h, w, r)
		}
	}
	s.mux.HandleFunc("POST /webrtc/offer", rtc((*webrtc.Handler).ServeHTTP))
	s.mux.HandleFunc("OPTIONS /webrtc/offer", rtc((*webrtc.Handler).ServeHTTP))
	for _, m := range []string{"PATCH", "DELETE", "OPTIONS"} {
		s.mux.HandleFunc(m+" "+webrtc.DefaultResourcePath, rtc((*webrtc.Handler).ServeResource))
	}
	s.mux.HandleFunc("GET /webrtc/ice-servers", rtc((*webrtc.Handler).ServeICEServers))
	s.mux.HandleFunc("OPTIONS /webrtc/ice-servers", rtc((*webrtc.Handler).ServeICEServers))
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
	// Pipecat's clients (docs/rtvi.md): the start convention, the
	// SmallWebRTC offers (POST) and trickled candidates (PATCH), and the
	// WebSocket transport.
	s.mux.Handle("POST /start", s.rtviStart())
	small := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := s.small.Load()
		if h == nil {
			http.Error(w, "loading models", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	for _, p := range []string{"/api/offer", "/sessions/{id}/api/offer"} {
		s.mux.Handle("POST "+p, small)
		s.mux.Handle("PATCH "+p, small)
	}
	s.mux.HandleFunc("GET /rtvi/ws", func(w http.ResponseWriter, r *http.Request) {
		h := s.rtviWS.Load()
		if h == nil {
			http.Error(w, "loading models", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	s.routeCalls()
	// Call control for agents that name it (end_call, send_dtmf,
	// transfer_call); a tool the program adds with the same name wins.
	for _, t := range calltools.Tools(s.callControl, cfg.SIP.TransferTargets) {
		s.AddTool(t)
	}
	if cfg.Server.MetricsAddr == "" {
		s.mux.Handle("GET /metrics", s.MetricsHandler())
	}
	s.workflowRoutes()
	s.mux.Handle("GET /", demoHeaders(http.FileServerFS(webdemo.FS())))
	return s
}

// MetricsHandler serves the Prometheus metrics (503 before Load). With
// server.metrics_addr set, the program serves it there and /metrics is
// not on the main address.
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := s.tel.Load()
		if t == nil {
			http.Error(w, "loading", http.StatusServiceUnavailable)
			return
		}
		t.Handler().ServeHTTP(w, r)
	})
}

// Handler returns the HTTP handler: the mux behind the middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// AuthEnabled reports whether requests must present an API key or an
// access token.
func (s *Server) AuthEnabled() bool { return s.authErr != nil || s.guard.Enabled() }

// HTTPServer returns an http.Server for Handler with the timeouts of
// [server]: read_header_timeout, read_timeout (a whole request, body
// included: a slow-body POST is cut), idle_timeout (keep-alive
// connections). WebSocket connections are hijacked and are bounded by
// their own limits instead (start_timeout, input_idle_timeout).
func (s *Server) HTTPServer() *http.Server {
	sv := s.cfg.Server
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: sv.ReadHeaderTimeout,
		ReadTimeout:       sv.ReadTimeout,
		IdleTimeout:       sv.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Builder returns the session builder, nil before Load.
func (s *Server) Builder() *session.Builder { return s.builder }

// Load builds telemetry, the providers, the agents and their orchestration
// (internal/assembly), and opens /ws and /webrtc/offer.
func (s *Server) Load() error {
	if s.authErr != nil {
		return s.authErr
	}
	a, err := assembly.Load(context.Background(), s.cfg, assembly.Options{Logger: s.log, Tools: s.tools})
	if err != nil {
		return err
	}
	cfg := s.cfg
	s.asm = a
	s.tel.Store(a.Telemetry)
	s.builder = a.Builder
	s.builder.Draining = s.adm.Draining() // sessions say goodbye on Shutdown
	s.builder.Load = s.load
	h := websocket.NewHandler(websocket.Config{
		Origins:          cfg.Server.Origins,
		Hosts:            cfg.Server.AllowedHosts,
		Admission:        s.adm,
		StartTimeout:     cfg.Server.StartTimeout,
		InputIdleTimeout: cfg.Server.InputIdleTimeout,
		InputBurst:       cfg.Server.InputBurst,
		InputMaxAhead:    cfg.Server.InputMaxAhead,
		Logger:           s.log,
	}, s.builder.Run)
	s.ws.Store(h)
	rc, err := webrtcConfig(cfg, os.Getenv)
	if err != nil {
		return err
	}
	rc.Admission, rc.Logger = s.adm, s.log
	rtc := webrtc.NewHandler(rc, s.builder.Run)
	if err := rtc.Err(); err != nil {
		return err
	}
	s.rtc.Store(rtc)
	// Pipecat's SmallWebRTC on the same edge: its ICE settings, its mux.
	s.small.Store(webrtc.NewSmallHandler(rtc, webrtc.SmallConfig{Starts: s.rtviReg}))
	hs := map[string]*carrier.Handler{}
	for _, v := range carrier.Vendors {
		hs[v.Name] = carrier.NewHandler(v, carrier.Config{
			Admission: s.adm,
			API:       cfg.Carriers.For(v.Name),
			Logger:    s.log,
		}, s.builder.Run)
	}
	s.carrier.Store(&hs)
	s.rtviWS.Store(rtvi.NewWSHandler(rtvi.WSConfig{
		Origins:          cfg.Server.Origins,
		Hosts:            cfg.Server.AllowedHosts,
		Admission:        s.adm,
		Registry:         s.rtviReg,
		OutputRate:       cfg.RTVI.OutputSampleRate,
		InputRate:        cfg.RTVI.InputSampleRate,
		InputIdleTimeout: cfg.Server.InputIdleTimeout,
		InputBurst:       cfg.Server.InputBurst,
		InputMaxAhead:    cfg.Server.InputMaxAhead,
		Logger:           s.log,
	}, s.builder.Run))
	if a.Workflows != nil {
		s.setWorkflows(a.Workflows)
	}
	s.loaded.Store(true)
	return nil
}

// RTVIRegistry returns the starts of POST /start, which the SmallWebRTC
// offer route claims by session id.
func (s *Server) RTVIRegistry() *rtvi.Registry { return s.rtviReg }

// rtviStart is POST /start (503 before Load). A WebSocket start's answer
// carries the request's own credential as token when authentication is
// on: the client appends it to wsUrl, where browsers cannot set headers.
func (s *Server) rtviStart() http.Handler {
	var ice []rtvi.ICEServer
	for _, u := range s.cfg.RTVI.ICEServers {
		ice = append(ice, rtvi.ICEServer{URLs: []string{u}})
	}
	start := rtvi.StartHandler(rtvi.StartConfig{
		Registry:   s.rtviReg,
		WebRTC:     true,
		ICEServers: ice,
		Token: func(r *http.Request) string {
			if !s.AuthEnabled() {
				return ""
			}
			return auth.Credential(r)
		},
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.rtviWS.Load() == nil {
			http.Error(w, "loading models", http.StatusServiceUnavailable)
			return
		}
		start.ServeHTTP(w, r)
	})
}

// NewAdmission returns the admission of [server]: max_sessions across
// every edge, the per-address limits, load-aware admission by the
// returned meter, and shutdown_grace.
func NewAdmission(sv config.Server) (*transport.LoadMeter, *transport.Admission) {
	load := transport.NewLoadMeter(transport.LoadConfig{MaxCPU: sv.MaxCPUUtilization, MaxLateness: sv.MaxInputLateness})
	return load, transport.NewAdmissionConfig(transport.AdmissionConfig{
		MaxSessions: sv.MaxSessions,
		MaxPerAddr:  sv.MaxSessionsPerAddr,
		AddrRate:    sv.SessionsPerAddrRate,
		AddrBurst:   sv.SessionsPerAddrBurst,
		Load:        load,
		Grace:       sv.ShutdownGrace,
	})
}

// Admission returns the server's one limit on live sessions, shared by
// every edge (server.max_sessions); an edge the program adds (LiveKit)
// takes it too.
func (s *Server) Admission() *transport.Admission { return s.adm }

// Shutdown refuses new sessions on every edge, makes /healthz answer 503
// "draining" (so that a load balancer stops sending clients), lets live
// sessions finish their answers and say goodbye for up to
// server.shutdown_grace, closes the rest (each ends with an error event
// with code shutting_down; WebSocket close code 1001) and waits for them,
// up to ctx's deadline: give it a deadline past the grace.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	err := s.adm.Shutdown(ctx)
	if h := s.sip.Load(); h != nil {
		h.Shutdown(ctx) // its calls ended above: this closes the listeners
	}
	return err
}

// Close releases the providers and the WebRTC UDP mux. Call it after
// Shutdown.
func (s *Server) Close() error {
	if h := s.rtc.Load(); h != nil {
		h.Close()
	}
	if s.asm == nil {
		return nil
	}
	return s.asm.Close()
}

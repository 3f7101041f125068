package rtvi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/transport"
)

// Pipecat's start convention: a client POSTs {transport, body} to /start
// (client-js's startBot), and connects with what the answer says.

// Transports of a start request.
const (
	TransportWebRTC    = "webrtc"
	TransportWebSocket = "websocket"
)

// DefaultStartTTL is how long a start waits for its connection.
const DefaultStartTTL = 30 * time.Second

// Start is a session announced by POST /start and not yet connected.
type Start struct {
	// ID is the session's id: the sessionId of a WebRTC start (the
	// client offers on /sessions/{ID}/api/offer), the session query
	// parameter of a WebSocket start's wsUrl.
	ID        string
	Transport string
	// Body is the request's body member (JSON; nil when absent): the
	// session's metadata, for the agent (agents.SessionInfo.Metadata) and
	// the client ("session" client message).
	Body json.RawMessage
}

// ErrNoStart is returned for a session id that no start announced, or
// whose start expired or was already connected.
var ErrNoStart = errors.New("rtvi: no such session (it expired, was connected, or never started)")

// Registry keeps the starts until their connection claims them. Each
// start holds a ticket of the server's Admission from the moment it is
// announced, so /start counts against server.max_sessions: the edge that
// claims it owns the ticket (it Attaches its Close and Releases it when
// the session ends); a start not claimed within its TTL, or pending at
// Shutdown, releases it. Safe for concurrent use.
type Registry struct {
	adm *transport.Admission
	ttl time.Duration

	mu sync.Mutex
	m  map[string]*pending
}

type pending struct {
	s     Start
	t     *transport.Ticket
	timer *time.Timer
}

// NewRegistry returns a registry whose starts are admitted by adm and
// expire after ttl (default DefaultStartTTL).
func NewRegistry(adm *transport.Admission, ttl time.Duration) *Registry {
	if ttl <= 0 {
		ttl = DefaultStartTTL
	}
	return &Registry{adm: adm, ttl: ttl, m: map[string]*pending{}}
}

// Add admits a session announced for kind (TransportWebRTC or
// TransportWebSocket) with body as its metadata. It fails with
// transport.ErrFull or transport.ErrShuttingDown like Admission.Admit.
func (r *Registry) Add(kind string, body json.RawMessage) (Start, error) {
	return r.AddFrom(kind, "", body)
}

// AddFrom is Add for a client at addr, which counts against the
// per-address limits (Admission.AdmitFrom).
func (r *Registry) AddFrom(kind, addr string, body json.RawMessage) (Start, error) {
	t, err := r.adm.AdmitFrom(addr)
	if err != nil {
		return Start{}, err
	}
	var b [16]byte
	rand.Read(b[:])
	s := Start{ID: hex.EncodeToString(b[:]), Transport: kind, Body: body}
	p := &pending{s: s, t: t}
	r.mu.Lock()
	r.m[s.ID] = p
	p.timer = time.AfterFunc(r.ttl, func() { r.drop(s.ID) })
	r.mu.Unlock()
	// A shutdown ends a pending start at once.
	t.Attach(func(error) { r.drop(s.ID) })
	return s, nil
}

// drop forgets a pending start and releases its ticket.
func (r *Registry) drop(id string) {
	r.mu.Lock()
	p, ok := r.m[id]
	delete(r.m, id)
	r.mu.Unlock()
	if ok {
		p.timer.Stop()
		p.t.Release()
	}
}

// Claim takes the start id for its connection: the caller owns the
// returned ticket (Attach the session's Close, Release it at the end).
// It fails with ErrNoStart; kind must match the start's transport.
func (r *Registry) Claim(id, kind string) (Start, *transport.Ticket, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.m[id]
	if !ok || p.s.Transport != kind {
		return Start{}, nil, ErrNoStart
	}
	delete(r.m, id)
	p.timer.Stop()
	return p.s, p.t, nil
}

// Lookup returns the start id without claiming it.
func (r *Registry) Lookup(id string) (Start, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.m[id]
	if !ok {
		return Start{}, false
	}
	return p.s, true
}

// Pending returns the number of starts not yet claimed.
func (r *Registry) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// ICEServer is one entry of a WebRTC start's iceConfig.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// StartConfig configures the /start handler.
type StartConfig struct {
	Registry *Registry
	// WSPath is the path of the RTVI WebSocket edge (default /rtvi/ws);
	// the wsUrl is built from the request's Host and scheme.
	WSPath string
	// WebRTC is whether the SmallWebRTC offer route is served: without
	// it, a webrtc start is refused (400).
	WebRTC bool
	// DefaultTransport is used for a request without one (default webrtc
	// when WebRTC, else websocket), as Pipecat's runner serves the one
	// transport it was started with.
	DefaultTransport string
	ICEServers       []ICEServer
	// Token returns the credential a WebSocket start's answer carries (the
	// client appends it to wsUrl as ?token=) when authentication is on;
	// nil or "": none.
	Token func(r *http.Request) string
}

// startRequest is the body of POST /start.
type startRequest struct {
	Transport string          `json:"transport"`
	Body      json.RawMessage `json:"body"`
}

// StartHandler answers POST /start: {transport, body} → for webrtc
// {sessionId, iceConfig:{iceServers}}, for websocket exactly {wsUrl} (and
// token when authentication is on; client-js refuses any other key). A
// refusal is an HTTP error whose JSON has info, which client-js reports.
// CORS is the caller's (see CORS).
func StartHandler(cfg StartConfig) http.Handler {
	if cfg.WSPath == "" {
		cfg.WSPath = "/rtvi/ws"
	}
	if cfg.DefaultTransport == "" {
		cfg.DefaultTransport = TransportWebSocket
		if cfg.WebRTC {
			cfg.DefaultTransport = TransportWebRTC
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req startRequest
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&req); err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				startError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", mb.Limit)
				return
			}
			startError(w, http.StatusBadRequest, "start request: %s", transport.JSONError(err))
			return
		}
		if req.Transport == "" {
			req.Transport = cfg.DefaultTransport
		}
		switch req.Transport {
		case TransportWebSocket:
		case TransportWebRTC:
			if !cfg.WebRTC {
				startError(w, http.StatusBadRequest, "transport %q is not served here", req.Transport)
				return
			}
		default:
			startError(w, http.StatusBadRequest, "transport %q: want %q or %q", req.Transport, TransportWebRTC, TransportWebSocket)
			return
		}
		body := req.Body
		if t := strings.TrimSpace(string(body)); t == "" || t == "null" {
			body = nil
		}
		s, err := cfg.Registry.AddFrom(req.Transport, transport.ClientAddr(r), body)
		if err != nil {
			w.Header().Set("Retry-After", strconv.Itoa(transport.RetryAfter(err)))
			startError(w, transport.RefuseStatus(err), "%v", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if s.Transport == TransportWebRTC {
			ice := cfg.ICEServers
			if ice == nil {
				ice = []ICEServer{}
			}
			json.NewEncoder(w).Encode(struct {
				SessionID string `json:"sessionId"`
				ICEConfig struct {
					ICEServers []ICEServer `json:"iceServers"`
				} `json:"iceConfig"`
			}{SessionID: s.ID, ICEConfig: struct {
				ICEServers []ICEServer `json:"iceServers"`
			}{ice}})
			return
		}
		scheme := "ws"
		if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
			scheme = "wss"
		}
		resp := struct {
			WSURL string `json:"wsUrl"`
			Token string `json:"token,omitempty"`
		}{WSURL: fmt.Sprintf("%s://%s%s?session=%s", scheme, r.Host, cfg.WSPath, s.ID)}
		if cfg.Token != nil {
			resp.Token = cfg.Token(r)
		}
		json.NewEncoder(w).Encode(resp)
	})
}

// startError answers with status and a JSON {info} that client-js turns
// into its error.
func startError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"info": fmt.Sprintf(format, args...)})
}

// CORS lets the pages of allowed origins (transport.OriginAllowed with
// origins and hosts) call next from the browser: it answers a preflight
// (OPTIONS) itself, with 204 for an allowed origin and 403 otherwise, and
// marks the answers to allowed origins. Put it outside authentication: a
// preflight carries no credential. A request from an origin not allowed
// is refused (403) before next.
func CORS(origins, hosts []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !transport.OriginAllowed(r, origins, hosts...) {
				http.Error(w, fmt.Sprintf("origin %q is not allowed (server.origins)", origin), http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			if origin == "" {
				http.Error(w, "preflight without Origin", http.StatusBadRequest)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "POST, PATCH, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

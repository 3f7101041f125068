// Package webrtc is the WebRTC transport: a browser (or any WebRTC peer)
// POSTs an SDP offer to /webrtc/offer, WHIP-style (RFC 9725), and gets the
// answer with every server ICE candidate already in it; the peer may
// trickle its own to the session resource the answer's Location names.
// One peer connection is one conversation: the peer's microphone arrives
// as an Opus track, the bot's voice leaves as an Opus track, and the
// protocol's JSON events travel on a data channel labelled "events"
// (docs/protocol.md, "WebRTC").
//
// It is an edge on the transport core (transport.Conn, transport.Admission)
// and receives audio through transport/rtpaudio with the audio/opus codec.
// The code is laid out one concept per file:
//
//	webrtc.go      the Handler: configuration, admission, POST /webrtc/offer
//	signaling.go   reading and checking the offer, answering it
//	ice.go         ICE beyond loopback: servers, 1:1 NAT, ports, limits
//	resource.go    the session resource (PATCH, DELETE), CORS, ICE servers
//	connection.go  one session: the peer connection and its lifetime
//	rtp.go         audio in (jitter buffer, decoding) and out (encoding, RTP)
//	datachannel.go the "events" data channel: client messages in, events out
//
// and Pipecat's SmallWebRTC transport (docs/rtvi.md), a second handler on
// the same edge whose sessions speak RTVI and outlive their peer
// connection:
//
//	smallwebrtc.go the SmallHandler: POST/PATCH /api/offer, /sessions/{id}/api/offer
//	smallconn.go   one session: peer connections in turn, the mic, Feed
//	chat.go        the "chat" data channel: pings, signalling, RTVI
//
// Built on github.com/pion/webrtc/v4 (W3C WebRTC 1.0, RFC 8829 JSEP) and
// libopus (RFC 6716, RTP payload RFC 7587).
package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/rtpaudio"
)

// Kind is the Session.Kind of WebRTC sessions.
const Kind = "webrtc"

// Limits of the protocol.
const (
	MaxOffer   = 64 << 10 // bytes of an offer request body
	MaxMessage = 64 << 10 // bytes of a data-channel message
	// EventsLabel is the label of the data channel that carries events.
	EventsLabel = "events"
)

// DefaultPlayoutLead is Config.PlayoutLead's default: two packets.
const DefaultPlayoutLead = 40 * time.Millisecond

// DefaultMaxSessions bounds a Handler's sessions when it has no shared
// Admission.
const DefaultMaxSessions = 50

// Config configures a Handler. The zero value works.
type Config struct {
	// Origins lists the allowed values of the Origin header (scheme://host:port)
	// besides the server's own host. "*" allows any.
	Origins []string
	// Hosts are the host names the server answers to (besides IP
	// addresses and loopback names; see transport.HostAllowed): a page
	// from the server's own host is allowed only under one of them.
	Hosts []string
	// Admission admits sessions and ends them on Shutdown; share one among
	// a server's edges so that its limit holds across them. Nil: the
	// handler has its own, of MaxSessions.
	Admission *transport.Admission
	// MaxSessions bounds concurrent sessions when Admission is nil
	// (default DefaultMaxSessions); more get HTTP 503.
	MaxSessions int
	// ConnectTimeout bounds the wait, after the answer, for ICE to connect
	// and the peer's audio track to arrive (default 15 s).
	ConnectTimeout time.Duration
	// IdleTimeout ends a session that has received neither audio nor a
	// data-channel message for this long (default 30 s).
	IdleTimeout time.Duration
	// InputBurst is how far the peer's audio may run ahead of real time
	// before it is held back (default 1 s); InputMaxAhead is how much
	// holding back a session may need in all before it is ended with
	// too_fast (default 10 s). See transport.Pacer.
	InputBurst    time.Duration
	InputMaxAhead time.Duration
	// GatherTimeout bounds ICE candidate gathering for an answer (default 5 s).
	GatherTimeout time.Duration
	// JitterDelay is how many packets a gap in the peer's audio is waited
	// on before it is concealed (default rtpaudio.DefaultJitterDelay).
	JitterDelay int
	// PlayoutLead is how far ahead of real time the bot's audio is sent
	// (default DefaultPlayoutLead). The peer's jitter buffer absorbs the
	// pacing's jitter; all the lead adds to how long a pause or an
	// interruption takes to be heard.
	PlayoutLead time.Duration
	// Loopback keeps ICE on the loopback interface (UDP over IPv4 on lo):
	// for tests and for a server that only takes local clients.
	Loopback bool

	// ICEServers are STUN and TURN servers (RFC 7064, RFC 7065 URLs): the
	// server gathers reflexive and relayed candidates through them, and
	// hands them to pages (ServeICEServers, and the answer's Link headers).
	ICEServers []pion.ICEServer
	// PublicIPs are announced instead of the host's own addresses in its
	// candidates: a server behind 1:1 NAT (a cloud VM's public address).
	PublicIPs []string
	// UDPPortMin and UDPPortMax bound the UDP ports of ICE (0: any).
	UDPPortMin, UDPPortMax uint16
	// UDPPort, when set, carries every session's ICE on this one UDP port
	// (a mux): a container publishes one port. It overrides the range.
	UDPPort int
	// MaxCandidates bounds the ICE candidates a peer gives one session,
	// offered and trickled (default DefaultMaxCandidates);
	// MaxMediaSections bounds an offer's m= sections (default
	// DefaultMaxMediaSections). More get HTTP 400 with the reason.
	MaxCandidates    int
	MaxMediaSections int
	// MaxBindingRequests bounds the connectivity checks sent on one
	// candidate pair (default DefaultMaxBindingRequests).
	MaxBindingRequests int
	// ResourcePath is the URL path under which session resources live
	// (default DefaultResourcePath); mount ServeResource there.
	ResourcePath string
	// PipelineFormat is the format of the pipeline's audio (default 16 kHz mono).
	PipelineFormat frame.Format
	Logger         *slog.Logger
}

// Handler serves POST /webrtc/offer. Each accepted offer runs the Factory
// on its own goroutine until the session ends. Safe for concurrent use;
// Shutdown ends live sessions.
type Handler struct {
	cfg    Config
	run    transport.Factory
	log    *slog.Logger
	adm    *transport.Admission
	api    *pion.API
	apiErr error
	mux    io.Closer // the single-port UDP mux, if any
	res    resources
}

var (
	// ErrPeerGone ends a session whose peer closed the connection or its
	// event channel, or whose ICE connection failed.
	ErrPeerGone = fmt.Errorf("webrtc: peer went away: %w", transport.ErrClientGone)
	// ErrIdle ends a session that received nothing for IdleTimeout, or
	// that never connected within ConnectTimeout.
	ErrIdle = fmt.Errorf("webrtc: peer idle: %w", transport.ErrIdle)
)

// NewHandler returns a handler running run for each session.
func NewHandler(cfg Config, run transport.Factory) *Handler {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.InputBurst <= 0 {
		cfg.InputBurst = time.Second
	}
	if cfg.InputMaxAhead <= 0 {
		cfg.InputMaxAhead = 10 * time.Second
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	if cfg.JitterDelay <= 0 {
		cfg.JitterDelay = rtpaudio.DefaultJitterDelay
	}
	if cfg.PlayoutLead <= 0 {
		cfg.PlayoutLead = DefaultPlayoutLead
	}
	if cfg.MaxCandidates <= 0 {
		cfg.MaxCandidates = DefaultMaxCandidates
	}
	if cfg.MaxMediaSections <= 0 {
		cfg.MaxMediaSections = DefaultMaxMediaSections
	}
	if cfg.MaxBindingRequests <= 0 {
		cfg.MaxBindingRequests = DefaultMaxBindingRequests
	}
	if cfg.ResourcePath == "" {
		cfg.ResourcePath = DefaultResourcePath
	}
	if cfg.PipelineFormat == (frame.Format{}) {
		cfg.PipelineFormat = frame.Mono16k
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Admission == nil {
		if cfg.MaxSessions <= 0 {
			cfg.MaxSessions = DefaultMaxSessions
		}
		cfg.Admission = transport.NewAdmission(cfg.MaxSessions)
	}
	h := &Handler{cfg: cfg, run: run, log: cfg.Logger, adm: cfg.Admission}
	h.api, h.mux, h.apiErr = newAPI(cfg)
	return h
}

// Err reports a configuration the handler cannot serve with (a bad public
// IP, a UDP port in use); it then answers offers with HTTP 500.
func (h *Handler) Err() error { return h.apiErr }

// Close releases the single-port UDP mux. Call it after Shutdown.
func (h *Handler) Close() error {
	if h.mux == nil {
		return nil
	}
	return h.mux.Close()
}

// Sessions returns the number of live sessions of the handler's Admission
// (of every edge that shares it).
func (h *Handler) Sessions() int { return h.adm.Sessions() }

// Shutdown shuts the handler's Admission down: it refuses new offers, ends
// live sessions (an error event with code shutting_down, then the peer
// connection is closed) and waits for them to finish or ctx to end. A
// shared Admission ends the sessions of every edge that shares it.
func (h *Handler) Shutdown(ctx context.Context) error { return h.adm.Shutdown(ctx) }

// ServeHTTP implements http.Handler for POST /webrtc/offer (and its CORS
// preflight). The answer's Location header names the session's resource
// (ServeResource).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cors(w, r, http.MethodPost) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "POST an SDP offer", http.StatusMethodNotAllowed)
		return
	}
	if h.apiErr != nil {
		http.Error(w, h.apiErr.Error(), http.StatusInternalServerError)
		return
	}
	offer, asJSON, status, err := readOffer(w, r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	ncand, ufrag, err := checkLimits(offer, offerLimits{maxCandidates: h.cfg.MaxCandidates, maxSections: h.cfg.MaxMediaSections})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	t, err := h.adm.AdmitFrom(transport.ClientAddr(r))
	if err != nil {
		transport.Refuse(w, err)
		return
	}
	c, answer, status, err := h.accept(r.Context(), offer)
	if err != nil {
		t.Release()
		h.log.Info("offer refused", "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	t.Attach(c.Close)
	res := &resource{c: c, ufrag: ufrag, candidates: ncand}
	var b [8]byte
	rand.Read(b[:])
	res.etag = `"` + hex.EncodeToString(b[:]) + `"`
	id := h.res.add(res)
	// The session outlives the offer's request.
	go func() {
		defer t.Release()
		defer h.res.remove(id)
		c.serve(h)
	}()

	hd := w.Header()
	hd.Set("Location", resourceURL(h.cfg.ResourcePath, id))
	hd.Set("ETag", res.etag)
	h.linkHeaders(hd)

	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(offerJSON{Type: "answer", SDP: answer})
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

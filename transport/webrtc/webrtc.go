// Package webrtc is the WebRTC transport: a browser (or any WebRTC peer)
// POSTs an SDP offer to /webrtc/offer, WHIP-style, and gets the answer with
// every ICE candidate already in it (no trickle). One peer connection is one
// conversation: the peer's microphone arrives as an Opus track, the bot's
// voice leaves as an Opus track, and the protocol's JSON events travel on a
// data channel labelled "events" (docs/protocol.md, "WebRTC").
//
// It is an edge on the transport core (transport.Conn, transport.Admission)
// and receives audio through transport/rtpaudio with the audio/opus codec.
// The code is laid out one concept per file:
//
//	webrtc.go      the Handler: configuration, admission, POST /webrtc/offer
//	signaling.go   reading and checking the offer, answering it
//	connection.go  one session: the peer connection and its lifetime
//	rtp.go         audio in (jitter buffer, decoding) and out (encoding, RTP)
//	datachannel.go the "events" data channel: client messages in, events out
//
// Built on github.com/pion/webrtc/v4 (W3C WebRTC 1.0, RFC 8829 JSEP) and
// libopus (RFC 6716, RTP payload RFC 7587).
package webrtc

import (
	"context"
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
	// Loopback keeps ICE on the loopback interface (UDP over IPv4 on lo):
	// for tests and for a server that only takes local clients.
	Loopback bool
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
	h.api, h.apiErr = newAPI(cfg)
	return h
}

// Sessions returns the number of live sessions of the handler's Admission
// (of every edge that shares it).
func (h *Handler) Sessions() int { return h.adm.Sessions() }

// Shutdown shuts the handler's Admission down: it refuses new offers, ends
// live sessions (an error event with code shutting_down, then the peer
// connection is closed) and waits for them to finish or ctx to end. A
// shared Admission ends the sessions of every edge that shares it.
func (h *Handler) Shutdown(ctx context.Context) error { return h.adm.Shutdown(ctx) }

// ServeHTTP implements http.Handler for POST /webrtc/offer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an SDP offer", http.StatusMethodNotAllowed)
		return
	}
	if !transport.OriginAllowed(r, h.cfg.Origins, h.cfg.Hosts...) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
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
	// The session outlives the offer's request.
	go func() {
		defer t.Release()
		c.serve(h)
	}()

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

package webrtc

// SmallWebRTC: the signaling of Pipecat's SmallWebRTC transport
// (@pipecat-ai/small-webrtc-transport, docs/rtvi.md), on the same pion
// edge as /webrtc/offer.
//
//	POST  /api/offer, /sessions/{id}/api/offer  {sdp, type:"offer", pc_id, restart_pc, requestData?}
//	                                            → {sdp, type:"answer", pc_id}
//	PATCH the same                              {pc_id, candidates:[{candidate, sdp_mid, sdp_mline_index}]}
//
// An offer without pc_id starts a session; one with the pc_id of a live
// session renegotiates its peer connection, or, with restart_pc, replaces
// the peer connection and keeps the session. The answer carries every
// server candidate (gathering completes first: no server trickle); the
// client trickles its own with PATCH. The session's messages travel on
// the "chat" data channel (chat.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/rtvi"
)

// SmallKind is the Session.Kind of SmallWebRTC sessions.
const SmallKind = "smallwebrtc"

// ChatLabel is the label of SmallWebRTC's data channel.
const ChatLabel = "chat"

// maxCandidate bounds one trickled candidate line, in bytes.
const maxCandidate = 1024

// DefaultPingTimeout is how long a SmallWebRTC session waits for the
// client's next ping before it ends (the client pings every second).
const DefaultPingTimeout = 3 * time.Second

// vp8Codec lets the client's video sections be answered (recvonly) rather
// than rejected: voiced ignores video, but a rejected section stops the
// client's transceiver for good.
var vp8Codec = pion.RTPCodecParameters{
	RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000},
	PayloadType:        96,
}

// SmallConfig configures a SmallHandler. The zero value works.
type SmallConfig struct {
	// PingTimeout ends a session whose chat channel has carried no ping
	// for this long (default DefaultPingTimeout).
	PingTimeout time.Duration
	// Starts holds the sessions POST /start announced (the id of
	// /sessions/{id}/api/offer): the first offer for one claims it, its
	// admission ticket and its body (the session's metadata). Nil: that
	// path answers 404.
	Starts *rtvi.Registry
	// ClientMessage answers RTVI client-messages (rtvi.Config.ClientMessage).
	ClientMessage func(ctx context.Context, t string, d json.RawMessage) (any, error)
}

// smallSettings are a SmallHandler's: its base Handler's Config (with its
// defaults) and its own.
type smallSettings struct {
	Config
	SmallConfig
}

// SmallHandler serves SmallWebRTC signaling. Safe for concurrent use;
// Shutdown ends live sessions.
type SmallHandler struct {
	cfg    smallSettings
	run    transport.Factory
	api    *pion.API
	apiErr error

	mu    sync.Mutex
	peers map[string]*smallConn // live sessions by pc_id
}

// NewSmallHandler returns the SmallWebRTC handler on the edge of base: it
// takes base's configuration (origins, hosts, admission, timeouts, ICE
// servers, 1:1 NAT, ports and its UDP mux) and Factory. ConnectTimeout
// also bounds a restart: a session whose chat channel is not open again
// within it ends. Closing base closes the mux they share.
func NewSmallHandler(base *Handler, cfg SmallConfig) *SmallHandler {
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	h := &SmallHandler{cfg: smallSettings{Config: base.cfg, SmallConfig: cfg}, run: base.run, peers: map[string]*smallConn{}}
	h.api, h.apiErr = newSmallAPI(base)
	if h.apiErr == nil {
		h.apiErr = base.apiErr
	}
	return h
}

// newSmallAPI returns the pion API of SmallWebRTC sessions: base's, with
// VP8 to answer video, on base's UDP mux if it has one.
func newSmallAPI(base *Handler) (*pion.API, error) {
	m := &pion.MediaEngine{}
	if err := m.RegisterCodec(opusCodec, pion.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("webrtc: register opus: %w", err)
	}
	if err := m.RegisterCodec(vp8Codec, pion.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("webrtc: register vp8: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, fmt.Errorf("webrtc: interceptors: %w", err)
	}
	var se pion.SettingEngine
	cfg := base.cfg
	cfg.UDPPort = 0 // the mux is base's: one socket serves both handlers
	if _, err := configureICE(&se, cfg); err != nil {
		return nil, err
	}
	if mux, ok := base.mux.(ice.UDPMux); ok {
		se.SetICEUDPMux(mux)
	}
	return pion.NewAPI(pion.WithMediaEngine(m), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)), nil
}

// Sessions returns the number of live sessions of the handler's Admission.
func (h *SmallHandler) Sessions() int { return h.cfg.Admission.Sessions() }

// Shutdown shuts the handler's Admission down (see Handler.Shutdown).
func (h *SmallHandler) Shutdown(ctx context.Context) error { return h.cfg.Admission.Shutdown(ctx) }

// offerRequest is the body of a SmallWebRTC offer.
type offerRequest struct {
	SDP         string          `json:"sdp"`
	Type        string          `json:"type"`
	PCID        *string         `json:"pc_id"`
	RestartPC   bool            `json:"restart_pc"`
	RequestData json.RawMessage `json:"requestData,omitempty"`
}

// offerAnswer is the reply to an offer.
type offerAnswer struct {
	SDP  string `json:"sdp"`
	Type string `json:"type"`
	PCID string `json:"pc_id"`
}

// patchRequest is the body of a PATCH: the client's trickled candidates.
type patchRequest struct {
	PCID       string         `json:"pc_id"`
	Candidates []iceCandidate `json:"candidates"`
}

type iceCandidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdp_mid"`
	SDPMLineIndex *uint16 `json:"sdp_mline_index"`
}

// httpError is an error with the HTTP status it is answered with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errStatus(status int, format string, a ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, a...)}
}

// writeError answers err as JSON {"detail": message}, which Pipecat's
// clients show (they read "info" or "detail").
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"detail": err.Error()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// ServeHTTP serves POST and PATCH on /api/offer and on
// /sessions/{id}/api/offer (the id in r.PathValue("id"), or in the path
// when the handler is not mounted on a pattern with {id}).
func (h *SmallHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPatch {
		w.Header().Set("Allow", "POST, PATCH")
		writeError(w, errStatus(http.StatusMethodNotAllowed, "POST an offer or PATCH ICE candidates"))
		return
	}
	if !transport.OriginAllowed(r, h.cfg.Origins, h.cfg.Hosts...) {
		writeError(w, errStatus(http.StatusForbidden, "origin not allowed"))
		return
	}
	if h.apiErr != nil {
		writeError(w, h.apiErr)
		return
	}
	startID, onSession := sessionPathID(r)
	if onSession && startID == "" {
		writeError(w, errStatus(http.StatusNotFound, "no session id in the path"))
		return
	}
	body, err := readJSONBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	if r.Method == http.MethodPatch {
		err = h.patch(startID, body)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, map[string]string{"status": "success"})
		return
	}
	ans, err := h.offer(r.Context(), transport.ClientAddr(r), startID, onSession, body)
	if err != nil {
		h.cfg.Logger.Info("smallwebrtc offer refused", "err", err)
		writeError(w, err)
		return
	}
	writeJSON(w, ans)
}

// sessionPathID returns the {id} of /sessions/{id}/api/offer and whether
// the request is on that path.
func sessionPathID(r *http.Request) (string, bool) {
	if id := r.PathValue("id"); id != "" {
		return id, true
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/sessions/")
	if !ok {
		return "", false
	}
	id, _, _ := strings.Cut(rest, "/")
	return id, true
}

// readJSONBody reads a JSON request body of at most MaxOffer bytes.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, errStatus(http.StatusUnsupportedMediaType, "Content-Type %q: want application/json", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOffer))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errStatus(http.StatusRequestEntityTooLarge, "body over %d bytes", mbe.Limit)
		}
		return nil, errStatus(http.StatusBadRequest, "reading the body: %v", err)
	}
	return body, nil
}

// decodeStrict decodes a JSON object into v, refusing unknown fields and
// trailing data.
func decodeStrict(body []byte, what string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errStatus(http.StatusBadRequest, "%s: %s", what, transport.JSONError(err))
	}
	if dec.More() {
		return errStatus(http.StatusBadRequest, "%s: data after the JSON object", what)
	}
	return nil
}

// offer answers an offer: a new session, a renegotiation or a restart.
func (h *SmallHandler) offer(ctx context.Context, addr, startID string, onSession bool, body []byte) (_ *offerAnswer, err error) {
	var req offerRequest
	if err := decodeStrict(body, "offer", &req); err != nil {
		return nil, err
	}
	if req.Type != "offer" {
		return nil, errStatus(http.StatusBadRequest, "type %q, want \"offer\"", req.Type)
	}
	if err := checkOffer(req.SDP); err != nil {
		return nil, errStatus(http.StatusBadRequest, "%v", err)
	}
	ncand, _, err := checkLimits(req.SDP, offerLimits{maxCandidates: h.cfg.MaxCandidates, maxSections: h.cfg.MaxMediaSections})
	if err != nil {
		return nil, errStatus(http.StatusBadRequest, "%v", err)
	}
	if req.PCID != nil && *req.PCID != "" {
		c, err := h.peer(*req.PCID, startID)
		if err != nil {
			return nil, err
		}
		sdp, err := c.negotiate(ctx, req.SDP, ncand, req.RestartPC)
		if err != nil {
			return nil, err
		}
		return &offerAnswer{SDP: sdp, Type: "answer", PCID: c.ID()}, nil
	}

	// A start holds its admission until its offer claims it; any other
	// offer is admitted before the peer connection is built.
	meta := req.RequestData
	var t *transport.Ticket
	if onSession {
		start, ok := h.lookup(startID)
		if !ok {
			return nil, errStatus(http.StatusNotFound, "unknown session %q (it expired, was connected, or never started)", startID)
		}
		meta = start.Body
	} else if t, err = h.cfg.Admission.AdmitFrom(addr); err != nil {
		return nil, errStatus(transport.RefuseStatus(err), "%v", err)
	}
	fail := func(err error) (*offerAnswer, error) {
		if t != nil {
			t.Release()
		}
		return nil, err
	}
	c, err := newSmallConn(h, startID, meta)
	if err != nil {
		return fail(err)
	}
	sdp, err := c.negotiate(ctx, req.SDP, ncand, false)
	if err != nil {
		c.Close(nil)
		c.closePeers()
		return fail(err)
	}
	if onSession {
		if _, t, err = h.cfg.Starts.Claim(startID, rtvi.TransportWebRTC); err != nil {
			// Claimed by a concurrent offer, or expired meanwhile.
			c.Close(nil)
			c.closePeers()
			return nil, errStatus(http.StatusConflict, "session %q is already connected (re-offer with its pc_id), or expired", startID)
		}
	}
	h.add(c)
	t.Attach(c.Close)
	go func() {
		defer t.Release()
		defer h.remove(c)
		c.serve()
	}()
	return &offerAnswer{SDP: sdp, Type: "answer", PCID: c.ID()}, nil
}

// patch adds the client's trickled candidates to its peer connection.
func (h *SmallHandler) patch(startID string, body []byte) error {
	var req patchRequest
	if err := decodeStrict(body, "candidates", &req); err != nil {
		return err
	}
	if req.PCID == "" {
		return errStatus(http.StatusBadRequest, "candidates: no pc_id")
	}
	if len(req.Candidates) > h.cfg.MaxCandidates {
		return errStatus(http.StatusBadRequest, "candidates: %d candidates; at most %d are accepted", len(req.Candidates), h.cfg.MaxCandidates)
	}
	for i, cand := range req.Candidates {
		if len(cand.Candidate) > maxCandidate {
			return errStatus(http.StatusBadRequest, "candidates[%d]: over %d bytes", i, maxCandidate)
		}
	}
	c, err := h.peer(req.PCID, startID)
	if err != nil {
		return err
	}
	return c.addCandidates(req.Candidates)
}

// peer returns the live session of pcID; on /sessions/{id} it must be
// that session's.
func (h *SmallHandler) peer(pcID, startID string) (*smallConn, error) {
	h.mu.Lock()
	c := h.peers[pcID]
	h.mu.Unlock()
	if c == nil || (startID != "" && c.startID != startID) {
		return nil, errStatus(http.StatusNotFound, "unknown pc_id %q", pcID)
	}
	return c, nil
}

// lookup returns the WebRTC start startID, unclaimed.
func (h *SmallHandler) lookup(startID string) (rtvi.Start, bool) {
	if h.cfg.Starts == nil {
		return rtvi.Start{}, false
	}
	s, ok := h.cfg.Starts.Lookup(startID)
	return s, ok && s.Transport == rtvi.TransportWebRTC
}

func (h *SmallHandler) add(c *smallConn) {
	h.mu.Lock()
	h.peers[c.ID()] = c
	h.mu.Unlock()
}

func (h *SmallHandler) remove(c *smallConn) {
	h.mu.Lock()
	delete(h.peers, c.ID())
	h.mu.Unlock()
}

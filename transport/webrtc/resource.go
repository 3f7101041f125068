package webrtc

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/pion/ice/v4"
	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/transport"
)

// The WHIP session resource (RFC 9725 section 4.3): the answer's Location
// names it; the peer PATCHes it with trickled ICE candidates (RFC 8840
// application/trickle-ice-sdpfrag) and DELETEs it to end the session.
// Knowing its URL (128 random bits) is what lets a client change it.

// DefaultResourcePath is where session resources live by default.
const DefaultResourcePath = "/webrtc/session/"

// ErrDeleted ends a session whose peer DELETEd its resource.
var ErrDeleted = fmt.Errorf("webrtc: session ended by DELETE: %w", transport.ErrClientGone)

// sdpFragType is the media type of a trickle PATCH (RFC 8840).
const sdpFragType = "application/trickle-ice-sdpfrag"

type resource struct {
	c     *conn
	etag  string
	ufrag string // the peer's ICE username fragment, from its offer

	mu         sync.Mutex
	candidates int // the peer's candidates so far, offer included
}

// resources is a Handler's live session resources by id.
type resources struct {
	mu sync.Mutex
	m  map[string]*resource
}

func (rs *resources) add(r *resource) (id string) {
	var b [16]byte
	rand.Read(b[:])
	id = hex.EncodeToString(b[:])
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = map[string]*resource{}
	}
	rs.m[id] = r
	return id
}

func (rs *resources) get(id string) *resource {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.m[id]
}

func (rs *resources) remove(id string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.m, id)
}

// cors adds the CORS headers for an allowed cross-origin page (Fetch
// standard) and answers a preflight. It reports whether the request is
// done: a preflight, or a refused origin.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request, methods string) (done bool) {
	origin := r.Header.Get("Origin")
	if !transport.OriginAllowed(r, h.cfg.Origins, h.cfg.Hosts...) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return true
	}
	hd := w.Header()
	if origin != "" {
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Add("Vary", "Origin")
		hd.Set("Access-Control-Expose-Headers", "Location, Link, ETag")
	}
	if r.Method != http.MethodOptions {
		return false
	}
	hd.Set("Allow", methods+", OPTIONS")
	if origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		hd.Set("Access-Control-Allow-Methods", methods+", OPTIONS")
		hd.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, If-Match")
		hd.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// ServeICEServers serves GET /webrtc/ice-servers: the configured STUN and
// TURN servers, as a page passes them to RTCPeerConnection.
func (h *Handler) ServeICEServers(w http.ResponseWriter, r *http.Request) {
	if h.cors(w, r, http.MethodGet) {
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, OPTIONS")
		http.Error(w, "GET the ICE servers", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(h.iceServersJSON())
}

// ServeResource serves a session resource at Config.ResourcePath + id:
// PATCH adds trickled ICE candidates (204), DELETE ends the session (200),
// OPTIONS answers a CORS preflight. An ICE restart (a new ufrag) gets 422:
// it is not supported.
func (h *Handler) ServeResource(w http.ResponseWriter, r *http.Request) {
	if h.cors(w, r, "PATCH, DELETE") {
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, h.cfg.ResourcePath)
	var res *resource
	if ok && id != "" && !strings.Contains(id, "/") {
		res = h.res.get(id)
	}
	if res == nil {
		http.Error(w, "no such WebRTC session", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodDelete:
		res.c.Close(ErrDeleted)
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		status, err := h.patch(w, r, res)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "PATCH, DELETE, OPTIONS")
		http.Error(w, "PATCH trickled candidates or DELETE the session", http.StatusMethodNotAllowed)
	}
}

// patch applies a trickle-ice-sdpfrag body (RFC 8840 section 9) to the
// session: the candidates are parsed and counted before any is added.
func (h *Handler) patch(w http.ResponseWriter, r *http.Request, res *resource) (int, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != sdpFragType {
		return http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type must be %s", sdpFragType)
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != res.etag {
		return http.StatusPreconditionFailed, errors.New("If-Match does not match the session's ETag")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOffer))
	if err != nil {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("candidates over %d bytes", MaxOffer)
	}
	ufrag, cands, err := parseSDPFrag(string(body))
	if err != nil {
		return http.StatusBadRequest, err
	}
	if ufrag != "" && ufrag != res.ufrag {
		return http.StatusUnprocessableEntity, errors.New("ICE restart (a new ice-ufrag) is not supported: make a new offer")
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if n := res.candidates + len(cands); n > h.cfg.MaxCandidates {
		return http.StatusBadRequest, fmt.Errorf("%d ICE candidates for the session; at most %d are accepted", n, h.cfg.MaxCandidates)
	}
	for _, c := range cands {
		if err := res.c.pc.AddICECandidate(c); err != nil {
			return http.StatusBadRequest, fmt.Errorf("bad candidate %q: %v", c.Candidate, err)
		}
		res.candidates++
	}
	return 0, nil
}

// parseSDPFrag reads a trickle-ice-sdpfrag body (RFC 8840 section 9): its
// ice-ufrag, if any, and its candidates, each checked (RFC 8839 grammar)
// and tagged with the mid of its media section.
func parseSDPFrag(body string) (ufrag string, cands []pion.ICECandidateInit, err error) {
	mid, midSet := "", false
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "m="):
			mid, midSet = "", false
		case strings.HasPrefix(line, "a=mid:"):
			mid, midSet = strings.TrimPrefix(line, "a=mid:"), true
		case strings.HasPrefix(line, "a=candidate:"):
			c := pion.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a=")}
			if _, err := ice.UnmarshalCandidate(c.Candidate); err != nil {
				return "", nil, fmt.Errorf("bad candidate %q: %v", c.Candidate, err)
			}
			if midSet {
				m := mid
				c.SDPMid = &m
			} else {
				var first uint16
				c.SDPMLineIndex = &first
			}
			cands = append(cands, c)
		}
	}
	return ufrag, cands, nil
}

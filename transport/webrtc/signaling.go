package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/audio/opus"
	"github.com/voiced-dev/voiced/transport"
)

// opusCodec is the only codec offered: Opus, 48 kHz, with in-band FEC.
var opusCodec = pion.RTPCodecParameters{
	RTPCodecCapability: pion.RTPCodecCapability{
		MimeType: pion.MimeTypeOpus, ClockRate: opus.Rate, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	},
	PayloadType: 111,
}

// newAPI builds the pion API of a handler: Opus, the default
// interceptors, and the ICE settings of cfg (ice.go). It returns the
// single-port UDP mux to close with the handler, if any.
func newAPI(cfg Config) (*pion.API, io.Closer, error) {
	m := &pion.MediaEngine{}
	if err := m.RegisterCodec(opusCodec, pion.RTPCodecTypeAudio); err != nil {
		return nil, nil, fmt.Errorf("webrtc: register opus: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, nil, fmt.Errorf("webrtc: interceptors: %w", err)
	}
	if err := CheckICEServers(cfg.ICEServers); err != nil {
		return nil, nil, fmt.Errorf("webrtc: %w", err)
	}
	var se pion.SettingEngine
	mux, err := configureICE(&se, cfg)
	if err != nil {
		return nil, nil, err
	}
	return pion.NewAPI(pion.WithMediaEngine(m), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)), mux, nil
}

// LoopbackAddr reports whether a listen address (host:port) only accepts
// clients on this machine, in which case Config.Loopback suits it.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// offerJSON is the JSON form of an offer or answer (RTCSessionDescriptionInit).
type offerJSON struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// readOffer reads the request body: application/sdp, or application/json
// {"type":"offer","sdp":"..."}. It reports whether the client wants JSON.
func readOffer(w http.ResponseWriter, r *http.Request) (offer string, asJSON bool, status int, err error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return "", false, http.StatusUnsupportedMediaType, errors.New("Content-Type must be application/sdp or application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOffer))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", false, http.StatusRequestEntityTooLarge, fmt.Errorf("offer over %d bytes", MaxOffer)
		}
		return "", false, http.StatusBadRequest, fmt.Errorf("reading offer: %v", err)
	}
	switch mt {
	case "application/sdp":
		offer = string(body)
	case "application/json":
		asJSON = true
		var o offerJSON
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			return "", true, http.StatusBadRequest, fmt.Errorf("offer is not a JSON {type, sdp} object: %s", transport.JSONError(err))
		}
		if o.Type != "offer" {
			return "", true, http.StatusBadRequest, fmt.Errorf("type %q, want \"offer\"", o.Type)
		}
		offer = o.SDP
	default:
		return "", false, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: want application/sdp or application/json", mt)
	}
	if err := checkOffer(offer); err != nil {
		return "", asJSON, http.StatusBadRequest, err
	}
	return offer, asJSON, 0, nil
}

// checkOffer parses an offer (RFC 8866) and checks that it has what a
// session needs: an audio section that can send Opus.
func checkOffer(offer string) error {
	if !utf8.ValidString(offer) {
		return errors.New("malformed SDP: not UTF-8")
	}
	if strings.TrimSpace(offer) == "" {
		return errors.New("malformed SDP: empty offer")
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return fmt.Errorf("malformed SDP: %v", err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.Contains(strings.ToLower(a.Value), "opus/48000") {
				return nil
			}
		}
		return errors.New("the offer's audio section has no Opus (opus/48000)")
	}
	return errors.New("the offer has no audio section")
}

// accept builds the peer connection for offer and returns its answer, with
// the ICE candidates gathered.
func (h *Handler) accept(ctx context.Context, offer string) (*conn, string, int, error) {
	pc, err := h.api.NewPeerConnection(pion.Configuration{ICEServers: h.cfg.ICEServers})
	if err != nil {
		return nil, "", http.StatusInternalServerError, fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	c, err := newConn(h, pc)
	if err != nil {
		pc.Close()
		return nil, "", http.StatusInternalServerError, err
	}
	fail := func(status int, err error) (*conn, string, int, error) {
		c.pc.Close()
		c.senderWG.Wait()
		return nil, "", status, err
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("bad offer: %v", err))
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("cannot answer the offer: %v", err))
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return fail(http.StatusInternalServerError, fmt.Errorf("webrtc: set local description: %w", err))
	}
	t := time.NewTimer(h.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return fail(http.StatusInternalServerError, errors.New("webrtc: ICE gathering timed out"))
	case <-ctx.Done():
		return fail(http.StatusServiceUnavailable, ctx.Err())
	}
	return c, pc.LocalDescription().SDP, 0, nil
}

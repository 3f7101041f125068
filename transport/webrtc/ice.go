package webrtc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/stun/v4"
	pion "github.com/pion/webrtc/v4"
)

// Defaults of the limits on what one peer may ask of the server's ICE.
const (
	// DefaultMaxCandidates bounds the ICE candidates a peer gives one
	// session, in its offer and its trickled PATCHes together.
	DefaultMaxCandidates = 50
	// DefaultMaxMediaSections bounds the m= sections of an offer (a voice
	// session needs two: audio and the data channel).
	DefaultMaxMediaSections = 4
	// DefaultMaxBindingRequests bounds the STUN connectivity checks the
	// server sends on one candidate pair before it gives the pair up.
	DefaultMaxBindingRequests = 7
)

// configureICE applies cfg's ICE settings to se: loopback only, or the
// addresses, ports, announced IPs and limits of a server others reach. It
// returns the single-port UDP mux to close with the handler, if any.
func configureICE(se *pion.SettingEngine, cfg Config) (io.Closer, error) {
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	se.SetICEMaxBindingRequests(uint16(min(cfg.MaxBindingRequests, 65535)))
	if cfg.Loopback {
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	} else {
		// A peer's candidates must not aim the server's checks at the
		// server's own loopback services, or at broadcast and multicast.
		se.SetRemoteIPFilter(remoteIPAllowed)
	}
	if len(cfg.PublicIPs) > 0 {
		for _, ip := range cfg.PublicIPs {
			if net.ParseIP(ip) == nil {
				return nil, fmt.Errorf("webrtc: public IP %q is not an IP address", ip)
			}
		}
		// 1:1 NAT: the host candidates carry the public address instead
		// of the private one.
		if err := se.SetICEAddressRewriteRules(pion.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: pion.ICECandidateTypeHost,
			Mode:            pion.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("webrtc: public IPs: %w", err)
		}
	}
	if cfg.UDPPort != 0 {
		if cfg.UDPPort < 0 || cfg.UDPPort > 65535 {
			return nil, fmt.Errorf("webrtc: UDP port %d: want 1..65535", cfg.UDPPort)
		}
		if len(cfg.PublicIPs) > 0 && !cfg.Loopback {
			// Behind 1:1 NAT the one announced address stands for every
			// local one: a single socket on the wildcard address takes
			// what the NAT forwards, whichever local address it targets.
			// (One socket per address would give the announced candidate
			// to one of them only.)
			conn, err := net.ListenUDP("udp", &net.UDPAddr{Port: cfg.UDPPort})
			if err != nil {
				return nil, fmt.Errorf("webrtc: UDP port %d: %w", cfg.UDPPort, err)
			}
			mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn})
			se.SetICEUDPMux(mux)
			return mux, nil
		}
		// Link-local addresses reach no one beyond the link, and a fresh
		// one (IPv6 duplicate address detection) cannot be bound yet.
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithIPFilter(func(ip net.IP) bool { return !ip.IsLinkLocalUnicast() })}
		if cfg.Loopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback(),
				ice.UDPMuxFromPortWithInterfaceFilter(func(name string) bool { return name == "lo" }),
				ice.UDPMuxFromPortWithIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }),
				ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4))
		}
		mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
		if err != nil {
			return nil, fmt.Errorf("webrtc: UDP port %d: %w", cfg.UDPPort, err)
		}
		se.SetICEUDPMux(mux)
		return mux, nil
	}
	if cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, fmt.Errorf("webrtc: UDP ports %d-%d: %w", cfg.UDPPortMin, cfg.UDPPortMax, err)
		}
	}
	return nil, nil
}

func remoteIPAllowed(ip net.IP) bool {
	return !ip.IsLoopback() && !ip.IsUnspecified() && !ip.IsMulticast() &&
		!ip.IsInterfaceLocalMulticast() && !ip.IsLinkLocalMulticast() && !ip.Equal(net.IPv4bcast)
}

// CheckICEServers checks the URLs of ICE servers (RFC 7064 stun:, RFC 7065
// turn:, turns:): a TURN server needs a username and a credential.
func CheckICEServers(servers []pion.ICEServer) error {
	var errs []error
	for i, s := range servers {
		if len(s.URLs) == 0 {
			errs = append(errs, fmt.Errorf("ICE server %d has no URL", i+1))
		}
		for _, u := range s.URLs {
			parsed, err := stun.ParseURI(u)
			if err != nil {
				errs = append(errs, fmt.Errorf("ICE server URL %q: %v", u, err))
				continue
			}
			turn := parsed.Scheme == stun.SchemeTypeTURN || parsed.Scheme == stun.SchemeTypeTURNS
			if turn && (s.Username == "" || s.Credential == nil || s.Credential == "") {
				errs = append(errs, fmt.Errorf("ICE server URL %q: a TURN server needs a username and a credential", u))
			}
		}
	}
	return errors.Join(errs...)
}

// ICEServersJSON is the body of GET /webrtc/ice-servers: the servers as a
// page passes them to new RTCPeerConnection({iceServers}).
type ICEServersJSON struct {
	ICEServers []iceServerJSON `json:"iceServers"`
}

type iceServerJSON struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

func (h *Handler) iceServersJSON() ICEServersJSON {
	out := ICEServersJSON{ICEServers: []iceServerJSON{}}
	for _, s := range h.cfg.ICEServers {
		cred, _ := s.Credential.(string)
		out.ICEServers = append(out.ICEServers, iceServerJSON{URLs: s.URLs, Username: s.Username, Credential: cred})
	}
	return out
}

// linkHeaders adds the ICE servers to an answer as RFC 9725 (WHIP)
// section 4.6 Link headers.
func (h *Handler) linkHeaders(hd http.Header) {
	for _, s := range h.cfg.ICEServers {
		cred, _ := s.Credential.(string)
		for _, u := range s.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if s.Username != "" {
				l += fmt.Sprintf(`; username=%q; credential=%q; credential-type="password"`, s.Username, cred)
			}
			hd.Add("Link", l)
		}
	}
}

// offerLimits counts what an offer asks of the server's ICE.
type offerLimits struct {
	maxCandidates, maxSections int
}

// checkLimits refuses an offer (already checked by checkOffer) with too
// many media sections or ICE candidates. It returns the number of
// candidates and the peer's ICE username fragment.
func checkLimits(offer string, lim offerLimits) (n int, ufrag string, err error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return 0, "", fmt.Errorf("malformed SDP: %v", err)
	}
	if m := len(d.MediaDescriptions); m > lim.maxSections {
		return 0, "", fmt.Errorf("the offer has %d media sections; at most %d are accepted", m, lim.maxSections)
	}
	count := func(attrs []sdp.Attribute) {
		for _, a := range attrs {
			switch a.Key {
			case "candidate":
				n++
			case "ice-ufrag":
				if ufrag == "" {
					ufrag = a.Value
				}
			}
		}
	}
	count(d.Attributes)
	for _, m := range d.MediaDescriptions {
		count(m.Attributes)
	}
	if n > lim.maxCandidates {
		return 0, "", fmt.Errorf("the offer has %d ICE candidates; at most %d are accepted", n, lim.maxCandidates)
	}
	return n, ufrag, nil
}

// resourceURL returns the WHIP session resource path for id under prefix.
func resourceURL(prefix, id string) string {
	return strings.TrimSuffix(prefix, "/") + "/" + url.PathEscape(id)
}

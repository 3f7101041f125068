package server

import (
	"errors"
	"fmt"

	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/transport/webrtc"
)

// webrtcConfig is the WebRTC transport's configuration from [server] and
// [webrtc], with the TURN credentials read through getenv. It leaves
// Admission and Logger to the caller.
func webrtcConfig(cfg config.Config, getenv func(string) string) (webrtc.Config, error) {
	w := cfg.WebRTC
	rc := webrtc.Config{
		Origins:            cfg.Server.Origins,
		Hosts:              cfg.Server.AllowedHosts,
		InputBurst:         cfg.Server.InputBurst,
		InputMaxAhead:      cfg.Server.InputMaxAhead,
		Loopback:           webrtc.LoopbackAddr(cfg.Server.Addr),
		PublicIPs:          w.PublicIPs,
		UDPPortMin:         uint16(w.UDPPortMin),
		UDPPortMax:         uint16(w.UDPPortMax),
		UDPPort:            w.UDPPort,
		MaxCandidates:      w.MaxCandidates,
		MaxMediaSections:   w.MaxMediaSections,
		MaxBindingRequests: w.MaxBindingRequests,
		PlayoutLead:        w.PlayoutLead,
	}
	var errs []error
	for i, s := range w.ICEServers {
		is := pion.ICEServer{URLs: s.URLs}
		if s.UsernameEnv != "" {
			is.Username = getenv(s.UsernameEnv)
			cred := getenv(s.CredentialEnv)
			if is.Username == "" || cred == "" {
				errs = append(errs, fmt.Errorf("webrtc.ice_servers[%d]: set $%s and $%s", i, s.UsernameEnv, s.CredentialEnv))
			}
			is.Credential = cred
		}
		rc.ICEServers = append(rc.ICEServers, is)
	}
	if err := webrtc.CheckICEServers(rc.ICEServers); err != nil {
		errs = append(errs, fmt.Errorf("webrtc.ice_servers: %w", err))
	}
	return rc, errors.Join(errs...)
}

// CheckWebRTC runs the checks of [webrtc] that serve runs before it binds
// anything (for check-config): ICE server URLs and TURN credentials in the
// environment.
func CheckWebRTC(cfg config.Config, getenv func(string) string) error {
	_, err := webrtcConfig(cfg, getenv)
	return err
}

package config

import (
	"strings"
	"testing"
)

func TestWebRTCSection(t *testing.T) {
	c, err := Parse([]byte("[webrtc]\npublic_ips = [\"203.0.113.7\"]\nudp_port = 3478\n[[webrtc.ice_servers]]\nurls = [\"stun:stun.example:3478\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := c.WebRTC
	if w.UDPPort != 3478 || len(w.PublicIPs) != 1 || len(w.ICEServers) != 1 || w.MaxCandidates != 50 || w.MaxMediaSections != 4 || w.MaxBindingRequests != 7 {
		t.Errorf("decoded %+v", w)
	}
	for _, tc := range []struct{ file, err string }{
		{"[webrtc]\nudp_port_min = 10000\n", "webrtc.udp_port_min 10000"},
		{"[webrtc]\nudp_port_min = 20000\nudp_port_max = 10000\n", "want both 0"},
		{"[webrtc]\nudp_port = 70000\n", "webrtc.udp_port 70000"},
		{"[webrtc]\nmax_candidates = -1\n", "webrtc.max_candidates -1"},
		{"[webrtc]\npublic_ips = [\"host.example\"]\n", "want an IP address"},
		{"[[webrtc.ice_servers]]\nusername_env = \"U\"\n", "no urls"},
		{"[[webrtc.ice_servers]]\nurls = [\"turn:t.example\"]\nusername_env = \"U\"\n", "both username_env and credential_env"},
		{"[webrtc]\nstun = \"x\"\n", "stun"},
		{"[webrtc]\nplayout_lead = \"2s\"\n", "webrtc.playout_lead 2s"},
		{"[webrtc]\nplayout_lead = \"-20ms\"\n", "webrtc.playout_lead -20ms"},
	} {
		if _, err := Parse([]byte(tc.file)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want %q", tc.file, err, tc.err)
		}
	}
}

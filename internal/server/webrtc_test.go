package server

import (
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/internal/config"
)

// TestWebRTCRoutesAuth: the session resources and the ICE servers are
// behind authentication like the offer; CORS preflights, which carry no
// credentials by the Fetch standard, pass it (and do nothing else).
func TestWebRTCRoutesAuth(t *testing.T) {
	t.Setenv("VOICED_API_KEY", testKey)
	h := newTest(t, nil).Handler()
	bearer := map[string]string{"Authorization": "Bearer " + testKey}
	pre := map[string]string{"Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": "POST"}
	for _, tc := range []struct {
		method, target string
		hdr            map[string]string
		want           int
	}{
		{"PATCH", "/webrtc/session/abc", nil, 401},
		{"DELETE", "/webrtc/session/abc", nil, 401},
		{"GET", "/webrtc/ice-servers", nil, 401},
		{"OPTIONS", "/webrtc/offer", nil, 401},        // not a preflight
		{"PATCH", "/webrtc/session/abc", bearer, 503}, // past auth: not loaded
		{"GET", "/webrtc/ice-servers", bearer, 503},
		{"OPTIONS", "/webrtc/offer", pre, 503}, // a preflight passes auth
		{"OPTIONS", "/webrtc/session/abc", pre, 503},
		{"OPTIONS", "/webrtc/ice-servers", pre, 503},
		{"GET", "/webrtc/offer", bearer, 405},
	} {
		w := do(t, h, tc.method, tc.target, tc.hdr, "")
		if w.Code != tc.want {
			t.Errorf("%s %s %v: %d %q, want %d", tc.method, tc.target, tc.hdr, w.Code, w.Body, tc.want)
		}
	}
}

func TestCheckWebRTC(t *testing.T) {
	turn := func(c *config.Config) {
		c.WebRTC.ICEServers = []config.ICEServer{
			{URLs: []string{"stun:stun.example:3478"}},
			{URLs: []string{"turn:turn.example:3478"}, UsernameEnv: "T_USER", CredentialEnv: "T_CRED"},
		}
	}
	env := map[string]string{"T_USER": "u", "T_CRED": "c"}
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		env  map[string]string
		err  string
	}{
		{"none", nil, nil, ""},
		{"turn with its variables", turn, env, ""},
		{"turn without", turn, nil, "set $T_USER and $T_CRED"},
		{"turn with no variables named", func(c *config.Config) {
			c.WebRTC.ICEServers = []config.ICEServer{{URLs: []string{"turn:turn.example:3478"}}}
		}, nil, "needs a username and a credential"},
		{"bad URL", func(c *config.Config) {
			c.WebRTC.ICEServers = []config.ICEServer{{URLs: []string{"http://stun.example"}}}
		}, nil, "http://stun.example"},
	} {
		cfg := config.Default()
		if tc.edit != nil {
			tc.edit(&cfg)
		}
		err := CheckWebRTC(cfg, func(k string) string { return tc.env[k] })
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}

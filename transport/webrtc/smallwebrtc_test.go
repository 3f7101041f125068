package webrtc_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/rtvi"
	"github.com/voiced-dev/voiced/transport/webrtc"
)

type smallServer struct {
	h    *webrtc.SmallHandler
	fa   *factory
	base string
	url  string // /api/offer
}

// smallConfig configures a test's handlers: the base Handler's and the
// SmallHandler's.
type smallConfig struct {
	webrtc.Config
	webrtc.SmallConfig
}

func newSmallServer(t *testing.T, cfg smallConfig) *smallServer {
	t.Helper()
	checkGoroutines(t)
	cfg.Loopback = true
	fa := &factory{}
	base := webrtc.NewHandler(cfg.Config, fa.run)
	t.Cleanup(func() { base.Close() })
	h := webrtc.NewSmallHandler(base, cfg.SmallConfig)
	mux := http.NewServeMux()
	mux.Handle("POST /webrtc/offer", base)
	mux.Handle("/api/offer", h)
	mux.Handle("/sessions/{id}/api/offer", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &smallServer{h: h, fa: fa, base: srv.URL, url: srv.URL + "/api/offer"}
}

// converse asks the bot (the fake pipeline) with typed text and waits for
// its answer on the chat channel and its audio on mid 0.
func converse(t *testing.T, c *smallClient, text string) {
	t.Helper()
	since := time.Now()
	audio := c.audioPackets()
	c.rtvi("send-text", map[string]any{"content": text, "options": map[string]any{}})
	if !waitFor(10*time.Second, func() bool {
		return len(c.received(`echo: `+text, since)) > 0 && c.audioPackets() >= audio+9
	}) {
		t.Fatalf("no spoken answer to %q (%d packets); messages:\n%s", text, c.audioPackets()-audio, c.all())
	}
}

func endOf(t *testing.T, r *record) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(15 * time.Second):
		t.Fatal("the session did not end")
		return nil
	}
}

// TestSmallConversation: an offer without pc_id starts a session whose
// answer has the server's candidates, answers video (recvonly) rather
// than rejecting it, and takes the client's trickled candidates; the chat
// channel carries RTVI (client-ready → bot-ready, send-text → the bot's
// answer) and mid 0 the bot's voice. disconnect-bot ends the session
// with peerLeft before the server hangs up.
func TestSmallConversation(t *testing.T) {
	s := newSmallServer(t, smallConfig{})
	c := newSmallClient(t, s.url)
	answer := c.connect(false)
	if !strings.Contains(answer, "m=video 9") || !strings.Contains(answer, "a=recvonly") {
		t.Errorf("video not answered recvonly:\n%s", answer)
	}
	c.rtvi("client-ready", map[string]any{"version": "2.1.0", "about": map[string]any{"library": "test"}})
	if !waitFor(10*time.Second, func() bool { return len(c.received(`"type":"bot-ready"`, time.Time{})) > 0 }) {
		t.Fatalf("no bot-ready; messages:\n%s", c.all())
	}
	if k := s.fa.last().kind; k != webrtc.SmallKind {
		t.Errorf("session kind %q, want %q", k, webrtc.SmallKind)
	}
	converse(t, c, "hello")
	c.rtvi("disconnect-bot", map[string]any{})
	if err := endOf(t, s.fa.last()); err != nil {
		t.Errorf("session ended with %v, want nil", err)
	}
	if !waitFor(10*time.Second, func() bool { return len(c.received("peerLeft", time.Time{})) > 0 }) {
		t.Errorf("no peerLeft; messages:\n%s", c.all())
	}
	select {
	case <-c.gone:
	case <-time.After(15 * time.Second):
		t.Error("the server did not close the peer connection")
	}
}

// TestSmallSharedPort: with one UDP port (webrtc.udp_port), SmallWebRTC
// sessions share the base handler's mux with /webrtc/offer's: both kinds
// answer with candidates on that port and both talk.
func TestSmallSharedPort(t *testing.T) {
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	s := newSmallServer(t, smallConfig{Config: webrtc.Config{UDPPort: port}})
	c := newSmallClient(t, s.url)
	answer := c.connect(false)
	w := newClient(t)
	w.connect(s.base+"/webrtc/offer", false)
	for i, sdp := range []string{answer, w.pc.RemoteDescription().SDP} {
		addrs := candidateAddrs(sdp)
		if len(addrs) == 0 {
			t.Fatalf("answer %d: no candidates", i)
		}
		for _, a := range addrs {
			if strings.Fields(a)[1] != strconv.Itoa(port) {
				t.Errorf("answer %d: candidate %q not on the mux port %d", i, a, port)
			}
		}
	}
	converse(t, c, "small")
	ready(t, w)
	w.send(map[string]string{"type": "text", "text": "whip"})
	// Its audio too: the track has arrived before the client's cleanup.
	if !waitFor(10*time.Second, func() bool {
		return w.count("bot_text", time.Time{}) > 0 && w.audioBetween(time.Time{}, time.Now()) > 0
	}) {
		t.Error("no answer on /webrtc/offer over the shared port")
	}
}

// TestSmallRenegotiate: a re-offer with the same pc_id renegotiates the
// same peer connection, and the session goes on.
func TestSmallRenegotiate(t *testing.T) {
	s := newSmallServer(t, smallConfig{})
	c := newSmallClient(t, s.url)
	c.connect(false)
	converse(t, c, "one")
	c.negotiate(c.pc, false)
	converse(t, c, "two")
	if n := len(s.fa.sessions); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
}

// TestSmallRestart: restart_pc replaces the peer connection (a new one,
// with its own chat channel) and keeps the session: the conversation
// goes on over the new one, and the old one's closing ends nothing.
func TestSmallRestart(t *testing.T) {
	s := newSmallServer(t, smallConfig{})
	c := newSmallClient(t, s.url)
	c.connect(false)
	converse(t, c, "before")
	old := c.gone
	c.connect(true)
	select {
	case <-old:
	case <-time.After(10 * time.Second):
		t.Error("the old peer connection was not closed")
	}
	converse(t, c, "after")
	r := s.fa.last()
	if n := len(s.fa.sessions); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
	select {
	case <-r.done:
		t.Fatalf("the session ended: %v", r.err)
	default:
	}
}

// TestSmallPingTimeout: a client that stops pinging is gone after
// PingTimeout: peerLeft, then the session ends with ErrIdle.
func TestSmallPingTimeout(t *testing.T) {
	s := newSmallServer(t, smallConfig{SmallConfig: webrtc.SmallConfig{PingTimeout: 500 * time.Millisecond}})
	c := newSmallClient(t, s.url)
	c.connect(false)
	converse(t, c, "hi")
	c.stopPings()
	err := endOf(t, s.fa.last())
	if !errors.Is(err, webrtc.ErrIdle) {
		t.Errorf("session ended with %v, want ErrIdle", err)
	}
	if !waitFor(10*time.Second, func() bool { return len(c.received("peerLeft", time.Time{})) > 0 }) {
		t.Fatalf("no peerLeft; messages:\n%s", c.all())
	}
	// The RTVI error that ends the session comes first, fatal.
	fatal := c.received(`"type":"error"`, time.Time{})
	if len(fatal) != 1 || !strings.Contains(fatal[0].Data, `"fatal":true`) || fatal[0].At.After(c.received("peerLeft", time.Time{})[0].At) {
		t.Errorf("want one fatal RTVI error before peerLeft; messages:\n%s", c.all())
	}
}

// TestSmallTrackStatus: trackStatus off makes the mic's audio silence in
// the pipeline, on makes it heard again; turning on a mic that the offer
// did not let the client send asks for renegotiate.
func TestSmallTrackStatus(t *testing.T) {
	s := newSmallServer(t, smallConfig{})
	c := newSmallClient(t, s.url)
	c.connect(false)
	// 100 ms of a 440 Hz tone at 48 kHz.
	tone := make([]int16, 4800)
	for i := range tone {
		tone[i] = int16(10000 * math.Sin(float64(i)*2*math.Pi*440/48000))
	}
	r := s.fa.last()
	// peak is the loudest sample the pipeline got from sample from on,
	// and how many it got in all.
	peak := func(from int) (int, int) {
		got, _ := r.samples()
		p := 0
		for _, v := range got[min(from, len(got)):] {
			p = max(p, abs(int(v)))
		}
		return p, len(got)
	}
	// speakUntil speaks the tone until cond holds (at most 5 s).
	speakUntil := func(cond func() bool) bool {
		for range 50 {
			if cond() {
				return true
			}
			c.speak(tone)
		}
		return cond()
	}
	status := func(on bool) {
		c.send(map[string]any{"type": "signalling", "message": map[string]any{"type": "trackStatus", "receiver_index": 0, "enabled": on}})
	}
	if !speakUntil(func() bool { p, _ := peak(0); return p > 3000 }) {
		t.Fatal("the tone did not reach the pipeline")
	}
	// Muted: once the pipeline hears silence, it hears nothing else
	// however long the tone goes on.
	status(false)
	_, n := peak(0)
	if !speakUntil(func() bool { p, m := peak(max(n, m0(r)-1600)); return m >= n+1600 && p == 0 }) {
		t.Fatal("the muted mic is still heard")
	}
	_, n = peak(0)
	for range 5 {
		c.speak(tone)
	}
	if !waitFor(5*time.Second, func() bool { _, m := peak(0); return m >= n+8000-640 }) {
		t.Fatal("the muted mic's audio stopped reaching the pipeline (it should be silence, in time)")
	}
	if p, _ := peak(n); p != 0 {
		t.Errorf("muted mic: peak %d, want silence", p)
	}
	status(true)
	_, n = peak(0)
	if !speakUntil(func() bool { p, _ := peak(n); return p > 3000 }) {
		t.Error("the unmuted mic is not heard")
	}
	if m := c.received("renegotiate", time.Time{}); len(m) > 0 {
		t.Errorf("renegotiate asked of a client whose mic was offered: %v", m)
	}

	// A client whose offer had no mic turns it on.
	c2 := newSmallClient(t, s.url)
	c2.micDir = pionRecvonly
	c2.connect(false)
	c2.send(map[string]any{"type": "signalling", "message": map[string]any{"type": "trackStatus", "receiver_index": 0, "enabled": true}})
	if !waitFor(5*time.Second, func() bool { return len(c2.received("renegotiate", time.Time{})) > 0 }) {
		t.Fatalf("no renegotiate; messages:\n%s", c2.all())
	}
	var m struct {
		Type    string `json:"type"`
		Message struct {
			Type string `json:"type"`
		} `json:"message"`
	}
	if err := json.Unmarshal([]byte(c2.received("renegotiate", time.Time{})[0].Data), &m); err != nil || m.Type != "signalling" || m.Message.Type != "renegotiate" {
		t.Errorf("renegotiate message %+v: %v", m, err)
	}
}

// TestSmallBadInput: bad requests get a 4xx with a JSON detail, and the
// server keeps serving.
func TestSmallBadInput(t *testing.T) {
	known := rtvi.NewRegistry(transport.NewAdmission(4), time.Minute)
	start, err := known.Add(rtvi.TransportWebRTC, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newSmallServer(t, smallConfig{SmallConfig: webrtc.SmallConfig{Starts: known}})
	c := newSmallClient(t, s.url)
	c.connect(false)
	goodOffer := func() string {
		pc, _, _ := newSmallClient(t, s.url).newPeer()
		defer pc.Close()
		o, err := pc.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		return o.SDP
	}()
	offer := func(fields map[string]any) string {
		m := map[string]any{"sdp": goodOffer, "type": "offer", "pc_id": nil, "restart_pc": false}
		for k, v := range fields {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	big := strings.Repeat("x", webrtc.MaxOffer+1)
	many := make([]map[string]any, webrtc.DefaultMaxCandidates+1)
	for i := range many {
		many[i] = map[string]any{"candidate": "", "sdp_mid": "0", "sdp_mline_index": 0}
	}
	manyJSON, _ := json.Marshal(map[string]any{"pc_id": c.pcID, "candidates": many})
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"get", http.MethodGet, "/api/offer", "", "", http.StatusMethodNotAllowed},
		{"not json", http.MethodPost, "/api/offer", "application/json", "v=0", http.StatusBadRequest},
		{"text/plain", http.MethodPost, "/api/offer", "text/plain", offer(nil), http.StatusUnsupportedMediaType},
		{"unknown field", http.MethodPost, "/api/offer", "application/json", offer(map[string]any{"x": 1}), http.StatusBadRequest},
		{"type answer", http.MethodPost, "/api/offer", "application/json", offer(map[string]any{"type": "answer"}), http.StatusBadRequest},
		{"bad sdp", http.MethodPost, "/api/offer", "application/json", offer(map[string]any{"sdp": "v=0\r\nnonsense"}), http.StatusBadRequest},
		{"no audio", http.MethodPost, "/api/offer", "application/json", offer(map[string]any{"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}), http.StatusBadRequest},
		{"pc_id a number", http.MethodPost, "/api/offer", "application/json", offer(map[string]any{"pc_id": 7}), http.StatusBadRequest},
		{"unknown pc_id", http.MethodPost, "/api/offer", "application/json", offer(map[string]any{"pc_id": "nope"}), http.StatusNotFound},
		{"too large", http.MethodPost, "/api/offer", "application/json", `{"sdp":"` + big + `"}`, http.StatusRequestEntityTooLarge},
		{"unknown session", http.MethodPost, "/sessions/nope/api/offer", "application/json", offer(nil), http.StatusNotFound},
		{"pc_id of another session", http.MethodPost, "/sessions/" + start.ID + "/api/offer", "application/json", offer(map[string]any{"pc_id": c.pcID}), http.StatusNotFound},
		{"patch unknown pc_id", http.MethodPatch, "/api/offer", "application/json", `{"pc_id":"nope","candidates":[]}`, http.StatusNotFound},
		{"patch no pc_id", http.MethodPatch, "/api/offer", "application/json", `{"candidates":[]}`, http.StatusBadRequest},
		{"patch bad candidate", http.MethodPatch, "/api/offer", "application/json", `{"pc_id":"` + c.pcID + `","candidates":[{"candidate":"candidate:garbage","sdp_mid":"0","sdp_mline_index":0}]}`, http.StatusBadRequest},
		{"patch too many", http.MethodPatch, "/api/offer", "application/json", string(manyJSON), http.StatusBadRequest},
		{"patch candidates not a list", http.MethodPatch, "/api/offer", "application/json", `{"pc_id":"` + c.pcID + `","candidates":{}}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := smallDo(t, tc.method, s.base+tc.path, tc.ctype, tc.body)
			if status != tc.status {
				t.Errorf("HTTP %d, want %d: %s", status, tc.status, body)
			}
			var e struct {
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Detail == "" {
				t.Errorf("body %q: want JSON {\"detail\": …}", body)
			}
			if strings.Contains(e.Detail, "Go struct") {
				t.Errorf("detail %q names Go types", e.Detail)
			}
		})
	}
	// The live session was not disturbed.
	converse(t, c, "still here")
}

// TestSmallSessionPath: /sessions/{id}/api/offer claims the session
// that POST /start announced, with its body as the session's metadata; a
// second fresh offer for it is refused, a re-offer with its pc_id is not.
func TestSmallSessionPath(t *testing.T) {
	adm := transport.NewAdmission(4)
	reg := rtvi.NewRegistry(adm, time.Minute)
	start, err := reg.Add(rtvi.TransportWebRTC, json.RawMessage(`{"user":"ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newSmallServer(t, smallConfig{Config: webrtc.Config{Admission: adm}, SmallConfig: webrtc.SmallConfig{Starts: reg}})
	url := s.base + "/sessions/" + start.ID + "/api/offer"
	c := newSmallClient(t, url)
	c.connect(false)
	if n := reg.Pending(); n != 0 {
		t.Errorf("%d starts pending after the offer, want 0", n)
	}
	if n := adm.Sessions(); n != 1 {
		t.Errorf("%d sessions admitted, want 1 (the start's)", n)
	}
	c.rtvi("client-message", map[string]any{"t": "session", "d": map[string]any{}})
	if !waitFor(10*time.Second, func() bool { return len(c.received(`"server-response"`, time.Time{})) > 0 }) {
		t.Fatalf("no server-response; messages:\n%s", c.all())
	}
	if m := c.received(`"server-response"`, time.Time{})[0].Data; !strings.Contains(m, `"metadata":{"user":"ada"}`) {
		t.Errorf("server-response %s: want the /start body as metadata", m)
	}

	c2 := newSmallClient(t, url)
	pc, _, _ := c2.newPeer()
	defer pc.Close()
	o, _ := pc.CreateOffer(nil)
	b, _ := json.Marshal(map[string]any{"sdp": o.SDP, "type": "offer", "pc_id": nil, "restart_pc": false})
	if status, body := smallDo(t, http.MethodPost, url, "application/json", string(b)); status != http.StatusNotFound {
		t.Errorf("second offer: HTTP %d, want 404: %s", status, body)
	}
	c.negotiate(c.pc, false)
	converse(t, c, "hi")
	if n := len(s.fa.sessions); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
}

var pionRecvonly = pion.RTPTransceiverDirectionRecvonly

// m0 returns how many samples of input audio r has received.
func m0(r *record) int {
	got, _ := r.samples()
	return len(got)
}

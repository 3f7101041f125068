package webrtc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"gopkg.in/hraban/opus.v2"
)

// smallClient is a pion peer that talks to a SmallWebRTC endpoint the way
// @pipecat-ai/small-webrtc-transport does: transceivers audio sendrecv
// (mid 0), video sendrecv (mid 1), then the ordered "chat" data channel;
// the offer leaves before ICE gathering and the candidates follow by
// PATCH; "ping: <ms>" every interval on the chat channel.
type smallClient struct {
	t    *testing.T
	url  string
	pcID string

	mu    sync.Mutex
	pc    *pion.PeerConnection
	dc    *pion.DataChannel
	msgs  []chatMsg
	audio int // packets of bot audio received on mid 0, all peer connections
	gone  chan struct{}

	mic     *pion.TrackLocalStaticRTP
	enc     *opus.Encoder
	seq     uint16
	ts      uint32
	micDir  pion.RTPTransceiverDirection
	pinging chan struct{} // closed to stop pinging
	wg      sync.WaitGroup
	gmu     sync.Mutex // guards closed (not mu: negotiate holds mu while pion calls back)
	closed  bool       // goroutines are no longer started
}

// spawn runs f on a goroutine that close waits for, unless close has
// begun (pion's callbacks may fire while it waits).
func (c *smallClient) spawn(f func()) {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

type chatMsg struct {
	At   time.Time
	Data string
}

func newSmallClient(t *testing.T, url string) *smallClient {
	t.Helper()
	enc, err := opus.NewEncoder(48000, 1, opus.AppVoIP)
	if err != nil {
		t.Fatal(err)
	}
	c := &smallClient{t: t, url: url, enc: enc, micDir: pion.RTPTransceiverDirectionSendrecv, pinging: make(chan struct{})}
	c.mic, err = pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// newPeer builds a peer connection with the client's transceivers and
// chat channel; opened is closed when the channel opens.
func (c *smallClient) newPeer() (pc *pion.PeerConnection, dc *pion.DataChannel, opened chan struct{}) {
	c.t.Helper()
	pc, err := clientAPI(c.t).NewPeerConnection(pion.Configuration{})
	if err != nil {
		c.t.Fatal(err)
	}
	if c.micDir == pion.RTPTransceiverDirectionSendrecv {
		_, err = pc.AddTransceiverFromTrack(c.mic, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendrecv})
	} else {
		_, err = pc.AddTransceiverFromKind(pion.RTPCodecTypeAudio, pion.RTPTransceiverInit{Direction: c.micDir})
	}
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendrecv}); err != nil {
		c.t.Fatal(err)
	}
	ordered := true
	dc, err = pc.CreateDataChannel("chat", &pion.DataChannelInit{Ordered: &ordered})
	if err != nil {
		c.t.Fatal(err)
	}
	opened = make(chan struct{})
	dc.OnOpen(func() {
		close(opened)
		c.spawn(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-c.pinging:
					return
				case <-tick.C:
				}
				if dc.ReadyState() != pion.DataChannelStateOpen {
					return
				}
				dc.SendText(fmt.Sprintf("ping: %d", time.Now().UnixMilli()))
			}
		})
	})
	dc.OnMessage(func(m pion.DataChannelMessage) {
		c.mu.Lock()
		c.msgs = append(c.msgs, chatMsg{At: time.Now(), Data: string(m.Data)})
		c.mu.Unlock()
	})
	pc.OnTrack(func(tr *pion.TrackRemote, rx *pion.RTPReceiver) {
		c.spawn(func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				var mid string
				for _, tc := range pc.GetTransceivers() {
					if tc.Receiver() == rx {
						mid = tc.Mid()
					}
				}
				if mid != "0" {
					c.t.Errorf("bot audio on mid %q, want 0", mid)
					return
				}
				c.mu.Lock()
				c.audio++
				c.mu.Unlock()
			}
		})
	})
	// Trickle: the candidates go by PATCH once the answer is in.
	pc.OnICECandidate(func(cand *pion.ICECandidate) {
		// Not on pion's goroutine: negotiate holds c.mu until the answer.
		c.spawn(func() { c.trickle(cand) })
	})
	return pc, dc, opened
}

// trickle PATCHes one candidate (nil: the end of them).
func (c *smallClient) trickle(cand *pion.ICECandidate) {
	{
		var body map[string]any
		if cand == nil {
			body = map[string]any{"pc_id": c.id(), "candidates": []map[string]any{{"candidate": "", "sdp_mid": "0", "sdp_mline_index": 0}}}
		} else {
			ci := cand.ToJSON()
			body = map[string]any{"pc_id": c.id(), "candidates": []map[string]any{{"candidate": ci.Candidate, "sdp_mid": ci.SDPMid, "sdp_mline_index": ci.SDPMLineIndex}}}
		}
		b, _ := json.Marshal(body)
		status, resp := smallDo(c.t, http.MethodPatch, c.url, "application/json", string(b))
		if status != http.StatusOK {
			c.t.Errorf("PATCH candidates: HTTP %d: %s", status, resp)
		}
	}
}

func (c *smallClient) id() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pcID
}

// smallDo sends body to url with method and returns the status and body.
func smallDo(t *testing.T, method, url, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// negotiate offers pc (before gathering, like the real client), applies
// the answer, and returns the answer's SDP. The candidates follow by
// PATCH, which the OnICECandidate handler holds until the answer is set.
func (c *smallClient) negotiate(pc *pion.PeerConnection, restart bool) string {
	c.t.Helper()
	c.mu.Lock() // held: candidates wait for the answer's pc_id
	o, err := pc.CreateOffer(nil)
	if err != nil {
		c.mu.Unlock()
		c.t.Fatal(err)
	}
	if err := pc.SetLocalDescription(o); err != nil {
		c.mu.Unlock()
		c.t.Fatal(err)
	}
	req := map[string]any{"sdp": o.SDP, "type": "offer", "pc_id": nil, "restart_pc": restart}
	if c.pcID != "" {
		req["pc_id"] = c.pcID
	}
	b, _ := json.Marshal(req)
	status, body := smallDo(c.t, http.MethodPost, c.url, "application/json", string(b))
	if status != http.StatusOK {
		c.mu.Unlock()
		c.t.Fatalf("offer: HTTP %d: %s", status, body)
	}
	var a struct {
		SDP  string  `json:"sdp"`
		Type string  `json:"type"`
		PCID *string `json:"pc_id"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.Type != "answer" || a.PCID == nil || *a.PCID == "" {
		c.mu.Unlock()
		c.t.Fatalf("answer %s: %v", body, err)
	}
	if c.pcID != "" && *a.PCID != c.pcID {
		c.t.Errorf("pc_id changed from %q to %q", c.pcID, *a.PCID)
	}
	c.pcID = *a.PCID
	c.mu.Unlock()
	if !strings.Contains(a.SDP, "a=candidate:") {
		c.t.Error("the answer carries no candidates")
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: a.SDP}); err != nil {
		c.t.Fatal(err)
	}
	return a.SDP
}

// connect builds the peer connection, negotiates it and waits for the
// chat channel; restart replaces a connected one (restart_pc).
func (c *smallClient) connect(restart bool) string {
	c.t.Helper()
	pc, dc, opened := c.newPeer()
	gone := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s pion.PeerConnectionState) {
		if s == pion.PeerConnectionStateClosed || s == pion.PeerConnectionStateFailed {
			once.Do(func() { close(gone) })
		}
	})
	c.mu.Lock()
	old := c.pc
	c.pc, c.dc, c.gone = pc, dc, gone
	c.mu.Unlock()
	answer := c.negotiate(pc, restart)
	select {
	case <-opened:
	case <-time.After(20 * time.Second):
		c.t.Fatal("chat channel did not open")
	}
	if old != nil {
		old.Close()
	}
	return answer
}

func (c *smallClient) close() {
	c.stopPings()
	c.gmu.Lock()
	c.closed = true
	c.gmu.Unlock()
	c.mu.Lock()
	pc := c.pc
	c.mu.Unlock()
	if pc != nil {
		pc.Close()
	}
	c.wg.Wait()
}

func (c *smallClient) stopPings() {
	select {
	case <-c.pinging:
	default:
		close(c.pinging)
	}
}

// send sends v as JSON on the chat channel.
func (c *smallClient) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.mu.Lock()
	dc := c.dc
	c.mu.Unlock()
	if err := dc.SendText(string(b)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// rtvi sends an RTVI message of type typ with data.
func (c *smallClient) rtvi(typ string, data any) {
	c.t.Helper()
	c.send(map[string]any{"label": "rtvi-ai", "type": typ, "id": fmt.Sprintf("t%d", time.Now().UnixNano()%1e6), "data": data})
}

// received returns the chat messages that contain s, from since on.
func (c *smallClient) received(s string, since time.Time) []chatMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []chatMsg
	for _, m := range c.msgs {
		if strings.Contains(m.Data, s) && !m.At.Before(since) {
			out = append(out, m)
		}
	}
	return out
}

func (c *smallClient) all() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b bytes.Buffer
	for _, m := range c.msgs {
		if !strings.HasPrefix(m.Data, "ping") {
			b.WriteString(m.Data)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func (c *smallClient) audioPackets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.audio
}

// speak sends n 20 ms packets of pcm48 (48 kHz) on the mic, in real time.
func (c *smallClient) speak(pcm48 []int16) {
	buf := make([]byte, 1500)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(pcm48) >= 960 {
		n, err := c.enc.Encode(pcm48[:960], buf)
		if err != nil {
			c.t.Fatal(err)
		}
		c.mic.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: c.seq, Timestamp: c.ts}, Payload: buf[:n]})
		c.seq++
		c.ts += 960
		pcm48 = pcm48[960:]
		<-tick.C
	}
}

package webrtc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	"gopkg.in/hraban/opus.v2"

	"github.com/voiced-dev/voiced/audio"
)

// Event is a server event as the test client saw it.
type Event struct {
	Type         string  `json:"type"`
	Turn         *uint32 `json:"turn"`
	TMs          *int64  `json:"t_ms"`
	Text         string  `json:"text"`
	Final        bool    `json:"final"`
	SessionID    string  `json:"session_id"`
	SampleRate   int     `json:"sample_rate"`
	Interrupted  *bool   `json:"interrupted"`
	Code         string  `json:"code"`
	Message      string  `json:"message"`
	VoiceToVoice float64 `json:"voice_to_voice_ms"`
	STTFinal     float64 `json:"stt_final_ms"`
	BargeIn      string  `json:"barge_in"`
	PauseMs      float64 `json:"pause_ms"`
	Resumes      int     `json:"resumes"`
	At           time.Time
}

// AudioIn is one RTP packet of the bot's voice, decoded.
type AudioIn struct {
	At      time.Time
	Seq     uint16
	TS      uint32 // RTP timestamp (48 kHz)
	Marker  bool   // RTP marker: the first packet of a talkspurt
	Samples int
	Peak    int
}

// client is a pion peer that talks to the server like a browser: it sends
// Opus audio on a track (paced in real time, 20 ms per packet, optionally
// reordered and lossy), opens the "events" data channel, and records the
// events and decoded audio it receives.
type client struct {
	t   *testing.T
	pc  *pion.PeerConnection
	dc  *pion.DataChannel
	out *pion.TrackLocalStaticRTP
	enc *opus.Encoder
	up  *audio.Resampler // 16 kHz → 48 kHz

	// Impairments of the sent audio: every dropEvery-th packet is not sent
	// (0: none) and with swap each pair of packets is sent in reverse order.
	dropEvery int
	swap      bool
	seq       uint16
	ts        uint32
	held      *rtp.Packet
	pending   []int16 // 48 kHz samples not yet sent

	dcOpen chan struct{}
	gone   chan struct{} // closed when the connection failed or closed

	mu     sync.Mutex
	events []Event
	audio  []AudioIn
	wg     sync.WaitGroup
}

// clientAPI is a pion API kept on loopback, like the server in the tests.
func clientAPI(t *testing.T) *pion.API {
	t.Helper()
	m := &pion.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se pion.SettingEngine
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	return pion.NewAPI(pion.WithMediaEngine(m), pion.WithSettingEngine(se))
}

// newClient builds the peer and its offer; post sends it.
func newClient(t *testing.T) *client {
	t.Helper()
	pc, err := clientAPI(t).NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := opus.NewEncoder(48000, 1, opus.AppVoIP)
	if err != nil {
		t.Fatal(err)
	}
	enc.SetInBandFEC(true)
	enc.SetPacketLossPerc(10)
	up, err := audio.NewResampler(16000, 48000)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, pc: pc, enc: enc, up: up, dcOpen: make(chan struct{}), gone: make(chan struct{}), seq: 1000}
	t.Cleanup(c.close)
	c.out, err = pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(c.out); err != nil {
		t.Fatal(err)
	}
	c.dc, err = pc.CreateDataChannel("events", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.dc.OnOpen(func() { close(c.dcOpen) })
	c.dc.OnMessage(func(m pion.DataChannelMessage) {
		var ev Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Errorf("event %q: %v", m.Data, err)
			return
		}
		if ev.Type == "" || ev.Turn == nil || ev.TMs == nil {
			t.Errorf("event %s lacks type, turn or t_ms", m.Data)
		}
		ev.At = time.Now()
		c.mu.Lock()
		c.events = append(c.events, ev)
		c.mu.Unlock()
	})
	var goneOnce sync.Once
	pc.OnConnectionStateChange(func(s pion.PeerConnectionState) {
		if s == pion.PeerConnectionStateFailed || s == pion.PeerConnectionStateClosed {
			goneOnce.Do(func() { close(c.gone) })
		}
	})
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		c.wg.Go(func() { c.readAudio(tr) })
	})
	return c
}

func (c *client) readAudio(tr *pion.TrackRemote) {
	dec, err := opus.NewDecoder(48000, 1)
	if err != nil {
		c.t.Error(err)
		return
	}
	pcm := make([]int16, 5760)
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		n, err := dec.Decode(pkt.Payload, pcm)
		if err != nil {
			c.t.Errorf("decode reply audio: %v", err)
			continue
		}
		peak := 0
		for _, v := range pcm[:n] {
			peak = max(peak, abs(int(v)))
		}
		c.mu.Lock()
		c.audio = append(c.audio, AudioIn{At: now, Seq: pkt.SequenceNumber, TS: pkt.Timestamp, Marker: pkt.Marker, Samples: n, Peak: peak})
		c.mu.Unlock()
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// offer returns the client's offer with candidates gathered.
func (c *client) offer() string {
	c.t.Helper()
	o, err := c.pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	g := pion.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(o); err != nil {
		c.t.Fatal(err)
	}
	<-g
	return c.pc.LocalDescription().SDP
}

// post sends body to url and returns the status and body of the answer.
func post(t *testing.T, url, contentType, body string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// connect offers to url (as JSON when asJSON), applies the answer and waits
// for the events channel to open.
func (c *client) connect(url string, asJSON bool) {
	c.t.Helper()
	offer := c.offer()
	var status int
	var body string
	if asJSON {
		b, _ := json.Marshal(map[string]string{"type": "offer", "sdp": offer})
		status, body = post(c.t, url, "application/json", string(b), nil)
	} else {
		status, body = post(c.t, url, "application/sdp", offer, nil)
	}
	if status != http.StatusCreated {
		c.t.Fatalf("offer: HTTP %d: %s", status, body)
	}
	answer := body
	if asJSON {
		var a struct{ Type, SDP string }
		if err := json.Unmarshal([]byte(body), &a); err != nil || a.Type != "answer" {
			c.t.Fatalf("answer %q: %v", body, err)
		}
		answer = a.SDP
	}
	if err := c.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: answer}); err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-c.dcOpen:
	case <-c.gone:
		c.t.Fatal("connection failed before the events channel opened")
	case <-time.After(20 * time.Second):
		c.t.Fatal("events channel did not open")
	}
}

// dial is newClient + connect with an SDP body.
func dial(t *testing.T, url string) *client {
	t.Helper()
	c := newClient(t)
	c.connect(url, false)
	return c
}

func (c *client) close() {
	c.pc.Close()
	c.wg.Wait()
}

// send sends a JSON message on the events channel.
func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.dc.SendText(string(b)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// packet sends one 20 ms frame of 48 kHz audio, applying the impairments.
func (c *client) packet(frame []int16) {
	buf := make([]byte, 1500)
	n, err := c.enc.Encode(frame, buf)
	if err != nil {
		c.t.Fatalf("encode: %v", err)
	}
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: c.seq, Timestamp: c.ts}, Payload: buf[:n]}
	c.seq++
	c.ts += 960
	if c.dropEvery > 0 && int(p.SequenceNumber)%c.dropEvery == c.dropEvery-1 {
		return
	}
	if c.swap {
		if c.held == nil {
			c.held = p
			return
		}
		c.out.WriteRTP(p)
		p, c.held = c.held, nil
	}
	c.out.WriteRTP(p)
}

// stream sends 16 kHz pcm in real time and returns when its first and last
// audible (-40 dBFS) 20 ms frames were sent.
func (c *client) stream(pcm []int16) (firstVoice, lastVoice time.Time) {
	up := c.up.Process(nil, pcm)
	c.pending = append(c.pending, up...)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	thresh := int(32768 * math.Pow(10, -40.0/20))
	for len(c.pending) >= 960 {
		f := c.pending[:960]
		c.packet(f)
		for _, v := range f {
			if abs(int(v)) > thresh {
				lastVoice = time.Now()
				if firstVoice.IsZero() {
					firstVoice = lastVoice
				}
				break
			}
		}
		c.pending = c.pending[960:]
		<-tick.C
	}
	return firstVoice, lastVoice
}

// silence streams d of digital silence in real time.
func (c *client) silence(d time.Duration) { c.stream(make([]int16, int(d.Seconds()*16000))) }

// silenceUntil streams silence until cond holds or max elapses.
func (c *client) silenceUntil(max time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		c.silence(100 * time.Millisecond)
	}
	return cond()
}

// waitFor waits (without sending audio) until cond holds or max elapses.
func waitFor(max time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func (c *client) snapshot() ([]Event, []AudioIn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...), append([]AudioIn(nil), c.audio...)
}

func (c *client) count(typ string, since time.Time) int {
	evs, _ := c.snapshot()
	n := 0
	for _, e := range evs {
		if e.Type == typ && !e.At.Before(since) {
			n++
		}
	}
	return n
}

func (c *client) first(typ string, since time.Time) (Event, bool) {
	evs, _ := c.snapshot()
	for _, e := range evs {
		if e.Type == typ && !e.At.Before(since) {
			return e, true
		}
	}
	return Event{}, false
}

// firstAudible returns the arrival of the first reply packet after since
// whose peak is above -40 dBFS.
func (c *client) firstAudible(since time.Time) (time.Time, bool) {
	_, au := c.snapshot()
	thresh := int(32768 * math.Pow(10, -40.0/20))
	for _, a := range au {
		if !a.At.Before(since) && a.Peak > thresh {
			return a.At, true
		}
	}
	return time.Time{}, false
}

// audioBetween returns the samples received in [from, to).
func (c *client) audioBetween(from, to time.Time) int {
	_, au := c.snapshot()
	n := 0
	for _, a := range au {
		if !a.At.Before(from) && a.At.Before(to) {
			n += a.Samples
		}
	}
	return n
}

func types(evs []Event) string {
	var b bytes.Buffer
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Type)
		if e.Code != "" {
			fmt.Fprintf(&b, "(%s)", e.Code)
		}
	}
	return b.String()
}

// Played is 20 ms of the bot's voice as the peer plays it out.
type Played struct {
	At   time.Time // when it starts playing
	Loud bool      // peak above -40 dBFS
	// Gap is, for the first packet of a talkspurt (RTP marker: the
	// server's audio resumed after a gap), how long the server sent
	// nothing before it (by the RTP timestamps); zero otherwise.
	Gap time.Duration
}

// playback returns when a browser would play each packet received so far,
// in order: its jitter buffer plays the first packet of a talkspurt (the
// RTP marker bit) on arrival, or once what it holds has played, and the
// rest at the pace of their RTP timestamps from it; a packet that arrives
// after its time restarts the clock (an underrun). Over loopback it adds no
// delay of its own: what the peer hears after the server stops sending is
// what the server had sent ahead of real time.
func (c *client) playback() []Played {
	_, au := c.snapshot()
	thresh := int(32768 * math.Pow(10, -40.0/20))
	var out []Played
	var wall, end time.Time
	var ts, next uint32
	for i, a := range au {
		var gap time.Duration
		if i > 0 && a.Marker {
			gap = time.Duration(int32(a.TS-next)) * time.Second / 48000
		}
		next = a.TS + uint32(a.Samples)
		due := wall.Add(time.Duration(int32(a.TS-ts)) * time.Second / 48000)
		if i == 0 || a.Marker || a.At.After(due) || due.Before(end) {
			wall, ts = a.At, a.TS
			if wall.Before(end) {
				wall = end
			}
			due = wall
		}
		end = due.Add(time.Duration(a.Samples) * time.Second / 48000)
		out = append(out, Played{At: due, Loud: a.Peak > thresh, Gap: gap})
	}
	return out
}

// pauseAfter finds the first gap of at least 100 ms in the server's audio
// (a talkspurt that ends: the next packet starts a new one; shorter gaps are
// a busy server's hiccups) whose last packet plays after t0,
// and returns when the peer stopped hearing the bot's voice before it (the
// end of its last loud packet, or t0 if that was earlier: the voice had
// stopped already) and when it heard it again after the gap (zero if it did
// not). The audio received by now (or, if none, nothing since t0) ends in a
// gap too if it stopped 100 ms before now. ok is false if there is no gap.
func pauseAfter(pl []Played, t0, now time.Time) (silent, again time.Time, ok bool) {
	silent = t0
	for j := 1; j <= len(pl); j++ {
		if j == len(pl) {
			if prev := pl[j-1]; prev.Loud && prev.At.Add(20*time.Millisecond).After(silent) {
				silent = prev.At.Add(20 * time.Millisecond)
			}
			return silent, time.Time{}, silent.Before(now.Add(-100 * time.Millisecond))
		}
		prev := pl[j-1]
		if prev.Loud && prev.At.Add(20*time.Millisecond).After(silent) {
			silent = prev.At.Add(20 * time.Millisecond)
		}
		if pl[j].Gap < 100*time.Millisecond || !prev.At.Add(20*time.Millisecond).After(t0) {
			continue
		}
		for _, p := range pl[j:] {
			if p.Loud {
				return silent, p.At, true
			}
		}
		return silent, time.Time{}, true
	}
	return time.Time{}, time.Time{}, false
}

// loud returns how much loud audio pl plays in [from, to).
func loud(pl []Played, from, to time.Time) time.Duration {
	var d time.Duration
	for _, p := range pl {
		if p.Loud && !p.At.Before(from) && p.At.Before(to) {
			d += 20 * time.Millisecond
		}
	}
	return d
}

// pattern renders pl from from, 20 ms a character for n: '#' loud, '.'
// silent or nothing played.
func pattern(pl []Played, from time.Time, n int) string {
	b := bytes.Repeat([]byte{'.'}, n)
	for _, p := range pl {
		if i := int(p.At.Sub(from) / (20 * time.Millisecond)); p.Loud && i >= 0 && i < n && p.At.Sub(from) >= 0 {
			b[i] = '#'
		}
	}
	return string(b)
}
